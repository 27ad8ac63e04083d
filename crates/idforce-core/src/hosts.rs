//! Salesforce's hosts (spec §1): the login host, an org's My Domain, and Experience Cloud sites
//! under either. Where a request was sent decides the issuer it is answered as, which org's
//! users may log in there, and what a site adds to the tokens it issues.

use std::sync::Arc;

use crate::model::{Org, Site};
use crate::sfid::SfId;

/// The first path segments of idforce's own routes: no site may take one, so that a site's
/// path never hides an endpoint.
pub const RESERVED_SEGMENTS: &[&str] = &[
    "services",
    "id",
    "setup",
    "secur",
    "lightning",
    "assets",
    "healthz",
    "readyz",
    "metrics",
    ".well-known",
    "profilephoto",
];

/// Where one request was sent.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The org whose My Domain or site the request came through; `None`: the login host,
    /// shared by every org.
    pub org: Option<Arc<Org>>,
    /// The site the request came through (its path stripped before routing).
    pub site: Option<Site>,
    /// Whether the request's host is the org's My Domain (else the login host).
    pub my_domain: bool,
    /// The URL of this entry without a trailing slash: the login host's public URL, the My
    /// Domain's URL, or either followed by the site's path. It is the issuer of what is
    /// issued here.
    pub base_url: String,
}

impl Entry {
    /// The login host: every org's users, no site.
    pub fn login_host(public_url: &str) -> Entry {
        Entry {
            org: None,
            site: None,
            my_domain: false,
            base_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// An org's My Domain, or one of its sites under `host_url` (the login host's URL or the
    /// My Domain's).
    pub fn of_org(org: Arc<Org>, site: Option<Site>, my_domain: bool, host_url: &str) -> Entry {
        let host_url = host_url.trim_end_matches('/');
        let base_url = match &site {
            Some(s) => format!("{host_url}/{}", s.path),
            None => host_url.to_owned(),
        };
        Entry {
            org: Some(org),
            site,
            my_domain,
            base_url,
        }
    }

    /// Whether a user or app of `org` may log in or be issued tokens here: anywhere on the
    /// login host, only its own on a My Domain or site.
    pub fn admits(&self, org: &SfId) -> bool {
        self.org.as_ref().is_none_or(|o| o.id == *org)
    }

    /// The site's URL and id, as tokens issued through it carry them
    /// (`sfdc_community_url`, `sfdc_community_id`).
    pub fn community(&self) -> Option<(&str, &SfId)> {
        self.site.as_ref().map(|s| (self.base_url.as_str(), &s.id))
    }
}

/// The URL of `host` on this server: the public URL with its host replaced (scheme, port and
/// any path kept), without a trailing slash.
pub fn url_of_host(public_url: &str, host: &str) -> String {
    let (scheme, rest) = public_url
        .split_once("://")
        .unwrap_or(("https", public_url));
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // The port follows the last ':' after any IPv6 literal's closing bracket.
    let after_host = authority.rfind(']').map_or(authority, |i| &authority[i..]);
    let port = after_host
        .rfind(':')
        .map(|i| &after_host[i..])
        .filter(|p| p.len() > 1 && p[1..].bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or("");
    format!("{scheme}://{host}{port}{path}")
        .trim_end_matches('/')
        .to_owned()
}

/// The host name of a URL (lowercase, without port), if it has one.
pub fn host_of_url(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// A My Domain as the config file, Setup and the CLI give it: a host name (no scheme, port or
/// path), stored lowercase.
pub fn check_my_domain(given: &str) -> Result<String, String> {
    let host = given.trim().to_ascii_lowercase();
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    // The last label has a letter: an address is not a My Domain.
    let named = host
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().any(|b| b.is_ascii_lowercase()));
    if host.len() <= 253 && host.contains('.') && host.split('.').all(label_ok) && named {
        Ok(host)
    } else {
        Err(format!(
            "{given:?} is not a host name (letters, digits and hyphens in dot-separated labels, \
             no scheme, port or path), e.g. \"acme.my.localhost\""
        ))
    }
}

/// A site's path as given: one path segment of letters, digits, `-` and `_`, not one of
/// idforce's own.
pub fn check_site_path(given: &str) -> Result<String, String> {
    let path = given.trim().trim_matches('/');
    let fine = !path.is_empty()
        && path.len() <= 64
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !fine {
        return Err(format!(
            "{given:?} is not a site path (one path segment of letters, digits, '-' and '_', \
             e.g. \"partners\")"
        ));
    }
    if RESERVED_SEGMENTS
        .iter()
        .any(|r| r.eq_ignore_ascii_case(path))
    {
        return Err(format!(
            "{given:?} is one of idforce's own paths ({}); choose another site path",
            RESERVED_SEGMENTS.join(", ")
        ));
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hosts_url_keeps_the_public_urls_scheme_port_and_path() {
        for (public, host, want) in [
            (
                "http://127.0.0.1:8080",
                "acme.my.localhost",
                "http://acme.my.localhost:8080",
            ),
            (
                "https://login.example.com",
                "acme.my.example.com",
                "https://acme.my.example.com",
            ),
            (
                "https://example.com/idforce/",
                "acme.example.com",
                "https://acme.example.com/idforce",
            ),
            (
                "http://[::1]:9000",
                "a.my.localhost",
                "http://a.my.localhost:9000",
            ),
            ("http://[::1]", "a.my.localhost", "http://a.my.localhost"),
        ] {
            assert_eq!(url_of_host(public, host), want, "{public}");
        }
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            host_of_url("http://Acme.My.Localhost:8080/x").as_deref(),
            Some("acme.my.localhost")
        );
        assert_eq!(host_of_url("https://[::1]:8/").as_deref(), Some("::1"));
        assert_eq!(
            host_of_url("https://u:p@h.test/").as_deref(),
            Some("h.test")
        );
        assert_eq!(host_of_url("/relative"), None);
    }

    #[test]
    fn my_domains_are_host_names() {
        assert_eq!(
            check_my_domain("Acme.My.Localhost").as_deref(),
            Ok("acme.my.localhost")
        );
        for bad in [
            "",
            "acme",
            "https://acme.my.localhost",
            "acme.my.localhost:8080",
            "acme.my.localhost/x",
            "-acme.my.localhost",
            "acme..localhost",
            "ac me.localhost",
            "127.0.0.1",
        ] {
            assert!(check_my_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn site_paths_are_one_segment_not_idforces_own() {
        assert_eq!(check_site_path("/partners/").as_deref(), Ok("partners"));
        assert_eq!(check_site_path("my_site-2").as_deref(), Ok("my_site-2"));
        for bad in [
            "", "a/b", "a b", "services", "Services", "id", "secur", "setup",
        ] {
            assert!(check_site_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_entry_admits_its_orgs_own_or_anyone_on_the_login_host() {
        let org = Arc::new(Org {
            id: SfId::mint(crate::sfid::prefix::ORG, 1),
            name: "Acme".into(),
            instance_url: None,
            created_at: 0,
            my_domain: Some("acme.my.localhost".into()),
            logout_url: None,
            sites: vec![],
            oauth: Default::default(),
            time_zone: "UTC".into(),
            token_exchange_handlers: Vec::new(),
        });
        let other = SfId::mint(crate::sfid::prefix::ORG, 2);
        let login = Entry::login_host("http://127.0.0.1:8080/");
        assert_eq!(login.base_url, "http://127.0.0.1:8080");
        assert!(login.admits(&other) && login.admits(&org.id));
        let site = Site {
            id: SfId::mint(crate::sfid::prefix::SITE, 1),
            name: "Partners".into(),
            path: "partners".into(),
        };
        let e = Entry::of_org(
            org.clone(),
            Some(site),
            true,
            "http://acme.my.localhost:8080",
        );
        assert_eq!(e.base_url, "http://acme.my.localhost:8080/partners");
        assert!(e.admits(&org.id) && !e.admits(&other));
        assert_eq!(
            e.community().map(|(u, _)| u),
            Some("http://acme.my.localhost:8080/partners")
        );
    }
}
