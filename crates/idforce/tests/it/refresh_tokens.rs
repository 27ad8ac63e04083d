//! Refresh tokens (spec §3.5, §10): policies on an injected clock, rotation with reuse
//! detection, revocation of a family, secrets, deactivated users.

use serde_json::Value;

use crate::browser::{Browser, authorize_url};
use crate::helpers::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// Alice's tokens from a web server flow with `client_id` (approving when asked).
async fn grant(s: &TestServer, client_id: &str, secret: &str, callback: &str) -> Value {
    let url = authorize_url(client_id, callback, &[("code_challenge", CHALLENGE)]);
    let code = Browser::new(s)
        .approved_code(&url, ALICE, ALICE_PASSWORD)
        .await;
    let (st, body) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", client_id),
            ("client_secret", secret),
            ("redirect_uri", callback),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(st, 200, "{body}");
    body
}

async fn refresh(s: &TestServer, client_id: &str, secret: Option<&str>, rt: &str) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("refresh_token", rt),
    ];
    if let Some(sec) = secret {
        form.push(("client_secret", sec));
    }
    s.token(&form).await
}

fn expired(st: u16, body: &Value) {
    assert_error(
        st,
        body,
        400,
        "invalid_grant",
        "expired access/refresh token",
    );
}

#[tokio::test]
async fn until_revoked_and_revoking_a_refresh_token_ends_its_sessions() {
    let s = TestServer::start().await;
    let t = grant(
        &s,
        SELF_SERVICE_ID,
        SELF_SERVICE_SECRET,
        SELF_SERVICE_CALLBACK,
    )
    .await;
    let rt = t["refresh_token"].as_str().unwrap();
    s.clock.advance_secs(365 * 86400);
    let (st, again) = refresh(&s, SELF_SERVICE_ID, Some(SELF_SERVICE_SECRET), rt).await;
    assert_eq!(st, 200, "{again}");
    // Introspection shows the refresh token's kind.
    let r = s
        .post_form(
            "/services/oauth2/introspect",
            &[
                ("token", rt),
                ("client_id", SELF_SERVICE_ID),
                ("client_secret", SELF_SERVICE_SECRET),
            ],
        )
        .await;
    let i: Value = r.json().await.unwrap();
    assert_eq!(
        (i["active"].as_bool(), i["token_type"].as_str()),
        (Some(true), Some("refresh_token"))
    );
    // Revoking the refresh token ends it and every access token issued from it.
    assert_eq!(
        s.post_form("/services/oauth2/revoke", &[("token", rt)])
            .await
            .status(),
        200
    );
    let (st, e) = refresh(&s, SELF_SERVICE_ID, Some(SELF_SERVICE_SECRET), rt).await;
    expired(st, &e);
    let r = s
        .http
        .get(s.at("/services/data/v62.0/"))
        .bearer_auth(again["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn refresh_errors() {
    let s = TestServer::start().await;
    let t = grant(
        &s,
        SELF_SERVICE_ID,
        SELF_SERVICE_SECRET,
        SELF_SERVICE_CALLBACK,
    )
    .await;
    let rt = t["refresh_token"].as_str().unwrap();
    let (st, e) = refresh(&s, SELF_SERVICE_ID, None, rt).await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    let (st, e) = refresh(&s, SELF_SERVICE_ID, Some("wrong"), rt).await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    let (st, e) = refresh(&s, AUDITOR_ID, Some(AUDITOR_SECRET), rt).await;
    expired(st, &e);
    let (st, e) = refresh(
        &s,
        SELF_SERVICE_ID,
        Some(SELF_SERVICE_SECRET),
        "5Aep861nonsense",
    )
    .await;
    expired(st, &e);
    // A deactivated user's refresh tokens stop working (spec §3.5).
    admin_seen(&database_url(s.dir.path()), &["user", "deactivate", ALICE]);
    let (st, e) = refresh(&s, SELF_SERVICE_ID, Some(SELF_SERVICE_SECRET), rt).await;
    assert_error(st, &e, 400, "invalid_grant", "inactive user");
}

#[tokio::test]
async fn policies_on_an_injected_clock() {
    for (policy, checks) in [
        ("immediately", vec![(0, false)]),
        ("expire_after:1h", vec![(1800, true), (1801, false)]),
        (
            "expire_if_unused:1h",
            vec![(3000, true), (3000, true), (3601, false)],
        ),
    ] {
        let config = CONFIG.replace(
            "scopes = [\"api\", \"refresh_token\"]\ncertificate = \"jwt.crt\"",
            &format!("scopes = [\"api\", \"refresh_token\"]\nrefresh_token_policy = \"{policy}\"\ncertificate = \"jwt.crt\""),
        );
        assert_ne!(config, CONFIG);
        let s = TestServer::start_with(&config, |_| {}).await;
        let t = grant(
            &s,
            SELF_SERVICE_ID,
            SELF_SERVICE_SECRET,
            SELF_SERVICE_CALLBACK,
        )
        .await;
        let rt = t["refresh_token"].as_str().unwrap();
        for (advance, works) in checks {
            s.clock.advance_secs(advance);
            let (st, body) = refresh(&s, SELF_SERVICE_ID, Some(SELF_SERVICE_SECRET), rt).await;
            if works {
                assert_eq!(st, 200, "{policy} after +{advance}s: {body}");
            } else {
                expired(st, &body);
            }
        }
    }
}

#[tokio::test]
async fn rotation_and_reuse_detection() {
    let s = TestServer::start().await;
    let callback = "https://rotating.example/cb";
    let t = grant(&s, ROTATING_ID, ROTATING_SECRET, callback).await;
    let first = t["refresh_token"].as_str().unwrap().to_owned();
    // No secret needed for this app's refresh flow.
    let (st, r1) = refresh(&s, ROTATING_ID, None, &first).await;
    assert_eq!(st, 200, "{r1}");
    let second = r1["refresh_token"]
        .as_str()
        .expect("a new refresh token with rotation")
        .to_owned();
    assert_ne!(first, second);
    // No secret sent, but signed with the app's own (kept sealed), as Salesforce signs it.
    assert_eq!(
        r1["signature"].as_str(),
        Some(signature_for(ROTATING_SECRET, &r1).as_str()),
        "{r1}"
    );
    // A sent secret is still checked.
    let (st, e) = refresh(&s, ROTATING_ID, Some("wrong"), &second).await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    let (st, r2) = refresh(&s, ROTATING_ID, Some(ROTATING_SECRET), &second).await;
    assert_eq!(st, 200, "{r2}");
    let third = r2["refresh_token"].as_str().unwrap().to_owned();

    // The first token comes back: someone copied it. The whole family ends.
    let (st, e) = refresh(&s, ROTATING_ID, None, &first).await;
    expired(st, &e);
    let (st, e) = refresh(&s, ROTATING_ID, None, &third).await;
    expired(st, &e);
    for at in [&t, &r1, &r2] {
        let r = s
            .http
            .get(s.at("/services/data/v62.0/"))
            .bearer_auth(at["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
}

#[tokio::test]
async fn token_commands_see_refresh_tokens() {
    let s = TestServer::start().await;
    let t = grant(
        &s,
        SELF_SERVICE_ID,
        SELF_SERVICE_SECRET,
        SELF_SERVICE_CALLBACK,
    )
    .await;
    let db = database_url(s.dir.path());
    let list = admin(&db, &["token", "list", "--user", ALICE]);
    let kinds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["access_token", "refresh_token"]);
    let revoked = admin(&db, &["token", "revoke", "--app", "Self Service"]);
    assert_eq!(
        (
            revoked["revoked"].as_u64(),
            revoked["refresh_tokens_revoked"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let (st, e) = refresh(
        &s,
        SELF_SERVICE_ID,
        Some(SELF_SERVICE_SECRET),
        t["refresh_token"].as_str().unwrap(),
    )
    .await;
    expired(st, &e);
}
