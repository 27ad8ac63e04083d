//! The load generator: keep-alive HTTP/1.1 connections, one request in flight on each, on one
//! thread (like `wrk -t1`), so that it takes at most one of the machine's cores from the
//! server under test and takes the same from every server.
//!
//! Like wrk, it writes each request as bytes prepared once per connection and parses each
//! answer where it was read (`httparse` for the head). A general client (hyper's, until the
//! twelfth session) costs the generator two task hand-offs and a header map per request: CPU
//! that the server under test lacks on a two-core machine, and time that every latency counts.
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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

    fn same(&self) -> bool {
        matches!(self, Bodies::Same(_))
    }
}

#[derive(Clone)]
pub struct Workload {
    /// `GET` or `POST`.
    pub method: &'static str,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub bodies: Bodies,
    pub expect_status: u16,
}

impl Workload {
    /// A GET of `path`.
    pub fn get(path: &str) -> Workload {
        Workload {
            method: "GET",
            path: path.to_owned(),
            headers: Vec::new(),
            bodies: Bodies::Same(Bytes::new()),
            expect_status: 200,
        }
    }

    /// A POST of a form to `path`.
    pub fn form(path: &str, body: String) -> Workload {
        Workload {
            method: "POST",
            path: path.to_owned(),
            headers: vec![(
                "content-type",
                "application/x-www-form-urlencoded".to_owned(),
            )],
            bodies: Bodies::Same(Bytes::from(body)),
            expect_status: 200,
        }
    }

    /// The request's bytes, into `out`.
    fn encode(&self, host: &str, body: &[u8], out: &mut Vec<u8>) {
        use std::io::Write;
        out.clear();
        for part in [
            self.method,
            " ",
            &self.path,
            " HTTP/1.1\r\nhost: ",
            host,
            "\r\n",
        ] {
            out.extend_from_slice(part.as_bytes());
        }
        for (name, value) in &self.headers {
            for part in [name, ": ", value.as_str(), "\r\n"] {
                out.extend_from_slice(part.as_bytes());
            }
        }
        if self.method != "GET" {
            // Writing into a Vec cannot fail.
            let _ = write!(out, "content-length: {}\r\n", body.len());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
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

/// Drives `workload` at `addrs` as planned (connection i to `addrs[i % addrs.len()]`, each
/// naming its own address as the host), on a runtime of its own with one thread.
pub fn run(addrs: &[SocketAddr], workload: &Workload, plan: Plan) -> Outcome {
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
    runtime.block_on(drive(addrs, workload, plan))
}

async fn drive(addrs: &[SocketAddr], workload: &Workload, plan: Plan) -> Outcome {
    let start = Instant::now();
    let deadline = start + plan.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..plan.connections {
        let workload = workload.clone();
        let addr = addrs[i % addrs.len()];
        let host = addr.to_string();
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
    let mut conn = match Conn::open(addr).await {
        Ok(c) => c,
        Err(e) => {
            out.failed += 1;
            out.first_failure = Some(e);
            return out;
        }
    };
    // A workload that sends the same request every time has its bytes prepared once.
    let mut request = Vec::with_capacity(1024);
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
        if request.is_empty() || !workload.bodies.same() {
            let Some(body) = workload.bodies.next() else {
                break;
            };
            workload.encode(&host, &body, &mut request);
        }
        let answer = conn.exchange(&request).await;
        let latency = sent_at.elapsed();
        match answer {
            Ok(status) if status == workload.expect_status => {
                out.ok += 1;
                out.latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            }
            Ok(status) => {
                out.failed += 1;
                if out.first_failure.is_none() {
                    let body = conn.body();
                    out.first_failure = Some(format!(
                        "{status}: {}",
                        String::from_utf8_lossy(&body[..body.len().min(300)])
                    ));
                }
            }
            Err(e) => {
                out.failed += 1;
                out.first_failure.get_or_insert(e);
            }
        }
        if conn.closed {
            // The server ended the connection (or it broke); a new one continues the run.
            match Conn::open(addr).await {
                Ok(c) => conn = c,
                Err(_) => break,
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
        let mut conn = Conn::open(addr).await?;
        let body = workload.bodies.next().ok_or("no body")?;
        let mut request = Vec::new();
        workload.encode(host, &body, &mut request);
        let status = conn.exchange(&request).await?;
        let body = Bytes::copy_from_slice(conn.body());
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

/// Largest answer the generator reads (its buffer grows to hold one).
const MAX_ANSWER: usize = 16 << 20;

/// One keep-alive connection: what was read and not yet parsed, and the last answer's body.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    filled: usize,
    body: Vec<u8>,
    /// The server closed the connection, or it can no longer be trusted to frame answers.
    closed: bool,
}

/// How an answer's body ends (RFC 9112 §6.3).
#[derive(Debug, PartialEq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// What an answer's head says.
#[derive(Debug, PartialEq)]
struct Head {
    status: u16,
    /// Bytes the head takes, its closing blank line included: where the body starts.
    len: usize,
    framing: Framing,
    /// The server will close the connection after this answer.
    close: bool,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn, String> {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Conn {
            stream,
            buf: vec![0; 16 * 1024],
            filled: 0,
            body: Vec::new(),
            closed: false,
        })
    }

    /// Writes `request`, reads its answer whole; the status.
    async fn exchange(&mut self, request: &[u8]) -> Result<u16, String> {
        let answer = match self.stream.write_all(request).await {
            Ok(()) => self.read_answer().await,
            Err(e) => Err(e.to_string()),
        };
        self.closed |= answer.is_err();
        answer
    }

    fn body(&self) -> &[u8] {
        &self.body
    }

    async fn read_answer(&mut self) -> Result<u16, String> {
        let head = loop {
            if let Some(head) = parse_head(&self.buf[..self.filled])? {
                break head;
            }
            self.fill().await?;
        };
        self.body.clear();
        let end = match head.framing {
            Framing::Length(n) => {
                let end = head
                    .len
                    .checked_add(n)
                    .filter(|end| *end <= MAX_ANSWER)
                    .ok_or_else(|| format!("an answer larger than {MAX_ANSWER} bytes"))?;
                while self.filled < end {
                    self.fill().await?;
                }
                self.body.extend_from_slice(&self.buf[head.len..end]);
                end
            }
            Framing::Chunked => loop {
                match unchunk(&self.buf[head.len..self.filled], &mut self.body)? {
                    Some(n) => break head.len + n,
                    None => {
                        self.body.clear();
                        self.fill().await?;
                    }
                }
            },
            Framing::UntilClose => {
                while self.fill().await.is_ok() {}
                self.body
                    .extend_from_slice(&self.buf[head.len..self.filled]);
                self.filled
            }
        };
        self.buf.copy_within(end..self.filled, 0);
        self.filled -= end;
        self.closed |= head.close || head.framing == Framing::UntilClose;
        Ok(head.status)
    }

    /// Reads more of the stream into the buffer; an error at its end.
    async fn fill(&mut self) -> Result<(), String> {
        if self.filled == self.buf.len() {
            if self.buf.len() >= MAX_ANSWER {
                return Err(format!("an answer larger than {MAX_ANSWER} bytes"));
            }
            self.buf.resize(self.buf.len() * 2, 0);
        }
        match self.stream.read(&mut self.buf[self.filled..]).await {
            Ok(0) => Err("connection closed by the server".into()),
            Ok(n) => {
                self.filled += n;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The head at the start of `bytes`, once all of it is there.
fn parse_head(bytes: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let len = match response.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("a malformed answer: {e}")),
    };
    let status = response.code.unwrap_or(0);
    let mut close = response.version == Some(0);
    let mut framing = None;
    for h in response.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            framing = Some(Framing::Chunked);
        } else if h.name.eq_ignore_ascii_case("content-length") && framing.is_none() {
            let n = value
                .parse()
                .map_err(|_| format!("a content-length of {value:?}"))?;
            framing = Some(Framing::Length(n));
        } else if h.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let framing = match framing {
        Some(f) => f,
        None if (100..200).contains(&status) || status == 204 || status == 304 => {
            Framing::Length(0)
        }
        None => Framing::UntilClose,
    };
    Ok(Some(Head {
        status,
        len,
        framing,
        close,
    }))
}

/// Decodes a chunked body at the start of `bytes` into `body`: how many bytes it took once it
/// is all there, `None` while more is to come.
fn unchunk(bytes: &[u8], body: &mut Vec<u8>) -> Result<Option<usize>, String> {
    let mut at = 0;
    loop {
        let Some(eol) = find_crlf(&bytes[at..]) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&bytes[at..at + eol]).unwrap_or("");
        let size = line.split(';').next().unwrap_or("").trim();
        let size =
            usize::from_str_radix(size, 16).map_err(|_| format!("a chunk size of {size:?}"))?;
        at += eol + 2;
        if size == 0 {
            // Trailer fields, if any, then the empty line that ends the body.
            loop {
                let Some(eol) = find_crlf(&bytes[at..]) else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some(at));
                }
            }
        }
        if bytes.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&bytes[at..at + size]);
        if &bytes[at + size..at + size + 2] != b"\r\n" {
            return Err("a chunk without its CRLF".into());
        }
        at += size + 2;
    }
}

fn find_crlf(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\r\n")
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

    #[test]
    fn requests_are_written_whole() {
        let mut out = Vec::new();
        let mut w = Workload::form("/services/oauth2/token", "grant_type=x".into());
        w.encode("127.0.0.1:1", b"grant_type=x", &mut out);
        assert_eq!(
            out,
            b"POST /services/oauth2/token HTTP/1.1\r\nhost: 127.0.0.1:1\r\n\
              content-type: application/x-www-form-urlencoded\r\ncontent-length: 12\r\n\r\n\
              grant_type=x"
        );
        w = Workload::get("/healthz");
        w.headers.push(("authorization", "Bearer t".into()));
        w.encode("h", b"", &mut out);
        assert_eq!(
            out,
            b"GET /healthz HTTP/1.1\r\nhost: h\r\nauthorization: Bearer t\r\n\r\n"
        );
    }

    #[test]
    fn heads_say_how_their_bodies_end() {
        let head = |s: &str| parse_head(s.as_bytes());
        assert_eq!(head("HTTP/1.1 200 OK\r\ncontent-le"), Ok(None));
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}"),
            Ok(Some(Head {
                status: 200,
                len: 38,
                framing: Framing::Length(7),
                close: false
            }))
        );
        assert_eq!(
            head(
                "HTTP/1.1 400 Bad\r\ntransfer-encoding: gzip, Chunked\r\nconnection: close\r\n\r\n"
            ),
            Ok(Some(Head {
                status: 400,
                len: 73,
                framing: Framing::Chunked,
                close: true
            }))
        );
        // HTTP/1.0 closes unless it says otherwise; 204 has no body; without framing, the
        // body runs to the end of the connection.
        assert_eq!(
            head("HTTP/1.0 204 No Content\r\n\r\n"),
            Ok(Some(Head {
                status: 204,
                len: 27,
                framing: Framing::Length(0),
                close: true
            }))
        );
        assert_eq!(
            head("HTTP/1.1 200 OK\r\n\r\n"),
            Ok(Some(Head {
                status: 200,
                len: 19,
                framing: Framing::UntilClose,
                close: false
            }))
        );
        assert!(head("HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n").is_err());
        assert!(head("SSH-2.0-OpenSSH\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies_are_decoded_once_complete() {
        let mut body = Vec::new();
        let all = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\ntrailer: t\r\n\r\nNEXT";
        assert_eq!(unchunk(all, &mut body), Ok(Some(all.len() - 4)));
        assert_eq!(body, b"hello world");
        for cut in 0..all.len() - 4 {
            body.clear();
            assert_eq!(unchunk(&all[..cut], &mut body), Ok(None), "cut at {cut}");
        }
        assert!(unchunk(b"zz\r\n", &mut body).is_err());
        assert!(unchunk(b"2\r\nabXY", &mut body).is_err());
    }

    /// A server that answers in pieces, in each framing, then closes: the generator reads
    /// every answer whole and opens a new connection after the close.
    #[test]
    fn answers_are_read_across_reads_and_connections() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let pieces: [&[&[u8]]; 3] = [
                &[
                    b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n",
                    b"\r\nhe",
                    b"llo",
                ],
                &[
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r",
                    b"\n0\r\n\r\n",
                ],
                &[b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"],
            ];
            let mut accepted = 0;
            for stream in listener.incoming().take(2) {
                let mut stream = stream.expect("accept");
                accepted += 1;
                let mut buf = [0u8; 1024];
                for answer in &pieces {
                    if stream.read(&mut buf).unwrap_or(0) == 0 {
                        break;
                    }
                    for piece in answer.iter() {
                        stream.write_all(piece).expect("write");
                        stream.flush().expect("flush");
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
            }
            accepted
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let out = runtime.block_on(async {
            let plan = Plan {
                connections: 1,
                duration: Duration::from_secs(5),
                rate: None,
            };
            let w = Workload {
                bodies: Bodies::each_once(vec![Bytes::new(); 4]),
                ..Workload::get("/")
            };
            drive(&[addr], &w, plan).await
        });
        assert_eq!((out.ok, out.failed), (4, 0), "{:?}", out.first_failure);
        assert_eq!(server.join().expect("server"), 2);
    }
}
