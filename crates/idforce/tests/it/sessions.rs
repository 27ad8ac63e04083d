//! Access tokens are sessions: an idle timeout that slides with use, with coalesced writes
//! (spec §10; issue: at most one store write per token per half timeout).

use crate::helpers::*;

async fn identity_status(s: &TestServer, id: &str, token: &str) -> u16 {
    s.http
        .get(id)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn sessions_slide_with_use_and_writes_are_coalesced() {
    let s = TestServer::start().await;
    let login = s.password_login(ALICE, ALICE_PASSWORD).await;
    let (id, token) = (
        login["id"].as_str().unwrap(),
        login["access_token"].as_str().unwrap(),
    );

    // Used early (less than half the timeout): no write, so expiry stays at issue + 2 h.
    s.clock.advance_secs(600);
    assert_eq!(identity_status(&s, id, token).await, 200);
    s.clock.advance_secs(6600); // t = 2h
    assert_eq!(
        identity_status(&s, id, token).await,
        403,
        "the 10-minute use must not have moved the idle clock"
    );

    let login = s.password_login(ALICE, ALICE_PASSWORD).await;
    let token = login["access_token"].as_str().unwrap();
    s.clock.advance_secs(6600); // 1h50 after issue: past half, so this use slides the session
    assert_eq!(identity_status(&s, id, token).await, 200);
    s.clock.advance_secs(6600); // 1h50 after that use
    assert_eq!(identity_status(&s, id, token).await, 200);
    s.clock.advance_secs(7201);
    assert_eq!(identity_status(&s, id, token).await, 403);
}

#[tokio::test]
async fn session_timeout_comes_from_the_app() {
    let config = CONFIG.replace("session_timeout = \"2h\"", "session_timeout = \"15m\"");
    let s = TestServer::start_with(&config, |_| {}).await;
    let (st, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(st, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    s.clock.advance_secs(901);
    let r = s
        .http
        .get(s.at("/services/data/v62.0/"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn deactivating_a_user_ends_their_sessions() {
    let s = TestServer::start().await;
    let login = s.password_login(ALICE, ALICE_PASSWORD).await;
    admin(&database_url(s.dir.path()), &["user", "deactivate", ALICE]);
    let status = identity_status(
        &s,
        login["id"].as_str().unwrap(),
        login["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 403);
}
