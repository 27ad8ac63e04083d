-- A frozen user cannot log in but is not deactivated; a blocked app gets no tokens
-- (Salesforce's Freeze and Connected Apps OAuth Usage → Block).
ALTER TABLE users ADD COLUMN frozen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE apps ADD COLUMN blocked INTEGER NOT NULL DEFAULT 0;
