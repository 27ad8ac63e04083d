//! The profile's login restrictions (Login IP Ranges and Login Hours) and the connected app's
//! IP relaxation, as Salesforce applies them to each way of logging in. The rules are plain
//! functions; `check` reads the user's profile and applies them with the request's address
//! and clock.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::OAuthError;
use crate::grant::TokenContext;
use crate::login_history::LoginStatus;
use crate::model::{ConnectedApp, Millis, User};

/// One Login IP Range: both ends inclusive, of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRange {
    pub start: IpAddr,
    pub end: IpAddr,
}

impl IpRange {
    /// `"10.0.0.0-10.0.0.255"`, `"::1-::1"`, or one address.
    pub fn parse(s: &str) -> Result<IpRange, String> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let ip = |t: &str| {
            t.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{:?} is not an IPv4 or IPv6 address", t.trim()))
        };
        // A v4 address written as v6 (::ffff:a.b.c.d) is that v4 address, as clients are.
        let (start, end) = (ip(a)?.to_canonical(), ip(b)?.to_canonical());
        if start.is_ipv4() != end.is_ipv4() {
            return Err(format!("{s:?} mixes IPv4 and IPv6"));
        }
        if key(start) > key(end) {
            return Err(format!("{s:?} ends before it starts"));
        }
        Ok(IpRange { start, end })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // A v4 client seen through a v6 socket (::ffff:a.b.c.d) is that v4 address.
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.start.is_ipv4() && (key(self.start)..=key(self.end)).contains(&key(ip))
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

fn key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// Login Hours: for each weekday (Monday first), the minutes of the day from which and until
/// which users may log in, in the org's time zone. A day without hours allows no login (Setup's
/// "No Hours"); a profile without `LoginHours` has no restriction at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LoginHours {
    pub days: [Option<(u16, u16)>; 7],
}

pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl LoginHours {
    /// `"08:00-18:00"`: from 08:00 until (not including) 18:00; `"00:00-24:00"`, all day.
    pub fn parse_window(s: &str) -> Result<(u16, u16), String> {
        let bad = || format!("{s:?} is not a window like \"08:00-18:00\"");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let minutes = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then(|| h * 60 + m)
        };
        let (start, end) = (minutes(a).ok_or_else(bad)?, minutes(b).ok_or_else(bad)?);
        if start >= end {
            return Err(format!("{s:?} ends before it starts"));
        }
        Ok((start, end))
    }

    /// Login hours from `(weekday, "HH:MM-HH:MM")` pairs (weekdays by their English names,
    /// any case); each day at most once.
    pub fn from_days<'a>(
        days: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<LoginHours, String> {
        let mut hours = LoginHours::default();
        for (day, window) in days {
            let day = day.trim().to_ascii_lowercase();
            let i = WEEKDAYS
                .iter()
                .position(|d| *d == day)
                .ok_or_else(|| format!("{day:?} is not a weekday (monday … sunday)"))?;
            if hours.days[i].is_some() {
                return Err(format!("{day} is given twice"));
            }
            hours.days[i] = Some(LoginHours::parse_window(window)?);
        }
        Ok(hours)
    }

    /// Whether a login is allowed at this local weekday (0 = Monday) and minute of the day.
    pub fn allows(&self, weekday: usize, minute: u16) -> bool {
        self.days
            .get(weekday)
            .copied()
            .flatten()
            .is_some_and(|(start, end)| (start..end).contains(&minute))
    }

    /// Whether a login is allowed at `now` in `time_zone` (an IANA name; an unknown one is
    /// taken as UTC, as the config refuses it before it gets here).
    pub fn allows_at(&self, now: Millis, time_zone: &str) -> bool {
        let tz = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
        let Ok(at) = jiff::Timestamp::from_millisecond(now) else {
            return false;
        };
        let local = tz.to_datetime(at);
        let weekday = usize::from(local.weekday().to_monday_zero_offset().unsigned_abs());
        let minute =
            u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
        self.allows(weekday, minute)
    }

    /// `monday 08:00-18:00, …`, the days without hours left out.
    pub fn describe(&self) -> String {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        WEEKDAYS
            .iter()
            .zip(self.days)
            .filter_map(|(d, w)| w.map(|(a, b)| format!("{d} {}-{}", hm(a), hm(b))))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Whether a time zone name is one this server knows (IANA's, e.g. "Europe/Paris").
pub fn is_time_zone(name: &str) -> bool {
    jiff::tz::TimeZone::get(name).is_ok()
}

/// The connected app's "IP Relaxation" (Salesforce's four values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IpRelaxation {
    /// "Enforce IP restrictions" (the default).
    #[default]
    Enforce,
    /// "Relax IP restrictions with second factor": without a second factor (idforce has none
    /// yet), enforced.
    Bypass2fa,
    /// "Relax IP restrictions".
    Bypass,
    /// "Enforce IP restrictions, but relax for refresh tokens".
    EnforceRelaxRefresh,
}

impl IpRelaxation {
    pub fn parse(s: &str) -> Option<IpRelaxation> {
        Some(match s {
            "enforce" => IpRelaxation::Enforce,
            "bypass_2fa" => IpRelaxation::Bypass2fa,
            "bypass" => IpRelaxation::Bypass,
            "enforce_relax_refresh" => IpRelaxation::EnforceRelaxRefresh,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IpRelaxation::Enforce => "enforce",
            IpRelaxation::Bypass2fa => "bypass_2fa",
            IpRelaxation::Bypass => "bypass",
            IpRelaxation::EnforceRelaxRefresh => "enforce_relax_refresh",
        }
    }

    /// Salesforce's words in Setup.
    pub fn label(self) -> &'static str {
        match self {
            IpRelaxation::Enforce => "Enforce IP restrictions",
            IpRelaxation::Bypass2fa => "Relax IP restrictions with second factor",
            IpRelaxation::Bypass => "Relax IP restrictions",
            IpRelaxation::EnforceRelaxRefresh => {
                "Enforce IP restrictions, but relax for refresh tokens"
            }
        }
    }
}

/// The way a user is logging in (or using a refresh token), as far as the restrictions differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// The login page, the password grant, SOAP login.
    Login,
    /// JWT bearer: IP ranges enforced whatever the app's relaxation.
    JwtBearer,
    ClientCredentials,
    RefreshToken,
}

/// Whether the profile's IP ranges apply to this login: an app may relax them (not for JWT
/// bearer, whose IP restrictions Salesforce always enforces).
pub fn ip_ranges_apply(entry: Entry, relaxation: IpRelaxation) -> bool {
    match (entry, relaxation) {
        (Entry::JwtBearer, _) => true,
        (_, IpRelaxation::Bypass) => false,
        (Entry::RefreshToken, IpRelaxation::EnforceRelaxRefresh) => false,
        _ => true,
    }
}

/// Applies `user`'s profile's restrictions to a login through `app` (none: the login page, or
/// SOAP login) from the request's address at the request's time. Refusals answer Salesforce's
/// errors and record Login History's status.
pub async fn check(
    ctx: &TokenContext<'_>,
    user: &User,
    app: Option<&ConnectedApp>,
    entry: Entry,
) -> Result<(), OAuthError> {
    let Some(profile) = ctx.store.profile(&user.org_id, &user.profile).await? else {
        return Ok(());
    };
    if let Some(hours) = &profile.login_hours {
        let tz = match ctx.store.org(&user.org_id).await? {
            Some(org) => org.time_zone.clone(),
            None => "UTC".to_owned(),
        };
        if !hours.allows_at(ctx.now, &tz) {
            let why = format!(
                "user {} logs in outside the login hours of profile {:?} ({}, {tz})",
                user.id,
                profile.name,
                hours.describe()
            );
            return Err(OAuthError::outside_login_hours()
                .because(why)
                .in_login_history(user, LoginStatus::RestrictedTime));
        }
    }
    let relaxation = app.map_or(IpRelaxation::Enforce, |a| a.ip_relaxation);
    if !profile.login_ip_ranges.is_empty() && ip_ranges_apply(entry, relaxation) {
        let inside = ctx
            .caller
            .ip
            .is_some_and(|ip| profile.login_ip_ranges.iter().any(|r| r.contains(ip)));
        if !inside {
            let why = format!(
                "user {} logs in from {} outside the login IP ranges of profile {:?}",
                user.id,
                ctx.caller
                    .ip
                    .map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string()),
                profile.name
            );
            return Err(OAuthError::ip_restricted()
                .because(why)
                .in_login_history(user, LoginStatus::RestrictedIp));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges_hold_their_ends_and_their_family() {
        let r = IpRange::parse("10.0.0.0-10.0.0.255").unwrap();
        for ip in ["10.0.0.0", "10.0.0.17", "10.0.0.255", "::ffff:10.0.0.9"] {
            assert!(r.contains(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["10.0.1.0", "9.255.255.255", "::1"] {
            assert!(!r.contains(ip.parse().unwrap()), "{ip}");
        }
        let mapped = IpRange::parse("::ffff:10.0.0.0-::ffff:10.0.0.255").unwrap();
        assert!(mapped.contains("10.0.0.3".parse().unwrap()));
        let v6 = IpRange::parse("::1").unwrap();
        assert!(v6.contains("::1".parse().unwrap()));
        assert!(!v6.contains("127.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.9-10.0.0.1", "10.0.0.1-::1", "ten", "10.0.0.1-"] {
            assert!(IpRange::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(r.to_string(), "10.0.0.0-10.0.0.255");
    }

    #[test]
    fn login_hours_are_windows_of_named_days_in_the_orgs_time_zone() {
        let mut hours = LoginHours::default();
        hours.days[0] = Some(LoginHours::parse_window("08:00-18:00").unwrap());
        hours.days[5] = Some(LoginHours::parse_window("00:00-24:00").unwrap());
        assert!(hours.allows(0, 8 * 60) && hours.allows(0, 18 * 60 - 1));
        assert!(!hours.allows(0, 18 * 60) && !hours.allows(0, 7 * 60 + 59));
        assert!(!hours.allows(1, 12 * 60), "a day without hours");
        assert!(hours.allows(5, 0) && hours.allows(5, 24 * 60 - 1));
        for bad in [
            "18:00-08:00",
            "8-18",
            "08:00-25:00",
            "08:61-09:00",
            "08:00",
            "1093:00-1093:30",
        ] {
            assert!(LoginHours::parse_window(bad).is_err(), "{bad}");
        }
        // Monday 2026-12-07 07:30 UTC is 08:30 in Paris (inside) and 07:30 in UTC (outside).
        let at = jiff::Timestamp::from_second(1_796_628_600)
            .unwrap()
            .as_millisecond();
        assert!(hours.allows_at(at, "Europe/Paris"));
        assert!(!hours.allows_at(at, "UTC"));
        assert!(is_time_zone("America/Los_Angeles") && !is_time_zone("Mars/Olympus"));
    }

    #[test]
    fn relaxation_never_lifts_jwt_bearer_and_relaxes_refresh_only_when_asked() {
        use Entry::*;
        use IpRelaxation::*;
        assert!(ip_ranges_apply(JwtBearer, Bypass));
        assert!(!ip_ranges_apply(Login, Bypass));
        assert!(ip_ranges_apply(Login, Bypass2fa), "no second factor here");
        assert!(!ip_ranges_apply(RefreshToken, EnforceRelaxRefresh));
        assert!(ip_ranges_apply(Login, EnforceRelaxRefresh));
        assert!(ip_ranges_apply(ClientCredentials, Enforce));
        for v in [Enforce, Bypass2fa, Bypass, EnforceRelaxRefresh] {
            assert_eq!(IpRelaxation::parse(v.as_str()), Some(v));
        }
    }
}
