//! Username-password flow (spec §3.4) and its errors (spec §6.1), including lockout.

use aws_lc_rs::hmac;
use base64::Engine;

use crate::helpers::*;

#[tokio::test]
async fn password_flow_answers_like_salesforce() {
    let s = TestServer::start().await;
    let r = s
        .post_form(
            "/services/oauth2/token",
            &[
                ("grant_type", "password"),
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["cache-control"],
        "no-cache,must-revalidate,max-age=0,no-store,private"
    );
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let body: serde_json::Value = r.json().await.unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "signature",
            "instance_url",
            "id",
            "token_type",
            "issued_at"
        ]
    );
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 112);
    assert!(
        token.starts_with(&format!("{ORG_ID_15}!AQ"))
            || token.starts_with(&format!("{ORG_ID_15}!AR")),
        "{token}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["instance_url"], s.url.as_str());
    let id = body["id"].as_str().unwrap();
    let parts: Vec<&str> = id.rsplitn(3, '/').collect();
    assert_eq!(parts[1], "00D000000000001EAA");
    assert!(parts[0].starts_with("005") && parts[0].len() == 18);
    assert!(id.starts_with(&format!("{}/id/", s.url)));
    let issued_at = body["issued_at"].as_str().unwrap();
    assert!(issued_at.parse::<i64>().unwrap() > 1_600_000_000_000);
    // signature = base64(HMAC-SHA256(client_secret, id + issued_at))
    let key = hmac::Key::new(hmac::HMAC_SHA256, INTEGRATION_SECRET.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD
        .encode(hmac::sign(&key, format!("{id}{issued_at}").as_bytes()));
    assert_eq!(body["signature"], expected.as_str());
}

#[tokio::test]
async fn security_token_is_appended_to_the_password() {
    let s = TestServer::start().await;
    let with_token = format!("{BOB_PASSWORD}{BOB_TOKEN}");
    let (st, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("username", BOB),
            ("password", &with_token),
        ])
        .await;
    assert_eq!(st, 200, "{body}");
    for wrong in [
        BOB_PASSWORD.to_owned(),
        format!("{BOB_PASSWORD}WRONGTOKENX"),
        format!("x{BOB_PASSWORD}{BOB_TOKEN}"),
    ] {
        let (st, b) = s
            .token(&[
                ("grant_type", "password"),
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("username", BOB),
                ("password", &wrong),
            ])
            .await;
        // Bob is not admin-approved for Integration, but authentication fails first.
        assert_error(st, &b, 400, "invalid_grant", "authentication failure");
    }
}

#[tokio::test]
async fn password_flow_errors() {
    let s = TestServer::start().await;
    let cases: &[(&[(&str, &str)], u16, &str, &str)] = &[
        (
            &[
                ("client_id", "nope"),
                ("client_secret", "x"),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
            ],
            400,
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            &[
                ("client_secret", INTEGRATION_SECRET),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
            ],
            400,
            "invalid_client_id",
            "client identifier invalid",
        ),
        (
            &[
                ("client_id", INTEGRATION_ID),
                ("client_secret", "wrong"),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
            ],
            400,
            "invalid_client",
            "invalid client credentials",
        ),
        (
            &[
                ("client_id", INTEGRATION_ID),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
            ],
            400,
            "invalid_client",
            "invalid client credentials",
        ),
        (
            &[
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("username", "nobody@acme.test"),
                ("password", ALICE_PASSWORD),
            ],
            400,
            "invalid_grant",
            "authentication failure",
        ),
        (
            &[
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("username", ALICE),
            ],
            400,
            "invalid_grant",
            "authentication failure",
        ),
        (
            &[
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("username", "carol@acme.test"),
                ("password", "Autumn2026!"),
            ],
            400,
            "invalid_grant",
            "inactive user",
        ),
        (
            &[
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("username", BOB),
                ("password", &format!("{BOB_PASSWORD}{BOB_TOKEN}")),
            ],
            400,
            "invalid_app_access",
            "user is not admin approved to access this app",
        ),
    ];
    for (fields, status, error, description) in cases {
        let mut form = vec![("grant_type", "password")];
        form.extend_from_slice(fields);
        let (st, body) = s.token(&form).await;
        assert_error(st, &body, *status, error, description);
    }
}

#[tokio::test]
async fn usernames_are_case_insensitive() {
    let s = TestServer::start().await;
    s.password_login("ALICE@Acme.Test", ALICE_PASSWORD).await;
}

#[tokio::test]
async fn basic_auth_failure_is_401_with_a_challenge() {
    let s = TestServer::start().await;
    let r = s
        .http
        .post(s.at("/services/oauth2/token"))
        .basic_auth(INTEGRATION_ID, Some("wrong"))
        .form(&[
            ("grant_type", "password"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"idforce\"");
    let b: serde_json::Value = r.json().await.unwrap();
    assert_error(401, &b, 401, "invalid_client", "invalid client credentials");

    let ok = s
        .http
        .post(s.at("/services/oauth2/token"))
        .basic_auth(INTEGRATION_ID, Some(INTEGRATION_SECRET))
        .form(&[
            ("grant_type", "password"),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

async fn attempt(s: &TestServer, password: &str) -> (u16, serde_json::Value) {
    s.token(&[
        ("grant_type", "password"),
        ("client_id", INTEGRATION_ID),
        ("client_secret", INTEGRATION_SECRET),
        ("username", ALICE),
        ("password", password),
    ])
    .await
}

#[tokio::test]
async fn lockout_after_failed_attempts_survives_restart_and_expires() {
    let s = TestServer::start().await;
    for _ in 0..3 {
        let (st, b) = attempt(&s, "wrong").await;
        assert_error(st, &b, 400, "invalid_grant", "authentication failure");
    }
    // Locked: even the right password fails.
    let (st, b) = attempt(&s, ALICE_PASSWORD).await;
    assert_error(st, &b, 400, "invalid_grant", "authentication failure");

    let dir = s.stop().await;
    let s = TestServer::start_in(dir, Some(CONFIG), |_| {}).await;
    let (st, b) = attempt(&s, ALICE_PASSWORD).await;
    assert_error(st, &b, 400, "invalid_grant", "authentication failure");

    s.clock.advance_secs(15 * 60 + 1);
    let (st, b) = attempt(&s, ALICE_PASSWORD).await;
    assert_eq!(st, 200, "{b}");
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let s = TestServer::start().await;
    for _ in 0..2 {
        attempt(&s, "wrong").await;
    }
    s.password_login(ALICE, ALICE_PASSWORD).await;
    for _ in 0..2 {
        attempt(&s, "wrong").await;
    }
    s.password_login(ALICE, ALICE_PASSWORD).await;
}

#[tokio::test]
async fn unlock_command_clears_a_lockout() {
    let s = TestServer::start().await;
    for _ in 0..3 {
        attempt(&s, "wrong").await;
    }
    let db = database_url(s.dir.path());
    let shown = admin(&db, &["user", "show", ALICE]);
    assert_eq!(shown["locked"], true);
    admin(&db, &["user", "unlock", ALICE]);
    s.password_login(ALICE, ALICE_PASSWORD).await;
}
