//! RS256 assertions for the JWT bearer flow (spec §3.6), signed with ring.

use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use crate::Error;

/// Says which file was given instead: the certificate (the half the connected app holds) is
/// the usual mix-up.
fn key_error(pem: &[u8], e: rustls_pki_types::pem::Error) -> Error {
    use rustls_pki_types::CertificateDer;
    let holds_certificate = CertificateDer::pem_slice_iter(pem).any(|c| c.is_ok());
    Error::Key(match e {
        rustls_pki_types::pem::Error::NoItemsFound if holds_certificate => "this PEM holds a certificate, not a private key: sign with the private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY); the certificate is what the connected app holds".into(),
        rustls_pki_types::pem::Error::NoItemsFound => "no private key in it (expected BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)".into(),
        e => format!("not a readable PEM private key: {e}"),
    })
}

/// A signed assertion: `iss` the consumer key, `sub` the username, `aud` the login host,
/// `exp` (seconds since the epoch).
///
/// ```
/// # let pem = std::fs::read("../idforce/tests/fixtures/jwt.key").unwrap();
/// let jwt = idforce_client::assertion("3MVG9…", "alice@acme.test", "https://login.salesforce.com", &pem, 2_000_000_000)?;
/// assert_eq!(jwt.split('.').count(), 3);
/// # Ok::<(), idforce_client::Error>(())
/// ```
pub fn assertion(
    client_id: &str,
    username: &str,
    audience: &str,
    private_key_pem: &[u8],
    expires_at: i64,
) -> Result<String, Error> {
    let key = match PrivateKeyDer::from_pem_slice(private_key_pem)
        .map_err(|e| key_error(private_key_pem, e))?
    {
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        _ => return Err(Error::Key("not an RSA key".into())),
    }
    .map_err(|e| Error::Key(e.to_string()))?;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256"}"#);
    let claims = serde_json::json!({
        "iss": client_id,
        "sub": username,
        "aud": audience,
        "exp": expires_at,
    });
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{claims}");
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| Error::Key("signing failed".into()))?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}
