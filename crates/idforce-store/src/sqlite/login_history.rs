//! Login History: rows written inside the job of the grant they record (`insert_login`), or
//! alone for a refused login; listed newest first; purged a slice per statement.

use async_trait::async_trait;
use idforce_core::login_history::LoginEvent;
use idforce_core::model::Millis;
use idforce_core::ports::{LoginHistory, StoreResult};
use rusqlite::types::Value;
use rusqlite::{Connection, params};

use super::{SqliteStore, all, change, one, writer};
use crate::login_history::{Arg, PURGE_SLICE, listing, purge_bound};
use crate::rows::{self, Columns};
use crate::{LoginHistoryAdmin, LoginHistoryQuery, LoginRecord};

/// The id of the first row recorded at or after `?1` (rows are found in the order they were
/// recorded: see `purge_bound`).
const FIRST_KEPT_BY_AGE: &str = "SELECT id FROM login_history WHERE at >= ?1 ORDER BY id LIMIT 1";
/// The newest row's id.
const LAST: &str = "SELECT MAX(id) FROM login_history";
/// The newest row past the newest `?1`.
const FIRST_DROPPED: &str = "SELECT id FROM login_history ORDER BY id DESC LIMIT 1 OFFSET ?1";
/// A slice of the rows up to id `?1`, oldest first, `?2` at most.
const PURGE: &str = "DELETE FROM login_history WHERE id IN (
     SELECT id FROM login_history WHERE id <= ?1 ORDER BY id LIMIT ?2)";
const INSERT_LOGIN: &str =
    "INSERT INTO login_history (at, org_id, user_id, username, subtype, status,
     source_ip, app_id, application, browser, platform, login_url)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// Stores a Login History row, inside the caller's job.
pub(super) fn insert_login(c: &Connection, e: &LoginEvent) -> StoreResult<()> {
    // Bound from the event as it is: this runs on the writer, once per grant.
    change(
        c,
        INSERT_LOGIN,
        params![
            e.at,
            e.org_id.as15(),
            e.user_id.as15(),
            e.username,
            e.subtype.as_str(),
            e.status.label(),
            e.source_ip.map(|ip| ip.to_string()),
            e.app_id.as_ref().map(|a| a.as15()),
            e.application,
            e.browser,
            e.platform,
            e.login_url,
        ],
    )
    .map(drop)
}

#[async_trait]
impl LoginHistory for SqliteStore {
    async fn record_login(&self, event: &LoginEvent) -> StoreResult<()> {
        let event = event.clone();
        self.db
            .write_statement(move |c| insert_login(c, &event))
            .await
    }
}

#[async_trait]
impl LoginHistoryAdmin for SqliteStore {
    async fn login_history(&self, query: &LoginHistoryQuery) -> StoreResult<Vec<LoginRecord>> {
        let (sql, args) = listing(query, |n| format!("?{n}"));
        let values: Vec<Value> = args
            .into_iter()
            .map(|a| match a {
                Arg::Text(t) => Value::Text(t),
                Arg::Int(i) => Value::Integer(i),
            })
            .collect();
        self.db.read(|c| {
            all(c, &sql, rusqlite::params_from_iter(values), |r| {
                rows::login_record(r)
            })
        })
    }

    async fn purge_login_history(&self, before: Millis, keep: u64) -> StoreResult<u64> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let first_kept = self
            .db
            .read(|c| one(c, FIRST_KEPT_BY_AGE, [before], |r| r.int(0)))?;
        let dropped = self
            .db
            .read(|c| one(c, FIRST_DROPPED, [keep], |r| r.int(0)))?;
        let last = self
            .db
            .read(|c| one(c, LAST, params![], |r| r.opt_int(0)))?
            .flatten();
        let bound = purge_bound(first_kept, last, dropped);
        let mut deleted = 0u64;
        loop {
            // One writing statement: it needs no savepoint.
            let n = self
                .db
                .write_statement(move |c| {
                    let n = change(c, PURGE, params![bound, PURGE_SLICE])?;
                    writer::release_memory(c)?;
                    Ok(n as u64)
                })
                .await?;
            deleted += n;
            if n < PURGE_SLICE as u64 {
                return Ok(deleted);
            }
        }
    }
}
