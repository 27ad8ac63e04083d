-- Assertions spent since the last merge into `assertions`, in the order they were spent (see
-- idforce-store's ledger.rs): appending here writes one page per many spends, where a spend
-- written straight into `assertions` lands on a random page of it.
CREATE TABLE assertion_log (
    seq        INTEGER PRIMARY KEY,
    digest     BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
