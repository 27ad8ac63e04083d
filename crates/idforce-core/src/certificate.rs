//! The validity period of an X.509 certificate (RFC 5280 §4.1.2.5), read from its DER.
//!
//! Read by hand: webpki parses the period but keeps it private, and an X.509 crate (x509-cert
//! and its der, spki and const-oid) would be four crates for two dates. Only the path to the
//! validity is walked: Certificate → TBSCertificate → [version] serial signature issuer
//! validity.

use crate::model::Millis;

/// When a certificate starts and stops being valid, in seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: i64,
    pub not_after: i64,
}

impl Validity {
    /// Whether `now` (milliseconds) falls within the period.
    pub fn contains(&self, now: Millis) -> bool {
        let secs = now.div_euclid(1000);
        self.not_before <= secs && secs <= self.not_after
    }
}

/// The validity period of `der`, or `None` if it is not a certificate this can read.
pub fn validity(der: &[u8]) -> Option<Validity> {
    let (certificate, _) = element(der, SEQUENCE)?;
    let (tbs, _) = element(certificate, SEQUENCE)?;
    let mut rest = tbs;
    // version [0] EXPLICIT, present from v2 on.
    if rest.first() == Some(&0xa0) {
        rest = element(rest, 0xa0)?.1;
    }
    rest = element(rest, INTEGER)?.1; // serialNumber
    rest = element(rest, SEQUENCE)?.1; // signature
    rest = element(rest, SEQUENCE)?.1; // issuer
    let (validity, _) = element(rest, SEQUENCE)?;
    let (not_before, rest) = time(validity)?;
    let (not_after, _) = time(rest)?;
    Some(Validity {
        not_before,
        not_after,
    })
}

const INTEGER: u8 = 0x02;
const SEQUENCE: u8 = 0x30;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// The contents of the element at the start of `input`, which must have `tag`, and what
/// follows it. Definite lengths only, as DER requires.
fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}

/// A UTCTime (`YYMMDDHHMMSSZ`, years 1950–2049) or GeneralizedTime (`YYYYMMDDHHMMSSZ`) at the
/// start of `input`, as seconds since the epoch, and what follows it.
fn time(input: &[u8]) -> Option<(i64, &[u8])> {
    let tag = *input.first()?;
    let (text, after) = element(input, tag)?;
    let digits = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |s: &str| s.parse::<i64>().ok();
    let (year, rest) = match (tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy = num(&digits[..2])?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (num(&digits[..4])?, &digits[4..]),
        _ => return None,
    };
    let (month, day) = (num(&rest[..2])?, num(&rest[2..4])?);
    let (hour, minute, second) = (num(&rest[4..6])?, num(&rest[6..8])?, num(&rest[8..10])?);
    // A second of 60 is a leap second, which RFC 5280 allows.
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + hour * 3600 + minute * 60 + second, after))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The SHA-256 of a certificate's DER in upper-case hex, as `openssl x509 -fingerprint
/// -sha256` prints it without the colons: what tells one uploaded certificate from another.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der);
    crate::token::hex(digest.as_ref()).to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_dates_to_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 11, 23), 20_780);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(content);
        out
    }

    /// A certificate shape with only what `validity` reads (and garbage where it skips).
    fn certificate(not_before: (u8, &str), not_after: (u8, &str), version: bool) -> Vec<u8> {
        let mut tbs = Vec::new();
        if version {
            tbs.extend(der(0xa0, &der(INTEGER, &[2])));
        }
        tbs.extend(der(INTEGER, &[0x01, 0x02, 0x03]));
        tbs.extend(der(SEQUENCE, &der(0x06, &[0x2a, 0x86, 0x48])));
        tbs.extend(der(SEQUENCE, &[0x31; 200]));
        let mut validity = der(not_before.0, not_before.1.as_bytes());
        validity.extend(der(not_after.0, not_after.1.as_bytes()));
        tbs.extend(der(SEQUENCE, &validity));
        tbs.extend(der(SEQUENCE, &[]));
        der(SEQUENCE, &der(SEQUENCE, &tbs))
    }

    #[test]
    fn reads_utc_and_generalized_times() {
        let c = certificate(
            (UTC_TIME, "261123135452Z"),
            (GENERALIZED_TIME, "21261030135452Z"),
            true,
        );
        let v = validity(&c).expect("readable");
        assert_eq!(v.not_before, 20_780 * 86_400 + 13 * 3600 + 54 * 60 + 52);
        assert_eq!(
            v.not_after - v.not_before,
            (days_from_civil(2126, 10, 30) - 20_780) * 86_400
        );
        assert!(v.contains(v.not_before * 1000));
        assert!(v.contains(v.not_after * 1000 + 999));
        assert!(!v.contains(v.not_before * 1000 - 1));
        assert!(!v.contains((v.not_after + 1) * 1000));
        // A v1 certificate has no version field.
        let v1 = certificate(
            (UTC_TIME, "491231235959Z"),
            (UTC_TIME, "500101000000Z"),
            false,
        );
        let v = validity(&v1).expect("readable");
        assert_eq!(
            v.not_before,
            days_from_civil(2049, 12, 31) * 86_400 + 86_399
        );
        assert_eq!(v.not_after, days_from_civil(1950, 1, 1) * 86_400);
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        let bad = [
            certificate((UTC_TIME, "2611231354Z"), (UTC_TIME, "261123135452Z"), true),
            certificate(
                (UTC_TIME, "261323135452Z"),
                (UTC_TIME, "261123135452Z"),
                true,
            ),
            certificate(
                (UTC_TIME, "26112313545xZ"),
                (UTC_TIME, "261123135452Z"),
                true,
            ),
            certificate((0x04, "261123135452Z"), (UTC_TIME, "261123135452Z"), true),
        ];
        for c in bad {
            assert_eq!(validity(&c), None);
        }
        assert_eq!(validity(&[]), None);
        assert_eq!(validity(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        let c = certificate(
            (UTC_TIME, "261123135452Z"),
            (UTC_TIME, "261123135452Z"),
            true,
        );
        assert_eq!(validity(&c[..c.len() - 10]), None, "truncated");
    }
}
