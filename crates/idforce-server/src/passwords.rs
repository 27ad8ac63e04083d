//! Argon2id password hashing (OWASP's default parameters: m=19 MiB, t=2, p=1), run on the
//! blocking pool so a login never stalls the async workers.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use idforce_core::token::random_bytes;

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

/// Verifies on tokio's blocking pool.
pub struct Argon2Verifier;

#[async_trait]
impl idforce_core::ports::PasswordVerifier for Argon2Verifier {
    async fn verify(&self, phc: &str, password: &str) -> bool {
        let (phc, password) = (phc.to_owned(), password.to_owned());
        tokio::task::spawn_blocking(move || verify(&phc, &password))
            .await
            .unwrap_or(false)
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
}
