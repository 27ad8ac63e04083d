//! The results: a table on stdout, JSON for `chart.py` and for later comparison, and the
//! targets of the performance issue, each judged.

use serde_json::{Value, json};

use crate::load::Outcome;

#[derive(Debug, Clone)]
pub struct Row {
    pub workload: String,
    pub server: &'static str,
    pub rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub cpu_s_per_1000: f64,
    pub peak_rss_mb: f64,
    pub ok: u64,
    pub failed: u64,
    pub first_failure: Option<String>,
    /// Requests per second asked of an open-loop run; `None` for a maximum-rate run.
    pub offered_rate: Option<f64>,
    /// Percent of the machine's CPU time the hypervisor took during the run.
    pub stolen_percent: f64,
}

impl Row {
    /// A workload left out of this run (`--only`): no figures, so no target can be met with it.
    pub fn skipped(workload: &str, server: &'static str) -> Row {
        Row {
            workload: workload.to_owned(),
            server,
            rate: f64::NAN,
            p50_ms: f64::NAN,
            p99_ms: f64::NAN,
            cpu_s_per_1000: f64::NAN,
            peak_rss_mb: f64::NAN,
            ok: 0,
            failed: 0,
            first_failure: None,
            offered_rate: None,
            stolen_percent: f64::NAN,
        }
    }

    pub fn new(
        workload: &str,
        server: &'static str,
        out: &Outcome,
        cpu_seconds: f64,
        peak_rss: u64,
        offered_rate: Option<f64>,
    ) -> Row {
        Row {
            workload: workload.to_owned(),
            server,
            rate: out.rate(),
            p50_ms: out.percentile_ms(50.0),
            p99_ms: out.percentile_ms(99.0),
            cpu_s_per_1000: cpu_seconds / (out.ok.max(1) as f64) * 1000.0,
            peak_rss_mb: peak_rss as f64 / 1048576.0,
            ok: out.ok,
            failed: out.failed,
            first_failure: out.first_failure.clone(),
            offered_rate,
            stolen_percent: f64::NAN,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "workload": self.workload, "server": self.server,
            "requests_per_second": round(self.rate, 1),
            "p50_ms": round(self.p50_ms, 3), "p99_ms": round(self.p99_ms, 3),
            "cpu_seconds_per_1000_requests": round(self.cpu_s_per_1000, 4),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "ok": self.ok, "failed": self.failed,
            "first_failure": self.first_failure,
            "offered_rate": self.offered_rate.map(|r| round(r, 0)),
            "cpu_stolen_by_hypervisor_percent": round(self.stolen_percent, 2),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub measured: f64,
    pub bound: f64,
    /// `true` when the measured value must be at least the bound, `false` for at most.
    pub at_least: bool,
    pub unit: &'static str,
    /// The largest share of CPU time the hypervisor stole during the rows it is read from.
    pub stolen_percent: f64,
    /// For a latency: the same figure for a request that does no work, at the same rate.
    pub floor: f64,
}

/// Above this share of stolen CPU during its rows, a target's verdict says more about the
/// machine than about the servers.
const NOISY_STOLEN_PERCENT: f64 = 5.0;

impl Target {
    /// A figure that must be at most `bound`.
    pub fn at_most(name: impl Into<String>, measured: f64, bound: f64, unit: &'static str) -> Self {
        Target {
            name: name.into(),
            measured,
            bound,
            at_least: false,
            unit,
            stolen_percent: f64::NAN,
            floor: f64::NAN,
        }
    }

    /// A figure that must be at least `bound`.
    pub fn at_least(
        name: impl Into<String>,
        measured: f64,
        bound: f64,
        unit: &'static str,
    ) -> Self {
        Target {
            at_least: true,
            ..Target::at_most(name, measured, bound, unit)
        }
    }

    /// Notes the rows the target is read from (for the stolen CPU during them).
    pub fn during(mut self, rows: &[&Row]) -> Target {
        self.stolen_percent = rows
            .iter()
            .map(|r| r.stolen_percent)
            .filter(|p| p.is_finite())
            .fold(f64::NAN, f64::max);
        self
    }

    /// Notes the floor under a latency (see `Bench::floor`).
    pub fn above(mut self, floor: f64) -> Target {
        self.floor = floor;
        self
    }

    pub fn noisy(&self) -> bool {
        self.noise().is_some()
    }

    /// Why the verdict says more about the machine than about the servers, if it does: much
    /// CPU stolen during its rows, or a latency whose floor alone is over the bound (a request
    /// that does no work could not have met it; slow spells do that with no steal at all).
    pub fn noise(&self) -> Option<String> {
        if self.stolen_percent > NOISY_STOLEN_PERCENT {
            Some(format!(
                "{:.1}% of the CPU stolen during its rows",
                self.stolen_percent
            ))
        } else if !self.at_least && self.floor > self.bound {
            Some(format!(
                "the floor alone is over the bound ({:.2}{})",
                self.floor, self.unit
            ))
        } else {
            None
        }
    }

    /// Whether this run has the rows the target is read from (`--only` leaves some out); one
    /// that has not is neither met nor missed by it.
    pub fn was_measured(&self) -> bool {
        self.measured.is_finite()
    }

    pub fn met(&self) -> bool {
        if self.at_least {
            self.measured >= self.bound
        } else {
            self.measured <= self.bound
        }
    }
}

pub struct Report {
    pub rows: Vec<Row>,
    pub targets: Vec<Target>,
    pub facts: Vec<(String, Value)>,
}

impl Report {
    pub fn row(&self, workload: &str, server: &str) -> Option<&Row> {
        self.rows
            .iter()
            .find(|r| r.workload == workload && r.server == server)
    }

    pub fn print(&self) {
        println!(
            "\n{:<42} {:<14} {:>10} {:>9} {:>9} {:>13} {:>9} {:>8} {:>9}",
            "workload",
            "server",
            "req/s",
            "p50 ms",
            "p99 ms",
            "CPU s/1000",
            "RSS MB",
            "ratio",
            "stolen %"
        );
        for r in &self.rows {
            let ratio = match (r.server, self.row(&r.workload, "oidc-provider")) {
                ("idforce", Some(peer)) if r.offered_rate.is_none() => {
                    format!("{:.2}x", r.rate / peer.rate)
                }
                _ => String::new(),
            };
            println!(
                "{:<42} {:<14} {:>10.0} {:>9.3} {:>9.3} {:>13.3} {:>9.1} {:>8} {:>9.1}",
                r.workload,
                r.server,
                r.rate,
                r.p50_ms,
                r.p99_ms,
                r.cpu_s_per_1000,
                r.peak_rss_mb,
                ratio,
                r.stolen_percent
            );
        }
        println!();
        for (k, v) in &self.facts {
            println!("{k}: {v}");
        }
        println!("\ntargets:");
        for t in &self.targets {
            if !t.was_measured() {
                println!("  [not measured] {}", t.name);
                continue;
            }
            println!(
                "  [{}] {}: {:.2}{} ({} {:.2}{}){}{}",
                if t.met() { "met" } else { "MISSED" },
                t.name,
                t.measured,
                t.unit,
                if t.at_least { "≥" } else { "≤" },
                t.bound,
                t.unit,
                if t.floor.is_finite() {
                    format!(
                        "; floor {:.2}{}: GET /healthz at the same rate",
                        t.floor, t.unit
                    )
                } else {
                    String::new()
                },
                match t.noise() {
                    Some(why) => format!(" — noisy: {why}; run again"),
                    None => String::new(),
                }
            );
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "rows": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
            "targets": self.targets.iter().map(|t| json!({
                "name": t.name, "measured": round(t.measured, 3), "bound": t.bound,
                "at_least": t.at_least, "unit": t.unit, "met": t.met(),
                "cpu_stolen_during_rows_percent": round(t.stolen_percent, 2),
                "noisy": t.noisy(), "floor": round(t.floor, 3),
            })).collect::<Vec<_>>(),
            "facts": self.facts.iter().cloned().collect::<serde_json::Map<_, _>>(),
        })
    }
}

fn round(v: f64, digits: i32) -> Value {
    if v.is_finite() {
        let f = 10f64.powi(digits);
        json!((v * f).round() / f)
    } else {
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_whose_rows_were_left_out_is_not_measured_and_not_met() {
        let missing = Target::at_least("x", f64::NAN, 2.0, "x");
        assert!(!missing.was_measured() && !missing.met());
        assert!(Target::at_most("p99", 3.0, 2.0, " ms").was_measured());
    }

    #[test]
    fn a_verdict_is_noisy_when_cpu_was_stolen_or_the_floor_alone_misses() {
        let latency = || Target::at_most("p99", 3.0, 2.0, " ms");
        assert_eq!(latency().noise(), None);
        assert_eq!(latency().above(1.9).noise(), None);
        assert_eq!(
            latency().above(2.5).noise().as_deref(),
            Some("the floor alone is over the bound (2.50 ms)")
        );
        let mut stolen = latency().above(0.5);
        stolen.stolen_percent = 7.31;
        assert_eq!(
            stolen.noise().as_deref(),
            Some("7.3% of the CPU stolen during its rows")
        );
        assert!(stolen.noisy());
        // A floor means nothing to a target that must be reached from below.
        assert_eq!(
            Target::at_least("x", 1.0, 2.0, "x").above(3.0).noise(),
            None
        );
    }
}
