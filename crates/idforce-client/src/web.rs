//! Web server flow from a command line (spec §3.2, §12.15): PKCE and `state`, a one-shot
//! listener on the redirect URI (Salesforce tools use `http://localhost:1717/OauthRedirect`),
//! and the code exchange.

use aws_lc_rs::rand::SecureRandom;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{App, Error, LoginClient, TokenResponse};

/// The redirect URI the Salesforce CLI and its tools use.
pub const DEFAULT_REDIRECT_URI: &str = "http://localhost:1717/OauthRedirect";

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The OS random source failing leaves nothing sensible to do but stop.
    let _ = aws_lc_rs::rand::SystemRandom::new().fill(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A PKCE pair (RFC 7636, S256).
#[derive(Debug, Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

impl Pkce {
    pub fn new() -> Pkce {
        let verifier = random_token();
        let challenge = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            verifier.as_bytes(),
        ));
        Pkce {
            verifier,
            challenge,
        }
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Pkce::new()
    }
}

impl LoginClient {
    /// The authorize URL of a web server flow with PKCE.
    pub fn authorize_url(
        &self,
        app: &App,
        redirect_uri: &str,
        scope: Option<&str>,
        state: &str,
        pkce: &Pkce,
    ) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("response_type", "code")
            .append_pair("client_id", &app.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("state", state)
            .append_pair("code_challenge", &pkce.challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(s) = scope {
            q.append_pair("scope", s);
        }
        format!(
            "{}/services/oauth2/authorize?{}",
            self.login_url(),
            q.finish()
        )
    }

    /// The whole web server flow: listens on `redirect_uri` (an `http://localhost:PORT/…` or
    /// `http://127.0.0.1:PORT/…` address), hands the authorize URL to `open` (print it, launch
    /// a browser), waits for the browser to come back, checks `state`, and redeems the code
    /// with the PKCE verifier.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), idforce_client::Error> {
    /// use idforce_client::{App, DEFAULT_REDIRECT_URI, LoginClient};
    ///
    /// let login = LoginClient::new("https://login.salesforce.com")?;
    /// let tokens = login
    ///     .web_server_flow(&App::new("PlatformCLI"), DEFAULT_REDIRECT_URI, None, |url| {
    ///         eprintln!("Open {url}")
    ///     })
    ///     .await?;
    /// println!("{}", tokens.instance_url);
    /// # Ok(()) }
    /// ```
    pub async fn web_server_flow(
        &self,
        app: &App,
        redirect_uri: &str,
        scope: Option<&str>,
        open: impl FnOnce(&str),
    ) -> Result<TokenResponse, Error> {
        let url = reqwest::Url::parse(redirect_uri)
            .map_err(|e| Error::Callback(format!("{redirect_uri}: {e}")))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| Error::Callback(format!("{redirect_uri}: no port")))?;
        let host = url.host_str().unwrap_or_default();
        if url.scheme() != "http" || !matches!(host, "localhost" | "127.0.0.1" | "[::1]") {
            return Err(Error::Callback(format!(
                "{redirect_uri}: the callback must be http://localhost:PORT/… to listen on it"
            )));
        }
        // `localhost` may resolve to either address family in the browser: listen on both.
        let v4 = TcpListener::bind(("127.0.0.1", port)).await;
        let v6 = TcpListener::bind(("::1", port)).await;
        if v4.is_err() && v6.is_err() {
            return Err(Error::Callback(format!(
                "cannot listen on port {port}: {}",
                v4.err().map(|e| e.to_string()).unwrap_or_default()
            )));
        }
        let state = random_token();
        let pkce = Pkce::new();
        open(&self.authorize_url(app, redirect_uri, scope, &state, &pkce));
        let params = loop {
            let accepted = match (&v4, &v6) {
                (Ok(a), Ok(b)) => tokio::select! { r = a.accept() => r, r = b.accept() => r },
                (Ok(a), Err(_)) | (Err(_), Ok(a)) => a.accept().await,
                (Err(_), Err(_)) => return Err(Error::Callback("no listener".into())),
            };
            let Ok((mut socket, _)) = accepted else {
                continue;
            };
            let mut buf = vec![0u8; 16 * 1024];
            let n = socket.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let target = head.split_whitespace().nth(1).unwrap_or("");
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            if path != url.path() {
                // The favicon, or anything else: not the callback.
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect();
            let page = "<!doctype html><title>idforce login</title><p>You can close this window and return to the command line.</p>";
            let _ = socket
                .write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                        page.len()
                    )
                    .as_bytes(),
                )
                .await;
            break params;
        };
        let get = |k: &str| {
            params
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
        };
        if get("state") != Some(state.as_str()) {
            return Err(Error::Callback(
                "the callback's state does not match this login: ignored".into(),
            ));
        }
        if let Some(error) = get("error") {
            return Err(Error::OAuth {
                status: 302,
                error: error.to_owned(),
                description: get("error_description").unwrap_or_default().to_owned(),
            });
        }
        let code = get("code").ok_or_else(|| Error::Callback("the callback has no code".into()))?;
        self.authorization_code(app, code, redirect_uri, Some(&pkce.verifier))
            .await
    }
}
