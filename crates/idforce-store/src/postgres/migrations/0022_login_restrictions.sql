-- Profiles' Login IP Ranges (JSON [{"start", "end"}]) and Login Hours (JSON, minutes per
-- weekday), the org's time zone that login hours are read in, and apps' IP Relaxation.
ALTER TABLE profiles ADD COLUMN login_ip_ranges TEXT NOT NULL DEFAULT '[]';
ALTER TABLE profiles ADD COLUMN login_hours TEXT;
ALTER TABLE orgs ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';
ALTER TABLE apps ADD COLUMN ip_relaxation TEXT NOT NULL DEFAULT 'enforce';
