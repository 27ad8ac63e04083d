-- Authorization codes, stored under their keyed digest. `family` is set, atomically with
-- `redeemed_at`, to the refresh family the redemption starts: a second redemption finds it
-- and revokes everything issued from the code.
CREATE TABLE auth_codes (
    digest         BLOB PRIMARY KEY,
    org_id         TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    app_id         TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    code_challenge TEXT,
    nonce          TEXT,
    auth_time      INTEGER NOT NULL,
    issued_at      INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    redeemed_at    INTEGER,
    family         BLOB
) WITHOUT ROWID;

-- Refresh tokens. A family is every refresh token and session descended from one grant.
CREATE TABLE refresh_tokens (
    digest       BLOB PRIMARY KEY,
    family       BLOB NOT NULL,
    org_id       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    family_started_at INTEGER NOT NULL,
    issued_at    INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    rotated_at   INTEGER,
    revoked_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_family ON refresh_tokens(family);
CREATE INDEX refresh_tokens_user ON refresh_tokens(user_id);
CREATE INDEX refresh_tokens_app ON refresh_tokens(app_id);

ALTER TABLE sessions ADD COLUMN family BLOB;
CREATE INDEX sessions_family ON sessions(family);

-- Browser login sessions (the login cookie), under the keyed digest of the cookie value.
CREATE TABLE login_sessions (
    digest     BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL,
    auth_time  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
