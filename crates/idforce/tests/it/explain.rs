//! `serve --explain`: idforce's reason beside Salesforce's answer — a JSON field where the
//! body is JSON, a header everywhere — and nothing of it without the flag.

use idforce_server::Explain;
use serde_json::Value;

use crate::helpers::*;

const HEADER: &str = "x-idforce-reason";

async fn explaining() -> TestServer {
    TestServer::start_with(CONFIG, |o| o.explain = Explain::Loopback).await
}

fn reason(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get(HEADER)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn refusals_say_why_only_when_asked() {
    let explained = explaining().await;
    let plain = TestServer::start().await;
    let wrong_password = [
        ("grant_type", "password"),
        ("client_id", INTEGRATION_ID),
        ("client_secret", INTEGRATION_SECRET),
        ("username", ALICE),
        ("password", "not her password"),
    ];

    // The token endpoint: Salesforce's answer unchanged, the reason beside it.
    let r = explained
        .post_form("/services/oauth2/token", &wrong_password)
        .await;
    assert_eq!(r.status(), 400);
    let header = reason(&r).expect("the reason header");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(body["error_description"], "authentication failure");
    let why = body["idforce_reason"].as_str().expect("idforce_reason");
    assert!(why.contains("a wrong password"), "{why}");
    assert_eq!(header, why);
    // Control: the same request without --explain is Salesforce's answer alone.
    let r = plain
        .post_form("/services/oauth2/token", &wrong_password)
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(reason(&r), None);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"error": "invalid_grant", "error_description": "authentication failure"})
    );
    // A success carries no reason.
    let ok = explained.password_login(ALICE, ALICE_PASSWORD).await;
    assert!(ok.get("idforce_reason").is_none(), "{ok}");

    // An unknown username: the reason names it by its log digest only.
    let r = explained
        .post_form(
            "/services/oauth2/token",
            &[
                ("grant_type", "password"),
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("username", "nobody@acme.test"),
                ("password", "whatever"),
            ],
        )
        .await;
    let body: Value = r.json().await.unwrap();
    let why = body["idforce_reason"].as_str().unwrap();
    assert!(
        why.starts_with("no user ") && !why.contains("nobody"),
        "{why}"
    );

    // Form-encoded answers keep Salesforce's exact bytes (jsforce parses them); the header
    // says why.
    let r = explained
        .post_form("/services/oauth2/revoke", &[("token", "not-a-token")])
        .await;
    assert_eq!(r.status(), 400);
    assert!(reason(&r).is_some());
    let text = r.text().await.unwrap();
    assert!(!text.contains("idforce_reason"), "{text}");
    let control = plain
        .post_form("/services/oauth2/revoke", &[("token", "not-a-token")])
        .await;
    assert_eq!(reason(&control), None);
    assert_eq!(control.text().await.unwrap(), text);

    // Bearer tokens: a plain-text answer, the reason in the header only.
    let userinfo = |s: &TestServer, token: &str| {
        s.http
            .get(s.at("/services/oauth2/userinfo"))
            .bearer_auth(token.to_owned())
            .send()
    };
    let r = userinfo(&explained, "garbage").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(reason(&r).unwrap().contains("not an access token"), "{r:?}");
    assert_eq!(r.text().await.unwrap(), "Bad_OAuth_Token");
    let token = explained.alice_token().await;
    let revoked = explained
        .post_form("/services/oauth2/revoke", &[("token", &token)])
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(reason(&revoked), None);
    let r = userinfo(&explained, &token).await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(reason(&r).unwrap().contains("revoked"), "{r:?}");
    let r = userinfo(&plain, "garbage").await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(reason(&r), None);

    // The REST API's error array: the reason in its first element.
    let r = explained
        .http
        .get(explained.at("/services/data/v62.0/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body[0]["errorCode"], "INVALID_SESSION_ID");
    assert!(
        body[0]["idforce_reason"]
            .as_str()
            .unwrap()
            .contains("no access token"),
        "{body}"
    );

    // The authorize endpoint's error page; the control has no reason.
    let authorize = "/services/oauth2/authorize?response_type=code&client_id=unknown&redirect_uri=https://x.example/cb";
    let r = explained
        .http
        .get(explained.at(authorize))
        .send()
        .await
        .unwrap();
    let control = plain.http.get(plain.at(authorize)).send().await.unwrap();
    assert_eq!(r.status(), control.status());
    assert!(
        reason(&r).is_some_and(|why| why.contains("client")),
        "{r:?}"
    );
    assert_eq!(reason(&control), None);
}

#[tokio::test]
async fn explain_is_for_loopback_unless_asked_for_anywhere() {
    let open = |explain| {
        TestServer::try_start_with(CONFIG, move |o| {
            o.listen = "0.0.0.0:0".into();
            o.explain = explain;
        })
    };
    let Err(e) = open(Explain::Loopback).await else {
        panic!("--explain on 0.0.0.0 must be refused");
    };
    let said = e.to_string();
    assert!(
        said.contains("--explain") && said.contains("--explain-anywhere"),
        "{said}"
    );
    assert!(said.contains("0.0.0.0"), "{said}");
    // Controls: the same address with --explain-anywhere, and without --explain at all.
    assert!(open(Explain::Anywhere).await.is_ok());
    assert!(open(Explain::Off).await.is_ok());

    // Loopback behind a proxy: the public URL says where callers are.
    let proxied = |url: &'static str| {
        TestServer::try_start_with(CONFIG, move |o| {
            o.public_url = Some(url.into());
            o.explain = Explain::Loopback;
        })
    };
    let Err(e) = proxied("https://dev.example.com").await else {
        panic!("--explain behind a public URL must be refused");
    };
    assert!(e.to_string().contains("not a loopback one"), "{e}");
    assert!(proxied("http://localhost:8080").await.is_ok());
    assert!(proxied("https://acme.my.localhost:8443").await.is_ok());
}
