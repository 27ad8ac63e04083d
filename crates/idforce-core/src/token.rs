//! Credentials idforce mints, in Salesforce's shapes (spec §5), and the keyed hash under
//! which each is stored: the store never holds a usable token, code or client secret.

use aws_lc_rs::hmac;
use base64::Engine;
use subtle::ConstantTimeEq;

use crate::model::Millis;
use crate::sfid::SfId;

/// The alphabet of Salesforce session ids and refresh tokens: `[A-Za-z0-9._]`, 64 symbols,
/// so each random byte's low six bits pick one without bias.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._";

fn random_chars(out: &mut String, n: usize) {
    let mut buf = vec![0u8; n];
    // The OS random source failing is not something a request can recover from.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("operating system random source");
    out.extend(buf.iter().map(|b| ALPHABET[(b & 63) as usize] as char));
}

/// Lower-case hex of `bytes`, in one allocation (ids, `jti`s and digest prefixes).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buf).expect("operating system random source");
    buf
}

/// `<15-char org id>!AR<11 chars: issue time><83 random chars>`: 112 characters, as real
/// session ids (`AR` is one of the two suffix starts Salesforce uses; 498 random bits).
///
/// The issue time leads the token's storage key (see [`CredentialHasher::session_key`]), so
/// new sessions land at the end of every index instead of on a random page: an insert dirties
/// the pages the previous insert dirtied, and a group commit writes a few pages, not one per
/// token. The time is no secret: the token response says it (`issued_at`).
pub fn mint_access_token(org: &SfId, now: Millis) -> String {
    let mut s = String::with_capacity(112);
    s.push_str(org.as15());
    s.push_str(ORDERED_MARK);
    push_ordering(&mut s, now.max(0) as u64);
    random_chars(&mut s, 94 - ORDERING_CHARS);
    s
}

/// After the org id: tokens that carry their issue time (`!AQ` tokens, minted before, do not).
const ORDERED_MARK: &str = "!AR";
/// 11 characters of 6 bits hold a u64.
const ORDERING_CHARS: usize = 11;

fn push_ordering(out: &mut String, v: u64) {
    for i in (0..ORDERING_CHARS).rev() {
        out.push(ALPHABET[((v >> (6 * i)) & 63) as usize] as char);
    }
}

fn alphabet_index(b: u8) -> Option<u64> {
    let i = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'.' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u64::from(i))
}

/// The issue time an `!AR` access token carries, if it is one.
fn ordering_of(token: &str) -> Option<u64> {
    let b = token.as_bytes();
    if b.len() != 112 || b.get(15..18) != Some(ORDERED_MARK.as_bytes()) {
        return None;
    }
    let chars = &b[18..18 + ORDERING_CHARS];
    // The first character holds only the top 4 bits.
    if alphabet_index(chars[0])? >= 16 {
        return None;
    }
    chars
        .iter()
        .try_fold(0u64, |v, &c| Some((v << 6) | alphabet_index(c)?))
}

/// `5Aep861<80 chars>`: 87 characters.
pub fn mint_refresh_token() -> String {
    let mut s = String::from("5Aep861");
    random_chars(&mut s, 80);
    s
}

/// `aPrx<70 chars>==`: 76 characters; the `==` makes clients URL-encode it, as they must.
pub fn mint_authorization_code() -> String {
    let mut s = String::from("aPrx");
    random_chars(&mut s, 70);
    s.push_str("==");
    s
}

/// `3MVG9<80 chars>`: a consumer key.
pub fn mint_client_id() -> String {
    let mut s = String::from("3MVG9");
    random_chars(&mut s, 80);
    s
}

/// 24 letters and digits, the shape of a Salesforce security token (appended to passwords, so
/// nothing else). Bytes past the alphabet's last multiple are drawn again: no letter is likelier.
pub fn mint_security_token() -> String {
    const LETTERS: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        for b in random_bytes::<32>() {
            if b < 248 && out.len() < 24 {
                out.push(LETTERS[usize::from(b % 62)] as char);
            }
        }
    }
    out
}

/// 64 upper-case hex digits (256 bits), the shape of a Salesforce consumer secret.
pub fn mint_client_secret() -> String {
    random_bytes::<32>()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// A keyed SHA-256 (HMAC) of a credential. The key lives apart from the rows it protects, so
/// rows alone give neither the credential nor a way to test guesses against it.
#[derive(Clone)]
pub struct CredentialHasher {
    key: hmac::Key,
}

pub type Digest = [u8; 32];

impl CredentialHasher {
    pub fn new(key: &[u8]) -> Self {
        CredentialHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    pub fn digest(&self, credential: &str) -> Digest {
        let tag = hmac::sign(&self.key, credential.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The storage key of an access token: for `!AR` tokens its issue time (8 bytes, big
    /// endian, so keys sort by age) and 24 bytes of the keyed hash; for anything else the
    /// whole keyed hash. 192 keyed bits still make a key unguessable and unique.
    pub fn session_key(&self, access_token: &str) -> Digest {
        let mut key = self.digest(access_token);
        if let Some(ordering) = ordering_of(access_token) {
            key.copy_within(0..24, 8);
            key[..8].copy_from_slice(&ordering.to_be_bytes());
        }
        key
    }

    /// A short keyed digest of what a client sent where a name belongs (an unknown
    /// username), fit for a log line: the same name gives the same tag on this server, and
    /// a password pasted into the username field is not written down.
    pub fn log_tag(&self, sent: &str) -> String {
        let tag = hmac::sign(&self.key, format!("log-tag\0{sent}").as_bytes());
        let hex: String = tag.as_ref()[..6]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("#{hex}")
    }

    /// Constant-time check of a presented credential against a stored digest.
    pub fn matches(&self, presented: &str, stored: &[u8]) -> bool {
        self.digest(presented).ct_eq(stored).into()
    }
}

/// The token response `signature`: base64(HMAC-SHA256(client secret, id + issued_at)).
pub fn response_signature(client_secret: &str, id: &str, issued_at: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, client_secret.as_bytes());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(id.as_bytes());
    ctx.update(issued_at.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ctx.sign().as_ref())
}

/// Whether a string has the shape of an access token minted here (cheap pre-check that
/// spares the store lookups for garbage).
pub fn looks_like_access_token(s: &str) -> bool {
    (s.len() == 112 && s.as_bytes().get(15) == Some(&b'!')) || looks_like_jwt(s)
}

/// A compact JWS (a JWT access token): `eyJ…` and three base64url parts.
pub fn looks_like_jwt(s: &str) -> bool {
    s.len() < 8192
        && s.starts_with("eyJ")
        && s.split('.').count() == 3
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

pub fn looks_like_refresh_token(s: &str) -> bool {
    s.len() == 87 && s.starts_with("5Aep861")
}

/// A compact RS256 JWS of `claims` under `header` (whose `alg` the caller sets to RS256),
/// signed with `pair`: the one way idforce signs a JWT, with its keys or an app's.
pub fn sign_rs256(
    pair: &aws_lc_rs::signature::RsaKeyPair,
    header: &serde_json::Value,
    claims: &serde_json::Value,
) -> Option<String> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0u8; pair.public_modulus_len()];
    // aws-lc-rs signs without the random generator (it is there for ring's API).
    pair.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .ok()?;
    Some(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sfid::{SfId, prefix};

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    fn in_alphabet(s: &str) -> bool {
        s.bytes().all(|b| ALPHABET.contains(&b))
    }

    #[test]
    fn shapes_match_salesforce() {
        let org = SfId::mint(prefix::ORG, 7);
        let at = mint_access_token(&org, 1_700_000_000_123);
        assert_eq!(at.len(), 112);
        assert!(at.starts_with(&format!("{}!AR", org.as15())));
        assert!(in_alphabet(&at[16..]));
        assert!(looks_like_access_token(&at));

        let rt = mint_refresh_token();
        assert_eq!(rt.len(), 87);
        assert!(rt.starts_with("5Aep861") && in_alphabet(&rt));

        let code = mint_authorization_code();
        assert_eq!(code.len(), 76);
        assert!(code.starts_with("aPrx") && code.ends_with("=="));

        assert_eq!(mint_client_id().len(), 85);
        let secret = mint_client_secret();
        assert_eq!(secret.len(), 64);
        assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(mint_refresh_token(), mint_refresh_token());
    }

    #[test]
    fn session_keys_sort_by_issue_time() {
        let hasher = CredentialHasher::new(b"key");
        let org = SfId::mint(prefix::ORG, 7);
        let times = [0, 1, 63, 64, 1_700_000_000_123, 1_700_000_000_124, i64::MAX];
        let keys: Vec<Digest> = times
            .iter()
            .map(|&t| {
                let token = mint_access_token(&org, t);
                assert_eq!(ordering_of(&token), Some(t as u64));
                let key = hasher.session_key(&token);
                assert_eq!(key[8..], hasher.digest(&token)[..24]);
                key
            })
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        // Two tokens of the same millisecond differ in their keyed part.
        let (a, b) = (mint_access_token(&org, 5), mint_access_token(&org, 5));
        assert_ne!(hasher.session_key(&a), hasher.session_key(&b));
    }

    #[test]
    fn tokens_without_an_issue_time_keep_the_whole_hash() {
        let hasher = CredentialHasher::new(b"key");
        // An `!AQ` token minted before issue times were carried, and malformed `!AR` ones.
        let org = SfId::mint(prefix::ORG, 7).as15().to_owned();
        let legacy = format!("{org}!AQ{}", "x".repeat(94));
        let top_bits_set = format!("{org}!ARz{}", "A".repeat(93));
        let bad_char = format!("{org}!ARA-{}", "A".repeat(92));
        for token in [legacy, top_bits_set, bad_char, "short".to_owned()] {
            assert_eq!(ordering_of(&token), None, "{token}");
            assert_eq!(hasher.session_key(&token), hasher.digest(&token));
        }
    }

    #[test]
    fn keyed_digest_depends_on_key() {
        let a = CredentialHasher::new(b"one key");
        let b = CredentialHasher::new(b"another key");
        assert_ne!(a.digest("token"), b.digest("token"));
        assert!(a.matches("token", &a.digest("token")));
        assert!(!a.matches("token2", &a.digest("token")));
        assert!(!a.matches("token", &[0u8; 31]));
    }

    #[test]
    fn signature_matches_known_value() {
        // printf %s "https://x/id/a/b1278448101416" | openssl dgst -sha256 -hmac secret -binary | base64
        let sig = response_signature("secret", "https://x/id/a/b", "1278448101416");
        assert_eq!(sig, "cC+vf8rn6Ho8wOSLt1XHfXr7U1XjQWGws1PUzyTQalE=");
        assert_ne!(
            sig,
            response_signature("secret2", "https://x/id/a/b", "1278448101416")
        );
    }
}
