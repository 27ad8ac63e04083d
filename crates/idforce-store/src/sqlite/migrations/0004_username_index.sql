-- Usernames are looked up as lower(username) = lower(?) on every backend.
CREATE INDEX users_username_lower ON users (lower(username));
