//! Setup's token pages over HTTP: OAuth Usage's per-user Revoke (one user's tokens of one app
//! end, everyone else's stay) and Session Management (live sessions with their source, Remove).

use crate::browser::*;
use crate::helpers::*;

const SESSIONS: &str = "/lightning/setup/SessionManagementPage/home";

/// A refresh token of Self Service for `username`, by the web server flow.
async fn self_service_tokens(s: &TestServer, username: &str, password: &str) -> serde_json::Value {
    let mut b = logged_in(s, username, password).await;
    let url = crate::browser::authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[]);
    let code = b.approved_code(&url, username, password).await;
    let (st, tokens) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("redirect_uri", SELF_SERVICE_CALLBACK),
        ])
        .await;
    assert_eq!(st, 200, "{tokens}");
    tokens
}

async fn refresh(s: &TestServer, tokens: &serde_json::Value) -> (u16, serde_json::Value) {
    s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ("client_id", SELF_SERVICE_ID),
        ("client_secret", SELF_SERVICE_SECRET),
    ])
    .await
}

async fn userinfo(s: &TestServer, access_token: &str) -> u16 {
    client()
        .get(s.at("/services/oauth2/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn oauth_usage_revokes_one_users_tokens_of_one_app() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let alices = self_service_tokens(&s, ALICE, ALICE_PASSWORD).await;
    let bobs = self_service_tokens(&s, BOB, BOB_PASSWORD).await;
    let app_id = admin(&db, &["app", "show", "Self Service"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let usage = alice.get("/lightning/setup/ConnectedAppsUsage/home").await;
    let href = format!("/lightning/setup/ConnectedAppsUsage/page?app={app_id}");
    assert!(
        usage.body.contains(&format!(
            "<a href=\"{}\">Self Service</a></td><td>2</td>",
            href.replace('&', "&amp;")
        )),
        "{}",
        usage.body
    );
    let page = alice.get(&href).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<td>alice@acme.test</td><td>1</td>"));
    assert!(page.body.contains("<td>bob@acme.test</td><td>1</td>"));
    let bob_id = admin(&db, &["user", "show", BOB])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A forged form: refused, nothing ended.
    let forged = alice
        .post(&href, &form(&[("csrf", "forged"), ("user", &bob_id)]))
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(
        userinfo(&s, bobs["access_token"].as_str().unwrap()).await,
        200
    );

    // A user holding nothing of this app (here, another org's): as unknown as a missing one,
    // their username not shown, nothing recorded.
    let dave = admin(&db, &["user", "show", "dave@globex.test"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trail_before = admin(&db, &["audit-trail"]);
    let unknown = alice
        .post(&href, &form(&[("csrf", &csrf_of(&page)), ("user", &dave)]))
        .await;
    assert_eq!(unknown.status, 404);
    assert!(!unknown.body.contains("dave@globex.test"));
    assert_eq!(admin(&db, &["audit-trail"]), trail_before);
    let done = alice
        .post(
            &href,
            &form(&[("csrf", &csrf_of(&page)), ("user", &bob_id)]),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        unescape(&done.body)
            .contains("Revoked bob@acme.test's tokens of Self Service: 1 access, 1 refresh."),
        "{}",
        done.body
    );
    assert!(!done.body.contains("<td>bob@acme.test</td>"));
    // Bob's tokens are ended; Alice's (the control) still work.
    let (st, body) = refresh(&s, &bobs).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_grant",
        "expired access/refresh token",
    );
    // Salesforce answers a dead token at userinfo with 403 Bad_OAuth_Token.
    assert_eq!(
        userinfo(&s, bobs["access_token"].as_str().unwrap()).await,
        403
    );
    assert_eq!(refresh(&s, &alices).await.0, 200);
    assert_eq!(
        userinfo(&s, alices["access_token"].as_str().unwrap()).await,
        200
    );
    let trail = admin(&db, &["audit-trail", "--org", "Acme"]);
    assert_eq!(
        trail[0]["action"],
        "Revoked the tokens of bob@acme.test for connected app \"Self Service\": 1 access, 1 refresh"
    );
    // Another org's app: unknown here.
    let globex = admin(&db, &["app", "show", "Globex App"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = format!("/lightning/setup/ConnectedAppsUsage/page?app={globex}");
    assert_eq!(alice.get(&other).await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn session_management_lists_live_sessions_and_removes_one() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let first = s.password_login(ALICE, ALICE_PASSWORD).await;
    let second = s.password_login(ALICE, ALICE_PASSWORD).await;
    let globex = s.password_login("dave@globex.test", "Globex2026!").await;
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let page = alice.get(SESSIONS).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let rows = page.body.matches("<td>alice@acme.test</td>").count();
    assert_eq!(rows, 2, "{}", page.body);
    assert!(
        page.body.contains("<td>127.0.0.1</td>"),
        "source IP: {}",
        page.body
    );
    assert!(!page.body.contains("dave@globex.test"), "another org's");
    // The rows' keys: remove the first (most recently used: the second login).
    let keys: Vec<String> = page
        .hidden()
        .into_iter()
        .filter(|(k, _)| k == "session")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(keys.len(), 2);
    // Another org's session and a malformed key: unknown here, nothing ended.
    let dave_sessions = admin(&db, &["token", "list", "--user", "dave@globex.test"]);
    assert_eq!(
        dave_sessions.as_array().unwrap().len(),
        1,
        "{dave_sessions}"
    );
    for bad in ["zz", "00"] {
        let r = alice
            .post(
                SESSIONS,
                &form(&[("csrf", &csrf_of(&page)), ("session", bad)]),
            )
            .await;
        assert_eq!(r.status, 404, "{bad}");
    }
    let done = alice
        .post(
            SESSIONS,
            &form(&[("csrf", &csrf_of(&page)), ("session", &keys[0])]),
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let after = alice.get(done.location.as_deref().unwrap()).await;
    assert!(after.body.contains("The session is removed"));
    assert_eq!(after.body.matches("<td>alice@acme.test</td>").count(), 1);
    let token = |v: &serde_json::Value| v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(userinfo(&s, &token(&second)).await, 403, "removed");
    assert_eq!(userinfo(&s, &token(&first)).await, 200, "the other stays");
    assert_eq!(userinfo(&s, &token(&globex)).await, 200);
    let trail = admin(&db, &["audit-trail", "--org", "Acme"]);
    assert_eq!(trail[0]["section"], "Session Management");
    // Bob: not his page.
    let mut bob = logged_in(&s, BOB, BOB_PASSWORD).await;
    assert_eq!(bob.get(SESSIONS).await.status, 403);
    s.stop().await;
}
