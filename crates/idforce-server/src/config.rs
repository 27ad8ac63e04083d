//! The TOML config file: server settings and declarative seeding (product.md). Unknown keys
//! are errors, so a typo never silently does nothing.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub org: Vec<OrgSpec>,
    /// Directory of the file, for relative certificate paths.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// The file and its text, to say where a bad value is written.
    #[serde(skip)]
    pub source: Option<(PathBuf, String)>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    pub listen: Option<String>,
    pub public_url: Option<String>,
    pub database: Option<String>,
    /// PostgreSQL: most open connections to the database.
    pub database_pool_size: Option<u32>,
    /// PostgreSQL: cancel statements running longer than this ("5s").
    pub database_statement_timeout: Option<String>,
    /// How long each node caches orgs, users, apps and approvals ("1s"; "0s" turns it off).
    pub directory_cache_ttl: Option<String>,
    pub accept_salesforce_audiences: Option<bool>,
    pub lockout_attempts: Option<u32>,
    pub lockout_duration: Option<String>,
    /// Connections (src/listener.rs): a request head must arrive within `header_timeout`
    /// ("10s"), each part of a body within `body_timeout` ("10s"), a TLS handshake within
    /// `tls_handshake_timeout` ("10s"); a connection with nothing in flight is closed after
    /// `idle_timeout` ("60s"). `max_connections` defaults to what the open-files limit allows.
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    pub tls_handshake_timeout: Option<String>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<usize>,
    /// File of the system secret (`secrets.rs`), relative to this file.
    pub secret_file: Option<PathBuf>,
    /// An RSA private key (PEM) that signs id_tokens and JWT access tokens, instead of a key
    /// generated into the store: the same key, and `kid`, on every run of a CI job.
    pub signing_key_file: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub log_format: Option<String>,
    /// Proxies (addresses or CIDR networks) whose `X-Forwarded-For` names the client; from
    /// anyone else the TCP peer is the client.
    pub trusted_proxies: Option<Vec<String>>,
    /// Login History keeps six months of logins, and at most this many rows (default
    /// 1,000,000), the oldest purged first; 0 records none.
    pub login_history_max_rows: Option<u64>,
    /// How often one user may log in, across every entry point and node: "3600/h" is
    /// Salesforce's limit. Off unless set.
    pub login_rate_limit: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgSpec {
    pub name: String,
    pub id: Option<String>,
    pub instance_url: Option<String>,
    /// The org's My Domain: a host name (the port is the server's), e.g. "acme.my.localhost".
    pub my_domain: Option<String>,
    /// Where OIDC logout sends the browser (default: the login page).
    pub logout_url: Option<String>,
    /// Experience Cloud sites, each under `/<path>/…` on the login host and the My Domain.
    #[serde(default)]
    pub site: Vec<SiteSpec>,
    /// "Allow OAuth Username-Password Flows" (default true).
    pub allow_username_password_flow: Option<bool>,
    /// "Allow OAuth User-Agent Flows" (default true).
    pub allow_user_agent_flow: Option<bool>,
    /// PKCE required of every app of the org (default false).
    pub require_pkce_for_all_apps: Option<bool>,
    /// The org's default time zone (IANA, e.g. "Europe/Paris"; "UTC" unless set): the clock
    /// of its profiles' login hours.
    pub time_zone: Option<String>,
    /// Profiles made before any user names them (a user's or an app's naming makes one too).
    #[serde(default)]
    pub profile: Vec<ProfileSpec>,
    /// Token exchange handlers: which other issuers' tokens the org's apps may exchange.
    #[serde(default)]
    pub token_exchange_handler: Vec<HandlerSpec>,
    #[serde(default)]
    pub user: Vec<UserSpec>,
    #[serde(default)]
    pub app: Vec<AppSpec>,
}

/// `[[org.token_exchange_handler]]`: Salesforce's Apex token exchange handler, declared.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerSpec {
    pub name: String,
    /// The `iss` of the tokens it accepts.
    pub issuer: String,
    /// What their `aud` must name.
    pub audience: String,
    /// The issuer's certificate (PEM text, or a path to a PEM/DER file).
    pub certificate: Option<String>,
    /// Or where the issuer publishes its keys: https, or http to localhost.
    pub jwks_uri: Option<String>,
    /// The claim that names the user ("sub" unless set).
    pub user_claim: Option<String>,
    /// What that claim is: "username" (default), "email" or "federation_id".
    pub match_on: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    pub name: String,
    pub path: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileSpec {
    pub name: String,
    /// Login IP Ranges: `["10.0.0.0-10.0.0.255", "::1"]` ([] removes them).
    pub login_ip_ranges: Option<Vec<String>>,
    /// Login Hours, `{ monday = "08:00-18:00", … }` in the org's time zone; a day left out
    /// allows no login ({} removes the restriction).
    pub login_hours: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub username: String,
    pub password: Option<String>,
    pub security_token: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub profile: Option<String>,
    pub active: Option<bool>,
    /// Salesforce's Federation ID ("" removes it).
    pub federation_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    pub name: String,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub callback_urls: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub certificate: Option<String>,
    pub permitted_users: Option<String>,
    pub profiles: Option<Vec<String>>,
    pub pre_authorized_users: Option<Vec<String>>,
    pub run_as: Option<String>,
    pub require_secret_for_web_server_flow: Option<bool>,
    pub require_secret_for_refresh_token_flow: Option<bool>,
    pub require_pkce: Option<bool>,
    pub refresh_token_policy: Option<String>,
    pub rotate_refresh_tokens: Option<bool>,
    pub session_timeout: Option<String>,
    pub introspect_all_tokens: Option<bool>,
    /// How long id_tokens are valid ("2m" by default, at most "12h").
    pub id_token_lifetime: Option<String>,
    /// Issue JWT access tokens (RFC 9068) instead of opaque session ids.
    pub jwt_access_tokens: Option<bool>,
    pub enforce_certificate_validity: Option<bool>,
    /// Salesforce's API Name (letters, digits, single underscores); proposed from the name.
    pub api_name: Option<String>,
    /// Whom admins ask about the app (Setup's "Contact Email").
    pub contact_email: Option<String>,
    /// "Enable OAuth Settings": `false` takes the app off the wire (an unknown client).
    pub oauth_enabled: Option<bool>,
    /// "Enable for Device Flow" (`true` unless set; Setup's New form starts it off).
    pub device_flow: Option<bool>,
    /// Where OIDC logout may send the browser back to (each matched exactly; an extension).
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Refresh-token approvals a user may hold at once (Salesforce's 5); the next revokes the
    /// oldest.
    pub max_approvals_per_user: Option<u32>,
    /// Salesforce's "Initial Access Token for Dynamic Client Registration": clients that
    /// present it may register themselves as apps of this org ("" removes it).
    pub initial_access_token: Option<String>,
    /// A JWK Set (JSON text) whose RSA keys verify `private_key_jwt` client assertions ("" removes it).
    pub jwks: Option<String>,
    /// Where the app publishes such a set: https, or http to localhost ("" removes it).
    pub jwks_uri: Option<String>,
    /// "IP Relaxation": "enforce" (default), "bypass_2fa", "bypass" or
    /// "enforce_relax_refresh".
    pub ip_relaxation: Option<String>,
    /// "Enable Token Exchange Flow" (on when `token_exchange_handlers` names any, unless set).
    pub token_exchange: Option<bool>,
    /// The org's handlers this app may use; the first is its default.
    pub token_exchange_handlers: Option<Vec<String>>,
    /// "Require Secret for Token Exchange Flow" (default true).
    pub require_secret_for_token_exchange: Option<bool>,
    /// "Enable Asset Tokens": the asset token flow for this app's access tokens.
    pub asset_tokens: Option<bool>,
    /// "Token Valid for": how long asset tokens are valid ("60s" unless set).
    pub asset_token_lifetime: Option<String>,
    /// "Asset Audiences": the asset tokens' `aud` (this server's URL unless set).
    pub asset_token_audiences: Option<Vec<String>>,
    /// "Asset Signing Certificate" (PEM text or a path) and its RSA private key
    /// (`asset_token_key`, PEM text or a path): given together, or neither, and then the
    /// org's keys sign ("" for both goes back to them).
    pub asset_token_certificate: Option<String>,
    pub asset_token_key: Option<String>,
    /// Not a config key: Setup's form unticking "Use digital signatures".
    #[serde(skip)]
    pub remove_certificate: bool,
    /// Not a config key: a certificate Setup's form received, already parsed (an upload is
    /// never taken for a path, as `certificate` may be).
    #[serde(skip)]
    pub certificate_der: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut cfg: ConfigFile = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        cfg.base_dir = path
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."));
        cfg.source = Some((path.to_owned(), text));
        cfg.check_server()?;
        Ok(cfg)
    }

    /// The `[server]` values serde cannot check by type: each refusal says where, what was
    /// given and what is expected.
    fn check_server(&self) -> Result<(), ConfigError> {
        let s = &self.server;
        let refuse = |key: &str, given: &str, expected: &str| {
            Err(ConfigError::Invalid(format!(
                "{}[server] {key} = {given}: {expected}",
                self.place(key, given.trim_matches('"'))
            )))
        };
        if let Some(f) = &s.log_format
            && f != "text"
            && f != "json"
        {
            return refuse(
                "log_format",
                &format!("{f:?}"),
                "expected \"text\" or \"json\"",
            );
        }
        if s.lockout_attempts == Some(0) {
            return refuse("lockout_attempts", "0", "must be at least 1");
        }
        if let Some(r) = &s.login_rate_limit
            && idforce_core::model::LoginRate::parse(r).is_none()
        {
            return refuse(
                "login_rate_limit",
                &format!("{r:?}"),
                "expected logins per window, e.g. \"3600/h\" (Salesforce's) or \"100/10m\"",
            );
        }
        for p in s.trusted_proxies.iter().flatten() {
            if parse_network(p).is_none() {
                return Err(ConfigError::Invalid(format!(
                    "{}[server] trusted_proxies: {p:?} is not an address or a network (e.g. \
                     \"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\")",
                    self.place("trusted_proxies", p)
                )));
            }
        }
        if let Some(l) = &s.listen
            && !is_listen_address(l)
        {
            return refuse(
                "listen",
                &format!("{l:?}"),
                "expected host:port, e.g. \"127.0.0.1:8080\" or \"0.0.0.0:443\"",
            );
        }
        Ok(())
    }

    /// `e`, said at the line of the org, user or app whose `key = "value"` names it.
    pub fn locate(&self, key: &str, value: &str, e: ConfigError) -> ConfigError {
        match e {
            ConfigError::Invalid(why) => {
                ConfigError::Invalid(format!("{}{why}", self.place(key, value)))
            }
            other => other,
        }
    }

    /// Where `key = "value"` is written: "idforce.toml line 12: ", or nothing when the values
    /// did not come from a file (or the line cannot be told).
    pub fn place(&self, key: &str, value: &str) -> String {
        let Some((path, text)) = &self.source else {
            return String::new();
        };
        // The value whole: `name = "Acme"` is not the line of `name = "Acme CLI"`.
        let quoted = format!("{value:?}");
        let line = text.lines().position(|line| {
            let line = line.trim_start();
            line.strip_prefix(key)
                .and_then(|rest| rest.trim_start().strip_prefix('='))
                .is_some_and(|v| {
                    let v = v.split(" #").next().unwrap_or(v).trim();
                    // A list holds the value as one of its items.
                    v == quoted || v == value || (v.starts_with('[') && v.contains(&quoted))
                })
        });
        match line {
            Some(n) => format!("{} line {}: ", path.display(), n + 1),
            None => format!("{}: ", path.display()),
        }
    }

    /// A duration value of `key`, or an error that says where it is and what is expected.
    pub fn duration_secs(&self, key: &str, value: &str) -> Result<i64, ConfigError> {
        parse_duration_secs(value).map_err(|_| {
            ConfigError::Invalid(format!(
                "{}{key} = {value:?}: not a duration (e.g. \"90s\", \"15m\", \"2h\", \"30d\")",
                self.place(key, value)
            ))
        })
    }
}

/// An address (one host) or a CIDR network.
pub fn parse_network(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// Login History rows kept at most, unless the config says otherwise.
pub const DEFAULT_LOGIN_HISTORY_MAX_ROWS: u64 = 1_000_000;

/// The `[server] login_history_max_rows` of a config, or the default.
pub fn login_history_max_rows(server: Option<&ServerSection>) -> u64 {
    server
        .and_then(|s| s.login_history_max_rows)
        .unwrap_or(DEFAULT_LOGIN_HISTORY_MAX_ROWS)
}

/// The `[server] login_rate_limit` of a config (checked when it was loaded).
pub fn login_rate(server: Option<&ServerSection>) -> Option<idforce_core::model::LoginRate> {
    server
        .and_then(|s| s.login_rate_limit.as_deref())
        .and_then(idforce_core::model::LoginRate::parse)
}

/// The `[server] trusted_proxies` of a config (checked when it was loaded).
pub fn trusted_proxies(server: Option<&ServerSection>) -> Vec<ipnet::IpNet> {
    server
        .and_then(|s| s.trusted_proxies.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|p| parse_network(p))
        .collect()
}

/// `host:port` (a name, an IPv4 address or a bracketed IPv6 one, and a port number).
pub fn is_listen_address(l: &str) -> bool {
    let Some((host, port)) = l.rsplit_once(':') else {
        return false;
    };
    let host_ok = match host.strip_prefix('[') {
        Some(v6) => v6
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok()),
        None => !host.is_empty() && !host.contains(':'),
    };
    host_ok && port.parse::<u16>().is_ok()
}

/// Parses "15m", "2h", "30d", "90s".
pub fn parse_duration_secs(s: &str) -> Result<i64, ConfigError> {
    humantime::parse_duration(s.trim())
        .map(|d| d.as_secs() as i64)
        .map_err(|e| ConfigError::Invalid(format!("bad duration {s:?}: {e}")))
}

/// A duration of at least a millisecond ("10s", "1500ms").
pub fn parse_timeout(key: &str, s: &str) -> Result<std::time::Duration, ConfigError> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if d >= std::time::Duration::from_millis(1) => Ok(d),
        Ok(_) => Err(ConfigError::Invalid(format!(
            "[server] {key} = {s:?}: must be at least 1ms"
        ))),
        Err(e) => Err(ConfigError::Invalid(format!(
            "[server] {key} = {s:?}: bad duration: {e}"
        ))),
    }
}

/// The `[server]` connection settings, defaults where absent (`config` says where a bad one is).
pub fn connection_limits(
    server: Option<&ServerSection>,
    config: Option<&ConfigFile>,
) -> Result<crate::listener::ConnectionLimits, ConfigError> {
    let mut limits = crate::listener::ConnectionLimits::default();
    let Some(server) = server else {
        return Ok(limits);
    };
    let settings = [
        (
            "header_timeout",
            &server.header_timeout,
            &mut limits.request_head,
        ),
        ("body_timeout", &server.body_timeout, &mut limits.body_stall),
        (
            "tls_handshake_timeout",
            &server.tls_handshake_timeout,
            &mut limits.tls_handshake,
        ),
        ("idle_timeout", &server.idle_timeout, &mut limits.idle),
    ];
    for (key, value, slot) in settings {
        if let Some(v) = value {
            *slot = parse_timeout(key, v).map_err(|e| match config {
                Some(cfg) => ConfigError::Invalid(format!("{}{e}", cfg.place(key, v))),
                None => e,
            })?;
        }
    }
    if server.max_connections == Some(0) {
        return Err(ConfigError::Invalid(
            "[server] max_connections = 0: must be at least 1".into(),
        ));
    }
    limits.max_connections = server.max_connections;
    Ok(limits)
}

/// Reads a certificate given inline as PEM or as a path to a PEM or DER file, and returns
/// its DER form.
pub fn load_certificate(value: &str, base_dir: &Path) -> Result<Vec<u8>, ConfigError> {
    let bytes = if value.trim_start().starts_with("-----BEGIN") {
        value.as_bytes().to_vec()
    } else {
        let path = base_dir.join(value);
        std::fs::read(&path).map_err(|source| ConfigError::Read { path, source })?
    };
    parse_certificate(&bytes)
}

/// An RSA private key (PEM text, or a path to a PEM file; PKCS#8 or PKCS#1) as PKCS#8 DER.
pub fn load_rsa_key(value: &str, base_dir: &Path) -> Result<Vec<u8>, ConfigError> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::signature::RsaKeyPair;
    use rustls_pki_types::PrivateKeyDer;
    use rustls_pki_types::pem::PemObject;
    let bytes = if value.trim_start().starts_with("-----BEGIN") {
        value.as_bytes().to_vec()
    } else {
        let path = base_dir.join(value);
        std::fs::read(&path).map_err(|source| ConfigError::Read { path, source })?
    };
    let invalid = |why: &str| ConfigError::Invalid(format!("key: {why}"));
    let pair = match PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|_| invalid("no PEM private key (BEGIN PRIVATE KEY or BEGIN RSA PRIVATE KEY)"))?
    {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => {
            return Err(invalid(
                "not an RSA key (asset tokens are signed with RS256)",
            ));
        }
    }
    .map_err(|_| invalid("not a usable RSA key of 2048 to 8192 bits"))?;
    let der = pair
        .as_der()
        .map_err(|_| invalid("the key cannot be written as PKCS#8"))?;
    Ok(der.as_ref().to_vec())
}

/// A certificate's DER form from PEM or DER bytes, checked usable. Never reads a file: what a
/// person uploads goes here, so that no value can name a path on the server.
pub fn parse_certificate(bytes: &[u8]) -> Result<Vec<u8>, ConfigError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let bytes = bytes.to_vec();
    let der = if bytes.starts_with(b"-----") || bytes.trim_ascii_start().starts_with(b"-----") {
        CertificateDer::from_pem_slice(&bytes)
            .map_err(|e| ConfigError::Invalid(format!("certificate is not PEM: {e}")))?
            .to_vec()
    } else {
        bytes
    };
    let cert = CertificateDer::from(der.as_slice());
    webpki::EndEntityCert::try_from(&cert)
        .map_err(|e| ConfigError::Invalid(format!("certificate is not usable: {e}")))?;
    Ok(der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn listen_addresses_are_host_and_port() {
        for good in ["127.0.0.1:8080", "0.0.0.0:0", "localhost:443", "[::1]:8080"] {
            assert!(is_listen_address(good), "{good}");
        }
        for bad in [
            "nonsense",
            "::1",
            ":8080",
            "127.0.0.1:99999",
            "[::1]",
            "a:b:8080",
            "[nope]:80",
        ] {
            assert!(!is_listen_address(bad), "{bad}");
        }
    }

    fn limits(toml_text: &str) -> Result<crate::listener::ConnectionLimits, String> {
        let section: ServerSection = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        connection_limits(Some(&section), None).map_err(|e| e.to_string())
    }

    #[test]
    fn connection_settings_are_read_with_their_defaults() {
        let d = limits("").expect("defaults");
        assert_eq!(d, crate::listener::ConnectionLimits::default());
        assert_eq!(d.request_head, Duration::from_secs(10));
        assert_eq!(d.idle, Duration::from_secs(60));
        let l = limits(
            "header_timeout = \"1500ms\"\nbody_timeout = \"2s\"\ntls_handshake_timeout = \"3s\"\n\
             idle_timeout = \"2m\"\nmax_connections = 50",
        )
        .expect("parses");
        assert_eq!(l.request_head, Duration::from_millis(1500));
        assert_eq!(l.body_stall, Duration::from_secs(2));
        assert_eq!(l.tls_handshake, Duration::from_secs(3));
        assert_eq!(l.idle, Duration::from_secs(120));
        assert_eq!(l.max_connections, Some(50));
    }

    #[test]
    fn bad_durations_say_which_key_file_and_line() {
        let dir = std::env::temp_dir().join(format!(
            "idforce-config-{}",
            idforce_core::token::hex(&idforce_core::token::random_bytes::<6>())
        ));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("idforce.toml");
        std::fs::write(
            &path,
            "[server]\nlockout_attempts = 5\nlockout_duration = \"15 mins pls\"\n",
        )
        .expect("write");
        let cfg = ConfigFile::load(&path).expect("parses");
        let err = cfg
            .duration_secs("lockout_duration", "15 mins pls")
            .expect_err("not a duration")
            .to_string();
        assert!(
            err.contains(&format!(
                "{} line 3: lockout_duration = \"15 mins pls\"",
                path.display()
            )) && err.contains("not a duration (e.g."),
            "{err}"
        );
        assert_eq!(
            cfg.duration_secs("lockout_duration", "15m").expect("fine"),
            900
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_connection_settings_say_which_key() {
        for (text, said) in [
            (
                "header_timeout = \"soon\"",
                "[server] header_timeout = \"soon\": bad duration",
            ),
            (
                "idle_timeout = \"0s\"",
                "[server] idle_timeout = \"0s\": must be at least 1ms",
            ),
            (
                "max_connections = 0",
                "[server] max_connections = 0: must be at least 1",
            ),
        ] {
            let err = limits(text).expect_err(text);
            assert!(err.contains(said), "{text}: {err}");
        }
    }
}
