//! Login History over HTTP: every entry point records its logins (the client's address as a
//! trusted proxy forwards it, its browser and platform, the real reason of a refusal), and
//! `idforce login-history` lists, filters and exports them.

use serde_json::Value;

use crate::browser::{Browser, authorize_url};
use crate::helpers::*;

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn proxied_config() -> String {
    CONFIG.replacen(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n",
        1,
    )
}

/// A password grant sent through a proxy that names `client` as its client.
async fn password_via(s: &TestServer, client: &str, username: &str, password: &str) -> u16 {
    s.http
        .post(s.at("/services/oauth2/token"))
        .header("X-Forwarded-For", client)
        .header("User-Agent", CHROME)
        .form(&[
            ("grant_type", "password"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn rows(db: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["login-history"];
    all.extend_from_slice(args);
    admin(db, &all).as_array().unwrap().clone()
}

fn field<'a>(row: &'a Value, name: &str) -> &'a str {
    row[name].as_str().unwrap_or("")
}

#[tokio::test]
async fn every_entry_point_records_its_logins_and_the_cli_lists_them() {
    let s = TestServer::start_with(&proxied_config(), |_| {}).await;
    let db = database_url(s.dir.path());
    assert!(rows(&db, &[]).is_empty());

    // The password grant, through the proxy: a success and a wrong password.
    assert_eq!(
        password_via(&s, "198.51.100.7", ALICE, ALICE_PASSWORD).await,
        200
    );
    let bob_without_token = password_via(&s, "198.51.100.8", BOB, "wrong-password").await;
    assert_eq!(bob_without_token, 400);
    // An unknown user leaves no row (there is nobody to record it against).
    assert_eq!(
        password_via(&s, "198.51.100.9", "nobody@acme.test", "x").await,
        400
    );
    // Client credentials, as the run-as user.
    let (st, body) = s
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
        ])
        .await;
    assert_eq!(st, 200, "{body}");
    // SOAP login with a wrong password.
    let soap = s
        .http
        .post(s.at("/services/Soap/u/62.0"))
        .header("Content-Type", "text/xml")
        .header("SOAPAction", "login")
        .body(format!(
            "<?xml version=\"1.0\"?><env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\">\
             <env:Body><n1:login xmlns:n1=\"urn:partner.soap.sforce.com\"><n1:username>{ALICE}</n1:username>\
             <n1:password>nope</n1:password></n1:login></env:Body></env:Envelope>"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(soap.status().as_u16(), 500);
    // The login page, then the web server flow's code exchange.
    let mut browser = Browser::new(&s);
    let url = authorize_url(
        INTEGRATION_ID,
        "https://login.salesforce.com/oauth2/callback",
        &[],
    );
    let code = browser.approved_code(&url, ALICE, ALICE_PASSWORD).await;
    let (st, body) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            (
                "redirect_uri",
                "https://login.salesforce.com/oauth2/callback",
            ),
        ])
        .await;
    assert_eq!(st, 200, "{body}");

    let all = rows(&db, &[]);
    let summary: Vec<(&str, &str, &str, &str)> = all
        .iter()
        .map(|r| {
            (
                field(r, "username"),
                field(r, "login_type"),
                field(r, "login_subtype"),
                field(r, "status"),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (ALICE, "Remote Access 2.0", "OauthWebServer", "Success"),
            (ALICE, "Application", "UsernamePasswordUiLogin", "Success"),
            (ALICE, "Other Apex API", "SoapApiLogin", "Invalid Password"),
            (
                "integration@acme.test",
                "Remote Access 2.0",
                "OauthClientCredentials",
                "Success"
            ),
            (
                BOB,
                "Remote Access 2.0",
                "OauthUsernamePassword",
                "Invalid Password"
            ),
            (
                ALICE,
                "Remote Access 2.0",
                "OauthUsernamePassword",
                "Success"
            ),
        ],
        "newest first: {all:#?}"
    );
    let first_login = all.last().unwrap();
    assert_eq!(
        field(first_login, "source_ip"),
        "198.51.100.7",
        "the proxy's client"
    );
    assert_eq!(field(first_login, "browser"), "Chrome 131");
    assert_eq!(field(first_login, "platform"), "Windows 10");
    assert_eq!(field(first_login, "application"), "Integration");
    assert_eq!(field(first_login, "login_url"), "127.0.0.1");
    assert_eq!(field(&all[1], "application"), "Browser");
    assert_eq!(
        field(&all[1], "source_ip"),
        "127.0.0.1",
        "no forwarding header: the peer"
    );

    // Filters: a user, an app (by name or consumer key), a time.
    let bobs = rows(&db, &["--user", BOB]);
    assert_eq!(bobs.len(), 1);
    assert_eq!(field(&bobs[0], "source_ip"), "198.51.100.8");
    let through_app = rows(&db, &["--app", "Integration"]);
    assert_eq!(through_app.len(), 4, "the login page and SOAP name no app");
    assert_eq!(rows(&db, &["--app", INTEGRATION_ID]), through_app);
    assert_eq!(rows(&db, &["--since", "1h"]).len(), 6);
    assert!(rows(&db, &["--since", "2999-01-01"]).is_empty());
    assert_eq!(rows(&db, &["--limit", "2"]).len(), 2);
    let refused = admin_refused(&db, &["login-history", "--since", "last tuesday"]);
    assert!(refused.contains("expected a time"), "{refused}");

    // CSV: Salesforce's columns, a line per login.
    let mut cmd = idforce();
    if db.starts_with("postgres") {
        cmd.env("IDFORCE_SECRET", POSTGRES_SECRET);
    }
    let out = cmd
        .args(["--database", &db, "login-history", "--csv"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let csv = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 7, "{csv}");
    assert!(
        lines[0].starts_with("\"Login Time\",\"Username\",\"Source IP\""),
        "{csv}"
    );
    assert!(lines[5].contains("\"Invalid Password\""), "{csv}");
    s.stop().await;
}

#[tokio::test]
async fn a_forwarded_address_is_believed_only_from_a_trusted_proxy() {
    // The default config trusts no proxy: the header is the client's own claim.
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    assert_eq!(
        password_via(&s, "198.51.100.7", ALICE, ALICE_PASSWORD).await,
        200
    );
    let all = rows(&db, &[]);
    assert_eq!(all.len(), 1);
    assert_eq!(field(&all[0], "source_ip"), "127.0.0.1");
    s.stop().await;
}

#[tokio::test]
async fn a_flood_of_refusals_of_one_user_is_recorded_only_so_far() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    // Bob is locked out after three; the refusals go on, costing no password check.
    for _ in 0..30 {
        assert_eq!(password_via(&s, "198.51.100.8", BOB, "wrong").await, 400);
    }
    let bobs = rows(&db, &["--user", BOB, "--limit", "100"]);
    assert_eq!(bobs.len(), 20, "the first 20 refusals of a minute");
    assert_eq!(field(&bobs[0], "status"), "Password Lockout");
    assert_eq!(field(&bobs[19], "status"), "Invalid Password");
    // Control: another user's refusal is still recorded.
    assert_eq!(password_via(&s, "198.51.100.7", ALICE, "wrong").await, 400);
    assert_eq!(rows(&db, &["--user", ALICE]).len(), 1);
    s.stop().await;
}
