//! Tokens another issuer signed, as token exchange receives them (`subject_token` of type
//! `jwt` or `id_token`): a compact JWS (RS256 or ES256) verified with the issuer's keys — a
//! JWK Set, or an X.509 certificate's key — and held to its `iss`, `aud`, `exp` and `nbf`.
//! Unlike JWT bearer assertions (`assertion.rs`, Salesforce's rules), these follow RFC 7519 as
//! identity providers issue them: `exp` in seconds, `aud` a string or a list.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::CertificateDer;
use serde_json::{Map, Value};

use crate::assertion::CLOCK_SKEW_SECS;
use crate::jwks::{Alg, JwkSet};

/// The longest token read: Salesforce takes subject tokens of up to 10,000 characters.
pub const MAX_LEN: usize = 10_000;

/// A compact JWS split into its parts, not yet trusted.
#[derive(Debug)]
pub struct ExternalJwt<'a> {
    signing_input: &'a str,
    signature: Vec<u8>,
    pub alg: Alg,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
}

fn part(p: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(p.trim_end_matches('='))
        .map_err(|_| "a part that is not base64url".to_owned())
}

/// Splits and reads a token: its header must name RS256 or ES256 and no `crit`.
pub fn parse(compact: &str) -> Result<ExternalJwt<'_>, String> {
    let compact = compact.trim();
    if compact.len() > MAX_LEN {
        return Err(format!("a token longer than {MAX_LEN} characters"));
    }
    let mut parts = compact.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("not a compact JWS of three parts".into());
    };
    let header: Value =
        serde_json::from_slice(&part(h)?).map_err(|_| "a header that is not JSON".to_owned())?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(Alg::parse)
        .ok_or("an alg other than RS256 or ES256")?;
    if header.get("crit").is_some() {
        return Err("a crit header".into());
    }
    let claims = match serde_json::from_slice(&part(p)?) {
        Ok(Value::Object(claims)) => claims,
        _ => return Err("claims that are not a JSON object".into()),
    };
    Ok(ExternalJwt {
        signing_input: &compact[..h.len() + 1 + p.len()],
        signature: part(s)?,
        alg,
        kid: header.get("kid").and_then(Value::as_str).map(str::to_owned),
        claims,
    })
}

impl ExternalJwt<'_> {
    /// Whether a key of `keys` (the one `kid` names, if any) signed it.
    pub fn signed_by(&self, keys: &JwkSet) -> bool {
        keys.verifies(
            self.kid.as_deref(),
            self.alg,
            self.signing_input.as_bytes(),
            &self.signature,
        )
    }

    /// Whether the key of this X.509 certificate (RSA, or P-256) signed it.
    pub fn signed_by_certificate(&self, der: &[u8]) -> bool {
        let der = CertificateDer::from(der);
        let Ok(cert) = webpki::EndEntityCert::try_from(&der) else {
            return false;
        };
        let spki = cert.subject_public_key_info();
        let algorithm: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match self.alg {
            Alg::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
            Alg::Es256 => &ECDSA_P256_SHA256_FIXED,
        };
        ParsedPublicKey::new(algorithm, spki.as_ref()).is_ok_and(|key| {
            key.verify_sig(self.signing_input.as_bytes(), &self.signature)
                .is_ok()
        })
    }

    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// Holds the (verified) claims to what the receiving handler expects: this `issuer`
    /// exactly, `audience` among `aud`, unexpired at `now` (seconds), and not before its `nbf`,
    /// within the clock skew JWT bearer assertions are allowed.
    pub fn check(&self, issuer: &str, audience: &str, now: i64) -> Result<(), String> {
        if self.claim("iss") != Some(issuer) {
            return Err(format!("iss {:?} is not {issuer:?}", self.claim("iss")));
        }
        let audiences: Vec<&str> = match self.claims.get("aud") {
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.contains(&audience) {
            return Err(format!("aud {audiences:?} does not name {audience:?}"));
        }
        let seconds = |name: &str| self.claims.get(name).and_then(Value::as_i64);
        let exp = seconds("exp").ok_or("no numeric exp")?;
        if exp + CLOCK_SKEW_SECS <= now {
            return Err(format!("expired at {exp}"));
        }
        match self.claims.get("nbf") {
            None | Some(Value::Null) => {}
            Some(_) => {
                let nbf = seconds("nbf").ok_or("an nbf that is not a number")?;
                if nbf - CLOCK_SKEW_SECS > now {
                    return Err(format!("not valid before {nbf}"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    };
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn pem(name: &str) -> Vec<u8> {
        let text = match name {
            "jwt.key" => include_str!("../../idforce/tests/fixtures/jwt.key"),
            _ => include_str!("../../idforce/tests/fixtures/jwt.crt"),
        };
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    fn input(header: &Value, claims: &Value) -> String {
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    fn rs256(claims: &Value) -> String {
        let pair = RsaKeyPair::from_pkcs8(&pem("jwt.key")).unwrap();
        let input = input(&json!({"alg": "RS256", "kid": "r1"}), claims);
        let mut sig = vec![0; pair.public_modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn claims() -> Value {
        json!({"iss": "https://idp.example", "aud": ["api://idforce", "other"], "sub": "u1",
               "exp": NOW + 300, "nbf": NOW - 10, "email": "alice@acme.test"})
    }

    #[test]
    fn an_rs256_token_verifies_with_the_issuers_certificate_and_holds_its_claims() {
        let token = rs256(&claims());
        let jwt = parse(&token).unwrap();
        assert!(jwt.signed_by_certificate(&pem("jwt.crt")));
        assert_eq!(jwt.claim("email"), Some("alice@acme.test"));
        jwt.check("https://idp.example", "api://idforce", NOW)
            .unwrap();
        let refused = |iss: &str, aud: &str, now: i64| jwt.check(iss, aud, now).unwrap_err();
        assert!(refused("https://other.example", "api://idforce", NOW).contains("iss"));
        assert!(refused("https://idp.example", "api://else", NOW).contains("aud"));
        assert!(refused("https://idp.example", "api://idforce", NOW + 400).contains("expired"));
        assert!(refused("https://idp.example", "api://idforce", NOW - 100).contains("before"));
        // Tampered claims: the signature no longer holds.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"iss": "https://idp.example"}).to_string());
        parts[1] = &forged;
        assert!(
            !parse(&parts.join("."))
                .unwrap()
                .signed_by_certificate(&pem("jwt.crt"))
        );
    }

    #[test]
    fn an_es256_token_verifies_with_the_issuers_jwk() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        let keys = JwkSet::parse(&json!({"keys": [{
            "kty": "EC", "crv": "P-256", "kid": "e1",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..]),
        }]}))
        .unwrap();
        let input = input(&json!({"alg": "ES256", "kid": "e1"}), &claims());
        let sig = pair.sign(&rng, input.as_bytes()).unwrap();
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()));
        let jwt = parse(&token).unwrap();
        assert_eq!(jwt.alg, Alg::Es256);
        assert!(jwt.signed_by(&keys));
        // Control on the same token: an RSA certificate does not verify it.
        assert!(!jwt.signed_by_certificate(&pem("jwt.crt")));
    }

    #[test]
    fn tokens_this_server_does_not_verify_are_refused_before_their_signature() {
        let none = input(&json!({"alg": "none"}), &claims());
        assert!(parse(&format!("{none}.")).unwrap_err().contains("alg"));
        let hs = input(&json!({"alg": "HS256"}), &claims());
        assert!(parse(&format!("{hs}.AA")).unwrap_err().contains("alg"));
        let crit = input(&json!({"alg": "RS256", "crit": ["x"]}), &claims());
        assert!(parse(&format!("{crit}.AA")).unwrap_err().contains("crit"));
        assert!(parse("a.b").is_err());
        assert!(
            parse(&"a".repeat(MAX_LEN + 1))
                .unwrap_err()
                .contains("longer")
        );
        // Control: the same claims, RS256.
        assert!(parse(&rs256(&claims())).is_ok());
    }
}
