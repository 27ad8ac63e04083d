//! PKCE as Salesforce clients use it (spec §3.2, §12.4): S256 only — a challenge sent
//! without a method means S256 — and verifiers outside RFC 7636's length limits are accepted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::error::{ErrorCode, OAuthError};

/// Checks the authorize request's `code_challenge_method`.
pub fn check_method(method: Option<&str>) -> Result<(), OAuthError> {
    match method {
        None | Some("S256") => Ok(()),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidRequest,
            "invalid code challenge method",
        )),
    }
}

pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(crate::grant::sha256(verifier.as_bytes()))
}

/// Verifies the token request's `code_verifier` against the stored challenge.
pub fn verify(challenge: &str, verifier: Option<&str>) -> Result<(), OAuthError> {
    let verifier = verifier.ok_or_else(|| {
        OAuthError::invalid_code_verifier().because("no code_verifier for a PKCE code")
    })?;
    let computed = challenge_of(verifier);
    // Some clients pad the challenge; compare without padding.
    let expected = challenge.trim_end_matches('=');
    if computed.as_bytes().ct_eq(expected.as_bytes()).into() {
        Ok(())
    } else {
        Err(OAuthError::invalid_code_verifier()
            .because("a code_verifier that does not hash to the code's challenge"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert_eq!(
            challenge_of(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(
            verify(
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                Some(verifier)
            )
            .is_ok()
        );
        assert!(verify("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", Some("x")).is_err());
        assert!(verify("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", None).is_err());
    }

    #[test]
    fn only_s256() {
        assert!(check_method(None).is_ok());
        assert!(check_method(Some("S256")).is_ok());
        assert!(check_method(Some("plain")).is_err());
    }
}
