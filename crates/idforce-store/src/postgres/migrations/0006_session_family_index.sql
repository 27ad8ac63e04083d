-- Only sessions issued from a refresh-token family are ever looked up by family; the others
-- (client credentials, JWT bearer) need not update this index on every grant.
DROP INDEX sessions_family;
CREATE INDEX sessions_family ON sessions(family) WHERE family IS NOT NULL;
