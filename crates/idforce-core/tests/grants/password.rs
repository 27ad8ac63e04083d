//! Username-password flow (spec §3.4).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use idforce_core::model::PermittedUsers;
use idforce_core::ports::{Overloaded, PasswordVerifier};
use tokio::sync::watch;

use crate::world::*;

/// Plain passwords whose checks wait until the gate opens, counted as they start: guesses
/// held in flight at once.
struct Gated {
    checks: AtomicUsize,
    open: watch::Sender<bool>,
}

impl Gated {
    fn new() -> Arc<Gated> {
        Arc::new(Gated {
            checks: AtomicUsize::new(0),
            open: watch::channel(false).0,
        })
    }

    async fn until_checking(&self, n: usize) {
        while self.checks.load(Ordering::SeqCst) < n {
            tokio::task::yield_now().await;
        }
    }
}

#[async_trait]
impl PasswordVerifier for Gated {
    async fn verify(&self, stored: &str, password: &str) -> Result<bool, Overloaded> {
        self.checks.fetch_add(1, Ordering::SeqCst);
        let _ = self.open.subscribe().wait_for(|open| *open).await;
        PlainPasswords.verify(stored, password).await
    }
}

/// Starts `n` logins with `password` at once, on tasks of their own.
fn guesses(w: &Arc<World>, n: usize, password: &'static str) -> Vec<tokio::task::JoinHandle<bool>> {
    (0..n)
        .map(|_| {
            let w = w.clone();
            tokio::spawn(async move { w.token(&form(password, SECRET)).await.is_ok() })
        })
        .collect()
}

fn form<'a>(password: &'a str, secret: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("grant_type", "password"),
        ("client_id", "3MVG9grants"),
        ("client_secret", secret),
        ("username", "alice@acme.test"),
        ("password", password),
    ]
}

/// The password followed by the security token, as API logins send it.
const WITH_TOKEN: &str = "correct horseTOKEN123";

#[tokio::test]
async fn the_password_and_security_token_start_a_session() {
    assert_eq!(WITH_TOKEN, format!("{PASSWORD}{SECURITY_TOKEN}"));
    let w = World::new().await;
    let r = w.token(&form(WITH_TOKEN, SECRET)).await.unwrap();
    assert!(w.live(&r.access_token).await);
    assert_eq!(
        r.refresh_token, None,
        "the password flow issues no refresh token"
    );
    assert_eq!(
        r.scope, None,
        "Salesforce's password response carries no scope"
    );
    assert_eq!(r.issued_at, Some(NOW.to_string()));
    assert!(r.signature.is_some());
    assert_eq!(r.instance_url, PUBLIC_URL);
}

#[tokio::test]
async fn a_wrong_client_is_refused_before_the_password_is_checked() {
    let w = World::new().await;
    let mut f = form(WITH_TOKEN, SECRET);
    f[1].1 = "3MVG9nobody";
    refused(
        w.token(&f).await,
        400,
        "invalid_client_id",
        "client identifier invalid",
    );
    refused(
        w.token(&form(WITH_TOKEN, "wrong")).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    let no_secret: Vec<_> = form(WITH_TOKEN, SECRET)
        .into_iter()
        .filter(|(k, _)| *k != "client_secret")
        .collect();
    refused(
        w.token(&no_secret).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    // None of them counted against Alice.
    let r = w.token(&form(WITH_TOKEN, SECRET)).await;
    assert!(r.is_ok(), "{r:?}");
}

#[tokio::test]
async fn bad_passwords_tokens_and_users_are_one_vague_failure() {
    let w = World::new().await;
    for password in [
        PASSWORD.to_owned(),
        "wrong".into(),
        format!("{PASSWORD}WRONG123"),
        String::new(),
    ] {
        refused(
            w.token(&form(&password, SECRET)).await,
            400,
            "invalid_grant",
            "authentication failure",
        );
    }
    let mut unknown = form(WITH_TOKEN, SECRET);
    unknown[3].1 = "nobody@acme.test";
    refused(
        w.token(&unknown).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    // The control: the right password and token still work (4 failures < 10).
    assert!(w.token(&form(WITH_TOKEN, SECRET)).await.is_ok());
}

#[tokio::test]
async fn ten_failures_lock_the_user_for_fifteen_minutes() {
    let mut w = World::new().await;
    for _ in 0..10 {
        refused(
            w.token(&form("wrong", SECRET)).await,
            400,
            "invalid_grant",
            "authentication failure",
        );
    }
    // Locked: even the right password fails, and says nothing more.
    refused(
        w.token(&form(WITH_TOKEN, SECRET)).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    w.advance_secs(15 * 60 - 1);
    refused(
        w.token(&form(WITH_TOKEN, SECRET)).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    w.advance_secs(1);
    assert!(w.token(&form(WITH_TOKEN, SECRET)).await.is_ok());
}

#[tokio::test]
async fn ten_guesses_in_flight_leave_no_check_for_the_right_password() {
    let gate = Gated::new();
    let mut w = World::new().await;
    w.passwords = gate.clone();
    let w = Arc::new(w);
    let wrong = guesses(&w, 10, "wrong");
    gate.until_checking(10).await;
    // The right password, while ten guesses are being checked: refused without a check.
    refused(
        w.token(&form(WITH_TOKEN, SECRET)).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    assert_eq!(gate.checks.load(Ordering::SeqCst), 10, "checks made");
    let _ = gate.open.send(true);
    for g in wrong {
        assert!(!g.await.unwrap());
    }
    // The ten failures locked the user.
    refused(
        w.token(&form(WITH_TOKEN, SECRET)).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    assert_eq!(
        gate.checks.load(Ordering::SeqCst),
        10,
        "no check while locked"
    );
}

#[tokio::test]
async fn the_right_password_among_nine_guesses_in_flight_is_accepted() {
    // The control of the test above: nine guesses leave the tenth check for the user.
    let gate = Gated::new();
    let mut w = World::new().await;
    w.passwords = gate.clone();
    let w = Arc::new(w);
    let wrong = guesses(&w, 9, "wrong");
    gate.until_checking(9).await;
    let right = guesses(&w, 1, WITH_TOKEN);
    gate.until_checking(10).await;
    let _ = gate.open.send(true);
    for g in wrong {
        assert!(!g.await.unwrap());
    }
    for r in right {
        assert!(r.await.unwrap(), "the right password, the tenth check");
    }
}

#[tokio::test]
async fn a_hundred_guesses_at_once_get_ten_checks() {
    let gate = Gated::new();
    let mut w = World::new().await;
    w.passwords = gate.clone();
    let w = Arc::new(w);
    let mut all = guesses(&w, 99, "wrong");
    all.extend(guesses(&w, 1, WITH_TOKEN));
    gate.until_checking(10).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let _ = gate.open.send(true);
    let mut accepted = 0;
    for g in all {
        accepted += usize::from(g.await.unwrap());
    }
    assert_eq!(gate.checks.load(Ordering::SeqCst), 10, "passwords checked");
    assert!(accepted <= 1);
}

#[tokio::test]
async fn a_success_clears_the_failures_so_far() {
    let w = World::new().await;
    for _ in 0..9 {
        assert!(w.token(&form("wrong", SECRET)).await.is_err());
    }
    assert!(w.token(&form(WITH_TOKEN, SECRET)).await.is_ok());
    for _ in 0..9 {
        assert!(w.token(&form("wrong", SECRET)).await.is_err());
    }
    assert!(
        w.token(&form(WITH_TOKEN, SECRET)).await.is_ok(),
        "nine more failures do not lock: the count started over"
    );
}

#[tokio::test]
async fn an_inactive_user_is_told_so_only_with_the_right_password() {
    let mut w = World::new().await;
    w.change_alice(|u| u.active = false).await;
    refused(
        w.token(&form(WITH_TOKEN, SECRET)).await,
        400,
        "invalid_grant",
        "inactive user",
    );
    refused(
        w.token(&form("wrong", SECRET)).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
}

#[tokio::test]
async fn admin_approved_apps_admit_their_profiles_and_pre_authorized_users() {
    let mut w = World::new().await;
    w.change_app(|a| a.permitted_users = PermittedUsers::AdminApproved)
        .await;
    refused(
        w.token(&form(WITH_TOKEN, SECRET)).await,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );
    w.change_app(|a| a.profiles = vec!["system administrator".into()])
        .await;
    assert!(w.token(&form(WITH_TOKEN, SECRET)).await.is_ok());
    let alice = w.alice.id;
    w.change_app(|a| {
        a.profiles.clear();
        a.pre_authorized_users = vec![alice];
    })
    .await;
    assert!(w.token(&form(WITH_TOKEN, SECRET)).await.is_ok());
}

#[tokio::test]
async fn scopes_are_granted_from_the_apps_and_unknown_ones_refused() {
    let w = World::new().await;
    let mut f = form(WITH_TOKEN, SECRET);
    f.push(("scope", "api"));
    assert!(w.token(&f).await.is_ok());
    let mut f = form(WITH_TOKEN, SECRET);
    f.push(("scope", "api chatter_api"));
    refused(
        w.token(&f).await,
        400,
        "invalid_scope",
        "the requested scope is not allowed: chatter_api",
    );
}

#[tokio::test]
async fn the_log_says_what_the_answer_does_not() {
    let w = World::new().await;
    let why = cause_of(w.token(&form("wrong", SECRET)).await);
    assert_eq!(
        why,
        format!("user {}: a wrong password (or security token)", w.alice.id)
    );
    let wrong_token = format!("{PASSWORD}WRONGTOK");
    let why = cause_of(w.token(&form(&wrong_token, SECRET)).await);
    assert_eq!(
        why,
        format!("user {}: a wrong or missing security token", w.alice.id)
    );
    // A password pasted into the username field is not written down, only a keyed digest.
    let mut pasted = form(WITH_TOKEN, SECRET);
    pasted[3].1 = "correct horse battery";
    let why = cause_of(w.token(&pasted).await);
    assert!(
        why.starts_with("no user #") && !why.contains("horse"),
        "{why}"
    );
    assert_eq!(
        why,
        cause_of(w.token(&pasted).await),
        "the same name, the same tag"
    );
}
