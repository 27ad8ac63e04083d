//! Login History: rows written in the transaction of the grant they record (`insert_login`,
//! or with the batched sessions: `batch::insert_sessions`), or alone for a refused login;
//! listed newest first; purged a slice per statement.

use async_trait::async_trait;
use idforce_core::login_history::LoginEvent;
use idforce_core::model::Millis;
use idforce_core::ports::{LoginHistory, StoreResult};
use sqlx::PgConnection;

use super::{PgStore, all, change, one};
use crate::login_history::{Arg, PURGE_SLICE, listing, purge_bound};
use crate::rows::{self, Columns, LoginValues};
use crate::{LoginHistoryAdmin, LoginHistoryQuery, LoginRecord};

/// The id of the first row recorded at or after `$1` (rows are found in the order they were
/// recorded: see `purge_bound`).
const FIRST_KEPT_BY_AGE: &str = "SELECT id FROM login_history WHERE at >= $1 ORDER BY id LIMIT 1";
/// The newest row's id.
const LAST: &str = "SELECT MAX(id) FROM login_history";
/// The newest row past the newest `$1`.
const FIRST_DROPPED: &str = "SELECT id FROM login_history ORDER BY id DESC LIMIT 1 OFFSET $1";
/// A slice of the rows up to id `$1`, oldest first, `$2` at most.
const PURGE: &str = "DELETE FROM login_history WHERE id IN (
     SELECT id FROM login_history WHERE id <= $1 ORDER BY id LIMIT $2)";
const INSERT_LOGIN: &str =
    "INSERT INTO login_history (at, org_id, user_id, username, subtype, status,
     source_ip, app_id, application, browser, platform, login_url)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

fn insert(
    event: &LoginEvent,
) -> sqlx::query::Query<'static, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let v = LoginValues::from(event);
    sqlx::query(INSERT_LOGIN)
        .bind(v.at)
        .bind(v.org_id)
        .bind(v.user_id)
        .bind(v.username)
        .bind(v.subtype)
        .bind(v.status)
        .bind(v.source_ip)
        .bind(v.app_id)
        .bind(v.application)
        .bind(v.browser)
        .bind(v.platform)
        .bind(v.login_url)
}

/// Stores a Login History row, inside the caller's transaction.
pub(super) async fn insert_login(c: &mut PgConnection, event: &LoginEvent) -> StoreResult<()> {
    change(insert(event), c).await.map(drop)
}

#[async_trait]
impl LoginHistory for PgStore {
    async fn record_login(&self, event: &LoginEvent) -> StoreResult<()> {
        change(insert(event), &self.pool).await.map(drop)
    }
}

#[async_trait]
impl LoginHistoryAdmin for PgStore {
    async fn login_history(&self, query: &LoginHistoryQuery) -> StoreResult<Vec<LoginRecord>> {
        let (sql, args) = listing(query, |n| format!("${n}"));
        // Built from fixed fragments; every value is bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for arg in args {
            q = match arg {
                Arg::Text(t) => q.bind(t),
                Arg::Int(i) => q.bind(i),
            };
        }
        all(q, &self.pool, rows::login_record).await
    }

    async fn purge_login_history(&self, before: Millis, keep: u64) -> StoreResult<u64> {
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        let first_kept = one(
            sqlx::query(FIRST_KEPT_BY_AGE).bind(before),
            &self.pool,
            |r| r.int(0),
        )
        .await?;
        let dropped = one(sqlx::query(FIRST_DROPPED).bind(keep), &self.pool, |r| {
            r.int(0)
        })
        .await?;
        let last = one(sqlx::query(LAST), &self.pool, |r| r.opt_int(0))
            .await?
            .flatten();
        let bound = purge_bound(first_kept, last, dropped);
        let mut deleted = 0u64;
        loop {
            let slice = sqlx::query(PURGE).bind(bound).bind(PURGE_SLICE);
            let n = change(slice, &self.pool).await?;
            deleted += n;
            if n < PURGE_SLICE as u64 {
                return Ok(deleted);
            }
        }
    }
}
