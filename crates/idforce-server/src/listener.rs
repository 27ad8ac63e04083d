//! Accepting connections so that nobody can hold the server open: timeouts on every phase of a
//! connection, a cap on connections below the file-descriptor limit, and an accept loop that
//! logs its errors and keeps going.
//!
//! hyper's own header timeout is not used: it also runs while a keep-alive connection waits
//! for its next request, so it cannot tell a slow request head (closed after 10 s) from an idle
//! connection (kept for 60 s). Each connection's I/O is wrapped instead ([`Watched`]) and
//! learns from the service when a request has arrived.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, header};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// How long each phase of a connection may take, and how many connections are served at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From the first byte of a request to the end of its head.
    pub request_head: Duration,
    /// Longest wait for the next part of a request body (the whole body must arrive within
    /// `idle`).
    pub body_stall: Duration,
    pub tls_handshake: Duration,
    /// A keep-alive connection with no request in flight, and a response the client does
    /// not read.
    pub idle: Duration,
    /// `None`: as many as the file-descriptor limit leaves room for ([`connection_cap`]).
    pub max_connections: Option<usize>,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            request_head: Duration::from_secs(10),
            body_stall: Duration::from_secs(10),
            tls_handshake: Duration::from_secs(10),
            idle: Duration::from_secs(60),
            max_connections: None,
        }
    }
}

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN: Duration = Duration::from_secs(30);

/// Raises the soft limit on open files to the hard limit (as Go's runtime does at start) and
/// returns how many connections fit below it, leaving room for the store's files and
/// connections, the TLS files and the log: an eighth of the limit, at least 64.
pub fn connection_cap() -> usize {
    let limit = raise_fd_limit().unwrap_or(1024);
    let headroom = (limit / 8).max(64);
    limit.saturating_sub(headroom).max(1) as usize
}

#[cfg(unix)]
fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; setrlimit only reads it.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    // RLIM_INFINITY: no limit worth counting against.
    Some(lim.rlim_cur.min(1 << 20))
}

#[cfg(not(unix))]
fn raise_fd_limit() -> Option<u64> {
    None
}

/// Binds with a listen backlog that holds a burst of connections while all slots are taken
/// (the standard library's is 128; the kernel clamps this to `somaxconn`).
pub fn bind(addr: &str) -> io::Result<std::net::TcpListener> {
    let resolved = std::net::ToSocketAddrs::to_socket_addrs(addr)?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
    let socket = match resolved {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(resolved)?;
    let listener = socket.listen(4096)?;
    listener.into_std()
}

/// Serves `service` on `listener` (over TLS when `tls` is given) until `shutdown` resolves,
/// then lets in-flight requests finish.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    service: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()>
where
    S: tower::Service<
            Request<TimedBody>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static,
{
    let cap = limits.max_connections.unwrap_or_else(connection_cap).max(1);
    let slots = Arc::new(Semaphore::new(cap));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        // A slot first: while every slot is taken, new connections wait in the backlog.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    errors.record(&e);
                    if errors::is_exhaustion(&e) {
                        // Out of descriptors or memory: wait for connections to close.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let (builder, service, tls) = (builder.clone(), service.clone(), tls.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let activity = Arc::new(Activity::default());
            let https = tls.is_some();
            let per_request = PerRequest {
                service,
                activity: activity.clone(),
                peer,
                body_stall: limits.body_stall,
                body_whole: limits.idle,
                https,
            };
            let hyper_service = hyper::service::service_fn(move |req| per_request.call(req));
            let served = match tls {
                None => {
                    let io =
                        TokioIo::new(Watched::new(stream, activity, limits, Protocol::Unknown));
                    let conn = builder.serve_connection(io, hyper_service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.tls_handshake, acceptor.accept(stream)).await;
                    let stream = match handshake {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let protocol = match stream.get_ref().1.alpn_protocol() {
                        Some(b"h2") => Protocol::Http2,
                        _ => Protocol::Unknown,
                    };
                    let io = TokioIo::new(Watched::new(stream, activity, limits, protocol));
                    let conn = builder.serve_connection(io, hyper_service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {},
        () = tokio::time::sleep(DRAIN) => {
            tracing::warn!("requests still in flight after {DRAIN:?}; stopping anyway");
        }
    }
    Ok(())
}

/// What one connection's requests need: the service, and the connection's [`Activity`].
#[derive(Clone)]
struct PerRequest<S> {
    service: S,
    activity: Arc<Activity>,
    peer: SocketAddr,
    body_stall: Duration,
    body_whole: Duration,
    https: bool,
}

impl<S> PerRequest<S>
where
    S: tower::Service<
            Request<TimedBody>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static,
{
    fn call(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send + use<S>
    {
        let in_flight = InFlight::begin(self.activity.clone());
        let (stall, whole) = (self.body_stall, self.body_whole);
        let mut req = req.map(|body| TimedBody::new(body, stall, whole));
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let https = self.https;
        let answer = self.service.clone().oneshot(req);
        async move {
            let mut response = match answer.await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            if https {
                // Browsers that have seen this host over HTTPS keep to it for a year.
                response
                    .headers_mut()
                    .entry(header::STRICT_TRANSPORT_SECURITY)
                    .or_insert(HeaderValue::from_static("max-age=31536000"));
            }
            drop(in_flight);
            Ok(response)
        }
    }
}

/// What a connection's service tells its I/O: how many requests are in flight, how many have
/// arrived so far (so a request head that was being timed is known to be complete), and when
/// the last one finished (the idle time counts from there: an HTTP/2 response is written after
/// its request's task has finished).
struct Activity {
    in_flight: AtomicUsize,
    arrived: AtomicU64,
    opened: Instant,
    /// Milliseconds from `opened` to the end of the last request.
    finished_ms: AtomicU64,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            arrived: AtomicU64::new(0),
            opened: Instant::now(),
            finished_ms: AtomicU64::new(0),
        }
    }
}

impl Activity {
    fn last_finished(&self) -> Instant {
        self.opened + Duration::from_millis(self.finished_ms.load(Ordering::Relaxed))
    }
}

/// A request in flight, from its head's arrival until its response or its cancellation.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn begin(activity: Arc<Activity>) -> InFlight {
        activity.arrived.fetch_add(1, Ordering::Relaxed);
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let since = self.0.opened.elapsed().as_millis();
        self.0
            .finished_ms
            .fetch_max(u64::try_from(since).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection's I/O with deadlines: a read waiting past its deadline fails, which ends the
/// connection. The deadline is 10 s after the first byte of an HTTP/1 request until its head
/// has arrived, none while a request is in flight (its body is timed by [`TimedBody`]), and
/// 60 s after the last byte or the last finished request when idle. A write, flush or close
/// that cannot progress for the idle timeout (a client that does not read) fails too.
struct Watched<IO> {
    io: IO,
    activity: Arc<Activity>,
    limits: ConnectionLimits,
    protocol: Protocol,
    /// When the current request head began, and how many requests had arrived then.
    head: Option<(Instant, u64)>,
    last_progress: Instant,
    read_timer: Pin<Box<Sleep>>,
    write_timer: Pin<Box<Sleep>>,
}

/// What the connection speaks: told by TLS's ALPN, else by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Unknown,
    Http1,
    Http2,
}

impl<IO> Watched<IO> {
    fn new(
        io: IO,
        activity: Arc<Activity>,
        limits: ConnectionLimits,
        protocol: Protocol,
    ) -> Watched<IO> {
        let now = Instant::now();
        Watched {
            io,
            activity,
            limits,
            protocol,
            head: None,
            last_progress: now,
            read_timer: Box::pin(tokio::time::sleep_until(now + limits.idle)),
            write_timer: Box::pin(tokio::time::sleep_until(now + limits.idle)),
        }
    }

    fn read_deadline(&self) -> Option<Instant> {
        if self.activity.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        match self.head {
            Some((began, arrived)) if arrived == self.activity.arrived.load(Ordering::Relaxed) => {
                Some(began + self.limits.request_head)
            }
            _ => Some(self.last_progress.max(self.activity.last_finished()) + self.limits.idle),
        }
    }

    /// What a read that times out now was waiting for.
    fn expiring(&self) -> &'static str {
        let arrived = self.activity.arrived.load(Ordering::Relaxed);
        if self.head.is_some_and(|(_, seen)| seen == arrived) {
            "request head not complete in time"
        } else {
            "connection idle"
        }
    }

    fn read_progress(&mut self, read: &[u8]) {
        let now = Instant::now();
        self.last_progress = now;
        if self.protocol == Protocol::Unknown {
            // HTTP/2 with prior knowledge starts with its preface; anything else is HTTP/1.
            self.protocol = if read.starts_with(b"PRI * HTTP/2.0") {
                Protocol::Http2
            } else {
                Protocol::Http1
            };
        }
        // HTTP/2 frames come and go between requests (SETTINGS, WINDOW_UPDATE, PING): only
        // HTTP/1 has a request head to time, and HTTP/2 connections are timed by idleness.
        if self.protocol == Protocol::Http1 && self.activity.in_flight.load(Ordering::Relaxed) == 0
        {
            let arrived = self.activity.arrived.load(Ordering::Relaxed);
            // Bytes while nothing is in flight begin a request, unless they continue the head
            // already being timed.
            if self.head.is_none_or(|(_, seen)| seen != arrived) {
                self.head = Some((now, arrived));
            }
        }
    }
}

impl<IO> Watched<IO> {
    /// A write's outcome: progress moves the deadline on; a write pending is timed.
    fn wrote(
        &mut self,
        written: Poll<io::Result<usize>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                self.last_progress = Instant::now();
                Poll::Ready(Ok(n))
            }
            Poll::Pending => self.write_stalled(cx),
            done => done,
        }
    }

    /// A write, flush or close the client is not letting through: pending until the idle
    /// timeout has passed since the last progress, then an error.
    fn write_stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let deadline = self.last_progress + self.limits.idle;
        if expired(&mut self.write_timer, deadline, cx) {
            return Poll::Ready(Err(timed_out("response not read in time")));
        }
        Poll::Pending
    }
}

fn expired(timer: &mut Pin<Box<Sleep>>, deadline: Instant, cx: &mut Context<'_>) -> bool {
    if timer.deadline() != deadline {
        timer.as_mut().reset(deadline);
    }
    timer.as_mut().poll(cx).is_ready()
}

fn timed_out(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what)
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.read_progress(&buf.filled()[before..]);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => match this.read_deadline() {
                Some(deadline) => {
                    if expired(&mut this.read_timer, deadline, cx) {
                        return Poll::Ready(Err(timed_out(this.expiring())));
                    }
                    Poll::Pending
                }
                None => {
                    // In flight: no deadline, but a look again after an idle period. hyper
                    // does not read again once the response is written (this read's wake-up
                    // stands), so without this the idle deadline would never be armed.
                    let again = Instant::now() + this.limits.idle;
                    this.read_timer.as_mut().reset(again);
                    let _ = this.read_timer.as_mut().poll(cx);
                    Poll::Pending
                }
            },
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.io).poll_write(cx, data);
        this.wrote(written, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(written, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    // A flush or a TLS close_notify waits on the client as a write does: the same deadline.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Pending => this.write_stalled(cx),
            done => done,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Pending => this.write_stalled(cx),
            done => done,
        }
    }
}

/// A request body whose next part must arrive within the stall timeout, and the whole within
/// the idle timeout: a client dribbling a byte every few seconds cannot hold a connection.
pub struct TimedBody {
    body: Incoming,
    stall: Duration,
    ends_by: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl TimedBody {
    fn new(body: Incoming, stall: Duration, whole: Duration) -> TimedBody {
        TimedBody {
            body,
            stall,
            ends_by: Instant::now() + whole,
            timer: None,
        }
    }
}

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("request body stalled")]
pub struct BodyStalled;

impl Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let deadline = (Instant::now() + this.stall).min(this.ends_by);
                let ends_by = this.ends_by;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                // A timer armed at the last frame keeps its deadline, capped by the whole's.
                if timer.deadline() > ends_by {
                    timer.as_mut().reset(ends_by);
                }
                ready!(timer.as_mut().poll(cx));
                Poll::Ready(Some(Err(BodyStalled.into())))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

mod errors {
    use std::io;

    /// Errors that mean the process is out of something a closing connection gives back.
    pub fn is_exhaustion(e: &io::Error) -> bool {
        #[cfg(unix)]
        if let Some(code) = e.raw_os_error() {
            return matches!(
                code,
                libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM
            );
        }
        matches!(e.kind(), io::ErrorKind::OutOfMemory)
    }
}

/// Accept errors, logged at most once a second with how many were not.
#[derive(Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    fn record(&mut self, e: &io::Error) {
        let now = Instant::now();
        if self
            .last_logged
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(error = %e, suppressed = self.suppressed, "accepting a connection failed");
        self.last_logged = Some(now);
        self.suppressed = 0;
    }
}

/// A PEM file's error in words: a missing file says so plainly.
fn pem_error(e: rustls_pki_types::pem::Error, expected: &str) -> String {
    use rustls_pki_types::pem::Error;
    match e {
        Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => "no such file".into(),
        Error::Io(io) => io.to_string(),
        Error::NoItemsFound => format!("nothing in it is {expected}"),
        other => format!("not {expected}: {other}"),
    }
}

/// A TLS acceptor from PEM files: the certificate chain and its private key, offering HTTP/2
/// and HTTP/1.1 by ALPN.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    // The flag and the config key are both named: either may have given the path.
    let cert_name = format!(
        "TLS certificate (--tls-cert, [server] tls_cert) {}",
        cert.display()
    );
    let key_name = format!("TLS key (--tls-key, [server] tls_key) {}", key.display());
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{cert_name}: {}", pem_error(e, "a PEM certificate chain")))?;
    if chain.is_empty() {
        return Err(format!(
            "{cert_name}: no certificate in the file (expected BEGIN CERTIFICATE)"
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("{key_name}: {}", pem_error(e, "a PEM private key")))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| format!("{cert_name} and {key_name} do not go together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
