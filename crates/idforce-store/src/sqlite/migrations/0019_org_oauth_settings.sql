-- Setup's "OAuth and OpenID Connect Settings": flows an org switches off for every app (on
-- for every org made before, as idforce's default; Salesforce's new orgs start with the
-- username-password flow off).
ALTER TABLE orgs ADD COLUMN allow_username_password_flow INTEGER NOT NULL DEFAULT 1;
ALTER TABLE orgs ADD COLUMN allow_user_agent_flow INTEGER NOT NULL DEFAULT 1;
ALTER TABLE orgs ADD COLUMN require_pkce_for_all_apps INTEGER NOT NULL DEFAULT 0;
