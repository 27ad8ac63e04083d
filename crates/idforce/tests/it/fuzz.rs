//! Thousands of random methods, headers and bodies against every endpoint: never a 5xx, a
//! panic, a hang or a dropped connection.

use std::sync::Arc;

use crate::helpers::*;

/// xorshift64*: deterministic, so a failure can be replayed from its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick(&mut self, v: &[&'static str]) -> &'static str {
        v[(self.next() % v.len() as u64) as usize]
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const PATHS: &[&str] = &[
    "/services/oauth2/token",
    "/services/oauth2/introspect",
    "/services/oauth2/revoke",
    "/id/00D000000000001EAA/0058d0000000001AAA",
    "/id/x/y",
    "/services/data",
    "/services/data/v62.0/",
    "/services/data/v62.0/sobjects/User/005000000000000",
    "/healthz",
    "/readyz",
    "/metrics",
    "/nope",
];
const KEYS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "username",
    "password",
    "assertion",
    "token",
    "scope",
    "format",
    "callback",
    "token_type_hint",
    "refresh_token",
    "code",
    "x",
];
const VALUES: &[&str] = &[
    "password",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "refresh_token",
    INTEGRATION_ID,
    INTEGRATION_SECRET,
    ALICE,
    "",
    "%00",
    "a.b.c",
    "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.AA",
    "00D000000000001!AQ",
    "json",
    "xml",
    "urlencoded",
    "api web",
    "\u{1F600}",
    "\"'<>",
];
const CONTENT_TYPES: &[&str] = &[
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded;charset=UTF-8",
    "multipart/form-data; boundary=zzz",
    "application/json",
    "text/plain",
    "",
    "multipart/form-data",
];
const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_requests_never_break_the_server() {
    let s = Arc::new(TestServer::start().await);
    let mut handles = Vec::new();
    for worker in 0..8u64 {
        let s = s.clone();
        handles.push(tokio::spawn(async move {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (worker + 1));
            for i in 0..300 {
                let method = reqwest::Method::from_bytes(rng.pick(METHODS).as_bytes()).unwrap();
                let mut path = rng.pick(PATHS).to_string();
                if rng.next().is_multiple_of(4) {
                    let q: Vec<String> = (0..rng.next() % 4)
                        .map(|_| format!("{}={}", rng.pick(KEYS), urlish(rng.pick(VALUES))))
                        .collect();
                    path = format!("{path}?{}", q.join("&"));
                }
                let mut req = s.http.request(method.clone(), s.at(&path));
                let ct = rng.pick(CONTENT_TYPES);
                if !ct.is_empty() {
                    req = req.header("content-type", ct);
                }
                match rng.next() % 5 {
                    0 => {
                        let junk: String = rng
                            .bytes(12)
                            .iter()
                            .map(|b| (b' ' + b % 94) as char)
                            .collect();
                        req = req.header("authorization", format!("Basic {junk}"))
                    }
                    1 => req = req.bearer_auth(rng.pick(VALUES).replace(['\r', '\n'], "")),
                    2 => {
                        req = req.header(
                            "accept",
                            rng.pick(&[
                                "application/xml",
                                "*/*",
                                "text/html",
                                "application/x-www-form-urlencoded",
                            ]),
                        )
                    }
                    _ => {}
                }
                let body: Vec<u8> = match rng.next() % 3 {
                    0 => {
                        let n = (rng.next() % 300) as usize;
                        rng.bytes(n)
                    }
                    1 => (0..rng.next() % 8)
                        .map(|_| format!("{}={}", rng.pick(KEYS), urlish(rng.pick(VALUES))))
                        .collect::<Vec<_>>()
                        .join("&")
                        .into_bytes(),
                    _ => Vec::new(),
                };
                let r = req.body(body).send().await.unwrap_or_else(|e| {
                    panic!("worker {worker} request {i} {method} {path}: connection failed: {e}")
                });
                assert!(
                    r.status().as_u16() < 500,
                    "worker {worker} request {i}: {method} {path} -> {}",
                    r.status()
                );
                let _ = r.bytes().await.expect("a complete body");
            }
        }));
    }
    for h in handles {
        h.await.expect("worker finished");
    }
    // Malformed HTTP on the wire gets an answer or a clean close, never a hang.
    for raw in [&b"GARBAGE\r\n\r\n"[..], b"POST /services/oauth2/token HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nab", b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n"] {
        let out = raw_http_with(&s.url, raw, true).await;
        assert!(!out.contains(" 500 "), "{out}");
    }
    assert_eq!(
        s.http.get(s.at("/healthz")).send().await.unwrap().status(),
        200
    );
}

fn urlish(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One raw request and what it must get: well-framed requests an answer; broken ones an
/// answer or a clean close; never a hang.
struct Raw {
    bytes: Vec<u8>,
    well_formed: bool,
    soap: bool,
}

const SOAP_BODIES: &[&str] = &[
    // Billion laughs: entity expansion.
    "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\"><!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\"><!ENTITY d \"&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;\">]><env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\"><env:Body><login xmlns=\"urn:partner.soap.sforce.com\"><username>&d;</username><password>x</password></login></env:Body></env:Envelope>",
    // XXE: an external entity.
    "<?xml version=\"1.0\"?><!DOCTYPE l [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\"><env:Body><login xmlns=\"urn:partner.soap.sforce.com\"><username>&x;</username><password>x</password></login></env:Body></env:Envelope>",
    "<env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\"><env:Body><login xmlns=\"urn:partner.soap.sforce.com\"><username>alice@acme.test</username><password>wrong</password></login></env:Body></env:Envelope>",
    "<env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\"><env:Body><logout/></env:Body></env:Envelope>",
    "<a><b><c><d><e><f><g><h><i><j><k><l><m><n><o><p>",
    "<?xml version=\"1.0\" encoding=\"UTF-16\"?><x/>",
    "\u{feff}<env:Envelope/>",
    "not xml at all &amp; &#0; &#xD800;",
];

/// A well-framed request to a path, with random headers and body, or a broken one.
fn raw_request(rng: &mut Rng) -> Raw {
    let soap = rng.next().is_multiple_of(4);
    let path = if soap {
        "/services/Soap/u/62.0".to_owned()
    } else {
        let mut p = rng.pick(PATHS).to_owned();
        if rng.next().is_multiple_of(3) {
            let q: Vec<String> = (0..rng.next() % 4)
                .map(|_| format!("{}={}", rng.pick(KEYS), urlish(rng.pick(VALUES))))
                .collect();
            p = format!("{p}?{}", q.join("&"));
        }
        p
    };
    let body: Vec<u8> = if soap {
        rng.pick(SOAP_BODIES).as_bytes().to_vec()
    } else {
        match rng.next() % 4 {
            0 => {
                let n = (rng.next() % 200) as usize;
                rng.bytes(n)
            }
            1 | 2 => (0..rng.next() % 8)
                .map(|_| format!("{}={}", rng.pick(KEYS), urlish(rng.pick(VALUES))))
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes(),
            _ => Vec::new(),
        }
    };
    let method = if soap { "POST" } else { rng.pick(METHODS) };
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    let ct = if soap {
        "text/xml"
    } else {
        rng.pick(CONTENT_TYPES)
    };
    if !ct.is_empty() {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    for _ in 0..rng.next() % 4 {
        head.push_str(rng.pick(&[
            "Accept: application/xml\r\n",
            "Accept-Encoding: gzip, br\r\n",
            "Content-Encoding: gzip\r\n",
            "Authorization: Basic !!!\r\n",
            "Authorization: Bearer 00D000000000001!AQ\r\n",
            "Cookie: idforce_sid=abc; idforce_csrf=\"\\\"\r\n",
            "SOAPAction: login\r\n",
            "X-Forwarded-For: 10.0.0.1\r\n",
            "Expect: 100-continue\r\n",
            "Accept: */*;q=0.5, text/html;q=abc\r\n",
        ]));
    }
    let chunked = rng.next().is_multiple_of(5);
    let mut bytes = head.into_bytes();
    if chunked {
        bytes.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
        for part in body.chunks(37) {
            bytes.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            bytes.extend_from_slice(part);
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"0\r\n\r\n");
    } else {
        bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        bytes.extend_from_slice(&body);
    }
    // One in four is then broken on the wire.
    if rng.next().is_multiple_of(4) {
        let broken = match rng.next() % 9 {
            0 => b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
            1 => b"POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
            2 => b"POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n".to_vec(),
            3 => b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nab\r\n0\r\n\r\n".to_vec(),
            4 => b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n".to_vec(),
            5 => [b"GET /".as_slice(), &vec![b'a'; 70_000], b" HTTP/1.1\r\nHost: x\r\n\r\n"].concat(),
            6 => [b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ".as_slice(), &vec![b'b'; 100_000], b"\r\n\r\n"].concat(),
            7 => b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n".to_vec(),
            _ => {
                let mut junk = rng.bytes(64);
                junk.extend_from_slice(b"\r\n\r\n");
                junk
            }
        };
        return Raw {
            bytes: broken,
            well_formed: false,
            soap: false,
        };
    }
    Raw {
        bytes,
        well_formed: true,
        soap,
    }
}

/// Sends one request on a connection of its own; the status of its answer, or `None` if the
/// server closed without one.
async fn send_raw(addr: &str, bytes: &[u8]) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // A server that answers before reading everything may close on the rest: not an error.
    let _ = c.write_all(bytes).await;
    let mut out = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        let mut buf = [0u8; 8192];
        loop {
            // An answer on a connection kept alive (no `Connection: close` in a broken
            // request) is complete when the server falls silent.
            let wait = if out.is_empty() { 15_000 } else { 300 };
            let next =
                tokio::time::timeout(std::time::Duration::from_millis(wait), c.read(&mut buf));
            match next.await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
                Err(_) if !out.is_empty() => break,
                Err(_) => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "no answer and no close within 15 s: {}\ngot: {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(400)]),
        String::from_utf8_lossy(&out)
    );
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    Some((status, text))
}

/// The attack kept in the suite: a few thousand raw requests, malformed heads, bodies,
/// encodings and SOAP entities. No 5xx but SOAP faults; every well-framed request answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_socket_requests_never_break_the_server() {
    use idforce_server::listener::ConnectionLimits;
    let s = Arc::new(
        TestServer::start_with(CONFIG, |o| {
            o.limits = ConnectionLimits {
                request_head: std::time::Duration::from_secs(2),
                body_stall: std::time::Duration::from_secs(2),
                ..ConnectionLimits::default()
            }
        })
        .await,
    );
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut handles = Vec::new();
    for worker in 0..8u64 {
        let addr = addr.clone();
        handles.push(tokio::spawn(async move {
            let mut rng = Rng(0xD1B5_4A32_D192_ED03 ^ (worker + 1));
            let (mut answered, mut closed) = (0, 0);
            for i in 0..400 {
                let raw = raw_request(&mut rng);
                let shown =
                    String::from_utf8_lossy(&raw.bytes[..raw.bytes.len().min(300)]).into_owned();
                match send_raw(&addr, &raw.bytes).await {
                    Some((status, text)) => {
                        answered += 1;
                        let soap_fault =
                            raw.soap && status == 500 && text.contains("<soapenv:Fault>");
                        assert!(
                            status < 500 || soap_fault,
                            "worker {worker} request {i} -> {status}: {shown}\n{text}"
                        );
                    }
                    None => {
                        closed += 1;
                        assert!(
                            !raw.well_formed,
                            "worker {worker} request {i}: closed without an answer: {shown}"
                        );
                    }
                }
            }
            (answered, closed)
        }));
    }
    let (mut answered, mut closed) = (0, 0);
    for h in handles {
        let (a, c) = h.await.expect("worker finished");
        answered += a;
        closed += c;
    }
    assert!(answered > 2000, "{answered} answered, {closed} closed");
    assert_eq!(
        s.http.get(s.at("/healthz")).send().await.unwrap().status(),
        200
    );
}
