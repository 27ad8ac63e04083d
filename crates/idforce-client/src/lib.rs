//! Get a token from any Salesforce-compatible login server — idforce, or
//! `https://login.salesforce.com` itself — with the flows Salesforce speaks, and use it:
//! introspection, revocation, userinfo and the identity URL.
//!
//! Every call returns typed answers, and a failure keeps Salesforce's `error` and
//! `error_description` ([`Error::OAuth`]) with one line of help for the usual causes
//! ([`Error::hint`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), idforce_client::Error> {
//! use idforce_client::{App, LoginClient};
//!
//! let login = LoginClient::new("https://login.salesforce.com")?;
//! let app = App::new("3MVG9…").with_secret("5E8F…");
//! let tokens = login.password(&app, "alice@acme.test", "Winter2026!TOKEN").await?;
//! let me = login.identity(&tokens.id, &tokens.access_token).await?;
//! println!("{} on {}", me["username"], tokens.instance_url);
//! # Ok(()) }
//! ```

mod error;
mod jwt;
mod tokens;
mod web;

use std::time::Duration;

use serde_json::Value;

pub use error::Error;
pub use jwt::assertion;
pub use tokens::{DeviceCodes, TokenResponse};
pub use web::{DEFAULT_REDIRECT_URI, Pkce};

/// A connected app as the client knows it: the consumer key, and the consumer secret when the
/// flow needs one.
#[derive(Debug, Clone)]
pub struct App {
    pub client_id: String,
    pub client_secret: Option<String>,
}

impl App {
    pub fn new(client_id: impl Into<String>) -> App {
        App {
            client_id: client_id.into(),
            client_secret: None,
        }
    }

    pub fn with_secret(mut self, secret: impl Into<String>) -> App {
        self.client_secret = Some(secret.into());
        self
    }

    fn form<'a>(&'a self, form: &mut Vec<(&'static str, &'a str)>) {
        form.push(("client_id", &self.client_id));
        if let Some(secret) = &self.client_secret {
            form.push(("client_secret", secret));
        }
    }
}

/// Refuses what reqwest would only answer with "builder error" at the first request: an
/// address without a scheme (`127.0.0.1:8080`), another scheme, or one with a query.
fn check_login_url(given: &str) -> Result<(), Error> {
    let refuse = |why: &str| {
        Err(Error::LoginUrl {
            given: given.to_owned(),
            why: why.to_owned(),
        })
    };
    if !given.contains("://") {
        // `localhost:8080` would parse as scheme "localhost".
        return refuse("no scheme");
    }
    let url = match reqwest::Url::parse(given) {
        Ok(url) => url,
        Err(e) => return refuse(&e.to_string()),
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return refuse("not an http or https address");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return refuse("a login URL has no query or fragment");
    }
    Ok(())
}

/// The login server: `https://login.salesforce.com`, `https://test.salesforce.com`, a My
/// Domain, or an idforce.
#[derive(Debug, Clone)]
pub struct LoginClient {
    http: reqwest::Client,
    login_url: String,
}

impl LoginClient {
    pub fn new(login_url: &str) -> Result<LoginClient, Error> {
        check_login_url(login_url)?;
        // reqwest is built without a default TLS provider: ring, as everywhere in idforce.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(Error::Http)?;
        Ok(LoginClient {
            http,
            login_url: login_url.trim_end_matches('/').to_owned(),
        })
    }

    pub fn login_url(&self) -> &str {
        &self.login_url
    }

    fn at(&self, path: &str) -> String {
        format!("{}{path}", self.login_url)
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<TokenResponse, Error> {
        let r = self
            .http
            .post(self.at("/services/oauth2/token"))
            .form(form)
            .send()
            .await
            .map_err(Error::Http)?;
        tokens::json(r).await
    }

    /// Username-password flow (spec §3.4): `password` is the password followed by the user's
    /// security token, if they have one.
    pub async fn password(
        &self,
        app: &App,
        username: &str,
        password: &str,
    ) -> Result<TokenResponse, Error> {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ];
        app.form(&mut form);
        self.token(&form).await
    }

    /// Client credentials flow: the app's run-as user.
    pub async fn client_credentials(&self, app: &App) -> Result<TokenResponse, Error> {
        let mut form = vec![("grant_type", "client_credentials")];
        app.form(&mut form);
        self.token(&form).await
    }

    /// Refresh token flow.
    pub async fn refresh(&self, app: &App, refresh_token: &str) -> Result<TokenResponse, Error> {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        app.form(&mut form);
        self.token(&form).await
    }

    /// JWT bearer flow: signs an RS256 assertion for `username` with the PEM private key
    /// (PKCS#1 or PKCS#8) whose certificate the app holds. `aud` defaults to the login URL.
    pub async fn jwt_bearer(
        &self,
        client_id: &str,
        username: &str,
        private_key_pem: &[u8],
        audience: Option<&str>,
    ) -> Result<TokenResponse, Error> {
        let aud = audience.unwrap_or(&self.login_url);
        let signed = assertion(client_id, username, aud, private_key_pem, now_secs() + 180)?;
        self.token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &signed),
        ])
        .await
    }

    /// Web server flow, second half: redeems the code (with the PKCE verifier, if the
    /// authorize request had a challenge).
    pub async fn authorization_code(
        &self,
        app: &App,
        code: &str,
        redirect_uri: &str,
        code_verifier: Option<&str>,
    ) -> Result<TokenResponse, Error> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
        ];
        if let Some(v) = code_verifier {
            form.push(("code_verifier", v));
        }
        app.form(&mut form);
        self.token(&form).await
    }

    /// Device flow, first half (spec §3.8): the codes to show the user.
    pub async fn device_codes(&self, app: &App, scope: Option<&str>) -> Result<DeviceCodes, Error> {
        let mut form = vec![("response_type", "device_code")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        app.form(&mut form);
        let r = self
            .http
            .post(self.at("/services/oauth2/token"))
            .form(&form)
            .send()
            .await
            .map_err(Error::Http)?;
        tokens::json(r).await
    }

    /// Device flow, one poll. `Err(Error::OAuth)` with `authorization_pending` or `slow_down`
    /// means: wait and poll again (see [`Error::is_pending`]).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), idforce_client::Error> {
    /// use idforce_client::{App, LoginClient};
    ///
    /// let login = LoginClient::new("http://127.0.0.1:8080")?;
    /// let app = App::new("PlatformCLI");
    /// let codes = login.device_codes(&app, Some("api refresh_token")).await?;
    /// println!("Open {} and enter {}", codes.verification_uri, codes.user_code);
    /// let mut interval = codes.interval;
    /// let tokens = loop {
    ///     std::thread::sleep(std::time::Duration::from_secs(interval));
    ///     match login.device_poll(&app, &codes.device_code).await {
    ///         Ok(tokens) => break tokens,
    ///         Err(e) if e.code() == Some("slow_down") => interval += 5,
    ///         Err(e) if e.is_pending() => continue,
    ///         Err(e) => return Err(e),
    ///     }
    /// };
    /// # let _ = tokens; Ok(()) }
    /// ```
    pub async fn device_poll(&self, app: &App, device_code: &str) -> Result<TokenResponse, Error> {
        let mut form = vec![("grant_type", "device"), ("code", device_code)];
        app.form(&mut form);
        self.token(&form).await
    }

    /// RFC 7662 introspection, authenticated as `app`.
    pub async fn introspect(&self, app: &App, token: &str) -> Result<Value, Error> {
        let mut form = vec![("token", token)];
        app.form(&mut form);
        let r = self
            .http
            .post(self.at("/services/oauth2/introspect"))
            .form(&form)
            .send()
            .await
            .map_err(Error::Http)?;
        tokens::json(r).await
    }

    /// Revokes an access or refresh token (revoking a refresh token ends its sessions).
    pub async fn revoke(&self, token: &str) -> Result<(), Error> {
        let r = self
            .http
            .post(self.at("/services/oauth2/revoke"))
            .form(&[("token", token)])
            .send()
            .await
            .map_err(Error::Http)?;
        tokens::empty(r).await
    }

    /// OpenID Connect userinfo of the token's user.
    pub async fn userinfo(&self, access_token: &str) -> Result<Value, Error> {
        let r = self
            .http
            .get(self.at("/services/oauth2/userinfo"))
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(Error::Http)?;
        tokens::json(r).await
    }

    /// The identity URL (the token response's `id`).
    pub async fn identity(&self, id_url: &str, access_token: &str) -> Result<Value, Error> {
        let r = self
            .http
            .get(id_url)
            .bearer_auth(access_token)
            .send()
            .await
            .map_err(Error::Http)?;
        tokens::json(r).await
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
