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
    /// Manage profiles (which connected apps admit a user).
    #[command(subcommand)]
    Profile(ProfileCommand),
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
    /// The Setup Audit Trail: every change made by an admin command, newest first.
    AuditTrail {
        /// Only this org's changes (its name or id).
        #[arg(long)]
        org: Option<String>,
        /// How many changes to show.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Login History: every login attempt of a known user (successes and the real reason of
    /// each refusal), newest first.
    LoginHistory {
        /// Only this org's logins (its name or id).
        #[arg(long)]
        org: Option<String>,
        /// Only this user's logins (a username).
        #[arg(long)]
        user: Option<String>,
        /// Only logins through this connected app (its name or consumer key).
        #[arg(long)]
        app: Option<String>,
        /// Only logins since this instant (2026-12-01, 2026-12-01T08:00:00Z) or for this long
        /// (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// How many logins to show [default: 100; with --csv, every one].
        #[arg(long)]
        limit: Option<u32>,
        /// Print CSV with Salesforce's column names (cells a spreadsheet would run as a formula
        /// start with ').
        #[arg(long)]
        csv: bool,
    },
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
    /// The identity of a token's user: the answer of its identity URL (the token response's
    /// `id`), the same shape with --token or --profile; a saved profile's ended session is
    /// refreshed first.
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
    /// An access token (with --login-url). One of --token and --profile is needed.
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
        /// The user's username.
        #[arg(long, env = "IDFORCE_USERNAME")]
        username: String,
        /// The password, followed by the security token when the user has one.
        #[arg(long, env = "IDFORCE_PASSWORD", hide_env_values = true)]
        password: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// JWT bearer flow: signs an RS256 assertion with the private key of the app's certificate.
    Jwt {
        #[command(flatten)]
        app: AppArgs,
        /// The user the assertion names (its `sub`).
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
        /// The refresh token to spend.
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
    /// Development only: every refusal also says why (an `idforce_reason` field in JSON
    /// answers, an `X-Idforce-Reason` header on all). Refused unless listening on loopback.
    #[arg(long)]
    pub explain: bool,
    /// A store of its own in a temporary directory, deleted on exit: with a config's fixed
    /// ids and secrets (and `[server] signing_key_file`), every run starts the same.
    #[arg(long)]
    pub ephemeral: bool,
    /// --explain on any listen address: anyone who reaches the server learns which usernames
    /// exist and why each attempt failed.
    #[arg(long)]
    pub explain_anywhere: bool,
}

/// `idforce app update`: every setting of a connected app, named as in the config file.
#[derive(clap::Args)]
pub struct AppUpdate {
    /// The app's name or consumer key.
    pub app: String,
    /// A new name (unique in its org).
    #[arg(long)]
    pub name: Option<String>,
    /// Salesforce's API Name: letters, digits and single underscores, unique in the org.
    #[arg(long)]
    pub api_name: Option<String>,
    /// Whom admins ask about the app.
    #[arg(long)]
    pub contact_email: Option<String>,
    /// "Enable OAuth Settings": false takes the app off the wire (an unknown client).
    #[arg(long)]
    pub oauth_enabled: Option<bool>,
    /// "Enable for Device Flow".
    #[arg(long)]
    pub device_flow: Option<bool>,
    /// Redirect URIs, replacing the list (repeat for several).
    #[arg(long = "callback-url")]
    pub callback_urls: Vec<String>,
    /// Where OIDC logout may send the browser back to, replacing the list (repeat for
    /// several; an extension: Salesforce ignores `post_logout_redirect_uri`).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// Refresh-token approvals a user may hold at once (Salesforce's 5).
    #[arg(long)]
    pub max_approvals_per_user: Option<u32>,
    /// Space- or comma-separated scopes, replacing them.
    #[arg(long)]
    pub scopes: Option<String>,
    /// PEM or DER certificate file that verifies JWT bearer assertions.
    #[arg(long)]
    pub certificate: Option<PathBuf>,
    /// Who may use it.
    #[arg(long, value_parser = ["all_users", "admin_approved"])]
    pub permitted_users: Option<String>,
    /// Profiles it pre-authorizes, replacing the list (repeat for several).
    #[arg(long = "profile")]
    pub profiles: Vec<String>,
    /// Users it pre-authorizes, replacing the list (repeat for several).
    #[arg(long = "pre-authorized-user")]
    pub pre_authorized_users: Vec<String>,
    /// Username of the client-credentials run-as user ("" turns the client credentials flow
    /// off).
    #[arg(long)]
    pub run_as: Option<String>,
    /// Whether the web server flow needs the consumer secret.
    #[arg(long)]
    pub require_secret_for_web_server_flow: Option<bool>,
    /// Whether the refresh token flow needs the consumer secret.
    #[arg(long)]
    pub require_secret_for_refresh_token_flow: Option<bool>,
    /// Whether the authorization code flows need PKCE.
    #[arg(long)]
    pub require_pkce: Option<bool>,
    /// until_revoked, immediately, expire_after:DURATION or expire_if_unused:DURATION.
    #[arg(long)]
    pub refresh_token_policy: Option<String>,
    /// Whether each refresh returns a new refresh token (reuse revokes the family).
    #[arg(long)]
    pub rotate_refresh_tokens: Option<bool>,
    /// Access-token idle timeout, e.g. "2h".
    #[arg(long)]
    pub session_timeout: Option<String>,
    /// Whether it may introspect every token of its org.
    #[arg(long)]
    pub introspect_all_tokens: Option<bool>,
    /// id_token lifetime, 1 minute to 12 hours, e.g. "10m".
    #[arg(long)]
    pub id_token_lifetime: Option<String>,
    /// Whether its access tokens are RFC 9068 JWTs.
    #[arg(long)]
    pub jwt_access_tokens: Option<bool>,
    /// Whether JWT bearer assertions need the certificate within its validity period.
    #[arg(long)]
    pub enforce_certificate_validity: Option<bool>,
    /// The initial access token with which clients register themselves as apps of this org
    /// at /services/oauth2/register ("" removes it; `generate-initial-access-token` makes one).
    #[arg(long)]
    pub initial_access_token: Option<String>,
    /// A file holding a JWK Set whose RSA keys verify private_key_jwt client assertions.
    #[arg(long)]
    pub jwks: Option<PathBuf>,
    /// Where the app publishes its JWK Set: https, or http to localhost ("" removes it).
    #[arg(long)]
    pub jwks_uri: Option<String>,
    /// "IP Relaxation": whether profiles' Login IP Ranges hold for the app's logins.
    #[arg(long, value_parser = ["enforce", "bypass_2fa", "bypass", "enforce_relax_refresh"])]
    pub ip_relaxation: Option<String>,
    /// "Enable Token Exchange Flow".
    #[arg(long)]
    pub token_exchange: Option<bool>,
    /// The org's token exchange handlers the app may use, the first its default (repeat the
    /// flag; one empty value removes them all).
    #[arg(long = "token-exchange-handler")]
    pub token_exchange_handlers: Vec<String>,
    /// "Require Secret for Token Exchange Flow".
    #[arg(long)]
    pub require_secret_for_token_exchange: Option<bool>,
    /// "Enable Asset Tokens".
    #[arg(long)]
    pub asset_tokens: Option<bool>,
    /// "Token Valid for": how long asset tokens are valid (e.g. "60s", "5m").
    #[arg(long)]
    pub asset_token_lifetime: Option<String>,
    /// "Asset Audiences": the asset tokens' aud (repeat the flag; one empty value removes them).
    #[arg(long = "asset-token-audience")]
    pub asset_token_audiences: Vec<String>,
}

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// List profiles, with their users and the apps that admit them.
    List {
        /// Only this org's (name or id).
        #[arg(long)]
        org: Option<String>,
    },
    /// Create a profile; with --clone, it gets that profile's connected-app access.
    Create {
        /// The org (name or id).
        #[arg(long)]
        org: String,
        /// The profile's name (unique in its org).
        #[arg(long)]
        name: String,
        /// An existing profile of the org whose app access the new one copies.
        #[arg(long)]
        clone: Option<String>,
    },
    /// Change a profile's login restrictions (the config's `[[org.profile]]` keys).
    Update {
        /// The org (name or id).
        #[arg(long)]
        org: String,
        /// The profile's name.
        #[arg(long)]
        name: String,
        /// A Login IP Range, START-END or one address, IPv4 or IPv6; replaces the list (repeat
        /// for several).
        #[arg(long = "login-ip-range", value_name = "START-END")]
        login_ip_ranges: Vec<String>,
        /// Remove every Login IP Range.
        #[arg(long, conflicts_with = "login_ip_ranges")]
        no_login_ip_ranges: bool,
        /// Login Hours of one weekday, DAY=HH:MM-HH:MM in the org's time zone; replaces them
        /// all (repeat per day; a day left out allows no login).
        #[arg(long = "login-hours", value_name = "DAY=HH:MM-HH:MM")]
        login_hours: Vec<String>,
        /// Remove the Login Hours restriction.
        #[arg(long, conflicts_with = "login_hours")]
        no_login_hours: bool,
    },
}

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an org.
    Create {
        /// The org's name (unique in this store).
        #[arg(long)]
        name: String,
        /// 15- or 18-character org id (00D…); generated when omitted.
        #[arg(long)]
        id: Option<String>,
        /// The `instance_url` its logins answer [default: its My Domain's URL, else the
        /// server's public URL].
        #[arg(long)]
        instance_url: Option<String>,
        /// Its My Domain: a host name whose requests are this org's (e.g. acme.my.localhost).
        #[arg(long)]
        my_domain: Option<String>,
        /// Where OIDC logout sends the browser [default: the login page].
        #[arg(long)]
        logout_url: Option<String>,
    },
    /// Change an org's My Domain, Logout URL or Experience Cloud sites.
    Update {
        /// The org's name or id.
        org: String,
        /// Its My Domain ("" removes it).
        #[arg(long)]
        my_domain: Option<String>,
        /// Where OIDC logout sends the browser ("" for the login page).
        #[arg(long)]
        logout_url: Option<String>,
        /// A site, NAME=PATH: added, or moved to PATH if it exists (repeat for several).
        #[arg(long = "site", value_name = "NAME=PATH")]
        sites: Vec<String>,
        /// A site to remove, by name (repeat for several).
        #[arg(long = "remove-site", value_name = "NAME")]
        remove_sites: Vec<String>,
        /// "Allow OAuth Username-Password Flows".
        #[arg(long)]
        allow_username_password_flow: Option<bool>,
        /// "Allow OAuth User-Agent Flows".
        #[arg(long)]
        allow_user_agent_flow: Option<bool>,
        /// Require PKCE of every app of the org.
        #[arg(long)]
        require_pkce_for_all_apps: Option<bool>,
        /// The org's default time zone (IANA, e.g. Europe/Paris): the clock of login hours.
        #[arg(long)]
        time_zone: Option<String>,
        /// A token exchange handler to remove, by name (repeat for several): its issuer's
        /// tokens are no longer exchanged, by any app (the config file declares handlers).
        #[arg(long = "remove-token-exchange-handler", value_name = "NAME")]
        remove_token_exchange_handlers: Vec<String>,
    },
    /// List orgs.
    List,
    /// Show one org.
    Show {
        /// The org's name or id.
        org: String,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        /// Org name or id.
        #[arg(long)]
        org: String,
        /// Login name, unique across orgs (e.g. alice@acme.test).
        #[arg(long)]
        username: String,
        /// Password; generated and printed when omitted.
        #[arg(long, env = "IDFORCE_USER_PASSWORD")]
        password: Option<String>,
        /// Security token: API logins then send password + token.
        #[arg(long)]
        security_token: Option<String>,
        /// Email address [default: the username].
        #[arg(long)]
        email: Option<String>,
        /// First name.
        #[arg(long)]
        first_name: Option<String>,
        /// Last name.
        #[arg(long)]
        last_name: Option<String>,
        /// Profile (admin-approved apps pre-authorize by profile).
        #[arg(long, default_value = "Standard User")]
        profile: String,
        /// Federation ID: how an identity provider's tokens may name the user (token exchange).
        #[arg(long)]
        federation_id: Option<String>,
    },
    /// List users.
    List {
        /// Only this org's (name or id).
        #[arg(long)]
        org: Option<String>,
    },
    /// Show one user.
    Show {
        /// The user's username.
        username: String,
    },
    /// Set a user's password (generated and printed when omitted).
    SetPassword {
        /// The user's username.
        username: String,
        /// The new password.
        #[arg(long, env = "IDFORCE_USER_PASSWORD")]
        password: Option<String>,
    },
    /// Deactivate a user and revoke their sessions.
    Deactivate {
        /// The user's username.
        username: String,
    },
    /// Clear a lockout.
    Unlock {
        /// The user's username.
        username: String,
    },
    /// Change a user: each option given replaces that field; the others stay.
    Update {
        /// The user's username.
        username: String,
        /// A new username (unique across every org).
        #[arg(long = "new-username")]
        new_username: Option<String>,
        /// Email address.
        #[arg(long)]
        email: Option<String>,
        /// First name.
        #[arg(long)]
        first_name: Option<String>,
        /// Last name.
        #[arg(long)]
        last_name: Option<String>,
        /// Profile (made if the org has none of that name).
        #[arg(long)]
        profile: Option<String>,
        /// Federation ID ("" removes it).
        #[arg(long)]
        federation_id: Option<String>,
    },
    /// Let a deactivated user log in again (their refresh tokens work again too).
    Reactivate {
        /// The user's username.
        username: String,
    },
    /// Stop a user from logging in without deactivating them (Salesforce's Freeze): their
    /// sessions end; their refresh tokens are refused until they are unfrozen.
    Freeze {
        /// The user's username.
        username: String,
    },
    /// Let a frozen user log in again.
    Unfreeze {
        /// The user's username.
        username: String,
    },
    /// Give a user a new security token, printed once (Salesforce emails it). Logins that
    /// append the old one are refused from now on.
    ResetSecurityToken {
        /// The user's username.
        username: String,
    },
}

#[derive(Subcommand)]
pub enum AppCommand {
    /// Create a connected app; prints its consumer key and secret.
    Create {
        /// Org name or id.
        #[arg(long)]
        org: String,
        /// The app's name (unique in its org).
        #[arg(long)]
        name: String,
        /// A redirect URI the app may use (repeat for several).
        #[arg(long = "callback-url")]
        callback_urls: Vec<String>,
        /// Space- or comma-separated scopes.
        #[arg(long, default_value = "api web refresh_token openid")]
        scopes: String,
        /// PEM certificate file for the JWT bearer flow.
        #[arg(long)]
        certificate: Option<PathBuf>,
        /// Who may use it: every user after approving it, or only pre-authorized users.
        #[arg(long, default_value = "all_users", value_parser = ["all_users", "admin_approved"])]
        permitted_users: String,
        /// Username of the client-credentials run-as user.
        #[arg(long)]
        run_as: Option<String>,
        /// Access-token idle timeout, e.g. "2h" [default: 2h].
        #[arg(long)]
        session_timeout: Option<String>,
        /// Let it introspect every token of its org, not only its own.
        #[arg(long)]
        introspect_all_tokens: bool,
    },
    /// List apps.
    List {
        /// Only this org's (name or id).
        #[arg(long)]
        org: Option<String>,
    },
    /// Show one app.
    Show {
        /// The app's name or consumer key.
        app: String,
        /// Also print the consumer secret and the initial access token (Salesforce's "Manage
        /// Consumer Details" and "Click to reveal").
        #[arg(long)]
        reveal_secret: bool,
    },
    /// Make a new initial access token for dynamic client registration (Setup's Generate /
    /// Regenerate): the old one stops working; apps it registered stay. Prints it.
    GenerateInitialAccessToken {
        /// The app's name or consumer key.
        app: String,
    },
    /// Change an app: each option given replaces that setting (the config file's key of the
    /// same name, `[[org.app]]`); the others stay.
    Update(Box<AppUpdate>),
    /// Block an app (Connected Apps OAuth Usage → Block): its access and refresh tokens end,
    /// and it gets no new ones until unblocked.
    Block {
        /// The app's name or consumer key.
        app: String,
    },
    /// Let a blocked app get tokens again (the ended ones stay ended).
    Unblock {
        /// The app's name or consumer key.
        app: String,
    },
    /// Replace the consumer secret; prints the new one.
    RotateSecret {
        /// The app's name or consumer key.
        app: String,
    },
    /// Upload the X.509 certificate that verifies JWT bearer assertions.
    SetCertificate {
        /// The app's name or consumer key.
        app: String,
        /// PEM or DER certificate file.
        certificate: PathBuf,
    },
    /// Approve the app for a user (pre-authorize for admin-approved apps).
    ApproveUser {
        /// The app's name or consumer key.
        app: String,
        /// The user's username.
        username: String,
    },
    /// Pre-authorize every user of a profile.
    ApproveProfile {
        /// The app's name or consumer key.
        app: String,
        /// The profile's name.
        profile: String,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// List live access and refresh tokens of a user or an app.
    List {
        /// The user's username (with --app: that user's tokens of that app).
        #[arg(long, required_unless_present = "app")]
        user: Option<String>,
        /// The app's name or consumer key.
        #[arg(long)]
        app: Option<String>,
    },
    /// Revoke every live access and refresh token of a user or an app.
    Revoke {
        /// The user's username (with --app: that user's tokens of that app).
        #[arg(long, required_unless_present = "app")]
        user: Option<String>,
        /// The app's name or consumer key.
        #[arg(long)]
        app: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command and option says what it is in `--help`.
    #[test]
    fn every_command_and_option_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} --{id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name());
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "idforce", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:#?}");
    }
}
