-- Each change's org, so that an org's admins see their own in Setup's View Setup Audit Trail
-- (NULL: a change of no org, such as resealing the store or rotating signing keys).
ALTER TABLE audit_trail ADD COLUMN org_id TEXT;
CREATE INDEX audit_trail_org_at ON audit_trail(org_id, at);
