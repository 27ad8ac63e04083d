//! Batches for the commonest PostgreSQL statements. On a database that shares the machine's
//! cores, what a token request costs there is mostly the per-statement work of the server
//! (parse, plan, a round trip, a transaction), so concurrent requests share statements:
//!
//! - a new session (every password, client credentials and SOAP login) with its Login History
//!   row: sessions queued while a batch is written go together in the next, as one statement
//!   that stores both — one transaction, one WAL flush — and each caller is answered once it
//!   has committed, so every answered token is durable. A batch that fails (a digest already taken) is written again row by row, so that
//!   only the row at fault fails;
//! - a session read (every introspection, identity URL and REST call) and a refresh token
//!   read: digests looked up together by one `= ANY` query;
//! - a refresh that does not rotate: one transaction holds the batch's tokens with a shared
//!   lock (so that no revocation slips between the check and the sessions) and stores their
//!   sessions by one statement.
//!
//! Several batches may be in flight, so a slow one does not hold up the ones behind it.

use std::sync::Arc;

use std::collections::HashMap;

use idforce_core::model::{Millis, Session};
use idforce_core::ports::{StoreError, StoreResult, Tokens};

use crate::rows::LoginValues;
use idforce_core::token::Digest;
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::unavailable;

/// Sessions written by one statement at most.
const MAX_BATCH: usize = 256;
/// Batches of a kind in flight at once. Fewer make larger batches, and less work for a
/// database on the same cores; one alone leaves each batch waiting for the last (measured
/// alone, 64 connections: introspection 45k/s with one, 56k with two, 46k with four; refresh
/// 25k, 20k, 12-17k; client credentials 37k, 38k, 31k).
const IN_FLIGHT: usize = 2;

/// Sessions and their Login History rows, by one statement (atomic without a transaction).
const INSERT_MANY: &str = "WITH new_sessions AS (
     INSERT INTO sessions (digest, org_id, user_id, app_id, scopes, issued_at, last_used_at,
         timeout_secs, revoked_at, family, source_ip)
     SELECT digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs, NULL, family,
         source_ip
     FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[],
                 $8::int8[], $9::bytea[], $22::text[])
          AS s (digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs, family,
                source_ip))
     INSERT INTO login_history (at, org_id, user_id, username, subtype, status, source_ip, app_id,
         application, browser, platform, login_url)
     SELECT * FROM UNNEST($10::int8[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],
                          $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[])";

type Waiting = (Tokens, oneshot::Sender<StoreResult<()>>);

pub(super) struct SessionBatcher {
    queue: mpsc::UnboundedSender<Waiting>,
}

impl SessionBatcher {
    pub(super) fn start(pool: PgPool) -> SessionBatcher {
        let queue = batches(pool, |pool, batch| async move { write(&pool, batch).await });
        SessionBatcher { queue }
    }

    /// Stores `tokens` (a session and its login, no refresh token) in the next batch; answers
    /// once that batch has committed.
    pub(super) async fn insert(&self, tokens: &Tokens) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((tokens.clone(), reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

pub(super) fn stopped() -> StoreError {
    StoreError::Unavailable("the session batcher has stopped".into())
}

/// A queue whose items `process` takes in batches: whatever has queued up whenever one of
/// `IN_FLIGHT` batches may go. Ends when the queue's sender (the store) is dropped.
pub(super) fn batches<T, F, Fut>(pool: PgPool, process: F) -> mpsc::UnboundedSender<T>
where
    T: Send + 'static,
    F: Fn(PgPool, Vec<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (queue, mut arrivals) = mpsc::unbounded_channel::<T>();
    tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(IN_FLIGHT));
        while let Some(first) = arrivals.recv().await {
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            // Taken once a slot is free: whatever arrived while the batches ahead ran.
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match arrivals.try_recv() {
                    Ok(item) => batch.push(item),
                    Err(_) => break,
                }
            }
            let work = process(pool.clone(), batch);
            tokio::spawn(async move {
                work.await;
                drop(slot);
            });
        }
    });
    queue
}

async fn write(pool: &PgPool, batch: Vec<Waiting>) {
    if batch.len() == 1 || super::retrying(|| insert_many(pool, &batch)).await.is_err() {
        // Alone, or again one by one so that only a row at fault fails.
        for (tokens, reply) in batch {
            let _ = reply.send(insert_one(pool, &tokens).await);
        }
        return;
    }
    for (_, reply) in batch {
        let _ = reply.send(Ok(()));
    }
}

async fn insert_many(pool: &PgPool, batch: &[Waiting]) -> StoreResult<()> {
    let grants: Vec<&Tokens> = batch.iter().map(|(t, _)| t).collect();
    let mut c = pool.acquire().await.map_err(unavailable)?;
    insert_sessions(&mut c, &grants).await
}

/// Stores the grants' sessions and Login History rows (not their refresh tokens) by one
/// statement.
pub(super) async fn insert_sessions(
    c: &mut sqlx::PgConnection,
    grants: &[&Tokens],
) -> StoreResult<()> {
    let batch: Vec<&Session> = grants.iter().map(|t| &t.session).collect();
    let column = |f: &dyn Fn(&Session) -> String| batch.iter().map(|s| f(s)).collect();
    let digests: Vec<Vec<u8>> = batch.iter().map(|s| s.digest.to_vec()).collect();
    let orgs: Vec<String> = column(&|s| s.org_id.as15().to_owned());
    let users: Vec<String> = column(&|s| s.user_id.as15().to_owned());
    let apps: Vec<String> = column(&|s| s.app_id.as15().to_owned());
    let scopes: Vec<String> = column(&|s| s.scopes.to_string());
    let issued: Vec<i64> = batch.iter().map(|s| s.issued_at).collect();
    let used: Vec<i64> = batch.iter().map(|s| s.last_used_at).collect();
    let timeouts: Vec<i64> = batch.iter().map(|s| s.timeout_secs).collect();
    let families: Vec<Option<Vec<u8>>> =
        batch.iter().map(|s| s.family.map(|f| f.to_vec())).collect();
    let query = sqlx::query(INSERT_MANY)
        .bind(digests)
        .bind(orgs)
        .bind(users)
        .bind(apps)
        .bind(scopes)
        .bind(issued)
        .bind(used)
        .bind(timeouts)
        .bind(families);
    let logins: Vec<LoginValues> = grants
        .iter()
        .filter_map(|t| t.login.as_ref())
        .map(LoginValues::from)
        .collect();
    let text =
        |f: &dyn Fn(&LoginValues) -> String| -> Vec<String> { logins.iter().map(f).collect() };
    let query = query
        .bind(logins.iter().map(|l| l.at).collect::<Vec<i64>>())
        .bind(text(&|l| l.org_id.clone()))
        .bind(text(&|l| l.user_id.clone()))
        .bind(text(&|l| l.username.clone()))
        .bind(text(&|l| l.subtype.to_owned()))
        .bind(text(&|l| l.status.to_owned()))
        .bind(
            logins
                .iter()
                .map(|l| l.source_ip.clone())
                .collect::<Vec<Option<String>>>(),
        )
        .bind(
            logins
                .iter()
                .map(|l| l.app_id.clone())
                .collect::<Vec<Option<String>>>(),
        )
        .bind(text(&|l| l.application.clone()))
        .bind(text(&|l| l.browser.clone()))
        .bind(text(&|l| l.platform.clone()))
        .bind(text(&|l| l.login_url.clone()))
        .bind(
            batch
                .iter()
                .map(|s| s.source_ip.clone())
                .collect::<Vec<Option<String>>>(),
        );
    super::injected_failure()?;
    query.execute(&mut *c).await.map_err(unavailable)?;
    Ok(())
}

async fn insert_one(pool: &PgPool, tokens: &Tokens) -> StoreResult<()> {
    super::retrying(|| async {
        let mut c = pool.acquire().await.map_err(unavailable)?;
        insert_sessions(&mut c, &[tokens]).await
    })
    .await
}

/// Rows read several to a query (`WHERE digest = ANY($1)`): sessions for every
/// introspection, identity URL and REST call, refresh tokens for every refresh.
pub(super) struct Reader<T> {
    queue: mpsc::UnboundedSender<(Digest, oneshot::Sender<StoreResult<Option<T>>>)>,
}

pub(super) const SESSIONS_BY_DIGEST: &str =
    "SELECT digest, org_id, user_id, app_id, scopes, issued_at, last_used_at,
     timeout_secs, revoked_at, family, source_ip FROM sessions WHERE digest = ANY($1)";
pub(super) const REFRESH_BY_DIGEST: &str =
    "SELECT digest, family, org_id, user_id, app_id, scopes, family_started_at,
     issued_at, last_used_at, rotated_at, revoked_at FROM refresh_tokens WHERE digest = ANY($1)";

impl<T: Clone + Send + 'static> Reader<T> {
    /// A reader of `sql` (its first column the digest), whose rows `decode` reads and
    /// `digest` keys.
    pub(super) fn start(
        pool: PgPool,
        sql: &'static str,
        decode: fn(&sqlx::postgres::PgRow) -> StoreResult<T>,
        digest: fn(&T) -> Digest,
    ) -> Reader<T> {
        let queue = batches(pool, move |pool, batch| async move {
            look_up(&pool, sql, decode, digest, batch).await
        });
        Reader { queue }
    }

    /// The row stored under `digest`, read with the lookups queued beside it.
    pub(super) async fn get(&self, digest: &Digest) -> StoreResult<Option<T>> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((*digest, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn look_up<T: Clone>(
    pool: &PgPool,
    sql: &'static str,
    decode: fn(&sqlx::postgres::PgRow) -> StoreResult<T>,
    digest: fn(&T) -> Digest,
    batch: Vec<(Digest, oneshot::Sender<StoreResult<Option<T>>>)>,
) {
    let digests: Vec<Vec<u8>> = batch.iter().map(|(d, _)| d.to_vec()).collect();
    let found = super::retrying(|| {
        let query = sqlx::query(sql).bind(digests.clone());
        super::all(query, pool, decode)
    })
    .await;
    match found {
        Ok(rows) => {
            let by_digest: HashMap<Digest, T> = rows.into_iter().map(|r| (digest(&r), r)).collect();
            for (d, reply) in batch {
                // A digest asked twice in one batch gets its row twice.
                let _ = reply.send(Ok(by_digest.get(&d).cloned()));
            }
        }
        Err(e) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
            }
        }
    }
}

/// The tokens of a batch that are not revoked, held until its transaction ends; with their
/// last recorded use.
const HOLD_MANY: &str = "SELECT digest, last_used_at FROM refresh_tokens
     WHERE digest = ANY($1) AND revoked_at IS NULL FOR SHARE";

/// A refresh without rotation: the token used and the session (and login) it starts.
pub(super) type Use = (Digest, Tokens, oneshot::Sender<StoreResult<Option<Millis>>>);

pub(super) struct RefreshUses {
    queue: mpsc::UnboundedSender<Use>,
}

impl RefreshUses {
    pub(super) fn start(pool: PgPool) -> RefreshUses {
        let queue = batches(
            pool,
            |pool, batch| async move { use_many(&pool, batch).await },
        );
        RefreshUses { queue }
    }

    /// Stores `tokens`' session if `old` is not revoked, in the next batch; the token's last
    /// recorded use when it did (`None`: revoked or unknown, nothing written).
    pub(super) async fn use_token(
        &self,
        old: &Digest,
        tokens: &Tokens,
    ) -> StoreResult<Option<Millis>> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((*old, tokens.clone(), reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn use_many(pool: &PgPool, batch: Vec<Use>) {
    match super::retrying(|| hold_and_insert(pool, &batch)).await {
        Ok(held) => {
            for (old, _, reply) in batch {
                let _ = reply.send(Ok(held.get(&old).copied()));
            }
        }
        // Again one by one, so that only a use at fault fails.
        Err(_) if batch.len() > 1 => {
            for one in batch {
                let single = std::slice::from_ref(&one);
                let result = super::retrying(|| hold_and_insert(pool, single)).await;
                let (old, _, reply) = one;
                let _ = reply.send(result.map(|held| held.get(&old).copied()));
            }
        }
        Err(e) => {
            for (_, _, reply) in batch {
                let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
            }
        }
    }
}

/// One transaction: the batch's usable tokens held, the sessions of their uses stored.
async fn hold_and_insert(pool: &PgPool, batch: &[Use]) -> StoreResult<HashMap<Digest, Millis>> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let digests: Vec<Vec<u8>> = batch.iter().map(|(d, ..)| d.to_vec()).collect();
    let rows: Vec<(Vec<u8>, i64)> = sqlx::query_as(HOLD_MANY)
        .bind(digests)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
    let held: HashMap<Digest, Millis> = rows
        .into_iter()
        .filter_map(|(d, at)| Digest::try_from(d.as_slice()).ok().map(|d| (d, at)))
        .collect();
    let sessions: Vec<&Tokens> = batch
        .iter()
        .filter(|(old, ..)| held.contains_key(old))
        .map(|(_, tokens, _)| tokens)
        .collect();
    if !sessions.is_empty() {
        insert_sessions(&mut tx, &sessions).await?;
    }
    tx.commit().await.map_err(unavailable)?;
    Ok(held)
}
