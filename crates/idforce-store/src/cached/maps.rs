//! Bounded, short-lived maps of directory entries, each with its own generation: an entry
//! is dropped when its record changes, and a read that began before a change to its map does
//! not put what it read back.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Entries per map; a full map is emptied rather than grown, so memory stays bounded.
const CAPACITY: usize = 4096;

pub(crate) struct Map<K, V> {
    entries: RwLock<HashMap<K, (Instant, V)>>,
    /// Bumped by every invalidation in this map.
    generation: AtomicU64,
}

/// A map's generation, taken before reading the store; `put` honours it only if the map
/// has not changed since.
#[derive(Clone, Copy)]
pub(crate) struct Ticket(u64);

impl<K, V> Default for Map<K, V> {
    fn default() -> Self {
        Map {
            entries: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Map<K, V> {
    /// The entry of `key`, if there is one younger than `ttl`.
    pub fn get<Q>(&self, key: &Q, ttl: Duration) -> Option<V>
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

impl<K: Eq + Hash, V> Map<K, V> {
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    pub fn put(&self, ticket: Ticket, key: K, value: V) {
        let mut entries = self.write();
        // Checked under the lock: an invalidation after this point removes this entry.
        if self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Drops every entry `stale` picks (by key or value).
    pub fn invalidate(&self, stale: impl Fn(&K, &V) -> bool) {
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|k, (_, v)| !stale(k, v));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(1);

    #[test]
    fn an_invalidation_during_a_read_keeps_the_read_out() {
        let map: Map<&str, bool> = Map::default();
        let ticket = map.ticket();
        map.invalidate(|k, _| *k == "other");
        map.put(ticket, "k", true);
        assert_eq!(map.get("k", TTL), None);
        map.put(map.ticket(), "k", true);
        assert_eq!(map.get("k", TTL), Some(true));
    }

    #[test]
    fn invalidation_drops_only_what_it_picks() {
        let map: Map<&str, u8> = Map::default();
        map.put(map.ticket(), "a", 1);
        map.put(map.ticket(), "b", 2);
        map.invalidate(|_, v| *v == 2);
        assert_eq!((map.get("a", TTL), map.get("b", TTL)), (Some(1), None));
    }

    #[test]
    fn a_full_map_starts_over() {
        let map: Map<String, usize> = Map::default();
        for i in 0..=CAPACITY {
            map.put(map.ticket(), format!("c{i}"), i);
        }
        assert_eq!(map.len(), 1);
        assert_eq!(map.get(&format!("c{CAPACITY}"), TTL), Some(CAPACITY));
    }

    #[test]
    fn entries_expire() {
        let map: Map<&str, u8> = Map::default();
        map.put(map.ticket(), "k", 1);
        assert_eq!(map.get("k", Duration::from_millis(30)), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(map.get("k", Duration::from_millis(30)), None);
    }
}
