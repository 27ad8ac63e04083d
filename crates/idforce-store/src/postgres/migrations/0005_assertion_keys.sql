-- Assertions are now keyed by their expiry (8 bytes, big endian) and the first 24 bytes of
-- their SHA-256, so that the ledger grows at its end (see idforce_core::assertion::ledger_key).
-- Recorded assertions keep their protection: their keys are rewritten the same way.
UPDATE assertions SET digest = int8send(expires_at) || substring(digest from 1 for 24);
