//! Login History: each grant records its login with the grant's own writes, by the flow's
//! Login Type and Subtype; each refusal of a known user records the reason its vague wire
//! answer hides. Unknown users and unauthenticated clients record nothing.

use idforce_core::login_history::{LoginStatus, LoginSubtype, LoginType};
use idforce_core::model::{AUTH_CODE_LIFETIME_MS, AuthCode, PermittedUsers};
use idforce_core::ports::{Approvals, Codes};
use idforce_core::scope::Scopes;
use serde_json::json;

use crate::world::*;

const GOOD: &str = "correct horseTOKEN123";

async fn password(
    w: &World,
    secret: &str,
    presented: &str,
) -> Result<(), idforce_core::OAuthError> {
    w.token(&[
        ("grant_type", "password"),
        ("client_id", "3MVG9grants"),
        ("client_secret", secret),
        ("username", "alice@acme.test"),
        ("password", presented),
    ])
    .await
    .map(drop)
}

/// (subtype, status) of the newest row, and how many rows there are.
async fn newest(w: &World) -> (LoginSubtype, LoginStatus, usize) {
    let rows = w.history().await;
    let first = rows.first().expect("a Login History row");
    (first.subtype, first.status, rows.len())
}

#[tokio::test]
async fn a_password_login_records_who_from_where_with_what_and_through_which_app() {
    let w = World::new().await;
    assert!(w.history().await.is_empty());
    password(&w, SECRET, GOOD).await.unwrap();
    let rows = w.history().await;
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.at, NOW);
    assert_eq!((row.org_id, row.user_id), (w.org.id, w.alice.id));
    assert_eq!(row.username, "alice@acme.test");
    assert_eq!(row.login_type(), LoginType::RemoteAccess2);
    assert_eq!(row.login_type().label(), "Remote Access 2.0");
    assert_eq!(row.subtype, LoginSubtype::UsernamePassword);
    assert_eq!(row.status.label(), "Success");
    assert_eq!(row.source_ip, Some(CALLER_IP.parse().unwrap()));
    assert_eq!(
        (row.app_id, row.application.as_str()),
        (Some(w.app.id), "Integration")
    );
    assert_eq!(
        (row.browser.as_str(), row.platform.as_str()),
        ("Firefox 121", "Linux")
    );
    assert_eq!(
        row.login_url, "idforce.test",
        "the public URL's host when none was named"
    );
}

#[tokio::test]
async fn every_grant_records_its_flow() {
    let mut w = World::new().await;
    w.host = Some("acme.my.idforce.test");
    // Client credentials (run as Alice).
    w.token(&[
        ("grant_type", "client_credentials"),
        ("client_id", "3MVG9grants"),
        ("client_secret", SECRET),
    ])
    .await
    .unwrap();
    assert_eq!(
        newest(&w).await,
        (LoginSubtype::ClientCredentials, LoginStatus::Success, 1)
    );
    assert_eq!(w.history().await[0].login_url, "acme.my.idforce.test");
    // JWT bearer, once Alice has approved the app.
    w.store
        .approve(&w.alice.id, &w.app.id, &Scopes::parse("api").unwrap(), NOW)
        .await
        .unwrap();
    let claims = json!({
        "iss": "3MVG9grants", "sub": "alice@acme.test", "aud": PUBLIC_URL, "exp": NOW / 1000 + 180,
    });
    w.token(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", &sign_assertion("jwt.key", &claims)),
    ])
    .await
    .unwrap();
    assert_eq!(
        newest(&w).await,
        (LoginSubtype::JwtBearer, LoginStatus::Success, 2)
    );
    // A code, then its refresh token.
    w.store
        .insert_code(&AuthCode {
            digest: w.hasher.digest("c0de"),
            org_id: w.org.id,
            user_id: w.alice.id,
            app_id: w.app.id,
            redirect_uri: "https://app.test/cb".into(),
            scopes: Scopes::parse("api refresh_token").unwrap(),
            code_challenge: None,
            nonce: None,
            auth_time: NOW,
            issued_at: NOW,
            expires_at: NOW + AUTH_CODE_LIFETIME_MS,
        })
        .await
        .unwrap();
    let issued = w
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", "c0de"),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
            ("redirect_uri", "https://app.test/cb"),
        ])
        .await
        .unwrap();
    assert_eq!(
        newest(&w).await,
        (LoginSubtype::WebServer, LoginStatus::Success, 3)
    );
    w.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &issued.refresh_token.unwrap()),
        ("client_id", "3MVG9grants"),
        ("client_secret", SECRET),
    ])
    .await
    .unwrap();
    assert_eq!(
        newest(&w).await,
        (LoginSubtype::RefreshToken, LoginStatus::Success, 4)
    );
    assert!(w.history().await.iter().all(|r| r.app_id == Some(w.app.id)));
}

#[tokio::test]
async fn refusals_record_the_reason_the_wire_answer_hides() {
    let mut w = World::new().await;
    // Wrong password: the wire says only "authentication failure".
    refused(
        password(&w, SECRET, "wrongTOKEN123").await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    assert_eq!(
        newest(&w).await,
        (
            LoginSubtype::UsernamePassword,
            LoginStatus::InvalidPassword,
            1
        )
    );
    assert_eq!(w.history().await[0].application, "Integration");
    // The password right, the security token an old one (reset since).
    let old_token = format!("{PASSWORD}OLDTOKEN");
    refused(
        password(&w, SECRET, &old_token).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    assert_eq!(
        newest(&w).await.1.label(),
        "Failed: API security token required"
    );
    // Control: the right password and token succeed and are recorded as such.
    password(&w, SECRET, GOOD).await.unwrap();
    assert_eq!(
        newest(&w).await,
        (LoginSubtype::UsernamePassword, LoginStatus::Success, 3)
    );
    // Locked out: the attempt that reaches the limit is a wrong password; the next, a lockout.
    for _ in 0..w.settings.lockout.attempts {
        let _ = password(&w, SECRET, "wrong").await;
    }
    assert_eq!(newest(&w).await.1, LoginStatus::InvalidPassword);
    refused(
        password(&w, SECRET, GOOD).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    assert_eq!(newest(&w).await.1.label(), "Password Lockout");
    w.advance_secs(w.settings.lockout.duration_secs + 1);
    // Deactivated and frozen users: the right password, refused for who they are.
    w.change_alice(|u| u.active = false).await;
    refused(
        password(&w, SECRET, GOOD).await,
        400,
        "invalid_grant",
        "inactive user",
    );
    assert_eq!(newest(&w).await.1.label(), "User is Inactive");
    w.change_alice(|u| {
        u.active = true;
        u.frozen = true;
    })
    .await;
    refused(
        password(&w, SECRET, GOOD).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    assert_eq!(newest(&w).await.1.label(), "User is Frozen");
    w.change_alice(|u| u.frozen = false).await;
    // Not admitted by an admin-approved app.
    w.change_app(|a| a.permitted_users = PermittedUsers::AdminApproved)
        .await;
    refused(
        password(&w, SECRET, GOOD).await,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );
    let row = &w.history().await[0];
    assert_eq!(row.status.label(), "Failed: Not approved for access");
    assert_eq!(row.app_id, Some(w.app.id));
    // Control: admitted by profile, the same request succeeds.
    w.change_app(|a| a.profiles = vec!["System Administrator".into()])
        .await;
    password(&w, SECRET, GOOD).await.unwrap();
    assert_eq!(newest(&w).await.1, LoginStatus::Success);
}

#[tokio::test]
async fn refusals_of_the_run_as_user_and_of_an_assertion_are_recorded_for_that_user() {
    let mut w = World::new().await;
    w.change_alice(|u| u.frozen = true).await;
    refused(
        w.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
        ])
        .await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    assert_eq!(
        newest(&w).await,
        (LoginSubtype::ClientCredentials, LoginStatus::UserFrozen, 1)
    );
    w.change_alice(|u| u.frozen = false).await;
    // Alice has not approved the app: a JWT bearer login is refused and recorded.
    let claims = json!({
        "iss": "3MVG9grants", "sub": "alice@acme.test", "aud": PUBLIC_URL, "exp": NOW / 1000 + 180,
    });
    refused(
        w.token(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &sign_assertion("jwt.key", &claims)),
        ])
        .await,
        400,
        "invalid_grant",
        "user hasn't approved this consumer",
    );
    let row = &w.history().await[0];
    assert_eq!(
        (row.subtype, row.status),
        (LoginSubtype::JwtBearer, LoginStatus::NotApprovedForAccess)
    );
    assert_eq!(row.app_id, Some(w.app.id));
}

#[tokio::test]
async fn unknown_users_and_unauthenticated_clients_record_nothing() {
    let w = World::new().await;
    let unknown = w
        .token(&[
            ("grant_type", "password"),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
            ("username", "nobody@acme.test"),
            ("password", GOOD),
        ])
        .await;
    refused(unknown, 400, "invalid_grant", "authentication failure");
    // The client fails before the user is looked at: nothing to record against Alice.
    refused(
        password(&w, "not-the-secret", "wrong").await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    assert!(w.history().await.is_empty());
    // Control: a failure of a known user through an authenticated client is recorded.
    let _ = password(&w, SECRET, "wrong").await;
    assert_eq!(w.history().await.len(), 1);
}

#[tokio::test]
async fn with_login_history_off_nothing_is_recorded() {
    let mut w = World::new().await;
    w.settings.login_history = false;
    password(&w, SECRET, GOOD).await.unwrap();
    refused(
        password(&w, SECRET, "wrongTOKEN123").await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    assert!(w.history().await.is_empty());
    // Control: on again, the same logins are recorded.
    w.settings.login_history = true;
    password(&w, SECRET, GOOD).await.unwrap();
    let _ = password(&w, SECRET, "wrongTOKEN123").await;
    assert_eq!(w.history().await.len(), 2);
}

#[tokio::test]
async fn the_login_url_is_the_host_named_when_it_is_a_host_name() {
    let mut w = World::new().await;
    w.host = Some("Acme.My.IDForce.test");
    password(&w, SECRET, GOOD).await.unwrap();
    assert_eq!(w.history().await[0].login_url, "acme.my.idforce.test");
    // A Host header is the client's to write: junk or a huge one is not recorded.
    let junk: &'static str = Box::leak("x".repeat(300).into_boxed_str());
    for host in [junk, "evil host<script>", ""] {
        w.host = Some(host);
        password(&w, SECRET, GOOD).await.unwrap();
        assert_eq!(w.history().await[0].login_url, "idforce.test", "{host:?}");
    }
}

/// The login rate limit on a fixed clock: logins within it pass, the one beyond it answers
/// `login rate exceeded` with its Login History status, whichever grant it comes through, and
/// the sliding hour lets logins in again.
#[tokio::test]
async fn the_login_rate_limit_refuses_the_login_beyond_it_until_the_window_slides() {
    let mut w = World::new().await;
    w.settings.login_rate = Some(idforce_core::model::LoginRate {
        logins: 2,
        window_ms: 3_600_000,
    });
    password(&w, SECRET, GOOD).await.unwrap();
    client_credentials(&w).await.unwrap();
    let r = password(&w, SECRET, GOOD).await;
    refused(r, 400, "invalid_grant", "login rate exceeded");
    assert_eq!(newest(&w).await.1, LoginStatus::LoginRateExceeded);
    refused(
        client_credentials(&w).await,
        400,
        "invalid_grant",
        "login rate exceeded",
    );
    // A wrong password is still answered as one: it is checked first, and not counted.
    let r = password(&w, SECRET, "wrong").await;
    refused(r, 400, "invalid_grant", "authentication failure");
    assert_eq!(newest(&w).await.1, LoginStatus::InvalidPassword);
    // Two windows on, the count is gone (one window on, the previous one still weighs in).
    w.advance_secs(3600);
    assert!(password(&w, SECRET, GOOD).await.is_err());
    w.advance_secs(3600);
    password(&w, SECRET, GOOD).await.unwrap();
    // Control: without a limit, nothing is counted.
    w.settings.login_rate = None;
    for _ in 0..5 {
        password(&w, SECRET, GOOD).await.unwrap();
    }
}
