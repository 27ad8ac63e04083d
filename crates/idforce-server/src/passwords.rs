//! Argon2id password hashing (OWASP's default parameters: m=19 MiB, t=2, p=1).
//!
//! Verification runs on a pool of one thread per core, each reusing its own Argon2 memory:
//! as many verifications run at once as there are cores to run them (more would only queue
//! inside the kernel's scheduler), and the 19 MiB each needs is allocated once per thread
//! instead of per login — allocations of that size, freed and made again under load, leave
//! the allocator holding hundreds of megabytes.
//!
//! The queue is bounded ([`QUEUE_PER_THREAD`] jobs per thread): past it a login is answered
//! at once as overloaded instead of waiting behind work it cannot outrun. A job whose caller
//! has gone (its client disconnected) is skipped, not computed. The time checks take is
//! tracked, so that a login refused without one can take as long ([`Argon2Verifier::pause`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use idforce_core::ports::Overloaded;
use idforce_core::token::random_bytes;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{oneshot, watch};

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// The PHC string of `password` under a fresh random salt.
pub fn hash(password: &str) -> String {
    let salt = random_bytes::<16>();
    match argon2().hash_password_with_salt(password.as_bytes(), &salt) {
        Ok(h) => h.to_string(),
        // Only reachable with invalid parameters, which are constants here.
        Err(_) => String::new(),
    }
}

pub fn verify(phc: &str, password: &str) -> bool {
    argon2().verify_password(password.as_bytes(), phc).is_ok()
}

/// The most memory a stored hash may ask for, in KiB (OWASP's default is 19 MiB).
const MAX_MEMORY_KIB: u32 = 256 * 1024;

/// One thread's Argon2 working memory, kept from one verification to the next (as each
/// thread of the pool keeps its own): 19 MiB allocated once, not faulted in per login.
#[derive(Default)]
pub struct Memory(Vec<Block>);

impl Memory {
    /// Verifies `password` against `phc` in this memory (grown first if it is too small).
    pub fn verify(&mut self, phc: &str, password: &str) -> bool {
        let memory = &mut self.0;
        let Ok(hash) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
            return false;
        };
        let Ok(params) = Params::try_from(&hash) else {
            return false;
        };
        // A stored hash claiming more than 256 MiB (an imported one, say) would take that
        // from every thread for good, or end the process if the allocation failed.
        if params.m_cost() > MAX_MEMORY_KIB {
            return false;
        }
        let (Ok(algorithm), Ok(version)) = (
            Algorithm::try_from(hash.algorithm.as_str()),
            Version::try_from(hash.version.unwrap_or(0x13)),
        ) else {
            return false;
        };
        if memory.len() < params.block_count() {
            memory.resize(params.block_count(), Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        let blocks = &mut memory[..params.block_count()];
        let argon2 = Argon2::new(algorithm, version, params);
        if argon2
            .hash_password_into_with_memory(password.as_bytes(), salt.as_ref(), &mut out, blocks)
            .is_err()
        {
            return false;
        }
        // Output's equality is constant-time.
        Output::new(&out).is_ok_and(|computed| &computed == expected)
    }
}

struct Job {
    phc: String,
    password: String,
    queued_at: Instant,
    answer: oneshot::Sender<bool>,
}

/// A valid Argon2id hash (of a random password, with the parameters of [`hash`]): what the
/// calibration check verifies.
const CALIBRATION_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Yq9Jw0cMbd9XbpmC4oYGN3ETHPbt2Ti0GGSRZVr9iP8";

/// Most jobs waiting per thread of the pool. At tens of milliseconds a check, a full queue
/// is about a second of work.
pub const QUEUE_PER_THREAD: usize = 32;

/// Verifies on its own pool of threads (see the module's comment).
pub struct Argon2Verifier {
    queue: mpsc::Sender<Job>,
    pool: Arc<Pool>,
    /// `true` once the stored hashes are the ones in force (see [`Settling`]).
    settled: watch::Receiver<bool>,
}

/// How many checks were made, skipped because their caller had gone, and refused because the
/// queue was full (exported by `/metrics`).
#[derive(Clone, Default)]
pub struct CheckCounters {
    pub checked: Counter,
    pub abandoned: Counter,
    pub overloaded: Counter,
}

/// What the pool's threads and its callers share.
struct Pool {
    counters: CheckCounters,
    /// Jobs queued or running.
    pending: AtomicUsize,
    capacity: usize,
    /// How long a check has taken lately, from queueing to answer (a moving average, in
    /// microseconds).
    typical_micros: AtomicU64,
}

impl Pool {
    fn observe(&self, took: Duration) {
        let took = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        // An exponential moving average weighting the newest check by 1/8; the first
        // observation replaces the zero it starts from.
        let _ = self
            .typical_micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    took
                } else {
                    old - old / 8 + took / 8
                })
            });
    }

    /// Until the first check is timed (the calibration, a few tens of milliseconds after
    /// start), a typical check on a server core.
    fn typical(&self) -> Duration {
        match self.typical_micros.load(Ordering::Relaxed) {
            0 => Duration::from_millis(40),
            micros => Duration::from_micros(micros),
        }
    }
}

/// Held while the config file's passwords are being applied to the store; logins wait until
/// it is done or dropped. Applying them takes an Argon2 verification per user (tens of
/// milliseconds each), which need not delay readiness for every flow that has no password.
pub struct Settling(watch::Sender<bool>);

impl Settling {
    pub fn done(self) {
        // No receiver left means no login left to release.
        let _ = self.0.send(true);
    }
}

impl Default for Argon2Verifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Argon2Verifier {
    /// A verifier with nothing to wait for.
    pub fn new() -> Argon2Verifier {
        let (verifier, settling) = Self::settling();
        settling.done();
        verifier
    }

    /// A verifier whose logins wait until the returned [`Settling`] is done (or dropped).
    pub fn settling() -> (Argon2Verifier, Settling) {
        let (settle, settled) = watch::channel(false);
        (Argon2Verifier::start(settled), Settling(settle))
    }

    fn start(settled: watch::Receiver<bool>) -> Argon2Verifier {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = Arc::new(Pool {
            counters: CheckCounters::default(),
            pending: AtomicUsize::new(0),
            capacity: threads * QUEUE_PER_THREAD,
            typical_micros: AtomicU64::new(0),
        });
        for i in 0..threads {
            let (jobs, pool) = (jobs.clone(), pool.clone());
            // A thread that cannot start leaves the others to do the work.
            let _ = std::thread::Builder::new()
                .name(format!("idforce-argon2-{i}"))
                .spawn(move || {
                    let mut memory = Memory::default();
                    loop {
                        // Ends when the verifier, and with it the queue, is dropped.
                        let job = match jobs.lock().unwrap_or_else(|p| p.into_inner()).recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        };
                        // Nobody is waiting for the answer: the client has gone.
                        if job.answer.is_closed() {
                            pool.counters.abandoned.inc();
                        } else {
                            let ok = memory.verify(&job.phc, &job.password);
                            pool.observe(job.queued_at.elapsed());
                            pool.counters.checked.inc();
                            let _ = job.answer.send(ok);
                        }
                        pool.pending.fetch_sub(1, Ordering::Relaxed);
                    }
                });
        }
        let verifier = Argon2Verifier {
            queue,
            pool,
            settled,
        };
        verifier.calibrate();
        verifier
    }

    /// The counters of this pool's checks, to export.
    pub fn counters(&self) -> CheckCounters {
        self.pool.counters.clone()
    }

    /// One check on a thread of its own, so that [`Argon2Verifier::pause`] knows how long a
    /// check takes before the first login has made one. Not on the pool: a pool thread keeps
    /// its 19 MiB for good, and an idle server should not hold it; this thread's is freed.
    fn calibrate(&self) {
        let pool = self.pool.clone();
        let _ = std::thread::Builder::new()
            .name("idforce-argon2-calibration".into())
            .spawn(move || {
                let started = Instant::now();
                let _ = verify(CALIBRATION_HASH, "");
                // Only if no real check has been timed meanwhile.
                let took = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
                let _ = pool.typical_micros.compare_exchange(
                    0,
                    took.max(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            });
    }
}

#[async_trait]
impl idforce_core::ports::PasswordVerifier for Argon2Verifier {
    async fn verify(&self, phc: &str, password: &str) -> Result<bool, Overloaded> {
        let pool = &self.pool;
        let admitted = pool
            .pending
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < pool.capacity).then_some(n + 1)
            });
        if admitted.is_err() {
            pool.counters.overloaded.inc();
            return Err(Overloaded);
        }
        let (answer, answered) = oneshot::channel();
        let job = Job {
            phc: phc.to_owned(),
            password: password.to_owned(),
            queued_at: Instant::now(),
            answer,
        };
        if self.queue.send(job).is_err() {
            pool.pending.fetch_sub(1, Ordering::Relaxed);
            return Ok(false);
        }
        Ok(answered.await.unwrap_or(false))
    }

    fn admit(&self) -> Result<(), Overloaded> {
        if self.pool.pending.load(Ordering::Relaxed) >= self.pool.capacity {
            self.pool.counters.overloaded.inc();
            return Err(Overloaded);
        }
        Ok(())
    }

    async fn settled(&self) {
        // An error means the Settling was dropped: nothing more will change.
        let _ = self.settled.clone().wait_for(|settled| *settled).await;
    }

    async fn pause(&self) {
        tokio::time::sleep(self.pool.typical()).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trip() {
        let h = super::hash("Winter2026!");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(super::verify(&h, "Winter2026!"));
        assert!(!super::verify(&h, "winter2026!"));
        assert!(!super::verify("not a hash", "x"));
    }

    #[test]
    fn the_pool_agrees_with_the_reference_verification() {
        let h = super::hash("Winter2026!");
        let mut memory = super::Memory::default();
        assert!(memory.verify(&h, "Winter2026!"));
        assert!(!memory.verify(&h, "winter2026!"));
        assert!(!memory.verify("not a hash", "x"));
        // A hash made with other parameters (less memory, one pass) verifies too.
        use argon2::password_hash::PasswordHasher;
        let params = argon2::Params::new(8, 1, 1, None).expect("params");
        let other =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password_with_salt(b"password", b"somesaltsomesalt")
                .expect("hash")
                .to_string();
        assert!(other.contains("m=8,t=1,p=1"));
        assert!(memory.verify(&other, "password"));
        assert!(!memory.verify(&other, "Password"));
    }

    #[tokio::test]
    async fn verifies_through_the_pool() {
        use idforce_core::ports::PasswordVerifier;
        let h = super::hash("Winter2026!");
        let pool = super::Argon2Verifier::new();
        assert_eq!(pool.verify(&h, "Winter2026!").await, Ok(true));
        assert_eq!(pool.verify(&h, "Winter2026").await, Ok(false));
    }

    #[tokio::test]
    async fn a_full_queue_answers_at_once_and_abandoned_checks_are_skipped() {
        use idforce_core::ports::{Overloaded, PasswordVerifier};
        use std::sync::Arc;
        use std::time::{Duration, Instant};
        let h = super::hash("Winter2026!");
        let pool = Arc::new(super::Argon2Verifier::new());
        let capacity = pool.pool.capacity;
        // Twice as many checks as the queue holds, whose callers then go away.
        let mut abandoned = Vec::new();
        for _ in 0..2 * capacity {
            let (pool, h) = (pool.clone(), h.clone());
            abandoned.push(tokio::spawn(async move { pool.verify(&h, "wrong").await }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Past the bound: refused at once (those tasks have already finished).
        let refused = abandoned.iter().filter(|t| t.is_finished()).count();
        assert!(
            refused >= capacity - 8,
            "{refused} of {} refused at once with a queue of {capacity}",
            2 * capacity
        );
        for task in &abandoned {
            task.abort();
        }
        // The abandoned checks are skipped: a real one is answered within a few checks'
        // time, not behind the whole queue.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match pool.verify(&h, "Winter2026!").await {
                    Err(Overloaded) => tokio::time::sleep(Duration::from_millis(5)).await,
                    answer => return answer,
                }
            }
        })
        .await
        .expect("answered");
        assert_eq!(answer, Ok(true));
        let typical = pool.pool.typical();
        assert!(
            started.elapsed() < typical * 8,
            "{:?} behind {capacity} abandoned checks (a check takes {typical:?})",
            started.elapsed()
        );
        // Control: a pool that did not skip them would need capacity / threads checks.
        assert!(capacity >= 16);
    }

    #[tokio::test]
    async fn a_pause_lasts_about_as_long_as_a_check() {
        use idforce_core::ports::PasswordVerifier;
        use std::time::{Duration, Instant};
        let h = super::hash("Winter2026!");
        let pool = super::Argon2Verifier::new();
        let mut checks = Vec::new();
        for _ in 0..4 {
            let started = Instant::now();
            assert_eq!(pool.verify(&h, "wrong").await, Ok(false));
            checks.push(started.elapsed());
        }
        // The typical time is an average of what the checks took from queueing to answer.
        let typical = pool.pool.typical();
        let (fastest, slowest) = (
            checks.iter().min().copied().unwrap_or_default(),
            checks.iter().max().copied().unwrap_or_default(),
        );
        assert!(
            typical >= fastest / 2 && typical <= slowest * 2,
            "typical {typical:?} for checks of {checks:?}"
        );
        let started = Instant::now();
        pool.pause().await;
        assert!(
            started.elapsed() >= typical,
            "a pause lasts the typical time"
        );
        assert!(typical > Duration::ZERO);
    }

    #[tokio::test]
    async fn logins_wait_until_the_config_passwords_are_settled() {
        use idforce_core::ports::PasswordVerifier;
        use std::time::Duration;
        let (pool, settling) = super::Argon2Verifier::settling();
        let wait = tokio::time::timeout(Duration::from_millis(50), pool.settled()).await;
        assert!(wait.is_err(), "released before the passwords were settled");
        settling.done();
        tokio::time::timeout(Duration::from_secs(5), pool.settled())
            .await
            .expect("released once settled");

        // A settle that ends without saying so (its task dropped) releases logins too.
        let (pool, settling) = super::Argon2Verifier::settling();
        drop(settling);
        tokio::time::timeout(Duration::from_secs(5), pool.settled())
            .await
            .expect("released when the settle is dropped");
        tokio::time::timeout(
            Duration::from_secs(5),
            super::Argon2Verifier::new().settled(),
        )
        .await
        .expect("a plain verifier never waits");
    }
}
