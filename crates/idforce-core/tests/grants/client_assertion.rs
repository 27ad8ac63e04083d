//! `private_key_jwt` client authentication (RFC 7523 §2.2) wherever a client secret is taken:
//! each refusal answers as a wrong secret does, beside the control that passes.

use idforce_store::Accounts;
use serde_json::{Value, json};

use crate::world::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn claims(w: &World, jti: &str) -> Value {
    json!({
        "iss": "3MVG9grants", "sub": "3MVG9grants",
        "aud": format!("{PUBLIC_URL}/services/oauth2/token"),
        "exp": w.now / 1000 + 120, "jti": jti,
    })
}

async fn with_assertion(
    w: &World,
    assertion: &str,
    extra: &[(&str, &str)],
) -> Result<idforce_core::wire::TokenResponse, idforce_core::OAuthError> {
    let mut form = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", ASSERTION_TYPE),
        ("client_assertion", assertion),
    ];
    form.extend_from_slice(extra);
    w.token(&form).await
}

#[tokio::test]
async fn a_signed_client_assertion_stands_in_for_the_secret_once() {
    let w = World::new().await;
    let first = sign_assertion("jwt.key", &claims(&w, "a-1"));
    with_assertion(&w, &first, &[]).await.unwrap();
    // Its jti is spent: the same assertion, or another with the same jti, is refused.
    let again = with_assertion(&w, &first, &[]).await;
    assert!(cause_of(with_assertion(&w, &first, &[]).await).contains("used before"));
    refused(again, 400, "invalid_client", "invalid client credentials");
    let mut same_jti = claims(&w, "a-1");
    same_jti["exp"] = json!(w.now / 1000 + 100);
    let r = with_assertion(&w, &sign_assertion("jwt.key", &same_jti), &[]).await;
    refused(r, 400, "invalid_client", "invalid client credentials");
    // A new jti, with the client_id sent too (as Authlib does): accepted.
    let second = sign_assertion("jwt.key", &claims(&w, "a-2"));
    with_assertion(&w, &second, &[("client_id", "3MVG9grants")])
        .await
        .unwrap();
}

#[tokio::test]
async fn client_assertions_that_do_not_prove_the_client_are_refused() {
    let w = World::new().await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "another key",
            claims(&w, "b-1"),
            "not signed with the app's key",
        ),
        (
            "wrong audience",
            {
                let mut c = claims(&w, "b-2");
                c["aud"] = json!("https://elsewhere.test/token");
                c
            },
            "another audience",
        ),
        (
            "expired",
            {
                let mut c = claims(&w, "b-3");
                c["exp"] = json!(w.now / 1000 - 600);
                c
            },
            "expired",
        ),
        (
            "no jti",
            {
                let mut c = claims(&w, "b-4");
                c.as_object_mut().unwrap().remove("jti");
                c
            },
            "without a jti",
        ),
        (
            "sub is not iss",
            {
                let mut c = claims(&w, "b-5");
                c["sub"] = json!("alice@acme.test");
                c
            },
            "not one client",
        ),
    ];
    for (what, c, said) in cases {
        let key = if what == "another key" {
            "other.key"
        } else {
            "jwt.key"
        };
        let assertion = sign_assertion(key, &c);
        let r = with_assertion(&w, &assertion, &[]).await;
        let why = cause_of(with_assertion(&w, &assertion, &[]).await);
        assert!(why.contains(said), "{what}: {why}");
        refused(r, 400, "invalid_client", "invalid client credentials");
    }
    // Another client's id beside the assertion.
    let a = sign_assertion("jwt.key", &claims(&w, "b-6"));
    let r = with_assertion(&w, &a, &[("client_id", "3MVG9other")]).await;
    refused(r, 400, "invalid_client", "invalid client credentials");
    // A secret and an assertion together, or an unknown assertion type: a bad request.
    let a = sign_assertion("jwt.key", &claims(&w, "b-7"));
    let r = with_assertion(&w, &a, &[("client_secret", SECRET)]).await;
    refused(
        r,
        400,
        "invalid_request",
        "client credentials given twice, differently",
    );
    let r = w
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:example:other"),
            ("client_assertion", &a),
        ])
        .await;
    refused(r, 400, "invalid_request", "invalid client assertion type");
    // The control: the same kind of assertion, well made, passes.
    let good = sign_assertion("jwt.key", &claims(&w, "b-8"));
    with_assertion(&w, &good, &[]).await.unwrap();
}

/// An app without a certificate, verified by the keys it registered: inline, or published at
/// a `jwks_uri` (read through `KeySets`, which the server fetches and keeps).
#[tokio::test]
async fn registered_keys_verify_client_assertions() {
    let mut w = World::new().await;
    w.app.certificate_der = None;
    w.app.jwks = Some(json!({"keys": [jwk_of("jwt.key", "k1")]}).to_string());
    w.store.save_app(&w.app).await.unwrap();
    let signed = |w: &World, key: &str, kid: &str, jti: &str| {
        sign_assertion_with_kid(key, kid, &claims(w, jti))
    };
    with_assertion(&w, &signed(&w, "jwt.key", "k1", "c-1"), &[])
        .await
        .unwrap();
    let r = with_assertion(&w, &signed(&w, "other.key", "k1", "c-2"), &[]).await;
    assert!(cause_of(r).contains("not signed with the app's key"));

    // Published keys: the set at the URL is asked for again when it lacks the assertion's key.
    w.app.jwks = None;
    w.app.jwks_uri = Some("https://keys.example/jwks".into());
    w.store.save_app(&w.app).await.unwrap();
    w.key_sets.publish(
        "https://keys.example/jwks",
        &json!({"keys": [jwk_of("other.key", "k2")]}),
    );
    with_assertion(&w, &signed(&w, "other.key", "k2", "c-3"), &[])
        .await
        .unwrap();
    let fetches = |w: &World| w.key_sets.fetches.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(fetches(&w), 1);
    let r = with_assertion(&w, &signed(&w, "jwt.key", "k1", "c-4"), &[]).await;
    assert!(cause_of(r).contains("not signed with the app's key"));
    assert_eq!(fetches(&w), 3, "an unknown kid asks for the set again");

    // Neither a certificate nor keys: refused before any signature is checked.
    w.app.jwks_uri = None;
    w.store.save_app(&w.app).await.unwrap();
    let r = with_assertion(&w, &signed(&w, "jwt.key", "k1", "c-5"), &[]).await;
    assert!(cause_of(r).contains("without a certificate or registered keys"));
}
