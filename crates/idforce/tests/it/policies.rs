//! The limits and policies that make Salesforce logins fail (issue: registration, policies):
//! flows an org switches off. Each refusal with Salesforce's answer, its Login History status,
//! and its control.

use crate::browser::{Browser, authorize_url};
use crate::helpers::*;

fn org_settings(settings: &str) -> String {
    let config = CONFIG.replacen(
        "id = \"00D000000000001\"\n",
        &format!("id = \"00D000000000001\"\n{settings}\n"),
        1,
    );
    assert_ne!(config, CONFIG);
    config
}

fn password_form<'a>(username: &'a str, password: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "password"),
        ("client_id", INTEGRATION_ID),
        ("client_secret", INTEGRATION_SECRET),
        ("username", username),
        ("password", password),
    ]
}

#[tokio::test]
async fn a_switched_off_username_password_flow_answers_as_a_wrong_password() {
    let s = TestServer::start_with(
        &org_settings("allow_username_password_flow = false"),
        |_| {},
    )
    .await;
    let db = database_url(s.dir.path());
    let (st, e) = s.token(&password_form(ALICE, ALICE_PASSWORD)).await;
    assert_error(st, &e, 400, "invalid_grant", "authentication failure");
    let rows = admin(&db, &["login-history", "--user", ALICE]);
    assert_eq!(
        rows[0]["status"], "Username-Password Flow Disabled",
        "{rows}"
    );
    // Other flows of the org are not the username-password flow: JWT bearer and SOAP login.
    let assertion = sign_jwt(&serde_json::json!({
        "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": now_secs() + 180,
    }));
    let (st, t) = s.jwt_login(&assertion).await;
    assert_eq!(st, 200, "{t}");

    // Switched on again by the CLI: the same request works on the running server.
    let view = admin_seen(
        &db,
        &[
            "org",
            "update",
            "Acme",
            "--allow-username-password-flow",
            "true",
        ],
    );
    assert_eq!(view["allow_username_password_flow"], true);
    let (st, t) = s.token(&password_form(ALICE, ALICE_PASSWORD)).await;
    assert_eq!(st, 200, "{t}");
}

#[tokio::test]
async fn a_switched_off_user_agent_flow_and_pkce_for_every_app() {
    let s = TestServer::start_with(
        &org_settings("allow_user_agent_flow = false\nrequire_pkce_for_all_apps = true"),
        |_| {},
    )
    .await;
    let redirected = |url: String| {
        let s = &s;
        async move {
            let mut b = Browser::new(s);
            let page = b.get(&url).await;
            assert_eq!(page.status, 302, "{}", page.body);
            page.location.unwrap()
        }
    };
    // The user-agent flow: its error in the fragment, before any login.
    let at = redirected(authorize_url(
        SELF_SERVICE_ID,
        SELF_SERVICE_CALLBACK,
        &[("response_type", "token"), ("state", "s")],
    ))
    .await;
    assert!(
        at.starts_with(&format!(
            "{SELF_SERVICE_CALLBACK}#error=unsupported_response_type&error_description=response+type+not+supported"
        )),
        "{at}"
    );
    // The web server flow without a challenge, for an app that does not itself require PKCE.
    let at = redirected(authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[])).await;
    assert!(
        at.starts_with(&format!(
            "{SELF_SERVICE_CALLBACK}?error=invalid_request&error_description=missing+required+code+challenge"
        )),
        "{at}"
    );
    // The control: with a challenge, the login page.
    let mut b = Browser::new(&s);
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
                ("code_challenge_method", "S256"),
            ],
        ))
        .await;
    assert!(page.is_login(), "{}", page.body);
}
