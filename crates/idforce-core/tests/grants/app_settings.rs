//! Settings of Setup's Connected App form that change what the wire answers: without "Enable
//! OAuth Settings" the app has no consumer key (every grant and the authorize request answer
//! as for an unknown client); without "Enable for Device Flow" its device authorization
//! requests are refused. Each refusal beside its control on the same world.

use idforce_core::authorize::{self, AuthorizeError};
use idforce_core::device;
use idforce_core::wire::{ClientCredentials, Params};

use crate::world::*;

fn params(form: &[(&str, &str)]) -> Params {
    Params::new(
        form.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

async fn authorize(w: &World) -> Result<(), AuthorizeError> {
    let p = params(&[
        ("response_type", "code"),
        ("client_id", "3MVG9grants"),
        ("redirect_uri", &w.app.callback_urls[0]),
    ]);
    authorize::validate(&w.ctx(), &p).await.map(|_| ())
}

async fn device_authorization(
    w: &World,
) -> Result<device::DeviceAuthorization, idforce_core::OAuthError> {
    let p = params(&[
        ("response_type", "device_code"),
        ("client_id", "3MVG9grants"),
        ("scope", "api"),
    ]);
    let client = ClientCredentials::from_request(&p, None)?;
    device::authorize(&w.ctx(), &p, &client).await
}

#[tokio::test]
async fn an_app_without_oauth_settings_is_an_unknown_client() {
    use idforce_core::ports::Approvals;
    let mut w = World::new().await;
    w.store
        .approve(&w.alice.id, &w.app.id, &w.app.scopes, w.now)
        .await
        .unwrap();
    // Controls: the same requests pass while OAuth is enabled.
    client_credentials(&w).await.unwrap();
    jwt_bearer(&w).await.unwrap();
    assert!(authorize(&w).await.is_ok());

    w.change_app(|a| a.oauth_enabled = false).await;
    for result in [client_credentials(&w).await, jwt_bearer(&w).await] {
        refused(
            result,
            400,
            "invalid_client_id",
            "client identifier invalid",
        );
    }
    match authorize(&w).await {
        Err(AuthorizeError::Page(e)) => assert_eq!(
            (e.code.as_str(), e.description.as_ref()),
            ("invalid_client_id", "client identifier invalid")
        ),
        other => panic!("expected the unknown-client page, got {:?}", other.err()),
    }

    w.change_app(|a| a.oauth_enabled = true).await;
    client_credentials(&w).await.unwrap();
}

#[tokio::test]
async fn device_flow_is_served_only_for_apps_enabled_for_it() {
    let mut w = World::new().await;
    // Control: enabled (as every app made by the config file or the CLI is).
    assert!(w.app.device_flow);
    device_authorization(&w).await.unwrap();

    w.change_app(|a| a.device_flow = false).await;
    let r = device_authorization(&w).await;
    assert!(cause_of(device_authorization(&w).await).contains("Enable for Device Flow"));
    refused(
        r,
        400,
        "invalid_grant",
        "device flow is not enabled for the app",
    );
}
