-- The Setup Audit Trail: each change an admin made, newest last.
CREATE TABLE audit_trail (
    id      BIGSERIAL PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    section TEXT NOT NULL,
    action  TEXT NOT NULL
);
CREATE INDEX audit_trail_at ON audit_trail(at);
