-- Server-wide values generated once (e.g. the credential-hashing key).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- The next serial number of each Salesforce key prefix.
CREATE TABLE id_serials (
    prefix TEXT PRIMARY KEY,
    next   INTEGER NOT NULL
);

CREATE TABLE orgs (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    instance_url TEXT,
    created_at   INTEGER NOT NULL
);

CREATE TABLE users (
    id                    TEXT PRIMARY KEY,
    org_id                TEXT NOT NULL REFERENCES orgs(id),
    username              TEXT NOT NULL UNIQUE COLLATE NOCASE,
    email                 TEXT NOT NULL,
    first_name            TEXT NOT NULL,
    last_name             TEXT NOT NULL,
    profile               TEXT NOT NULL,
    active                INTEGER NOT NULL,
    password_hash         TEXT NOT NULL,
    security_token_digest BLOB,
    security_token_len    INTEGER,
    failed_logins         INTEGER NOT NULL DEFAULT 0,
    locked_until          INTEGER,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
CREATE INDEX users_org ON users(org_id);

CREATE TABLE apps (
    id                                 TEXT PRIMARY KEY,
    org_id                             TEXT NOT NULL REFERENCES orgs(id),
    name                               TEXT NOT NULL,
    client_id                          TEXT NOT NULL UNIQUE,
    secret_digest                      BLOB,
    callback_urls                      TEXT NOT NULL,
    scopes                             TEXT NOT NULL,
    certificate_der                    BLOB,
    permitted_users                    TEXT NOT NULL,
    profiles                           TEXT NOT NULL,
    pre_authorized_users               TEXT NOT NULL,
    run_as                             TEXT,
    require_secret_for_web_server_flow INTEGER NOT NULL,
    require_secret_for_refresh_token_flow INTEGER NOT NULL,
    require_pkce                       INTEGER NOT NULL,
    refresh_token_policy               TEXT NOT NULL,
    rotate_refresh_tokens              INTEGER NOT NULL,
    session_timeout_secs               INTEGER NOT NULL,
    introspect_all_tokens              INTEGER NOT NULL,
    UNIQUE (org_id, name)
);

CREATE TABLE approvals (
    user_id    TEXT NOT NULL REFERENCES users(id),
    app_id     TEXT NOT NULL REFERENCES apps(id),
    scopes     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, app_id)
);

-- Access tokens, keyed by the keyed digest of the token; the token itself is never stored.
CREATE TABLE sessions (
    digest       BLOB PRIMARY KEY,
    org_id       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    app_id       TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    issued_at    INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    timeout_secs INTEGER NOT NULL,
    revoked_at   INTEGER
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_app ON sessions(app_id);

-- JWT bearer assertions already used, until they expire.
CREATE TABLE assertions (
    digest     BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
