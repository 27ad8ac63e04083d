-- Setup's Connected App form: API Name (empty: derived from the name when read), Contact
-- Email, "Enable OAuth Settings" and "Enable for Device Flow" (on for every app made before).
ALTER TABLE apps ADD COLUMN api_name TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN contact_email TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN oauth_enabled INTEGER NOT NULL DEFAULT 1;
ALTER TABLE apps ADD COLUMN device_flow INTEGER NOT NULL DEFAULT 1;
