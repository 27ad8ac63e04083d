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
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(clients_dir())
            .args([
                "jsforce_password.js",
                &url,
                INTEGRATION_ID,
                INTEGRATION_SECRET,
                ALICE,
                ALICE_PASSWORD,
            ])
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "jsforce failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
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
async fn authlib_and_pyjwt_jwt_bearer() {
    let ok = Command::new("python3")
        .args(["-c", "import authlib, jwt, requests, cryptography"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !require(
        ok,
        "Python authlib, pyjwt[crypto] and requests (pip install)",
    ) {
        return;
    }
    let s = TestServer::start().await;
    let url = s.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(clients_dir().join("authlib_jwt.py"))
            .args([
                &url,
                INTEGRATION_ID,
                ALICE,
                fixture("jwt.key").to_str().unwrap(),
            ])
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    assert_eq!(v["authlib_username"], ALICE);
    assert_eq!(v["pyjwt_token_type"], "Bearer");
    assert_eq!(v["replay"]["error"], "invalid_grant");
}

#[tokio::test]
async fn authlib_web_server_flow_with_pkce() {
    let ok = Command::new("python3")
        .args(["-c", "import authlib, requests"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !require(ok, "Python authlib and requests (pip install)") {
        return;
    }
    let s = TestServer::start().await;
    let url = s.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(clients_dir().join("authlib_code_flow.py"))
            .args([
                &url,
                SELF_SERVICE_ID,
                SELF_SERVICE_SECRET,
                SELF_SERVICE_CALLBACK,
                ALICE,
                ALICE_PASSWORD,
            ])
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "Authlib code flow failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    assert_eq!(v["state_matches"], true);
    assert_eq!(v["scope"], "api refresh_token");
    assert_eq!(v["refreshed_scope"], "api refresh_token");
    assert_eq!(v["username"], ALICE);
}

#[tokio::test]
async fn authlib_openid_connect_from_discovery() {
    let ok = Command::new("python3")
        .args(["-c", "import authlib.jose, requests"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !require(ok, "Python authlib and requests (pip install)") {
        return;
    }
    let config = CONFIG.replace(
        "scopes = [\"api\", \"refresh_token\"]\ncertificate = \"jwt.crt\"",
        "scopes = [\"api\", \"refresh_token\", \"openid\", \"profile\", \"email\"]\ncertificate = \"jwt.crt\"",
    );
    let s = TestServer::start_with(&config, |_| {}).await;
    let url = s.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(clients_dir().join("authlib_oidc.py"))
            .args([
                &url,
                SELF_SERVICE_ID,
                SELF_SERVICE_SECRET,
                SELF_SERVICE_CALLBACK,
                ALICE,
                ALICE_PASSWORD,
            ])
            .output()
            .expect("python runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "Authlib OIDC failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON from the script");
    assert_eq!(v["sub_matches"], true);
    assert_eq!(v["email"], ALICE);
    assert_eq!(v["name"], "Alice Example");
}
