//! An org's "OAuth and OpenID Connect Settings": flows it switches off for every app. Each
//! refusal beside its control on the same world.

use idforce_core::authorize::{self, AuthorizeError};
use idforce_core::login_history::LoginStatus;
use idforce_core::wire::Params;

use crate::world::*;

fn params(form: &[(&str, &str)]) -> Params {
    Params::new(
        form.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

async fn password(
    w: &World,
) -> Result<idforce_core::wire::TokenResponse, idforce_core::OAuthError> {
    let with_token = format!("{PASSWORD}{SECURITY_TOKEN}");
    w.token(&[
        ("grant_type", "password"),
        ("client_id", "3MVG9grants"),
        ("client_secret", SECRET),
        ("username", "alice@acme.test"),
        ("password", &with_token),
    ])
    .await
}

async fn authorize(w: &World, extra: &[(&str, &str)]) -> Result<(), AuthorizeError> {
    let mut form = vec![
        ("client_id", "3MVG9grants"),
        ("redirect_uri", w.app.callback_urls[0].as_str()),
    ];
    form.extend_from_slice(extra);
    authorize::validate(&w.ctx(), &params(&form))
        .await
        .map(|_| ())
}

/// The error a refused authorize request redirects with.
fn redirected(r: Result<(), AuthorizeError>) -> (String, String) {
    match r {
        Err(AuthorizeError::Redirect { error, .. }) => (
            error.code.as_str().to_owned(),
            error.description.into_owned(),
        ),
        other => panic!("expected a redirect with an error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_switched_off_username_password_flow_fails_as_a_wrong_password_and_says_why_in_login_history()
 {
    let mut w = World::new().await;
    password(&w).await.unwrap();

    w.change_org(|o| o.oauth.allow_username_password_flow = false)
        .await;
    let r = password(&w).await;
    assert!(cause_of(password(&w).await).contains("username-password"));
    refused(r, 400, "invalid_grant", "authentication failure");
    let newest = &w.history().await[0];
    assert_eq!(newest.status, LoginStatus::UsernamePasswordFlowDisabled);
    assert_eq!(newest.status.label(), "Username-Password Flow Disabled");
    // A wrong password is still a wrong password.
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
    assert_eq!(w.history().await[0].status, LoginStatus::InvalidPassword);

    w.change_org(|o| o.oauth.allow_username_password_flow = true)
        .await;
    password(&w).await.unwrap();
}

#[tokio::test]
async fn a_switched_off_user_agent_flow_refuses_token_responses_and_keeps_codes() {
    let mut w = World::new().await;
    authorize(&w, &[("response_type", "token")]).await.unwrap();

    w.change_org(|o| o.oauth.allow_user_agent_flow = false)
        .await;
    assert_eq!(
        redirected(authorize(&w, &[("response_type", "token")]).await),
        (
            "unsupported_response_type".to_owned(),
            "response type not supported".to_owned()
        )
    );
    authorize(&w, &[("response_type", "token id_token"), ("nonce", "n")])
        .await
        .unwrap_err();
    // The web server flow is another flow.
    authorize(&w, &[("response_type", "code")]).await.unwrap();
}

#[tokio::test]
async fn pkce_required_of_every_app_of_the_org() {
    let mut w = World::new().await;
    assert!(!w.app.require_pkce);
    authorize(&w, &[("response_type", "code")]).await.unwrap();

    w.change_org(|o| o.oauth.require_pkce_for_all_apps = true)
        .await;
    assert_eq!(
        redirected(authorize(&w, &[("response_type", "code")]).await),
        (
            "invalid_request".to_owned(),
            "missing required code challenge".to_owned()
        )
    );
    authorize(
        &w,
        &[
            ("response_type", "code"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ],
    )
    .await
    .unwrap();
}
