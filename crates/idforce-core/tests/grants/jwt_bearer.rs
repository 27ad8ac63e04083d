//! JWT bearer flow (spec §3.6, §12.5): an RS256 assertion signed with the key of the app's
//! certificate, naming the app, the user and this server; each assertion spent once.

use idforce_core::model::PermittedUsers;
use idforce_core::ports::Approvals;
use serde_json::{Value, json};

use crate::world::*;

fn claims(w: &World) -> Value {
    json!({
        "iss": "3MVG9grants",
        "sub": "alice@acme.test",
        "aud": PUBLIC_URL,
        "exp": w.now / 1000 + 180,
    })
}

async fn login(
    w: &World,
    assertion: &str,
) -> Result<idforce_core::wire::TokenResponse, idforce_core::OAuthError> {
    w.token(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion),
    ])
    .await
}

async fn approve(w: &World) {
    w.store
        .approve(&w.alice.id, &w.app.id, &w.app.scopes, w.now)
        .await
        .unwrap();
}

fn with(w: &World, change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut c = claims(w);
    change(c.as_object_mut().unwrap());
    sign_assertion("jwt.key", &c)
}

#[tokio::test]
async fn an_approved_users_assertion_starts_a_session_once() {
    let w = World::new().await;
    approve(&w).await;
    let assertion = sign_assertion("jwt.key", &claims(&w));
    let r = login(&w, &assertion).await.unwrap();
    assert!(w.live(&r.access_token).await);
    assert_eq!(
        (r.issued_at, r.signature, r.refresh_token),
        (None, None, None)
    );
    // The same assertion again is a replay.
    refused(
        login(&w, &assertion).await,
        400,
        "invalid_grant",
        "expired authorization code",
    );
}

#[tokio::test]
async fn malformed_and_wrongly_signed_assertions_are_invalid() {
    let mut w = World::new().await;
    approve(&w).await;
    for assertion in ["", "not-a-jwt", "a.b.c"] {
        refused(
            login(&w, assertion).await,
            400,
            "invalid_grant",
            "invalid assertion",
        );
    }
    refused(
        login(&w, &sign_assertion("other.key", &claims(&w))).await,
        400,
        "invalid_grant",
        "invalid assertion",
    );
    w.change_app(|a| a.certificate_der = None).await;
    refused(
        login(&w, &sign_assertion("jwt.key", &claims(&w))).await,
        400,
        "invalid_grant",
        "invalid assertion",
    );
}

#[tokio::test]
async fn the_issuer_must_be_an_app_and_the_audience_this_server() {
    let w = World::new().await;
    approve(&w).await;
    refused(
        login(
            &w,
            &with(&w, |c| drop(c.insert("iss".into(), json!("3MVG9nobody")))),
        )
        .await,
        400,
        "invalid_client_id",
        "client identifier invalid",
    );
    refused(
        login(
            &w,
            &with(&w, |c| {
                drop(c.insert("aud".into(), json!("https://elsewhere.test")))
            }),
        )
        .await,
        400,
        "invalid_grant",
        "audience is invalid",
    );
    for aud in [
        "https://login.salesforce.com",
        "https://idforce.test/services/oauth2/token",
    ] {
        let r = login(&w, &with(&w, |c| drop(c.insert("aud".into(), json!(aud))))).await;
        assert!(r.is_ok(), "{aud}: {r:?}");
    }
}

#[tokio::test]
async fn an_expired_assertion_is_refused_after_the_clock_skew() {
    let mut w = World::new().await;
    approve(&w).await;
    let assertion = sign_assertion("jwt.key", &claims(&w));
    w.advance_secs(180 + 61);
    refused(
        login(&w, &assertion).await,
        400,
        "invalid_grant",
        "expired authorization code",
    );
    w.now -= 2_000;
    assert!(
        login(&w, &assertion).await.is_ok(),
        "within the minute of skew"
    );
}

#[tokio::test]
async fn the_subject_must_be_an_approved_active_unlocked_user() {
    let mut w = World::new().await;
    refused(
        login(&w, &sign_assertion("jwt.key", &claims(&w))).await,
        400,
        "invalid_grant",
        "user hasn't approved this consumer",
    );
    approve(&w).await;
    refused(
        login(
            &w,
            &with(&w, |c| {
                drop(c.insert("sub".into(), json!("nobody@acme.test")))
            }),
        )
        .await,
        400,
        "invalid_grant",
        "user hasn't approved this consumer",
    );
    let now = w.now;
    w.change_alice(|u| u.locked_until = Some(now + 60_000))
        .await;
    refused(
        login(&w, &with(&w, |c| drop(c.insert("jti".into(), json!("1"))))).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    w.change_alice(|u| {
        u.locked_until = None;
        u.active = false;
    })
    .await;
    refused(
        login(&w, &with(&w, |c| drop(c.insert("jti".into(), json!("2"))))).await,
        400,
        "invalid_grant",
        "inactive user",
    );
}

#[tokio::test]
async fn admin_approved_apps_need_no_approval_but_a_pre_authorization() {
    let mut w = World::new().await;
    w.change_app(|a| a.permitted_users = PermittedUsers::AdminApproved)
        .await;
    refused(
        login(&w, &sign_assertion("jwt.key", &claims(&w))).await,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );
    let alice = w.alice.id;
    w.change_app(|a| a.pre_authorized_users = vec![alice]).await;
    assert!(
        login(&w, &with(&w, |c| drop(c.insert("jti".into(), json!("3")))))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_refused_assertion_is_not_spent() {
    let mut w = World::new().await;
    let assertion = sign_assertion("jwt.key", &claims(&w));
    refused(
        login(&w, &assertion).await,
        400,
        "invalid_grant",
        "user hasn't approved this consumer",
    );
    approve(&w).await;
    w.advance_secs(1);
    assert!(
        login(&w, &assertion).await.is_ok(),
        "spent only by the grant that succeeds"
    );
}

#[tokio::test]
async fn the_log_names_the_reason_behind_invalid_assertion() {
    let w = World::new().await;
    approve(&w).await;
    let why = cause_of(login(&w, &sign_assertion("other.key", &claims(&w))).await);
    assert_eq!(
        why,
        "an assertion signed with a key that does not match the app's certificate"
    );
    let why = cause_of(
        login(
            &w,
            &with(&w, |c| {
                drop(c.insert("sub".into(), json!("ghost@acme.test")))
            }),
        )
        .await,
    );
    assert!(
        why.starts_with("no user #") && !why.contains("ghost"),
        "{why}"
    );
}

#[tokio::test]
async fn an_assertion_valid_only_in_the_future_is_refused_beyond_the_clock_skew() {
    let w = World::new().await;
    approve(&w).await;
    let now = w.now / 1000;
    let a_day_ahead = with(&w, |c| drop(c.insert("nbf".into(), json!(now + 86_400))));
    refused(
        login(&w, &a_day_ahead).await,
        400,
        "invalid_grant",
        "invalid assertion",
    );
    let just_beyond = with(&w, |c| drop(c.insert("nbf".into(), json!(now + 61))));
    refused(
        login(&w, &just_beyond).await,
        400,
        "invalid_grant",
        "invalid assertion",
    );
    // Controls: within the skew, and valid from now.
    let within = with(&w, |c| drop(c.insert("nbf".into(), json!(now + 60))));
    assert!(login(&w, &within).await.is_ok());
    let from_now = with(&w, |c| drop(c.insert("nbf".into(), json!(now))));
    assert!(login(&w, &from_now).await.is_ok());
}

/// The fixture's certificate is valid from 2026-11-23T13:54:52Z to 2126-10-30T13:54:52Z.
const CERT_NOT_BEFORE: i64 = 1_795_442_092_000;
const CERT_NOT_AFTER: i64 = 4_949_042_092_000;

#[tokio::test]
async fn a_certificate_outside_its_validity_is_accepted_unless_the_app_enforces_it() {
    let v = idforce_core::certificate::validity(&pem_der("jwt.crt")).expect("readable");
    assert_eq!(
        (v.not_before * 1000, v.not_after * 1000),
        (CERT_NOT_BEFORE, CERT_NOT_AFTER),
        "the dates openssl shows"
    );
    for (when, state) in [
        (CERT_NOT_BEFORE - 86_400_000, "not yet valid"),
        (CERT_NOT_AFTER + 86_400_000, "expired"),
    ] {
        let mut w = World::new().await;
        w.now = when;
        approve(&w).await;
        // As Salesforce: accepted.
        assert!(login(&w, &with(&w, |_| {})).await.is_ok(), "{state}");
        w.change_app(|a| a.enforce_certificate_validity = true)
            .await;
        refused(
            login(&w, &with(&w, |_| {})).await,
            400,
            "invalid_grant",
            "invalid assertion",
        );
    }
    // Control: within its validity, an enforcing app accepts it.
    let mut w = World::new().await;
    approve(&w).await;
    w.change_app(|a| a.enforce_certificate_validity = true)
        .await;
    assert!(login(&w, &with(&w, |_| {})).await.is_ok());
}
