//! A frozen user cannot log in by any grant, and is answered as a failed login (the reason,
//! "frozen", is the log's); a blocked app gets no tokens: `OAUTH_APP_BLOCKED`, after its
//! client has authenticated. Each refusal beside its control on the same world.

use idforce_core::ports::Approvals;

use crate::world::*;

fn password_form(secret: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "password"),
        ("client_id", "3MVG9grants"),
        ("client_secret", secret),
        ("username", "alice@acme.test"),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .chain([("password", format!("{PASSWORD}{SECURITY_TOKEN}"))])
    .collect()
}

async fn password(
    w: &World,
    secret: &str,
) -> Result<idforce_core::wire::TokenResponse, idforce_core::OAuthError> {
    let form = password_form(secret);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    w.token(&pairs).await
}

#[tokio::test]
async fn a_frozen_user_is_refused_as_a_failed_login_by_every_grant() {
    let mut w = World::new().await;
    w.store
        .approve(&w.alice.id, &w.app.id, &w.app.scopes, w.now)
        .await
        .unwrap();
    // Controls: each grant works for her.
    password(&w, SECRET).await.unwrap();
    client_credentials(&w).await.unwrap();
    jwt_bearer(&w).await.unwrap();

    w.change_alice(|a| a.frozen = true).await;
    let r = password(&w, SECRET).await;
    assert!(cause_of(password(&w, SECRET).await).contains("is frozen"));
    refused(r, 400, "invalid_grant", "authentication failure");
    refused(
        client_credentials(&w).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    refused(
        jwt_bearer(&w).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    // A wrong password is still a wrong password (nothing tells a guesser she is frozen).
    let mut wrong = password_form(SECRET);
    wrong[4].1 = "guess".into();
    let pairs: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = w.token(&pairs).await;
    assert!(cause_of(w.token(&pairs).await).contains("a wrong password"));
    refused(r, 400, "invalid_grant", "authentication failure");
    // Deactivation wins over freezing, with Salesforce's own answer for it.
    w.change_alice(|a| a.active = false).await;
    refused(
        password(&w, SECRET).await,
        400,
        "invalid_grant",
        "inactive user",
    );

    w.change_alice(|a| {
        a.active = true;
        a.frozen = false;
    })
    .await;
    password(&w, SECRET).await.unwrap();
}

#[tokio::test]
async fn a_blocked_app_gets_no_tokens_once_it_has_authenticated() {
    let mut w = World::new().await;
    w.store
        .approve(&w.alice.id, &w.app.id, &w.app.scopes, w.now)
        .await
        .unwrap();
    w.change_app(|a| a.blocked = true).await;
    for r in [
        password(&w, SECRET).await,
        client_credentials(&w).await,
        jwt_bearer(&w).await,
    ] {
        refused(r, 400, "OAUTH_APP_BLOCKED", "this app is blocked by admin");
    }
    // A client that cannot authenticate learns nothing of the block.
    refused(
        password(&w, "wrong").await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    w.change_app(|a| a.blocked = false).await;
    password(&w, SECRET).await.unwrap();
    client_credentials(&w).await.unwrap();
    jwt_bearer(&w).await.unwrap();
}

/// A session issued before a freeze or a block (a node whose cache had not seen it yet) is
/// refused where it is used.
#[tokio::test]
async fn sessions_of_frozen_users_and_blocked_apps_are_not_allowed() {
    use idforce_core::ports::Sessions;
    let mut w = World::new().await;
    let token = client_credentials(&w).await.unwrap().access_token;
    let session = w
        .store
        .session(&w.hasher.session_key(&token))
        .await
        .unwrap()
        .unwrap();
    let allowed = |w: &World| {
        let (store, session) = (w.store.clone(), session.clone());
        async move {
            idforce_core::session::still_allowed(&store, &session)
                .await
                .unwrap()
        }
    };
    assert!(allowed(&w).await, "control");
    w.change_alice(|a| a.frozen = true).await;
    assert!(!allowed(&w).await, "frozen");
    w.change_alice(|a| a.frozen = false).await;
    w.change_app(|a| a.blocked = true).await;
    assert!(!allowed(&w).await, "blocked");
    w.change_app(|a| a.blocked = false).await;
    assert!(allowed(&w).await, "both undone");
}

/// A code issued before a freeze, and a refresh token held across one: both refused while the
/// user is frozen, as failed logins; the refresh token works again once unfrozen. A blocked
/// app's refresh is refused as the block's.
#[tokio::test]
async fn codes_and_refresh_tokens_follow_the_freeze_and_the_block() {
    use idforce_core::model::{AUTH_CODE_LIFETIME_MS, AuthCode};
    use idforce_core::ports::Codes;
    use idforce_core::scope::Scopes;
    let mut w = World::new().await;
    let issue_code = |w: &World, code: &str| {
        let code = AuthCode {
            digest: w.hasher.digest(code),
            org_id: w.org.id,
            user_id: w.alice.id,
            app_id: w.app.id,
            redirect_uri: "https://app.test/cb".into(),
            scopes: Scopes::parse("api refresh_token").unwrap(),
            code_challenge: None,
            nonce: None,
            auth_time: w.now - 1_000,
            issued_at: w.now,
            expires_at: w.now + AUTH_CODE_LIFETIME_MS,
        };
        let store = w.store.clone();
        async move { store.insert_code(&code).await.unwrap() }
    };
    // Control: a code redeemed, its refresh token refreshes.
    issue_code(&w, "aPrxfirst").await;
    let rt = redeem_code(&w, "aPrxfirst")
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    refresh_with(&w, &rt).await.unwrap();

    issue_code(&w, "aPrxsecond").await;
    w.change_alice(|a| a.frozen = true).await;
    let r = redeem_code(&w, "aPrxsecond").await;
    refused(r, 400, "invalid_grant", "authentication failure");
    let r = refresh_with(&w, &rt).await;
    assert!(cause_of(refresh_with(&w, &rt).await).contains("is frozen"));
    refused(r, 400, "invalid_grant", "authentication failure");
    w.change_alice(|a| a.frozen = false).await;
    refresh_with(&w, &rt).await.unwrap();

    w.change_app(|a| a.blocked = true).await;
    refused(
        refresh_with(&w, &rt).await,
        400,
        "OAUTH_APP_BLOCKED",
        "this app is blocked by admin",
    );
}

async fn redeem_code(
    w: &World,
    code: &str,
) -> Result<idforce_core::wire::TokenResponse, idforce_core::OAuthError> {
    w.token(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", "3MVG9grants"),
        ("client_secret", SECRET),
        ("redirect_uri", "https://app.test/cb"),
    ])
    .await
}

async fn refresh_with(
    w: &World,
    token: &str,
) -> Result<idforce_core::wire::TokenResponse, idforce_core::OAuthError> {
    w.token(&[
        ("grant_type", "refresh_token"),
        ("client_id", "3MVG9grants"),
        ("client_secret", SECRET),
        ("refresh_token", token),
    ])
    .await
}
