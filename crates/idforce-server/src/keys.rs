//! RS256 signing keys: generated on first start, kept in the store (the private key sealed
//! under the system secret, `secrets.rs`), rotated by `idforce keys rotate`, and published in
//! the JWKS until every token they signed has expired.
//! Each node reloads the key set from the store at most every `RELOAD`, so a rotation made
//! on one node (or by the CLI) is used everywhere within that bound.

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idforce_core::model::Millis;
use idforce_core::ports::{JwtSigner, SecretBox, StoreError, StoreResult};
use idforce_store::{Backend, StoredKey};
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::secrets::SystemSecret;

pub const RELOAD: Duration = Duration::from_secs(10);

/// A new 2048-bit key as it is stored, with `kid`.
pub fn generate(kid: String, now: Millis, secrets: &SystemSecret) -> StoreResult<StoredKey> {
    let invalid = |e: aws_lc_rs::error::Unspecified| StoreError::Invalid(e.to_string());
    let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(invalid)?;
    stored(&pair, kid, now, secrets)
}

/// The signing key a config names (`[server] signing_key_file`): an RSA private key in PEM
/// (PKCS#8 or PKCS#1), so that every run of a CI job signs with the same key.
#[derive(Clone)]
pub struct ConfiguredKey {
    pair: Arc<RsaKeyPair>,
}

impl ConfiguredKey {
    /// Reads the key; the error names the file and what it holds instead.
    pub fn read(path: &std::path::Path) -> Result<ConfiguredKey, String> {
        use rustls_pki_types::PrivateKeyDer;
        use rustls_pki_types::pem::PemObject;
        let name = path.display();
        let pem = std::fs::read(path).map_err(|e| format!("signing_key_file {name}: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
            format!("signing_key_file {name}: no PEM private key in it ({e}); expected BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY")
        })?;
        let pair = match key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(format!(
                    "signing_key_file {name}: not an RSA key (idforce signs with RS256)"
                ));
            }
        }
        .map_err(|e| {
            format!("signing_key_file {name}: not a usable RSA key of 2048 to 8192 bits ({e})")
        })?;
        Ok(ConfiguredKey {
            pair: Arc::new(pair),
        })
    }

    fn modulus(&self) -> Vec<u8> {
        self.pair
            .public_key()
            .modulus()
            .big_endian_without_leading_zero()
            .to_vec()
    }
}

/// A key pair as it is stored: the private half sealed.
fn stored(
    pair: &RsaKeyPair,
    kid: String,
    now: Millis,
    secrets: &SystemSecret,
) -> StoreResult<StoredKey> {
    let invalid = |e: aws_lc_rs::error::Unspecified| StoreError::Invalid(e.to_string());
    let der = pair.as_der().map_err(invalid)?;
    let public = pair.public_key();
    let modulus = public.modulus().big_endian_without_leading_zero().to_vec();
    let exponent = public.exponent().big_endian_without_leading_zero().to_vec();
    let private_key = secrets.seal(&purpose(&kid), der.as_ref());
    Ok(StoredKey {
        kid,
        created_at: now,
        retired_at: None,
        publish_until: None,
        private_key,
        encrypted: true,
        modulus,
        exponent,
    })
}

/// The purpose a signing key is sealed for.
fn purpose(kid: &str) -> String {
    format!("signing_key:{kid}")
}

/// The PKCS#8 of a stored key, opened with the system secret.
fn open(k: &StoredKey, secrets: &SystemSecret) -> StoreResult<Vec<u8>> {
    secrets
        .open(&purpose(&k.kid), &k.private_key)
        .ok_or_else(|| {
            StoreError::Invalid(crate::secrets::cannot_open(
                secrets,
                &k.private_key,
                &format!("signing key {}", k.kid),
            ))
        })
}

/// Seals what an older store kept otherwise: a plain key, or one encrypted by
/// `IDFORCE_KEY_ENCRYPTION_KEY`. Returns whether anything changed.
pub async fn migrate(store: &dyn Backend, secrets: &SystemSecret) -> StoreResult<bool> {
    let mut changed = false;
    for k in store.signing_keys().await? {
        let plain = if !k.encrypted {
            k.private_key.clone()
        } else if secrets.open(&purpose(&k.kid), &k.private_key).is_some() {
            continue;
        } else if let Some(plain) = secrets.open_legacy(&k.kid, &k.private_key) {
            plain
        } else {
            // Neither: the secret given is not the one that sealed it (said by `open`).
            open(&k, secrets)?;
            continue;
        };
        store
            .reseal_signing_key(&k.kid, &secrets.seal(&purpose(&k.kid), &plain))
            .await?;
        changed = true;
    }
    Ok(changed)
}

/// Reseals every key under the newest secret; returns how many were resealed.
pub async fn reseal(store: &dyn Backend, secrets: &SystemSecret) -> StoreResult<usize> {
    migrate(store, secrets).await?;
    let mut n = 0;
    for k in store.signing_keys().await? {
        if !secrets.is_current(&k.private_key) {
            let plain = open(&k, secrets)?;
            store
                .reseal_signing_key(&k.kid, &secrets.seal(&purpose(&k.kid), &plain))
                .await?;
            n += 1;
        }
    }
    Ok(n)
}

/// The keys in force at one moment: the one that signs, and the public keys to publish.
pub struct KeyRing {
    signer: Option<(String, RsaKeyPair)>,
    published: Vec<StoredKey>,
}

impl KeyRing {
    fn build(keys: Vec<StoredKey>, secrets: &SystemSecret, now: Millis) -> StoreResult<KeyRing> {
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
                let der = open(k, secrets)?;
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

    /// The claims of a JWT of type `typ` this server signed with one of its published keys
    /// (RS256, found by `kid`), whatever its `exp`: what OIDC logout reads from
    /// `id_token_hint`.
    pub fn verify(&self, compact: &str, typ: &str) -> Option<Value> {
        let mut parts = compact.trim().split('.');
        let (h, c, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        if header["alg"] != "RS256" || header["typ"] != typ {
            return None;
        }
        let key = self
            .published
            .iter()
            .find(|k| header["kid"] == k.kid.as_str())?;
        let public = aws_lc_rs::signature::RsaPublicKeyComponents {
            n: &key.modulus,
            e: &key.exponent,
        };
        let signature = URL_SAFE_NO_PAD.decode(sig).ok()?;
        public
            .verify(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                format!("{h}.{c}").as_bytes(),
                &signature,
            )
            .ok()?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()
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
    fn verify(&self, compact: &str, typ: &str) -> Option<Value> {
        KeyRing::verify(self, compact, typ)
    }

    fn sign(&self, typ: &str, claims: &Value) -> Option<String> {
        let (kid, pair) = self.signer.as_ref()?;
        let header = json!({ "alg": "RS256", "typ": typ, "kid": kid });
        idforce_core::token::sign_rs256(pair, &header, claims)
    }
}

/// The key set of a running node, reloaded from the store when older than `RELOAD`.
pub struct Keys {
    store: Arc<dyn Backend>,
    secrets: SystemSecret,
    /// When the ring was loaded (server clock), and the ring.
    ring: RwLock<(Millis, Arc<KeyRing>)>,
}

impl Keys {
    /// Loads the keys, sealing those an older store kept otherwise and generating the first
    /// one if the store has none.
    /// A configured key signs: the first time it is seen it is added (the store's other keys
    /// retired as by a rotation, and kept published while their tokens live).
    pub async fn load(
        store: Arc<dyn Backend>,
        secrets: SystemSecret,
        now: Millis,
        configured: Option<&ConfiguredKey>,
    ) -> StoreResult<Keys> {
        migrate(store.as_ref(), &secrets).await?;
        let mut keys = store.signing_keys().await?;
        if let Some(key) = configured {
            let modulus = key.modulus();
            let signing = |keys: &[StoredKey]| {
                keys.iter()
                    .any(|k| k.retired_at.is_none() && k.modulus == modulus)
            };
            // A kid taken meanwhile (another node adding this key, or a `keys rotate`) is a
            // conflict: look again, and take the next kid if the key is still not signing.
            let mut attempts = 0;
            while !signing(&keys) {
                attempts += 1;
                if attempts > 3 {
                    return Err(StoreError::Conflict(
                        "the configured signing key could not be added: keys keep changing".into(),
                    ));
                }
                let kid = next_kid(store.as_ref()).await?;
                let new = stored(&key.pair, kid, now, &secrets)?;
                match rotate_to(store.as_ref(), &new, now).await {
                    Ok(()) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
                keys = store.signing_keys().await?;
            }
        }
        if !keys.iter().any(|k| k.retired_at.is_none()) {
            let kid = next_kid(store.as_ref()).await?;
            let key = tokio::task::spawn_blocking({
                let secrets = secrets.clone();
                move || generate(kid, now, &secrets)
            })
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
            store.add_signing_key(&key, None).await?;
            keys = store.signing_keys().await?;
        }
        let ring = KeyRing::build(keys, &secrets, now)?;
        Ok(Keys {
            store,
            secrets,
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
                .map(|k| KeyRing::build(k, &self.secrets, now))
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
pub async fn rotate(
    store: &dyn Backend,
    secrets: &SystemSecret,
    now: Millis,
) -> StoreResult<StoredKey> {
    let kid = next_kid(store).await?;
    let secrets = secrets.clone();
    let key = tokio::task::spawn_blocking(move || generate(kid, now, &secrets))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))??;
    rotate_to(store, &key, now).await?;
    Ok(key)
}

/// `key` signs from now on; the others stay published until their tokens have expired.
async fn rotate_to(store: &dyn Backend, key: &StoredKey, now: Millis) -> StoreResult<()> {
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
    if !store.add_signing_key(key, Some(publish_until)).await? {
        return Err(StoreError::Conflict(format!(
            "key {} was added concurrently; rotate again",
            key.kid
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_verifies_what_it_signed_and_nothing_else() {
        let secrets = SystemSecret::new(&["correct horse"]).expect("secret");
        let key = generate("7".into(), 0, &secrets).expect("key");
        let ring = KeyRing::build(vec![key], &secrets, 1).expect("ring");
        let jwt = ring
            .sign("JWT", &json!({"aud": "x", "exp": 1}))
            .expect("signs");
        assert_eq!(ring.verify(&jwt, "JWT").expect("verifies")["aud"], "x");
        // A changed payload, signature or kid, and another ring's token, are not ours.
        let (head, rest) = jwt.split_once('.').unwrap();
        let (_, sig) = rest.split_once('.').unwrap();
        let forged = format!(
            "{head}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(r#"{"aud":"y","exp":1}"#)
        );
        assert!(ring.verify(&forged, "JWT").is_none());
        // A byte in the middle of the signature changed (the last character's low bits may
        // not count in base64).
        let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
        raw[100] ^= 1;
        let bad_sig = format!(
            "{head}.{}.{}",
            rest.split_once('.').unwrap().0,
            URL_SAFE_NO_PAD.encode(raw)
        );
        assert!(ring.verify(&bad_sig, "JWT").is_none());
        let other = KeyRing::build(
            vec![generate("7".into(), 0, &secrets).expect("key")],
            &secrets,
            1,
        )
        .expect("ring");
        assert!(other.verify(&jwt, "JWT").is_none());
        assert!(ring.verify("not.a.jwt", "JWT").is_none() && ring.verify(&jwt, "at+jwt").is_none());
    }

    #[tokio::test]
    async fn keys_of_older_stores_are_sealed_on_load() {
        use idforce_store::testing::MemoryStore;
        let store: Arc<dyn Backend> = Arc::new(MemoryStore::new());
        let secrets = SystemSecret::new(&["correct horse"]).expect("secret");
        // A plain key (no secret was configured), and one sealed the old way.
        let plain = generate("1".into(), 0, &secrets).expect("key");
        let der = open(&plain, &secrets).expect("opens");
        store
            .put_signing_key(&StoredKey {
                private_key: der.clone(),
                encrypted: false,
                retired_at: Some(1),
                publish_until: Some(i64::MAX),
                ..plain.clone()
            })
            .await
            .expect("put");
        let legacy_key = {
            let digest = idforce_core::grant::sha256(b"idforce key encryption\0correct horse");
            let unbound = aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &digest)
                .expect("key");
            aws_lc_rs::aead::LessSafeKey::new(unbound)
        };
        let nonce = [7u8; 12];
        let mut sealed = der.clone();
        legacy_key
            .seal_in_place_append_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key(nonce),
                aws_lc_rs::aead::Aad::from(b"2"),
                &mut sealed,
            )
            .expect("seal");
        let legacy = [nonce.to_vec(), sealed].concat();
        store
            .put_signing_key(&StoredKey {
                kid: "2".into(),
                created_at: 1,
                private_key: legacy,
                encrypted: true,
                ..plain.clone()
            })
            .await
            .expect("put");
        let keys = Keys::load(store.clone(), secrets.clone(), 10, None)
            .await
            .expect("loads");
        assert_eq!(keys.current(10).await.kid(), Some("2"));
        for k in store.signing_keys().await.expect("keys") {
            assert!(k.encrypted);
            assert!(secrets.is_current(&k.private_key), "key {} sealed", k.kid);
            assert_eq!(open(&k, &secrets).expect("opens"), der);
        }
        // Another secret cannot open them, and says which one sealed them.
        let wrong = SystemSecret::new(&["wrong"]).expect("secret");
        let Err(e) = Keys::load(store, wrong, 10, None).await else {
            panic!("loaded with the wrong secret");
        };
        assert!(e.to_string().contains(&secrets.fingerprint()), "{e}");
    }

    /// A configured key signs: added once (the generated key retired but still published),
    /// not again on the next start; a different configured key rotates again.
    #[tokio::test]
    async fn a_configured_key_takes_over_once() {
        use idforce_store::testing::MemoryStore;
        let store: Arc<dyn Backend> = Arc::new(MemoryStore::new());
        let secrets = SystemSecret::new(&["correct horse"]).expect("secret");
        let dir = std::env::temp_dir().join(format!("idforce-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let write = |name: &str| {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("key");
            let der = pair.as_der().expect("der");
            let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
            let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("write");
            ConfiguredKey::read(&path).expect("reads")
        };
        let (first, second) = (write("first.pem"), write("second.pem"));

        // Control: without one, a key is generated.
        let keys = Keys::load(store.clone(), secrets.clone(), 10, None)
            .await
            .expect("loads");
        assert_eq!(keys.current(10).await.kid(), Some("1"));

        let keys = Keys::load(store.clone(), secrets.clone(), 20, Some(&first))
            .await
            .expect("loads");
        assert_eq!(keys.current(20).await.kid(), Some("2"));
        let stored = store.signing_keys().await.expect("keys");
        let signing: Vec<_> = stored.iter().filter(|k| k.retired_at.is_none()).collect();
        assert_eq!(signing.len(), 1);
        assert_eq!(signing[0].modulus, first.modulus());
        let old = stored.iter().find(|k| k.kid == "1").expect("kept");
        assert!(old.retired_at.is_some() && old.publish_until.is_some_and(|t| t > 20));

        let again = Keys::load(store.clone(), secrets.clone(), 30, Some(&first))
            .await
            .expect("loads");
        assert_eq!(again.current(30).await.kid(), Some("2"), "not added twice");
        assert_eq!(store.signing_keys().await.expect("keys").len(), 2);

        let rotated = Keys::load(store.clone(), secrets, 40, Some(&second))
            .await
            .expect("loads");
        assert_eq!(rotated.current(40).await.kid(), Some("3"));

        // What is not a private key is refused, naming the file.
        std::fs::write(dir.join("empty.pem"), "no key here").expect("write");
        let Err(e) = ConfiguredKey::read(&dir.join("empty.pem")) else {
            panic!("read a file without a key");
        };
        assert!(
            e.contains("empty.pem") && e.contains("no PEM private key"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
