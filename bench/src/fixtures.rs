//! What the workloads need before they run: idforce's config, single-use JWT assertions,
//! refresh tokens, and a store filled with many live tokens.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idforce_core::model::RefreshToken;
use idforce_core::scope::Scopes;
use idforce_core::token;
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

pub const CLIENT_ID: &str = "bench-client";
pub const CLIENT_SECRET: &str = "a9c6e1f0b4d8273e5f1a6c0d9b2e7f4a8c3d6e1f0b5a9c2d7e4f1a8b3c6d0e9f";
pub const USERNAME: &str = "bench@bench.test";
pub const PASSWORD: &str = "Bench-Password-2026!";
/// An audience every idforce accepts by default, whatever port it is on.
const AUDIENCE: &str = "https://login.salesforce.com";

/// The test fixtures' key pair signs the assertions; its certificate is the app's.
fn fixture(repo: &Path, name: &str) -> PathBuf {
    repo.join("crates/idforce/tests/fixtures").join(name)
}

/// A directory with idforce.toml, the app's certificate, ephemeral.toml (the same org with
/// `[server] signing_key_file`, for `serve --ephemeral`) and no-login-history.toml (the same
/// org with Login History off).
pub fn idforce_dir(repo: &Path) -> Result<tempfile::TempDir, String> {
    let dir = tempfile::Builder::new()
        .prefix("idforce-bench-")
        .tempdir_in(std::env::var_os("IDFORCE_BENCH_TMP").unwrap_or_else(|| "/var/tmp".into()))
        .map_err(|e| e.to_string())?;
    std::fs::copy(fixture(repo, "jwt.crt"), dir.path().join("jwt.crt"))
        .map_err(|e| format!("jwt.crt: {e}"))?;
    let config = format!(
        r#"# The benchmark's org: one user, one app that every workload uses.
[[org]]
name = "Bench"

[[org.user]]
username = "{USERNAME}"
password = "{PASSWORD}"
profile = "System Administrator"

[[org.app]]
name = "Bench"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
scopes = ["api", "refresh_token", "openid", "id"]
certificate = "jwt.crt"
permitted_users = "admin_approved"
profiles = ["System Administrator"]
run_as = "{USERNAME}"
introspect_all_tokens = true
"#
    );
    std::fs::write(dir.path().join("idforce.toml"), &config).map_err(|e| e.to_string())?;
    // The CI start: the same org from a throwaway store, signed by a key the config names.
    std::fs::copy(fixture(repo, "other.key"), dir.path().join("signing.pem"))
        .map_err(|e| format!("other.key: {e}"))?;
    let ephemeral = format!("[server]\nsigning_key_file = \"signing.pem\"\n\n{config}");
    std::fs::write(dir.path().join("ephemeral.toml"), ephemeral).map_err(|e| e.to_string())?;
    // The same org with Login History off: the floor its record is measured against.
    let unrecorded = format!("[server]\nlogin_history_max_rows = 0\n\n{config}");
    std::fs::write(dir.path().join("no-login-history.toml"), unrecorded)
        .map_err(|e| e.to_string())?;
    Ok(dir)
}

/// The store a run measures: SQLite in the run's folder, or a PostgreSQL database made for the
/// run (and dropped after it).
pub enum Db {
    Sqlite(PathBuf),
    Postgres { base: String, name: String },
}

impl Db {
    pub fn sqlite(dir: &Path) -> Db {
        Db::Sqlite(dir.join("idforce.db"))
    }

    /// A new database on the PostgreSQL server that `base` (any database URL of it) names.
    pub fn postgres(base: &str) -> Result<Db, String> {
        let name = format!("idforce_bench_{}_{}", std::process::id(), now_secs());
        let db = Db::Postgres {
            base: base.to_owned(),
            name: name.clone(),
        };
        psql(base, &format!("CREATE DATABASE {name}"))?;
        Ok(db)
    }

    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(file) => format!("sqlite://{}?mode=rwc", file.display()),
            Db::Postgres { base, name } => {
                let (server, query) = base.split_once('?').unwrap_or((base, ""));
                let server = server.rsplit_once('/').map_or(server, |(s, _)| s);
                let query = if query.is_empty() {
                    String::new()
                } else {
                    format!("?{query}")
                };
                format!("{server}/{name}{query}")
            }
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres { .. } => "postgres",
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Db::Postgres { base, name } = self
            && let Err(e) = psql(
                base,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
        {
            eprintln!("could not drop the bench database {name}: {e}");
        }
    }
}

/// One statement through `psql` (a client every PostgreSQL machine has); its output.
fn psql(url: &str, sql: &str) -> Result<String, String> {
    let out = std::process::Command::new("psql")
        .args([url, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .map_err(|e| format!("psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// `n` distinct signed assertions (each is single-use), valid for a year. Signing is slow
/// (about a millisecond each), so they are kept in `cache` and reused by later runs, whose
/// stores are new and have never seen them.
pub fn assertions(repo: &Path, cache: &Path, n: usize) -> Result<Vec<String>, String> {
    let file = cache.join(format!("assertions-{n}.txt"));
    if let Ok(text) = std::fs::read_to_string(&file) {
        let all: Vec<String> = text.lines().map(str::to_owned).collect();
        if all.len() == n && still_valid(&all[0]) {
            return Ok(all);
        }
    }
    let pem = fixture(repo, "jwt.key");
    let key = PrivatePkcs8KeyDer::from_pem_file(&pem).map_err(|e| format!("{pem:?}: {e}"))?;
    let pair = RsaKeyPair::from_pkcs8(key.secret_pkcs8_der()).map_err(|e| e.to_string())?;
    let exp = now_secs() + 365 * 24 * 3600;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#);
    let all: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (pair, header) = (&pair, &header);
                s.spawn(move || {
                    let rng = SystemRandom::new();
                    (t..n)
                        .step_by(threads)
                        .map(|i| {
                            let claims = serde_json::json!({
                                "iss": CLIENT_ID, "sub": USERNAME, "aud": AUDIENCE,
                                "exp": exp, "jti": format!("bench-{exp}-{i}"),
                            });
                            let input =
                                format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
                            let mut sig = vec![0u8; pair.public_modulus_len()];
                            pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                                .map(|()| format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig)))
                                .map_err(|_| "signing failed".to_owned())
                        })
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err("signer panicked".into())))
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.into_iter().flatten().collect())
    })?;
    std::fs::create_dir_all(cache).map_err(|e| e.to_string())?;
    std::fs::write(&file, all.join("\n")).map_err(|e| e.to_string())?;
    Ok(all)
}

fn still_valid(assertion: &str) -> bool {
    let exp = assertion
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|c| c["exp"].as_i64());
    exp.is_some_and(|e| e > now_secs() + 24 * 3600)
}

/// The system secret of the servers a run starts.
pub const SYSTEM_SECRET: &str = "idforce-bench-system-secret";

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A refresh token of the bench user for the bench app with `scopes`, written straight into
/// the store (obtaining one over HTTP needs the browser flow). Returns its secret.
pub async fn refresh_token(database: &str, scopes: &str) -> Result<String, String> {
    let secrets = idforce_server::secrets::SystemSecret::new(&[SYSTEM_SECRET])?;
    let settings = idforce_store::StoreSettings::default();
    let (store, hasher) = idforce_server::app::open_store(database, &settings, &secrets)
        .await
        .map_err(|e| e.to_string())?;
    let user = store
        .user_by_username(USERNAME)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no bench user")?;
    let app = store
        .app_by_client_id(CLIENT_ID)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("no bench app")?;
    let secret = token::mint_refresh_token();
    let now = now_secs() * 1000;
    store
        .insert_refresh_token(&RefreshToken {
            digest: hasher.digest(&secret),
            family: token::random_bytes::<16>(),
            org_id: user.org_id,
            user_id: user.id,
            app_id: app.id,
            scopes: Scopes::parse(scopes).map_err(|e| e.description.to_string())?,
            family_started_at: now,
            issued_at: now,
            last_used_at: now,
            rotated: false,
            revoked: false,
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(secret)
}

/// Fills the store with live sessions of the bench user until it holds `total` in all.
/// Their digests are made up (no token leads to them): they are there to be searched past.
pub fn fill_sessions(db: &Db, total: u64) -> Result<u64, String> {
    let database_file = match db {
        Db::Sqlite(file) => file,
        Db::Postgres { .. } => return fill_postgres_sessions(&db.url(), total),
    };
    let e = |e: rusqlite::Error| e.to_string();
    let conn = rusqlite::Connection::open(database_file).map_err(e)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(e)?;
    // A large page cache makes the index inserts fast; it is this connection's alone.
    conn.execute_batch("PRAGMA cache_size = -1000000; PRAGMA synchronous = NORMAL;")
        .map_err(e)?;
    let have = conn
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get::<_, i64>(0))
        .map_err(e)? as u64;
    let (org, user): (String, String) = conn
        .query_row(
            "SELECT org_id, id FROM users WHERE username = ?",
            [USERNAME],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(e)?;
    let app: String = conn
        .query_row(
            "SELECT id FROM apps WHERE client_id = ?",
            [CLIENT_ID],
            |r| r.get(0),
        )
        .map_err(e)?;
    let now = now_secs() * 1000;
    let mut next = have;
    while next < total {
        let end = total.min(next + 1_000_000);
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2)
             INSERT INTO sessions (digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs, revoked_at, family)
             SELECT CAST(printf('filler-%025d', i) AS BLOB), ?3, ?4, ?5, 'api', ?6, ?6, 86400, NULL, NULL FROM n",
            rusqlite::params![next as i64, end as i64, org, user, app, now],
        )
        .map_err(e)?;
        next = end;
    }
    Ok(total.saturating_sub(have))
}

fn fill_postgres_sessions(url: &str, total: u64) -> Result<u64, String> {
    let have: u64 = psql(url, "SELECT count(*) FROM sessions")?
        .parse()
        .map_err(|e| format!("count: {e}"))?;
    let now = now_secs() * 1000;
    let mut next = have;
    while next < total {
        let end = total.min(next + 1_000_000);
        psql(
            url,
            &format!(
                "INSERT INTO sessions (digest, org_id, user_id, app_id, scopes, issued_at, last_used_at, timeout_secs, revoked_at, family)
                 SELECT convert_to(lpad('filler-' || i, 32, '0'), 'UTF8'), u.org_id, u.id, a.id, 'api', {now}, {now}, 86400, NULL, NULL
                 FROM generate_series({next}, {last}) AS i,
                      (SELECT org_id, id FROM users WHERE username = '{USERNAME}') AS u,
                      (SELECT id FROM apps WHERE client_id = '{CLIENT_ID}') AS a",
                last = end - 1
            ),
        )?;
        next = end;
    }
    psql(url, "VACUUM ANALYZE sessions")?;
    Ok(total.saturating_sub(have))
}

/// How many sessions the store holds.
pub fn count_sessions(db: &Db) -> Result<u64, String> {
    let database_file = match db {
        Db::Sqlite(file) => file,
        Db::Postgres { .. } => {
            return psql(&db.url(), "SELECT count(*) FROM sessions")?
                .parse()
                .map_err(|e| format!("count: {e}"));
        }
    };
    let conn = rusqlite::Connection::open(database_file).map_err(|e| e.to_string())?;
    conn.query_row("SELECT count(*) FROM sessions", [], |r| r.get::<_, i64>(0))
        .map(|n| n as u64)
        .map_err(|e| e.to_string())
}
