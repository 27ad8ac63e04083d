-- Token exchange: the orgs' declarative handlers (JSON list), each app's token exchange
-- settings (JSON), and users' Federation ID, which a handler may match a token's subject on.
ALTER TABLE orgs ADD COLUMN token_exchange_handlers TEXT NOT NULL DEFAULT '[]';
ALTER TABLE apps ADD COLUMN token_exchange TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN federation_id TEXT;
-- Unique in its org, as Salesforce's Federation ID is.
CREATE UNIQUE INDEX users_by_federation_id ON users (org_id, federation_id)
    WHERE federation_id IS NOT NULL;
CREATE INDEX users_by_email ON users (org_id, lower(email));
