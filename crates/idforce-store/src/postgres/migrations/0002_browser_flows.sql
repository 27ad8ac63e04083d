CREATE TABLE auth_codes (
    digest         BYTEA PRIMARY KEY,
    org_id         TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    app_id         TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_challenge TEXT,
    nonce          TEXT,
    auth_time      BIGINT NOT NULL,
    issued_at      BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    redeemed_at    BIGINT,
    family         BYTEA
);

CREATE TABLE refresh_tokens (
    digest            BYTEA PRIMARY KEY,
    family            BYTEA NOT NULL,
    org_id            TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    app_id            TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    family_started_at BIGINT NOT NULL,
    issued_at         BIGINT NOT NULL,
    last_used_at      BIGINT NOT NULL,
    rotated_at        BIGINT,
    revoked_at        BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);
CREATE INDEX refresh_tokens_app ON refresh_tokens(app_id);

ALTER TABLE sessions ADD COLUMN family BYTEA;
CREATE INDEX sessions_family ON sessions(family);

CREATE TABLE login_sessions (
    digest     BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
