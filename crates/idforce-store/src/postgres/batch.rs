//! Batches for the commonest PostgreSQL statements. On a database that shares the machine's
//! cores, what a token request costs there is mostly the per-statement work of the server
//! (parse, plan, a round trip, a transaction), so concurrent requests share statements:
//!
//! - a new session (every password, client credentials and SOAP login): sessions queued while
//!   a batch is written go together in the next, as one statement — one transaction, one WAL
//!   flush — and each caller is answered once it has committed, so every answered token is
//!   durable. A batch that fails (a digest already taken) is written again row by row, so that
//!   only the row at fault fails;
//! - a session read (every introspection, identity URL and REST call): digests looked up
//!   together by one `= ANY` query.
//!
//! Several batches may be in flight, so a slow one does not hold up the ones behind it.

use std::sync::Arc;

use std::collections::HashMap;

use idforce_core::model::Session;
use idforce_core::ports::{StoreError, StoreResult};
use idforce_core::token::Digest;
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::unavailable;

/// Sessions written by one statement at most.
const MAX_BATCH: usize = 256;
/// Batches in flight at once.
const IN_FLIGHT: usize = 4;

const INSERT_MANY: &str = "INSERT INTO sessions (digest, org_id, user_id, app_id, scopes, issued_at, last_used_at,
     timeout_secs, revoked_at, family)
     SELECT digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs, NULL, family
     FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[],
                 $8::int8[], $9::bytea[])
          AS s (digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs, family)";

type Waiting = (Session, oneshot::Sender<StoreResult<()>>);

pub(super) struct SessionBatcher {
    queue: mpsc::UnboundedSender<Waiting>,
}

impl SessionBatcher {
    pub(super) fn start(pool: PgPool) -> SessionBatcher {
        let (queue, arrivals) = mpsc::unbounded_channel();
        tokio::spawn(gather(pool, arrivals));
        SessionBatcher { queue }
    }

    /// Stores `session` in the next batch; answers once that batch has committed.
    pub(super) async fn insert(&self, session: &Session) -> StoreResult<()> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send((session.clone(), reply))
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the session batcher has stopped".into())
}

/// Takes what has queued up, as a batch, whenever a batch may go; ends with the store.
async fn gather(pool: PgPool, mut arrivals: mpsc::UnboundedReceiver<Waiting>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = arrivals.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        // Taken after a slot is free: whatever arrived while the batches ahead were written.
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match arrivals.try_recv() {
                Ok(waiting) => batch.push(waiting),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            write(&pool, batch).await;
            drop(slot);
        });
    }
}

async fn write(pool: &PgPool, batch: Vec<Waiting>) {
    if batch.len() == 1 || insert_many(pool, &batch).await.is_err() {
        // Alone, or again one by one so that only a row at fault fails.
        for (session, reply) in batch {
            let _ = reply.send(insert_one(pool, &session).await);
        }
        return;
    }
    for (_, reply) in batch {
        let _ = reply.send(Ok(()));
    }
}

async fn insert_many(pool: &PgPool, batch: &[Waiting]) -> StoreResult<()> {
    let column = |f: &dyn Fn(&Session) -> String| batch.iter().map(|(s, _)| f(s)).collect();
    let digests: Vec<Vec<u8>> = batch.iter().map(|(s, _)| s.digest.to_vec()).collect();
    let orgs: Vec<String> = column(&|s| s.org_id.as15().to_owned());
    let users: Vec<String> = column(&|s| s.user_id.as15().to_owned());
    let apps: Vec<String> = column(&|s| s.app_id.as15().to_owned());
    let scopes: Vec<String> = column(&|s| s.scopes.to_string());
    let issued: Vec<i64> = batch.iter().map(|(s, _)| s.issued_at).collect();
    let used: Vec<i64> = batch.iter().map(|(s, _)| s.last_used_at).collect();
    let timeouts: Vec<i64> = batch.iter().map(|(s, _)| s.timeout_secs).collect();
    let families: Vec<Option<Vec<u8>>> = batch
        .iter()
        .map(|(s, _)| s.family.map(|f| f.to_vec()))
        .collect();
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
    query.execute(pool).await.map_err(unavailable)?;
    Ok(())
}

async fn insert_one(pool: &PgPool, session: &Session) -> StoreResult<()> {
    let mut c = pool.acquire().await.map_err(unavailable)?;
    super::tokens::insert_session(&mut c, session).await
}

const SESSIONS_BY_DIGEST: &str =
    "SELECT digest, org_id, user_id, app_id, scopes, issued_at, last_used_at,
     timeout_secs, revoked_at, family FROM sessions WHERE digest = ANY($1)";

type Lookup = (Digest, oneshot::Sender<StoreResult<Option<Session>>>);

pub(super) struct SessionReader {
    queue: mpsc::UnboundedSender<Lookup>,
}

impl SessionReader {
    pub(super) fn start(pool: PgPool) -> SessionReader {
        let (queue, arrivals) = mpsc::unbounded_channel();
        tokio::spawn(gather_lookups(pool, arrivals));
        SessionReader { queue }
    }

    /// The session stored under `digest`, read with the lookups queued beside it.
    pub(super) async fn get(&self, digest: &Digest) -> StoreResult<Option<Session>> {
        let (reply, answer) = oneshot::channel();
        self.queue.send((*digest, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn gather_lookups(pool: PgPool, mut arrivals: mpsc::UnboundedReceiver<Lookup>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = arrivals.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match arrivals.try_recv() {
                Ok(lookup) => batch.push(lookup),
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            look_up(&pool, batch).await;
            drop(slot);
        });
    }
}

async fn look_up(pool: &PgPool, batch: Vec<Lookup>) {
    let digests: Vec<Vec<u8>> = batch.iter().map(|(d, _)| d.to_vec()).collect();
    let query = sqlx::query(SESSIONS_BY_DIGEST).bind(digests);
    let found = super::all(query, pool, crate::rows::session).await;
    match found {
        Ok(sessions) => {
            let by_digest: HashMap<Digest, Session> =
                sessions.into_iter().map(|s| (s.digest, s)).collect();
            for (digest, reply) in batch {
                // A digest asked twice in one batch gets its session twice.
                let _ = reply.send(Ok(by_digest.get(&digest).cloned()));
            }
        }
        Err(e) => {
            for (_, reply) in batch {
                let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
            }
        }
    }
}
