-- Assertions are now keyed by their expiry (8 bytes, big endian) and the first 24 bytes of
-- their SHA-256, so that the ledger grows at its end (see idforce_core::assertion::ledger_key).
-- Recorded assertions keep their protection: their keys are rewritten the same way.
-- (Concatenated as hex: SQLite's || makes text of blobs.)
UPDATE assertions SET digest = unhex(printf('%016X', expires_at) || hex(substr(digest, 1, 24)));
