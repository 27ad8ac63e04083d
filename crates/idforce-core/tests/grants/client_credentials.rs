//! Client credentials flow (spec §3.7).

use idforce_core::model::PermittedUsers;

use crate::world::*;

fn form(secret: &str) -> Vec<(&'static str, &str)> {
    vec![
        ("grant_type", "client_credentials"),
        ("client_id", "3MVG9grants"),
        ("client_secret", secret),
    ]
}

#[tokio::test]
async fn the_app_acts_as_its_run_as_user() {
    let w = World::new().await;
    let r = w.token(&form(SECRET)).await.unwrap();
    assert!(w.live(&r.access_token).await);
    assert!(r.id.ends_with(&w.alice.id.to18()), "{}", r.id);
    assert_eq!(r.refresh_token, None);
    assert_eq!(
        r.scope.as_deref(),
        Some("api openid"),
        "never refresh_token"
    );
}

#[tokio::test]
async fn client_errors() {
    let mut w = World::new().await;
    refused(
        w.token(&form("wrong")).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    let mut f = form(SECRET);
    f[1].1 = "3MVG9nobody";
    refused(
        w.token(&f).await,
        400,
        "invalid_client_id",
        "client identifier invalid",
    );
    // A public app (no secret) cannot use this flow at all.
    w.change_app(|a| a.secret_digest = None).await;
    refused(
        w.token(&form(SECRET)[..2]).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
}

#[tokio::test]
async fn the_login_hosts_refuse_it() {
    let mut w = World::new().await;
    for host in ["login.salesforce.com", "TEST.salesforce.com"] {
        w.host = Some(host);
        refused(
            w.token(&form(SECRET)).await,
            400,
            "invalid_grant",
            "request not supported on this domain",
        );
    }
    w.host = Some("acme.my.salesforce.com");
    assert!(w.token(&form(SECRET)).await.is_ok());
}

#[tokio::test]
async fn the_run_as_user_must_exist_be_active_and_be_admitted() {
    let mut w = World::new().await;
    w.change_app(|a| a.run_as = None).await;
    refused(
        w.token(&form(SECRET)).await,
        400,
        "invalid_grant",
        "no client credentials user enabled",
    );
    let ghost = w.next_id(idforce_core::sfid::prefix::USER).await;
    w.change_app(|a| a.run_as = Some(ghost)).await;
    refused(
        w.token(&form(SECRET)).await,
        400,
        "invalid_grant",
        "no client credentials user enabled",
    );
    let alice = w.alice.id;
    w.change_app(|a| a.run_as = Some(alice)).await;
    w.change_alice(|u| u.active = false).await;
    refused(
        w.token(&form(SECRET)).await,
        400,
        "invalid_grant",
        "inactive user",
    );
    w.change_alice(|u| u.active = true).await;
    w.change_app(|a| a.permitted_users = PermittedUsers::AdminApproved)
        .await;
    refused(
        w.token(&form(SECRET)).await,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );
    w.change_app(|a| a.pre_authorized_users = vec![alice]).await;
    assert!(w.token(&form(SECRET)).await.is_ok());
}
