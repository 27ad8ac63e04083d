-- Dynamic client registration: a parent app's initial access token (keyed digest, and sealed
-- so Setup can show it again), a client's registered public keys, and how an app was registered.
ALTER TABLE apps ADD COLUMN initial_access_token_digest BLOB;
ALTER TABLE apps ADD COLUMN initial_access_token_sealed BLOB;
ALTER TABLE apps ADD COLUMN jwks TEXT;
ALTER TABLE apps ADD COLUMN jwks_uri TEXT;
ALTER TABLE apps ADD COLUMN registration TEXT;
CREATE UNIQUE INDEX apps_by_initial_access_token ON apps (initial_access_token_digest)
    WHERE initial_access_token_digest IS NOT NULL;
