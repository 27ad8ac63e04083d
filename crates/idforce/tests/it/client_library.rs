//! The `idforce-client` library against a real server: every flow, and errors that keep
//! Salesforce's code and description.

use idforce_client::{App, Error, LoginClient, Pkce};

use crate::browser::Browser;
use crate::helpers::*;

fn integration() -> App {
    App::new(INTEGRATION_ID).with_secret(INTEGRATION_SECRET)
}

#[tokio::test]
async fn every_flow_through_the_library() {
    let s = TestServer::start().await;
    let login = LoginClient::new(&s.url).unwrap();

    let pw = login
        .password(&integration(), ALICE, ALICE_PASSWORD)
        .await
        .unwrap();
    assert_eq!(pw.instance_url, s.url);
    assert!(pw.signature.is_some() && pw.issued_at.is_some());
    let me = login.identity(&pw.id, &pw.access_token).await.unwrap();
    assert_eq!(me["username"], ALICE);
    let info = login.userinfo(&pw.access_token).await.unwrap();
    assert_eq!(info["sub"], pw.id.as_str());

    let cc = login.client_credentials(&integration()).await.unwrap();
    let auditor = App::new(AUDITOR_ID).with_secret(AUDITOR_SECRET);
    let seen = login.introspect(&auditor, &cc.access_token).await.unwrap();
    assert_eq!(seen["active"], true);
    login.revoke(&cc.access_token).await.unwrap();
    let seen = login.introspect(&auditor, &cc.access_token).await.unwrap();
    assert_eq!(seen["active"], false);

    // JWT bearer: aud defaults to the login URL.
    let key = std::fs::read(fixture("jwt.key")).unwrap();
    let jwt = login
        .jwt_bearer(INTEGRATION_ID, "integration@acme.test", &key, None)
        .await
        .unwrap();
    assert!(
        jwt.issued_at.is_none(),
        "spec §4: no issued_at for JWT bearer"
    );

    // Web server flow with PKCE (the browser part by the test's cookie-keeping browser),
    // then refresh.
    let app = App::new(SELF_SERVICE_ID).with_secret(SELF_SERVICE_SECRET);
    let pkce = Pkce::new();
    let url = login.authorize_url(&app, SELF_SERVICE_CALLBACK, None, "lib-state", &pkce);
    let path = url.strip_prefix(&s.url).unwrap();
    let mut b = Browser::new(&s);
    let page = b.authorize(path, ALICE, ALICE_PASSWORD).await;
    let page = if page.is_consent() {
        b.decide(&page, true).await
    } else {
        page
    };
    let params = page.redirect_params();
    assert_eq!(params["state"], "lib-state");
    let web = login
        .authorization_code(
            &app,
            &params["code"],
            SELF_SERVICE_CALLBACK,
            Some(&pkce.verifier),
        )
        .await
        .unwrap();
    let refreshed = login
        .refresh(&app, web.refresh_token.as_deref().unwrap())
        .await
        .unwrap();
    assert_ne!(refreshed.access_token, web.access_token);

    // Device flow: codes, a pending poll, then (after approval) tokens.
    let codes = login.device_codes(&app, Some("api")).await.unwrap();
    assert_eq!(codes.interval, 5);
    let pending = login
        .device_poll(&app, &codes.device_code)
        .await
        .unwrap_err();
    assert!(pending.is_pending(), "{pending}");
}

#[tokio::test]
async fn errors_keep_salesforce_code_and_description() {
    let s = TestServer::start().await;
    let login = LoginClient::new(&s.url).unwrap();
    let e = login
        .password(
            &App::new(INTEGRATION_ID).with_secret("wrong"),
            ALICE,
            ALICE_PASSWORD,
        )
        .await
        .unwrap_err();
    match &e {
        Error::OAuth {
            status,
            error,
            description,
        } => {
            assert_eq!(
                (*status, error.as_str(), description.as_str()),
                (400, "invalid_client", "invalid client credentials")
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.hint(), Some("Check the consumer secret."));

    let e = login
        .password(&integration(), BOB, BOB_PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "invalid_grant: authentication failure");
    assert!(e.hint().unwrap().contains("security token"));

    // Revocation errors are form-encoded (spec §6.3); the library reads them all the same.
    let e = login.revoke("not-a-token").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported_token_type: this token type is not supported"
    );

    // The identity URL's one word (spec §6.5).
    let e = login
        .identity(&s.at("/id/00D000000000001EAA/005000000000001AAA"), "bogus")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("Bad_OAuth_Token"), "{e}");

    // A host that is not a login server.
    let elsewhere = LoginClient::new(&s.at("/nowhere")).unwrap();
    let e = elsewhere
        .client_credentials(&integration())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unexpected { status: 404, .. }), "{e:?}");
    assert!(e.hint().unwrap().contains("instance_url"));
}
