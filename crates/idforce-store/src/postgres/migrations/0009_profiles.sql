-- Profiles as things: each org's, unique by name. Users and apps name them (as before);
-- a profile is made when first named, and stores from before get theirs at start.
CREATE TABLE profiles (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES orgs(id),
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (org_id, name)
);
