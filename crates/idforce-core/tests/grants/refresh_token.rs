//! Refresh token flow (spec §3.5, §10): the app's policy on a fixed clock, rotation with
//! reuse detection, and the originally granted scopes.

use idforce_core::model::{AUTH_CODE_LIFETIME_MS, AuthCode, RefreshTokenPolicy};
use idforce_core::ports::Codes;
use idforce_core::scope::Scopes;
use idforce_core::wire::TokenResponse;

use crate::world::*;

/// A grant through a code, as a web app would get one: its tokens.
pub(crate) async fn grant(w: &World, scopes: &str) -> TokenResponse {
    let code = format!("aPrx{}", w.now);
    w.store
        .insert_code(&AuthCode {
            digest: w.hasher.digest(&code),
            org_id: w.org.id,
            user_id: w.alice.id,
            app_id: w.app.id,
            redirect_uri: "https://app.test/cb".into(),
            scopes: Scopes::parse(scopes).unwrap(),
            code_challenge: None,
            nonce: None,
            auth_time: w.now - 1_000,
            issued_at: w.now,
            expires_at: w.now + AUTH_CODE_LIFETIME_MS,
        })
        .await
        .unwrap();
    w.token(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("client_id", "3MVG9grants"),
        ("client_secret", SECRET),
        ("redirect_uri", "https://app.test/cb"),
    ])
    .await
    .unwrap()
}

pub(crate) async fn refresh(
    w: &World,
    token: &str,
    secret: Option<&str>,
) -> Result<TokenResponse, idforce_core::OAuthError> {
    let mut f = vec![
        ("grant_type", "refresh_token"),
        ("client_id", "3MVG9grants"),
        ("refresh_token", token),
    ];
    if let Some(secret) = secret {
        f.push(("client_secret", secret));
    }
    w.token(&f).await
}

fn expired<T: std::fmt::Debug>(r: Result<T, idforce_core::OAuthError>) {
    refused(r, 400, "invalid_grant", "expired access/refresh token");
}

#[tokio::test]
async fn a_refresh_starts_a_session_with_the_original_scopes() {
    let w = World::new().await;
    let first = grant(&w, "api refresh_token openid").await;
    let rt = first.refresh_token.unwrap();
    let r = refresh(&w, &rt, Some(SECRET)).await.unwrap();
    assert!(w.live(&r.access_token).await);
    assert_eq!(r.refresh_token, None, "no rotation: the same token goes on");
    assert_eq!(r.scope.as_deref(), Some("api refresh_token openid"));
    assert!(r.id_token.is_some(), "openid was granted");
    assert!(w.refresh_live(&rt).await);
}

#[tokio::test]
async fn client_and_token_errors() {
    let mut w = World::new().await;
    let rt = grant(&w, "api refresh_token").await.refresh_token.unwrap();
    refused(
        refresh(&w, &rt, None).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    refused(
        refresh(&w, &rt, Some("wrong")).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    expired(refresh(&w, "5Aep861unknown", Some(SECRET)).await);
    expired(
        w.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
        ])
        .await,
    );
    w.change_app(|a| a.require_secret_for_refresh_token_flow = false)
        .await;
    assert!(
        refresh(&w, &rt, None).await.is_ok(),
        "the app waives the secret"
    );
    refused(
        refresh(&w, &rt, Some("wrong")).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
}

#[tokio::test]
async fn another_apps_token_is_expired_for_this_one() {
    let w = World::new().await;
    let rt = grant(&w, "api refresh_token").await.refresh_token.unwrap();
    let other = idforce_core::model::ConnectedApp {
        id: w.next_id(idforce_core::sfid::prefix::CONNECTED_APP).await,
        client_id: "3MVG9other".into(),
        name: "Other".into(),
        ..w.app.clone()
    };
    idforce_store::Accounts::save_app(&w.store, &other)
        .await
        .unwrap();
    expired(
        w.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "3MVG9other"),
            ("client_secret", SECRET),
            ("refresh_token", &rt),
        ])
        .await,
    );
}

#[tokio::test]
async fn policies_on_the_clock() {
    for (policy, ok_after, expired_after) in [
        (RefreshTokenPolicy::ExpireAfter(3600), 3599, 3600),
        (RefreshTokenPolicy::ExpireIfUnused(600), 599, 600),
    ] {
        let mut w = World::new().await;
        w.change_app(|a| a.refresh_token_policy = policy).await;
        let rt = grant(&w, "api refresh_token").await.refresh_token.unwrap();
        w.advance_secs(ok_after);
        assert!(refresh(&w, &rt, Some(SECRET)).await.is_ok(), "{policy}");
        // An unused-window restarts with the use; an absolute lifetime does not.
        w.advance_secs(expired_after - ok_after);
        let r = refresh(&w, &rt, Some(SECRET)).await;
        match policy {
            RefreshTokenPolicy::ExpireAfter(_) => expired(r),
            _ => assert!(r.is_ok(), "{policy}: used {ok_after}s in, so not idle yet"),
        }
        w.advance_secs(expired_after);
        expired(refresh(&w, &rt, Some(SECRET)).await);
    }
    let mut w = World::new().await;
    w.change_app(|a| a.refresh_token_policy = RefreshTokenPolicy::Immediately)
        .await;
    let rt = grant(&w, "api refresh_token").await.refresh_token.unwrap();
    expired(refresh(&w, &rt, Some(SECRET)).await);
}

#[tokio::test]
async fn rotation_hands_out_a_successor_and_a_reused_token_ends_the_family() {
    let mut w = World::new().await;
    w.change_app(|a| a.rotate_refresh_tokens = true).await;
    let first = grant(&w, "api refresh_token").await;
    let rt1 = first.refresh_token.clone().unwrap();
    let r2 = refresh(&w, &rt1, Some(SECRET)).await.unwrap();
    let rt2 = r2.refresh_token.clone().unwrap();
    assert_ne!(rt1, rt2);
    assert!(!w.refresh_live(&rt1).await, "rotated away");
    assert!(w.refresh_live(&rt2).await);
    // The old one comes back: copied. Everything of the family ends.
    expired(refresh(&w, &rt1, Some(SECRET)).await);
    expired(refresh(&w, &rt2, Some(SECRET)).await);
    for at in [&first.access_token, &r2.access_token] {
        assert!(!w.live(at).await);
    }
}

#[tokio::test]
async fn revoked_tokens_and_deactivated_users_get_nothing() {
    let mut w = World::new().await;
    let t = grant(&w, "api refresh_token").await;
    let rt = t.refresh_token.unwrap();
    w.change_alice(|u| u.active = false).await;
    refused(
        refresh(&w, &rt, Some(SECRET)).await,
        400,
        "invalid_grant",
        "inactive user",
    );
    w.change_alice(|u| u.active = true).await;
    let family = {
        use idforce_core::ports::RefreshTokens;
        w.store
            .refresh_token(&w.hasher.digest(&rt))
            .await
            .unwrap()
            .unwrap()
            .family
    };
    idforce_core::ports::RefreshTokens::revoke_family(&w.store, &family, w.now)
        .await
        .unwrap();
    expired(refresh(&w, &rt, Some(SECRET)).await);
}

#[tokio::test]
async fn a_sixth_approval_revokes_the_oldest() {
    let mut w = World::new().await;
    assert_eq!(w.app.max_approvals_per_user, 5);
    let mut grants = Vec::new();
    for _ in 0..5 {
        grants.push(grant(&w, "api refresh_token").await);
        w.advance_secs(1);
    }
    // Five: every one still live (the control).
    for g in &grants {
        assert!(w.refresh_live(g.refresh_token.as_deref().unwrap()).await);
        assert!(w.live(&g.access_token).await);
    }
    // The sixth: the first approval ends, with its session; the other four stay.
    let sixth = grant(&w, "api refresh_token").await;
    assert!(
        w.refresh_live(sixth.refresh_token.as_deref().unwrap())
            .await
    );
    let oldest = &grants[0];
    assert!(
        !w.refresh_live(oldest.refresh_token.as_deref().unwrap())
            .await
    );
    assert!(!w.live(&oldest.access_token).await);
    for g in &grants[1..] {
        assert!(w.refresh_live(g.refresh_token.as_deref().unwrap()).await);
    }
    let r = w
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
            ("refresh_token", oldest.refresh_token.as_deref().unwrap()),
        ])
        .await;
    refused(r, 400, "invalid_grant", "expired access/refresh token");

    // A grant without a refresh token is no approval; a smaller limit trims at the next one.
    w.advance_secs(1);
    grant(&w, "api").await;
    assert!(
        w.refresh_live(grants[1].refresh_token.as_deref().unwrap())
            .await
    );
    w.change_app(|a| a.max_approvals_per_user = 2).await;
    w.advance_secs(1);
    let last = grant(&w, "api refresh_token").await;
    let live: Vec<bool> = {
        let mut v = Vec::new();
        for g in grants[1..].iter().chain([&sixth, &last]) {
            v.push(w.refresh_live(g.refresh_token.as_deref().unwrap()).await);
        }
        v
    };
    assert_eq!(live, [false, false, false, false, true, true]);
}
