//! A real idforce per test: in process (for an injectable clock) or as a child process (for
//! logs, signals and TLS), on port 0, with a temporary SQLite store seeded from `CONFIG`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idforce_core::model::LockoutPolicy;
use idforce_server::clock::ShiftedClock;
use idforce_server::config::ConfigFile;
use idforce_server::{Application, ServeOptions};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use tempfile::TempDir;

pub const INTEGRATION_ID: &str = "3MVG9idforceTestIntegrationApp";
pub const INTEGRATION_SECRET: &str =
    "5E8F398B9392A9CF19E3C12E6413C1CE25D87D2BD5D6156A05A26B2CE8CB37C0";
pub const SELF_SERVICE_ID: &str = "3MVG9idforceTestSelfServiceApp";
pub const SELF_SERVICE_SECRET: &str = "SELFSERVICESECRET0001";
pub const ROTATING_ID: &str = "3MVG9idforceTestRotatingApp";
pub const ROTATING_SECRET: &str = "ROTATINGSECRET0001";
pub const SELF_SERVICE_CALLBACK: &str = "https://app.example/callback";
pub const AUDITOR_ID: &str = "3MVG9idforceTestAuditorApp";
pub const AUDITOR_SECRET: &str = "AUDITORSECRET0001";
pub const GLOBEX_ID: &str = "3MVG9idforceTestGlobexApp";
pub const GLOBEX_SECRET: &str = "GLOBEXSECRET0001";
pub const NO_RUN_AS_ID: &str = "3MVG9idforceTestNoRunAsApp";
pub const NO_RUN_AS_SECRET: &str = "NORUNASSECRET0001";
pub const ALICE: &str = "alice@acme.test";
pub const ALICE_PASSWORD: &str = "Winter2026!";
pub const BOB: &str = "bob@acme.test";
pub const BOB_PASSWORD: &str = "Summer2026!";
pub const BOB_TOKEN: &str = "XYZ789TOKEN";
pub const ORG_ID_15: &str = "00D000000000001";

pub const CONFIG: &str = r#"
[server]
lockout_attempts = 3
lockout_duration = "15m"

[[org]]
name = "Acme"
id = "00D000000000001"

[[org.user]]
username = "alice@acme.test"
password = "Winter2026!"
email = "alice@acme.test"
first_name = "Alice"
last_name = "Example"
profile = "System Administrator"

[[org.user]]
username = "bob@acme.test"
password = "Summer2026!"
security_token = "XYZ789TOKEN"
first_name = "Bob"
last_name = "Builder"
profile = "Standard User"

[[org.user]]
username = "carol@acme.test"
password = "Autumn2026!"
profile = "System Administrator"
active = false

[[org.user]]
username = "integration@acme.test"
password = "Integration2026!"
profile = "API Only"

[[org.app]]
name = "Integration"
client_id = "3MVG9idforceTestIntegrationApp"
client_secret = "5E8F398B9392A9CF19E3C12E6413C1CE25D87D2BD5D6156A05A26B2CE8CB37C0"
callback_urls = ["https://login.salesforce.com/oauth2/callback"]
scopes = ["api", "web", "full", "refresh_token", "openid", "id"]
certificate = "jwt.crt"
permitted_users = "admin_approved"
profiles = ["System Administrator"]
pre_authorized_users = ["integration@acme.test"]
run_as = "integration@acme.test"

[[org.app]]
name = "Self Service"
client_id = "3MVG9idforceTestSelfServiceApp"
client_secret = "SELFSERVICESECRET0001"
callback_urls = ["https://app.example/callback", "myapp://callback"]
scopes = ["api", "refresh_token"]
certificate = "jwt.crt"
permitted_users = "all_users"
session_timeout = "2h"

[[org.app]]
name = "Rotating"
client_id = "3MVG9idforceTestRotatingApp"
client_secret = "ROTATINGSECRET0001"
callback_urls = ["https://rotating.example/cb"]
scopes = ["api", "refresh_token"]
rotate_refresh_tokens = true
require_secret_for_refresh_token_flow = false
require_pkce = true

[[org.app]]
name = "Auditor"
client_id = "3MVG9idforceTestAuditorApp"
client_secret = "AUDITORSECRET0001"
scopes = ["id"]
introspect_all_tokens = true

[[org.app]]
name = "No Run As"
client_id = "3MVG9idforceTestNoRunAsApp"
client_secret = "NORUNASSECRET0001"
scopes = ["api"]

[[org]]
name = "Globex"

[[org.user]]
username = "dave@globex.test"
password = "Globex2026!"
profile = "System Administrator"

[[org.app]]
name = "Globex App"
client_id = "3MVG9idforceTestGlobexApp"
client_secret = "GLOBEXSECRET0001"
scopes = ["api", "id"]
introspect_all_tokens = true
"#;

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A temporary directory holding the config, its certificate and the database.
pub fn workdir(config: &str) -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("idforce.toml"), config).expect("config");
    std::fs::copy(fixture("jwt.crt"), dir.path().join("jwt.crt")).expect("cert");
    dir
}

/// The store of a test directory: SQLite in the directory, or, once the directory has been
/// given a PostgreSQL schema (`IDFORCE_TEST_BACKEND=postgres`), that schema.
pub fn database_url(dir: &Path) -> String {
    match std::fs::read_to_string(dir.join(".database_url")) {
        Ok(url) => url,
        Err(_) => format!("sqlite://{}?mode=rwc", dir.join("idforce.db").display()),
    }
}

/// Under `IDFORCE_TEST_BACKEND=postgres`, gives the directory a fresh PostgreSQL schema and
/// a system secret (which PostgreSQL needs given; SQLite generates its own beside the file).
async fn choose_backend(dir: &Path) {
    if std::env::var("IDFORCE_TEST_BACKEND").as_deref() != Ok("postgres")
        || dir.join(".database_url").exists()
    {
        return;
    }
    match idforce_store::testing::fresh_postgres_schema().await {
        Ok(url) => std::fs::write(dir.join(".database_url"), url).expect("write"),
        Err(why) => panic!("IDFORCE_TEST_BACKEND=postgres but {why}"),
    }
    std::fs::write(dir.join(PG_SECRET_FILE), format!("{POSTGRES_SECRET}\n")).expect("write");
}

/// The system secret of PostgreSQL test stores, and where a test directory keeps it.
pub const POSTGRES_SECRET: &str = "idforce-test-postgres-secret";
const PG_SECRET_FILE: &str = "system.secret";

/// The secret file a server of this directory is given, if any (PostgreSQL stores).
pub fn secret_file(dir: &Path) -> Option<PathBuf> {
    Some(dir.join(PG_SECRET_FILE)).filter(|p| p.exists())
}

pub struct TestServer {
    pub url: String,
    pub clock: ShiftedClock,
    pub http: reqwest::Client,
    pub dir: Arc<TempDir>,
    pub app: Option<AppInfo>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

pub struct AppInfo {
    pub generated: Vec<String>,
    pub demo_secret: Option<(String, String, String, String)>,
}

/// reqwest is built without a bundled TLS provider; the tests use ring, like the server.
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

pub fn client() -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(CONFIG, |_| {}).await
    }

    pub async fn start_with(config: &str, tweak: impl FnOnce(&mut ServeOptions)) -> TestServer {
        let dir = Arc::new(workdir(config));
        Self::start_in(dir, Some(config), tweak).await
    }

    /// Starts on an existing directory (a restart keeps the store).
    pub async fn start_in(
        dir: Arc<TempDir>,
        config: Option<&str>,
        tweak: impl FnOnce(&mut ServeOptions),
    ) -> TestServer {
        Self::try_start_in(dir, config, tweak)
            .await
            .expect("server builds")
    }

    /// `start_with`, for a start that may be refused.
    pub async fn try_start_with(
        config: &str,
        tweak: impl FnOnce(&mut ServeOptions),
    ) -> Result<TestServer, idforce_server::app::StartError> {
        Self::try_start_in(Arc::new(workdir(config)), Some(config), tweak).await
    }

    pub async fn try_start_in(
        dir: Arc<TempDir>,
        config: Option<&str>,
        tweak: impl FnOnce(&mut ServeOptions),
    ) -> Result<TestServer, idforce_server::app::StartError> {
        choose_backend(dir.path()).await;
        let cfg = config
            .map(|_| ConfigFile::load(&dir.path().join("idforce.toml")).expect("config parses"));
        let lockout = LockoutPolicy {
            attempts: 3,
            duration_secs: 900,
        };
        let mut opts = ServeOptions {
            listen: "127.0.0.1:0".into(),
            public_url: None,
            database: database_url(dir.path()),
            store: Default::default(),
            config: cfg,
            tls: None,
            accept_salesforce_audiences: true,
            lockout,
            limits: Default::default(),
            secret: idforce_server::secrets::SecretSources {
                flag_file: secret_file(dir.path()),
                config_file: None,
            },
            explain: Default::default(),
            signing_key: None,
        };
        tweak(&mut opts);
        let clock = ShiftedClock::default();
        let app = Application::build(opts, Arc::new(clock.clone())).await?;
        let url = app.public_url().to_owned();
        let info = AppInfo {
            generated: app.generated.lines.clone(),
            demo_secret: app.demo.as_ref().map(|d| {
                (
                    d.username.clone(),
                    d.password.clone(),
                    d.client_id.clone(),
                    d.client_secret.clone(),
                )
            }),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        Ok(TestServer {
            url,
            clock,
            http: client(),
            dir,
            app: Some(info),
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub async fn stop(mut self) -> Arc<TempDir> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
        self.dir.clone()
    }

    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.at(path))
            .form(form)
            .send()
            .await
            .expect("request")
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self.post_form("/services/oauth2/token", form).await;
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn password_login(&self, username: &str, password: &str) -> Value {
        let (status, body) = self
            .token(&[
                ("grant_type", "password"),
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("username", username),
                ("password", password),
            ])
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn alice_token(&self) -> String {
        self.password_login(ALICE, ALICE_PASSWORD).await["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    pub async fn jwt_login(&self, assertion: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ])
        .await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs() as i64
}

/// An RS256 JWS over `claims`, signed with a fixture key, with the given header.
pub fn sign_jwt_with(key_file: &str, header: &Value, claims: &Value) -> String {
    let key = PrivatePkcs8KeyDer::from_pem_file(fixture(key_file)).expect("key");
    let pair = RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()).expect("rsa key");
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

pub fn sign_jwt(claims: &Value) -> String {
    sign_jwt_with("jwt.key", &serde_json::json!({"alg": "RS256"}), claims)
}

/// Asserts an OAuth error body exactly.
pub fn assert_error(status: u16, body: &Value, want_status: u16, error: &str, description: &str) {
    assert_eq!(
        (
            status,
            body["error"].as_str(),
            body["error_description"].as_str()
        ),
        (want_status, Some(error), Some(description)),
        "{body}"
    );
}

/// The `idforce` binary as a child process, with stdout's first line read for its URL.
pub struct ServerProcess {
    pub child: Child,
    pub url: String,
    stderr: std::thread::JoinHandle<String>,
}

impl ServerProcess {
    /// Waits for the process to exit and returns its status and everything it logged.
    pub fn finish(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().expect("wait");
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::mem::replace(&mut self.stderr, std::thread::spawn(String::new));
        std::thread::spawn(move || tx.send(handle.join().unwrap_or_default()));
        let logs = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_default();
        (status, logs)
    }
}

pub fn idforce() -> Command {
    Command::new(env!("CARGO_BIN_EXE_idforce"))
}

pub fn spawn_process(dir: &Path, extra: &[&str], envs: &[(&str, &str)]) -> ServerProcess {
    spawn_command(idforce(), dir, extra, envs)
}

/// `spawn_process` with a command of the caller's (e.g. the binary behind `sh -c 'ulimit …'`).
pub fn spawn_command(
    mut cmd: Command,
    dir: &Path,
    extra: &[&str],
    envs: &[(&str, &str)],
) -> ServerProcess {
    cmd.current_dir(dir)
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn idforce");
    // Logs are read as they come: a full pipe would stall the server.
    let mut err = child.stderr.take().expect("stderr");
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let Some(Ok(first)) = lines.next() else {
        let _ = child.wait();
        panic!(
            "idforce exited before saying where it listens: {}",
            stderr.join().unwrap_or_default()
        );
    };
    let url = first
        .strip_prefix("idforce listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .to_owned();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    ServerProcess { child, url, stderr }
}

/// Runs an admin command against a store and returns its JSON output.
pub fn admin(database: &str, args: &[&str]) -> Value {
    let mut cmd = idforce();
    if database.starts_with("postgres") {
        cmd.env("IDFORCE_SECRET", POSTGRES_SECRET);
    }
    let out = cmd
        .args(["--database", database, "--json"])
        .args(args)
        .output()
        .expect("run idforce");
    assert!(
        out.status.success(),
        "idforce {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Runs an admin command that must be refused; returns what it said.
pub fn admin_refused(database: &str, args: &[&str]) -> String {
    let mut cmd = idforce();
    if database.starts_with("postgres") {
        cmd.env("IDFORCE_SECRET", POSTGRES_SECRET);
    }
    let out = cmd
        .args(["--database", database])
        .args(args)
        .output()
        .expect("run idforce");
    assert!(!out.status.success(), "idforce {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `admin`, for a change a running server must act on: it sees changes made by another process
/// once its directory cache expires (`directory_cache_ttl`, one second by default).
pub fn admin_seen(database: &str, args: &[&str]) -> Value {
    let out = admin(database, args);
    std::thread::sleep(
        idforce_store::DEFAULT_DIRECTORY_CACHE_TTL + std::time::Duration::from_millis(100),
    );
    out
}

/// Sends raw bytes to the server and returns everything it answers (the connection is
/// expected to close: send `Connection: close`).
pub async fn raw_http(url: &str, request: &[u8]) -> String {
    raw_http_with(url, request, false).await
}

/// As `raw_http`; with `half_close` the client also ends its side after writing, as a client
/// that sent a truncated body and gave up would.
pub async fn raw_http_with(url: &str, request: &[u8], half_close: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    if half_close {
        stream.shutdown().await.expect("shutdown");
    }
    let mut out = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut out),
    )
    .await;
    assert!(
        read.is_ok(),
        "no answer within 10 s to {:?}",
        String::from_utf8_lossy(&request[..request.len().min(200)])
    );
    String::from_utf8_lossy(&out).into_owned()
}

impl Drop for ServerProcess {
    /// A failing test must not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The token with its last character changed: same shape, different token.
pub fn tamper(token: &str) -> String {
    let last = if token.ends_with('x') { 'y' } else { 'x' };
    format!("{}{last}", &token[..token.len() - 1])
}

/// A loopback port nobody listens on (for a client command's callback listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client command left running (`login web`, `login device`): the first line it wrote to
/// stderr (where it tells the user what to do), the rest of stderr read as it comes.
pub struct RunningClient {
    child: Child,
    pub first_line: String,
    rest: std::thread::JoinHandle<String>,
}

/// Starts `idforce ARGS` with `token_file` as its token file and waits for its first line.
pub async fn spawn_client(args: &[&str], token_file: &Path) -> RunningClient {
    let mut child = idforce()
        .args(args)
        .env("IDFORCE_TOKEN_FILE", token_file)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (first_line, rest) = tokio::task::spawn_blocking(move || {
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let rest = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut reader, &mut s);
            s
        });
        (line, rest)
    })
    .await
    .unwrap();
    RunningClient {
        child,
        first_line,
        rest,
    }
}

impl RunningClient {
    /// Waits for the command to end: (success, stdout, the rest of stderr).
    pub async fn finish(self) -> (bool, String, String) {
        let RunningClient { child, rest, .. } = self;
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            rest.join().unwrap(),
        )
    }
}

/// Salesforce's `signature` of a token response: base64(HMAC-SHA256(secret, id + issued_at)).
pub fn signature_for(secret: &str, response: &Value) -> String {
    use aws_lc_rs::hmac;
    use base64::Engine;
    let id = response["id"].as_str().expect("an id");
    let issued_at = response["issued_at"].as_str().expect("an issued_at");
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    base64::engine::general_purpose::STANDARD
        .encode(hmac::sign(&key, format!("{id}{issued_at}").as_bytes()))
}

/// The username-password grant's form for `username` through the Integration app.
/// A password grant of `username` through the app `client_id`.
pub async fn password_through(
    s: &TestServer,
    (client_id, secret): (&str, &str),
    username: &str,
    password: &str,
) -> (u16, Value) {
    s.token(&[
        ("grant_type", "password"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("username", username),
        ("password", password),
    ])
    .await
}

pub fn password_form<'a>(username: &'a str, password: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "password"),
        ("client_id", INTEGRATION_ID),
        ("client_secret", INTEGRATION_SECRET),
        ("username", username),
        ("password", password),
    ]
}

/// The text of the first `<name>` element of an XML answer.
pub fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_owned())
}

/// The `openidconnect` crate's HTTP interface, served by `http` (a client of the test's: one
/// that resolves My Domains, say).
pub async fn oidc_request(
    http: &reqwest::Client,
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let mut builder = http
        .request(req.method().clone(), req.uri().to_string())
        .body(req.body().clone());
    for (k, v) in req.headers() {
        builder = builder.header(k, v);
    }
    let r = builder.send().await?;
    let mut out = openidconnect::http::Response::builder().status(r.status());
    for (k, v) in r.headers() {
        out = out.header(k, v);
    }
    let body = r.bytes().await?.to_vec();
    Ok(out.body(body).unwrap())
}

/// The public half of a fixture key as a JWK.
pub fn jwk_of(key_file: &str, kid: &str) -> Value {
    use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
    use rustls_pki_types::PrivatePkcs8KeyDer;
    use rustls_pki_types::pem::PemObject;
    let key = PrivatePkcs8KeyDer::from_pem_file(fixture(key_file)).expect("key");
    let pair = RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()).expect("rsa key");
    let public = pair.public_key();
    serde_json::json!({
        "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
    })
}

/// A JWKS endpoint on 127.0.0.1 that counts its fetches; what it serves can be swapped.
pub struct JwksServer {
    pub url: String,
    pub served: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    pub async fn start(set: &Value) -> JwksServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let served = std::sync::Arc::new(std::sync::Mutex::new(set.to_string()));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (body, count) = (served.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let _ = conn.read(&mut buf).await;
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let text = body.lock().unwrap().clone();
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: max-age=3600\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = conn.write_all(response.as_bytes()).await;
            }
        });
        JwksServer {
            url,
            served,
            fetches,
        }
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}
