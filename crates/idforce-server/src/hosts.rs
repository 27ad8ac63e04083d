//! Which entry a request came through (`idforce_core::hosts::Entry`): the login host, an org's
//! My Domain (by `Host`), or a site (by the first path segment, on either). The map of My
//! Domains and sites is read from the store and kept for the directory cache's bound, so that
//! a change made by another node or the CLI is seen as late as any other directory change.
//! When it is due, one request reads it again while the others go on with the one they have;
//! when the store cannot be read, the last map read stays in use. Without any map, a request
//! to another host than the public one cannot be placed and is refused (`Unplaced`): served
//! as the login host, it would admit every org's users on a My Domain.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idforce_core::hosts::{Entry, RESERVED_SEGMENTS, url_of_host};
use idforce_core::model::Org;
use idforce_core::ports::{StoreError, StoreResult};
use idforce_store::Accounts;

/// Where the map is read from: the orgs of a store.
#[async_trait::async_trait]
pub trait OrgSource: Send + Sync {
    async fn all_orgs(&self) -> StoreResult<Vec<Org>>;
}

#[async_trait::async_trait]
impl<T: Accounts + ?Sized> OrgSource for T {
    async fn all_orgs(&self) -> StoreResult<Vec<Org>> {
        self.orgs().await
    }
}

pub struct Hosts {
    public_url: String,
    /// The public URL's host, lowercase: requests to it (or to an unknown host) are the login
    /// host's.
    public_host: String,
    login: Arc<Entry>,
    ttl: Duration,
    /// The map in use, and when it was read.
    current: std::sync::RwLock<Option<(Instant, Arc<HostMap>)>>,
    /// Held by the one request that reads the map again.
    reading: tokio::sync::Mutex<()>,
}

/// No map of My Domains and sites could be read yet (the store is down since start).
#[derive(Debug)]
pub struct Unplaced(pub String);

/// First path segments answered alike on every host, without the map: probes reach a node by
/// its own address, and must not wait for the store.
const HOST_INDEPENDENT: &[&str] = &["healthz", "readyz", "metrics", "assets"];

/// Sites' entries by path.
type Sites = HashMap<String, Arc<Entry>>;

/// Every My Domain and site, each entry built once.
#[derive(Default)]
struct HostMap {
    /// By My Domain: the org's root entry and its sites' entries there.
    domains: HashMap<String, (Arc<Entry>, Sites)>,
    /// Every org's sites on the login host, by path.
    login_sites: Sites,
}

/// A request's entry, and the path to route when a site's prefix was taken off.
pub struct Resolved {
    pub entry: Arc<Entry>,
    pub path: Option<String>,
}

impl Hosts {
    pub fn new(public_url: &str, ttl: Duration) -> Hosts {
        Hosts {
            public_url: public_url.to_owned(),
            public_host: idforce_core::hosts::host_of_url(public_url).unwrap_or_default(),
            login: Arc::new(Entry::login_host(public_url)),
            ttl,
            current: std::sync::RwLock::new(None),
            reading: tokio::sync::Mutex::new(()),
        }
    }

    /// The login host's entry.
    pub fn login(&self) -> &Arc<Entry> {
        &self.login
    }

    /// The entry of a request to `host` (without port) for `path`. Requests to the public
    /// host for idforce's own paths — nearly all — are answered without reading the map.
    pub async fn resolve<S: OrgSource + ?Sized>(
        &self,
        store: &S,
        host: Option<&str>,
        path: &str,
    ) -> Result<Resolved, Unplaced> {
        let (first, rest) = split_first(path);
        if HOST_INDEPENDENT.contains(&first) {
            return Ok(self.at_login());
        }
        let own_path = first.is_empty() || RESERVED_SEGMENTS.contains(&first);
        let public = host.is_none_or(|h| h.eq_ignore_ascii_case(&self.public_host));
        if public && own_path {
            return Ok(self.at_login());
        }
        let map = match self.map(store).await {
            Ok(map) => map,
            Err(e) if public => {
                // Only a site could be missed: the public host is the login host's anyway.
                tracing::warn!(error = %e, "My Domains and sites unreadable; no site is served");
                return Ok(self.at_login());
            }
            Err(e) => return Err(Unplaced(e.to_string())),
        };
        let domain = host
            .filter(|_| !public)
            .and_then(|h| map.domains.get(&h.to_ascii_lowercase()));
        let sites = domain.map_or(&map.login_sites, |(_, sites)| sites);
        if !own_path && let Some(site) = sites.get(first) {
            return Ok(Resolved {
                entry: site.clone(),
                path: Some(if rest.is_empty() { "/" } else { rest }.to_owned()),
            });
        }
        Ok(Resolved {
            entry: domain.map_or_else(|| self.login.clone(), |(root, _)| root.clone()),
            path: None,
        })
    }

    fn at_login(&self) -> Resolved {
        Resolved {
            entry: self.login.clone(),
            path: None,
        }
    }

    /// The map: the one in use while it is fresh; when it is due, read again by one request
    /// (the others go on with it); the last one read if the store fails.
    async fn map<S: OrgSource + ?Sized>(&self, store: &S) -> Result<Arc<HostMap>, StoreError> {
        let held = self.held();
        if let Some((at, map)) = &held {
            if at.elapsed() < self.ttl {
                return Ok(map.clone());
            }
            let Ok(_reading) = self.reading.try_lock() else {
                return Ok(map.clone());
            };
            return Ok(self.read_again(store).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "My Domains and sites unreadable; the last ones read stay in use");
                self.keep(map.clone());
                map.clone()
            }));
        }
        // None yet: every request waits for the first read.
        let _reading = self.reading.lock().await;
        if let Some((_, map)) = self.held() {
            return Ok(map);
        }
        self.read_again(store).await
    }

    fn held(&self) -> Option<(Instant, Arc<HostMap>)> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts `map` in use, as read now.
    fn keep(&self, map: Arc<HostMap>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), map));
    }

    async fn read_again<S: OrgSource + ?Sized>(
        &self,
        store: &S,
    ) -> Result<Arc<HostMap>, StoreError> {
        let map = Arc::new(self.build(store).await?);
        self.keep(map.clone());
        Ok(map)
    }

    async fn build<S: OrgSource + ?Sized>(&self, store: &S) -> Result<HostMap, StoreError> {
        let mut map = HostMap::default();
        for org in store.all_orgs().await? {
            let org = Arc::new(org);
            for site in &org.sites {
                let e = Entry::of_org(org.clone(), Some(site.clone()), false, &self.public_url);
                map.login_sites.insert(site.path.clone(), Arc::new(e));
            }
            let Some(domain) = org.my_domain.as_ref().filter(|d| **d != self.public_host) else {
                // None, or the public host itself (refused at start; set later by the CLI):
                // the login host stays every org's.
                continue;
            };
            let url = url_of_host(&self.public_url, domain);
            let root = Arc::new(Entry::of_org(org.clone(), None, true, &url));
            let sites = org
                .sites
                .iter()
                .map(|s| {
                    let e = Entry::of_org(org.clone(), Some(s.clone()), true, &url);
                    (s.path.clone(), Arc::new(e))
                })
                .collect();
            map.domains.insert(domain.clone(), (root, sites));
        }
        Ok(map)
    }
}

/// `/a/b/c` → (`a`, `/b/c`); `/` → (``, ``).
fn split_first(path: &str) -> (&str, &str) {
    let p = path.strip_prefix('/').unwrap_or(path);
    match p.find('/') {
        Some(i) => (&p[..i], &p[i..]),
        None => (p, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idforce_core::model::{Org, Site};
    use idforce_core::sfid::{SfId, prefix};
    use idforce_store::Accounts;
    use idforce_store::testing::MemoryStore;

    /// Orgs that can stop being readable.
    struct Flaky {
        orgs: Vec<Org>,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl OrgSource for Flaky {
        async fn all_orgs(&self) -> StoreResult<Vec<Org>> {
            if self.down.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(StoreError::Unavailable("down".into()));
            }
            Ok(self.orgs.clone())
        }
    }

    fn acme() -> Org {
        Org {
            id: SfId::mint(prefix::ORG, 1),
            name: "Acme".into(),
            instance_url: None,
            created_at: 1,
            my_domain: Some("acme.my.localhost".into()),
            logout_url: None,
            sites: vec![Site {
                id: SfId::mint(prefix::SITE, 1),
                name: "Partners".into(),
                path: "partners".into(),
            }],
            oauth: Default::default(),
            time_zone: "UTC".into(),
            token_exchange_handlers: Vec::new(),
        }
    }

    #[tokio::test]
    async fn an_unreadable_store_keeps_the_last_map_and_never_takes_a_my_domain_for_the_login_host()
    {
        let flaky = Flaky {
            orgs: vec![acme()],
            down: true.into(),
        };
        let hosts = Hosts::new("http://127.0.0.1:8080", Duration::ZERO);
        // No map yet: a My Domain cannot be placed (refused, not served as the login host);
        // the public host, probes on any host, and idforce's own paths still are.
        assert!(
            hosts
                .resolve(&flaky, Some("acme.my.localhost"), "/")
                .await
                .is_err()
        );
        for (host, path) in [
            (Some("127.0.0.1"), "/services/oauth2/token"),
            (Some("127.0.0.1"), "/partners/"),
            (Some("10.0.0.7"), "/readyz"),
            (Some("10.0.0.7"), "/healthz"),
        ] {
            let r = hosts.resolve(&flaky, host, path).await.expect(path);
            assert!(r.entry.org.is_none(), "{path}");
        }
        // Readable: the My Domain is placed (the control) ...
        flaky.down.store(false, std::sync::atomic::Ordering::SeqCst);
        let r = hosts
            .resolve(&flaky, Some("acme.my.localhost"), "/")
            .await
            .unwrap();
        assert!(r.entry.my_domain);
        // ... and stays placed by the last map read when the store goes down again.
        flaky.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let r = hosts
            .resolve(&flaky, Some("acme.my.localhost"), "/partners/x")
            .await
            .unwrap();
        assert_eq!(r.entry.base_url, "http://acme.my.localhost:8080/partners");
    }

    #[test]
    fn paths_split_at_their_first_segment() {
        assert_eq!(split_first("/"), ("", ""));
        assert_eq!(split_first("/partners"), ("partners", ""));
        assert_eq!(split_first("/partners/"), ("partners", "/"));
        assert_eq!(
            split_first("/partners/services/oauth2/token"),
            ("partners", "/services/oauth2/token")
        );
    }

    #[tokio::test]
    async fn requests_resolve_to_the_login_host_a_my_domain_or_a_site() {
        let store = MemoryStore::new();
        let site = Site {
            id: SfId::mint(prefix::SITE, 1),
            name: "Partners".into(),
            path: "partners".into(),
        };
        let acme = Org {
            id: SfId::mint(prefix::ORG, 1),
            name: "Acme".into(),
            instance_url: None,
            created_at: 1,
            my_domain: Some("acme.my.localhost".into()),
            logout_url: None,
            sites: vec![site],
            oauth: Default::default(),
            time_zone: "UTC".into(),
            token_exchange_handlers: Vec::new(),
        };
        store.save_org(&acme).await.unwrap();
        let hosts = Hosts::new("http://127.0.0.1:8080", Duration::from_secs(60));
        let at = |host: Option<&'static str>, path: &'static str| {
            let (hosts, store) = (&hosts, &store);
            async move {
                let r = hosts.resolve(store, host, path).await.unwrap();
                (r.entry.base_url.clone(), r.path)
            }
        };
        assert_eq!(
            at(Some("127.0.0.1"), "/services/oauth2/token").await,
            ("http://127.0.0.1:8080".into(), None)
        );
        assert_eq!(
            at(Some("127.0.0.1"), "/partners/services/oauth2/token").await,
            (
                "http://127.0.0.1:8080/partners".into(),
                Some("/services/oauth2/token".into())
            )
        );
        assert_eq!(
            at(Some("ACME.my.localhost"), "/services/oauth2/token").await,
            ("http://acme.my.localhost:8080".into(), None)
        );
        assert_eq!(
            at(Some("acme.my.localhost"), "/partners").await,
            (
                "http://acme.my.localhost:8080/partners".into(),
                Some("/".into())
            )
        );
        // An unknown host is the login host's; an unknown first segment is no site.
        assert_eq!(
            at(Some("elsewhere.test"), "/partners/").await,
            ("http://127.0.0.1:8080/partners".into(), Some("/".into()))
        );
        assert_eq!(
            at(Some("127.0.0.1"), "/nowhere/x").await,
            ("http://127.0.0.1:8080".into(), None)
        );
        // The org's entries admit its own users only; the login host's, everyone's.
        let r = hosts
            .resolve(&store, Some("acme.my.localhost"), "/")
            .await
            .unwrap();
        assert!(r.entry.admits(&acme.id) && !r.entry.admits(&SfId::mint(prefix::ORG, 2)));
    }
}
