//! JWT bearer grants, several to a transaction. Each grant spends its assertion (a row of
//! `assertions`, written only if no unexpired row has its digest) and stores the session it
//! pays for; alone, that is a transaction and a WAL flush per grant. Here the grants queued
//! while a batch runs go together: one statement records every assertion of the batch and
//! returns those it recorded, one stores their sessions, one commit answers them all.
//!
//! Two grants of one batch with the same assertion: the first is the batch's, the others are
//! replays (a statement may not write one row twice). Two batches with the same assertion:
//! the second waits on the first's row and finds it recorded. Rows are written in digest order,
//! so that two batches never wait on each other in opposite orders.

use std::collections::HashSet;

use idforce_core::model::Millis;
use idforce_core::ports::{StoreError, StoreResult, Tokens};
use idforce_core::token::Digest;
use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};

use super::batch::{batches, insert_sessions, stopped};
use super::unavailable;

/// The batch's assertions recorded, unless an unexpired record of one exists; returns the
/// digests it recorded.
const RECORD_MANY: &str = "INSERT INTO assertions (digest, expires_at)
     SELECT digest, expires_at FROM UNNEST($1::bytea[], $2::int8[]) AS a (digest, expires_at)
     ORDER BY digest
     ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at
     WHERE assertions.expires_at < $3
     RETURNING digest";

/// A grant: its assertion's digest and expiry, the time, and the session it pays for.
struct Spend {
    digest: Digest,
    expires_at: Millis,
    now: Millis,
    tokens: Tokens,
    reply: oneshot::Sender<StoreResult<bool>>,
    /// The queuing task's injected write failure (`testing::failing_after`).
    #[cfg(feature = "testing")]
    fail_point: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

pub(super) struct AssertionSpends {
    queue: mpsc::UnboundedSender<Spend>,
}

impl AssertionSpends {
    pub(super) fn start(pool: PgPool) -> AssertionSpends {
        let queue = batches(
            pool,
            |pool, batch| async move { spend_many(&pool, batch).await },
        );
        AssertionSpends { queue }
    }

    /// Spends the assertion and stores `tokens` (a session and its login) in the next batch;
    /// `false`, having written nothing, if the assertion was spent already.
    pub(super) async fn spend(
        &self,
        digest: &Digest,
        expires_at: Millis,
        now: Millis,
        tokens: &Tokens,
    ) -> StoreResult<bool> {
        let (reply, answer) = oneshot::channel();
        let spend = Spend {
            digest: *digest,
            expires_at,
            now,
            tokens: tokens.clone(),
            reply,
            #[cfg(feature = "testing")]
            fail_point: crate::testing::fail_point(),
        };
        self.queue.send(spend).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn spend_many(pool: &PgPool, batch: Vec<Spend>) {
    #[cfg(feature = "testing")]
    if let Some(point) = batch.iter().find_map(|s| s.fail_point.clone()) {
        return crate::testing::with_fail_point(point, settle(pool, batch)).await;
    }
    settle(pool, batch).await
}

async fn settle(pool: &PgPool, batch: Vec<Spend>) {
    // The first grant of each assertion takes part; the others are its replays, answered
    // once it is settled.
    let mut seen = HashSet::with_capacity(batch.len());
    let (firsts, replays): (Vec<Spend>, Vec<Spend>) =
        batch.into_iter().partition(|s| seen.insert(s.digest));
    let failed = spend_firsts(pool, firsts).await;
    for replay in replays {
        // If the first failed, the assertion may still be unspent: not a replay, an error.
        let answer = if failed.contains(&replay.digest) {
            Err(StoreError::Unavailable(
                "the batch's first grant of this assertion failed".into(),
            ))
        } else {
            Ok(false)
        };
        let _ = replay.reply.send(answer);
    }
}

/// Spends each grant's assertion (all different), answers them, and returns the digests of
/// those that failed.
async fn spend_firsts(pool: &PgPool, firsts: Vec<Spend>) -> HashSet<Digest> {
    let mut failed = HashSet::new();
    let mut answer = |s: Spend, reply: StoreResult<bool>| {
        if reply.is_err() {
            failed.insert(s.digest);
        }
        let _ = s.reply.send(reply);
    };
    match super::retrying(|| record_and_insert(pool, &firsts)).await {
        Ok(Ok(spent)) => {
            for s in firsts {
                let won = spent.contains(&s.digest);
                answer(s, Ok(won));
            }
        }
        // The commit's outcome is unknown: each grant fails (run again, it would find its own
        // assertion spent and call itself a replay).
        Ok(Err(e)) => {
            for s in firsts {
                answer(s, Err(StoreError::Unavailable(e.to_string())));
            }
        }
        // Rolled back before the commit: again one by one, so that only a grant at fault fails.
        Err(_) if firsts.len() > 1 => {
            for s in firsts {
                let one = std::slice::from_ref(&s);
                let reply = match super::retrying(|| record_and_insert(pool, one)).await {
                    Ok(Ok(spent)) => Ok(spent.contains(&s.digest)),
                    Ok(Err(e)) | Err(e) => Err(e),
                };
                answer(s, reply);
            }
        }
        Err(e) => {
            for s in firsts {
                answer(s, Err(StoreError::Unavailable(e.to_string())));
            }
        }
    }
    failed
}

/// What a batch's commit left: the digests it recorded, or an error whose outcome is unknown.
type Settled = Result<HashSet<Digest>, StoreError>;

/// One transaction: the batch's assertions recorded, the sessions of those recorded stored.
/// `Err`: nothing was committed (a serialization failure at the commit included), so the
/// batch may run again; `Ok(Err(…))`: the commit itself failed otherwise, and may have stood.
async fn record_and_insert(pool: &PgPool, batch: &[Spend]) -> StoreResult<Settled> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let digests: Vec<Vec<u8>> = batch.iter().map(|s| s.digest.to_vec()).collect();
    let expiries: Vec<i64> = batch.iter().map(|s| s.expires_at).collect();
    // A record that expired before the batch's earliest grant may be written over; one that
    // expired within the batch's few milliseconds is at worst a replay refused.
    let now = batch.iter().map(|s| s.now).min().unwrap_or_default();
    super::injected_failure()?;
    let recorded: Vec<(Vec<u8>,)> = sqlx::query_as(RECORD_MANY)
        .bind(digests)
        .bind(expiries)
        .bind(now)
        .fetch_all(&mut *tx)
        .await
        .map_err(unavailable)?;
    let spent: HashSet<Digest> = recorded
        .into_iter()
        .filter_map(|(d,)| Digest::try_from(d.as_slice()).ok())
        .collect();
    let sessions: Vec<&Tokens> = batch
        .iter()
        .filter(|s| spent.contains(&s.digest))
        .map(|s| &s.tokens)
        .collect();
    if !sessions.is_empty() {
        insert_sessions(&mut tx, &sessions).await?;
    }
    match tx.commit().await.map_err(unavailable) {
        Ok(()) => Ok(Ok(spent)),
        Err(e @ StoreError::Retryable(_)) => Err(e),
        Err(e) => Ok(Err(e)),
    }
}
