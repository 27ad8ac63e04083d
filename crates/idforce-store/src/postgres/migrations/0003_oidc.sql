CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    created_at    BIGINT NOT NULL,
    retired_at    BIGINT,
    publish_until BIGINT,
    private_key   BYTEA NOT NULL,
    encrypted     BOOLEAN NOT NULL,
    modulus       BYTEA NOT NULL,
    exponent      BYTEA NOT NULL
);

ALTER TABLE apps ADD COLUMN id_token_lifetime_secs BIGINT NOT NULL DEFAULT 120;
ALTER TABLE apps ADD COLUMN jwt_access_tokens BOOLEAN NOT NULL DEFAULT FALSE;
