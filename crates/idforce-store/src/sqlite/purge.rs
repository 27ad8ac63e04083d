//! Deleting what can no longer be used or matter. Every statement runs on the writer, slice
//! by slice where there may be millions of rows: through a reader, or left in a connection's
//! page cache, a purge of millions of sessions would fill the cache of every connection it
//! passed through, and the process would grow with the store.

use async_trait::async_trait;
use idforce_core::model::Millis;
use idforce_core::ports::StoreResult;
use rusqlite::params;

use super::{SqliteStore, change, scalar, writer};
use crate::Purge;

/// Sessions are purged one slice of the key space per statement: one statement over all of
/// them would hold the write lock — which every token grant needs — for seconds.
const SLICE: i64 = 2_000;
/// The last key of the slice after `?1` (`?2` = SLICE - 1), or none when fewer remain.
const SLICE_END: &str =
    "SELECT digest FROM sessions WHERE digest > ?1 ORDER BY digest LIMIT 1 OFFSET ?2";
/// Deletes the sessions of the slice (`?1`, `?3`] that ended before `?2`.
const SLICE_SESSIONS: &str = "DELETE FROM sessions WHERE digest > ?1 AND digest <= ?3
     AND (last_used_at + timeout_secs * 1000 < ?2 OR revoked_at < ?2)";
/// Spent assertions past their expiry. Their keys start with the expiry (`ledger_key`), so
/// `?2` (the same time as 8 big-endian bytes, shorter than any key) bounds a range scan of
/// the expired ones instead of a scan of the whole ledger.
pub(super) const EXPIRED_ASSERTIONS: &str =
    "DELETE FROM assertions WHERE digest < ?2 AND expires_at < ?1";
const HOUR: Millis = 3_600_000;

/// The bound `EXPIRED_ASSERTIONS` takes for `before`.
pub(super) fn expiry_key(before: Millis) -> Vec<u8> {
    before.max(0).to_be_bytes().to_vec()
}

/// Past the last slice, the bound is above every key (keys are 32 bytes).
pub(super) fn slice_bound(last: &Option<Vec<u8>>) -> Vec<u8> {
    last.clone().unwrap_or_else(|| vec![0xFF; 33])
}

#[async_trait]
impl Purge for SqliteStore {
    async fn purge_expired(&self, now: Millis) -> StoreResult<u64> {
        let mut total = self.purge_sessions(now - HOUR).await?;
        let statements: [(&'static str, Millis); 4] = [
            (
                "DELETE FROM auth_codes WHERE expires_at < ?1",
                now - 24 * HOUR,
            ),
            ("DELETE FROM login_sessions WHERE expires_at < ?1", now),
            ("DELETE FROM device_codes WHERE expires_at < ?1", now - HOUR),
            (
                "DELETE FROM refresh_tokens WHERE revoked_at < ?1",
                now - 30 * 24 * HOUR,
            ),
        ];
        for (sql, before) in statements {
            total += self.purge_rows(sql, before, None).await?;
        }
        total += self
            .purge_rows(EXPIRED_ASSERTIONS, now, Some(expiry_key(now)))
            .await?;
        Ok(total)
    }
}

impl SqliteStore {
    /// Sessions that ended before `before`, each slice found and deleted by the writer
    /// between two group commits.
    async fn purge_sessions(&self, before: Millis) -> StoreResult<u64> {
        let mut after: Vec<u8> = Vec::new();
        let mut deleted = 0u64;
        loop {
            // One writing statement: it needs no savepoint.
            let (last, n) = self
                .db
                .write_statement(move |c| {
                    let last: Option<Vec<u8>> = scalar(c, SLICE_END, params![&after, SLICE - 1])?;
                    let n = change(
                        c,
                        SLICE_SESSIONS,
                        params![&after, before, slice_bound(&last)],
                    )?;
                    // Best effort: a cache left full costs memory, not correctness.
                    let _ = c.execute_batch("PRAGMA shrink_memory");
                    Ok((last, n))
                })
                .await?;
            deleted += n as u64;
            match last {
                Some(last) => after = last,
                None => break,
            }
        }
        Ok(deleted)
    }

    /// One purge statement (`?1` the time, `?2` a key bound if the statement takes one).
    /// Through a reader, a scan of the refresh tokens or the ledger would leave a
    /// connection's page cache full for good (measured: 2 MB more resident after a start on
    /// a store that had served JWT grants).
    async fn purge_rows(
        &self,
        sql: &'static str,
        before: Millis,
        key: Option<Vec<u8>>,
    ) -> StoreResult<u64> {
        self.db
            .write_statement(move |c| {
                let n = match &key {
                    Some(key) => change(c, sql, params![before, key]),
                    None => change(c, sql, params![before]),
                }?;
                writer::release_memory(c)?;
                Ok(n as u64)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    /// The ledger's purge reads only the expired range of the primary key.
    #[test]
    fn the_ledger_purge_searches_the_key_range() {
        let conn = rusqlite::Connection::open_in_memory().expect("sqlite");
        conn.execute_batch(
            "CREATE TABLE assertions (digest BLOB PRIMARY KEY, expires_at INTEGER NOT NULL) WITHOUT ROWID",
        )
        .expect("schema");
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", super::EXPIRED_ASSERTIONS))
            .and_then(|mut st| {
                st.query_map(rusqlite::params![1000, super::expiry_key(1000)], |r| {
                    r.get::<_, String>(3)
                })?
                .collect()
            })
            .expect("plan");
        assert_eq!(plan, ["SEARCH assertions USING PRIMARY KEY (digest<?)"]);
        assert_eq!(super::expiry_key(1000), 1000i64.to_be_bytes());
        assert_eq!(super::expiry_key(-5), [0; 8]);
    }
}
