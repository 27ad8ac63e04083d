//! Which entry a request came through (`idforce_core::hosts::Entry`): the login host, an org's
//! My Domain (by `Host`), or a site (by the first path segment, on either). The map of My
//! Domains and sites is read from the store and kept for the directory cache's bound, so that
//! a change made by another node or the CLI is seen as late as any other directory change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use idforce_core::hosts::{Entry, RESERVED_SEGMENTS, url_of_host};
use idforce_store::Backend;

pub struct Hosts {
    public_url: String,
    /// The public URL's host, lowercase: requests to it (or to an unknown host) are the login
    /// host's.
    public_host: String,
    login: Arc<Entry>,
    ttl: Duration,
    map: tokio::sync::Mutex<Option<(Instant, Arc<HostMap>)>>,
}

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
            map: tokio::sync::Mutex::new(None),
        }
    }

    /// The login host's entry.
    pub fn login(&self) -> &Arc<Entry> {
        &self.login
    }

    /// Forgets the map: the next request that needs it reads it again (after a change made
    /// on this node).
    pub async fn forget(&self) {
        *self.map.lock().await = None;
    }

    /// The entry of a request to `host` (without port) for `path`. Requests to the public
    /// host for idforce's own paths — nearly all — are answered without reading the map.
    pub async fn resolve(&self, store: &dyn Backend, host: Option<&str>, path: &str) -> Resolved {
        let (first, rest) = split_first(path);
        let own_path = first.is_empty() || RESERVED_SEGMENTS.contains(&first);
        let public = host.is_none_or(|h| h.eq_ignore_ascii_case(&self.public_host));
        if public && own_path {
            return self.at_login();
        }
        let map = match self.map(store).await {
            Ok(map) => map,
            Err(e) => {
                tracing::warn!(error = %e, "My Domains and sites unreadable; answering as the login host");
                return self.at_login();
            }
        };
        let domain = host
            .filter(|_| !public)
            .and_then(|h| map.domains.get(&h.to_ascii_lowercase()));
        let sites = domain.map_or(&map.login_sites, |(_, sites)| sites);
        if !own_path && let Some(site) = sites.get(first) {
            return Resolved {
                entry: site.clone(),
                path: Some(if rest.is_empty() { "/" } else { rest }.to_owned()),
            };
        }
        Resolved {
            entry: domain.map_or_else(|| self.login.clone(), |(root, _)| root.clone()),
            path: None,
        }
    }

    fn at_login(&self) -> Resolved {
        Resolved {
            entry: self.login.clone(),
            path: None,
        }
    }

    async fn map(
        &self,
        store: &dyn Backend,
    ) -> Result<Arc<HostMap>, idforce_core::ports::StoreError> {
        let mut held = self.map.lock().await;
        if let Some((at, map)) = held.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(map.clone());
        }
        let map = Arc::new(self.build(store).await?);
        *held = Some((Instant::now(), map.clone()));
        Ok(map)
    }

    async fn build(&self, store: &dyn Backend) -> Result<HostMap, idforce_core::ports::StoreError> {
        let mut map = HostMap::default();
        for org in store.orgs().await? {
            let org = Arc::new(org);
            for site in &org.sites {
                let e = Entry::of_org(org.clone(), Some(site.clone()), false, &self.public_url);
                map.login_sites.insert(site.path.clone(), Arc::new(e));
            }
            let Some(domain) = &org.my_domain else {
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
        };
        store.save_org(&acme).await.unwrap();
        let hosts = Hosts::new("http://127.0.0.1:8080", Duration::from_secs(60));
        let at = |host: Option<&'static str>, path: &'static str| {
            let (hosts, store) = (&hosts, &store);
            async move {
                let r = hosts.resolve(store, host, path).await;
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
        let r = hosts.resolve(&store, Some("acme.my.localhost"), "/").await;
        assert!(r.entry.admits(&acme.id) && !r.entry.admits(&SfId::mint(prefix::ORG, 2)));
    }
}
