//! What a server process costs, read from /proc: CPU time and resident memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// /proc reports CPU time in USER_HZ ticks, which Linux fixes at 100 per second.
const TICKS_PER_SEC: f64 = 100.0;

/// User plus system CPU seconds the process has used so far.
pub fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return f64::NAN;
    };
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    match (tick(11), tick(12)) {
        (Some(u), Some(s)) => (u + s) / TICKS_PER_SEC,
        _ => f64::NAN,
    }
}

/// The share of this machine's CPU time the hypervisor gave to other guests since `start`:
/// while it is taken, every thread on that core stops, so a latency tail is read against it.
pub struct Stolen {
    seconds: f64,
    started: Instant,
}

impl Stolen {
    pub fn start() -> Stolen {
        Stolen {
            seconds: machine_steal_seconds(),
            started: Instant::now(),
        }
    }

    /// Percent of all cores' time since `start` (NaN where the kernel does not report it).
    pub fn percent(&self) -> f64 {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        100.0 * (machine_steal_seconds() - self.seconds)
            / (cores * self.started.elapsed().as_secs_f64().max(1e-9))
    }
}

/// Seconds of CPU time the hypervisor gave to other guests while this machine's processes
/// were runnable (`steal` in /proc/stat), summed over all cores; NaN where it is not reported.
fn machine_steal_seconds() -> f64 {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            // "cpu user nice system idle iowait irq softirq steal ...": steal is the 8th number.
            let line = s.lines().find(|l| l.starts_with("cpu "))?;
            line.split_whitespace().nth(8)?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |ticks| ticks / TICKS_PER_SEC)
}

/// How late a thread of an idle machine wakes from a 1 ms sleep: the 50th, 99th and 99.9th
/// percentiles of the overshoot, in milliseconds, over `samples` sleeps. No server can answer
/// with a tail latency below the machine's own wake-up tail.
pub fn wakeup_overshoot_ms(samples: usize) -> [f64; 3] {
    let mut late: Vec<f64> = (0..samples.max(1))
        .map(|_| {
            let start = Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            (start.elapsed().as_secs_f64() - 0.001).max(0.0) * 1000.0
        })
        .collect();
    late.sort_by(f64::total_cmp);
    [50.0, 99.0, 99.9].map(|p| crate::load::nearest_rank(&late, p).unwrap_or(f64::NAN))
}

/// What one hand-off between two threads costs on this machine: the 50th and 99th percentiles,
/// in microseconds, of a round trip (a message to a thread asleep in a channel, and its answer
/// back) over `samples` round trips, each after a 200 µs pause so that the other thread has
/// gone to sleep, as a server's threads do between requests at half load. A grant is four such
/// hand-offs (load generator, worker, writer, worker, load generator); on a VM whose idle vCPUs
/// halt, each can cost tens of microseconds (measured in 2026-12; docs/performance.md's history).
pub fn handoff_round_trip_us(samples: usize) -> [f64; 2] {
    let (to_echo, echo_in) = std::sync::mpsc::channel::<Instant>();
    let (echo_out, back) = std::sync::mpsc::channel::<Instant>();
    let echo = std::thread::spawn(move || {
        while let Ok(sent) = echo_in.recv() {
            if echo_out.send(sent).is_err() {
                break;
            }
        }
    });
    let samples = samples.max(1);
    let mut trips: Vec<f64> = Vec::with_capacity(samples);
    for _ in 0..samples {
        std::thread::sleep(Duration::from_micros(200));
        if to_echo.send(Instant::now()).is_err() {
            break;
        }
        match back.recv() {
            Ok(sent) => trips.push(sent.elapsed().as_secs_f64() * 1e6),
            Err(_) => break,
        }
    }
    drop(to_echo);
    let _ = echo.join();
    trips.sort_by(f64::total_cmp);
    [50.0, 99.0].map(|p| crate::load::nearest_rank(&trips, p).unwrap_or(f64::NAN))
}

/// Resident set size now, in bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    status_kb(pid, "VmRSS:") * 1024
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// CPU seconds used so far by all of `pids` together.
pub fn cpu_seconds_of(pids: &[u32]) -> f64 {
    pids.iter().map(|&p| cpu_seconds(p)).sum()
}

/// Samples the summed RSS of some processes every 20 ms until stopped; keeps the highest.
pub struct PeakRss {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakRss {
    pub fn start(pids: Vec<u32>) -> PeakRss {
        let rss = move || pids.iter().map(|&p| rss_bytes(p)).sum::<u64>();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss()));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        PeakRss {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(super::cpu_seconds(pid) >= 0.0);
        assert!(super::rss_bytes(pid) > 0);
        assert!(super::machine_steal_seconds() >= 0.0);
        let [p50, p99, p999] = super::wakeup_overshoot_ms(20);
        assert!(0.0 <= p50 && p50 <= p99 && p99 <= p999);
    }

    #[test]
    fn times_a_hand_off() {
        let [p50, p99] = super::handoff_round_trip_us(50);
        assert!(0.0 < p50 && p50 <= p99, "{p50} {p99}");
    }
}
