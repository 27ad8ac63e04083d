-- Salesforce's limit of refresh-token approvals per user and connected app.
ALTER TABLE apps ADD COLUMN max_approvals_per_user INTEGER NOT NULL DEFAULT 5;
