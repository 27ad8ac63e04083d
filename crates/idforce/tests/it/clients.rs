//! Real third-party clients, installed by `.ci/run` (npm, pip): jsforce's password grant and
//! Authlib / PyJWT JWT bearer. Without them the test says so, and fails under `CI=true`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::helpers::*;

fn clients_dir() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// Whether a prerequisite is present; if not, explain, and fail under CI.
fn require(present: bool, what: &str) -> bool {
    if !present {
        let msg = format!(
            "SKIPPED: {what} is not installed; run `bash .ci/run` (or see README) to install it"
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("{msg}");
    }
    present
}

/// Whether Python can import these modules.
fn python_has(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs a client script off the async runtime (the server under test shares it) and returns
/// the JSON it prints; a failing script fails the test with its stderr.
async fn run_client(program: &str, args: Vec<String>) -> Value {
    let program = program.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&program)
            .current_dir(clients_dir())
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("{program} does not run: {e}"))
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).expect("JSON from the script")
}

#[tokio::test]
async fn jsforce_password_grant() {
    if !require(
        clients_dir().join("node_modules/jsforce").exists(),
        "jsforce (npm install in crates/idforce/tests/clients)",
    ) {
        return;
    }
    let s = TestServer::start().await;
    let url = s.url.clone();
    let v = run_client(
        "node",
        vec![
            "jsforce_password.js".to_string(),
            url.clone(),
            INTEGRATION_ID.to_string(),
            INTEGRATION_SECRET.to_string(),
            ALICE.to_string(),
            ALICE_PASSWORD.to_string(),
        ],
    )
    .await;
    assert_eq!(v["organizationId"], "00D000000000001EAA");
    assert_eq!(v["instanceUrl"], s.url.as_str());
    assert_eq!(v["identityUserId"], v["userId"]);
    assert_eq!(
        v["revokedWorks"], false,
        "a revoked token must stop working"
    );
    assert!(
        v["badLogin"]
            .as_str()
            .unwrap()
            .contains("authentication failure"),
        "{v}"
    );
}

#[tokio::test]
async fn jsforce_soap_login() {
    if !require(
        clients_dir().join("node_modules/jsforce").exists(),
        "jsforce (npm install in crates/idforce/tests/clients)",
    ) {
        return;
    }
    let s = TestServer::start().await;
    let v = run_client(
        "node",
        vec![
            "jsforce_soap.js".to_string(),
            s.url.clone(),
            BOB.to_string(),
            format!("{BOB_PASSWORD}{BOB_TOKEN}"),
        ],
    )
    .await;
    assert_eq!(v["organizationId"], "00D000000000001EAA", "{v}");
    assert_eq!(v["instanceUrl"], s.url.as_str());
    assert_eq!(v["identityUsername"], BOB);
    assert!(
        v["sessionId"].as_str().unwrap().starts_with(ORG_ID_15),
        "{v}"
    );
    assert_eq!(
        v["badLogin"],
        "Error: INVALID_LOGIN: Invalid username, password, security token; or user locked out.",
        "{v}"
    );
}

#[tokio::test]
async fn simple_salesforce_soap_login_with_security_token() {
    if !require(
        python_has("simple_salesforce"),
        "simple-salesforce (pip install simple-salesforce)",
    ) {
        return;
    }
    let s = TestServer::start().await;
    let v = run_client(
        "python3",
        vec![
            "simple_salesforce_soap.py".to_string(),
            s.url.clone(),
            BOB.to_string(),
            BOB_PASSWORD.to_string(),
            BOB_TOKEN.to_string(),
        ],
    )
    .await;
    assert!(
        v["sessionId"].as_str().unwrap().starts_with(ORG_ID_15),
        "{v}"
    );
    assert_eq!(v["instance"], s.url.trim_start_matches("http://"), "{v}");
    assert_eq!(v["userinfoStatus"], 200, "{v}");
    assert_eq!(v["badLogin"]["code"], "INVALID_LOGIN", "{v}");
    assert_eq!(
        v["badLogin"]["message"],
        "Authentication failed (code: INVALID_LOGIN): Invalid username, password, security token; or user locked out.",
        "{v}"
    );
}

#[tokio::test]
async fn authlib_and_pyjwt_jwt_bearer() {
    let ok = python_has("authlib, jwt, requests, cryptography");
    if !require(
        ok,
        "Python authlib, pyjwt[crypto] and requests (pip install)",
    ) {
        return;
    }
    let s = TestServer::start().await;
    let url = s.url.clone();
    let v = run_client(
        "python3",
        vec![
            "authlib_jwt.py".to_string(),
            url.clone(),
            INTEGRATION_ID.to_string(),
            ALICE.to_string(),
            fixture("jwt.key").to_str().unwrap().to_string(),
        ],
    )
    .await;
    assert_eq!(v["authlib_username"], ALICE);
    assert_eq!(v["pyjwt_token_type"], "Bearer");
    assert_eq!(v["replay"]["error"], "invalid_grant");
}

#[tokio::test]
async fn authlib_private_key_jwt_client_authentication() {
    let ok = python_has("authlib, requests, cryptography");
    if !require(
        ok,
        "Python authlib, cryptography and requests (pip install)",
    ) {
        return;
    }
    let s = TestServer::start().await;
    let v = run_client(
        "python3",
        vec![
            "authlib_private_key_jwt.py".to_string(),
            s.url.clone(),
            INTEGRATION_ID.to_string(),
            fixture("jwt.key").to_str().unwrap().to_string(),
        ],
    )
    .await;
    assert_eq!(v["sent_assertion"], true, "{v}");
    assert_eq!(v["token_type"], "Bearer", "{v}");
    assert_eq!(v["has_access_token"], true, "{v}");
    // The same assertion again: its jti is spent.
    assert_eq!(v["replay_status"], 400, "{v}");
    assert_eq!(v["replay"]["error"], "invalid_client", "{v}");
    assert_eq!(
        v["replay"]["error_description"],
        "invalid client credentials"
    );
}

#[tokio::test]
async fn authlib_web_server_flow_with_pkce() {
    let ok = python_has("authlib, requests");
    if !require(ok, "Python authlib and requests (pip install)") {
        return;
    }
    let s = TestServer::start().await;
    let url = s.url.clone();
    let v = run_client(
        "python3",
        vec![
            "authlib_code_flow.py".to_string(),
            url.clone(),
            SELF_SERVICE_ID.to_string(),
            SELF_SERVICE_SECRET.to_string(),
            SELF_SERVICE_CALLBACK.to_string(),
            ALICE.to_string(),
            ALICE_PASSWORD.to_string(),
        ],
    )
    .await;
    assert_eq!(v["state_matches"], true);
    assert_eq!(v["scope"], "api refresh_token");
    assert_eq!(v["refreshed_scope"], "api refresh_token");
    assert_eq!(v["username"], ALICE);
}

#[tokio::test]
async fn authlib_openid_connect_from_discovery() {
    let ok = python_has("authlib.jose, requests");
    if !require(ok, "Python authlib and requests (pip install)") {
        return;
    }
    let config = CONFIG.replace(
        "scopes = [\"api\", \"refresh_token\"]\ncertificate = \"jwt.crt\"",
        "scopes = [\"api\", \"refresh_token\", \"openid\", \"profile\", \"email\"]\ncertificate = \"jwt.crt\"",
    );
    let s = TestServer::start_with(&config, |_| {}).await;
    let url = s.url.clone();
    let v = run_client(
        "python3",
        vec![
            "authlib_oidc.py".to_string(),
            url.clone(),
            SELF_SERVICE_ID.to_string(),
            SELF_SERVICE_SECRET.to_string(),
            SELF_SERVICE_CALLBACK.to_string(),
            ALICE.to_string(),
            ALICE_PASSWORD.to_string(),
        ],
    )
    .await;
    assert_eq!(v["sub_matches"], true);
    assert_eq!(v["email"], ALICE);
    assert_eq!(v["name"], "Alice Example");
}
