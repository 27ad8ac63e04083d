-- The consumer secret sealed under the system secret (beside its keyed digest), and whether
-- JWT bearer assertions need the app's certificate to be within its validity period.
ALTER TABLE apps ADD COLUMN enforce_certificate_validity INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN secret_sealed BLOB;
