//! Salesforce record ids: 15-character case-sensitive ids and their 18-character
//! case-insensitive form (spec §5).

use std::fmt;

/// Key prefixes of the record kinds idforce issues.
pub mod prefix {
    pub const ORG: &str = "00D";
    pub const USER: &str = "005";
    pub const PROFILE: &str = "00e";
    pub const CONNECTED_APP: &str = "0H4";
    /// An Experience Cloud site (Salesforce's Network).
    pub const SITE: &str = "0DB";
}

const CHECKSUM_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The pod and reserved characters (4–6) of ids minted here; real orgs carry their instance's.
const POD: &str = "8d0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SfId([u8; 15]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an id has 15 or 18 characters")]
    Length,
    #[error("an id contains only letters and digits")]
    Alphabet,
    #[error("the 18-character checksum does not match")]
    Checksum,
}

impl SfId {
    /// Mints the `serial`-th id of a key prefix: `<prefix><pod><reserved><9 base62 digits>`.
    pub fn mint(key_prefix: &str, serial: u64) -> SfId {
        let mut digits = [b'0'; 9];
        let mut n = serial;
        for slot in digits.iter_mut().rev() {
            *slot = BASE62[(n % 62) as usize];
            n /= 62;
        }
        let mut raw = [0u8; 15];
        raw[..3].copy_from_slice(&key_prefix.as_bytes()[..3]);
        raw[3..6].copy_from_slice(POD.as_bytes());
        raw[6..].copy_from_slice(&digits);
        SfId(raw)
    }

    /// Parses a 15-character id exactly, or an 18-character id in any letter case: the
    /// checksum records which letters are upper case, so the 15-character id is restored.
    pub fn parse(s: &str) -> Result<SfId, IdError> {
        let b = s.as_bytes();
        if b.len() != 15 && b.len() != 18 {
            return Err(IdError::Length);
        }
        if !b.iter().all(u8::is_ascii_alphanumeric) {
            return Err(IdError::Alphabet);
        }
        let mut raw = [0u8; 15];
        raw.copy_from_slice(&b[..15]);
        if b.len() == 15 {
            return Ok(SfId(raw));
        }
        for chunk in 0..3 {
            let sum = b[15 + chunk].to_ascii_uppercase();
            let bits = CHECKSUM_ALPHABET
                .iter()
                .position(|&c| c == sum)
                .ok_or(IdError::Checksum)?;
            for j in 0..5 {
                let c = &mut raw[chunk * 5 + j];
                if bits & (1 << j) != 0 {
                    if !c.is_ascii_alphabetic() {
                        return Err(IdError::Checksum);
                    }
                    *c = c.to_ascii_uppercase();
                } else {
                    *c = c.to_ascii_lowercase();
                }
            }
        }
        Ok(SfId(raw))
    }

    pub fn as15(&self) -> &str {
        // Only ASCII alphanumerics ever enter `self.0`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn to18(&self) -> String {
        let mut out = String::with_capacity(18);
        out.push_str(self.as15());
        for c in checksum(&self.0) {
            out.push(c as char);
        }
        out
    }

    pub fn key_prefix(&self) -> &str {
        &self.as15()[..3]
    }

    pub fn is(&self, key_prefix: &str) -> bool {
        self.key_prefix() == key_prefix
    }
}

/// The three checksum characters of a 15-character id.
pub fn checksum(id15: &[u8; 15]) -> [u8; 3] {
    let mut out = [0u8; 3];
    for (chunk, slot) in out.iter_mut().enumerate() {
        let mut bits = 0usize;
        for j in 0..5 {
            if id15[chunk * 5 + j].is_ascii_uppercase() {
                bits |= 1 << j;
            }
        }
        *slot = CHECKSUM_ALPHABET[bits];
    }
    out
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to18())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn checksums_of_real_ids() {
        for (id15, id18) in [
            ("00D1r000000eX6d", "00D1r000000eX6dEAE"),
            ("00DB0000000ToZ3", "00DB0000000ToZ3MAK"),
            ("005i00000018Pda", "005i00000018PdaAAE"),
        ] {
            let id = SfId::parse(id15).expect("valid");
            assert_eq!(id.to18(), id18);
            assert_eq!(SfId::parse(id18).expect("valid"), id);
            assert_eq!(SfId::parse(&id18.to_lowercase()).expect("valid"), id);
        }
    }

    #[test]
    fn bad_ids_are_refused() {
        assert_eq!(SfId::parse("00D1r000000eX6"), Err(IdError::Length));
        assert_eq!(SfId::parse("00D1r000000eX6!"), Err(IdError::Alphabet));
        // The checksum says char 1 is upper case, but it is a digit.
        assert_eq!(SfId::parse("00D1r000000eX6dEAB"), Err(IdError::Checksum));
    }

    #[test]
    fn minted_ids_count_in_base62() {
        assert_eq!(SfId::mint(prefix::ORG, 1).as15(), "00D8d0000000001");
        assert_eq!(SfId::mint(prefix::USER, 62).as15(), "0058d0000000010");
        assert_eq!(SfId::mint(prefix::ORG, 1).key_prefix(), "00D");
    }

    fn any_id15() -> impl Strategy<Value = String> {
        "[0-9A-Za-z]{15}"
    }

    proptest! {
        #[test]
        fn eighteen_char_form_survives_any_case(id in any_id15(), flips in proptest::collection::vec(any::<bool>(), 18)) {
            let id = SfId::parse(&id).expect("valid");
            let mangled: String = id.to18().chars().zip(flips).map(|(c, f)| if f { c.to_ascii_lowercase() } else { c.to_ascii_uppercase() }).collect();
            prop_assert_eq!(SfId::parse(&mangled).expect("valid"), id);
        }

        #[test]
        fn checksum_has_three_chars_from_its_alphabet(id in any_id15()) {
            let id18 = SfId::parse(&id).expect("valid").to18();
            prop_assert_eq!(id18.len(), 18);
            prop_assert!(id18[15..].bytes().all(|c| CHECKSUM_ALPHABET.contains(&c)));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,24}") {
            let _ = SfId::parse(&s);
        }
    }
}
