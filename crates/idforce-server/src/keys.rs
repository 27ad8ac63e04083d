//! RS256 signing keys: generated on first start, kept in the store (the private key
//! AES-256-GCM-encrypted when a key-encryption secret is configured), rotated by
//! `idforce keys rotate`, and published in the JWKS until every token they signed has expired.
//! Each node reloads the key set from the store at most every `RELOAD`, so a rotation made
//! on one node (or by the CLI) is used everywhere within that bound.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::aead;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idforce_core::model::Millis;
use idforce_core::ports::{JwtSigner, StoreError, StoreResult};
use idforce_core::token::random_bytes;
use idforce_store::{Backend, StoredKey};
use serde_json::{Value, json};
use tokio::sync::RwLock;

pub const RELOAD: Duration = Duration::from_secs(10);

/// The key-encryption key, derived from the configured secret (shared: aws-lc-rs keys are
/// not `Clone`).
#[derive(Clone)]
pub struct Kek(Arc<aead::LessSafeKey>);

impl Kek {
    pub fn from_secret(secret: &str) -> Kek {
        let digest =
            idforce_core::grant::sha256(format!("idforce key encryption\0{secret}").as_bytes());
        #[allow(clippy::expect_used)]
        let key = aead::UnboundKey::new(&aead::AES_256_GCM, &digest).expect("a 32-byte key");
        Kek(Arc::new(aead::LessSafeKey::new(key)))
    }

    /// From `IDFORCE_KEY_ENCRYPTION_KEY`, or the file named by `IDFORCE_KEY_ENCRYPTION_KEY_FILE`.
    pub fn from_env() -> Result<Option<Kek>, String> {
        if let Ok(v) = std::env::var("IDFORCE_KEY_ENCRYPTION_KEY") {
            return Ok(Some(Kek::from_secret(v.trim())));
        }
        if let Ok(path) = std::env::var("IDFORCE_KEY_ENCRYPTION_KEY_FILE") {
            let v =
                std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
            return Ok(Some(Kek::from_secret(v.trim())));
        }
        Ok(None)
    }

    fn seal(&self, kid: &str, plain: &[u8]) -> Vec<u8> {
        let nonce = random_bytes::<12>();
        let mut buf = plain.to_vec();
        let _ = self.0.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(kid.as_bytes()),
            &mut buf,
        );
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    fn open(&self, kid: &str, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < 12 {
            return None;
        }
        let (nonce, rest) = sealed.split_at(12);
        let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = rest.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, aead::Aad::from(kid.as_bytes()), &mut buf)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// A new 2048-bit key as it is stored, with `kid`.
pub fn generate(kid: String, now: Millis, kek: Option<&Kek>) -> StoreResult<StoredKey> {
    let invalid = |e: aws_lc_rs::error::Unspecified| StoreError::Invalid(e.to_string());
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(invalid)?;
    let der = pair.as_der().map_err(invalid)?;
    let public = pair.public_key();
    let modulus = public.modulus().big_endian_without_leading_zero().to_vec();
    let exponent = public.exponent().big_endian_without_leading_zero().to_vec();
    let (private_key, encrypted) = match kek {
        Some(k) => (k.seal(&kid, der.as_ref()), true),
        None => (der.as_ref().to_vec(), false),
    };
    Ok(StoredKey {
        kid,
        created_at: now,
        retired_at: None,
        publish_until: None,
        private_key,
        encrypted,
        modulus,
        exponent,
    })
}

/// The keys in force at one moment: the one that signs, and the public keys to publish.
pub struct KeyRing {
    signer: Option<(String, RsaKeyPair)>,
    published: Vec<StoredKey>,
}

impl KeyRing {
    fn build(keys: Vec<StoredKey>, kek: Option<&Kek>, now: Millis) -> StoreResult<KeyRing> {
        let published: Vec<StoredKey> = keys
            .into_iter()
            .filter(|k| k.retired_at.is_none() || k.publish_until.is_some_and(|t| t > now))
            .collect();
        let signer = match published
            .iter()
            .filter(|k| k.retired_at.is_none())
            .max_by_key(|k| (k.created_at, k.kid.clone()))
        {
            None => None,
            Some(k) => {
                let der = if k.encrypted {
                    let kek = kek.ok_or_else(|| StoreError::Invalid(format!(
                        "signing key {} is encrypted: set IDFORCE_KEY_ENCRYPTION_KEY (or _FILE)", k.kid
                    )))?;
                    kek.open(&k.kid, &k.private_key).ok_or_else(|| StoreError::Invalid(format!(
                        "signing key {} does not decrypt with the configured key-encryption key", k.kid
                    )))?
                } else {
                    k.private_key.clone()
                };
                let pair =
                    RsaKeyPair::from_pkcs8(&der).map_err(|e| StoreError::Invalid(e.to_string()))?;
                Some((k.kid.clone(), pair))
            }
        };
        Ok(KeyRing { signer, published })
    }

    pub fn kid(&self) -> Option<&str> {
        self.signer.as_ref().map(|(k, _)| k.as_str())
    }

    /// The JWKS document (spec §8): newest key first.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .published
            .iter()
            .rev()
            .map(|k| {
                json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(&k.modulus),
                    "e": URL_SAFE_NO_PAD.encode(&k.exponent),
                    "alg": "RS256",
                    "use": "sig",
                    "kid": k.kid,
                })
            })
            .collect();
        json!({ "keys": keys })
    }
}

impl JwtSigner for KeyRing {
    fn sign(&self, typ: &str, claims: &Value) -> Option<String> {
        let (kid, pair) = self.signer.as_ref()?;
        let header = json!({ "alg": "RS256", "typ": typ, "kid": kid });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; pair.public_modulus_len()];
        // aws-lc-rs signs without the random generator (it is there for ring's API).
        pair.sign(
            &RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .ok()?;
        Some(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

/// The key set of a running node, reloaded from the store when older than `RELOAD`.
pub struct Keys {
    store: Arc<dyn Backend>,
    kek: Option<Kek>,
    /// When the ring was loaded (server clock), and the ring.
    ring: RwLock<(Millis, Arc<KeyRing>)>,
}

impl Keys {
    /// Loads the keys, generating the first one if the store has none.
    pub async fn load(store: Arc<dyn Backend>, kek: Option<Kek>, now: Millis) -> StoreResult<Keys> {
        let mut stored = store.signing_keys().await?;
        if !stored.iter().any(|k| k.retired_at.is_none()) {
            let kid = next_kid(store.as_ref()).await?;
            let key = tokio::task::spawn_blocking({
                let kek = kek.clone();
                move || generate(kid, now, kek.as_ref())
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
            store.add_signing_key(&key, None).await?;
            stored = store.signing_keys().await?;
        }
        let ring = KeyRing::build(stored, kek.as_ref(), now)?;
        Ok(Keys {
            store,
            kek,
            ring: RwLock::new((now, Arc::new(ring))),
        })
    }

    /// The current key ring (reloaded from the store when stale; on a store error the last
    /// good ring is kept).
    pub async fn current(&self, now: Millis) -> Arc<KeyRing> {
        let stale = |loaded: Millis| now < loaded || now - loaded >= RELOAD.as_millis() as Millis;
        {
            let guard = self.ring.read().await;
            if !stale(guard.0) {
                return guard.1.clone();
            }
        }
        let mut guard = self.ring.write().await;
        if stale(guard.0) {
            if let Ok(Ok(ring)) = self
                .store
                .signing_keys()
                .await
                .map(|k| KeyRing::build(k, self.kek.as_ref(), now))
            {
                guard.1 = Arc::new(ring);
            }
            guard.0 = now;
        }
        guard.1.clone()
    }
}

/// The next kid: one more than the largest numeric kid (short numeric strings, like
/// Salesforce's "188", "190"…). Nodes starting together compute the same first kid, so only
/// one first key is ever stored.
async fn next_kid(store: &dyn Backend) -> StoreResult<String> {
    let max = store
        .signing_keys()
        .await?
        .iter()
        .filter_map(|k| k.kid.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    Ok((max + 1).to_string())
}

/// Rotates: a new key signs from now on; the previous ones stay published until every token
/// they may have signed (the longest id_token or JWT access-token lifetime of any app, plus
/// clock skew) has expired.
pub async fn rotate(store: &dyn Backend, kek: Option<&Kek>, now: Millis) -> StoreResult<StoredKey> {
    let apps = store.apps(None).await?;
    let longest = apps
        .iter()
        .map(|a| {
            if a.jwt_access_tokens {
                a.id_token_lifetime_secs.max(a.session_timeout_secs)
            } else {
                a.id_token_lifetime_secs
            }
        })
        .max()
        .unwrap_or(idforce_core::model::DEFAULT_ID_TOKEN_LIFETIME_SECS);
    let publish_until = now + (longest + 300) * 1000;
    let kid = next_kid(store).await?;
    let kek = kek.cloned();
    let key = tokio::task::spawn_blocking(move || generate(kid, now, kek.as_ref()))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
    if !store.add_signing_key(&key, Some(publish_until)).await? {
        return Err(StoreError::Conflict(format!(
            "key {} was added concurrently; rotate again",
            key.kid
        )));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_their_kek_and_kid() {
        let kek = Kek::from_secret("correct horse");
        let sealed = kek.seal("12", b"private");
        assert_eq!(kek.open("12", &sealed).as_deref(), Some(&b"private"[..]));
        assert_eq!(kek.open("13", &sealed), None);
        assert_eq!(Kek::from_secret("wrong").open("12", &sealed), None);
    }
}
