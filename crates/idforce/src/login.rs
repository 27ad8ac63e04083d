//! The client commands (`idforce login …`, `introspect`, `revoke`, `userinfo`, `whoami`):
//! `idforce_client` against any Salesforce-compatible login server, with saved profiles in a
//! per-user token file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use idforce_client::{App, Error, LoginClient, TokenResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cli::{AppArgs, Command, LoginCommand, OutputArgs, TokenArgs};

/// A saved login: where it came from and what it got.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Profile {
    login_url: String,
    client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    tokens: TokenResponse,
}

/// `IDFORCE_TOKEN_FILE`, else `$XDG_CONFIG_HOME/idforce/tokens.json`, else
/// `~/.config/idforce/tokens.json`.
fn token_file() -> Result<PathBuf, String> {
    if let Some(f) = std::env::var_os("IDFORCE_TOKEN_FILE") {
        return Ok(PathBuf::from(f));
    }
    let config = match std::env::var_os("XDG_CONFIG_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from(std::env::var_os("HOME").ok_or("HOME is not set")?).join(".config"),
    };
    Ok(config.join("idforce").join("tokens.json"))
}

fn load_profiles() -> Result<BTreeMap<String, Profile>, String> {
    let path = token_file()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a token file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes the whole file anew, readable by its owner only, replacing the old one at once.
fn save_profile(name: &str, profile: Profile) -> Result<(), String> {
    let path = token_file()?;
    let mut all = load_profiles()?;
    all.insert(name.to_owned(), profile);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(&all).map_err(|e| e.to_string())?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
}

fn profile(name: &str) -> Result<Profile, String> {
    load_profiles()?
        .remove(name)
        .ok_or_else(|| format!("no saved login named {name:?} (idforce login … --save {name})"))
}

/// Salesforce's error and description, then a line of help.
fn explain(e: &Error) -> String {
    match e.hint() {
        Some(hint) => format!("{e}\nhint: {hint}"),
        None => e.to_string(),
    }
}

fn app_of(args: &AppArgs) -> App {
    App {
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn print_tokens(t: &TokenResponse, format: &str) -> Result<(), String> {
    if format == "env" {
        let mut out = vec![
            ("SF_ACCESS_TOKEN", t.access_token.as_str()),
            ("SF_INSTANCE_URL", t.instance_url.as_str()),
            ("SF_IDENTITY_URL", t.id.as_str()),
        ];
        if let Some(r) = &t.refresh_token {
            out.push(("SF_REFRESH_TOKEN", r));
        }
        for (k, v) in out {
            println!("export {k}={}", shell_quote(v));
        }
        return Ok(());
    }
    print_json(&serde_json::to_value(t).map_err(|e| e.to_string())?)
}

fn print_json(v: &Value) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Runs a client command; `None` if `command` is not one.
pub async fn run(command: &Command) -> Option<Result<(), String>> {
    Some(match command {
        Command::Login(login) => run_login(login).await,
        Command::Introspect { app, token } => {
            async {
                let client = LoginClient::new(&app.login_url).map_err(|e| explain(&e))?;
                let answer = client
                    .introspect(&app_of(app), token)
                    .await
                    .map_err(|e| explain(&e))?;
                print_json(&answer)
            }
            .await
        }
        Command::Revoke { target } => {
            async {
                let t = target_of(target).await?;
                t.client.revoke(&t.token).await.map_err(|e| explain(&e))?;
                // A saved refresh token goes too: it would bring the session back.
                if let Some(r) = t.saved.and_then(|p| p.tokens.refresh_token) {
                    t.client.revoke(&r).await.map_err(|e| explain(&e))?;
                }
                eprintln!("revoked");
                Ok(())
            }
            .await
        }
        Command::Userinfo { target } => {
            async {
                let answer = with_session(target, |client, token, _| async move {
                    client.userinfo(&token).await
                })
                .await?;
                print_json(&answer)
            }
            .await
        }
        Command::Whoami { target } => {
            async {
                // Always the identity URL's answer: with only a token, its URL is the `sub`
                // of the token's userinfo (as on Salesforce).
                let answer = with_session(target, |client, token, id| async move {
                    let id = match id {
                        Some(id) => id,
                        None => {
                            let info = client.userinfo(&token).await?;
                            match info.get("sub").and_then(Value::as_str) {
                                Some(sub) => sub.to_owned(),
                                None => return Ok(info),
                            }
                        }
                    };
                    client.identity(&id, &token).await
                })
                .await?;
                print_json(&answer)
            }
            .await
        }
        _ => return None,
    })
}

/// What a command acts on: the login server, the access token, the identity URL when known,
/// and the saved profile it came from.
struct Target {
    client: LoginClient,
    token: String,
    id: Option<String>,
    saved: Option<Profile>,
}

async fn target_of(target: &TokenArgs) -> Result<Target, String> {
    match (&target.profile, &target.token) {
        (Some(name), _) => {
            let p = profile(name)?;
            Ok(Target {
                client: LoginClient::new(&p.login_url).map_err(|e| explain(&e))?,
                token: p.tokens.access_token.clone(),
                id: Some(p.tokens.id.clone()),
                saved: Some(p),
            })
        }
        (None, Some(token)) => Ok(Target {
            client: LoginClient::new(&target.login_url).map_err(|e| explain(&e))?,
            token: token.clone(),
            id: None,
            saved: None,
        }),
        (None, None) => Err("give --profile NAME or --token TOKEN".into()),
    }
}

/// Runs `call` with the target's session; for a saved profile whose session has ended, once
/// more after refreshing it (and saving the new tokens).
async fn with_session<F, Fut>(target: &TokenArgs, call: F) -> Result<Value, String>
where
    F: Fn(LoginClient, String, Option<String>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, Error>>,
{
    let Target {
        client,
        token,
        id,
        saved,
    } = target_of(target).await?;
    let first = call(client.clone(), token, id).await;
    let ended = matches!(
        &first,
        Err(Error::OAuth {
            status: 401 | 403,
            ..
        })
    );
    let (Some(name), Some(mut p), true) = (&target.profile, saved, ended) else {
        return first.map_err(|e| explain(&e));
    };
    let Some(refresh_token) = p.tokens.refresh_token.clone() else {
        return first.map_err(|e| {
            format!(
                "{}\nhint: the saved session has ended and has no refresh token: log in again",
                explain(&e)
            )
        });
    };
    let app = App {
        client_id: p.client_id.clone(),
        client_secret: p.client_secret.clone(),
    };
    let fresh = client
        .refresh(&app, &refresh_token)
        .await
        .map_err(|e| explain(&e))?;
    p.tokens = TokenResponse {
        // A refresh answer has no refresh token unless the server rotated it.
        refresh_token: fresh.refresh_token.clone().or(Some(refresh_token)),
        ..fresh
    };
    let (token, id) = (p.tokens.access_token.clone(), p.tokens.id.clone());
    save_profile(name, p)?;
    call(client, token, Some(id)).await.map_err(|e| explain(&e))
}

async fn run_login(login: &LoginCommand) -> Result<(), String> {
    let (app_args, output) = match login {
        LoginCommand::Password { app, output, .. }
        | LoginCommand::Jwt { app, output, .. }
        | LoginCommand::Refresh { app, output, .. }
        | LoginCommand::ClientCredentials { app, output }
        | LoginCommand::Web { app, output, .. }
        | LoginCommand::Device { app, output, .. } => (app, output),
    };
    let client = LoginClient::new(&app_args.login_url).map_err(|e| explain(&e))?;
    let app = app_of(app_args);
    let tokens = match login {
        LoginCommand::Password {
            username, password, ..
        } => client.password(&app, username, password).await,
        LoginCommand::Jwt {
            username,
            key,
            audience,
            ..
        } => {
            let pem = std::fs::read(key).map_err(|e| format!("--key {}: {e}", key.display()))?;
            match client
                .jwt_bearer(&app.client_id, username, &pem, audience.as_deref())
                .await
            {
                Err(Error::Key(why)) => return Err(format!("--key {}: {why}", key.display())),
                other => other,
            }
        }
        LoginCommand::Refresh { refresh_token, .. } => client.refresh(&app, refresh_token).await,
        LoginCommand::ClientCredentials { .. } => client.client_credentials(&app).await,
        LoginCommand::Device { scope, .. } => device(&client, &app, scope.as_deref()).await,
        LoginCommand::Web {
            redirect_uri,
            scope,
            no_browser,
            ..
        } => {
            client
                .web_server_flow(&app, redirect_uri, scope.as_deref(), |url| {
                    eprintln!("To log in, open {url}");
                    if !no_browser {
                        open_browser(url);
                    }
                })
                .await
        }
    }
    .map_err(|e| explain(&e))?;
    finish(&client, app_args, output, tokens)
}

/// Best effort: the desktop's URL opener, if there is one; the URL is printed either way.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Prints the user code, then polls every `interval` seconds (5 more after each `slow_down`).
async fn device(
    client: &LoginClient,
    app: &App,
    scope: Option<&str>,
) -> Result<TokenResponse, Error> {
    let codes = client.device_codes(app, scope).await?;
    eprintln!(
        "To log in, open {} and enter the code {}",
        codes.verification_uri, codes.user_code
    );
    let mut interval = codes.interval.max(1);
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
        match client.device_poll(app, &codes.device_code).await {
            Ok(tokens) => return Ok(tokens),
            Err(e) if e.code() == Some("slow_down") => interval += 5,
            Err(e) if e.is_pending() => {}
            Err(e) => return Err(e),
        }
    }
}

fn finish(
    client: &LoginClient,
    app: &AppArgs,
    output: &OutputArgs,
    tokens: TokenResponse,
) -> Result<(), String> {
    if let Some(name) = &output.save {
        save_profile(
            name,
            Profile {
                login_url: client.login_url().to_owned(),
                client_id: app.client_id.clone(),
                client_secret: app.client_secret.clone(),
                tokens: tokens.clone(),
            },
        )?;
    }
    print_tokens(&tokens, &output.format)
}
