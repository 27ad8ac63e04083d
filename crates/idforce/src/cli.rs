//! Command-line interface (product.md "Interface contract"). Every flag has an `IDFORCE_*`
//! environment twin.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "idforce",
    version,
    about = "A Salesforce-compatible OAuth 2.0 and OpenID Connect authorization server"
)]
pub struct Cli {
    /// Config file (TOML): server settings and orgs, users and apps to seed.
    #[arg(long, global = true, env = "IDFORCE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Database URL [default: sqlite://idforce.db?mode=rwc].
    #[arg(long, global = true, env = "IDFORCE_DATABASE_URL")]
    pub database: Option<String>,
    /// File of the system secret that seals the store's keys and secrets (one per line, newest
    /// first). Else IDFORCE_SECRET (comma-separated), then IDFORCE_SECRET_FILE, then the config's
    /// secret_file. Without any, a SQLite store keeps a generated one beside it (idforce.db →
    /// idforce.secret); PostgreSQL needs one.
    #[arg(long, global = true)]
    pub secret_file: Option<PathBuf>,
    /// Print machine-readable JSON (IDFORCE_JSON: 1/0, true/false, yes/no).
    #[arg(
        long,
        global = true,
        env = "IDFORCE_JSON",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Manage orgs.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage connected apps.
    #[command(subcommand)]
    App(AppCommand),
    /// List or revoke live access tokens of a user or an app.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Signing keys of id_tokens and JWT access tokens.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The system secret that seals the store's keys and secrets.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Write the store's orgs, users, apps, approvals and signing keys as JSON (it includes the
    /// credential-hashing key: keep it as safe as the database).
    Export {
        /// Also live refresh tokens (their digests), so users need not log in again.
        #[arg(long)]
        refresh_tokens: bool,
        /// File to write [default: standard output].
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read an export into this store (idempotent; the target must be empty or hold the same
    /// hashing key).
    Import {
        /// File to read [default: standard input].
        file: Option<PathBuf>,
    },
    /// Get a token from any Salesforce-compatible login server (idforce or Salesforce itself).
    #[command(subcommand)]
    Login(LoginCommand),
    /// Introspect a token (RFC 7662), authenticated as an app.
    Introspect {
        #[command(flatten)]
        app: AppArgs,
        /// The access or refresh token.
        token: String,
    },
    /// Revoke an access or refresh token (or a saved profile's tokens).
    Revoke {
        #[command(flatten)]
        target: TokenArgs,
    },
    /// OpenID Connect userinfo of a token's user.
    Userinfo {
        #[command(flatten)]
        target: TokenArgs,
    },
    /// The identity of a token's user (the token response's `id` URL), refreshing a saved
    /// profile's expired session first.
    Whoami {
        #[command(flatten)]
        target: TokenArgs,
    },
}

/// The login server and the connected app.
#[derive(Args, Clone)]
pub struct AppArgs {
    /// Login URL: https://login.salesforce.com, https://test.salesforce.com, a My Domain, or
    /// an idforce.
    #[arg(
        long,
        env = "IDFORCE_LOGIN_URL",
        default_value = "https://login.salesforce.com"
    )]
    pub login_url: String,
    /// Consumer key of the connected app.
    #[arg(long, env = "IDFORCE_CLIENT_ID")]
    pub client_id: String,
    /// Consumer secret (public apps have none).
    #[arg(long, env = "IDFORCE_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
}

/// How a login is printed and kept.
#[derive(Args, Clone)]
pub struct OutputArgs {
    /// `json` (the token response) or `env` (shell exports).
    #[arg(long, default_value = "json", value_parser = ["json", "env"])]
    pub format: String,
    /// Keep the tokens under this name in the per-user token file (mode 0600), for
    /// `whoami --profile NAME` and the others.
    #[arg(long, value_name = "NAME")]
    pub save: Option<String>,
}

/// A token given directly, or a saved profile's.
#[derive(Args, Clone)]
pub struct TokenArgs {
    /// A saved login (`idforce login … --save NAME`).
    #[arg(long, conflicts_with = "token")]
    pub profile: Option<String>,
    /// An access token (with --login-url).
    #[arg(long, required_unless_present = "profile")]
    pub token: Option<String>,
    /// Login URL, for --token.
    #[arg(
        long,
        env = "IDFORCE_LOGIN_URL",
        default_value = "https://login.salesforce.com"
    )]
    pub login_url: String,
}

#[derive(Subcommand)]
pub enum LoginCommand {
    /// Username-password flow: the password followed by the security token, if the user has
    /// one.
    Password {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long, env = "IDFORCE_USERNAME")]
        username: String,
        #[arg(long, env = "IDFORCE_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// JWT bearer flow: signs an RS256 assertion with the private key of the app's certificate.
    Jwt {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long, env = "IDFORCE_USERNAME")]
        username: String,
        /// PEM private key (PKCS#1 or PKCS#8).
        #[arg(long, env = "IDFORCE_JWT_KEY_FILE")]
        key: PathBuf,
        /// The assertion's `aud` [default: the login URL].
        #[arg(long)]
        audience: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Refresh token flow.
    Refresh {
        #[command(flatten)]
        app: AppArgs,
        #[arg(long, env = "IDFORCE_REFRESH_TOKEN", hide_env_values = true)]
        refresh_token: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Client credentials flow (the app's run-as user).
    ClientCredentials {
        #[command(flatten)]
        app: AppArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Web server flow with PKCE: listens on the callback, opens the browser (or prints the
    /// URL), checks `state`, and redeems the code.
    Web {
        #[command(flatten)]
        app: AppArgs,
        /// The app's callback URL, on this machine.
        #[arg(long, default_value = idforce_client::DEFAULT_REDIRECT_URI)]
        redirect_uri: String,
        /// Scopes to ask for [default: the app's].
        #[arg(long)]
        scope: Option<String>,
        /// Print the URL only; do not try to open a browser.
        #[arg(long)]
        no_browser: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Device flow: prints the user code and where to enter it, then polls.
    Device {
        #[command(flatten)]
        app: AppArgs,
        /// Scopes to ask for [default: the app's].
        #[arg(long)]
        scope: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// List the signing keys: the active one, and retired ones still published.
    List,
    /// Make a new key the signing key; the old one stays published until its tokens expire.
    Rotate,
}

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Seal every key and secret of the store under the first (newest) secret given, so that
    /// older secrets can be retired.
    Reseal,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "IDFORCE_LISTEN")]
    pub listen: Option<String>,
    /// Public base URL [default: http(s)://<listen>].
    #[arg(long, env = "IDFORCE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// PEM certificate chain for HTTPS.
    #[arg(long, env = "IDFORCE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, env = "IDFORCE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, env = "IDFORCE_LOG_FORMAT", value_parser = ["text", "json"])]
    pub log_format: Option<String>,
}

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an org.
    Create {
        #[arg(long)]
        name: String,
        /// 15- or 18-character org id (00D…); generated when omitted.
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        instance_url: Option<String>,
    },
    /// List orgs.
    List,
    /// Show one org (by name or id).
    Show { org: String },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        /// Org name or id.
        #[arg(long)]
        org: String,
        #[arg(long)]
        username: String,
        /// Password; generated and printed when omitted.
        #[arg(long, env = "IDFORCE_USER_PASSWORD")]
        password: Option<String>,
        #[arg(long)]
        security_token: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        first_name: Option<String>,
        #[arg(long)]
        last_name: Option<String>,
        #[arg(long, default_value = "Standard User")]
        profile: String,
    },
    /// List users.
    List {
        #[arg(long)]
        org: Option<String>,
    },
    /// Show one user.
    Show { username: String },
    /// Set a user's password (generated and printed when omitted).
    SetPassword {
        username: String,
        #[arg(long, env = "IDFORCE_USER_PASSWORD")]
        password: Option<String>,
    },
    /// Deactivate a user and revoke their sessions.
    Deactivate { username: String },
    /// Clear a lockout.
    Unlock { username: String },
}

#[derive(Subcommand)]
pub enum AppCommand {
    /// Create a connected app; prints its consumer key and secret.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        name: String,
        #[arg(long = "callback-url")]
        callback_urls: Vec<String>,
        /// Space- or comma-separated scopes.
        #[arg(long, default_value = "api web refresh_token openid")]
        scopes: String,
        /// PEM certificate file for the JWT bearer flow.
        #[arg(long)]
        certificate: Option<PathBuf>,
        #[arg(long, default_value = "all_users", value_parser = ["all_users", "admin_approved"])]
        permitted_users: String,
        /// Username of the client-credentials run-as user.
        #[arg(long)]
        run_as: Option<String>,
        #[arg(long)]
        session_timeout: Option<String>,
        #[arg(long)]
        introspect_all_tokens: bool,
    },
    /// List apps.
    List {
        #[arg(long)]
        org: Option<String>,
    },
    /// Show one app (by name or consumer key).
    Show {
        app: String,
        /// Also print the consumer secret (Salesforce's "Manage Consumer Details").
        #[arg(long)]
        reveal_secret: bool,
    },
    /// Replace the consumer secret; prints the new one.
    RotateSecret { app: String },
    /// Upload the X.509 certificate that verifies JWT bearer assertions.
    SetCertificate { app: String, certificate: PathBuf },
    /// Approve the app for a user (pre-authorize for admin-approved apps).
    ApproveUser { app: String, username: String },
    /// Pre-authorize every user of a profile.
    ApproveProfile { app: String, profile: String },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// List live access tokens (sessions).
    List {
        #[arg(long, conflicts_with = "app", required_unless_present = "app")]
        user: Option<String>,
        #[arg(long)]
        app: Option<String>,
    },
    /// Revoke every live access token of a user or an app.
    Revoke {
        #[arg(long, conflicts_with = "app", required_unless_present = "app")]
        user: Option<String>,
        #[arg(long)]
        app: Option<String>,
    },
}
