-- Each user's logins for the login rate limit ([server] login_rate_limit): the current
-- window's start (ms) and count, and the previous window's count (a sliding window).
CREATE TABLE login_rates (
    user_id TEXT PRIMARY KEY,
    bucket BIGINT NOT NULL,
    count BIGINT NOT NULL,
    previous BIGINT NOT NULL
);
