//! JSON Web Key Sets (RFC 7517) of the keys a client signs its `private_key_jwt` assertions
//! with, registered inline (`jwks`) or published at a URL (`jwks_uri`). Client assertions are
//! RS256 (as Salesforce's are), so only RSA signing keys are kept; other keys in a set are
//! passed over, since a client may publish keys for other uses beside them.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

/// The most keys a set may hold: a set is read at every assertion that names an unknown key.
pub const MAX_KEYS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    pub kid: Option<String>,
    n: Vec<u8>,
    e: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JwkSet {
    keys: Vec<Jwk>,
}

fn b64(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    let text = v
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("an RSA key without {name}"))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| format!("an RSA key whose {name} is not base64url"))
}

impl Jwk {
    /// One key of a set: `None` for a key this server does not verify with (not RSA, or not
    /// for signatures); an error for an RSA signing key that is malformed, weak, or private.
    fn parse(v: &Value) -> Result<Option<Jwk>, String> {
        let text = |k: &str| v.get(k).and_then(Value::as_str);
        if v.get("d").is_some() {
            return Err("a private key (it has \"d\"): register only public keys".into());
        }
        if text("kty") != Some("RSA")
            || text("use").is_some_and(|u| u != "sig")
            || text("alg").is_some_and(|a| a != "RS256")
        {
            return Ok(None);
        }
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
        Ok(Some(Jwk {
            kid: text("kid").map(str::to_owned),
            n,
            e: b64(v, "e")?,
        }))
    }

    /// Whether `signature` is this key's RS256 signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        RsaPublicKeyComponents {
            n: self.n.as_slice(),
            e: self.e.as_slice(),
        }
        .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
        .is_ok()
    }
}

impl JwkSet {
    /// A JWK Set (`{"keys": […]}`) with at least one RSA signing key.
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
            return Err("no RSA signing key (client assertions are signed with RS256)".into());
        }
        Ok(JwkSet { keys: usable })
    }

    pub fn from_json(text: &str) -> Result<JwkSet, String> {
        let v: Value = serde_json::from_str(text).map_err(|_| "not JSON".to_owned())?;
        JwkSet::parse(&v)
    }

    /// Whether the set has a key `kid` names (any key, when the header names none).
    pub fn knows(&self, kid: Option<&str>) -> bool {
        self.candidates(kid).next().is_some()
    }

    /// Whether a key of the set that `kid` may name signed `message`. Without a `kid` every key
    /// is tried, as a client with one key often leaves it out.
    pub fn verifies(&self, kid: Option<&str>, message: &[u8], signature: &[u8]) -> bool {
        self.candidates(kid)
            .any(|key| key.verifies(message, signature))
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
    fn keeps_rsa_signing_keys_and_passes_over_others() {
        let set = JwkSet::parse(&json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "RSA", "use": "enc", "n": modulus(2048), "e": "AQAB"},
            {"kty": "RSA", "kid": "k1", "alg": "RS256", "n": modulus(2048), "e": "AQAB"},
        ]}))
        .unwrap();
        assert_eq!(set.keys.len(), 1);
        assert!(set.knows(Some("k1")) && set.knows(None) && !set.knows(Some("k2")));
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
                .contains("no RSA signing key")
        );
        assert!(JwkSet::parse(&json!({"key": []})).is_err());
        // Control: the same key without its private part is kept.
        let public = json!({"keys": [{"kty": "RSA", "n": modulus(2048), "e": "AQAB"}]});
        assert!(JwkSet::parse(&public).is_ok());
    }
}
