//! A profile's Login IP Ranges and Login Hours, and a connected app's IP relaxation, on a
//! fixed clock (`NOW` is a Friday, 08:00 UTC) and a fixed caller (`CALLER_IP`). Each refusal
//! with Salesforce's answer and its Login History status, beside the control that passes.

use idforce_core::login_history::LoginStatus;
use idforce_core::login_policy::{IpRange, IpRelaxation, LoginHours};
use idforce_core::model::Profile;
use idforce_core::ports::Approvals;
use idforce_core::sfid::prefix;
use idforce_store::{Accounts, Meta};

use crate::refresh_token::{grant, refresh};
use crate::world::*;

async fn password(w: &World) -> Result<(), idforce_core::OAuthError> {
    w.token(&[
        ("grant_type", "password"),
        ("client_id", "3MVG9grants"),
        ("client_secret", SECRET),
        ("username", "alice@acme.test"),
        ("password", "correct horseTOKEN123"),
    ])
    .await
    .map(drop)
}

/// Gives Alice's profile these restrictions.
async fn restrict(w: &World, ranges: &[&str], hours: Option<LoginHours>) {
    let existing = w.store.profiles(Some(&w.org.id)).await.unwrap();
    let id = match existing.iter().find(|p| p.name == w.alice.profile) {
        Some(p) => p.id,
        None => w.store.next_id(prefix::PROFILE).await.unwrap(),
    };
    let profile = Profile {
        id,
        org_id: w.org.id,
        name: w.alice.profile.clone(),
        created_at: NOW,
        login_ip_ranges: ranges.iter().map(|r| IpRange::parse(r).unwrap()).collect(),
        login_hours: hours,
    };
    w.store.save_profile(&profile).await.unwrap();
}

/// Alice approves the app, as JWT bearer needs.
async fn approve(w: &World) {
    w.store
        .approve(&w.alice.id, &w.app.id, &w.app.scopes, w.now)
        .await
        .unwrap();
}

async fn newest_status(w: &World) -> LoginStatus {
    w.history().await.first().expect("a row").status
}

#[tokio::test]
async fn login_ip_ranges_refuse_other_addresses_unless_the_app_relaxes_them() {
    let mut w = World::new().await;
    approve(&w).await;
    restrict(
        &w,
        &["10.0.0.0-10.0.0.255", "2001:db8::-2001:db8::ff"],
        None,
    )
    .await;
    refused(password(&w).await, 400, "invalid_grant", "ip restricted");
    assert_eq!(newest_status(&w).await, LoginStatus::RestrictedIp);
    refused(
        client_credentials(&w).await,
        400,
        "invalid_grant",
        "ip restricted",
    );
    refused(jwt_bearer(&w).await, 400, "invalid_grant", "ip restricted");
    // Control: the caller inside a range, v4 and v6.
    for inside in ["10.0.0.77", "2001:db8::42"] {
        w.caller.ip = Some(inside.parse().unwrap());
        password(&w).await.unwrap();
    }
    // An unknown address is outside every range.
    w.caller.ip = None;
    refused(password(&w).await, 400, "invalid_grant", "ip restricted");

    // Relax IP restrictions: every flow but JWT bearer passes from anywhere.
    w.caller.ip = Some(CALLER_IP.parse().unwrap());
    w.app.ip_relaxation = IpRelaxation::Bypass;
    w.store.save_app(&w.app).await.unwrap();
    password(&w).await.unwrap();
    client_credentials(&w).await.unwrap();
    refused(jwt_bearer(&w).await, 400, "invalid_grant", "ip restricted");
    // With a second factor: none here, so enforced.
    w.app.ip_relaxation = IpRelaxation::Bypass2fa;
    w.store.save_app(&w.app).await.unwrap();
    refused(password(&w).await, 400, "invalid_grant", "ip restricted");
}

#[tokio::test]
async fn refresh_tokens_are_held_to_the_ranges_unless_relaxed_for_refresh() {
    let mut w = World::new().await;
    let tokens = grant(&w, "api refresh_token").await;
    let rt = tokens.refresh_token.unwrap();
    restrict(&w, &["10.0.0.0-10.0.0.255"], None).await;
    refused(
        refresh(&w, &rt, Some(SECRET)).await,
        400,
        "invalid_grant",
        "ip restricted",
    );
    w.app.ip_relaxation = IpRelaxation::EnforceRelaxRefresh;
    w.store.save_app(&w.app).await.unwrap();
    refresh(&w, &rt, Some(SECRET)).await.unwrap();
    // Logins stay enforced.
    refused(password(&w).await, 400, "invalid_grant", "ip restricted");
}

#[tokio::test]
async fn login_hours_are_read_in_the_orgs_time_zone() {
    let mut w = World::new().await;
    approve(&w).await;
    // Friday 09:00-17:00: NOW (08:00 UTC) is before them.
    let friday = |window: &str| LoginHours::from_days([("friday", window)]).unwrap();
    restrict(&w, &[], Some(friday("09:00-17:00"))).await;
    refused(
        password(&w).await,
        400,
        "invalid_grant",
        "invalid login hours",
    );
    assert_eq!(newest_status(&w).await, LoginStatus::RestrictedTime);
    refused(
        jwt_bearer(&w).await,
        400,
        "invalid_grant",
        "invalid login hours",
    );
    // In Paris it is 09:00: inside.
    w.org.time_zone = "Europe/Paris".into();
    w.store.save_org(&w.org).await.unwrap();
    password(&w).await.unwrap();
    // A day without hours allows no login.
    restrict(
        &w,
        &[],
        Some(LoginHours::from_days([("thursday", "00:00-24:00")]).unwrap()),
    )
    .await;
    refused(
        password(&w).await,
        400,
        "invalid_grant",
        "invalid login hours",
    );
    // Control: no hours at all.
    restrict(&w, &[], None).await;
    password(&w).await.unwrap();
}

/// The restrictions come after the password: a wrong one from outside the ranges is still a
/// wrong password; and a restricted login is not counted against the login rate.
#[tokio::test]
async fn a_wrong_password_is_one_and_a_restricted_login_is_not_counted() {
    let mut w = World::new().await;
    restrict(&w, &["10.0.0.0-10.0.0.255"], None).await;
    let wrong = w
        .token(&[
            ("grant_type", "password"),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
            ("username", "alice@acme.test"),
            ("password", "wrong"),
        ])
        .await;
    refused(wrong, 400, "invalid_grant", "authentication failure");
    assert_eq!(newest_status(&w).await, LoginStatus::InvalidPassword);
    w.settings.login_rate = Some(idforce_core::model::LoginRate {
        logins: 1,
        window_ms: 3_600_000,
    });
    for _ in 0..3 {
        refused(password(&w).await, 400, "invalid_grant", "ip restricted");
    }
    // Control: from inside, the one login the rate allows passes, the next does not.
    w.caller.ip = Some("10.0.0.1".parse().unwrap());
    password(&w).await.unwrap();
    refused(
        password(&w).await,
        400,
        "invalid_grant",
        "login rate exceeded",
    );
}
