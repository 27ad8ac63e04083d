//! Argon2id password hashing (OWASP's default parameters: m=19 MiB, t=2, p=1).
//!
//! Verification runs on a pool of one thread per core, each reusing its own Argon2 memory:
//! as many verifications run at once as there are cores to run them (more would only queue
//! inside the kernel's scheduler), and the 19 MiB each needs is allocated once per thread
//! instead of per login — allocations of that size, freed and made again under load, leave
//! the allocator holding hundreds of megabytes.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use idforce_core::token::random_bytes;
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
    answer: oneshot::Sender<bool>,
}

/// Verifies on its own pool of threads (see the module's comment).
pub struct Argon2Verifier {
    queue: mpsc::Sender<Job>,
    /// `true` once the stored hashes are the ones in force (see [`Settling`]).
    settled: watch::Receiver<bool>,
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
        for i in 0..threads {
            let jobs = jobs.clone();
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
                        let ok = memory.verify(&job.phc, &job.password);
                        let _ = job.answer.send(ok);
                    }
                });
        }
        Argon2Verifier { queue, settled }
    }
}

#[async_trait]
impl idforce_core::ports::PasswordVerifier for Argon2Verifier {
    async fn verify(&self, phc: &str, password: &str) -> bool {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            phc: phc.to_owned(),
            password: password.to_owned(),
            answer,
        };
        if self.queue.send(job).is_err() {
            return false;
        }
        answered.await.unwrap_or(false)
    }

    async fn settled(&self) {
        // An error means the Settling was dropped: nothing more will change.
        let _ = self.settled.clone().wait_for(|settled| *settled).await;
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
        assert!(pool.verify(&h, "Winter2026!").await);
        assert!(!pool.verify(&h, "Winter2026").await);
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
