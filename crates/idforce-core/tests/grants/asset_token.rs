//! The asset token flow: a user's access token, and optionally an actor token describing the
//! device, exchanged without client authentication for a JWT naming the device. Each refusal
//! sits beside a control that passes on the same world.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use idforce_core::ports::{SecretBox, Sessions};
use idforce_core::token_exchange::{AssetTokens, asset_key_purpose};
use idforce_store::Accounts;
use serde_json::{Value, json};

use crate::world::*;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT: &str = "urn:ietf:params:oauth:token-type:jwt";

async fn world() -> World {
    let mut w = World::new().await;
    w.change_app(|a| {
        a.token_exchange.asset_tokens = Some(AssetTokens {
            lifetime_secs: 60,
            audiences: vec!["https://devices.example".into()],
            certificate_der: None,
            key_sealed: None,
        })
    })
    .await;
    w
}

fn unsigned(claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

fn device() -> Value {
    json!({"did": "printer-0042", "Name": "Lobby printer",
           "Asset": {"Name": "LaserJet", "SerialNumber": "SN-0042"}})
}

/// The claims of a token the world's `VisibleSigner` signed.
fn visible_claims(token: &str) -> Value {
    serde_json::from_str(
        token
            .strip_prefix("JWT.")
            .expect("signed by the org's keys"),
    )
    .unwrap()
}

async fn access_token(w: &World) -> String {
    client_credentials(w).await.unwrap().access_token
}

#[tokio::test]
async fn an_access_token_and_a_device_description_become_an_asset_token() {
    let w = world().await;
    let access = access_token(&w).await;
    let actor = unsigned(&device());
    let form = [
        ("grant_type", GRANT),
        ("subject_token", access.as_str()),
        ("subject_token_type", ACCESS),
        ("actor_token", actor.as_str()),
        ("actor_token_type", JWT),
    ];
    let r = w.asset_token(&form).await.unwrap();
    assert_eq!(
        (r.issued_token_type, r.token_type, r.expires_in),
        (JWT, "Bearer", 60)
    );
    let c = visible_claims(&r.access_token);
    assert_eq!(c["iss"], PUBLIC_URL);
    assert_eq!(c["aud"], json!(["https://devices.example"]));
    assert_eq!(c["exp"].as_i64().unwrap() - c["nbf"].as_i64().unwrap(), 60);
    assert_eq!(
        (&c["did"], &c["Name"], &c["Asset"]["SerialNumber"]),
        (
            &json!("printer-0042"),
            &json!("Lobby printer"),
            &json!("SN-0042")
        )
    );
    assert!(
        c.get("cnf").is_none(),
        "an unsigned actor token binds no key: {c}"
    );

    // The actor token is optional.
    let bare = w
        .asset_token(&[
            ("grant_type", GRANT),
            ("subject_token", access.as_str()),
            ("subject_token_type", ACCESS),
        ])
        .await
        .unwrap();
    assert!(visible_claims(&bare.access_token).get("did").is_none());
    // Issuing one ends nothing: the access token is still live.
    assert!(w.live(&access).await);
}

#[tokio::test]
async fn a_device_that_signs_its_actor_token_gets_its_key_bound() {
    let w = world().await;
    let access = access_token(&w).await;
    let key = jwk_of("other.key", "device-1");
    let mut claims = device();
    claims["cnf"] = json!({ "jwk": key });
    let signed = sign_assertion_with_kid("other.key", "device-1", &claims);
    let ask = |actor: String| {
        let w = &w;
        let access = access.clone();
        async move {
            w.asset_token(&[
                ("grant_type", GRANT),
                ("subject_token", access.as_str()),
                ("subject_token_type", ACCESS),
                ("actor_token", actor.as_str()),
                ("actor_token_type", JWT),
            ])
            .await
        }
    };
    let r = ask(signed).await.unwrap();
    assert_eq!(visible_claims(&r.access_token)["cnf"]["jwk"], key);

    // Signed by another key than its cnf names; unsigned yet naming a key; an unsigned token
    // with a signature; not a JWT.
    let forged = sign_assertion_with_kid("jwt.key", "device-1", &claims);
    let mut unsigned_with_signature = unsigned(&device());
    unsigned_with_signature.push_str("AAAA");
    for (actor, why) in [
        (forged, "not signed with its cnf.jwk"),
        (unsigned(&claims), "does not prove"),
        (unsigned_with_signature, "with a signature"),
        ("printer-0042".to_owned(), "three parts"),
        (
            sign_assertion("other.key", &device()),
            "without the cnf.jwk",
        ),
    ] {
        let cause = cause_of(ask(actor.clone()).await);
        assert!(cause.contains(why), "{why}: {cause}");
        refused(
            ask(actor).await,
            400,
            "invalid_grant",
            "invalid actor token",
        );
    }
}

#[tokio::test]
async fn refusals_of_the_asset_token_flow() {
    let mut w = world().await;
    let access = access_token(&w).await;
    let ask = |kind: &'static str, token: String, actor_type: &'static str| {
        let w = &w;
        async move {
            w.asset_token(&[
                ("grant_type", GRANT),
                ("subject_token", token.as_str()),
                ("subject_token_type", kind),
                ("actor_token", unsigned(&device()).as_str()),
                ("actor_token_type", actor_type),
            ])
            .await
        }
    };
    // Control.
    ask(ACCESS, access.clone(), JWT).await.unwrap();
    refused(
        ask(
            "urn:ietf:params:oauth:token-type:id_token",
            access.clone(),
            JWT,
        )
        .await,
        400,
        "invalid_request",
        "unsupported subject_token_type",
    );
    refused(
        ask(
            ACCESS,
            access.clone(),
            "urn:ietf:params:oauth:token-type:saml2",
        )
        .await,
        400,
        "invalid_request",
        "unsupported actor_token_type",
    );
    refused(
        ask(ACCESS, format!("{}x", &access[..access.len() - 1]), JWT).await,
        400,
        "invalid_grant",
        "invalid subject token",
    );
    let no_actor = w
        .token_with_grant(&[
            ("grant_type", GRANT),
            ("subject_token", access.as_str()),
            ("subject_token_type", ACCESS),
            ("actor_token_type", JWT),
        ])
        .await;
    refused(
        no_actor,
        400,
        "invalid_request",
        "missing required parameter: actor_token",
    );
    let mut stale = device();
    stale["exp"] = json!(w.now / 1000 - 600);
    let stale = unsigned(&stale);
    let cause = cause_of(
        w.asset_token(&[
            ("grant_type", GRANT),
            ("subject_token", access.as_str()),
            ("subject_token_type", ACCESS),
            ("actor_token", stale.as_str()),
            ("actor_token_type", JWT),
        ])
        .await,
    );
    assert!(cause.contains("expired"), "{cause}");
    // A client that names itself is held to it: its own secret, and its own access token.
    let as_client = |secret: &'static str, client_id: &'static str| {
        let w = &w;
        let access = access.clone();
        async move {
            w.asset_token(&[
                ("grant_type", GRANT),
                ("client_id", client_id),
                ("client_secret", secret),
                ("subject_token", access.as_str()),
                ("subject_token_type", ACCESS),
                ("actor_token", unsigned(&device()).as_str()),
                ("actor_token_type", JWT),
            ])
            .await
        }
    };
    as_client(SECRET, "3MVG9grants").await.unwrap();
    refused(
        as_client("wrong", "3MVG9grants").await,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    let mut other = w.app.clone();
    other.id = w.next_id(idforce_core::sfid::prefix::CONNECTED_APP).await;
    other.name = "Other".into();
    other.api_name = "Other".into();
    other.client_id = "3MVG9other".into();
    w.store.save_app(&other).await.unwrap();
    let cause = cause_of(as_client(SECRET, "3MVG9other").await);
    assert!(cause.contains("presented app"), "{cause}");
    let w2 = &mut w;
    w2.change_app(|a| a.token_exchange.asset_tokens = None)
        .await;
    let off = w
        .asset_token(&[
            ("grant_type", GRANT),
            ("subject_token", access.as_str()),
            ("subject_token_type", ACCESS),
        ])
        .await;
    refused(
        off,
        400,
        "invalid_grant",
        "asset tokens are not enabled for the app",
    );
    // A revoked access token.
    w.change_app(|a| {
        a.token_exchange.asset_tokens = Some(AssetTokens {
            lifetime_secs: 60,
            audiences: Vec::new(),
            certificate_der: None,
            key_sealed: None,
        })
    })
    .await;
    let form = [
        ("grant_type", GRANT),
        ("subject_token", access.as_str()),
        ("subject_token_type", ACCESS),
    ];
    let r = w.asset_token(&form).await.unwrap();
    // Without audiences, the token is for this server.
    assert_eq!(visible_claims(&r.access_token)["aud"], json!([PUBLIC_URL]));
    w.store
        .revoke_session(&w.hasher.session_key(&access), w.now)
        .await
        .unwrap();
    refused(
        w.asset_token(&form).await,
        400,
        "invalid_grant",
        "invalid subject token",
    );
}

#[tokio::test]
async fn an_app_with_its_own_certificate_signs_with_its_key() {
    let mut w = world().await;
    let app_id = w.app.id;
    let sealed = VisibleBox.seal(&asset_key_purpose(&app_id), &pem_der("jwt.key"));
    w.change_app(|a| {
        let t = a.token_exchange.asset_tokens.as_mut().unwrap();
        t.certificate_der = Some(pem_der("jwt.crt"));
        t.key_sealed = Some(sealed);
    })
    .await;
    let access = access_token(&w).await;
    let r = w
        .asset_token(&[
            ("grant_type", GRANT),
            ("subject_token", access.as_str()),
            ("subject_token_type", ACCESS),
        ])
        .await
        .unwrap();
    let jwt = idforce_core::external_jwt::parse(&r.access_token).unwrap();
    assert!(jwt.signed_by_certificate(&pem_der("jwt.crt")));
    // Control: another certificate does not verify it.
    assert!(!jwt.signed_by_certificate(&pem_der("other.crt")));
    assert_eq!(
        jwt.kid.as_deref(),
        Some(idforce_core::grant::asset_key_id(&pem_der("jwt.crt")).as_str())
    );
}
