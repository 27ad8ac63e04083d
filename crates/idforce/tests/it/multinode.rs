//! Two `idforce serve` processes on one PostgreSQL database behave as one service (issue:
//! PostgreSQL backend). Needs PostgreSQL: skipped loudly without it, a failure under CI=true.

use serde_json::Value;

use crate::browser::{Browser, authorize_url};
use crate::helpers::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn token(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = client()
        .post(format!("{url}/services/oauth2/token"))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database() {
    let db = match idforce_store::testing::fresh_postgres_schema().await {
        Ok(url) => url,
        Err(why) if idforce_store::testing::strict() => panic!("{why}"),
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let dir = workdir(CONFIG);
    // Both start at once with the same config file.
    let start = |dir: std::path::PathBuf, db: String| {
        std::thread::spawn(move || {
            spawn_process(
                &dir,
                &["--config", "idforce.toml", "--database", &db],
                &[("IDFORCE_SECRET", POSTGRES_SECRET)],
            )
        })
    };
    let (ta, tb) = (
        start(dir.path().to_owned(), db.clone()),
        start(dir.path().to_owned(), db.clone()),
    );
    let (a, b) = (ta.join().unwrap(), tb.join().unwrap());

    // Each org, user and app exists once.
    let orgs = admin(&db, &["org", "list"]);
    assert_eq!(orgs.as_array().unwrap().len(), 2, "{orgs}");
    assert_eq!(admin(&db, &["user", "list"]).as_array().unwrap().len(), 5);
    assert_eq!(admin(&db, &["app", "list"]).as_array().unwrap().len(), 6);

    // One key set: both nodes publish the same JWKS.
    let jwks = |url: String| async move {
        client()
            .get(format!("{url}/id/keys"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(jwks(a.url.clone()).await, jwks(b.url.clone()).await);

    // A code issued on A is redeemed on B, and a second redemption on A fails.
    let mut browser = Browser::at(&a.url);
    let page = browser
        .authorize(
            &authorize_url(
                ROTATING_ID,
                "https://rotating.example/cb",
                &[("code_challenge", CHALLENGE)],
            ),
            ALICE,
            ALICE_PASSWORD,
        )
        .await;
    let page = browser.decide(&page, true).await;
    let code = page.redirect_params()["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", ROTATING_ID),
        ("client_secret", ROTATING_SECRET),
        ("redirect_uri", "https://rotating.example/cb"),
        ("code_verifier", VERIFIER),
    ];
    let (st, tokens) = token(&b.url, &form).await;
    assert_eq!(st, 200, "{tokens}");
    let (st, e) = token(&a.url, &form).await;
    assert_error(st, &e, 400, "invalid_grant", "expired authorization code");
    // ...which also revoked what B issued (same family, same store).
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (st, _) = token(
        &b.url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", ROTATING_ID),
            ("refresh_token", rt),
        ],
    )
    .await;
    assert_eq!(st, 400);

    // A refresh token rotated on A is caught as reused on B.
    let mut browser = Browser::at(&b.url);
    let page = browser
        .authorize(
            &authorize_url(
                ROTATING_ID,
                "https://rotating.example/cb",
                &[("code_challenge", CHALLENGE)],
            ),
            ALICE,
            ALICE_PASSWORD,
        )
        .await;
    let code = page.redirect_params()["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", ROTATING_ID),
        ("client_secret", ROTATING_SECRET),
        ("redirect_uri", "https://rotating.example/cb"),
        ("code_verifier", VERIFIER),
    ];
    let (_, tokens) = token(&b.url, &form).await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (st, rotated) = token(
        &a.url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", ROTATING_ID),
            ("refresh_token", &first),
        ],
    )
    .await;
    assert_eq!(st, 200, "{rotated}");
    let (st, e) = token(
        &b.url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", ROTATING_ID),
            ("refresh_token", &first),
        ],
    )
    .await;
    assert_error(st, &e, 400, "invalid_grant", "expired access/refresh token");
    let (st, _) = token(
        &a.url,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", ROTATING_ID),
            ("refresh_token", rotated["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(st, 400, "the whole family ended");

    // A token revoked on B is inactive on A at once: nodes cache no sessions.
    let (_, login) = token(
        &a.url,
        &[
            ("grant_type", "password"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    let at = login["access_token"].as_str().unwrap();
    let r = client()
        .post(format!("{}/services/oauth2/revoke", b.url))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(login["id"].as_str().unwrap().replace(&b.url, &a.url))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The same hashing key: what A issued, B introspects.
    let (_, login) = token(
        &a.url,
        &[
            ("grant_type", "password"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ],
    )
    .await;
    let i: Value = client()
        .post(format!("{}/services/oauth2/introspect", b.url))
        .form(&[
            ("token", login["access_token"].as_str().unwrap()),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(i["active"], true);

    // A JWT bearer assertion spent on A is a replay on B, with no pause between; a fresh
    // one is taken by B (the control).
    let jwt = |n: u32| {
        sign_jwt(&serde_json::json!({
            "iss": INTEGRATION_ID, "sub": ALICE, "aud": "https://login.salesforce.com",
            "exp": now_secs() + 180, "jti": format!("multinode-{n}"),
        }))
    };
    fn jwt_bearer(assertion: &str) -> [(&str, &str); 2] {
        [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", assertion),
        ]
    }
    let (spent, fresh) = (jwt(1), jwt(2));
    let (st, body) = token(&a.url, &jwt_bearer(&spent)).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = token(&b.url, &jwt_bearer(&spent)).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_grant",
        "expired authorization code",
    );
    let (st, body) = token(&b.url, &jwt_bearer(&fresh)).await;
    assert_eq!(st, 200, "{body}");

    // Guesses on both nodes count toward one lockout (3 checks in this config), even in flight
    // together: the checks are reserved in the database.
    let wrong = [
        ("grant_type", "password"),
        ("client_id", INTEGRATION_ID),
        ("client_secret", INTEGRATION_SECRET),
        ("username", ALICE),
        ("password", "wrong"),
    ];
    // The three in flight at once, two on A and one on B; then the right password on B.
    let guesses: Vec<_> = [&a.url, &b.url, &a.url]
        .into_iter()
        .map(|node| {
            let node = node.clone();
            tokio::spawn(async move { token(&node, &wrong).await.0 })
        })
        .collect();
    // The right password must come after all three have reserved their checks (a fixed pause
    // was too short on a busy machine): the store shows three failures counted, or the lockout.
    reservations_made(&db, 3).await;
    let right = [
        ("grant_type", "password"),
        ("client_id", INTEGRATION_ID),
        ("client_secret", INTEGRATION_SECRET),
        ("username", ALICE),
        ("password", ALICE_PASSWORD),
    ];
    let (st, e) = token(&b.url, &right).await;
    assert_error(st, &e, 400, "invalid_grant", "authentication failure");
    for g in guesses {
        assert_eq!(g.await.unwrap(), 400);
    }
    for node in [&a.url, &b.url] {
        let (st, e) = token(node, &right).await;
        assert_error(st, &e, 400, "invalid_grant", "authentication failure");
    }
    drop((a, b));
}

/// Waits until `n` login checks of ALICE are reserved in the database (or she is locked),
/// read through a store of the test's own, without the nodes' caches.
async fn reservations_made(db: &str, n: u32) {
    use idforce_core::ports::Directory;
    let settings = idforce_store::StoreSettings {
        directory_cache_ttl: Some(std::time::Duration::ZERO),
        ..Default::default()
    };
    let store = idforce_store::PgStore::open(db, &settings).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let user = store.user_by_username(ALICE).await.unwrap().unwrap();
        if user.failed_logins >= n || user.is_locked(now_secs() * 1000) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the guesses never reserved their checks: {user:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// `[server] login_rate_limit` is one count per user across nodes: logins alternating between
/// two nodes on one database are refused once their sum reaches the limit, on either node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_rate_limit_is_shared_by_the_nodes() {
    let db = match idforce_store::testing::fresh_postgres_schema().await {
        Ok(url) => url,
        Err(why) if idforce_store::testing::strict() => panic!("{why}"),
        Err(why) => {
            eprintln!("SKIPPED: {why}");
            return;
        }
    };
    let config = CONFIG.replacen("[server]\n", "[server]\nlogin_rate_limit = \"4/h\"\n", 1);
    let dir = workdir(&config);
    let a = spawn_process(
        dir.path(),
        &["--config", "idforce.toml", "--database", &db],
        &[("IDFORCE_SECRET", POSTGRES_SECRET)],
    );
    let b = spawn_process(
        dir.path(),
        &["--config", "idforce.toml", "--database", &db],
        &[("IDFORCE_SECRET", POSTGRES_SECRET)],
    );
    for (i, url) in [&a.url, &b.url, &a.url, &b.url].into_iter().enumerate() {
        let (st, t) = token(url, &password_form(ALICE, ALICE_PASSWORD)).await;
        assert_eq!(st, 200, "login {i}: {t}");
    }
    for url in [&a.url, &b.url] {
        let (st, e) = token(url, &password_form(ALICE, ALICE_PASSWORD)).await;
        assert_error(st, &e, 400, "invalid_grant", "login rate exceeded");
    }
    // Control: another user, on either node.
    let (st, t) = token(
        &b.url,
        &password_form("integration@acme.test", "Integration2026!"),
    )
    .await;
    assert_eq!(st, 200, "{t}");
}
