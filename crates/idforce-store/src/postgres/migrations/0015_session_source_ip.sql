-- Where each session's grant came from (Setup's Session Management shows it as Source IP).
ALTER TABLE sessions ADD COLUMN source_ip TEXT;
