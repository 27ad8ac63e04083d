-- Setup's Connected App form: API Name (empty: derived from the name when read), Contact
-- Email, "Enable OAuth Settings" and "Enable for Device Flow" (on for every app made before).
ALTER TABLE apps ADD COLUMN api_name TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN contact_email TEXT NOT NULL DEFAULT '';
ALTER TABLE apps ADD COLUMN oauth_enabled BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE apps ADD COLUMN device_flow BOOLEAN NOT NULL DEFAULT TRUE;
