-- Device flow (RFC 8628): both codes stored only as keyed digests.
CREATE TABLE device_codes (
    digest           BYTEA PRIMARY KEY,
    user_code_digest BYTEA NOT NULL UNIQUE,
    app_id           TEXT NOT NULL,
    scopes           TEXT NOT NULL,
    issued_at        BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    interval_secs    BIGINT NOT NULL,
    last_polled_at   BIGINT,
    user_id          TEXT,
    auth_time        BIGINT,
    denied           BIGINT NOT NULL DEFAULT 0,
    redeemed_at      BIGINT
);
CREATE INDEX device_codes_expiry ON device_codes(expires_at);
