-- Device flow (RFC 8628): both codes stored only as keyed digests.
CREATE TABLE device_codes (
    digest           BLOB PRIMARY KEY,
    user_code_digest BLOB NOT NULL UNIQUE,
    app_id           TEXT NOT NULL,
    scopes           TEXT NOT NULL,
    issued_at        INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    interval_secs    INTEGER NOT NULL,
    last_polled_at   INTEGER,
    user_id          TEXT,
    auth_time        INTEGER,
    denied           INTEGER NOT NULL DEFAULT 0,
    redeemed_at      INTEGER
);
CREATE INDEX device_codes_expiry ON device_codes(expires_at);
