//! JWT bearer assertions (RFC 7523) as Salesforce accepts them, and as real clients build
//! them (spec §3.6, §12.5): RS256 only, `aud` in several spellings, `exp` in seconds,
//! milliseconds or as a numeric string.

use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::CertificateDer;
use serde_json::Value;

use crate::error::OAuthError;
use crate::model::Millis;
use crate::token::Digest;

/// Clock skew tolerated on `exp` (past) and `nbf` (future).
pub const CLOCK_SKEW_SECS: i64 = 60;

/// A compact JWS split into its parts, not yet trusted.
#[derive(Debug)]
pub struct Assertion<'a> {
    signing_input: &'a str,
    signature: Vec<u8>,
    /// The header's `kid`: which of a client's registered keys signed it.
    pub kid: Option<String>,
    pub claims: Claims,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: Vec<String>,
    /// Expiry in seconds since the epoch, normalised from whatever unit the client used.
    pub exp: i64,
    /// Not before, in seconds, when the assertion says.
    pub nbf: Option<i64>,
    /// The assertion's id, when it has one (a client assertion must).
    pub jti: Option<String>,
}

fn decode_part(part: &str) -> Result<Vec<u8>, OAuthError> {
    // Some clients pad; base64url without padding is the rule, so strip it.
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| malformed("a part that is not base64url"))
}

fn malformed(why: &'static str) -> OAuthError {
    OAuthError::invalid_assertion().because(why)
}

/// Parses and checks the header (`alg` must be RS256); claims are read but not yet checked.
pub fn parse(compact: &str) -> Result<Assertion<'_>, OAuthError> {
    let mut parts = compact.trim().split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not a compact JWS of three parts"));
    };
    let header: Value = serde_json::from_slice(&decode_part(h)?)
        .map_err(|_| malformed("a header that is not JSON"))?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(malformed("an alg other than RS256"));
    }
    if header.get("crit").is_some() {
        return Err(malformed("a crit header"));
    }
    let payload: Value = serde_json::from_slice(&decode_part(p)?)
        .map_err(|_| malformed("claims that are not JSON"))?;
    let claims = claims_of(&payload)
        .ok_or_else(|| malformed("claims without a string iss, sub and aud and a numeric exp"))?;
    let signing_input = &compact.trim()[..h.len() + 1 + p.len()];
    Ok(Assertion {
        signing_input,
        signature: decode_part(s)?,
        kid: header.get("kid").and_then(Value::as_str).map(str::to_owned),
        claims,
    })
}

fn claims_of(payload: &Value) -> Option<Claims> {
    let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
    let iss = text("iss")?;
    // `prn` is the draft-era name of `sub`, still sent by old clients.
    let sub = text("sub").or_else(|| text("prn"))?;
    let aud = match payload.get("aud")? {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => return None,
    };
    let exp = normalise_exp(payload.get("exp")?)?;
    // A present `nbf` must be readable: an assertion whose start cannot be known is refused.
    let nbf = match payload.get("nbf") {
        None | Some(Value::Null) => None,
        Some(v) => Some(normalise_exp(v)?),
    };
    Some(Claims {
        iss,
        sub,
        aud,
        exp,
        nbf,
        jti: text("jti"),
    })
}

/// `exp` (or `nbf`) as seconds. Above 10^11 (year 5138 in seconds) it can only be milliseconds, which
/// is what the sf CLI sends.
fn normalise_exp(v: &Value) -> Option<i64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    let secs = if n > 1e11 { n / 1000.0 } else { n };
    Some(secs as i64)
}

/// An assertion's key in the one-time-use ledger: when its record expires (milliseconds, 8
/// bytes big endian), then 24 bytes of the SHA-256 of its canonical text. Assertions are
/// recorded in about the order they expire, so the ledger grows at its end rather than on a
/// random page per grant.
///
/// The text is canonical so that a replay cannot pass for a new assertion by being spelled
/// differently: the space around it and the padding of its signature (which `parse` strips)
/// are not part of it. Its other characters are signed or are the strictly decoded signature.
pub fn ledger_key(compact: &str, expires_at: Millis) -> Digest {
    let canonical = compact.trim().trim_end_matches('=');
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&expires_at.max(0).to_be_bytes());
    key[8..].copy_from_slice(&hash.as_ref()[..24]);
    key
}

impl Assertion<'_> {
    /// Verifies the RS256 signature with the public key of the app's X.509 certificate.
    pub fn verify_signature(&self, certificate_der: &[u8]) -> Result<(), OAuthError> {
        public_key(certificate_der)?
            .verify_sig(self.signing_input.as_bytes(), &self.signature)
            .map_err(|_| {
                malformed(
                    "an assertion signed with a key that does not match the app's certificate",
                )
            })
    }
}

impl Assertion<'_> {
    /// Whether a key of `keys` (the one the header's `kid` names) signed it.
    pub fn signed_by(&self, keys: &crate::jwks::JwkSet) -> bool {
        keys.verifies(
            self.kid.as_deref(),
            crate::jwks::Alg::Rs256,
            self.signing_input.as_bytes(),
            &self.signature,
        )
    }
}

/// Certificates' public keys, parsed once. Reading the X.509 and setting up the RSA modulus
/// for Montgomery arithmetic cost about as much as the verification itself, and an app's
/// certificate changes rarely. Keyed by the certificate itself, so a new certificate is simply
/// a miss; the oldest of `CACHED_KEYS` makes room.
static PUBLIC_KEYS: Mutex<Vec<(Vec<u8>, Arc<ParsedPublicKey>)>> = Mutex::new(Vec::new());
const CACHED_KEYS: usize = 64;

fn public_key(certificate_der: &[u8]) -> Result<Arc<ParsedPublicKey>, OAuthError> {
    let cached = |keys: &[(Vec<u8>, Arc<ParsedPublicKey>)]| {
        keys.iter()
            .find(|(der, _)| der.as_slice() == certificate_der)
            .map(|(_, key)| key.clone())
    };
    // A panic elsewhere while the lock was held leaves the list as it was: still usable.
    let lock = || PUBLIC_KEYS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(key) = cached(&lock()) {
        return Ok(key);
    }
    let der = CertificateDer::from(certificate_der);
    let cert =
        webpki::EndEntityCert::try_from(&der).map_err(|_| OAuthError::invalid_assertion())?;
    let key = ParsedPublicKey::new(
        &RSA_PKCS1_2048_8192_SHA256,
        cert.subject_public_key_info().as_ref(),
    )
    .map(Arc::new)
    .map_err(|_| OAuthError::invalid_assertion())?;
    let mut keys = lock();
    if cached(&keys).is_none() {
        if keys.len() >= CACHED_KEYS {
            keys.remove(0);
        }
        keys.push((certificate_der.to_vec(), key.clone()));
    }
    Ok(key)
}

impl Claims {
    /// Refuses an assertion whose `exp` has passed, or whose `nbf` has not come, each with
    /// the same little skew. Salesforce does not bound `exp` from above, and clients rely on
    /// that.
    pub fn check_expiry(&self, now_secs: i64) -> Result<(), OAuthError> {
        if self.exp.saturating_add(CLOCK_SKEW_SECS) < now_secs {
            let why = format!("an assertion that expired {} s ago", now_secs - self.exp);
            return Err(OAuthError::expired_code().because(why));
        }
        if let Some(nbf) = self
            .nbf
            .filter(|nbf| nbf.saturating_sub(CLOCK_SKEW_SECS) > now_secs)
        {
            let why = format!(
                "an assertion not valid for another {} s (nbf)",
                nbf - now_secs
            );
            return Err(OAuthError::invalid_assertion().because(why));
        }
        Ok(())
    }

    /// Accepts the assertion if any `aud` value is one of the `accepted` audiences, compared
    /// without a trailing slash and without regard to letter case.
    pub fn check_audience(&self, accepted: &[String]) -> Result<(), OAuthError> {
        let norm = |s: &str| s.trim_end_matches('/').to_ascii_lowercase();
        let ok = self
            .aud
            .iter()
            .any(|a| accepted.iter().any(|b| norm(a) == norm(b)));
        if ok {
            Ok(())
        } else {
            let why = format!("an assertion for {:?}, not this server", self.aud);
            Err(OAuthError::audience_invalid().because(why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: &str) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    fn compact(header: &str, claims: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(claims), b64("sig"))
    }

    #[test]
    fn exp_in_any_unit() {
        let ms = compact(
            r#"{"alg":"RS256","typ":"JWT"}"#,
            r#"{"iss":"c","sub":"u","aud":"https://x/","exp":1700000000300}"#,
        );
        assert_eq!(parse(&ms).expect("parses").claims.exp, 1_700_000_000);
        let s = compact(
            r#"{"alg":"RS256"}"#,
            r#"{"iss":"c","prn":"u","aud":["a","b"],"exp":"1700000000"}"#,
        );
        let c = parse(&s).expect("parses").claims;
        assert_eq!(
            (c.exp, c.sub.as_str(), c.aud.len()),
            (1_700_000_000, "u", 2)
        );
    }

    #[test]
    fn other_algorithms_and_garbage_are_refused() {
        for bad in [
            compact(
                r#"{"alg":"HS256"}"#,
                r#"{"iss":"c","sub":"u","aud":"a","exp":1}"#,
            ),
            compact(
                r#"{"alg":"none"}"#,
                r#"{"iss":"c","sub":"u","aud":"a","exp":1}"#,
            ),
            compact(r#"{"alg":"RS256"}"#, r#"{"iss":"c","aud":"a","exp":1}"#),
            compact(
                r#"{"alg":"RS256"}"#,
                r#"{"iss":"c","sub":"u","aud":"a","exp":"soon"}"#,
            ),
            "a.b".to_owned(),
            "a.b.c.d".to_owned(),
            "!!!.???.***".to_owned(),
            String::new(),
        ] {
            let err = parse(&bad).expect_err("refused");
            assert_eq!(err, OAuthError::invalid_assertion(), "{bad}");
        }
    }

    fn fixture_der(name: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../idforce/tests/fixtures/");
        let text = std::fs::read_to_string(format!("{path}{name}")).expect("fixture");
        let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("PEM body")
    }

    fn signed(claims: &str) -> String {
        use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
        let key = RsaKeyPair::from_pkcs8(&fixture_der("jwt.key")).expect("PKCS#8 key");
        let input = format!("{}.{}", b64(r#"{"alg":"RS256"}"#), b64(claims));
        let mut sig = vec![0; key.public_modulus_len()];
        let rng = aws_lc_rs::rand::SystemRandom::new();
        key.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
            .expect("signs");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn signatures_verify_with_the_certificate_parsed_once_and_only_with_it() {
        let certificate = fixture_der("jwt.crt");
        let good = signed(r#"{"iss":"c","sub":"u","aud":"a","exp":1}"#);
        for _ in 0..2 {
            // The first check parses the certificate, the second finds it parsed.
            assert_eq!(
                parse(&good).expect("parses").verify_signature(&certificate),
                Ok(())
            );
        }
        let (input, sig) = good.rsplit_once('.').expect("three parts");
        let tampered = format!("{}x.{sig}", input);
        let other_sig = signed(r#"{"iss":"c","sub":"v","aud":"a","exp":1}"#);
        let swapped = format!("{input}.{}", other_sig.rsplit_once('.').expect("parts").1);
        for bad in [tampered, swapped] {
            if let Ok(parsed) = parse(&bad) {
                assert_eq!(
                    parsed.verify_signature(&certificate),
                    Err(OAuthError::invalid_assertion())
                );
            }
        }
        // Not a certificate at all (nor cached as one).
        for _ in 0..2 {
            assert_eq!(
                parse(&good)
                    .expect("parses")
                    .verify_signature(b"not a certificate"),
                Err(OAuthError::invalid_assertion())
            );
        }
    }

    #[test]
    fn a_respelled_assertion_has_the_same_ledger_key() {
        let a = compact(
            r#"{"alg":"RS256"}"#,
            r#"{"iss":"c","sub":"u","aud":"a","exp":1}"#,
        );
        let key = ledger_key(&a, 5);
        for respelled in [format!("{a}="), format!("{a}=="), format!("\t{a} \r\n")] {
            assert_eq!(ledger_key(&respelled, 5), key, "{respelled:?}");
        }
        assert_ne!(ledger_key(&format!("{a}A"), 5), key);
        assert_ne!(ledger_key(&a, 6), key);
    }

    #[test]
    fn audience_spellings() {
        let c = Claims {
            iss: "c".into(),
            sub: "u".into(),
            aud: vec!["https://login.salesforce.com/".into()],
            exp: 10,
            nbf: None,
            jti: None,
        };
        assert!(
            c.check_audience(&["https://LOGIN.salesforce.com".into()])
                .is_ok()
        );
        assert_eq!(
            c.check_audience(&["https://test.salesforce.com".into()]),
            Err(OAuthError::audience_invalid())
        );
        assert!(c.check_expiry(10 + CLOCK_SKEW_SECS).is_ok());
        assert_eq!(
            c.check_expiry(11 + CLOCK_SKEW_SECS),
            Err(OAuthError::expired_code())
        );
    }

    #[test]
    fn not_before_is_honoured_with_the_same_skew() {
        let c = |nbf: Option<i64>| Claims {
            iss: "c".into(),
            sub: "u".into(),
            aud: vec!["a".into()],
            exp: 100_000,
            nbf,
            jti: None,
        };
        let now = 1_000;
        assert!(c(None).check_expiry(now).is_ok(), "no nbf");
        assert!(c(Some(now)).check_expiry(now).is_ok(), "valid from now");
        assert!(
            c(Some(now + CLOCK_SKEW_SECS)).check_expiry(now).is_ok(),
            "within the skew"
        );
        assert_eq!(
            c(Some(now + CLOCK_SKEW_SECS + 1)).check_expiry(now),
            Err(OAuthError::invalid_assertion()),
            "beyond the skew"
        );
        assert_eq!(
            c(Some(now + 86_400)).check_expiry(now),
            Err(OAuthError::invalid_assertion()),
            "a day ahead"
        );
        // In milliseconds, as for exp.
        let ms = compact(
            r#"{"alg":"RS256"}"#,
            r#"{"iss":"c","sub":"u","aud":"a","exp":1700000000,"nbf":1700000000000}"#,
        );
        assert_eq!(parse(&ms).expect("parses").claims.nbf, Some(1_700_000_000));
        let unreadable = compact(
            r#"{"alg":"RS256"}"#,
            r#"{"iss":"c","sub":"u","aud":"a","exp":1700000000,"nbf":"soon"}"#,
        );
        assert!(parse(&unreadable).is_err());
    }
}
