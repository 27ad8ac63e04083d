//! A short-lived, bounded cache of the directory (orgs, users, apps, approvals), kept in front
//! of the database by each store.
//!
//! Every token request reads its app, user and org; they change rarely. A write made through
//! this store empties the cache at once; a write made elsewhere (another node, the `idforce`
//! CLI) is seen when the entry expires, after at most the store's `directory_cache_ttl`
//! (default `DEFAULT_TTL`; zero turns the cache off). Password checks never read from here:
//! lockout state must be current.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use idforce_core::model::{ConnectedApp, Org, User};
use idforce_core::sfid::SfId;

/// How long an entry is trusted by default: the bound on how late another process's change
/// is seen.
pub const DEFAULT_TTL: Duration = Duration::from_secs(1);
/// Entries per map; a full map is emptied rather than grown, so memory stays bounded.
const CAPACITY: usize = 4096;

pub(crate) struct DirectoryCache {
    ttl: Duration,
    /// Bumped by every invalidation, so that a read that started before a write cannot put
    /// what it read (possibly older than the write) back into the cache.
    epoch: AtomicU64,
    pub orgs: Map<SfId, Arc<Org>>,
    pub users: Map<SfId, Arc<User>>,
    pub usernames: Map<String, Arc<User>>,
    pub apps: Map<SfId, Arc<ConnectedApp>>,
    pub clients: Map<String, Arc<ConnectedApp>>,
    pub approvals: Map<(SfId, SfId), bool>,
}

/// A ticket taken before reading the database; `put` honours it only if nothing was
/// invalidated since.
#[derive(Clone, Copy)]
pub(crate) struct Ticket(u64);

impl DirectoryCache {
    pub fn new(ttl: Duration) -> DirectoryCache {
        DirectoryCache {
            ttl,
            epoch: AtomicU64::new(0),
            orgs: Map::default(),
            users: Map::default(),
            usernames: Map::default(),
            apps: Map::default(),
            clients: Map::default(),
            approvals: Map::default(),
        }
    }

    /// A cached value, if there is one young enough.
    pub fn get<K, V, Q>(&self, map: &Map<K, V>, key: &Q) -> Option<V>
    where
        K: Eq + Hash + std::borrow::Borrow<Q>,
        V: Clone,
        Q: Eq + Hash + ?Sized,
    {
        map.get(key, self.ttl)
    }

    /// The cached value of `key`, or what `load` finds (cached if found and nothing was
    /// invalidated while loading). `load` is called only on a miss (a query is not even built
    /// for a hit), and only after the ticket is taken.
    pub async fn get_or_load<K, V, Q, E, F>(
        &self,
        map: &Map<K, V>,
        key: &Q,
        load: impl FnOnce() -> F,
    ) -> Result<Option<V>, E>
    where
        K: Eq + Hash + std::borrow::Borrow<Q>,
        V: Clone,
        Q: Eq + Hash + ToOwned<Owned = K> + ?Sized,
        F: std::future::Future<Output = Result<Option<V>, E>>,
    {
        if let Some(v) = self.get(map, key) {
            return Ok(Some(v));
        }
        let ticket = self.ticket();
        let found = load().await?;
        if let Some(v) = &found {
            self.put(map, ticket, key.to_owned(), v.clone());
        }
        Ok(found)
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.epoch.load(Ordering::Acquire))
    }

    pub fn invalidate(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.orgs.clear();
        self.users.clear();
        self.usernames.clear();
        self.apps.clear();
        self.clients.clear();
        self.approvals.clear();
    }

    pub fn put<K: Eq + Hash, V>(&self, map: &Map<K, V>, ticket: Ticket, key: K, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = map.write();
        // Checked under the map's lock: an invalidation after this point clears this entry.
        if self.epoch.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }
}

pub(crate) struct Map<K, V> {
    entries: RwLock<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for Map<K, V> {
    fn default() -> Self {
        Map {
            entries: RwLock::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Map<K, V> {
    fn get<Q>(&self, key: &Q, ttl: Duration) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < ttl)
            .map(|(_, v)| v.clone())
    }
}

impl<K, V> Map<K, V> {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }

    fn clear(&self) {
        self.write().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalidation_during_a_read_keeps_the_read_out() {
        let cache = DirectoryCache::new(DEFAULT_TTL);
        let map: Map<&str, bool> = Map::default();
        let ticket = cache.ticket();
        cache.invalidate();
        cache.put(&map, ticket, "k", true);
        assert_eq!(cache.get(&map, "k"), None);
        cache.put(&map, cache.ticket(), "k", true);
        assert_eq!(cache.get(&map, "k"), Some(true));
    }

    #[test]
    fn a_full_map_starts_over() {
        let cache = DirectoryCache::new(DEFAULT_TTL);
        let map: Map<String, usize> = Map::default();
        for i in 0..=CAPACITY {
            cache.put(&map, cache.ticket(), format!("c{i}"), i);
        }
        assert_eq!(map.write().len(), 1);
        assert_eq!(cache.get(&map, &format!("c{CAPACITY}")), Some(CAPACITY));
    }

    #[test]
    fn entries_expire_and_a_zero_ttl_caches_nothing() {
        let cache = DirectoryCache::new(Duration::from_millis(30));
        let map: Map<&str, u8> = Map::default();
        cache.put(&map, cache.ticket(), "k", 1);
        assert_eq!(cache.get(&map, "k"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&map, "k"), None);
        let off = DirectoryCache::new(Duration::ZERO);
        off.put(&map, off.ticket(), "j", 1);
        assert_eq!(off.get(&map, "j"), None);
    }
}
