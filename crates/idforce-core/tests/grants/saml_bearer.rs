//! The SAML bearer assertion flow's rules, on a verifier that shows what it "verified"
//! (`VisibleSaml`; the XML signature itself is tested with xmlsec in idforce-server). Each
//! refusal sits beside a control that passes on the same world.

use idforce_core::login_history::{LoginStatus, LoginSubtype};
use idforce_core::ports::{Approvals, NoSaml, SamlAssertion};
use idforce_core::scope::Scopes;
use idforce_store::Accounts;

use crate::world::*;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:saml2-bearer";

fn assertion(w: &World) -> SamlAssertion {
    let now = w.now / 1000;
    SamlAssertion {
        id: format!("_assertion-{now}"),
        issuer: "3MVG9grants".into(),
        name_id: "alice@acme.test".into(),
        audience_restrictions: vec![vec!["https://login.salesforce.com".into()]],
        not_before: Some(now - 5),
        not_on_or_after: Some(now + 300),
        bearer: Some((
            Some(format!("{PUBLIC_URL}/services/oauth2/token")),
            Some(now + 300),
        )),
    }
}

async fn approve(w: &World) {
    w.store
        .approve(
            &w.alice.id,
            &w.app.id,
            &Scopes::parse("api").unwrap(),
            w.now,
        )
        .await
        .unwrap();
}

fn encoded(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

async fn present(
    w: &World,
    a: &SamlAssertion,
    signed_by: &str,
    claimed: Option<&str>,
) -> Result<idforce_core::wire::TokenResponse, idforce_core::OAuthError> {
    let xml = VisibleSaml::assertion(&pem_der(signed_by), a, claimed);
    w.token(&[("grant_type", GRANT), ("assertion", &encoded(&xml))])
        .await
}

#[tokio::test]
async fn a_signed_assertion_of_an_approved_user_is_a_session_without_refresh_token() {
    let w = World::new().await;
    approve(&w).await;
    let r = present(&w, &assertion(&w), "jwt.crt", None).await.unwrap();
    assert!(w.live(&r.access_token).await);
    assert_eq!(r.refresh_token, None);
    assert_eq!(r.issued_at, None, "as JWT bearer's answer");
    assert_eq!(r.scope.as_deref(), Some("api openid"));
    let row = w.history().await.remove(0);
    assert_eq!(
        (row.subtype, row.status),
        (LoginSubtype::SamlBearer, LoginStatus::Success)
    );
    // The same assertion again: spent.
    let cause = cause_of(present(&w, &assertion(&w), "jwt.crt", None).await);
    assert!(cause.contains("replay"), "{cause}");
}

#[tokio::test]
async fn every_refusal_beside_its_control() {
    let mut w = World::new().await;
    approve(&w).await;
    let now = w.now / 1000;
    type Change = fn(&mut SamlAssertion, i64);
    let cases: [(Change, &str); 8] = [
        (|a, now| a.not_on_or_after = Some(now - 600), "expired"),
        (|a, _| a.not_on_or_after = None, "NotOnOrAfter"),
        (|a, now| a.not_before = Some(now + 600), "not valid before"),
        (|a, _| a.bearer = None, "bearer"),
        (
            |a, _| a.bearer = Some((Some("https://evil.example/token".into()), a.not_on_or_after)),
            "recipient",
        ),
        (
            |a, _| a.bearer = Some((None, a.not_on_or_after)),
            "Recipient",
        ),
        (
            |a, _| {
                a.audience_restrictions
                    .push(vec!["https://evil.example".into()])
            },
            "audiences",
        ),
        (|a, now| a.id = format!("_other-{now}"), ""),
    ];
    for (i, (change, why)) in cases.iter().enumerate() {
        let mut a = assertion(&w);
        a.id = format!("_case-{i}");
        change(&mut a, now);
        let result = present(&w, &a, "jwt.crt", None).await;
        if why.is_empty() {
            // The control among them: only its id differs from a good assertion.
            result.unwrap();
            continue;
        }
        let cause = cause_of(present(&w, &a, "jwt.crt", None).await);
        assert!(cause.contains(why), "{why}: {cause}");
        refused(result, 400, "invalid_grant", "invalid assertion");
    }

    // Signed with another key than the app's certificate's.
    let mut a = assertion(&w);
    a.id = "_other-key".into();
    let cause = cause_of(present(&w, &a, "other.crt", None).await);
    assert!(cause.contains("not signed"), "{cause}");
    // The unsigned text names one app, the signed assertion another.
    let cause = cause_of(present(&w, &a, "jwt.crt", Some("3MVG9someone")).await);
    assert!(cause.contains("no app"), "{cause}");
    let mut other_issuer = a.clone();
    other_issuer.issuer = "3MVG9someone".into();
    let cause = cause_of(present(&w, &other_issuer, "jwt.crt", Some("3MVG9grants")).await);
    assert!(cause.contains("signed Issuer"), "{cause}");
    // An unknown issuer is an unknown client, as in JWT bearer.
    let mut unknown = a.clone();
    unknown.issuer = "3MVG9nobody".into();
    refused(
        present(&w, &unknown, "jwt.crt", None).await,
        400,
        "invalid_client_id",
        "client identifier invalid",
    );
    // A user who has not approved the app (Alice, the control, has).
    let mut bob = w.alice.clone();
    bob.id = w.next_id(idforce_core::sfid::prefix::USER).await;
    bob.username = "bob@acme.test".into();
    w.store.save_user(&bob).await.unwrap();
    let mut as_bob = a.clone();
    as_bob.name_id = "bob@acme.test".into();
    refused(
        present(&w, &as_bob, "jwt.crt", None).await,
        400,
        "invalid_grant",
        "user hasn't approved this consumer",
    );
    // Someone unknown: answered the same.
    let mut nobody = a.clone();
    nobody.name_id = "nobody@acme.test".into();
    refused(
        present(&w, &nobody, "jwt.crt", None).await,
        400,
        "invalid_grant",
        "user hasn't approved this consumer",
    );
    // An app without a certificate.
    w.change_app(|app| app.certificate_der = None).await;
    let cause = cause_of(present(&w, &a, "jwt.crt", None).await);
    assert!(cause.contains("no certificate"), "{cause}");
}

#[tokio::test]
async fn a_build_without_saml_answers_grant_type_not_supported() {
    let mut w = World::new().await;
    approve(&w).await;
    w.saml = &NoSaml;
    refused(
        present(&w, &assertion(&w), "jwt.crt", None).await,
        400,
        "unsupported_grant_type",
        "grant type not supported",
    );
    refused(
        w.token(&[("grant_type", GRANT)]).await,
        400,
        "invalid_grant",
        "invalid assertion",
    );
}

#[tokio::test]
async fn an_app_that_enforces_its_certificates_validity_refuses_an_expired_one() {
    // A day after jwt.crt's notAfter (jwt_bearer.rs reads its dates).
    let mut w = World::new().await;
    w.now = 4_949_042_092_000 + 86_400_000;
    approve(&w).await;
    // As Salesforce: accepted.
    present(&w, &assertion(&w), "jwt.crt", None).await.unwrap();
    w.change_app(|a| a.enforce_certificate_validity = true)
        .await;
    let mut a = assertion(&w);
    a.id = "_second".into();
    let cause = cause_of(present(&w, &a, "jwt.crt", None).await);
    assert!(cause.contains("expired"), "{cause}");
}
