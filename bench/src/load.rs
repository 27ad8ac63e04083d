//! The load generator: keep-alive HTTP/1.1 connections, one request in flight on each, on one
//! thread (like `wrk -t1`), so that it takes at most one of the machine's cores from the
//! server under test and takes the same from every server.
//!
//! Two modes: closed loop (every connection sends its next request as soon as the previous
//! answer arrived: the maximum rate) and open loop at a fixed rate, where latency is counted
//! from when a request was *due*, so a server that stalls is charged for the requests queued
//! behind the stall (no coordinated omission).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// What each request of a workload carries.
#[derive(Clone)]
pub enum Bodies {
    /// The same request every time.
    Same(Bytes),
    /// A different body per request, each used once (e.g. single-use assertions); the run
    /// ends early when they run out.
    EachOnce(Arc<Vec<Bytes>>, Arc<AtomicUsize>),
}

impl Bodies {
    pub fn each_once(bodies: Vec<Bytes>) -> Bodies {
        Bodies::EachOnce(Arc::new(bodies), Arc::new(AtomicUsize::new(0)))
    }

    fn next(&self) -> Option<Bytes> {
        match self {
            Bodies::Same(b) => Some(b.clone()),
            Bodies::EachOnce(all, next) => all.get(next.fetch_add(1, Ordering::Relaxed)).cloned(),
        }
    }
}

#[derive(Clone)]
pub struct Workload {
    pub method: hyper::Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub bodies: Bodies,
    pub expect_status: u16,
}

impl Workload {
    pub fn form(path: &str, body: String) -> Workload {
        Workload {
            method: hyper::Method::POST,
            path: path.to_owned(),
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            )],
            bodies: Bodies::Same(Bytes::from(body)),
            expect_status: 200,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    pub duration: Duration,
    /// Requests per second across all connections; `None` for as fast as answered.
    pub rate: Option<f64>,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub ok: u64,
    pub failed: u64,
    pub elapsed: Duration,
    /// Latency of every answered request, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// The first unexpected answer, to say why a run failed.
    pub first_failure: Option<String>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        nearest_rank(&self.latencies_us, p).map_or(f64::NAN, |us| f64::from(us) / 1000.0)
    }
}

/// The `p`th percentile (0-100) of `sorted` by the nearest-rank method; `None` when empty.
pub fn nearest_rank<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// Drives `workload` at `addr` as planned, on a runtime of its own with one thread.
pub fn run(addr: SocketAddr, host: &str, workload: &Workload, plan: Plan) -> Outcome {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return Outcome {
                first_failure: Some(format!("no runtime: {e}")),
                ..Outcome::default()
            };
        }
    };
    runtime.block_on(drive(addr, host, workload, plan))
}

async fn drive(addr: SocketAddr, host: &str, workload: &Workload, plan: Plan) -> Outcome {
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..plan.connections {
        let workload = workload.clone();
        let host = host.to_owned();
        // Open loop: each connection sends every `interval`, the connections staggered.
        let schedule = plan.rate.map(|rate| {
            let interval = Duration::from_secs_f64(plan.connections as f64 / rate);
            (
                interval,
                start + interval.mul_f64(i as f64 / plan.connections as f64),
            )
        });
        tasks.spawn(async move { connection(addr, host, workload, deadline, schedule).await });
    }
    let mut out = Outcome::default();
    while let Some(joined) = tasks.join_next().await {
        let Ok(part) = joined else { continue };
        out.ok += part.ok;
        out.failed += part.failed;
        out.latencies_us.extend(part.latencies_us);
        if out.first_failure.is_none() {
            out.first_failure = part.first_failure;
        }
    }
    // Requests in flight at the deadline finish after it but were sent within it.
    out.elapsed = start
        .elapsed()
        .min(plan.duration)
        .max(Duration::from_millis(1));
    out.latencies_us.sort_unstable();
    out
}

async fn connection(
    addr: SocketAddr,
    host: String,
    workload: Workload,
    deadline: Instant,
    schedule: Option<(Duration, Instant)>,
) -> Outcome {
    let mut out = Outcome::default();
    let mut sender = match open(addr).await {
        Ok(s) => s,
        Err(e) => {
            out.failed += 1;
            out.first_failure = Some(e);
            return out;
        }
    };
    let mut due = schedule.map(|(_, first)| first);
    loop {
        let sent_at = match due {
            Some(at) if at >= deadline => break,
            // Early: wait, and count from waking. Tokio's timer wakes up to a millisecond
            // late; that lateness is the generator's, not the server's.
            Some(at) if Instant::now() < at => {
                tokio::time::sleep_until(at.into()).await;
                Instant::now()
            }
            // Late because the server was slow to answer the previous request: count from
            // when this one was due, so the server is charged for the wait it caused.
            Some(at) => at,
            None => Instant::now(),
        };
        if sent_at >= deadline || Instant::now() >= deadline {
            break;
        }
        let Some(body) = workload.bodies.next() else {
            break;
        };
        let mut req = Request::builder()
            .method(workload.method.clone())
            .uri(&workload.path)
            .header("host", &host);
        for (name, value) in &workload.headers {
            req = req.header(*name, value);
        }
        let Ok(req) = req.body(Full::new(body)) else {
            out.failed += 1;
            break;
        };
        let answer = async {
            let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            Ok::<_, String>((status, body))
        }
        .await;
        let latency = sent_at.elapsed();
        match answer {
            Ok((status, _)) if status == workload.expect_status => {
                out.ok += 1;
                out.latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            }
            Ok((status, body)) => {
                out.failed += 1;
                if out.first_failure.is_none() {
                    out.first_failure = Some(format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    ));
                }
            }
            Err(e) => {
                out.failed += 1;
                out.first_failure.get_or_insert(e);
                // The connection is gone; a new one continues the run.
                match open(addr).await {
                    Ok(s) => sender = s,
                    Err(_) => break,
                }
            }
        }
        if let (Some(at), Some((interval, _))) = (due.as_mut(), schedule) {
            *at += interval;
        }
    }
    out
}

/// One request of `workload`, for setup: its body if the status was the expected one.
pub fn fetch(addr: SocketAddr, host: &str, workload: &Workload) -> Result<Bytes, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut sender = open(addr).await?;
        let body = workload.bodies.next().ok_or("no body")?;
        let mut req = Request::builder()
            .method(workload.method.clone())
            .uri(&workload.path)
            .header("host", host);
        for (name, value) in &workload.headers {
            req = req.header(*name, value);
        }
        let req = req.body(Full::new(body)).map_err(|e| e.to_string())?;
        let response = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status == workload.expect_status {
            Ok(body)
        } else {
            Err(format!(
                "{} {}: {status} {}",
                workload.method,
                workload.path,
                String::from_utf8_lossy(&body)
            ))
        }
    })
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn open(addr: SocketAddr) -> Result<Sender, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let out = Outcome {
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            ..Outcome::default()
        };
        assert_eq!(out.percentile_ms(50.0), 50.0);
        assert_eq!(out.percentile_ms(99.0), 99.0);
        assert_eq!(out.percentile_ms(100.0), 100.0);
    }
}
