//! Time as a dependency: the server reads the clock only through `Clock`, so tests can move
//! it (session expiry, lockout, assertion expiry) without sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use idforce_core::model::Millis;

pub trait Clock: Send + Sync {
    fn now(&self) -> Millis;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// The system clock plus an offset that a test may advance; or, once frozen, a fixed instant
/// that moves only when the test advances it (for rules measured in real time, like rates).
#[derive(Clone, Default)]
pub struct ShiftedClock {
    offset_ms: Arc<AtomicI64>,
    /// The instant it was frozen at; 0 while it runs.
    frozen_at: Arc<AtomicI64>,
}

impl ShiftedClock {
    pub fn advance_secs(&self, secs: i64) {
        self.offset_ms.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// Stops the clock where it is.
    pub fn freeze(&self) {
        self.frozen_at.store(SystemClock.now(), Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> Millis {
        let base = match self.frozen_at.load(Ordering::SeqCst) {
            0 => SystemClock.now(),
            frozen => frozen,
        };
        base + self.offset_ms.load(Ordering::SeqCst)
    }
}
