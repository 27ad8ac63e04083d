//! What every grant shares: the grant type and the request's parameters.

use idforce_core::grant::GrantType;

use crate::world::*;

#[tokio::test]
async fn unknown_and_missing_grant_types_are_unsupported() {
    let w = World::new().await;
    for grant in ["implicit", "Password", ""] {
        refused(
            w.token(&[("grant_type", grant), ("client_id", "3MVG9grants")])
                .await,
            400,
            "unsupported_grant_type",
            "grant type not supported",
        );
    }
    refused(
        w.token(&[("client_id", "3MVG9grants")]).await,
        400,
        "unsupported_grant_type",
        "grant type not supported",
    );
}

#[tokio::test]
async fn a_parameter_given_twice_is_refused() {
    let w = World::new().await;
    refused(
        w.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
            ("scope", "api"),
            ("scope", "refresh_token"),
        ])
        .await,
        400,
        "invalid_request",
        "duplicate parameter: scope",
    );
}

#[tokio::test]
async fn each_grant_type_is_named_by_its_value() {
    let w = World::new().await;
    let (grant, _) = w
        .token_with_grant(&[
            ("grant_type", "client_credentials"),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
        ])
        .await
        .unwrap();
    assert_eq!(grant, GrantType::ClientCredentials);
    assert_eq!(
        GrantType::parse("urn:ietf:params:oauth:grant-type:device_code"),
        Some(GrantType::Device)
    );
    assert_eq!(
        GrantType::parse("urn:ietf:params:oauth:grant-type:jwt-bearer"),
        Some(GrantType::JwtBearer)
    );
}
