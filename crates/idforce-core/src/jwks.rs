//! JSON Web Key Sets (RFC 7517): the public keys a client signs its `private_key_jwt`
//! assertions with (registered inline, `jwks`, or published at a `jwks_uri`), and those of
//! other issuers whose tokens are exchanged. RSA keys verify RS256 and P-256 keys ES256; other
//! keys in a set are passed over, since a set may publish keys for other uses beside them.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The most keys a set may hold: a set is read at every assertion that names an unknown key.
pub const MAX_KEYS: usize = 32;

/// The JWS algorithms keys here verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    pub fn parse(s: &str) -> Option<Alg> {
        match s {
            "RS256" => Some(Alg::Rs256),
            "ES256" => Some(Alg::Es256),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed point, `04 || x || y`.
    P256 {
        point: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    key: Key,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

fn b64(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = v
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("a key without {name}"))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("a key whose {name} is not base64url"))
}

impl Jwk {
    /// One key of a set: `None` for a key this server does not verify with (another type or
    /// curve, or not for signatures); an error for a signing key that is malformed, weak, or
    /// private.
    fn parse(v: &Value) -> Result<Option<Jwk>, String> {
        let text = |k: &str| v.get(k).and_then(Value::as_str);
        if v.get("d").is_some() {
            return Err("a private key (it has \"d\"): register only public keys".into());
        }
        if text("use").is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        let key = match (text("kty"), text("alg")) {
            (Some("RSA"), None | Some("RS256")) => {
                let mut n = b64(v, "n")?;
                let lead = n.iter().take_while(|b| **b == 0).count();
                n.drain(..lead);
                // Bounded above too: every assertion may be tried against every key of a set.
                if !(2048..=4096).contains(&(n.len() * 8)) {
                    return Err(format!(
                        "an RSA key of {} bits (2048 to 4096 are accepted)",
                        n.len() * 8
                    ));
                }
                Key::Rsa { n, e: b64(v, "e")? }
            }
            (Some("EC"), None | Some("ES256")) if text("crv") == Some("P-256") => {
                let (x, y) = (b64(v, "x")?, b64(v, "y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("a P-256 key whose x or y is not 32 bytes".into());
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Key::P256 { point }
            }
            _ => return Ok(None),
        };
        Ok(Some(Jwk {
            kid: text("kid").map(str::to_owned),
            key,
        }))
    }

    /// The one algorithm this key verifies.
    pub fn alg(&self) -> Alg {
        match self.key {
            Key::Rsa { .. } => Alg::Rs256,
            Key::P256 { .. } => Alg::Es256,
        }
    }

    /// Whether `signature` is this key's `alg` signature of `message` (for ES256, JWS's fixed
    /// `r || s`).
    pub fn verifies(&self, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        match (&self.key, alg) {
            (Key::Rsa { n, e }, Alg::Rs256) => RsaPublicKeyComponents {
                n: n.as_slice(),
                e: e.as_slice(),
            }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok(),
            (Key::P256 { point }, Alg::Es256) => {
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .is_ok()
            }
            _ => false,
        }
    }
}

impl JwkSet {
    /// A JWK Set (`{"keys": […]}`) with at least one key this server verifies with.
    pub fn parse(v: &Value) -> Result<JwkSet, String> {
        let keys = v
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("not a JWK Set: no \"keys\" array")?;
        if keys.len() > MAX_KEYS {
            return Err(format!("{} keys (at most {MAX_KEYS})", keys.len()));
        }
        let mut usable = Vec::new();
        for key in keys {
            if let Some(k) = Jwk::parse(key)? {
                usable.push(k);
            }
        }
        if usable.is_empty() {
            return Err("no RSA or P-256 signing key".into());
        }
        Ok(JwkSet { keys: usable })
    }

    pub fn from_json(text: &str) -> Result<JwkSet, String> {
        let v: Value = serde_json::from_str(text).map_err(|_| "not JSON".to_owned())?;
        JwkSet::parse(&v)
    }

    /// Whether the set has a key for `alg`.
    pub fn has(&self, alg: Alg) -> bool {
        self.keys.iter().any(|k| k.alg() == alg)
    }

    /// Whether the set has a key `kid` names (any key, when the header names none).
    pub fn knows(&self, kid: Option<&str>) -> bool {
        self.candidates(kid).next().is_some()
    }

    /// Whether a key of the set that `kid` may name signed `message` with `alg`. Without a
    /// `kid` every key is tried, as an issuer with one key often leaves it out.
    pub fn verifies(&self, kid: Option<&str>, alg: Alg, message: &[u8], signature: &[u8]) -> bool {
        self.candidates(kid)
            .any(|key| key.verifies(alg, message, signature))
    }

    fn candidates<'a>(&'a self, kid: Option<&'a str>) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys
            .iter()
            .filter(move |k| kid.is_none() || k.kid.as_deref() == kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn modulus(bits: usize) -> String {
        let mut n = vec![0xC5u8; bits / 8];
        n[bits / 8 - 1] |= 1;
        URL_SAFE_NO_PAD.encode(n)
    }

    #[test]
    fn keeps_rsa_and_p256_signing_keys_and_passes_over_others() {
        let coord = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let set = JwkSet::parse(&json!({"keys": [
            {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"},
            {"kty": "EC", "crv": "P-256", "kid": "e1", "x": coord, "y": coord},
            {"kty": "RSA", "use": "enc", "n": modulus(2048), "e": "AQAB"},
            {"kty": "RSA", "alg": "RS512", "n": modulus(2048), "e": "AQAB"},
            {"kty": "RSA", "kid": "k1", "alg": "RS256", "n": modulus(2048), "e": "AQAB"},
        ]}))
        .unwrap();
        assert_eq!(set.keys.len(), 2);
        assert!(set.knows(Some("k1")) && set.knows(Some("e1")) && !set.knows(Some("k2")));
        assert!(set.has(Alg::Rs256) && set.has(Alg::Es256));
        let short = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]});
        assert!(JwkSet::parse(&short).unwrap_err().contains("32 bytes"));
    }

    /// A P-256 key made here signs; its JWK verifies ES256 and nothing else.
    #[test]
    fn es256_signatures_verify_with_the_p256_key_only() {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let set = JwkSet::parse(&json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "e1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        }]}))
        .unwrap();
        let sig = pair.sign(&rng, b"signed").unwrap();
        assert!(set.verifies(Some("e1"), Alg::Es256, b"signed", sig.as_ref()));
        assert!(!set.verifies(Some("e1"), Alg::Es256, b"other", sig.as_ref()));
        assert!(!set.verifies(Some("e1"), Alg::Rs256, b"signed", sig.as_ref()));
        assert!(!set.verifies(Some("e2"), Alg::Es256, b"signed", sig.as_ref()));
    }

    #[test]
    fn refuses_weak_private_and_empty_sets() {
        let weak = json!({"keys": [{"kty": "RSA", "n": modulus(1024), "e": "AQAB"}]});
        assert!(JwkSet::parse(&weak).unwrap_err().contains("1024 bits"));
        let huge = json!({"keys": [{"kty": "RSA", "n": modulus(8192), "e": "AQAB"}]});
        assert!(JwkSet::parse(&huge).unwrap_err().contains("8192 bits"));
        let private = json!({"keys": [{"kty": "RSA", "n": modulus(2048), "e": "AQAB", "d": "AQ"}]});
        assert!(JwkSet::parse(&private).unwrap_err().contains("private key"));
        let none = json!({"keys": [{"kty": "oct", "k": "AA"}]});
        assert!(
            JwkSet::parse(&none)
                .unwrap_err()
                .contains("no RSA or P-256 signing key")
        );
        assert!(JwkSet::parse(&json!({"key": []})).is_err());
        // Control: the same key without its private part is kept.
        let public = json!({"keys": [{"kty": "RSA", "n": modulus(2048), "e": "AQAB"}]});
        assert!(JwkSet::parse(&public).is_ok());
    }
}
