-- The case-insensitive username index already exists here (0001); kept for version parity.
SELECT 1;
