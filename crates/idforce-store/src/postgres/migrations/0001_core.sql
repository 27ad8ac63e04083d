CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE id_serials (
    prefix TEXT PRIMARY KEY,
    next   BIGINT NOT NULL
);

CREATE TABLE orgs (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    instance_url TEXT,
    created_at   BIGINT NOT NULL
);

CREATE TABLE users (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL REFERENCES orgs(id),
    username              TEXT NOT NULL,
    email                 TEXT NOT NULL,
    first_name            TEXT NOT NULL,
    last_name             TEXT NOT NULL,
    profile               TEXT NOT NULL,
    active                BOOLEAN NOT NULL,
    password_hash         TEXT NOT NULL,
    security_token_digest BYTEA,
    security_token_len    BIGINT,
    failed_logins         BIGINT NOT NULL DEFAULT 0,
    locked_until          BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
CREATE INDEX users_org ON users(org_id);

CREATE TABLE apps (
    id                                    TEXT PRIMARY KEY,
    org_id                                TEXT NOT NULL REFERENCES orgs(id),
    name                                  TEXT NOT NULL,
    client_id                             TEXT NOT NULL UNIQUE,
    secret_digest                         BYTEA,
    callback_urls                         TEXT NOT NULL,
    scopes                                TEXT NOT NULL,
    certificate_der                       BYTEA,
    permitted_users                       TEXT NOT NULL,
    profiles                              TEXT NOT NULL,
    pre_authorized_users                  TEXT NOT NULL,
    run_as                                TEXT,
    require_secret_for_web_server_flow    BOOLEAN NOT NULL,
    require_secret_for_refresh_token_flow BOOLEAN NOT NULL,
    require_pkce                          BOOLEAN NOT NULL,
    refresh_token_policy                  TEXT NOT NULL,
    rotate_refresh_tokens                 BOOLEAN NOT NULL,
    session_timeout_secs                  BIGINT NOT NULL,
    introspect_all_tokens                 BOOLEAN NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE approvals (
    user_id    TEXT NOT NULL REFERENCES users(id),
    app_id     TEXT NOT NULL REFERENCES apps(id),
    scopes     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, app_id)
);

CREATE TABLE sessions (
    digest       BYTEA PRIMARY KEY,
    org_id       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    issued_at    BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    timeout_secs BIGINT NOT NULL,
    revoked_at   BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_app ON sessions(app_id);

CREATE TABLE assertions (
    digest     BYTEA PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
