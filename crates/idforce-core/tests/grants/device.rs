//! Device flow, the device's side (spec §3.8): polling until the user decides, at the pace
//! RFC 8628 sets, and one redemption.

use idforce_core::model::{
    DEVICE_CODE_LIFETIME_MS, DEVICE_POLL_INTERVAL_SECS, DeviceCode, DeviceDecision,
};
use idforce_core::ports::DeviceCodes;
use idforce_core::scope::Scopes;

use crate::world::*;

const CODE: &str = "device-code-1";
const USER_CODE: &str = "BCDF-GHJK";

async fn issue(w: &World) {
    w.store
        .insert_device_code(&DeviceCode {
            digest: w.hasher.digest(CODE),
            user_code_digest: w.hasher.digest(USER_CODE),
            app_id: w.app.id,
            scopes: Scopes::parse("api refresh_token").unwrap(),
            issued_at: w.now,
            expires_at: w.now + DEVICE_CODE_LIFETIME_MS,
            interval_secs: DEVICE_POLL_INTERVAL_SECS,
            last_polled_at: None,
            decision: DeviceDecision::Pending,
            redeemed: false,
        })
        .await
        .unwrap();
}

async fn decide(w: &World, decision: DeviceDecision) {
    assert!(
        w.store
            .decide_device_code(&w.hasher.digest(USER_CODE), decision, w.now)
            .await
            .unwrap()
    );
}

fn approved(w: &World) -> DeviceDecision {
    DeviceDecision::Approved {
        user_id: w.alice.id,
        auth_time: w.now,
    }
}

fn poll(code: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("grant_type", "device"),
        ("client_id", "3MVG9grants"),
        ("code", code),
    ]
}

#[tokio::test]
async fn pending_then_approved_then_spent() {
    let mut w = World::new().await;
    issue(&w).await;
    refused(
        w.token(&poll(CODE)).await,
        400,
        "authorization_pending",
        "authorization pending",
    );
    w.advance_secs(DEVICE_POLL_INTERVAL_SECS);
    decide(&w, approved(&w)).await;
    let r = w.token(&poll(CODE)).await.unwrap();
    assert!(w.live(&r.access_token).await);
    assert!(w.refresh_live(r.refresh_token.as_deref().unwrap()).await);
    w.advance_secs(DEVICE_POLL_INTERVAL_SECS);
    refused(
        w.token(&poll(CODE)).await,
        400,
        "invalid_grant",
        "expired authorization code",
    );
}

#[tokio::test]
async fn polling_too_soon_slows_the_device_down() {
    let mut w = World::new().await;
    issue(&w).await;
    assert!(w.token(&poll(CODE)).await.is_err());
    w.advance_secs(1);
    refused(
        w.token(&poll(CODE)).await,
        400,
        "slow_down",
        "polling too frequently; slow down",
    );
    // The interval grew by five seconds: the old one is now too soon as well.
    w.advance_secs(DEVICE_POLL_INTERVAL_SECS);
    refused(
        w.token(&poll(CODE)).await,
        400,
        "slow_down",
        "polling too frequently; slow down",
    );
    w.advance_secs(DEVICE_POLL_INTERVAL_SECS + 15);
    refused(
        w.token(&poll(CODE)).await,
        400,
        "authorization_pending",
        "authorization pending",
    );
}

#[tokio::test]
async fn denied_expired_and_unknown_codes() {
    let mut w = World::new().await;
    issue(&w).await;
    decide(&w, DeviceDecision::Denied).await;
    refused(
        w.token(&poll(CODE)).await,
        400,
        "access_denied",
        "end-user denied authorization",
    );
    w.advance_secs(DEVICE_CODE_LIFETIME_MS / 1000);
    refused(
        w.token(&poll(CODE)).await,
        400,
        "expired_token",
        "expired device code",
    );
    refused(
        w.token(&poll("other")).await,
        400,
        "invalid_grant",
        "invalid device code",
    );
    refused(
        w.token(&poll(CODE)[..2]).await,
        400,
        "invalid_grant",
        "invalid device code",
    );
}

#[tokio::test]
async fn the_device_code_is_the_apps_own_and_the_user_must_be_active() {
    let mut w = World::new().await;
    issue(&w).await;
    decide(&w, approved(&w)).await;
    let other = idforce_core::model::ConnectedApp {
        id: w.next_id(idforce_core::sfid::prefix::CONNECTED_APP).await,
        client_id: "3MVG9other".into(),
        name: "Other".into(),
        ..w.app.clone()
    };
    idforce_store::Accounts::save_app(&w.store, &other)
        .await
        .unwrap();
    let mut f = poll(CODE);
    f[1].1 = "3MVG9other";
    refused(
        w.token(&f).await,
        400,
        "invalid_grant",
        "invalid device code",
    );
    w.change_alice(|u| u.active = false).await;
    refused(
        w.token(&poll(CODE)).await,
        400,
        "invalid_grant",
        "inactive user",
    );
    let mut wrong = poll(CODE);
    wrong.push(("client_secret", "wrong"));
    refused(
        w.token(&wrong).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
}
