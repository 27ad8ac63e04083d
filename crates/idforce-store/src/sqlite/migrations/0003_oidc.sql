-- RS256 signing keys. The newest key that is not retired signs; retired keys stay published
-- in the JWKS until `publish_until`, when every token they signed has expired.
CREATE TABLE signing_keys (
    kid           TEXT PRIMARY KEY,
    created_at    INTEGER NOT NULL,
    retired_at    INTEGER,
    publish_until INTEGER,
    -- PKCS#8 DER, or AES-256-GCM nonce||ciphertext of it when `encrypted` is 1.
    private_key   BLOB NOT NULL,
    encrypted     INTEGER NOT NULL,
    modulus       BLOB NOT NULL,
    exponent      BLOB NOT NULL
) WITHOUT ROWID;

ALTER TABLE apps ADD COLUMN id_token_lifetime_secs INTEGER NOT NULL DEFAULT 120;
ALTER TABLE apps ADD COLUMN jwt_access_tokens INTEGER NOT NULL DEFAULT 0;
