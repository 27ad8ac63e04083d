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

/// A client whose connections come from `addr` (any 127.0.0.0/8 address reaches loopback).
fn client_from(addr: &str) -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .local_address(addr.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn device_request(http: &reqwest::Client, s: &TestServer) -> (u16, Option<String>, Value) {
    let r = http
        .post(s.at("/services/oauth2/token"))
        .form(&[
            ("response_type", "device_code"),
            ("client_id", INTEGRATION_ID),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, r.json().await.unwrap())
}

/// Behind a trusted proxy, the address `X-Forwarded-For` names is the one throttled; from an
/// untrusted peer the header is ignored.
#[tokio::test]
async fn the_throttled_address_is_the_one_a_trusted_proxy_forwards() {
    let forwarded = |s: &TestServer, client: &'static str| {
        let http = client_from("127.0.0.2");
        let url = s.at("/services/oauth2/token");
        async move {
            http.post(url)
                .header("x-forwarded-for", client)
                .form(&[
                    ("response_type", "device_code"),
                    ("client_id", INTEGRATION_ID),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let config = CONFIG.replace(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.2\"]\n",
    );
    assert_ne!(config, CONFIG);
    let s = TestServer::start_with(&config, |_| {}).await;
    s.clock.freeze();
    for _ in 0..10 {
        assert_eq!(forwarded(&s, "198.51.100.1").await, 200);
    }
    assert_eq!(forwarded(&s, "198.51.100.1").await, 429);
    assert_eq!(
        forwarded(&s, "198.51.100.2").await,
        200,
        "another client behind the proxy"
    );
    // A client that forges the header in front of the proxy's own entry gains nothing.
    assert_eq!(forwarded(&s, "198.51.100.2, 198.51.100.1").await, 429);

    // Control: the same requests to a server that trusts no proxy share the peer's bucket.
    let s = TestServer::start().await;
    s.clock.freeze();
    for _ in 0..10 {
        assert_eq!(forwarded(&s, "198.51.100.1").await, 200);
    }
    assert_eq!(
        forwarded(&s, "198.51.100.2").await,
        429,
        "the header is not believed"
    );
}

#[tokio::test]
async fn device_authorization_is_throttled_per_address_and_per_client() {
    let s = TestServer::start().await;
    // Rates are measured on the server's clock: stopped, the counts do not depend on how fast
    // this machine sends.
    s.clock.freeze();
    let here = client_from("127.0.0.2");
    for i in 0..10 {
        let (st, _, body) = device_request(&here, &s).await;
        assert_eq!(st, 200, "request {i}: {body}");
    }
    let (st, retry, body) = device_request(&here, &s).await;
    assert_eq!(st, 429, "{body}");
    assert_eq!(body["error"], "slow_down");
    assert_eq!(
        body["error_description"],
        "too many requests; retry in 6 seconds"
    );
    assert_eq!(retry.as_deref(), Some("6"));
    // Another address is not held back by this one.
    let (st, _, _) = device_request(&client_from("127.0.0.3"), &s).await;
    assert_eq!(st, 200);
    // Six seconds later, one more from the first.
    s.clock.advance_secs(6);
    assert_eq!(device_request(&here, &s).await.0, 200);
    assert_eq!(device_request(&here, &s).await.0, 429);

    // Per client: a hundred at once from anywhere, then ten a second.
    let s = TestServer::start().await;
    s.clock.freeze();
    let mut accepted = 0;
    let mut refused = None;
    'addresses: for a in 10..30 {
        let http = client_from(&format!("127.0.0.{a}"));
        for _ in 0..10 {
            let (st, retry, body) = device_request(&http, &s).await;
            if st == 200 {
                accepted += 1;
            } else {
                refused = Some((st, retry, body));
                break 'addresses;
            }
        }
    }
    assert_eq!(accepted, 100, "requests before the client's limit");
    let (st, retry, body) = refused.expect("the client's limit");
    assert_eq!((st, body["error"].as_str()), (429, Some("slow_down")));
    assert_eq!(retry.as_deref(), Some("1"));
}

#[tokio::test]
async fn user_codes_are_throttled_per_user() {
    let s = TestServer::start().await;
    s.clock.freeze();
    let (_, codes) = device_codes(&s, INTEGRATION_ID, &[]).await;
    let user_code = codes["user_code"].as_str().unwrap();
    let mut b = Browser::new(&s);
    for i in 0..10 {
        let page = enter_code(&mut b, ALICE, ALICE_PASSWORD, "BCDF-GHJK").await;
        assert_eq!(page.status, 200, "guess {i}");
        assert!(page.body.contains("not valid or has expired"));
    }
    // The right code, now: refused until the session may try again.
    let page = enter_code(&mut b, ALICE, ALICE_PASSWORD, user_code).await;
    assert_eq!(page.status, 429, "{}", page.body);
    assert!(
        page.body
            .contains("Too many codes tried. Wait 6 seconds, then try again."),
        "{}",
        page.body
    );
    assert_eq!(page.headers["retry-after"], "6");
    // Logging in again does not start a new count…
    let mut again = Browser::new(&s);
    let page = enter_code(&mut again, ALICE, ALICE_PASSWORD, user_code).await;
    assert_eq!(page.status, 429, "{}", page.body);
    // …and another person is not held back.
    let mut other = Browser::new(&s);
    let page = enter_code(
        &mut other,
        "integration@acme.test",
        "Integration2026!",
        user_code,
    )
    .await;
    assert!(page.is_consent(), "{}", page.body);
    s.clock.advance_secs(6);
    let page = enter_code(&mut b, ALICE, ALICE_PASSWORD, user_code).await;
    assert!(page.is_consent(), "{}", page.body);
}
