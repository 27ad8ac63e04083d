//! Building and running the server: open the store, seed it, bind, serve (HTTP or HTTPS)
//! until a shutdown signal, then finish in-flight requests.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use idforce_core::grant::IssuerSettings;
use idforce_core::model::LockoutPolicy;
use idforce_core::token::{CredentialHasher, random_bytes};
use idforce_store::Backend;

use crate::clock::Clock;
use crate::config::ConfigFile;
use crate::listener::ConnectionLimits;
use crate::metrics::Metrics;
use crate::passwords::Argon2Verifier;
use crate::secrets::{Origin, SecretSources, SystemSecret};
use crate::seed::{self, Demo, Generated};
use crate::state::{AppState, Inner};

/// Everything `serve` needs, after flags, environment and config file are merged.
pub struct ServeOptions {
    pub listen: String,
    pub public_url: Option<String>,
    pub database: String,
    pub store: idforce_store::StoreSettings,
    pub config: Option<ConfigFile>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub accept_salesforce_audiences: bool,
    pub lockout: LockoutPolicy,
    pub limits: ConnectionLimits,
    /// Where the system secret may be given (`secrets.rs`).
    pub secret: SecretSources,
    /// `--explain`: refusals carry idforce's reason (`http/explain.rs`).
    pub explain: Explain,
    /// `[server] signing_key_file`: the key that signs, instead of one generated into the store.
    pub signing_key: Option<PathBuf>,
}

/// Whether refusals say why on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Explain {
    #[default]
    Off,
    /// On a loopback listen address only.
    Loopback,
    /// Wherever it listens (`--explain-anywhere`).
    Anywhere,
}

/// `--explain` tells any caller which usernames exist and why a guess failed: a developer's
/// loopback server only, unless asked for by its own flag.
fn check_explain(
    explain: Explain,
    listen: &str,
    public_url: Option<&str>,
) -> Result<(), StartError> {
    if explain != Explain::Loopback {
        return Ok(());
    }
    // A loopback listener behind a proxy is reachable by whoever reaches the proxy: the
    // public URL, when given, must be a loopback one too.
    if let Some(url) = public_url {
        let authority = url
            .split("://")
            .nth(1)
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("");
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host.to_ascii_lowercase().ends_with(".localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !loopback {
            return Err(StartError::Invalid(format!(
                "--explain sends the reason of every refusal to whoever asks, and the public \
                 URL {url} is not a loopback one (a proxy in front?). Drop --public-url, or use \
                 --explain-anywhere on a network you trust"
            )));
        }
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = listen
        .to_socket_addrs()
        .map_err(|e| StartError::Invalid(format!("--listen {listen}: {e}")))?
        .collect();
    match addrs.iter().find(|a| !a.ip().is_loopback()) {
        None => Ok(()),
        Some(open) => Err(StartError::Invalid(format!(
            "--explain sends the reason of every refusal (which usernames exist, why a password \
             failed) to whoever asks, so it is for a loopback listen address; {listen} is {}. \
             Listen on 127.0.0.1, or use --explain-anywhere on a network you trust",
            open.ip()
        ))),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store: {0}")]
    Store(#[from] idforce_core::ports::StoreError),
    #[error("seeding: {0}")]
    Seed(#[from] seed::SeedError),
    #[error(
        "cannot listen on {addr} (--listen, [server] listen): {source}{}",
        listen_hint(source)
    )]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Tls(String),
    #[error("system secret: {0}")]
    Secret(String),
    #[error("{0}")]
    Invalid(String),
}

/// What to do about an address that cannot be listened on.
fn listen_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::InvalidInput => "; expected host:port, e.g. 127.0.0.1:8080",
        std::io::ErrorKind::AddrInUse => {
            "; another process listens there: stop it, or choose another port (port 0: any free one)"
        }
        std::io::ErrorKind::PermissionDenied => {
            "; ports below 1024 need privileges: use 8080 or 8443, or a proxy in front"
        }
        _ => "",
    }
}

/// The public URL is what every token and discovery document names: an absolute http(s) URL
/// of a host, with no query or fragment.
fn check_public_url(url: &str) -> Result<(), StartError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or(""));
    let fine = match (rest, host) {
        (Some(rest), Some(host)) => {
            !host.is_empty()
                && !host.starts_with(':')
                && !rest.contains(['?', '#'])
                && !url.chars().any(char::is_whitespace)
        }
        _ => false,
    };
    if fine {
        return Ok(());
    }
    Err(StartError::Invalid(format!(
        "public URL {url:?} (--public-url, IDFORCE_PUBLIC_URL or [server] public_url): expected \
         http:// or https:// and a host, with no query, e.g. http://127.0.0.1:8080 or \
         https://login.example.com"
    )))
}

pub struct Application {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    public_url: String,
    state: AppState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ConnectionLimits,
    store: Arc<dyn Backend>,
    clock: Arc<dyn Clock>,
    /// Login History rows kept at most (`[server] login_history_max_rows`).
    login_history_max_rows: u64,
    /// Where the system secret came from (said at start when it was generated).
    pub secret_origin: Origin,
    /// Credentials generated by this start (demo data or omitted secrets), shown once.
    pub demo: Option<Demo>,
    pub generated: Generated,
    /// The store was empty when this start began (its credentials are the ones just printed).
    pub fresh_store: bool,
}

/// The key of the keyed credential hashes, created once per store and shared by every node:
/// sealed under the system secret, so that a copy of the database alone cannot be used to
/// test guesses of the short secrets it hashes (security tokens). Stores made before kept it
/// plain, under `PLAIN_HASH_KEY`; it is sealed and the plain copy removed on first start.
pub const HASH_KEY: &str = "credential_hash_key_sealed";
const PLAIN_HASH_KEY: &str = "credential_hash_key";
pub const HASH_KEY_PURPOSE: &str = "credential_hash_key";

pub async fn open_store(
    database: &str,
    settings: &idforce_store::StoreSettings,
    secrets: &SystemSecret,
) -> Result<(Arc<dyn Backend>, CredentialHasher), StartError> {
    let store = idforce_store::open_with(database, settings).await?;
    let key = hash_key(store.as_ref(), secrets).await?;
    Ok((store, CredentialHasher::new(&key)))
}

/// The credential-hashing key, opened (made and sealed on first start; see `HASH_KEY`).
pub async fn hash_key(store: &dyn Backend, secrets: &SystemSecret) -> Result<Vec<u8>, StartError> {
    use idforce_core::ports::SecretBox;
    let sealed = match store.meta(HASH_KEY).await? {
        Some(sealed) => sealed,
        None => {
            let plain = match store.meta(PLAIN_HASH_KEY).await? {
                Some(plain) => plain,
                None => random_bytes::<32>().to_vec(),
            };
            // Nodes starting together agree on the first one stored.
            let mine = secrets.seal(HASH_KEY_PURPOSE, &plain);
            store.meta_or_insert(HASH_KEY, &mine).await?
        }
    };
    let key = secrets.open(HASH_KEY_PURPOSE, &sealed).ok_or_else(|| {
        StartError::Secret(crate::secrets::cannot_open(
            secrets,
            &sealed,
            "the store's credential-hashing key",
        ))
    })?;
    if store.meta(PLAIN_HASH_KEY).await?.is_some() {
        store.delete_meta(PLAIN_HASH_KEY).await?;
    }
    Ok(key)
}

/// Seals the credential-hashing key again under the newest secret.
pub async fn reseal_hash_key(
    store: &dyn Backend,
    secrets: &SystemSecret,
) -> Result<bool, StartError> {
    use idforce_core::ports::SecretBox;
    let key = hash_key(store, secrets).await?;
    let current = store.meta(HASH_KEY).await?.unwrap_or_default();
    if secrets.is_current(&current) {
        return Ok(false);
    }
    store
        .set_meta(HASH_KEY, &secrets.seal(HASH_KEY_PURPOSE, &key))
        .await?;
    Ok(true)
}

/// Applies the config (and, on an empty store, the demo data). Nodes starting together may
/// both try to create the same org, user or app; the loser gets a conflict and applies again,
/// now against what the winner wrote.
async fn seed_at_start(
    store: &dyn Backend,
    hasher: &CredentialHasher,
    secrets: &SystemSecret,
    config: Option<&ConfigFile>,
    now: i64,
) -> Result<(Generated, Option<Demo>), StartError> {
    let mut attempt = 0;
    loop {
        let result = async {
            let generated = match config {
                Some(cfg) => seed::apply(store, hasher, secrets, cfg, now).await?,
                None => Generated::default(),
            };
            let demo = if store.is_empty().await? {
                Some(seed::demo(store, hasher, secrets, now).await?)
            } else {
                None
            };
            Ok::<_, seed::SeedError>((generated, demo))
        }
        .await;
        match result {
            Err(seed::SeedError::Store(idforce_core::ports::StoreError::Conflict(_)))
                if attempt < 5 =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
            }
            other => return Ok(other?),
        }
    }
}

impl Application {
    pub async fn build(
        opts: ServeOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<Application, StartError> {
        // What can be refused without touching the store is refused first: a bad flag must not
        // leave a new store behind.
        if let Some(given) = &opts.public_url {
            check_public_url(given)?;
        }
        if !crate::config::is_listen_address(&opts.listen) {
            return Err(StartError::Invalid(format!(
                "--listen {:?}: expected host:port, e.g. 127.0.0.1:8080 (port 0: any free one)",
                opts.listen
            )));
        }
        check_explain(opts.explain, &opts.listen, opts.public_url.as_deref())?;
        let tls = match &opts.tls {
            None => None,
            Some((cert, key)) => {
                Some(crate::listener::tls_acceptor(cert, key).map_err(StartError::Tls)?)
            }
        };
        let configured_key = match &opts.signing_key {
            Some(path) => {
                Some(crate::keys::ConfiguredKey::read(path).map_err(StartError::Invalid)?)
            }
            None => None,
        };
        let (secrets, secret_origin) =
            SystemSecret::resolve(&opts.secret, &opts.database).map_err(StartError::Secret)?;
        if secret_origin == Origin::LegacyEnv {
            tracing::warn!(
                "IDFORCE_KEY_ENCRYPTION_KEY is an alias kept for one release: set IDFORCE_SECRET \
                 (or IDFORCE_SECRET_FILE) to the same value"
            );
        }
        let (store, hasher) = open_store(&opts.database, &opts.store, &secrets).await?;
        let now = clock.now();
        let fresh_store = store.is_empty().await?;
        let (mut generated, demo) =
            seed_at_start(store.as_ref(), &hasher, &secrets, opts.config.as_ref(), now).await?;
        // A store from before profiles were things, started without a config.
        crate::profiles::backfill(store.as_ref(), now).await?;

        let listener = crate::listener::bind(&opts.listen).map_err(|source| StartError::Bind {
            addr: opts.listen.clone(),
            source,
        })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: opts.listen.clone(),
            source,
        })?;
        let scheme = if opts.tls.is_some() { "https" } else { "http" };
        let public_url = opts
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{local_addr}"))
            .trim_end_matches('/')
            .to_owned();
        // The public host is every org's login host: no org can have it as its My Domain.
        let public_host = idforce_core::hosts::host_of_url(&public_url);
        for org in store.orgs().await.map_err(StartError::Store)? {
            if org.my_domain.is_some() && org.my_domain == public_host {
                return Err(StartError::Invalid(format!(
                    "org {:?}: my_domain {:?} is this server's public host ({public_url}), every \
                     org's login host; give the org a host name of its own",
                    org.name,
                    org.my_domain.as_deref().unwrap_or("")
                )));
            }
        }

        let keys =
            crate::keys::Keys::load(store.clone(), secrets.clone(), now, configured_key.as_ref())
                .await
                .map_err(|e| match e {
                    idforce_core::ports::StoreError::Invalid(why) => StartError::Secret(why),
                    other => StartError::Store(other),
                })?;
        // The config's passwords are applied in the background: readiness does not wait for
        // their Argon2 checks, logins do (through the verifier).
        let (passwords, settling) = Argon2Verifier::settling();
        let pending = std::mem::take(&mut generated.passwords);
        let settle_store = store.clone();
        tokio::spawn(async move {
            seed::settle_passwords(settle_store, pending).await;
            settling.done();
        });
        let metrics = Metrics::with_password_checks(&passwords.counters());
        let state = AppState(Arc::new(Inner {
            keys,
            store,
            hasher,
            passwords,
            settings: IssuerSettings {
                public_url: public_url.clone(),
                accept_salesforce_audiences: opts.accept_salesforce_audiences,
                lockout: opts.lockout,
                login_history: crate::config::login_history_max_rows(
                    opts.config.as_ref().map(|c| &c.server),
                ) > 0,
                login_rate: crate::config::login_rate(opts.config.as_ref().map(|c| &c.server)),
            },
            clock,
            metrics,
            database: idforce_store::redact_url(&opts.database),
            throttles: Default::default(),
            key_sets: crate::key_sets::RemoteKeySets::new(crate::key_sets::is_development(
                &public_url,
            )),
            saml: crate::saml::verifier(),
            secrets,
            explain: opts.explain != Explain::Off,
            trusted_proxies: crate::config::trusted_proxies(
                opts.config.as_ref().map(|c| &c.server),
            ),
            hosts: crate::hosts::Hosts::new(
                &public_url,
                opts.store
                    .directory_cache_ttl
                    .unwrap_or(idforce_store::DEFAULT_DIRECTORY_CACHE_TTL),
            ),
        }));
        let (store, clock) = (state.store.clone(), state.clock.clone());
        Ok(Application {
            store,
            clock,
            login_history_max_rows: crate::config::login_history_max_rows(
                opts.config.as_ref().map(|c| &c.server),
            ),
            listener,
            local_addr,
            public_url,
            state,
            tls,
            limits: opts.limits,
            secret_origin,
            demo,
            generated,
            fresh_store,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets in-flight requests
    /// finish (up to 30 s).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let purge = tokio::spawn(purge_periodically(
            self.store.clone(),
            self.clock.clone(),
            self.login_history_max_rows,
        ));
        let listener = tokio::net::TcpListener::from_std(self.listener)?;
        let service = crate::http::service(self.state);
        let served =
            crate::listener::serve(listener, self.tls, service, self.limits, shutdown).await;
        purge.abort();
        served
    }
}

/// How often each node deletes expired rows (every node does; the deletes are idempotent).
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// How long Login History keeps a login (Salesforce keeps six months).
const LOGIN_HISTORY_KEPT_MS: i64 = 183 * 24 * 3_600_000;

async fn purge_periodically(store: Arc<dyn Backend>, clock: Arc<dyn Clock>, history_rows: u64) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        match store.purge_expired(clock.now()).await {
            Ok(n) => tracing::debug!(rows = n, "purged expired rows"),
            Err(e) => tracing::warn!(error = %e, "purging expired rows failed"),
        }
        let before = clock.now() - LOGIN_HISTORY_KEPT_MS;
        match store.purge_login_history(before, history_rows).await {
            Ok(n) => tracing::debug!(rows = n, "purged Login History"),
            Err(e) => tracing::warn!(error = %e, "purging Login History failed"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal that arrives right after start-up is not lost to
/// the default action (which would end the process without finishing requests).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {},
                _ = wait(int) => {},
            }
            tracing::info!("shutdown signal received; finishing in-flight requests");
        }
    }
    #[cfg(not(unix))]
    async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown signal received; finishing in-flight requests");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idforce_store::Meta;

    #[test]
    fn public_urls_need_a_scheme_and_a_host() {
        for good in [
            "http://127.0.0.1:8080",
            "https://login.example.com",
            "https://example.com/idforce/",
        ] {
            assert!(check_public_url(good).is_ok(), "{good}");
        }
        for bad in [
            "127.0.0.1:18322",
            "ftp://x",
            "http://",
            "http://:8080",
            "https://x.com/?a=b",
            "https://x.com/#f",
            "https://x .com",
        ] {
            let Err(StartError::Invalid(why)) = check_public_url(bad) else {
                panic!("{bad} accepted");
            };
            assert!(why.contains("--public-url") && why.contains(bad), "{why}");
        }
    }
    use idforce_store::testing::MemoryStore;

    #[tokio::test]
    async fn the_hashing_key_is_sealed_and_a_plain_one_migrates() {
        let secrets = SystemSecret::new(&["correct horse"]).expect("secret");
        // An older store: the key in the clear.
        let store = MemoryStore::new();
        store.set_meta(PLAIN_HASH_KEY, &[7; 32]).await.expect("set");
        let key = hash_key(&store, &secrets).await.expect("opens");
        assert_eq!(
            key,
            vec![7; 32],
            "the same key, so stored digests still match"
        );
        assert_eq!(store.meta(PLAIN_HASH_KEY).await.expect("read"), None);
        let sealed = store.meta(HASH_KEY).await.expect("read").expect("sealed");
        assert!(
            !sealed.windows(32).any(|w| w == [7; 32]),
            "not in the clear"
        );
        assert_eq!(hash_key(&store, &secrets).await.expect("again"), key);

        // A new store gets a random key; another secret cannot open it.
        let store = MemoryStore::new();
        let key = hash_key(&store, &secrets).await.expect("made");
        assert_eq!(key.len(), 32);
        let wrong = SystemSecret::new(&["battery staple"]).expect("secret");
        let Err(StartError::Secret(why)) = hash_key(&store, &wrong).await else {
            panic!("opened with the wrong secret");
        };
        assert!(why.contains(&secrets.fingerprint()), "{why}");
        // Resealing under a new secret keeps the key.
        let rotated = SystemSecret::new(&["new", "correct horse"]).expect("secrets");
        assert!(reseal_hash_key(&store, &rotated).await.expect("resealed"));
        let newest = SystemSecret::new(&["new"]).expect("secret");
        assert_eq!(hash_key(&store, &newest).await.expect("opens"), key);
    }
}
