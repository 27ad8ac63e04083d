//! Client credentials flow (spec §3.7).

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn client_credentials_with_basic_or_body() {
    let s = TestServer::start().await;
    let r = s
        .http
        .post(s.at("/services/oauth2/token"))
        .basic_auth(INTEGRATION_ID, Some(INTEGRATION_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    // Never full, web or refresh_token.
    assert_eq!(body["scope"], "api openid id");
    assert!(body["signature"].is_string() && body["issued_at"].is_string());
    let id = body["id"].as_str().unwrap();
    let me = admin(
        &database_url(s.dir.path()),
        &["user", "show", "integration@acme.test"],
    );
    assert!(id.ends_with(me["id"].as_str().unwrap()), "{id}");

    let (st, body) = s
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            ("scope", "api"),
        ])
        .await;
    assert_eq!((st, body["scope"].as_str()), (200, Some("api")));
}

#[tokio::test]
async fn client_credentials_errors() {
    let s = TestServer::start().await;
    let cases: &[(&[(&str, &str)], &str, &str)] = &[
        (
            &[("client_id", INTEGRATION_ID), ("client_secret", "bad")],
            "invalid_client",
            "invalid client credentials",
        ),
        (
            &[("client_id", INTEGRATION_ID)],
            "invalid_client",
            "invalid client credentials",
        ),
        (
            &[("client_id", "unknown"), ("client_secret", "x")],
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            &[
                ("client_id", NO_RUN_AS_ID),
                ("client_secret", NO_RUN_AS_SECRET),
            ],
            "invalid_grant",
            "no client credentials user enabled",
        ),
        (
            &[
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("scope", "web"),
            ],
            "invalid_scope",
            "the requested scope is not allowed: web",
        ),
        (
            &[
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("scope", "bogus"),
            ],
            "invalid_scope",
            "the requested scope is not allowed: bogus",
        ),
    ];
    for (fields, error, description) in cases {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(fields);
        let (st, body) = s.token(&form).await;
        assert_error(st, &body, 400, error, description);
    }
    // Sent to a Salesforce login host rather than a My Domain.
    let r = s
        .http
        .post(s.at("/services/oauth2/token"))
        .header("host", "login.salesforce.com")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
        ])
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    assert_error(
        st,
        &r.json().await.unwrap(),
        400,
        "invalid_grant",
        "request not supported on this domain",
    );
}

#[tokio::test]
async fn run_as_user_must_be_pre_authorized_and_active() {
    let config = CONFIG.replace(
        "pre_authorized_users = [\"integration@acme.test\"]",
        "pre_authorized_users = []",
    );
    let s = TestServer::start_with(&config, |_| {}).await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", INTEGRATION_ID),
        ("client_secret", INTEGRATION_SECRET),
    ];
    let (st, body) = s.token(&form).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );
    let db = database_url(s.dir.path());
    admin_seen(
        &db,
        &[
            "app",
            "approve-user",
            "Integration",
            "integration@acme.test",
        ],
    );
    assert_eq!(s.token(&form).await.0, 200);
    admin_seen(&db, &["user", "deactivate", "integration@acme.test"]);
    let (st, body) = s.token(&form).await;
    assert_error(st, &body, 400, "invalid_grant", "inactive user");
}
