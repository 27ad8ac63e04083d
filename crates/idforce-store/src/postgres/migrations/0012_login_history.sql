-- Login History: every login attempt of a known user (Salesforce's Setup → Login History).
-- Rows are added with the grant they record and purged oldest first.
CREATE TABLE login_history (
    id          BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    org_id      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    username    TEXT NOT NULL,
    subtype     TEXT NOT NULL,
    status      TEXT NOT NULL,
    source_ip   TEXT,
    app_id      TEXT,
    application TEXT NOT NULL,
    browser     TEXT NOT NULL,
    platform    TEXT NOT NULL,
    login_url   TEXT NOT NULL
);
CREATE INDEX login_history_at ON login_history(at);
