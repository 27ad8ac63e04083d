-- Salesforce's hosts: an org's My Domain (a host name, unique), its Logout URL, its
-- Experience Cloud sites (a JSON list of {id, name, path}: read with the org on every request
-- through a site, written only by admins); apps' post-logout redirect URIs.
ALTER TABLE orgs ADD COLUMN my_domain TEXT;
ALTER TABLE orgs ADD COLUMN logout_url TEXT;
ALTER TABLE orgs ADD COLUMN sites TEXT NOT NULL DEFAULT '[]';
CREATE UNIQUE INDEX orgs_my_domain ON orgs(my_domain);
ALTER TABLE apps ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
