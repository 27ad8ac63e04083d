#![allow(clippy::unwrap_used, clippy::panic)]
//! The store's contract, as one suite every backend must pass. Each check takes a freshly
//! opened, empty store; `backends()` lists the backends to run it on.

use std::sync::Arc;

use idforce_core::login_history::{LoginEvent, LoginStatus, LoginSubtype};
use idforce_core::model::*;
use idforce_core::ports::{DevicePoll, Redemption, StoreError, Tokens};
use idforce_core::scope::Scopes;
use idforce_core::sfid::{SfId, prefix};
use idforce_store::{Backend, LoginHistoryQuery, SessionFilter, StoredKey};

type Store = Arc<dyn Backend>;

/// The checks every backend must pass, each run on each backend as a test of its own:
/// `memory::records_round_trip`, `sqlite::…`, `postgres::…`, `postgres_serializable::…`.
macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    super::$check("memory", super::memory()).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let (s, _dir) = super::sqlite().await;
                    super::$check("sqlite", s).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    if let Some(s) = super::postgres(false).await {
                        super::$check("postgres", s).await;
                    }
                }
            )*
        }
        mod postgres_serializable {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    if let Some(s) = super::postgres(true).await {
                        super::$check("postgres-serializable", s).await;
                    }
                }
            )*
        }
    };
}

conformance!(
    records_round_trip,
    ids_are_unique_under_concurrency,
    lockout_counts_every_failure,
    sessions_codes_and_refresh_families,
    assertions_logins_approvals_and_keys,
    purging_many_sessions_spares_the_live_ones,
    device_codes_poll_decide_and_redeem_once,
    grants_write_all_or_nothing,
    profiles_are_unique_by_name_in_their_org,
    my_domains_are_unique_and_sites_are_kept,
    approvals_are_the_live_families_oldest_first,
    the_audit_trail_lists_the_newest_change_first,
    login_history_lists_filters_pages_and_purges,
    app_users_count_the_holders_of_live_refresh_tokens,
    one_users_tokens_of_one_app_and_an_orgs_sessions,
    the_login_rate_slides_and_holds_under_concurrency,
);

fn memory() -> Store {
    Arc::new(idforce_store::testing::MemoryStore::new())
}

async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("store.db").display()
    );
    (idforce_store::open(&url).await.expect("sqlite opens"), dir)
}

/// A store in a fresh schema of the test server; `None` (said loudly) when there is none and
/// CI does not require one. At SERIALIZABLE, PostgreSQL behaves as CockroachDB does: racing
/// transactions abort with serialization failures that the store must retry.
async fn postgres(serializable: bool) -> Option<Store> {
    match idforce_store::testing::fresh_postgres_schema().await {
        Ok(url) => {
            let url = if serializable {
                format!("{url}&options[default_transaction_isolation]=serializable")
            } else {
                url
            };
            Some(idforce_store::open(&url).await.expect("postgres opens"))
        }
        Err(why) if idforce_store::testing::strict() => panic!("{why}"),
        Err(why) => {
            eprintln!("SKIPPED the PostgreSQL backend: {why}");
            None
        }
    }
}

async fn org(s: &Store) -> Org {
    let org = Org {
        id: s.next_id(prefix::ORG).await.unwrap(),
        name: "Acme".into(),
        instance_url: None,
        created_at: 1,
        my_domain: None,
        logout_url: None,
        sites: Vec::new(),
        oauth: Default::default(),
        // Not the default: the round trip proves the column is stored.
        time_zone: "Europe/Paris".into(),
        token_exchange_handlers: vec![idforce_core::token_exchange::Handler {
            name: "Okta".into(),
            issuer: "https://idp.example".into(),
            audience: "idforce".into(),
            certificate_der: Some(vec![0x30, 0x82, 1, 2]),
            jwks_uri: None,
            user_claim: "email".into(),
            match_on: idforce_core::token_exchange::MatchOn::Email,
        }],
    };
    s.save_org(&org).await.unwrap();
    org
}

async fn user(s: &Store, org: &Org, name: &str) -> User {
    let u = User {
        id: s.next_id(prefix::USER).await.unwrap(),
        org_id: org.id,
        username: name.into(),
        email: name.into(),
        first_name: "A".into(),
        last_name: "B".into(),
        profile: "System Administrator".into(),
        active: true,
        password_hash: "$argon2id$x".into(),
        security_token: Some(([7u8; 32], 6)),
        failed_logins: 0,
        locked_until: None,
        created_at: 1,
        updated_at: 2,
        frozen: false,
        federation_id: Some(format!("Fed-{name}")),
    };
    s.save_user(&u).await.unwrap();
    u
}

async fn app(s: &Store, org: &Org) -> ConnectedApp {
    let a = ConnectedApp {
        id: s.next_id(prefix::CONNECTED_APP).await.unwrap(),
        org_id: org.id,
        name: "App".into(),
        client_id: "3MVG9conformance".into(),
        secret_digest: Some([1u8; 32]),
        callback_urls: vec!["https://x/cb".into()],
        scopes: Scopes::parse("api refresh_token").unwrap(),
        certificate_der: Some(vec![1, 2, 3]),
        permitted_users: PermittedUsers::AdminApproved,
        profiles: vec!["System Administrator".into()],
        pre_authorized_users: vec![],
        run_as: None,
        require_secret_for_web_server_flow: false,
        require_secret_for_refresh_token_flow: true,
        require_pkce: true,
        refresh_token_policy: RefreshTokenPolicy::ExpireIfUnused(3600),
        rotate_refresh_tokens: true,
        session_timeout_secs: 900,
        introspect_all_tokens: true,
        id_token_lifetime_secs: 300,
        jwt_access_tokens: true,
        enforce_certificate_validity: true,
        secret_sealed: Some(vec![1, 2, 3]),
        blocked: false,
        api_name: "Conformance".into(),
        contact_email: "admin@example.com".into(),
        oauth_enabled: true,
        // Not the default: the round trip below proves the column is stored.
        device_flow: false,
        post_logout_redirect_uris: Vec::new(),
        max_approvals_per_user: 5,
        initial_access_token: Some(idforce_core::model::ShownSecret {
            digest: [4u8; 32],
            sealed: vec![5, 6],
        }),
        jwks: Some(r#"{"keys":[]}"#.into()),
        jwks_uri: Some("https://keys.example/jwks".into()),
        registration: Some(idforce_core::registration::Registration {
            parent: org.id,
            issued_at: 1_700_000_000,
            access_token: Some([6u8; 32]),
            metadata: idforce_core::registration::ClientMetadata {
                client_name: "Registered".into(),
                grant_types: vec!["authorization_code".into()],
                token_endpoint_auth_method: "private_key_jwt".into(),
                software_id: Some("conformance".into()),
                ..Default::default()
            },
        }),
        // Not the default: the round trip proves the column is stored.
        ip_relaxation: idforce_core::login_policy::IpRelaxation::EnforceRelaxRefresh,
        token_exchange: idforce_core::token_exchange::AppSettings {
            enabled: true,
            require_secret: false,
            handlers: vec!["Okta".into()],
            asset_tokens: Some(idforce_core::token_exchange::AssetTokens {
                lifetime_secs: 120,
                audiences: vec!["https://devices.example".into()],
                certificate_der: None,
                key_sealed: None,
            }),
        },
    };
    s.save_app(&a).await.unwrap();
    a
}

async fn records_round_trip(name: &str, s: Store) {
    assert!(s.is_empty().await.unwrap(), "{name}");
    let o = org(&s).await;
    let u = user(&s, &o, "Mixed.Case@Acme.test").await;
    let a = app(&s, &o).await;
    assert_eq!(s.org(&o.id).await.unwrap().as_deref(), Some(&o), "{name}");
    assert_eq!(
        s.org_by_name("Acme").await.unwrap(),
        Some(o.clone()),
        "{name}"
    );
    assert_eq!(s.user(&u.id).await.unwrap().as_deref(), Some(&u), "{name}");
    assert_eq!(
        s.user_by_username("mixed.case@acme.TEST")
            .await
            .unwrap()
            .as_deref(),
        Some(&u),
        "{name}: usernames ignore case"
    );
    assert_eq!(s.app(&a.id).await.unwrap().as_deref(), Some(&a), "{name}");
    {
        use idforce_core::token_exchange::MatchOn;
        let other = user(&s, &o, "other@acme.test").await;
        let matching = |on, value: &'static str| {
            let s = &s;
            let o = &o;
            async move {
                let found = s.users_matching(&o.id, on, value).await.unwrap();
                found.iter().map(|u| u.username.clone()).collect::<Vec<_>>()
            }
        };
        let alone = vec![u.username.clone()];
        assert_eq!(
            matching(MatchOn::Username, "MIXED.case@acme.test").await,
            alone,
            "{name}"
        );
        assert_eq!(
            matching(MatchOn::Email, "mixed.CASE@acme.test").await,
            alone,
            "{name}"
        );
        assert_eq!(
            matching(MatchOn::FederationId, "Fed-Mixed.Case@Acme.test").await,
            alone,
            "{name}: a Federation ID matches exactly"
        );
        assert!(
            matching(MatchOn::FederationId, "fed-mixed.case@acme.test")
                .await
                .is_empty(),
            "{name}: and with its case"
        );
        assert_eq!(
            matching(MatchOn::Email, "other@acme.test").await,
            vec![other.username.clone()],
            "{name}"
        );
        let elsewhere = s
            .users_matching(
                &SfId::parse("00D000000000999").unwrap(),
                MatchOn::Email,
                "other@acme.test",
            )
            .await
            .unwrap();
        assert!(
            elsewhere.is_empty(),
            "{name}: another org's users are not matched"
        );
        // Two users with one address: both are returned, so that the caller sees the ambiguity.
        let mut twin = (*s.user(&other.id).await.unwrap().unwrap()).clone();
        twin.email = "Mixed.Case@Acme.test".into();
        s.save_user(&twin).await.unwrap();
        assert_eq!(
            matching(MatchOn::Email, "mixed.case@acme.test").await.len(),
            2,
            "{name}"
        );
        twin.email = "other@acme.test".into();
        s.save_user(&twin).await.unwrap();
        // A Federation ID is one user's in its org.
        twin.federation_id = u.federation_id.clone();
        assert!(s.save_user(&twin).await.is_err(), "{name}");
        twin.federation_id = None;
        s.save_user(&twin).await.unwrap();
    }
    assert_eq!(
        s.app_by_initial_access_token(&[4u8; 32]).await.unwrap(),
        Some(a.clone()),
        "{name}: an app by its initial access token"
    );
    assert_eq!(
        s.app_by_initial_access_token(&[5u8; 32]).await.unwrap(),
        None,
        "{name}: no app has this token"
    );
    assert_eq!(
        s.app_by_client_id("3MVG9conformance")
            .await
            .unwrap()
            .as_deref(),
        Some(&a),
        "{name}"
    );
    assert_eq!(
        s.app_by_name(&o.id, "App").await.unwrap(),
        Some(a.clone()),
        "{name}"
    );
    assert_eq!(s.apps(Some(&o.id)).await.unwrap().len(), 1);
    // Alice and the user the matching checks added.
    assert_eq!(s.users(None).await.unwrap().len(), 2);
    assert!(!s.is_empty().await.unwrap());
    // A second user with the same name in another case is a conflict.
    let mut dup = u.clone();
    dup.id = s.next_id(prefix::USER).await.unwrap();
    dup.username = "MIXED.CASE@ACME.TEST".into();
    assert!(s.save_user(&dup).await.is_err(), "{name}");
    // Frozen and blocked are kept, and undone.
    let frozen = User {
        frozen: true,
        ..u.clone()
    };
    s.save_user(&frozen).await.unwrap();
    assert!(s.users(None).await.unwrap()[0].frozen, "{name}");
    let blocked = ConnectedApp {
        blocked: true,
        ..a.clone()
    };
    s.save_app(&blocked).await.unwrap();
    assert!(s.apps(None).await.unwrap()[0].blocked, "{name}");
    s.save_user(&u).await.unwrap();
    s.save_app(&a).await.unwrap();
    assert!(!s.users(None).await.unwrap()[0].frozen, "{name}");
    assert!(!s.apps(None).await.unwrap()[0].blocked, "{name}");
    // meta_or_insert keeps the first value.
    assert_eq!(s.meta_or_insert("k", b"one").await.unwrap(), b"one");
    assert_eq!(s.meta_or_insert("k", b"two").await.unwrap(), b"one");
}

async fn ids_are_unique_under_concurrency(name: &str, s: Store) {
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.next_id(prefix::USER).await.unwrap()
        }));
    }
    let mut ids: Vec<SfId> = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "{name}");
}

async fn lockout_counts_every_failure(name: &str, s: Store) {
    let o = org(&s).await;
    let u = user(&s, &o, "a@x").await;
    let policy = LockoutPolicy {
        attempts: 5,
        duration_secs: 60,
    };
    // Twenty checks at once: exactly the policy's five are reserved.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (s, id) = (s.clone(), u.id);
        tasks.push(tokio::spawn(async move {
            s.reserve_login_attempt(&id, 1000, policy).await.unwrap()
        }));
    }
    let mut reserved = 0;
    for t in tasks {
        reserved += usize::from(t.await.unwrap());
    }
    assert_eq!(reserved, 5, "{name}: checks reserved at once");
    // The sixth locked the user; the five failing find the lock.
    assert!(
        s.login_attempt_failed(&u.id, 1000, policy).await.unwrap(),
        "{name}: locked"
    );
    let locked = s.user(&u.id).await.unwrap().unwrap();
    assert_eq!(locked.locked_until, Some(1000 + 60_000), "{name}");
    assert_eq!(locked.failed_logins, 0, "{name}: the count restarts");
    for _ in 0..4 {
        assert!(s.login_attempt_failed(&u.id, 1000, policy).await.unwrap());
    }
    assert_eq!(s.user(&u.id).await.unwrap().unwrap().failed_logins, 0);
    // Locked: nothing is reserved until the lock ends.
    assert!(
        !s.reserve_login_attempt(&u.id, 60_999, policy)
            .await
            .unwrap(),
        "{name}"
    );
    assert!(
        s.reserve_login_attempt(&u.id, 61_000, policy)
            .await
            .unwrap(),
        "{name}"
    );

    // Control: failures one at a time lock at the fifth, not before.
    let v = user(&s, &o, "b@x").await;
    for i in 1..=5 {
        assert!(s.reserve_login_attempt(&v.id, 1000, policy).await.unwrap());
        let locked = s.login_attempt_failed(&v.id, 1000, policy).await.unwrap();
        assert_eq!(locked, i == 5, "{name}: failure {i}");
    }
    // A success clears the count: four failures, a success, then five more checks fit.
    let w = user(&s, &o, "c@x").await;
    for _ in 0..4 {
        assert!(s.reserve_login_attempt(&w.id, 1000, policy).await.unwrap());
        assert!(!s.login_attempt_failed(&w.id, 1000, policy).await.unwrap());
    }
    assert!(s.reserve_login_attempt(&w.id, 1000, policy).await.unwrap());
    s.clear_login_failures(&w.id).await.unwrap();
    for _ in 0..5 {
        assert!(
            s.reserve_login_attempt(&w.id, 1000, policy).await.unwrap(),
            "{name}"
        );
    }
    assert!(
        !s.reserve_login_attempt(&w.id, 1000, policy).await.unwrap(),
        "{name}"
    );
}

/// A grant's tokens: a session and a refresh token of `family`, digests starting at `d`.
fn grant_tokens(o: &Org, u: &User, a: &ConnectedApp, d: u8, family: Family) -> Tokens {
    Tokens {
        session: session(o, u, a, d, Some(family)),
        refresh: Some(RefreshToken {
            digest: [d; 32].map(|b| b ^ 0x80),
            family,
            org_id: o.id,
            user_id: u.id,
            app_id: a.id,
            scopes: Scopes::parse("api refresh_token").unwrap(),
            family_started_at: 100,
            issued_at: 100,
            last_used_at: 100,
            rotated: false,
            revoked: false,
        }),
        login: Some(login_event(u, a, d)),
    }
}

/// A grant's Login History row; `d` makes its time unique.
fn login_event(u: &User, a: &ConnectedApp, d: u8) -> LoginEvent {
    LoginEvent {
        at: 1_000_000 + i64::from(d),
        org_id: u.org_id,
        user_id: u.id,
        username: u.username.clone(),
        subtype: LoginSubtype::WebServer,
        status: LoginStatus::Success,
        source_ip: Some("198.51.100.1".parse().unwrap()),
        app_id: Some(a.id),
        application: a.name.clone(),
        browser: "Firefox 121".into(),
        platform: "Linux".into(),
        login_url: "idforce.test".into(),
    }
}

/// A session and its login, as a password, client credentials or JWT bearer grant stores them.
fn session_grant(o: &Org, u: &User, a: &ConnectedApp, d: u8) -> Tokens {
    Tokens {
        session: session(o, u, a, d, None),
        refresh: None,
        login: Some(login_event(u, a, d)),
    }
}

/// Whether `login` is in the user's Login History.
async fn recorded(s: &Store, login: &LoginEvent) -> bool {
    let query = LoginHistoryQuery {
        user: Some(login.user_id),
        limit: 10_000,
        ..Default::default()
    };
    let rows = s.login_history(&query).await.unwrap();
    rows.iter().any(|r| r.event == *login)
}

fn session(o: &Org, u: &User, a: &ConnectedApp, d: u8, family: Option<Family>) -> Session {
    Session {
        source_ip: Some("203.0.113.7".into()),
        digest: [d; 32],
        org_id: o.id,
        user_id: u.id,
        app_id: a.id,
        scopes: Scopes::parse("api").unwrap(),
        issued_at: 1000,
        last_used_at: 1000,
        timeout_secs: 60,
        revoked: false,
        family,
    }
}

async fn sessions_codes_and_refresh_families(name: &str, s: Store) {
    let (o, a) = {
        let o = org(&s).await;
        let a = app(&s, &o).await;
        (o, a)
    };
    let u = user(&s, &o, "a@x").await;
    let fam: Family = [9; 16];
    let sess = session(&o, &u, &a, 1, Some(fam));
    s.insert_session(&sess).await.unwrap();
    assert_eq!(
        s.session(&[1; 32]).await.unwrap(),
        Some(sess.clone()),
        "{name}"
    );
    s.touch_session(&[1; 32], 5000).await.unwrap();
    s.touch_session(&[1; 32], 3000).await.unwrap();
    assert_eq!(
        s.session(&[1; 32]).await.unwrap().unwrap().last_used_at,
        5000,
        "{name}: never moves back"
    );
    assert_eq!(
        s.live_sessions(SessionFilter::User(u.id), 6000)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(s.revoke_session(&[1; 32], 6000).await.unwrap());
    assert!(
        !s.revoke_session(&[1; 32], 6000).await.unwrap(),
        "{name}: already revoked"
    );

    // Codes: exactly one of many concurrent redemptions wins; the others see the family.
    let code = AuthCode {
        digest: [2; 32],
        org_id: o.id,
        user_id: u.id,
        app_id: a.id,
        redirect_uri: "https://x/cb".into(),
        scopes: Scopes::parse("api refresh_token").unwrap(),
        code_challenge: Some("c".into()),
        nonce: Some("n".into()),
        auth_time: 10,
        issued_at: 11,
        expires_at: 12,
    };
    s.insert_code(&code).await.unwrap();
    assert_eq!(
        s.code(&[2; 32]).await.unwrap(),
        Some((code.clone(), false)),
        "{name}"
    );
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let s = s.clone();
        let tokens = grant_tokens(&o, &u, &a, 100 + i, [i; 16]);
        tasks.push(tokio::spawn(async move {
            let r = s.redeem_code(&[2; 32], 100, Some(&tokens)).await.unwrap();
            (r, tokens)
        }));
    }
    let mut winners = Vec::new();
    let mut reused = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (Redemption::Redeemed, tokens) => winners.push(tokens),
            (Redemption::Reused, tokens) => reused.push(tokens),
            (Redemption::Unknown, _) => panic!("{name}: the code exists"),
        }
    }
    assert_eq!(winners.len(), 1, "{name}");
    assert_eq!(s.code(&[2; 32]).await.unwrap().map(|c| c.1), Some(true));
    // Every loser revoked the winner's family: its tokens are stored, and revoked.
    let won = &winners[0];
    let won_session = s.session(&won.session.digest).await.unwrap().unwrap();
    assert!(
        won_session.revoked,
        "{name}: the replays ended the winner's session"
    );
    let refresh = won.refresh.as_ref().unwrap();
    assert!(
        s.refresh_token(&refresh.digest)
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    for lost in &reused {
        assert_eq!(
            s.session(&lost.session.digest).await.unwrap(),
            None,
            "{name}: a losing redemption writes no tokens"
        );
    }
    assert_eq!(
        s.redeem_code(&[3; 32], 100, None).await.unwrap(),
        Redemption::Unknown
    );

    // Refresh tokens: rotate once, then a second rotation of the same token fails.
    let rt = RefreshToken {
        digest: [4; 32],
        family: fam,
        org_id: o.id,
        user_id: u.id,
        app_id: a.id,
        scopes: Scopes::parse("api").unwrap(),
        family_started_at: 1,
        issued_at: 1,
        last_used_at: 1,
        rotated: false,
        revoked: false,
    };
    s.insert_refresh_token(&rt).await.unwrap();
    let next = RefreshToken {
        digest: [5; 32],
        issued_at: 2,
        last_used_at: 2,
        ..rt.clone()
    };
    let rotation = Tokens {
        session: session(&o, &u, &a, 20, Some(fam)),
        refresh: Some(next.clone()),
        login: Some(login_event(&u, &a, 20)),
    };
    assert!(
        s.use_refresh_token(&[4; 32], 2, &rotation).await.unwrap(),
        "{name}"
    );
    assert!(s.session(&[20; 32]).await.unwrap().is_some(), "{name}");
    let again = Tokens {
        session: session(&o, &u, &a, 21, Some(fam)),
        refresh: Some(RefreshToken {
            digest: [6; 32],
            ..next.clone()
        }),
        login: Some(login_event(&u, &a, 21)),
    };
    assert!(
        !s.use_refresh_token(&[4; 32], 3, &again).await.unwrap(),
        "{name}: reuse"
    );
    assert!(s.refresh_token(&[4; 32]).await.unwrap().unwrap().rotated);
    assert_eq!(
        s.refresh_token(&[6; 32]).await.unwrap(),
        None,
        "{name}: nothing half-written"
    );
    assert_eq!(s.session(&[21; 32]).await.unwrap(), None, "{name}");
    assert!(
        recorded(&s, rotation.login.as_ref().unwrap()).await,
        "{name}"
    );
    assert!(
        !recorded(&s, again.login.as_ref().unwrap()).await,
        "{name}: a refused rotation records no login"
    );
    assert!(
        s.refresh_token(&[5; 32]).await.unwrap().unwrap().revoked,
        "{name}: a lost rotation revokes the family"
    );
    // Without rotation, a use marks the token used and starts a session.
    let fam2: Family = [10; 16];
    let kept = RefreshToken {
        digest: [22; 32],
        family: fam2,
        ..rt.clone()
    };
    s.insert_refresh_token(&kept).await.unwrap();
    let plain = Tokens {
        session: session(&o, &u, &a, 23, Some(fam2)),
        refresh: None,
        login: Some(login_event(&u, &a, 23)),
    };
    assert!(s.use_refresh_token(&[22; 32], 5_000, &plain).await.unwrap());
    assert_eq!(
        s.refresh_token(&[22; 32])
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        5_000
    );
    assert!(s.session(&[23; 32]).await.unwrap().is_some(), "{name}");

    // Revoking the family ends its refresh tokens and sessions.
    s.insert_session(&session(&o, &u, &a, 7, Some(fam)))
        .await
        .unwrap();
    s.insert_session(&session(&o, &u, &a, 8, None))
        .await
        .unwrap();
    assert_eq!(s.revoke_family(&fam, 60).await.unwrap(), 1, "{name}");
    assert!(s.refresh_token(&[4; 32]).await.unwrap().unwrap().revoked);
    assert!(s.session(&[7; 32]).await.unwrap().unwrap().revoked);
    assert!(!s.session(&[8; 32]).await.unwrap().unwrap().revoked);
    assert_eq!(
        s.revoke_sessions(SessionFilter::App(a.id), true, 61)
            .await
            .unwrap(),
        (2, 1),
        "{name}: sessions 8 and 23, refresh token 22"
    );
    // Purging removes what expired long ago and keeps what may still matter.
    s.insert_session(&session(&o, &u, &a, 9, None))
        .await
        .unwrap();
    let long_after = 1000 + 60_000 + 3_600_000 + 1;
    assert!(s.purge_expired(long_after).await.unwrap() >= 3, "{name}");
    assert_eq!(s.session(&[9; 32]).await.unwrap(), None, "{name}");
    assert!(
        s.refresh_token(&[5; 32]).await.unwrap().is_some(),
        "{name}: revoked refresh tokens stay 30 days"
    );
}

async fn assertions_logins_approvals_and_keys(name: &str, s: Store) {
    assert!(
        s.first_use_of_assertion(&[1; 32], 100, 10).await.unwrap(),
        "{name}"
    );
    assert!(
        !s.first_use_of_assertion(&[1; 32], 100, 20).await.unwrap(),
        "{name}: replay"
    );
    // Expired entries are forgotten.
    assert!(
        s.first_use_of_assertion(&[1; 32], 300, 200).await.unwrap(),
        "{name}"
    );

    let o = org(&s).await;
    let u = user(&s, &o, "a@x").await;
    let a = app(&s, &o).await;
    // A JWT bearer grant spends its assertion and starts its session together; a replay
    // writes neither.
    let first = session_grant(&o, &u, &a, 21);
    assert!(
        s.spend_assertion(&[2; 32], 100, 10, &first).await.unwrap(),
        "{name}"
    );
    assert!(s.session(&[21; 32]).await.unwrap().is_some(), "{name}");
    assert!(recorded(&s, first.login.as_ref().unwrap()).await, "{name}");
    let replay = session_grant(&o, &u, &a, 22);
    assert!(
        !s.spend_assertion(&[2; 32], 100, 20, &replay).await.unwrap(),
        "{name}: replay"
    );
    assert_eq!(s.session(&[22; 32]).await.unwrap(), None, "{name}: replay");
    assert!(
        !recorded(&s, replay.login.as_ref().unwrap()).await,
        "{name}: a replay records no login"
    );
    // A session that cannot be stored leaves the assertion unspent.
    assert!(
        s.spend_assertion(
            &[4; 32],
            100,
            10,
            &Tokens::session(session(&o, &u, &a, 21, None))
        )
        .await
        .is_err(),
        "{name}: duplicate session"
    );
    assert!(
        s.first_use_of_assertion(&[4; 32], 100, 10).await.unwrap(),
        "{name}: the failed grant did not spend its assertion"
    );
    // Concurrent grants (sharing batches where the backend batches them): eight assertions,
    // each presented three times at once, have exactly one grant each, and only the winners'
    // sessions exist.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24u8 {
        let (s, grant) = (s.clone(), session_grant(&o, &u, &a, 40 + i));
        tasks.spawn(async move {
            let won = s
                .spend_assertion(&[50 + i % 8; 32], 100, 10, &grant)
                .await
                .unwrap();
            (i % 8, won, grant)
        });
    }
    let mut winners = [0u32; 8];
    for (assertion, won, grant) in tasks.join_all().await {
        winners[usize::from(assertion)] += u32::from(won);
        let stored = s.session(&grant.session.digest).await.unwrap().is_some();
        assert_eq!(
            stored, won,
            "{name}: a session without its grant, or a lost one"
        );
        assert_eq!(
            recorded(&s, grant.login.as_ref().unwrap()).await,
            won,
            "{name}: a login row without its session, or a lost one"
        );
    }
    assert_eq!(winners, [1; 8], "{name}: one grant per assertion");
    let login = LoginSession {
        digest: [3; 32],
        user_id: u.id,
        auth_time: 5,
        expires_at: 50,
    };
    let ui_login = LoginEvent {
        subtype: LoginSubtype::UiLogin,
        app_id: None,
        application: "Browser".into(),
        ..login_event(&u, &a, 99)
    };
    s.insert_login_session(&login, Some(&ui_login))
        .await
        .unwrap();
    assert!(recorded(&s, &ui_login).await, "{name}");
    assert_eq!(s.login_session(&[3; 32]).await.unwrap(), Some(login));
    s.delete_login_session(&[3; 32]).await.unwrap();
    assert_eq!(s.login_session(&[3; 32]).await.unwrap(), None, "{name}");

    assert_eq!(s.approval(&u.id, &a.id).await.unwrap(), None);
    let scopes = Scopes::parse("api web").unwrap();
    s.approve(&u.id, &a.id, &scopes, 1).await.unwrap();
    assert_eq!(s.approval(&u.id, &a.id).await.unwrap(), Some(scopes));
    assert!(s.has_approved(&u.id, &a.id).await.unwrap());

    let key = |kid: &str, at| StoredKey {
        kid: kid.into(),
        created_at: at,
        retired_at: None,
        publish_until: None,
        private_key: vec![1],
        encrypted: false,
        modulus: vec![2],
        exponent: vec![1, 0, 1],
    };
    s.add_signing_key(&key("1", 10), None).await.unwrap();
    assert!(s.add_signing_key(&key("2", 20), Some(500)).await.unwrap());
    // The same kid again (another node's first key) changes nothing.
    assert!(
        !s.add_signing_key(&key("2", 30), Some(900)).await.unwrap(),
        "{name}"
    );
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2, "{name}");
    assert_eq!(
        (keys[0].retired_at, keys[0].publish_until),
        (Some(20), Some(500))
    );
    assert_eq!(keys[1], key("2", 20));
}

/// A connection of its own to the SQLite store in `dir`, as a second process would open it.
fn sqlite_file(dir: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.path().join("store.db")).unwrap()
}

/// Migration 5 rewrites the keys of recorded assertions as `ledger_key` now computes them:
/// an assertion spent before an upgrade stays spent after it.
#[tokio::test]
async fn spent_assertions_stay_spent_across_the_key_migration() {
    use idforce_core::assertion::ledger_key;
    let assertion = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE5MDAwMDAwMDB9.c2ln";
    let expires_at: Millis = 1_900_000_060_000;
    // The old key: the assertion's SHA-256.
    let legacy = idforce_core::grant::sha256(assertion.as_bytes());

    // A store at version 4 holding one spent assertion under its old key.
    let downgrade = |url: String, placeholder: &'static str| async move {
        drop(idforce_store::open(&url).await.expect("opens"));
        let insert = format!(
            "INSERT INTO assertions (digest, expires_at) VALUES ({}, {})",
            placeholder.replace('N', "1"),
            placeholder.replace('N', "2")
        );
        let statements = [
            "DELETE FROM schema_migrations WHERE version = 5".to_owned(),
            insert,
        ];
        (url, statements)
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let sqlite_url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("store.db").display()
    );
    let (url, [delete, insert]) = downgrade(sqlite_url, "?N").await;
    let conn = sqlite_file(&dir);
    conn.execute(&delete, []).unwrap();
    conn.execute(&insert, rusqlite::params![&legacy[..], expires_at])
        .unwrap();
    drop(conn);
    let mut upgraded = vec![("sqlite", idforce_store::open(&url).await.unwrap())];

    match idforce_store::testing::fresh_postgres_schema().await {
        Ok(pg_url) => {
            let (url, [delete, insert]) = downgrade(pg_url, "$N").await;
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(delete))
                .execute(&pool)
                .await
                .unwrap();
            sqlx::query(sqlx::AssertSqlSafe(insert))
                .bind(&legacy[..])
                .bind(expires_at)
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
            upgraded.push(("postgres", idforce_store::open(&url).await.unwrap()));
        }
        Err(why) if idforce_store::testing::strict() => panic!("{why}"),
        Err(why) => eprintln!("SKIPPED the PostgreSQL backend: {why}"),
    }

    let key = ledger_key(assertion, expires_at);
    assert_eq!(key[8..], legacy[..24]);
    for (name, s) in upgraded {
        assert!(
            !s.first_use_of_assertion(&key, expires_at, 1_900_000_000_000)
                .await
                .unwrap(),
            "{name}: an assertion spent before the upgrade was accepted again"
        );
        // Its record still expires when it did.
        assert!(
            s.first_use_of_assertion(&key, expires_at, expires_at + 1)
                .await
                .unwrap(),
            "{name}"
        );
    }
}

/// SQLite appends spends to a log and merges them into the ledger in bulk, a slice per group
/// commit (ledger.rs): an assertion stays spent before, during and after a merge, and across
/// a restart at any of those points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_assertions_stay_spent_through_merges_and_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("store.db").display()
    );
    // Keys as ledger_key makes them: a few expiry seconds, then a hash.
    let key = |i: u32| -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..8].copy_from_slice(&(1_000_000 + i64::from(i % 3)).to_be_bytes());
        let h = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        k[8..16].copy_from_slice(&h.to_be_bytes());
        k[16..20].copy_from_slice(&i.to_be_bytes());
        k
    };
    let expires_at = |i: u32| 1_000_000 + i64::from(i % 3);
    // Spends `range` from 16 tasks at once (so they share group commits); how many were fresh.
    let spend_all = |s: Store, range: std::ops::Range<u32>, now: i64| async move {
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..16 {
            let s = s.clone();
            let range = range.clone();
            tasks.spawn(async move {
                let mut fresh = 0u32;
                for i in range.skip(t).step_by(16) {
                    fresh += u32::from(
                        s.first_use_of_assertion(&key(i), expires_at(i), now)
                            .await
                            .unwrap(),
                    );
                }
                fresh
            });
        }
        tasks.join_all().await.into_iter().sum::<u32>()
    };
    let raw = |sql: &'static str| {
        let n: i64 = sqlite_file(&dir).query_row(sql, [], |r| r.get(0)).unwrap();
        async move { n }
    };

    // Fewer than a merge's worth, then a restart: the log alone keeps them spent.
    let s = idforce_store::open(&url).await.unwrap();
    assert_eq!(spend_all(s.clone(), 0..100, 10).await, 100);
    assert_eq!(spend_all(s.clone(), 0..100, 20).await, 0, "replays");
    drop(s);
    let s = idforce_store::open(&url).await.unwrap();
    assert_eq!(
        spend_all(s.clone(), 0..100, 30).await,
        0,
        "replays after a restart"
    );

    // Several merges' worth, replayed while the merges run and after they are done.
    const MANY: u32 = 30_000;
    assert_eq!(spend_all(s.clone(), 100..MANY, 40).await, MANY - 100);
    assert_eq!(
        spend_all(s.clone(), 0..MANY, 50).await,
        0,
        "replays while merging"
    );
    let merged = async {
        loop {
            if raw("SELECT count(*) FROM assertions").await > 16_000 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(20), merged)
        .await
        .expect("the spends were merged into the ledger");
    assert!(
        raw("SELECT count(*) FROM assertion_log").await < i64::from(MANY - 16_000),
        "merged spends leave the log"
    );
    assert_eq!(
        spend_all(s.clone(), 0..MANY, 60).await,
        0,
        "replays after merges"
    );
    drop(s);
    let s = idforce_store::open(&url).await.unwrap();
    assert_eq!(
        spend_all(s.clone(), 0..MANY, 70).await,
        0,
        "replays after a restart"
    );

    // An expired record makes way, merged or not; a new assertion is fresh.
    let after_expiry = expires_at(0) + 10;
    assert_eq!(spend_all(s.clone(), 0..300, after_expiry).await, 300);
    assert_eq!(spend_all(s.clone(), MANY..MANY + 10, 80).await, 10);
}

/// The purge finds expired assertions by the expiry their keys start with (a range, not a
/// scan of the whole ledger): every expired one goes, none that is live.
#[tokio::test]
async fn purging_the_ledger_takes_exactly_the_expired_assertions() {
    use idforce_core::assertion::ledger_key;
    let spent: Vec<(Vec<u8>, i64)> = [5i64, 999, 1000, 1001, 70_000, 0]
        .iter()
        .enumerate()
        .map(|(i, &exp)| (ledger_key(&format!("a{i}"), exp).to_vec(), exp))
        .collect();
    let live = |left: Vec<i64>| {
        let mut left = left;
        left.sort_unstable();
        left
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("store.db").display()
    );
    let s = idforce_store::open(&url).await.unwrap();
    let conn = sqlite_file(&dir);
    for (key, exp) in &spent {
        conn.execute(
            "INSERT INTO assertions (digest, expires_at) VALUES (?1, ?2)",
            rusqlite::params![key, exp],
        )
        .unwrap();
    }
    assert_eq!(s.purge_expired(1000).await.unwrap(), 3, "sqlite");
    let left: Vec<i64> = conn
        .prepare("SELECT expires_at FROM assertions")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(live(left), vec![1000, 1001, 70_000], "sqlite");

    match idforce_store::testing::fresh_postgres_schema().await {
        Ok(url) => {
            let s = idforce_store::open(&url).await.unwrap();
            let pool = sqlx::PgPool::connect(&url).await.unwrap();
            for (key, exp) in &spent {
                sqlx::query("INSERT INTO assertions (digest, expires_at) VALUES ($1, $2)")
                    .bind(key)
                    .bind(exp)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            assert_eq!(s.purge_expired(1000).await.unwrap(), 3, "postgres");
            let left: Vec<i64> = sqlx::query_scalar("SELECT expires_at FROM assertions")
                .fetch_all(&pool)
                .await
                .unwrap();
            assert_eq!(live(left), vec![1000, 1001, 70_000], "postgres");
        }
        Err(why) if idforce_store::testing::strict() => panic!("{why}"),
        Err(why) => eprintln!("SKIPPED the PostgreSQL backend: {why}"),
    }
}

/// Purging walks the sessions a slice at a time: every ended session goes, whichever slice it
/// falls in, and no live one does.
async fn purging_many_sessions_spares_the_live_ones(name: &str, s: Store) {
    let o = org(&s).await;
    let u = user(&s, &o, "a@x").await;
    let a = app(&s, &o).await;
    // More than two slices' worth; every third session is still in use.
    let mut inserts = tokio::task::JoinSet::new();
    for i in 0..4_500u32 {
        let mut sess = session(&o, &u, &a, 0, None);
        sess.digest[..4].copy_from_slice(&i.to_be_bytes());
        sess.digest[4] = 1;
        if i % 3 == 0 {
            sess.last_used_at = 10_000_000;
        }
        let s = s.clone();
        inserts.spawn(async move { s.insert_session(&sess).await });
    }
    while let Some(done) = inserts.join_next().await {
        done.unwrap().unwrap();
    }
    let purged = s
        .purge_expired(1000 + 60_000 + 3_600_000 + 1)
        .await
        .unwrap();
    assert_eq!(purged, 3_000, "{name}");
    for i in [0u32, 1, 2_001, 2_997, 2_998, 4_499] {
        let mut digest = [0u8; 32];
        digest[..4].copy_from_slice(&i.to_be_bytes());
        digest[4] = 1;
        assert_eq!(
            s.session(&digest).await.unwrap().is_some(),
            i % 3 == 0,
            "{name}: session {i}"
        );
    }
}

fn device_code(a: &ConnectedApp, d: u8, issued_at: i64) -> DeviceCode {
    DeviceCode {
        digest: [d; 32],
        user_code_digest: [d + 100; 32],
        app_id: a.id,
        scopes: Scopes::parse("api refresh_token").unwrap(),
        issued_at,
        expires_at: issued_at + 600_000,
        interval_secs: 5,
        last_polled_at: None,
        decision: DeviceDecision::Pending,
        redeemed: false,
    }
}

async fn device_codes_poll_decide_and_redeem_once(name: &str, s: Store) {
    let o = org(&s).await;
    let u = user(&s, &o, "a@x").await;
    let a = app(&s, &o).await;
    let other = s.next_id(prefix::CONNECTED_APP).await.unwrap();
    s.insert_device_code(&device_code(&a, 1, 1_000))
        .await
        .unwrap();
    assert!(
        matches!(
            s.insert_device_code(&DeviceCode {
                digest: [2; 32],
                ..device_code(&a, 1, 1_000)
            })
            .await,
            Err(StoreError::Conflict(_))
        ),
        "{name}: a user code is unique"
    );
    let found = s.device_code_by_user_code(&[101; 32]).await.unwrap();
    assert_eq!(found, Some(device_code(&a, 1, 1_000)), "{name}");

    // Polls: on time, too soon (the interval grows by 5 s), on time again.
    let poll = s
        .poll_device_code(&[1; 32], &a.id, 2_000, None)
        .await
        .unwrap();
    assert!(
        matches!(&poll, DevicePoll::OnTime { redeemed: false, code } if code.last_polled_at == Some(2_000)),
        "{name}: {poll:?}"
    );
    let poll = s
        .poll_device_code(&[1; 32], &a.id, 3_000, None)
        .await
        .unwrap();
    assert!(
        matches!(&poll, DevicePoll::TooSoon(code) if code.interval_secs == 10),
        "{name}: {poll:?}"
    );
    let poll = s
        .poll_device_code(&[1; 32], &a.id, 13_000, None)
        .await
        .unwrap();
    assert!(
        matches!(poll, DevicePoll::OnTime { .. }),
        "{name}: {poll:?}"
    );
    // Another app's poll finds nothing, and changes nothing.
    let poll = s
        .poll_device_code(&[1; 32], &other, 50_000, None)
        .await
        .unwrap();
    assert_eq!(poll, DevicePoll::Unknown, "{name}");
    assert_eq!(
        s.poll_device_code(&[9; 32], &a.id, 50_000, None)
            .await
            .unwrap(),
        DevicePoll::Unknown,
        "{name}"
    );

    // The user approves once; a second decision, or one after expiry, is not recorded.
    let approved = DeviceDecision::Approved {
        user_id: u.id,
        auth_time: 4_000,
    };
    assert!(
        s.decide_device_code(&[101; 32], approved, 5_000)
            .await
            .unwrap(),
        "{name}"
    );
    assert!(
        !s.decide_device_code(&[101; 32], DeviceDecision::Denied, 5_000)
            .await
            .unwrap(),
        "{name}: decided already"
    );
    s.insert_device_code(&device_code(&a, 3, 1_000))
        .await
        .unwrap();
    assert!(
        !s.decide_device_code(&[103; 32], approved, 601_000)
            .await
            .unwrap(),
        "{name}: expired"
    );

    // Approved, but polled without tokens: recorded, not spent.
    let poll = s
        .poll_device_code(&[1; 32], &a.id, 60_000, None)
        .await
        .unwrap();
    assert!(
        matches!(&poll, DevicePoll::OnTime { redeemed: false, code } if !code.redeemed),
        "{name}: {poll:?}"
    );
    assert_eq!(
        s.device_code(&[1; 32], &a.id)
            .await
            .unwrap()
            .map(|d| d.decision),
        Some(approved),
        "{name}"
    );
    assert_eq!(s.device_code(&[1; 32], &other).await.unwrap(), None);

    // Concurrent polls of an approved code: exactly one redeems it and stores its tokens.
    let mut tasks = Vec::new();
    for i in 0..6u8 {
        let (s, app) = (s.clone(), a.id);
        let tokens = grant_tokens(&o, &u, &a, 40 + i, [40 + i; 16]);
        tasks.push(tokio::spawn(async move {
            let poll = s
                .poll_device_code(&[1; 32], &app, 100_000, Some(&tokens))
                .await
                .unwrap();
            (poll, tokens)
        }));
    }
    let mut redeemed = 0;
    for t in tasks {
        let (poll, tokens) = t.await.unwrap();
        let stored = s.session(&tokens.session.digest).await.unwrap().is_some();
        match poll {
            DevicePoll::OnTime {
                redeemed: true,
                code,
            } => {
                assert_eq!(code.decision, approved, "{name}");
                assert!(stored, "{name}: the redeeming poll stored its tokens");
                redeemed += 1;
            }
            DevicePoll::OnTime { .. } | DevicePoll::TooSoon(_) => {
                assert!(!stored, "{name}: a poll that did not redeem stored nothing");
            }
            DevicePoll::Unknown => panic!("{name}: the code vanished"),
        }
    }
    assert_eq!(redeemed, 1, "{name}");

    // Denied codes say so.
    s.insert_device_code(&device_code(&a, 4, 1_000))
        .await
        .unwrap();
    assert!(
        s.decide_device_code(&[104; 32], DeviceDecision::Denied, 2_000)
            .await
            .unwrap(),
        "{name}"
    );
    let denied = s
        .device_code_by_user_code(&[104; 32])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(denied.decision, DeviceDecision::Denied, "{name}");

    // Purged an hour after expiry.
    s.purge_expired(1_000 + 600_000 + 3_600_001).await.unwrap();
    assert_eq!(
        s.device_code_by_user_code(&[104; 32]).await.unwrap(),
        None,
        "{name}"
    );
}

/// Writes the grant operations make before one fails, at most: past it, they succeed.
const MOST_WRITES: i64 = 6;

/// Whether a grant's tokens are stored: (session, refresh token).
async fn stored(s: &Store, tokens: &Tokens) -> (bool, bool) {
    let session = s.session(&tokens.session.digest).await.unwrap().is_some();
    if let Some(login) = &tokens.login {
        assert_eq!(
            recorded(s, login).await,
            session,
            "a login row without its session, or a session without its row"
        );
    }
    let refresh = match &tokens.refresh {
        Some(r) => s.refresh_token(&r.digest).await.unwrap().is_some(),
        None => false,
    };
    (session, refresh)
}

/// Every grant operation, with its N-th write failing for each N: after a failure nothing of
/// it is stored (no spent code without its tokens, no rotated refresh token without its
/// successor, no spent assertion or device approval without its session), and once enough
/// writes succeed the whole of it is.
async fn grants_write_all_or_nothing(name: &str, s: Store) {
    use idforce_store::testing::failing_after;
    let o = org(&s).await;
    let u = user(&s, &o, "a@x").await;
    let a = app(&s, &o).await;
    let mut failures = 0;
    for n in 0..=MOST_WRITES {
        let at = |k: u8| k.wrapping_mul(16).wrapping_add(n as u8);
        let ctx = format!("{name}, write {n} fails");

        // A code, spent with its tokens.
        let code = AuthCode {
            digest: [at(1); 32],
            org_id: o.id,
            user_id: u.id,
            app_id: a.id,
            redirect_uri: "https://x/cb".into(),
            scopes: Scopes::parse("api refresh_token").unwrap(),
            code_challenge: None,
            nonce: None,
            auth_time: 1,
            issued_at: 1,
            expires_at: 10_000,
        };
        s.insert_code(&code).await.unwrap();
        let tokens = grant_tokens(&o, &u, &a, at(2), [at(2); 16]);
        let r = failing_after(n, s.redeem_code(&code.digest, 5, Some(&tokens))).await;
        let spent = s.code(&code.digest).await.unwrap().unwrap().1;
        match r {
            Ok(Redemption::Redeemed) => {
                assert!(spent, "{ctx}");
                assert_eq!(stored(&s, &tokens).await, (true, true), "{ctx}");
            }
            Ok(other) => panic!("{ctx}: {other:?}"),
            Err(StoreError::Unavailable(_)) => {
                failures += 1;
                assert!(!spent, "{ctx}: a code spent without its tokens");
                assert_eq!(stored(&s, &tokens).await, (false, false), "{ctx}");
            }
            Err(e) => panic!("{ctx}: {e}"),
        }

        // A rotating refresh token: rotated with its successor and session, or untouched.
        let old = RefreshToken {
            digest: [at(3); 32],
            family: [at(3); 16],
            ..grant_tokens(&o, &u, &a, 0, [0; 16]).refresh.unwrap()
        };
        s.insert_refresh_token(&old).await.unwrap();
        let next = grant_tokens(&o, &u, &a, at(4), old.family);
        let r = failing_after(n, s.use_refresh_token(&old.digest, 6, &next)).await;
        let rotated = s.refresh_token(&old.digest).await.unwrap().unwrap().rotated;
        match r {
            Ok(true) => {
                assert!(rotated, "{ctx}");
                assert_eq!(stored(&s, &next).await, (true, true), "{ctx}");
            }
            Ok(false) => panic!("{ctx}: a fresh token could not be used"),
            Err(_) => {
                failures += 1;
                assert!(!rotated, "{ctx}: rotated without its successor");
                assert_eq!(stored(&s, &next).await, (false, false), "{ctx}");
            }
        }

        // An approved device authorization: spent with its tokens, or pending still.
        s.insert_device_code(&device_code(&a, at(5), 1_000))
            .await
            .unwrap();
        let approved = DeviceDecision::Approved {
            user_id: u.id,
            auth_time: 1_000,
        };
        let user_code = [at(5).wrapping_add(100); 32];
        assert!(
            s.decide_device_code(&user_code, approved, 1_500)
                .await
                .unwrap()
        );
        let device_tokens = grant_tokens(&o, &u, &a, at(6), [at(6); 16]);
        let r = failing_after(
            n,
            s.poll_device_code(&[at(5); 32], &a.id, 2_000, Some(&device_tokens)),
        )
        .await;
        let device = s.device_code(&[at(5); 32], &a.id).await.unwrap().unwrap();
        match r {
            Ok(DevicePoll::OnTime { redeemed: true, .. }) => {
                assert!(device.redeemed, "{ctx}");
                assert_eq!(stored(&s, &device_tokens).await, (true, true), "{ctx}");
            }
            Ok(other) => panic!("{ctx}: {other:?}"),
            Err(_) => {
                failures += 1;
                assert!(!device.redeemed, "{ctx}: spent without its tokens");
                assert_eq!(
                    device.last_polled_at, None,
                    "{ctx}: the poll is undone whole"
                );
                assert_eq!(stored(&s, &device_tokens).await, (false, false), "{ctx}");
            }
        }

        // An assertion, spent with its session.
        let grant = session_grant(&o, &u, &a, at(7));
        let r = failing_after(n, s.spend_assertion(&[at(8); 32], 9_000, 10, &grant)).await;
        let present = stored(&s, &grant).await.0;
        match r {
            Ok(true) => assert!(present, "{ctx}"),
            Ok(false) => panic!("{ctx}: a fresh assertion was refused"),
            Err(_) => {
                failures += 1;
                assert!(!present, "{ctx}");
                assert!(
                    s.first_use_of_assertion(&[at(8); 32], 9_000, 11)
                        .await
                        .unwrap(),
                    "{ctx}: spent without its session"
                );
            }
        }

        // A session and its login (password, client credentials, SOAP): both or neither.
        let single = session_grant(&o, &u, &a, at(11));
        let r = failing_after(n, s.insert_tokens(&single)).await;
        let present = stored(&s, &single).await.0;
        match r {
            Ok(()) => assert!(present, "{ctx}"),
            Err(_) => {
                failures += 1;
                assert!(!present, "{ctx}: a session stored by a failed grant");
            }
        }

        // A replayed code revokes the first redemption's family whole, or not at all.
        let first = grant_tokens(&o, &u, &a, at(9), [at(9); 16]);
        let replayed = AuthCode {
            digest: [at(10); 32],
            ..code.clone()
        };
        s.insert_code(&replayed).await.unwrap();
        assert_eq!(
            s.redeem_code(&replayed.digest, 5, Some(&first))
                .await
                .unwrap(),
            Redemption::Redeemed
        );
        let r = failing_after(n, s.redeem_code(&replayed.digest, 7, None)).await;
        let session_revoked = s
            .session(&first.session.digest)
            .await
            .unwrap()
            .unwrap()
            .revoked;
        let refresh = first.refresh.as_ref().unwrap();
        let refresh_revoked = s
            .refresh_token(&refresh.digest)
            .await
            .unwrap()
            .unwrap()
            .revoked;
        assert_eq!(
            session_revoked, refresh_revoked,
            "{ctx}: a family half revoked"
        );
        match r {
            Ok(Redemption::Reused) => assert!(session_revoked, "{ctx}"),
            Ok(other) => panic!("{ctx}: {other:?}"),
            Err(_) => failures += 1,
        }
    }
    assert!(
        failures >= 5,
        "{name}: every operation failed at least once"
    );
}

/// The directory cache is a decorator that forgets only what a write changed: a thousand
/// failed logins of one user (password spraying) leave the app, the org and the other users
/// cached, so token requests keep their cached path.
#[tokio::test]
async fn failed_logins_leave_the_rest_of_the_directory_cached() {
    use idforce_store::Cached;
    use idforce_store::testing::MemoryStore;
    let memory = MemoryStore::new();
    let s: Store = Arc::new(Cached::new(
        memory.clone(),
        std::time::Duration::from_secs(600),
    ));
    let o = org(&s).await;
    let victim = user(&s, &o, "victim@x").await;
    let bystander = user(&s, &o, "bystander@x").await;
    let a = app(&s, &o).await;

    // What every token request reads, once to fill the cache.
    let token_request_reads = || async {
        s.app_by_client_id(&a.client_id).await.unwrap().unwrap();
        s.org(&o.id).await.unwrap().unwrap();
        s.user(&bystander.id).await.unwrap().unwrap();
        s.user_by_username("BYSTANDER@x").await.unwrap().unwrap();
        s.has_approved(&bystander.id, &a.id).await.unwrap();
    };
    token_request_reads().await;
    let filled = memory.directory_reads();
    for i in 0..1_000 {
        s.reserve_login_attempt(&victim.id, i, LockoutPolicy::default())
            .await
            .unwrap();
        s.login_attempt_failed(&victim.id, i, LockoutPolicy::default())
            .await
            .unwrap();
        token_request_reads().await;
    }
    assert_eq!(
        memory.directory_reads() - filled,
        0,
        "store reads across 1,000 failed logins of another user"
    );
    // The victim's own entry was dropped: the next read of it goes to the store and sees
    // the failures.
    let before = memory.directory_reads();
    let fresh = s.user(&victim.id).await.unwrap().unwrap();
    assert_eq!(memory.directory_reads() - before, 1);
    assert!(fresh.locked_until.is_some() || fresh.failed_logins > 0);
    // The control: a change to the app drops the app, by id and by client id.
    let renamed = ConnectedApp {
        name: "Renamed".into(),
        ..a.clone()
    };
    s.save_app(&renamed).await.unwrap();
    let before = memory.directory_reads();
    let seen = s.app_by_client_id(&a.client_id).await.unwrap().unwrap();
    assert_eq!(
        (seen.name.as_str(), memory.directory_reads() - before),
        ("Renamed", 1)
    );
}

/// Profiles: listed by org and name, renamed by id, a name unique in its org (another org
/// may use it), and an org must exist.
async fn profiles_are_unique_by_name_in_their_org(name: &str, s: Store) {
    let acme = org(&s).await;
    let globex = Org {
        id: s.next_id(prefix::ORG).await.unwrap(),
        name: "Globex".into(),
        instance_url: None,
        created_at: 1,
        my_domain: None,
        logout_url: None,
        sites: Vec::new(),
        oauth: Default::default(),
        time_zone: "UTC".into(),
        token_exchange_handlers: Vec::new(),
    };
    s.save_org(&globex).await.unwrap();
    let profile = |org: &Org, id: SfId, n: &str| Profile {
        id,
        org_id: org.id,
        name: n.into(),
        created_at: 5,
        login_ip_ranges: vec![
            idforce_core::login_policy::IpRange::parse("10.0.0.0-10.0.0.255").unwrap(),
            idforce_core::login_policy::IpRange::parse("::1").unwrap(),
        ],
        login_hours: Some(idforce_core::login_policy::LoginHours {
            days: [
                Some((480, 1080)),
                None,
                None,
                None,
                None,
                None,
                Some((0, 1440)),
            ],
        }),
    };
    let admin = profile(
        &acme,
        s.next_id(prefix::PROFILE).await.unwrap(),
        "System Administrator",
    );
    let standard = profile(
        &acme,
        s.next_id(prefix::PROFILE).await.unwrap(),
        "Standard User",
    );
    s.save_profile(&admin).await.unwrap();
    s.save_profile(&standard).await.unwrap();
    let theirs = profile(
        &globex,
        s.next_id(prefix::PROFILE).await.unwrap(),
        "System Administrator",
    );
    s.save_profile(&theirs).await.unwrap();
    assert_eq!(
        s.profiles(Some(&acme.id)).await.unwrap(),
        vec![standard.clone(), admin.clone()],
        "{name}: by name"
    );
    assert_eq!(s.profiles(None).await.unwrap().len(), 3, "{name}");
    // One profile by name, ignoring case, with its login restrictions.
    assert_eq!(
        s.profile(&acme.id, "standard USER")
            .await
            .unwrap()
            .as_deref(),
        Some(&standard),
        "{name}"
    );
    assert_eq!(s.profile(&acme.id, "Nobody").await.unwrap(), None, "{name}");
    // The same name again in the same org: a conflict, and nothing changed.
    let again = profile(
        &acme,
        s.next_id(prefix::PROFILE).await.unwrap(),
        "Standard User",
    );
    assert!(
        matches!(s.save_profile(&again).await, Err(StoreError::Conflict(_))),
        "{name}"
    );
    assert_eq!(s.profiles(Some(&acme.id)).await.unwrap().len(), 2, "{name}");
    // Renamed by id: keeps its org and creation time.
    let renamed = Profile {
        name: "Standard Platform User".into(),
        created_at: 99,
        ..standard.clone()
    };
    s.save_profile(&renamed).await.unwrap();
    let listed = s.profiles(Some(&acme.id)).await.unwrap();
    assert!(
        listed.iter().any(|p| p.id == standard.id
            && p.name == "Standard Platform User"
            && p.created_at == 5),
        "{name}: {listed:?}"
    );
    // An org that does not exist.
    let orphan = Profile {
        org_id: s.next_id(prefix::ORG).await.unwrap(),
        ..profile(&acme, s.next_id(prefix::PROFILE).await.unwrap(), "Orphan")
    };
    assert!(s.save_profile(&orphan).await.is_err(), "{name}");
}

async fn the_audit_trail_lists_the_newest_change_first(name: &str, s: Store) {
    use idforce_store::AuditRecord;
    assert!(s.audit_trail(None, 10).await.unwrap().is_empty(), "{name}");
    let (acme, globex) = (
        s.next_id(prefix::ORG).await.unwrap(),
        s.next_id(prefix::ORG).await.unwrap(),
    );
    let record = |at: i64, org: Option<SfId>, action: &str| AuditRecord {
        at,
        org,
        actor: "admin (idforce CLI)".into(),
        section: "Connected Apps".into(),
        action: action.into(),
    };
    for (at, org, action) in [
        (10, Some(acme), "first"),
        (30, Some(acme), "third"),
        (20, None, "second"),
        (30, Some(globex), "fourth"),
    ] {
        s.record_change(&record(at, org, action)).await.unwrap();
    }
    let actions = |org: Option<SfId>| {
        let s = s.clone();
        async move {
            s.audit_trail(org.as_ref(), 10)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.action)
                .collect::<Vec<String>>()
        }
    };
    assert_eq!(
        actions(None).await,
        ["fourth", "third", "second", "first"],
        "{name}"
    );
    assert_eq!(
        actions(Some(acme)).await,
        ["third", "first"],
        "{name}: one org's"
    );
    assert_eq!(actions(Some(globex)).await, ["fourth"], "{name}");
    assert_eq!(s.audit_trail(None, 2).await.unwrap().len(), 2, "{name}");
    assert_eq!(
        s.audit_trail(None, 10).await.unwrap()[0],
        record(30, Some(globex), "fourth"),
        "{name}"
    );
}

/// Login History: refused logins recorded alone; listed newest first (in the order recorded),
/// by user, app and time, a page at a time; purged by age and by count, oldest first.
async fn login_history_lists_filters_pages_and_purges(name: &str, s: Store) {
    let o = org(&s).await;
    let (u1, u2) = (user(&s, &o, "a@x").await, user(&s, &o, "b@x").await);
    let a = app(&s, &o).await;
    let list = |q: LoginHistoryQuery| {
        let s = s.clone();
        async move {
            s.login_history(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|r| (r.event.at, r.event.username.clone()))
                .collect::<Vec<_>>()
        }
    };
    let all = || LoginHistoryQuery {
        limit: 100,
        ..Default::default()
    };
    assert!(list(all()).await.is_empty(), "{name}");
    // Ten logins at 10, 20, …, 100, alternating users; odd ones refused and without an app.
    for i in 1..=10i64 {
        let u = if i % 2 == 0 { &u1 } else { &u2 };
        let mut e = login_event(u, &a, 0);
        e.at = i * 10;
        if i % 2 == 1 {
            e.status = LoginStatus::InvalidPassword;
            e.app_id = None;
            e.source_ip = None;
        }
        s.record_login(&e).await.unwrap();
    }
    let rows = s.login_history(&all()).await.unwrap();
    assert_eq!(rows.len(), 10, "{name}");
    assert_eq!(rows[0].event.at, 100, "{name}: newest first");
    assert_eq!(rows[9].event.status, LoginStatus::InvalidPassword, "{name}");
    assert_eq!(rows[9].event.source_ip, None, "{name}");
    assert_eq!(
        rows[0].event,
        {
            let mut e = login_event(&u1, &a, 0);
            e.at = 100;
            e
        },
        "{name}: a row reads back whole"
    );
    let by_user = list(LoginHistoryQuery {
        user: Some(u1.id),
        ..all()
    })
    .await;
    assert_eq!(
        by_user.iter().map(|r| r.0).collect::<Vec<_>>(),
        [100, 80, 60, 40, 20],
        "{name}"
    );
    assert_eq!(
        list(LoginHistoryQuery {
            org: Some(o.id),
            ..all()
        })
        .await
        .len(),
        10,
        "{name}"
    );
    let other_org = SfId::parse("00D0000000000ZZ").unwrap();
    assert!(
        list(LoginHistoryQuery {
            org: Some(other_org),
            ..all()
        })
        .await
        .is_empty(),
        "{name}"
    );
    let by_app = list(LoginHistoryQuery {
        app: Some(a.id),
        ..all()
    })
    .await;
    assert_eq!(by_app, by_user, "{name}: the refused ones had no app");
    let since = list(LoginHistoryQuery {
        since: Some(80),
        ..all()
    })
    .await;
    assert_eq!(
        since.iter().map(|r| r.0).collect::<Vec<_>>(),
        [100, 90, 80],
        "{name}"
    );
    // Pages of three, each after the last row of the one before.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = s
            .login_history(&LoginHistoryQuery {
                before,
                limit: 3,
                ..all()
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        pages.push(page.iter().map(|r| r.event.at).collect::<Vec<_>>());
    }
    assert_eq!(
        pages,
        [
            vec![100, 90, 80],
            vec![70, 60, 50],
            vec![40, 30, 20],
            vec![10]
        ],
        "{name}"
    );
    // Two rows at one instant: both listed, the later recorded first, and paged apart.
    let mut twin = login_event(&u1, &a, 0);
    twin.at = 100;
    twin.username = "twin".into();
    s.record_login(&twin).await.unwrap();
    let top = s
        .login_history(&LoginHistoryQuery { limit: 1, ..all() })
        .await
        .unwrap();
    assert_eq!(top[0].event.username, "twin", "{name}");
    let next = list(LoginHistoryQuery {
        before: Some(top[0].id),
        limit: 1,
        ..all()
    })
    .await;
    assert_eq!(next, [(100, "a@x".to_owned())], "{name}");

    // By age: rows before 30 go (10 and 20), 30 stays.
    assert_eq!(s.purge_login_history(30, 1_000).await.unwrap(), 2, "{name}");
    assert_eq!(list(all()).await.last().unwrap().0, 30, "{name}");
    // By count: the newest four stay.
    assert_eq!(s.purge_login_history(0, 4).await.unwrap(), 5, "{name}");
    assert_eq!(
        list(all()).await.iter().map(|r| r.0).collect::<Vec<_>>(),
        [100, 100, 90, 80],
        "{name}"
    );
    assert_eq!(
        s.purge_login_history(0, 4).await.unwrap(),
        0,
        "{name}: nothing more"
    );
}

/// Connected Apps OAuth Usage's User Count: distinct users with a live refresh token per app of
/// the org; revoked and rotated-away tokens do not count, nor other orgs' apps.
async fn app_users_count_the_holders_of_live_refresh_tokens(name: &str, s: Store) {
    let o = org(&s).await;
    let (u1, u2) = (user(&s, &o, "a@x").await, user(&s, &o, "b@x").await);
    let a = app(&s, &o).await;
    assert!(s.app_users(&o.id).await.unwrap().is_empty(), "{name}");
    // u1: two families; u2: one, then revoked.
    s.insert_tokens(&grant_tokens(&o, &u1, &a, 1, [1; 16]))
        .await
        .unwrap();
    s.insert_tokens(&grant_tokens(&o, &u1, &a, 2, [2; 16]))
        .await
        .unwrap();
    s.insert_tokens(&grant_tokens(&o, &u2, &a, 3, [3; 16]))
        .await
        .unwrap();
    assert_eq!(s.app_users(&o.id).await.unwrap(), [(a.id, 2)], "{name}");
    s.revoke_family(&[3; 16], 10).await.unwrap();
    assert_eq!(s.app_users(&o.id).await.unwrap(), [(a.id, 1)], "{name}");
    // A user of another org holding a token of this org's app counts here, not there.
    let o2 = Org {
        id: s.next_id(prefix::ORG).await.unwrap(),
        name: "Globex".into(),
        ..o.clone()
    };
    s.save_org(&o2).await.unwrap();
    let u3 = user(&s, &o2, "c@y").await;
    s.insert_tokens(&grant_tokens(&o2, &u3, &a, 4, [4; 16]))
        .await
        .unwrap();
    assert_eq!(s.app_users(&o.id).await.unwrap(), [(a.id, 2)], "{name}");
    assert!(s.app_users(&o2.id).await.unwrap().is_empty(), "{name}");
    let other = SfId::parse("00D0000000000ZZ").unwrap();
    assert!(s.app_users(&other).await.unwrap().is_empty(), "{name}");
}

/// OAuth Usage's Revoke (one user's tokens of one app) and Session Management (an org's live
/// sessions, most recently used first, with their source address).
async fn one_users_tokens_of_one_app_and_an_orgs_sessions(name: &str, s: Store) {
    let o = org(&s).await;
    let (u1, u2) = (user(&s, &o, "a@x").await, user(&s, &o, "b@x").await);
    let a1 = app(&s, &o).await;
    let a2 = ConnectedApp {
        id: s.next_id(prefix::CONNECTED_APP).await.unwrap(),
        name: "Other".into(),
        api_name: "Other".into(),
        client_id: "3MVG9other".into(),
        ..a1.clone()
    };
    // One app per initial access token: the stores keep them unique.
    assert!(
        matches!(s.save_app(&a2).await, Err(StoreError::Conflict(_))),
        "{name}: a second app with the same initial access token"
    );
    let a2 = ConnectedApp {
        initial_access_token: None,
        ..a2
    };
    s.save_app(&a2).await.unwrap();
    for (u, a, d) in [(&u1, &a1, 1), (&u1, &a2, 2), (&u2, &a1, 3)] {
        let mut t = grant_tokens(&o, u, a, d, [d; 16]);
        t.session.last_used_at = 1000 + i64::from(d);
        s.insert_tokens(&t).await.unwrap();
    }
    let now = 5000;
    let digests = |v: Vec<Session>| v.iter().map(|x| x.digest[0]).collect::<Vec<u8>>();
    let one = SessionFilter::UserApp(u1.id, a1.id);
    assert_eq!(
        digests(s.live_sessions(one, now).await.unwrap()),
        [1],
        "{name}"
    );
    let refresh = s.live_refresh_tokens(one).await.unwrap();
    assert_eq!(refresh.len(), 1, "{name}");
    assert_eq!(
        (refresh[0].user_id, refresh[0].app_id),
        (u1.id, a1.id),
        "{name}"
    );
    let listed = s.org_sessions(&o.id, now, 10).await.unwrap();
    assert_eq!(
        digests(listed.clone()),
        [3, 2, 1],
        "{name}: most recently used first"
    );
    assert_eq!(
        listed[0].source_ip.as_deref(),
        Some("203.0.113.7"),
        "{name}"
    );
    assert_eq!(
        s.org_sessions(&o.id, now, 2).await.unwrap().len(),
        2,
        "{name}"
    );
    let elsewhere = SfId::parse("00D0000000000ZZ").unwrap();
    assert!(
        s.org_sessions(&elsewhere, now, 10)
            .await
            .unwrap()
            .is_empty(),
        "{name}"
    );

    assert_eq!(
        s.revoke_sessions(one, true, now).await.unwrap(),
        (1, 1),
        "{name}"
    );
    assert!(
        s.live_sessions(one, now).await.unwrap().is_empty(),
        "{name}"
    );
    // The same user's other app and another user of the same app keep theirs.
    let u1_left = s
        .live_sessions(SessionFilter::User(u1.id), now)
        .await
        .unwrap();
    assert_eq!(digests(u1_left), [2], "{name}");
    let a1_left = s
        .live_refresh_tokens(SessionFilter::App(a1.id))
        .await
        .unwrap();
    assert_eq!(a1_left.len(), 1, "{name}");
    assert_eq!(a1_left[0].user_id, u2.id, "{name}");
    assert_eq!(
        digests(s.org_sessions(&o.id, now, 10).await.unwrap()),
        [3, 2],
        "{name}"
    );
}

/// An org's My Domain, Logout URL and sites come back as saved; no two orgs share a My Domain.
async fn my_domains_are_unique_and_sites_are_kept(name: &str, s: Store) {
    let mut acme = org(&s).await;
    acme.my_domain = Some("acme.my.localhost".into());
    acme.logout_url = Some("https://acme.test/bye".into());
    acme.oauth = OAuthSettings {
        allow_username_password_flow: false,
        allow_user_agent_flow: false,
        require_pkce_for_all_apps: true,
    };
    acme.sites = vec![idforce_core::model::Site {
        id: s.next_id(prefix::SITE).await.unwrap(),
        name: "Partners".into(),
        path: "partners".into(),
    }];
    s.save_org(&acme).await.unwrap();
    let stored = s.org(&acme.id).await.unwrap().unwrap();
    assert_eq!(*stored, acme, "{name}");
    assert_eq!(s.orgs().await.unwrap(), [acme.clone()], "{name}");
    let globex = Org {
        id: s.next_id(prefix::ORG).await.unwrap(),
        name: "Globex".into(),
        sites: Vec::new(),
        oauth: Default::default(),
        time_zone: "UTC".into(),
        logout_url: None,
        ..acme.clone()
    };
    assert!(
        matches!(s.save_org(&globex).await, Err(StoreError::Conflict(_))),
        "{name}"
    );
    // The control: another My Domain, or none, is saved.
    let globex = Org {
        my_domain: Some("globex.my.localhost".into()),
        ..globex
    };
    s.save_org(&globex).await.unwrap();
    let none = Org {
        id: s.next_id(prefix::ORG).await.unwrap(),
        name: "Initech".into(),
        my_domain: None,
        ..globex.clone()
    };
    s.save_org(&none).await.unwrap();
    let again = Org {
        id: s.next_id(prefix::ORG).await.unwrap(),
        name: "Umbrella".into(),
        ..none
    };
    s.save_org(&again).await.unwrap();
}

/// A user's approvals of an app: the families with a live current refresh token, oldest first;
/// revoked families, other users' and other apps' are not theirs.
async fn approvals_are_the_live_families_oldest_first(name: &str, s: Store) {
    let o = org(&s).await;
    let (u, other) = (user(&s, &o, "a@x").await, user(&s, &o, "b@x").await);
    let a = app(&s, &o).await;
    let started = |mut t: Tokens, at: Millis| {
        if let Some(r) = t.refresh.as_mut() {
            r.family_started_at = at;
        }
        t
    };
    // Inserted out of order; family 3 is the oldest.
    for (d, family, at) in [(1u8, [1u8; 16], 300), (2, [2; 16], 200), (3, [3; 16], 100)] {
        s.insert_tokens(&started(grant_tokens(&o, &u, &a, d, family), at))
            .await
            .unwrap();
    }
    s.insert_tokens(&grant_tokens(&o, &other, &a, 4, [4; 16]))
        .await
        .unwrap();
    assert_eq!(
        s.live_families(&u.id, &a.id).await.unwrap(),
        [[3u8; 16], [2; 16], [1; 16]],
        "{name}"
    );
    s.revoke_family(&[2; 16], 500).await.unwrap();
    assert_eq!(
        s.live_families(&u.id, &a.id).await.unwrap(),
        [[3u8; 16], [1; 16]],
        "{name}"
    );
    assert_eq!(
        s.live_families(&other.id, &a.id).await.unwrap(),
        [[4u8; 16]],
        "{name}"
    );
}

/// The login rate (`LoginRate::admit` is the rule): within the rate every login is counted,
/// beyond it none is, the previous window slides out, and logins racing from many tasks are
/// admitted exactly up to the limit.
async fn the_login_rate_slides_and_holds_under_concurrency(name: &str, s: Store) {
    const HOUR: i64 = 3_600_000;
    let o = org(&s).await;
    let (u1, u2) = (user(&s, &o, "rate1@x").await, user(&s, &o, "rate2@x").await);
    let rate = LoginRate {
        logins: 3,
        window_ms: HOUR,
    };
    let start = 1000 * HOUR;
    for i in 0..3 {
        assert!(
            s.take_login(&u1.id, start + i, rate).await.unwrap(),
            "{name}: login {i}"
        );
    }
    assert!(
        !s.take_login(&u1.id, start + 10, rate).await.unwrap(),
        "{name}: the fourth"
    );
    assert!(
        s.take_login(&u2.id, start + 10, rate).await.unwrap(),
        "{name}: another user"
    );
    assert!(
        !s.take_login(&u1.id, start + HOUR + 60_000, rate)
            .await
            .unwrap(),
        "{name}"
    );
    let later = start + HOUR + HOUR / 3;
    assert!(
        s.take_login(&u1.id, later, rate).await.unwrap(),
        "{name}: room again"
    );
    assert!(
        !s.take_login(&u1.id, later, rate).await.unwrap(),
        "{name}: and no more"
    );
    assert!(
        s.take_login(&u1.id, start + 3 * HOUR, rate).await.unwrap(),
        "{name}"
    );

    // Twenty logins at once against a limit of ten: exactly ten are let in.
    let rate = LoginRate {
        logins: 10,
        window_ms: HOUR,
    };
    let at = start + 10 * HOUR;
    let racing: Vec<_> = (0..20)
        .map(|_| {
            let (s, id) = (s.clone(), u2.id);
            tokio::spawn(async move { s.take_login(&id, at, rate).await.unwrap() })
        })
        .collect();
    let mut admitted = 0;
    for r in racing {
        admitted += usize::from(r.await.unwrap());
    }
    assert_eq!(admitted, 10, "{name}");
}
