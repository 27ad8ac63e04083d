//! `idforce login …` and the other client commands, as a user runs them: the real binary
//! against a real server, a token file of its own.

use std::path::Path;
use std::process::Output;

use serde_json::Value;
use tempfile::TempDir;

use crate::browser::{Browser, Page};
use crate::helpers::*;

/// Runs `idforce ARGS` with its own token file; (success, stdout, stderr).
async fn cli(tokens: &TempDir, args: &[&str]) -> (bool, String, String) {
    let file = tokens.path().join("tokens.json");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let out: Output = tokio::task::spawn_blocking(move || {
        idforce()
            .args(&args)
            .env("IDFORCE_TOKEN_FILE", file)
            .env_remove("IDFORCE_LOGIN_URL")
            .env_remove("IDFORCE_CLIENT_ID")
            .env_remove("IDFORCE_CLIENT_SECRET")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test]
async fn login_password_saves_a_profile_that_whoami_reads() {
    let s = TestServer::start().await;
    let tokens = TempDir::new().unwrap();
    let (ok, out, err) = cli(
        &tokens,
        &[
            "login",
            "password",
            "--login-url",
            &s.url,
            "--client-id",
            INTEGRATION_ID,
            "--client-secret",
            INTEGRATION_SECRET,
            "--username",
            ALICE,
            "--password",
            ALICE_PASSWORD,
            "--save",
            "alice",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let t = json(&out);
    assert!(t["access_token"].as_str().unwrap().starts_with(ORG_ID_15));
    assert_eq!(t["instance_url"], s.url.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(tokens.path().join("tokens.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is its owner's alone");
    }
    let (ok, out, err) = cli(&tokens, &["whoami", "--profile", "alice"]).await;
    assert!(ok, "{err}");
    let by_profile = json(&out);
    assert_eq!(by_profile["username"], ALICE);
    // With the token alone: the same answer, the identity URL's.
    let token = t["access_token"].as_str().unwrap();
    let (ok, out, err) = cli(
        &tokens,
        &["whoami", "--token", token, "--login-url", &s.url],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(json(&out), by_profile);
    let (ok, out, err) = cli(&tokens, &["userinfo", "--profile", "alice"]).await;
    assert!(ok, "{err}");
    assert_eq!(json(&out)["sub"], t["id"]);

    // Revoking the profile ends its session; whoami then says why, with no refresh token to
    // fall back on.
    let (ok, _, err) = cli(&tokens, &["revoke", "--profile", "alice"]).await;
    assert!(ok, "{err}");
    let (ok, _, err) = cli(&tokens, &["whoami", "--profile", "alice"]).await;
    assert!(!ok);
    assert!(err.contains("Bad_OAuth_Token"), "{err}");
    assert!(err.contains("log in again"), "{err}");
    let (ok, _, err) = cli(&tokens, &["whoami", "--profile", "nobody"]).await;
    assert!(!ok);
    assert!(err.contains("no saved login named \"nobody\""), "{err}");
}

#[tokio::test]
async fn login_errors_explain_themselves() {
    let s = TestServer::start().await;
    let tokens = TempDir::new().unwrap();
    let (ok, out, err) = cli(
        &tokens,
        &[
            "login",
            "password",
            "--login-url",
            &s.url,
            "--client-id",
            INTEGRATION_ID,
            "--client-secret",
            INTEGRATION_SECRET,
            "--username",
            BOB,
            "--password",
            BOB_PASSWORD,
        ],
    )
    .await;
    assert!(!ok && out.is_empty(), "{out}");
    assert!(
        err.contains("invalid_grant: authentication failure"),
        "{err}"
    );
    assert!(
        err.contains("hint: ") && err.contains("security token"),
        "{err}"
    );

    // A JWT whose audience is another host.
    let key = fixture("jwt.key");
    let (ok, _, err) = cli(
        &tokens,
        &[
            "login",
            "jwt",
            "--login-url",
            &s.url,
            "--client-id",
            INTEGRATION_ID,
            "--username",
            "integration@acme.test",
            "--key",
            key.to_str().unwrap(),
            "--audience",
            "https://elsewhere.example",
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("invalid_grant: audience is invalid"), "{err}");
    assert!(err.contains("test.salesforce.com"), "{err}");

    // The instance URL of some other server: not a login host.
    let (ok, _, err) = cli(
        &tokens,
        &[
            "login",
            "client-credentials",
            "--login-url",
            &s.at("/services/data"),
            "--client-id",
            INTEGRATION_ID,
            "--client-secret",
            INTEGRATION_SECRET,
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("hint: "), "{err}");

    // The certificate given where the private key goes; the control, the key, worked above.
    let jwt = |key: &'static str, username: &'static str| {
        let key = fixture(key).to_str().unwrap().to_owned();
        let url = s.url.clone();
        let tokens = &tokens;
        async move {
            let args = [
                "login",
                "jwt",
                "--login-url",
                &url,
                "--client-id",
                INTEGRATION_ID,
                "--username",
                username,
                "--key",
                &key,
            ];
            cli(tokens, &args).await
        }
    };
    let (ok, _, err) = jwt("jwt.crt", "integration@acme.test").await;
    assert!(!ok);
    assert!(err.contains("--key ") && err.contains("jwt.crt"), "{err}");
    assert!(
        err.contains("holds a certificate, not a private key"),
        "{err}"
    );
    let (ok, _, err) = jwt("jwt.key", "integration@acme.test").await;
    assert!(ok, "{err}");

    // A user that does not exist: Salesforce's answer, and a hint that starts with the username.
    let (ok, _, err) = jwt("jwt.key", "nobody@acme.test").await;
    assert!(!ok);
    assert!(
        err.contains("invalid_grant: user hasn't approved this consumer"),
        "{err}"
    );
    assert!(err.contains("hint: Check the username first"), "{err}");

    // A login URL without a scheme: said before any request, not reqwest's "builder error".
    for (url, why) in [
        ("127.0.0.1:18301", "no scheme"),
        ("localhost:18301", "no scheme"),
        ("ftp://127.0.0.1:18301", "not an http or https address"),
    ] {
        let (ok, _, err) = cli(
            &tokens,
            &[
                "login",
                "client-credentials",
                "--login-url",
                url,
                "--client-id",
                INTEGRATION_ID,
                "--client-secret",
                INTEGRATION_SECRET,
            ],
        )
        .await;
        assert!(!ok);
        assert!(
            err.contains(&format!("login URL \"{url}\": {why}")),
            "{err}"
        );
        assert!(err.contains("expected https://host[:port]"), "{err}");
        assert!(!err.contains("builder error"), "{err}");
    }
}

#[tokio::test]
async fn login_jwt_client_credentials_env_format_introspect_and_revoke() {
    let s = TestServer::start().await;
    let tokens = TempDir::new().unwrap();
    let key = fixture("jwt.key");
    // aud defaults to the login URL.
    let (ok, out, err) = cli(
        &tokens,
        &[
            "login",
            "jwt",
            "--login-url",
            &s.url,
            "--client-id",
            INTEGRATION_ID,
            "--username",
            "integration@acme.test",
            "--key",
            key.to_str().unwrap(),
        ],
    )
    .await;
    assert!(ok, "{err}");
    let jwt_token = json(&out)["access_token"].as_str().unwrap().to_owned();

    let (ok, out, err) = cli(
        &tokens,
        &[
            "login",
            "client-credentials",
            "--login-url",
            &s.url,
            "--client-id",
            INTEGRATION_ID,
            "--client-secret",
            INTEGRATION_SECRET,
            "--format",
            "env",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.starts_with("export SF_ACCESS_TOKEN='00D000000000001!A"),
        "{out}"
    );
    assert!(
        out.contains(&format!("export SF_INSTANCE_URL='{}'", s.url)),
        "{out}"
    );

    let (ok, out, err) = cli(
        &tokens,
        &[
            "introspect",
            "--login-url",
            &s.url,
            "--client-id",
            AUDITOR_ID,
            "--client-secret",
            AUDITOR_SECRET,
            &jwt_token,
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(json(&out)["active"], true);
    let (ok, _, err) = cli(
        &tokens,
        &["revoke", "--login-url", &s.url, "--token", &jwt_token],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, _) = cli(
        &tokens,
        &[
            "introspect",
            "--login-url",
            &s.url,
            "--client-id",
            AUDITOR_ID,
            "--client-secret",
            AUDITOR_SECRET,
            &jwt_token,
        ],
    )
    .await;
    assert!(ok);
    assert_eq!(json(&out)["active"], false);
}

#[tokio::test]
async fn login_device_waits_for_the_user_and_whoami_refreshes_an_ended_session() {
    let s = TestServer::start().await;
    let tokens = TempDir::new().unwrap();
    let device = spawn_client(
        &[
            "login",
            "device",
            "--login-url",
            &s.url,
            "--client-id",
            SELF_SERVICE_ID,
            "--client-secret",
            SELF_SERVICE_SECRET,
            "--save",
            "dev",
        ],
        &tokens.path().join("tokens.json"),
    )
    .await;
    let first = device.first_line.clone();
    // "To log in, open URL and enter the code XXXX-XXXX"
    assert!(first.contains(&s.at("/setup/connect")), "{first}");
    let code = first.trim().rsplit(' ').next().unwrap().to_owned();

    let mut b = Browser::new(&s);
    let page = b.get("/setup/connect").await;
    let after = b.log_in(&page, BOB, BOB_PASSWORD).await;
    let page = b.get(after.location.as_deref().unwrap()).await;
    let mut form = page.hidden();
    form.push(("user_code".into(), code));
    let consent: Page = b.post("/setup/connect", &form).await;
    let mut form = consent.hidden();
    form.push(("decision".into(), "allow".into()));
    let done = b.post("/setup/connect", &form).await;
    assert!(done.body.contains("device-connected"), "{}", done.body);

    let (ok, out, _) = device.finish().await;
    assert!(ok);
    let t = json(&out);
    assert!(t["refresh_token"].as_str().is_some(), "{t}");

    // The session ends (revoked on the server); whoami refreshes and carries on.
    let r = s
        .post_form(
            "/services/oauth2/revoke",
            &[("token", t["access_token"].as_str().unwrap())],
        )
        .await;
    assert_eq!(r.status(), 200);
    let (ok, out, err) = cli(&tokens, &["whoami", "--profile", "dev"]).await;
    assert!(ok, "{err}");
    assert_eq!(json(&out)["username"], BOB);
    let saved: Value =
        serde_json::from_slice(&std::fs::read(tokens.path().join("tokens.json")).unwrap()).unwrap();
    assert_ne!(saved["dev"]["tokens"]["access_token"], t["access_token"]);
    assert_eq!(saved["dev"]["tokens"]["refresh_token"], t["refresh_token"]);

    // `login refresh` with the refresh token, as shell exports.
    let (ok, out, err) = cli(
        &tokens,
        &[
            "login",
            "refresh",
            "--login-url",
            &s.url,
            "--client-id",
            SELF_SERVICE_ID,
            "--client-secret",
            SELF_SERVICE_SECRET,
            "--refresh-token",
            t["refresh_token"].as_str().unwrap(),
            "--format",
            "env",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("export SF_ACCESS_TOKEN='00D000000000001!A"),
        "{out}"
    );
}

/// Starts `idforce login web` on a free localhost port; returns it, the authorize URL it
/// printed, and the callback.
async fn start_login_web(s: &TestServer) -> (RunningClient, String, String) {
    let callback = format!("http://localhost:{}/OauthRedirect", free_port());
    let web = spawn_client(
        &[
            "login",
            "web",
            "--login-url",
            &s.url,
            "--client-id",
            SELF_SERVICE_ID,
            "--redirect-uri",
            &callback,
            "--no-browser",
        ],
        Path::new("/nonexistent/tokens.json"),
    )
    .await;
    let url = web
        .first_line
        .trim()
        .strip_prefix("To log in, open ")
        .unwrap()
        .to_owned();
    (web, url, callback)
}

#[tokio::test]
async fn login_web_checks_state_and_reports_a_denial() {
    let s = TestServer::start().await;
    // A callback that is not this login's (another tab, a forged link) ends it unredeemed.
    let (web, _, callback) = start_login_web(&s).await;
    let r = client()
        .get(format!("{callback}?code=aPrxforged&state=not-ours"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (ok, _, err) = web.finish().await;
    assert!(!ok);
    assert!(err.contains("state does not match"), "{err}");

    // The user denies: the error comes back on the callback, with this login's state.
    let (web, url, callback) = start_login_web(&s).await;
    let state = form_urlencoded::parse(url.split_once('?').unwrap().1.as_bytes())
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    // Something else asking first (a favicon) is not the callback.
    let r = client()
        .get(callback.replace("/OauthRedirect", "/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client()
        .get(format!(
            "{callback}?error=access_denied&error_description=end-user+denied+authorization&state={state}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (ok, _, err) = web.finish().await;
    assert!(!ok);
    assert!(
        err.contains("access_denied: end-user denied authorization"),
        "{err}"
    );
}
