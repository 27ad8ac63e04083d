//! JWT bearer flow (spec §3.6, §12.5): the assertion shapes real clients send, and every way
//! an assertion is refused.

use serde_json::{Value, json};

use crate::helpers::*;

fn claims(s: &TestServer, sub: &str) -> Value {
    json!({ "iss": INTEGRATION_ID, "sub": sub, "aud": s.url, "exp": now_secs() + 180 })
}

#[tokio::test]
async fn jwt_bearer_flow_answers_like_salesforce() {
    let s = TestServer::start().await;
    let (st, body) = s.jwt_login(&sign_jwt(&claims(&s, ALICE))).await;
    assert_eq!(st, 200, "{body}");
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["access_token", "scope", "instance_url", "id", "token_type"]
    );
    assert_eq!(body["scope"], "api web full openid id");
    assert!(
        body["access_token"]
            .as_str()
            .unwrap()
            .starts_with(ORG_ID_15)
    );
}

#[tokio::test]
async fn audiences_and_expiries_real_clients_send() {
    let s = TestServer::start().await;
    let now = now_secs();
    let variants = [
        json!(s.url.clone()),
        json!(format!("{}/", s.url)),
        json!(format!("{}/services/oauth2/token", s.url)),
        json!("https://login.salesforce.com"),
        json!("https://test.salesforce.com/"),
        json!(["https://elsewhere.example", s.url.clone()]),
    ];
    for (i, aud) in variants.iter().enumerate() {
        // Distinct exp values keep each assertion unique (no replay).
        let c =
            json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": aud, "exp": now + 100 + i as i64 });
        let (st, body) = s.jwt_login(&sign_jwt(&c)).await;
        assert_eq!(st, 200, "aud {aud}: {body}");
    }
    let exps = [
        json!((now * 1000) + 300),       // sf: Date.now() + 300, milliseconds
        json!(format!("{}", now + 180)), // simple-salesforce: a numeric string
        json!(now + 3600),               // Authlib: an hour ahead
        json!((now + 170) as f64 + 0.5), // a float
    ];
    for exp in exps {
        let c = json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": exp });
        let header = json!({ "alg": "RS256", "typ": "JWT" });
        let (st, body) = s.jwt_login(&sign_jwt_with("jwt.key", &header, &c)).await;
        assert_eq!(st, 200, "exp {exp}: {body}");
    }
    // The legacy `prn` claim names the user too.
    let c = json!({ "iss": INTEGRATION_ID, "prn": ALICE, "aud": s.url, "exp": now + 99 });
    assert_eq!(s.jwt_login(&sign_jwt(&c)).await.0, 200);
}

#[tokio::test]
async fn jwt_bearer_errors() {
    let s = TestServer::start().await;
    let now = now_secs();
    let expired_code = ("invalid_grant", "expired authorization code");
    let cases: Vec<(String, (&str, &str))> = vec![
        (
            sign_jwt(
                &json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": "https://evil.example", "exp": now + 60 }),
            ),
            ("invalid_grant", "audience is invalid"),
        ),
        (
            sign_jwt(
                &json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": now - 3600 }),
            ),
            expired_code,
        ),
        (
            sign_jwt(
                &json!({ "iss": "3MVG9unknown", "sub": ALICE, "aud": s.url, "exp": now + 60 }),
            ),
            ("invalid_client_id", "client identifier invalid"),
        ),
        (
            sign_jwt(
                &json!({ "iss": INTEGRATION_ID, "sub": "ghost@acme.test", "aud": s.url, "exp": now + 60 }),
            ),
            ("invalid_grant", "user hasn't approved this consumer"),
        ),
        (
            sign_jwt(
                &json!({ "iss": INTEGRATION_ID, "sub": "carol@acme.test", "aud": s.url, "exp": now + 60 }),
            ),
            ("invalid_grant", "inactive user"),
        ),
        (
            sign_jwt(&json!({ "iss": INTEGRATION_ID, "sub": BOB, "aud": s.url, "exp": now + 60 })),
            (
                "invalid_app_access",
                "user is not admin approved to access this app",
            ),
        ),
        (
            sign_jwt(
                &json!({ "iss": SELF_SERVICE_ID, "sub": ALICE, "aud": s.url, "exp": now + 60 }),
            ),
            ("invalid_grant", "user hasn't approved this consumer"),
        ),
        (
            sign_jwt(&json!({ "iss": AUDITOR_ID, "sub": ALICE, "aud": s.url, "exp": now + 60 })),
            ("invalid_grant", "invalid assertion"),
        ),
        (
            sign_jwt_with(
                "other.key",
                &json!({"alg": "RS256"}),
                &json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": now + 60 }),
            ),
            ("invalid_grant", "invalid assertion"),
        ),
        (
            sign_jwt_with(
                "jwt.key",
                &json!({"alg": "HS256"}),
                &json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": now + 60 }),
            ),
            ("invalid_grant", "invalid assertion"),
        ),
        (
            sign_jwt(&json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url })),
            ("invalid_grant", "invalid assertion"),
        ),
        ("not.a.jwt".into(), ("invalid_grant", "invalid assertion")),
        ("".into(), ("invalid_grant", "invalid assertion")),
    ];
    for (assertion, (error, description)) in cases {
        let (st, body) = s.jwt_login(&assertion).await;
        assert_error(st, &body, 400, error, description);
    }
    // An `alg: none` token with an empty signature.
    let unsigned = {
        let signed = sign_jwt(
            &json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": now + 60 }),
        );
        let mut parts: Vec<&str> = signed.split('.').collect();
        let none = base64_url(r#"{"alg":"none"}"#);
        parts[0] = &none;
        format!("{}.{}.", parts[0], parts[1])
    };
    let (st, body) = s.jwt_login(&unsigned).await;
    assert_error(st, &body, 400, "invalid_grant", "invalid assertion");
    // A tampered payload fails the signature.
    let signed =
        sign_jwt(&json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": now + 61 }));
    let parts: Vec<&str> = signed.split('.').collect();
    let forged = base64_url(&json!({ "iss": INTEGRATION_ID, "sub": "integration@acme.test", "aud": s.url, "exp": now + 61 }).to_string());
    let (st, body) = s
        .jwt_login(&format!("{}.{forged}.{}", parts[0], parts[2]))
        .await;
    assert_error(st, &body, 400, "invalid_grant", "invalid assertion");
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn a_replayed_assertion_is_refused() {
    let s = TestServer::start().await;
    let assertion = sign_jwt(&claims(&s, ALICE));
    assert_eq!(s.jwt_login(&assertion).await.0, 200);
    let (st, body) = s.jwt_login(&assertion).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_grant",
        "expired authorization code",
    );
    // A refused assertion is not spent: fix the cause (approval) and it works.
    let for_self_service = sign_jwt(
        &json!({ "iss": SELF_SERVICE_ID, "sub": BOB, "aud": s.url, "exp": now_secs() + 120 }),
    );
    let (st, body) = s.jwt_login(&for_self_service).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_grant",
        "user hasn't approved this consumer",
    );
    admin_seen(
        &database_url(s.dir.path()),
        &["app", "approve-user", "Self Service", BOB],
    );
    let (st, body) = s.jwt_login(&for_self_service).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["scope"], "api");
}

#[tokio::test]
async fn a_replay_spelled_differently_is_still_a_replay() {
    // Padding on the signature (which clients may send and the server strips) or space around
    // the assertion changes its text, not the assertion: it must not buy a second session.
    let s = TestServer::start().await;
    let assertion = sign_jwt(&claims(&s, ALICE));
    assert_eq!(s.jwt_login(&assertion).await.0, 200);
    for respelled in [
        format!("{assertion}="),
        format!("{assertion}=="),
        format!(" {assertion}\n"),
    ] {
        let (st, body) = s.jwt_login(&respelled).await;
        assert_error(
            st,
            &body,
            400,
            "invalid_grant",
            "expired authorization code",
        );
    }
}

#[tokio::test]
async fn concurrent_replays_let_exactly_one_through() {
    let s = std::sync::Arc::new(TestServer::start().await);
    let assertion = sign_jwt(&claims(&s, ALICE));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (s, a) = (s.clone(), assertion.clone());
        tasks.push(tokio::spawn(async move { s.jwt_login(&a).await.0 }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn salesforce_audiences_can_be_turned_off() {
    let s = TestServer::start_with(CONFIG, |o| o.accept_salesforce_audiences = false).await;
    let c = json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": "https://login.salesforce.com", "exp": now_secs() + 60 });
    let (st, body) = s.jwt_login(&sign_jwt(&c)).await;
    assert_error(st, &body, 400, "invalid_grant", "audience is invalid");
}

#[tokio::test]
async fn approve_profile_admits_a_profile() {
    let s = TestServer::start().await;
    let c = json!({ "iss": INTEGRATION_ID, "sub": BOB, "aud": s.url, "exp": now_secs() + 60 });
    assert_eq!(s.jwt_login(&sign_jwt(&c)).await.0, 400);
    admin_seen(
        &database_url(s.dir.path()),
        &["app", "approve-profile", "Integration", "Standard User"],
    );
    let (st, body) = s.jwt_login(&sign_jwt(&c)).await;
    assert_eq!(st, 200, "{body}");
}

#[tokio::test]
async fn an_assertion_whose_nbf_is_a_day_ahead_is_refused() {
    let s = TestServer::start().await;
    let now = now_secs();
    let mut c = claims(&s, ALICE);
    c["nbf"] = json!(now + 86_400);
    let (st, body) = s.jwt_login(&sign_jwt(&c)).await;
    assert_error(st, &body, 400, "invalid_grant", "invalid assertion");
    // Control: valid from now.
    c["nbf"] = json!(now);
    let (st, body) = s.jwt_login(&sign_jwt(&c)).await;
    assert_eq!(st, 200, "{body}");
}
