//! Token exchange: an identity provider's JWT judged by a declared handler (its certificate
//! or its published keys), and this server's own tokens exchanged for another app's session.
//! Each refusal sits beside a control that passes on the same world.

use idforce_core::login_history::{LoginStatus, LoginSubtype};
use idforce_core::model::{ConnectedApp, PermittedUsers};
use idforce_core::ports::{JwtSigner, Sessions};
use idforce_core::sfid::prefix;
use idforce_core::token_exchange::{AppSettings, Handler, MatchOn};
use idforce_store::Accounts;
use serde_json::{Value, json};

use crate::world::*;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const IDP: &str = "https://idp.example";
const KEYS_URI: &str = "https://idp.example/keys";
const AUDIENCE: &str = "api://idforce";

/// A world whose org declares two handlers — "Okta" (the fixture certificate, users by email)
/// and "Keys" (a published key set, users by Federation ID) — and whose app may use both.
async fn world() -> World {
    let mut w = World::new().await;
    w.change_org(|o| {
        o.token_exchange_handlers = vec![
            Handler {
                name: "Okta".into(),
                issuer: IDP.into(),
                audience: AUDIENCE.into(),
                certificate_der: Some(pem_der("jwt.crt")),
                jwks_uri: None,
                user_claim: "email".into(),
                match_on: MatchOn::Email,
            },
            Handler {
                name: "Keys".into(),
                issuer: IDP.into(),
                audience: AUDIENCE.into(),
                certificate_der: None,
                jwks_uri: Some(KEYS_URI.into()),
                user_claim: "sub".into(),
                match_on: MatchOn::FederationId,
            },
        ]
    })
    .await;
    w.change_app(|a| {
        a.token_exchange = AppSettings {
            enabled: true,
            require_secret: true,
            handlers: vec!["Okta".into(), "Keys".into()],
            asset_tokens: None,
        }
    })
    .await;
    w.change_alice(|u| u.federation_id = Some("00u-Alice".into()))
        .await;
    w.key_sets
        .publish(KEYS_URI, &json!({"keys": [jwk_of("other.key", "k1")]}));
    w
}

fn claims(w: &World) -> Value {
    json!({"iss": IDP, "aud": AUDIENCE, "sub": "00u-Alice", "email": "ALICE@acme.test",
           "exp": w.now / 1000 + 300, "nbf": w.now / 1000 - 5})
}

/// Form fields beyond the exchange's own.
type Extra<'a> = &'a [(&'a str, &'a str)];

async fn exchange(
    w: &World,
    token: &str,
    kind: &str,
    extra: &[(&str, &str)],
) -> Result<idforce_core::wire::TokenResponse, idforce_core::OAuthError> {
    let mut form = vec![
        ("grant_type", GRANT),
        ("client_id", "3MVG9grants"),
        ("client_secret", SECRET),
        ("subject_token", token),
        ("subject_token_type", kind),
    ];
    form.extend_from_slice(extra);
    w.token(&form).await
}

#[tokio::test]
async fn an_identity_providers_jwt_becomes_a_session_of_the_app() {
    let w = world().await;
    let token = sign_assertion("jwt.key", &claims(&w));
    // Salesforce's spelling of the type, and the default handler (the app's first).
    let r = exchange(&w, &token, "urn:ietf:params:oauth:token-type:JWT", &[])
        .await
        .unwrap();
    assert!(w.live(&r.access_token).await);
    assert_eq!(r.issued_token_type, Some(ACCESS));
    assert_eq!(r.token_type, "Bearer");
    assert_eq!(
        r.refresh_token, None,
        "Salesforce's answer has no refresh token"
    );
    assert!(r.signature.is_some() && r.issued_at.is_some());
    assert_eq!(r.scope.as_deref(), Some("api openid"));
    let id_token = r.id_token.as_deref().expect("an id_token for openid");
    assert!(id_token.contains(&w.alice.id.to18()), "{id_token}");
    let row = w.history().await.remove(0);
    assert_eq!(
        (row.subtype, row.status, row.user_id),
        (
            LoginSubtype::TokenExchange,
            LoginStatus::Success,
            w.alice.id
        )
    );

    // The second handler, named: the issuer's published key, the user by Federation ID.
    let keyed = sign_assertion_with_kid("other.key", "k1", &claims(&w));
    let r = exchange(
        &w,
        &keyed,
        JWT,
        &[("token_handler", "Keys"), ("scope", "api")],
    )
    .await
    .unwrap();
    assert_eq!(r.scope.as_deref(), Some("api"));
    assert!(r.id_token.is_none());
    // An id_token of that issuer is judged the same way.
    let r = exchange(
        &w,
        &token,
        "urn:ietf:params:oauth:token-type:id_token",
        &[("requested_token_type", ACCESS)],
    )
    .await
    .unwrap();
    assert!(w.live(&r.access_token).await);
}

#[tokio::test]
async fn a_token_the_handler_does_not_vouch_for_is_refused() {
    let mut w = world().await;
    let good = claims(&w);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        change(&mut c);
        c
    };
    let cases: Vec<(String, Extra, &str)> = vec![
        (
            sign_assertion(
                "jwt.key",
                &with(&|c| c["iss"] = json!("https://evil.example")),
            ),
            &[],
            "iss",
        ),
        (
            sign_assertion("jwt.key", &with(&|c| c["aud"] = json!("api://else"))),
            &[],
            "aud",
        ),
        (
            sign_assertion("jwt.key", &with(&|c| c["exp"] = json!(NOW / 1000 - 600))),
            &[],
            "expired",
        ),
        (
            sign_assertion("jwt.key", &with(&|c| c["nbf"] = json!(NOW / 1000 + 600))),
            &[],
            "before",
        ),
        (sign_assertion("other.key", &good), &[], "not signed"),
        (
            sign_assertion(
                "jwt.key",
                &with(&|c| c["email"] = json!("nobody@acme.test")),
            ),
            &[],
            "no user whose email",
        ),
        (
            sign_assertion("jwt.key", &with(&|c| c["email"] = json!(7))),
            &[],
            "no string claim",
        ),
        (
            sign_assertion("jwt.key", &good),
            &[("token_handler", "Azure")],
            "not one of the app's",
        ),
        // Signed by the certificate's key, but "Keys" trusts only its published set.
        (
            sign_assertion("jwt.key", &good),
            &[("token_handler", "Keys")],
            "not signed",
        ),
        ("not.a.jwt".to_owned(), &[], "Okta"),
    ];
    for (token, extra, why) in &cases {
        let result = exchange(&w, token, JWT, extra).await;
        let cause = cause_of(exchange(&w, token, JWT, extra).await);
        assert!(cause.contains(why), "{why}: {cause}");
        refused(result, 400, "invalid_grant", "invalid subject token");
    }
    // Control: the unchanged token.
    let token = sign_assertion("jwt.key", &good);
    exchange(&w, &token, JWT, &[]).await.unwrap();

    // Two users of the org with Alice's address: the token cannot say which.
    let mut twin = w.alice.clone();
    twin.id = w.next_id(prefix::USER).await;
    twin.username = "twin@acme.test".into();
    twin.federation_id = None;
    w.store.save_user(&twin).await.unwrap();
    let cause = cause_of(exchange(&w, &token, JWT, &[]).await);
    assert!(cause.contains("several users"), "{cause}");
    twin.email = "twin@acme.test".into();
    w.store.save_user(&twin).await.unwrap();
    exchange(&w, &token, JWT, &[]).await.unwrap();

    // A handler that names no key source at all is never satisfied.
    w.change_org(|o| o.token_exchange_handlers[0].certificate_der = None)
        .await;
    let cause = cause_of(exchange(&w, &token, JWT, &[]).await);
    assert!(cause.contains("not signed"), "{cause}");
}

#[tokio::test]
async fn malformed_requests_and_switched_off_apps_answer_salesforces_errors() {
    let mut w = world().await;
    let token = sign_assertion("jwt.key", &claims(&w));
    let no_token = w
        .token(&[
            ("grant_type", GRANT),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
            ("subject_token_type", JWT),
        ])
        .await;
    refused(
        no_token,
        400,
        "invalid_request",
        "missing required parameter: subject_token",
    );
    let no_type = w
        .token(&[
            ("grant_type", GRANT),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
            ("subject_token", &token),
        ])
        .await;
    refused(
        no_type,
        400,
        "invalid_request",
        "missing required parameter: subject_token_type",
    );
    for kind in [
        "urn:ietf:params:oauth:token-type:saml1",
        "jwt",
        // Understood, but no declared handler reads SAML.
        "urn:ietf:params:oauth:token-type:saml2",
    ] {
        refused(
            exchange(&w, &token, kind, &[]).await,
            400,
            "invalid_request",
            "unsupported subject_token_type",
        );
    }
    refused(
        exchange(
            &w,
            &token,
            JWT,
            &[(
                "requested_token_type",
                "urn:ietf:params:oauth:token-type:refresh_token",
            )],
        )
        .await,
        400,
        "invalid_request",
        "unsupported requested_token_type",
    );
    // The secret is required unless the app says otherwise.
    let without_secret = [
        ("grant_type", GRANT),
        ("client_id", "3MVG9grants"),
        ("subject_token", token.as_str()),
        ("subject_token_type", JWT),
    ];
    refused(
        w.token(&without_secret).await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    w.change_app(|a| a.token_exchange.require_secret = false)
        .await;
    w.token(&without_secret).await.unwrap();
    // A secret that is sent is still checked.
    let wrong = w
        .token(&[
            ("grant_type", GRANT),
            ("client_id", "3MVG9grants"),
            ("client_secret", "not-the-secret"),
            ("subject_token", &token),
            ("subject_token_type", JWT),
        ])
        .await;
    refused(wrong, 400, "invalid_client", "invalid client credentials");

    // Control above; now the app switches the flow off.
    w.change_app(|a| a.token_exchange.enabled = false).await;
    refused(
        exchange(&w, &token, JWT, &[]).await,
        400,
        "invalid_grant",
        "token exchange flow is not enabled for the app",
    );
}

#[tokio::test]
async fn the_user_must_be_allowed_to_log_in_through_the_app() {
    let mut w = world().await;
    let token = sign_assertion("jwt.key", &claims(&w));
    exchange(&w, &token, JWT, &[]).await.unwrap();

    w.change_alice(|u| u.frozen = true).await;
    refused(
        exchange(&w, &token, JWT, &[]).await,
        400,
        "invalid_grant",
        "authentication failure",
    );
    w.change_alice(|u| u.frozen = false).await;

    w.change_app(|a| a.permitted_users = PermittedUsers::AdminApproved)
        .await;
    refused(
        exchange(&w, &token, JWT, &[]).await,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );
    assert_eq!(
        w.history().await.remove(0).status,
        LoginStatus::NotApprovedForAccess
    );
    let alice = w.alice.id;
    w.change_app(|a| a.pre_authorized_users = vec![alice]).await;
    exchange(&w, &token, JWT, &[]).await.unwrap();
}

/// Alice's approval of the second app, for these scopes.
async fn approve_second(w: &World, app: &ConnectedApp, scopes: &str) {
    use idforce_core::ports::Approvals;
    let scopes = idforce_core::scope::Scopes::parse(scopes).unwrap();
    w.store
        .approve(&w.alice.id, &app.id, &scopes, w.now)
        .await
        .unwrap();
}

/// A second app of the org, which exchanges the first app's tokens; Alice approved it.
async fn second_app(w: &World) -> ConnectedApp {
    let mut app = w.app.clone();
    app.id = w.next_id(prefix::CONNECTED_APP).await;
    app.name = "Reporting".into();
    app.api_name = "Reporting".into();
    app.client_id = "3MVG9second".into();
    app.secret_sealed = None;
    app.token_exchange = AppSettings {
        enabled: true,
        require_secret: true,
        handlers: Vec::new(),
        asset_tokens: None,
    };
    w.store.save_app(&app).await.unwrap();
    approve_second(w, &app, "api refresh_token openid").await;
    app
}

async fn exchange_by_second(
    w: &World,
    token: &str,
    kind: &str,
) -> Result<idforce_core::wire::TokenResponse, idforce_core::OAuthError> {
    w.token(&[
        ("grant_type", GRANT),
        ("client_id", "3MVG9second"),
        ("client_secret", SECRET),
        ("subject_token", token),
        ("subject_token_type", kind),
    ])
    .await
}

#[tokio::test]
async fn this_servers_own_tokens_are_exchanged_for_another_apps_session() {
    let w = world().await;
    let second = second_app(&w).await;
    let first = client_credentials(&w).await.unwrap();

    // An access token of the first app becomes a session of the second, for the same user.
    let r = exchange_by_second(&w, &first.access_token, ACCESS)
        .await
        .unwrap();
    let session = w
        .store
        .session(&w.hasher.session_key(&r.access_token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((session.app_id, session.user_id), (second.id, w.alice.id));

    // A refresh token of the first app.
    let refresh = crate::refresh_token::grant(&w, "api refresh_token").await;
    let refresh = refresh.refresh_token.unwrap();
    exchange_by_second(
        &w,
        &refresh,
        "urn:ietf:params:oauth:token-type:refresh_token",
    )
    .await
    .unwrap();

    // An id_token this server signed.
    let id_token_claims = json!({
        "iss": PUBLIC_URL, "aud": "3MVG9grants", "exp": w.now / 1000 + 60,
        "sub": format!("{PUBLIC_URL}/id/{}/{}", w.org.id.to18(), w.alice.id.to18()),
    });
    let id_token = VisibleSigner.sign("JWT", &id_token_claims).unwrap();
    exchange_by_second(&w, &id_token, "urn:ietf:params:oauth:token-type:id_token")
        .await
        .unwrap();

    // Refusals, each after its control above: an id_token that expired a second ago (no
    // skew for this server's own), one of an unknown or a blocked app, a revoked access
    // token, an unknown refresh token, an opaque access token no one issued.
    let mut expired = id_token_claims.clone();
    expired["exp"] = json!(w.now / 1000 - 1);
    let expired = VisibleSigner.sign("JWT", &expired).unwrap();
    let cause = cause_of(
        exchange_by_second(&w, &expired, "urn:ietf:params:oauth:token-type:id_token").await,
    );
    assert!(cause.contains("expired"), "{cause}");
    let mut unknown = id_token_claims.clone();
    unknown["aud"] = json!("3MVG9nobody");
    let unknown = VisibleSigner.sign("JWT", &unknown).unwrap();
    let cause = cause_of(
        exchange_by_second(&w, &unknown, "urn:ietf:params:oauth:token-type:id_token").await,
    );
    assert!(cause.contains("gone, blocked"), "{cause}");
    let mut blocked = w.app.clone();
    blocked.blocked = true;
    w.store.save_app(&blocked).await.unwrap();
    let cause = cause_of(
        exchange_by_second(&w, &id_token, "urn:ietf:params:oauth:token-type:id_token").await,
    );
    assert!(cause.contains("gone, blocked"), "{cause}");
    blocked.blocked = false;
    w.store.save_app(&blocked).await.unwrap();
    w.store
        .revoke_session(&w.hasher.session_key(&first.access_token), w.now)
        .await
        .unwrap();
    refused(
        exchange_by_second(&w, &first.access_token, ACCESS).await,
        400,
        "invalid_grant",
        "invalid subject token",
    );
    let cause = cause_of(
        exchange_by_second(
            &w,
            "5Aep861unknown",
            "urn:ietf:params:oauth:token-type:refresh_token",
        )
        .await,
    );
    assert!(cause.contains("did not issue"), "{cause}");
    // An opaque token that is no session falls to the app's handlers; the second app has none.
    let cause = cause_of(exchange_by_second(&w, "00Dxx!nothing", ACCESS).await);
    assert!(cause.contains("lists no token exchange handler"), "{cause}");
}

#[tokio::test]
async fn another_orgs_tokens_are_not_exchanged() {
    let w = world().await;
    second_app(&w).await;
    let first = client_credentials(&w).await.unwrap();
    // Control: the same token, an app of the same org.
    exchange_by_second(&w, &first.access_token, ACCESS)
        .await
        .unwrap();
    // The same app's settings, in another org.
    let mut other = w.org.clone();
    other.id = w.next_id(prefix::ORG).await;
    other.name = "Globex".into();
    w.store.save_org(&other).await.unwrap();
    let mut globex = w.app.clone();
    globex.id = w.next_id(prefix::CONNECTED_APP).await;
    globex.org_id = other.id;
    globex.client_id = "3MVG9globex".into();
    globex.secret_sealed = None;
    w.store.save_app(&globex).await.unwrap();
    let form = [
        ("grant_type", GRANT),
        ("client_id", "3MVG9globex"),
        ("client_secret", SECRET),
        ("subject_token", first.access_token.as_str()),
        ("subject_token_type", ACCESS),
    ];
    let cause = cause_of(w.token(&form).await);
    assert!(cause.contains("not of the app's org"), "{cause}");
    refused(
        w.token(&form).await,
        400,
        "invalid_grant",
        "invalid subject token",
    );
}

#[tokio::test]
async fn an_exchange_grants_no_more_than_the_token_carried_and_the_user_approved() {
    let w = world().await;
    let second = second_app(&w).await;
    // A session of the first app with `api` alone.
    let narrow = w
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "3MVG9grants"),
            ("client_secret", SECRET),
            ("scope", "api"),
        ])
        .await
        .unwrap();
    assert_eq!(narrow.scope.as_deref(), Some("api"));
    let r = exchange_by_second(&w, &narrow.access_token, ACCESS)
        .await
        .unwrap();
    assert_eq!(
        r.scope.as_deref(),
        Some("api"),
        "not the second app's openid"
    );
    // Asking for more than the token carried.
    let form = [
        ("grant_type", GRANT),
        ("client_id", "3MVG9second"),
        ("client_secret", SECRET),
        ("subject_token", narrow.access_token.as_str()),
        ("subject_token_type", ACCESS),
        ("scope", "api openid"),
    ];
    refused(
        w.token(&form).await,
        400,
        "invalid_scope",
        "the requested scope is not allowed: openid",
    );

    // The user's approval bounds it too: Alice approved `openid` alone.
    approve_second(&w, &second, "openid").await;
    let wide = client_credentials(&w).await.unwrap();
    let r = exchange_by_second(&w, &wide.access_token, ACCESS)
        .await
        .unwrap();
    assert_eq!(r.scope.as_deref(), Some("openid"));
    // Neither approval nor token leaves anything: refused.
    let cause = cause_of(exchange_by_second(&w, &narrow.access_token, ACCESS).await);
    assert!(cause.contains("none of the app's scopes"), "{cause}");

    // Without an approval, another app's token is no consent: refused as JWT bearer is.
    let mut third = second.clone();
    third.id = w.next_id(prefix::CONNECTED_APP).await;
    third.name = "Third".into();
    third.api_name = "Third".into();
    third.client_id = "3MVG9third".into();
    w.store.save_app(&third).await.unwrap();
    let by_third = |token: String| {
        let w = &w;
        async move {
            w.token(&[
                ("grant_type", GRANT),
                ("client_id", "3MVG9third"),
                ("client_secret", SECRET),
                ("subject_token", token.as_str()),
                ("subject_token_type", ACCESS),
            ])
            .await
        }
    };
    refused(
        by_third(wide.access_token.clone()).await,
        400,
        "invalid_grant",
        "user hasn't approved this consumer",
    );
    // An admin-approved app's pre-authorization approves all its scopes.
    third.permitted_users = PermittedUsers::AdminApproved;
    third.pre_authorized_users = vec![w.alice.id];
    w.store.save_app(&third).await.unwrap();
    let r = by_third(wide.access_token.clone()).await.unwrap();
    assert_eq!(r.scope.as_deref(), Some("api openid"));
}
