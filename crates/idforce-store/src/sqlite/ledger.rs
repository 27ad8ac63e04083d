//! The SQLite store's record of spent JWT bearer assertions, written in order.
//!
//! `assertions` is keyed by expiry, then hash (`idforce_core::assertion::ledger_key`). At
//! thousands of grants a second thousands of spends share each expiry second, and within it
//! the hash sends each insert to a random page of the table: every grant dirtied a page of its
//! own, a WAL frame at its commit and a page to write back at the next checkpoint — more than
//! the session the assertion paid for. So spends are written in order and merged in bulk:
//!
//! - a spend is appended to `assertion_log` (durable with its commit; one page holds ~80) and
//!   entered in `recent_assertions`, keyed by digest, a table of the writer connection's
//!   in-memory temporary database: part of the same transaction, never written to a file;
//! - an assertion is spent if either `recent_assertions` or `assertions` has it, unexpired;
//! - once `MERGE_AT` spends have gathered, they move into `assertions` one slice of the key
//!   order per group commit, so that each slice lands on a run of adjacent pages; a sweep over
//!   all of them ends by deleting the log rows it has moved;
//! - when the store opens, the writer reloads `recent_assertions` from the log: what the last
//!   process had not merged, whether it stopped or crashed.
//!
//! Only the writer's connection has `recent_assertions`, so every spend runs on the writer,
//! and one store file has one process (as it always has: docs/scaling.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use idforce_core::model::Millis;
use idforce_core::ports::StoreResult;
use rusqlite::{Connection, OptionalExtension, params};

use super::writer::{self, Database, change};

/// Spends gathered before a merge starts: the more, the more of them share each page they
/// land on (a few hundred KB of memory).
const MERGE_AT: usize = 8192;
/// Spends moved per group commit while merging: each slice holds up the commit it runs in.
const SLICE: i64 = 512;

const RECENT_TABLE: &str = "CREATE TEMP TABLE recent_assertions (
     digest     BLOB PRIMARY KEY,
     expires_at INTEGER NOT NULL
 ) WITHOUT ROWID";
const RELOAD: &str = "INSERT INTO temp.recent_assertions (digest, expires_at)
     SELECT digest, max(expires_at) FROM assertion_log GROUP BY digest";
const SPENT: &str = "SELECT 1 FROM assertions WHERE digest = ?1 AND expires_at >= ?2";
/// Changes nothing if the assertion was spent recently and has not expired; an expired entry
/// makes way (as in the PostgreSQL store's `ASSERTION_FIRST_USE`).
const REMEMBER: &str = "INSERT INTO temp.recent_assertions (digest, expires_at) VALUES (?1, ?2)
     ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at
     WHERE recent_assertions.expires_at < ?3";
const APPEND: &str = "INSERT INTO assertion_log (digest, expires_at) VALUES (?1, ?2)";
const LOG_END: &str = "SELECT max(seq) FROM assertion_log";
/// The last key of the slice after `?1` (`?2` = SLICE - 1), or none when fewer remain.
const SLICE_END: &str =
    "SELECT digest FROM temp.recent_assertions WHERE digest > ?1 ORDER BY digest LIMIT 1 OFFSET ?2";
const MOVE: &str = "INSERT INTO assertions (digest, expires_at)
     SELECT digest, expires_at FROM temp.recent_assertions WHERE digest > ?1 AND digest <= ?2
     ORDER BY digest
     ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at
     WHERE assertions.expires_at < excluded.expires_at";
const FORGET: &str = "DELETE FROM temp.recent_assertions WHERE digest > ?1 AND digest <= ?2";
const TRUNCATE_LOG: &str = "DELETE FROM assertion_log WHERE seq <= ?1";
const RECENT_COUNT: &str = "SELECT count(*) FROM temp.recent_assertions";

pub(crate) struct Ledger {
    direct: Arc<Database>,
    /// Spends in `recent_assertions`, as far as this side knows (corrected after each sweep).
    unmerged: AtomicUsize,
    merging: AtomicBool,
}

impl Ledger {
    /// Reloads what the log holds into the writer's `recent_assertions`.
    pub(crate) async fn open(direct: Arc<Database>) -> StoreResult<Arc<Ledger>> {
        let reloaded = direct.write(reload).await?;
        Ok(Arc::new(Ledger {
            direct,
            unmerged: AtomicUsize::new(reloaded),
            merging: AtomicBool::new(false),
        }))
    }

    /// Spends an assertion inside a write of the writer's (its transaction, its savepoint):
    /// `false`, having written nothing, if it was spent already and has not expired.
    pub(crate) fn spend(
        conn: &Connection,
        digest: &[u8],
        expires_at: Millis,
        now: Millis,
    ) -> StoreResult<bool> {
        let spent = conn
            .prepare_cached(SPENT)
            .and_then(|mut st| st.exists(params![digest, now]))
            .map_err(writer::error)?;
        if spent {
            return Ok(false);
        }
        if change(conn, REMEMBER, params![digest, expires_at, now])? == 0 {
            return Ok(false);
        }
        change(conn, APPEND, params![digest, expires_at])?;
        Ok(true)
    }

    /// To be called once a spend has committed: starts a merge when enough have gathered.
    pub(crate) fn spent(self: &Arc<Self>) {
        let gathered = self.unmerged.fetch_add(1, Ordering::Relaxed) + 1;
        if gathered >= MERGE_AT && !self.merging.swap(true, Ordering::AcqRel) {
            let ledger = self.clone();
            tokio::spawn(async move {
                // A slice that fails is rolled back alone (its savepoint) and nothing is lost:
                // its spends stay in the log and in memory, and the next spend starts a sweep.
                let _ = ledger.merge().await;
                ledger.merging.store(false, Ordering::Release);
            });
        }
    }

    /// One sweep over the key order, a slice per group commit.
    async fn merge(&self) -> StoreResult<()> {
        // Every log row up to here is in `recent_assertions` or already merged; the sweep
        // moves all of the former, after which these rows can go.
        let end: i64 = self
            .direct
            .write_statement(|c| {
                c.query_row(LOG_END, [], |r| r.get::<_, Option<i64>>(0))
                    .map_err(writer::error)
            })
            .await?
            .unwrap_or(0);
        let mut after: Vec<u8> = Vec::new();
        loop {
            let from = std::mem::take(&mut after);
            match self
                .direct
                .write(move |c| move_slice(c, &from, end))
                .await?
            {
                Slice::Moved { last, count } => {
                    after = last;
                    let _ = self
                        .unmerged
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                            Some(n.saturating_sub(count))
                        });
                }
                Slice::Last { remaining } => {
                    self.unmerged.store(remaining, Ordering::Relaxed);
                    return Ok(());
                }
            }
        }
    }
}

enum Slice {
    /// A full slice moved, up to and including `last`.
    Moved { last: Vec<u8>, count: usize },
    /// The sweep is over; `remaining` spends arrived behind it.
    Last { remaining: usize },
}

fn reload(conn: &Connection) -> StoreResult<usize> {
    change(conn, RECENT_TABLE, [])?;
    change(conn, RELOAD, [])
}

/// Moves the spends after `from` (one slice of them, or all when fewer remain) into
/// `assertions`; the last slice also deletes the log up to `end`.
fn move_slice(conn: &Connection, from: &[u8], end: i64) -> StoreResult<Slice> {
    let last: Option<Vec<u8>> = conn
        .prepare_cached(SLICE_END)
        .and_then(|mut st| {
            st.query_row(params![from, SLICE - 1], |r| r.get(0))
                .optional()
        })
        .map_err(writer::error)?;
    let upto = super::purge::slice_bound(&last);
    change(conn, MOVE, params![from, upto])?;
    let count = change(conn, FORGET, params![from, upto])?;
    match last {
        Some(last) => Ok(Slice::Moved { last, count }),
        None => {
            change(conn, TRUNCATE_LOG, [end])?;
            let remaining: i64 = conn
                .query_row(RECENT_COUNT, [], |r| r.get(0))
                .map_err(writer::error)?;
            Ok(Slice::Last {
                remaining: usize::try_from(remaining).unwrap_or(0),
            })
        }
    }
}
