//! Device flow over HTTP (spec §3.8, RFC 8628): the device's request, the verification page
//! in a cookie-keeping browser, and every answer of the poll.

use serde_json::Value;

use crate::browser::{Browser, Page};
use crate::helpers::*;

/// `response_type=device_code` for `client_id` (and scope).
async fn device_codes(s: &TestServer, client_id: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![("response_type", "device_code"), ("client_id", client_id)];
    form.extend_from_slice(extra);
    s.token(&form).await
}

async fn poll(s: &TestServer, client_id: &str, device_code: &str) -> (u16, Value) {
    s.token(&[
        ("grant_type", "device"),
        ("client_id", client_id),
        ("code", device_code),
    ])
    .await
}

/// Logs in on the verification page and submits the code: the page that follows.
async fn enter_code(b: &mut Browser, user: &str, password: &str, user_code: &str) -> Page {
    let page = b.get("/setup/connect").await;
    let page = if page.is_login() {
        let after = b.log_in(&page, user, password).await;
        assert_eq!(after.status, 302, "login: {}", after.body);
        assert_eq!(after.location.as_deref(), Some("/setup/connect"));
        b.get("/setup/connect").await
    } else {
        page
    };
    assert!(page.body.contains("Connect Your Device"), "{}", page.body);
    let mut form = page.hidden();
    form.push(("user_code".into(), user_code.into()));
    b.post("/setup/connect", &form).await
}

async fn decide(b: &mut Browser, page: &Page, allow: bool) -> Page {
    assert!(
        page.is_consent(),
        "expected the approval page: {}",
        page.body
    );
    let mut form = page.hidden();
    form.push((
        "decision".into(),
        if allow { "allow" } else { "deny" }.into(),
    ));
    b.post("/setup/connect", &form).await
}

#[tokio::test]
async fn device_flow_request_approve_poll_and_redeem_once() {
    let s = TestServer::start().await;
    let (st, codes) =
        device_codes(&s, INTEGRATION_ID, &[("scope", "api refresh_token openid")]).await;
    assert_eq!(st, 200, "{codes}");
    let device_code = codes["device_code"].as_str().unwrap().to_owned();
    let user_code = codes["user_code"].as_str().unwrap().to_owned();
    assert_eq!(codes["verification_uri"], s.at("/setup/connect"));
    assert_eq!(codes["interval"], 5);
    assert_eq!(user_code.len(), 9, "{user_code}");
    assert!(codes.get("expires_in").is_none(), "spec §3.8: {codes}");

    // Before the user decides: pending.
    let (st, body) = poll(&s, INTEGRATION_ID, &device_code).await;
    assert_error(
        st,
        &body,
        400,
        "authorization_pending",
        "authorization pending",
    );

    // The user types the code in lower case, without the dash.
    let mut b = Browser::new(&s);
    let typed = user_code.replace('-', "").to_lowercase();
    let consent = enter_code(&mut b, ALICE, ALICE_PASSWORD, &typed).await;
    assert!(consent.body.contains("Integration"), "{}", consent.body);
    let done = decide(&mut b, &consent, true).await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("device-connected"), "{}", done.body);

    // The next poll, an interval later, gets the web-server-flow shape.
    s.clock.advance_secs(5);
    let (st, tokens) = poll(&s, INTEGRATION_ID, &device_code).await;
    assert_eq!(st, 200, "{tokens}");
    assert!(
        tokens["access_token"]
            .as_str()
            .unwrap()
            .starts_with(ORG_ID_15)
    );
    assert!(tokens["refresh_token"].as_str().is_some(), "{tokens}");
    assert!(tokens["id_token"].as_str().is_some(), "{tokens}");
    assert_eq!(tokens["scope"], "api refresh_token openid");
    assert!(
        tokens["id"]
            .as_str()
            .unwrap()
            .contains("/id/00D000000000001")
    );
    let (st, me) = get_json(
        &s,
        "/services/oauth2/userinfo",
        tokens["access_token"].as_str().unwrap(),
    )
    .await;
    assert_eq!((st, &me["sub"]), (200, &tokens["id"]), "{me}");

    // Spent: a second redemption gets nothing.
    s.clock.advance_secs(5);
    let (st, body) = poll(&s, INTEGRATION_ID, &device_code).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_grant",
        "expired authorization code",
    );
    // And the code cannot be approved again.
    let again = enter_code(&mut b, ALICE, ALICE_PASSWORD, &user_code).await;
    assert!(
        again.body.contains("not valid or has expired"),
        "{}",
        again.body
    );
}

async fn get_json(s: &TestServer, path: &str, token: &str) -> (u16, Value) {
    let r = client()
        .get(s.at(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn polling_too_fast_slows_the_device_down() {
    let s = TestServer::start().await;
    let (_, codes) = device_codes(&s, INTEGRATION_ID, &[]).await;
    let device_code = codes["device_code"].as_str().unwrap();
    let (st, body) = poll(&s, INTEGRATION_ID, device_code).await;
    assert_error(
        st,
        &body,
        400,
        "authorization_pending",
        "authorization pending",
    );
    // Again at once: too soon.
    let (st, body) = poll(&s, INTEGRATION_ID, device_code).await;
    assert_error(
        st,
        &body,
        400,
        "slow_down",
        "polling too frequently; slow down",
    );
    // The interval is now 10 s: 5 s later is still too soon (RFC 8628 §3.5).
    s.clock.advance_secs(5);
    let (st, body) = poll(&s, INTEGRATION_ID, device_code).await;
    assert_error(
        st,
        &body,
        400,
        "slow_down",
        "polling too frequently; slow down",
    );
    s.clock.advance_secs(15);
    let (st, body) = poll(&s, INTEGRATION_ID, device_code).await;
    assert_error(
        st,
        &body,
        400,
        "authorization_pending",
        "authorization pending",
    );
}

#[tokio::test]
async fn a_denied_device_gets_access_denied() {
    let s = TestServer::start().await;
    let (_, codes) = device_codes(&s, SELF_SERVICE_ID, &[]).await;
    let device_code = codes["device_code"].as_str().unwrap();
    let mut b = Browser::new(&s);
    let consent = enter_code(
        &mut b,
        BOB,
        BOB_PASSWORD,
        codes["user_code"].as_str().unwrap(),
    )
    .await;
    let done = decide(&mut b, &consent, false).await;
    assert!(done.body.contains("device-denied"), "{}", done.body);
    let (st, body) = poll(&s, SELF_SERVICE_ID, device_code).await;
    assert_error(
        st,
        &body,
        400,
        "access_denied",
        "end-user denied authorization",
    );
}

#[tokio::test]
async fn an_unused_device_code_expires_after_ten_minutes() {
    let s = TestServer::start().await;
    let (_, codes) = device_codes(&s, INTEGRATION_ID, &[]).await;
    let device_code = codes["device_code"].as_str().unwrap();
    s.clock.advance_secs(10 * 60 + 1);
    let (st, body) = poll(&s, INTEGRATION_ID, device_code).await;
    assert_error(st, &body, 400, "expired_token", "expired device code");
    // The user is too late as well.
    let mut b = Browser::new(&s);
    let page = enter_code(
        &mut b,
        ALICE,
        ALICE_PASSWORD,
        codes["user_code"].as_str().unwrap(),
    )
    .await;
    assert!(
        page.body.contains("not valid or has expired"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn device_flow_errors() {
    let s = TestServer::start().await;
    // The device's request.
    let (st, body) = device_codes(&s, "3MVG9unknown", &[]).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_client_id",
        "client identifier invalid",
    );
    let (st, body) = device_codes(&s, INTEGRATION_ID, &[("client_secret", "wrong")]).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    let (st, body) = device_codes(&s, SELF_SERVICE_ID, &[("scope", "api chatter_api")]).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_scope",
        "the requested scope is not allowed: chatter_api",
    );

    // The poll.
    let (_, codes) = device_codes(&s, INTEGRATION_ID, &[]).await;
    let device_code = codes["device_code"].as_str().unwrap();
    let (st, body) = poll(&s, INTEGRATION_ID, "not-a-device-code").await;
    assert_error(st, &body, 400, "invalid_grant", "invalid device code");
    let (st, body) = s
        .token(&[("grant_type", "device"), ("client_id", INTEGRATION_ID)])
        .await;
    assert_error(st, &body, 400, "invalid_grant", "invalid device code");
    // Another app cannot poll (or redeem) this app's code.
    let (st, body) = poll(&s, SELF_SERVICE_ID, device_code).await;
    assert_error(st, &body, 400, "invalid_grant", "invalid device code");
    let (st, body) = s
        .token(&[
            ("grant_type", "device"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", "wrong"),
            ("code", device_code),
        ])
        .await;
    assert_error(
        st,
        &body,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    // RFC 8628's grant type name works too.
    let (st, body) = s
        .token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", INTEGRATION_ID),
            ("device_code", device_code),
        ])
        .await;
    assert_error(
        st,
        &body,
        400,
        "authorization_pending",
        "authorization pending",
    );
}

#[tokio::test]
async fn the_verification_page_refuses_bad_codes_users_and_forms() {
    let s = TestServer::start().await;
    let (_, codes) = device_codes(&s, INTEGRATION_ID, &[]).await;
    let user_code = codes["user_code"].as_str().unwrap();
    let mut b = Browser::new(&s);

    // A code we never issued, and text that cannot be a code.
    for typed in ["BCDF-GHJK", "hello"] {
        let page = enter_code(&mut b, ALICE, ALICE_PASSWORD, typed).await;
        assert_eq!(page.status, 200);
        assert!(
            page.body.contains("not valid or has expired"),
            "{}",
            page.body
        );
    }

    // Bob is not pre-authorized for the admin-approved Integration app.
    let mut bob = Browser::new(&s);
    let page = enter_code(&mut bob, BOB, BOB_PASSWORD, user_code).await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body.contains("not allowed to use this app"),
        "{}",
        page.body
    );

    // A form without its CSRF token.
    let page = b
        .post(
            "/setup/connect",
            &[
                ("user_code".into(), user_code.into()),
                ("decision".into(), "allow".into()),
            ],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    let (st, body) = poll(&s, INTEGRATION_ID, codes["device_code"].as_str().unwrap()).await;
    assert_error(
        st,
        &body,
        400,
        "authorization_pending",
        "authorization pending",
    );

    // Not logged in: the login page, which comes back here afterwards.
    let mut anonymous = Browser::new(&s);
    let page = anonymous
        .get(&format!("/setup/connect?user_code={user_code}"))
        .await;
    assert!(page.is_login(), "{}", page.body);
    assert!(
        page.hidden().contains(&(
            "startURL".into(),
            format!("/setup/connect?user_code={user_code}")
        )),
        "{:?}",
        page.hidden()
    );
    let page = anonymous
        .post("/setup/connect", &[("user_code".into(), user_code.into())])
        .await;
    assert_eq!(page.status, 401);
    assert!(page.is_login());
}
