//! Web server flow, token side (spec §3.2): one redemption per code, bound to the app, the
//! redirect URI and the PKCE challenge; a replay ends what the first redemption issued.

use idforce_core::model::{AUTH_CODE_LIFETIME_MS, AuthCode};
use idforce_core::pkce;
use idforce_core::ports::Codes;
use idforce_core::scope::Scopes;

use crate::world::*;

const CALLBACK: &str = "https://app.test/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Issues `code` to Alice for the app, as the authorize endpoint would.
async fn issue(w: &World, code: &str, scopes: &str, challenge: Option<&str>) {
    w.store
        .insert_code(&AuthCode {
            digest: w.hasher.digest(code),
            org_id: w.org.id,
            user_id: w.alice.id,
            app_id: w.app.id,
            redirect_uri: CALLBACK.into(),
            scopes: Scopes::parse(scopes).unwrap(),
            code_challenge: challenge.map(str::to_owned),
            nonce: Some("n-0S6".into()),
            auth_time: w.now - 5_000,
            issued_at: w.now,
            expires_at: w.now + AUTH_CODE_LIFETIME_MS,
        })
        .await
        .unwrap();
}

fn form<'a>(code: &'a str, extra: &[(&'static str, &'a str)]) -> Vec<(&'static str, &'a str)> {
    let mut f = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", "3MVG9grants"),
        ("client_secret", SECRET),
        ("redirect_uri", CALLBACK),
    ];
    f.extend_from_slice(extra);
    f
}

async fn spent(w: &World, code: &str) -> bool {
    w.store
        .code(&w.hasher.digest(code))
        .await
        .unwrap()
        .unwrap()
        .1
}

#[tokio::test]
async fn a_code_buys_a_session_a_refresh_token_and_an_id_token() {
    let w = World::new().await;
    issue(&w, "aPrx1", "api refresh_token openid", None).await;
    let r = w.token(&form("aPrx1", &[])).await.unwrap();
    assert!(w.live(&r.access_token).await);
    assert!(w.refresh_live(r.refresh_token.as_deref().unwrap()).await);
    let id_token = r.id_token.unwrap();
    assert!(id_token.contains(r#""nonce":"n-0S6""#), "{id_token}");
    assert_eq!(r.scope.as_deref(), Some("api refresh_token openid"));
    assert!(spent(&w, "aPrx1").await);
}

#[tokio::test]
async fn without_refresh_scope_there_is_no_refresh_token() {
    let w = World::new().await;
    issue(&w, "aPrx2", "api", None).await;
    let r = w.token(&form("aPrx2", &[])).await.unwrap();
    assert_eq!((r.refresh_token, r.id_token), (None, None));
}

#[tokio::test]
async fn a_replayed_code_is_expired_and_ends_the_first_redemptions_tokens() {
    let w = World::new().await;
    issue(&w, "aPrx3", "api refresh_token", None).await;
    let first = w.token(&form("aPrx3", &[])).await.unwrap();
    refused(
        w.token(&form("aPrx3", &[])).await,
        400,
        "invalid_grant",
        "expired authorization code",
    );
    assert!(!w.live(&first.access_token).await);
    assert!(
        !w.refresh_live(first.refresh_token.as_deref().unwrap())
            .await
    );
}

#[tokio::test]
async fn unknown_missing_and_foreign_codes_are_invalid() {
    let w = World::new().await;
    refused(
        w.token(&form("nope", &[])).await,
        400,
        "invalid_grant",
        "invalid authorization code",
    );
    let missing: Vec<_> = form("x", &[])
        .into_iter()
        .filter(|(k, _)| *k != "code")
        .collect();
    refused(
        w.token(&missing).await,
        400,
        "invalid_grant",
        "invalid authorization code",
    );
    // A code of this app, presented by another app with its own secret.
    issue(&w, "aPrx4", "api", None).await;
    let other = idforce_core::model::ConnectedApp {
        id: w.next_id(idforce_core::sfid::prefix::CONNECTED_APP).await,
        client_id: "3MVG9other".into(),
        name: "Other".into(),
        ..w.app.clone()
    };
    idforce_store::Accounts::save_app(&w.store, &other)
        .await
        .unwrap();
    let mut f = form("aPrx4", &[]);
    f[2].1 = "3MVG9other";
    refused(
        w.token(&f).await,
        400,
        "invalid_grant",
        "invalid authorization code",
    );
    assert!(
        spent(&w, "aPrx4").await,
        "a refused code is spent all the same"
    );
    refused(
        w.token(&form("aPrx4", &[])).await,
        400,
        "invalid_grant",
        "expired authorization code",
    );
}

#[tokio::test]
async fn an_expired_code_is_refused_and_spent() {
    let mut w = World::new().await;
    issue(&w, "aPrx5", "api", None).await;
    w.advance_secs(AUTH_CODE_LIFETIME_MS / 1000);
    refused(
        w.token(&form("aPrx5", &[])).await,
        400,
        "invalid_grant",
        "expired authorization code",
    );
    assert!(spent(&w, "aPrx5").await);
}

#[tokio::test]
async fn the_redirect_uri_must_be_the_authorize_requests() {
    let w = World::new().await;
    issue(&w, "aPrx6", "api", None).await;
    let mut f = form("aPrx6", &[]);
    f[4].1 = "https://app.test/cb/";
    refused(
        w.token(&f).await,
        400,
        "redirect_uri_mismatch",
        "redirect_uri must match configuration",
    );
    assert!(spent(&w, "aPrx6").await);
}

#[tokio::test]
async fn pkce_needs_the_verifier_of_the_challenge() {
    let w = World::new().await;
    let challenge = pkce::challenge_of(VERIFIER);
    issue(&w, "aPrx7", "api", Some(&challenge)).await;
    refused(
        w.token(&form("aPrx7", &[])).await,
        400,
        "invalid_grant",
        "invalid code verifier",
    );
    issue(&w, "aPrx8", "api", Some(&challenge)).await;
    refused(
        w.token(&form(
            "aPrx8",
            &[("code_verifier", "not-the-verifier-not-the-verifier-xx")],
        ))
        .await,
        400,
        "invalid_grant",
        "invalid code verifier",
    );
    issue(&w, "aPrx9", "api", Some(&challenge)).await;
    assert!(
        w.token(&form("aPrx9", &[("code_verifier", VERIFIER)]))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn the_secret_is_needed_unless_the_app_waives_it() {
    let mut w = World::new().await;
    issue(&w, "aPrxA", "api", None).await;
    let no_secret: Vec<_> = form("aPrxA", &[])
        .into_iter()
        .filter(|(k, _)| *k != "client_secret")
        .collect();
    refused(
        w.token(&no_secret).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    w.change_app(|a| a.require_secret_for_web_server_flow = false)
        .await;
    assert!(w.token(&no_secret).await.is_ok());
    issue(&w, "aPrxB", "api", None).await;
    let mut wrong = form("aPrxB", &[]);
    wrong[3].1 = "wrong";
    refused(
        w.token(&wrong).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
}

#[tokio::test]
async fn a_deactivated_user_gets_no_tokens() {
    let mut w = World::new().await;
    issue(&w, "aPrxC", "api", None).await;
    w.change_alice(|u| u.active = false).await;
    refused(
        w.token(&form("aPrxC", &[])).await,
        400,
        "invalid_grant",
        "inactive user",
    );
}
