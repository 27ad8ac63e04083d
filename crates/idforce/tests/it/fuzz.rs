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
