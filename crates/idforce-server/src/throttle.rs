//! Request throttles kept in memory on each node: a token bucket per key (a client id, a
//! source address, a browser session), measured on the server's clock so tests can move it.
//!
//! Hand-written rather than `governor`: its keyed limiter brings a concurrent map and its own
//! clock source for what is here one map behind one lock, and it cannot read our `Clock`.

use std::collections::HashMap;
use std::sync::Mutex;

use idforce_core::model::Millis;

/// How many requests a key may make at once (`burst`), and how often one more is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub every_ms: i64,
}

/// Keys tracked at most; past this, the keys whose buckets are full again are forgotten
/// (they would be allowed anyway), and if none is, the stalest half.
const MAX_KEYS: usize = 100_000;

pub struct Throttle {
    rate: Rate,
    /// Per key, the time at which its bucket is full again (GCRA's "theoretical arrival time").
    full_at: Mutex<HashMap<String, Millis>>,
}

impl Throttle {
    pub fn new(rate: Rate) -> Throttle {
        Throttle {
            rate,
            full_at: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request's token for `key`: `Ok` if it may go ahead, else `Err(ms)` to wait
    /// before the next one is allowed.
    pub fn take(&self, key: &str, now: Millis) -> Result<(), i64> {
        let Rate { burst, every_ms } = self.rate;
        let window = i64::from(burst.max(1)) * every_ms;
        let mut map = self.full_at.lock().unwrap_or_else(|p| p.into_inner());
        let full_at = map.get(key).copied().unwrap_or(now).max(now);
        let after = full_at + every_ms;
        if after - now > window {
            // Over the burst: the wait is until one token has come back.
            return Err(after - now - window);
        }
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            prune(&mut map, now);
        }
        map.insert(key.to_owned(), after);
        Ok(())
    }
}

fn prune(map: &mut HashMap<String, Millis>, now: Millis) {
    map.retain(|_, full_at| *full_at > now);
    if map.len() >= MAX_KEYS {
        let mut times: Vec<Millis> = map.values().copied().collect();
        times.sort_unstable();
        let cut = times[times.len() / 2];
        map.retain(|_, full_at| *full_at > cut);
    }
}

/// The key of a source address: an IPv4 address, or an IPv6 /64 (one host is commonly given a
/// whole /64, so per-address keys would let it take thousands of buckets).
pub fn address_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Seconds to tell a client to wait (`Retry-After`), rounded up, at least one.
pub fn retry_after_secs(wait_ms: i64) -> i64 {
    ((wait_ms + 999) / 1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let t = Throttle::new(Rate {
            burst: 3,
            every_ms: 1000,
        });
        for _ in 0..3 {
            assert_eq!(t.take("a", 0), Ok(()));
        }
        assert_eq!(t.take("a", 0), Err(1000), "the fourth waits a second");
        assert_eq!(t.take("b", 0), Ok(()), "another key has its own bucket");
        assert_eq!(t.take("a", 999), Err(1));
        assert_eq!(t.take("a", 1000), Ok(()));
        assert_eq!(t.take("a", 1000), Err(1000));
        // Idle long enough, the whole burst is back.
        for _ in 0..3 {
            assert_eq!(t.take("a", 10_000), Ok(()));
        }
        assert!(t.take("a", 10_000).is_err());
    }

    #[test]
    fn ipv6_addresses_share_their_64() {
        let a = address_key("2001:db8:1:2:aaaa::1".parse().expect("ip"));
        let b = address_key("2001:db8:1:2:bbbb::2".parse().expect("ip"));
        let c = address_key("2001:db8:1:3::1".parse().expect("ip"));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            address_key("::ffff:10.1.2.3".parse().expect("ip")),
            "10.1.2.3"
        );
        assert_eq!(address_key("10.1.2.3".parse().expect("ip")), "10.1.2.3");
    }

    #[test]
    fn the_map_stays_bounded() {
        let t = Throttle::new(Rate {
            burst: 1,
            every_ms: 60_000,
        });
        for i in 0..(MAX_KEYS + 10) {
            assert_eq!(t.take(&i.to_string(), i as i64), Ok(()));
        }
        assert!(t.full_at.lock().unwrap_or_else(|p| p.into_inner()).len() <= MAX_KEYS);
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1001), 2);
    }
}
