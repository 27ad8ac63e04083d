//! Connections nobody can hold open: a request head, a body or a TLS handshake that stalls is
//! closed after its timeout, an idle keep-alive connection after its own (longer) one, and a
//! flood of half-sent requests at the file-descriptor limit delays others only until their
//! timeout passes. Each closing has a control that the same connection, when it keeps to
//! time, is served.

use std::time::{Duration, Instant};

use idforce_server::listener::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;

fn limits(head: u64, body: u64, idle: u64) -> ConnectionLimits {
    ConnectionLimits {
        request_head: Duration::from_millis(head),
        body_stall: Duration::from_millis(body),
        tls_handshake: Duration::from_millis(head),
        idle: Duration::from_millis(idle),
        max_connections: None,
    }
}

async fn server(l: ConnectionLimits) -> TestServer {
    TestServer::start_with(CONFIG, |o| o.limits = l).await
}

async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.url.trim_start_matches("http://"))
        .await
        .expect("connect")
}

/// What the server did within `wait`: closed the connection (`None`), sent bytes, or nothing.
enum Seen {
    Closed,
    Bytes(String),
    Nothing,
}

async fn watch(c: &mut TcpStream, wait: Duration) -> Seen {
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(wait, c.read(&mut buf)).await {
        Err(_) => Seen::Nothing,
        Ok(Ok(0)) | Ok(Err(_)) => Seen::Closed,
        Ok(Ok(n)) => Seen::Bytes(String::from_utf8_lossy(&buf[..n]).into_owned()),
    }
}

/// Reads until the server closes, for at most `wait`; returns what it sent and when it closed.
async fn until_closed(c: &mut TcpStream, wait: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut got = String::new();
    while started.elapsed() < wait {
        match watch(c, wait - started.elapsed()).await {
            Seen::Closed => return (got, Some(started.elapsed())),
            Seen::Bytes(b) => got.push_str(&b),
            Seen::Nothing => break,
        }
    }
    (got, None)
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test]
async fn a_request_head_not_complete_in_time_is_closed() {
    let s = server(limits(1000, 10_000, 30_000)).await;
    let mut c = connect(&s).await;
    c.write_all(b"POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        matches!(
            watch(&mut c, Duration::from_millis(400)).await,
            Seen::Nothing
        ),
        "closed before its timeout"
    );
    let (_, closed) = until_closed(&mut c, Duration::from_secs(5)).await;
    let closed = closed.expect("a half-sent head is closed");
    assert!(
        closed < Duration::from_millis(2500),
        "closed after {closed:?}"
    );

    // A head dribbled a byte at a time is timed from its first byte, not its last.
    let mut c = connect(&s).await;
    let started = Instant::now();
    let mut closed = false;
    for b in b"GET /healthz HTTP/1.1\r\nHost: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n\r\n" {
        if c.write_all(&[*b]).await.is_err() {
            closed = true;
            break;
        }
        if let Seen::Closed = watch(&mut c, Duration::from_millis(100)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "a dribbled head lived {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_millis(3000));

    // Control: the same head sent whole is answered.
    let mut c = connect(&s).await;
    c.write_all(HEALTH).await.unwrap();
    match watch(&mut c, Duration::from_secs(5)).await {
        Seen::Bytes(b) => assert!(b.starts_with("HTTP/1.1 200"), "{b}"),
        _ => panic!("no answer to a whole head"),
    }
}

#[tokio::test]
async fn a_stalled_body_is_closed() {
    let s = server(limits(1000, 1000, 30_000)).await;
    let head = "POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\n\
                Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n";
    let mut c = connect(&s).await;
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(b"grant_type=password").await.unwrap();
    assert!(
        matches!(
            watch(&mut c, Duration::from_millis(400)).await,
            Seen::Nothing
        ),
        "answered before the body stalled"
    );
    let (_, closed) = until_closed(&mut c, Duration::from_secs(5)).await;
    let closed = closed.expect("a stalled body is closed");
    assert!(
        closed < Duration::from_millis(2500),
        "closed after {closed:?}"
    );

    // Control: a body in two parts, each within the stall timeout, is read and answered.
    let body = "grant_type=password&client_id=x&client_secret=y&username=a&password=b";
    let head = format!(
        "POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut c = connect(&s).await;
    c.write_all(head.as_bytes()).await.unwrap();
    c.write_all(&body.as_bytes()[..20]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.write_all(&body.as_bytes()[20..]).await.unwrap();
    match watch(&mut c, Duration::from_secs(5)).await {
        Seen::Bytes(b) => {
            assert!(b.starts_with("HTTP/1.1 400"), "{b}");
            assert!(
                b.contains("invalid_client_id"),
                "the whole body was read: {b}"
            );
        }
        _ => panic!("no answer to a body sent in time"),
    }
}

#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_the_head_timeout_then_closes() {
    let s = server(limits(500, 10_000, 2000)).await;
    let mut c = connect(&s).await;
    c.write_all(HEALTH).await.unwrap();
    assert!(matches!(
        watch(&mut c, Duration::from_secs(5)).await,
        Seen::Bytes(_)
    ));
    // Idle for three head timeouts: still open (the idle timeout applies), and reusable.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.write_all(HEALTH).await.unwrap();
    match watch(&mut c, Duration::from_secs(5)).await {
        Seen::Bytes(b) => assert!(b.starts_with("HTTP/1.1 200"), "{b}"),
        _ => panic!("a keep-alive connection idle for 1.5 s was not reusable"),
    }
    let started = Instant::now();
    let (_, closed) = until_closed(&mut c, Duration::from_secs(6)).await;
    let closed = closed.expect("an idle connection is closed");
    assert!(
        closed > Duration::from_millis(1500) && closed < Duration::from_millis(3500),
        "closed {closed:?} after its last answer"
    );
    assert!(started.elapsed() < Duration::from_secs(6));

    // A connection that never sends anything is idle too.
    let mut c = connect(&s).await;
    let (_, closed) = until_closed(&mut c, Duration::from_secs(6)).await;
    assert!(closed.expect("closed") < Duration::from_millis(3500));
}

#[tokio::test]
async fn a_tls_handshake_not_done_in_time_is_closed_and_https_answers_carry_hsts() {
    install_crypto();
    let s = TestServer::start_with(CONFIG, |o| {
        o.tls = Some((fixture("tls.crt"), fixture("tls.key")));
        o.limits = limits(1000, 10_000, 30_000);
    })
    .await;
    let addr = s.url.trim_start_matches("https://").to_owned();
    let mut c = TcpStream::connect(&addr).await.unwrap();
    assert!(matches!(
        watch(&mut c, Duration::from_millis(400)).await,
        Seen::Nothing
    ));
    let (_, closed) = until_closed(&mut c, Duration::from_secs(5)).await;
    assert!(closed.expect("a silent TLS client is closed") < Duration::from_millis(2500));

    // Control: a real TLS client is served, and told to keep to HTTPS.
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.crt")).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let url = s.url.replace("127.0.0.1", "localhost");
    let r = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["strict-transport-security"],
        "max-age=31536000",
        "HSTS on HTTPS"
    );
    // Plain HTTP answers carry none (a browser ignores it there, and it would be a lie).
    let plain = TestServer::start().await;
    let r = plain.http.get(plain.at("/healthz")).send().await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
}

/// The attack, on the real binary with the common fd limit of 1,024: 2,000 clients
/// each send half a request head and hold it. The server serves as many as fit below the
/// limit, closes them when the head timeout passes, and answers a health check from someone
/// else once the backlog has drained.
#[test]
fn half_sent_requests_at_the_fd_limit_delay_others_only_until_their_timeout() {
    use std::io::Write;
    install_crypto();
    let dir = workdir(&CONFIG.replace(
        "[server]\n",
        "[server]\nheader_timeout = \"1s\"\nidle_timeout = \"5s\"\n",
    ));
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "ulimit -n 1024 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_idforce"),
    ]);
    let p = spawn_command(
        cmd,
        dir.path(),
        &[
            "--config",
            "idforce.toml",
            "--database",
            &database_url(dir.path()),
        ],
        &[],
    );
    let addr = p.url.trim_start_matches("http://").to_owned();
    let health = || -> Result<u16, String> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        http.get(format!("{}/healthz", p.url))
            .send()
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    };
    assert_eq!(health(), Ok(200), "control: healthy before the flood");

    let mut held = Vec::new();
    for _ in 0..2000 {
        match std::net::TcpStream::connect(&addr) {
            Ok(mut c) => {
                let _ = c.write_all(b"POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\n");
                held.push(c);
            }
            Err(e) => panic!("connect {}: {e}", held.len()),
        }
    }
    let started = Instant::now();
    assert_eq!(
        health(),
        Ok(200),
        "answered behind 2,000 half-sent requests"
    );
    let waited = started.elapsed();
    // 2,000 heads at 1 s each, about 900 at a time: a few seconds, not forever.
    assert!(waited < Duration::from_secs(20), "waited {waited:?}");
    drop(held);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (status, logs) = p.finish();
    assert!(status.success(), "{logs}");
}
