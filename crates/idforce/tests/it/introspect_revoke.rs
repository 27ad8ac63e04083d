//! Introspection (spec §7) and revocation (spec §6.3, §9).

use serde_json::{Value, json};

use crate::helpers::*;

async fn introspect(s: &TestServer, token: &str, id: &str, secret: &str) -> (u16, Value) {
    let r = s
        .post_form(
            "/services/oauth2/introspect",
            &[
                ("token", token),
                ("token_type_hint", "access_token"),
                ("client_id", id),
                ("client_secret", secret),
            ],
        )
        .await;
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn introspection_of_a_live_token() {
    let s = TestServer::start().await;
    let login = s.password_login(ALICE, ALICE_PASSWORD).await;
    let token = login["access_token"].as_str().unwrap();
    let (st, body) = introspect(&s, token, INTEGRATION_ID, INTEGRATION_SECRET).await;
    assert_eq!(st, 200);
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "active",
            "scope",
            "client_id",
            "username",
            "sub",
            "token_type",
            "exp",
            "iat",
            "nbf"
        ]
    );
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], INTEGRATION_ID);
    assert_eq!(body["username"], ALICE);
    assert_eq!(body["sub"], login["id"]);
    assert_eq!(body["token_type"], "access_token");
    assert_eq!(body["scope"], "api web full openid id");
    let (exp, iat) = (body["exp"].as_i64().unwrap(), body["iat"].as_i64().unwrap());
    assert_eq!(exp - iat, 7200);
    assert_eq!(body["nbf"], body["iat"]);
    assert_eq!(
        iat,
        login["issued_at"].as_str().unwrap().parse::<i64>().unwrap() / 1000
    );

    // Basic authentication works as well.
    let r = s
        .http
        .post(s.at("/services/oauth2/introspect"))
        .basic_auth(INTEGRATION_ID, Some(INTEGRATION_SECRET))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["active"], true);
}

#[tokio::test]
async fn apps_see_only_their_own_tokens_unless_allowed_all() {
    let s = TestServer::start().await;
    let token = s.alice_token().await;
    let (_, body) = introspect(&s, &token, SELF_SERVICE_ID, SELF_SERVICE_SECRET).await;
    assert_eq!(body, json!({ "active": false }));
    let (_, body) = introspect(&s, &token, AUDITOR_ID, AUDITOR_SECRET).await;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], INTEGRATION_ID);
    // Introspect-all stops at the org's edge.
    let (_, body) = introspect(&s, &token, GLOBEX_ID, GLOBEX_SECRET).await;
    assert_eq!(body, json!({ "active": false }));
}

#[tokio::test]
async fn introspection_errors_and_inactive_tokens() {
    let s = TestServer::start().await;
    let token = s.alice_token().await;
    let (st, b) = introspect(&s, &token, INTEGRATION_ID, "wrong").await;
    assert_error(st, &b, 400, "invalid_client", "invalid client credentials");
    let (st, b) = introspect(&s, &token, "unknown", "x").await;
    assert_error(
        st,
        &b,
        400,
        "invalid_client_id",
        "client identifier invalid",
    );
    let r = s
        .post_form(
            "/services/oauth2/introspect",
            &[
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
            ],
        )
        .await;
    let st = r.status().as_u16();
    assert_error(
        st,
        &r.json().await.unwrap(),
        400,
        "invalid_request",
        "missing required parameter: token",
    );
    let r = s
        .http
        .get(s.at("/services/oauth2/introspect"))
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    assert_error(
        st,
        &r.json().await.unwrap(),
        400,
        "invalid_request",
        "must use HTTP POST",
    );

    for garbage in ["nonsense", "00D000000000001!AQ", &tamper(&token)] {
        let (st, b) = introspect(&s, garbage, INTEGRATION_ID, INTEGRATION_SECRET).await;
        assert_eq!((st, b), (200, json!({ "active": false })));
    }
    // Expired: past the session timeout.
    s.clock.advance_secs(7201);
    let (_, b) = introspect(&s, &token, INTEGRATION_ID, INTEGRATION_SECRET).await;
    assert_eq!(b, json!({ "active": false }));
}

#[tokio::test]
async fn revoke_by_post_and_by_get() {
    let s = TestServer::start().await;
    let token = s.alice_token().await;
    let r = s
        .post_form("/services/oauth2/revoke", &[("token", &token)])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");
    let (_, b) = introspect(&s, &token, INTEGRATION_ID, INTEGRATION_SECRET).await;
    assert_eq!(b, json!({ "active": false }));
    // Revoked again: the form-encoded error jsforce parses.
    let r = s
        .post_form("/services/oauth2/revoke", &[("token", &token)])
        .await;
    assert_eq!(r.status(), 400);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    assert_eq!(
        r.text().await.unwrap(),
        "error=invalid_token&error_description=invalid+token"
    );

    let login = s.password_login(ALICE, ALICE_PASSWORD).await;
    let other = login["access_token"].as_str().unwrap();
    let r = s
        .http
        .get(s.at("/services/oauth2/revoke"))
        .query(&[("token", other)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .get(login["id"].as_str().unwrap())
        .bearer_auth(other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "Bad_OAuth_Token");
}

#[tokio::test]
async fn revoke_errors_and_jsonp() {
    let s = TestServer::start().await;
    let r = s
        .post_form("/services/oauth2/revoke", &[("token", "garbage")])
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        "error=unsupported_token_type&error_description=this+token+type+is+not+supported"
    );
    let r = s.post_form("/services/oauth2/revoke", &[]).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.text().await.unwrap(),
        "error=invalid_request&error_description=missing+required+parameter%3A+token"
    );

    let token = s.alice_token().await;
    let r = s
        .http
        .get(s.at("/services/oauth2/revoke"))
        .query(&[("token", token.as_str()), ("callback", "done")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "done({})");
    let r = s
        .http
        .get(s.at("/services/oauth2/revoke"))
        .query(&[("token", token.as_str()), ("callback", "done")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        "done({\"error\":\"invalid_token\"})"
    );
}

#[tokio::test]
async fn token_commands_list_and_revoke_sessions() {
    let s = TestServer::start().await;
    let token = s.alice_token().await;
    s.alice_token().await;
    let db = database_url(s.dir.path());
    let list = admin(&db, &["token", "list", "--user", ALICE]);
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&token[16..]),
        "the listing must not show tokens"
    );
    let by_app = admin(&db, &["token", "list", "--app", "Integration"]);
    assert_eq!(by_app.as_array().unwrap().len(), 2);
    assert_eq!(
        admin(&db, &["token", "revoke", "--app", INTEGRATION_ID])["revoked"],
        2
    );
    let (_, b) = introspect(&s, &token, INTEGRATION_ID, INTEGRATION_SECRET).await;
    assert_eq!(b, json!({ "active": false }));
}
