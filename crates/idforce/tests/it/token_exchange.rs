//! Token exchange over HTTP (issue 31): an identity provider's JWT — made by the test with its
//! own keys, one verified by a certificate, one by keys a local JWKS endpoint publishes — and
//! idforce's own tokens, exchanged for sessions that the REST API and userinfo accept.

use serde_json::{Value, json};

use crate::helpers::*;

const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT: &str = "urn:ietf:params:oauth:token-type:JWT";
const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const IDP: &str = "https://idp.example";
const AUDIENCE: &str = "api://idforce";
const EXCHANGER_ID: &str = "3MVG9idforceTestExchangerApp";
const EXCHANGER_SECRET: &str = "EXCHANGERSECRET0001";
const DEVICES_ID: &str = "3MVG9idforceTestDevicesApp";
const DEVICES_SECRET: &str = "DEVICESSECRET0001";

/// The suite's config, with two handlers and an app that may use them in Acme, and Alice's
/// Federation ID.
fn config(jwks_uri: &str) -> String {
    let key = fixture("jwt.key").display().to_string();
    let acme = format!(
        r#"
[[org.token_exchange_handler]]
name = "Okta"
issuer = "{IDP}"
audience = "{AUDIENCE}"
certificate = "jwt.crt"
user_claim = "email"
match_on = "email"

[[org.token_exchange_handler]]
name = "Keycloak"
issuer = "{IDP}"
audience = "{AUDIENCE}"
jwks_uri = "{jwks_uri}"
user_claim = "preferred_username"
match_on = "federation_id"

[[org.app]]
name = "Exchanger"
client_id = "{EXCHANGER_ID}"
client_secret = "{EXCHANGER_SECRET}"
scopes = ["api", "openid"]
token_exchange_handlers = ["Okta", "Keycloak"]
asset_tokens = true
asset_token_lifetime = "2m"
asset_token_audiences = ["https://devices.example"]

[[org.app]]
name = "Devices"
client_id = "{DEVICES_ID}"
client_secret = "{DEVICES_SECRET}"
scopes = ["api"]
token_exchange_handlers = ["Okta"]
asset_tokens = true
asset_token_certificate = "jwt.crt"
asset_token_key = "{key}"

[[org]]
name = "Globex"
"#
    );
    CONFIG
        .replacen("\n[[org]]\nname = \"Globex\"\n", &acme, 1)
        .replacen(
            "first_name = \"Alice\"\n",
            "first_name = \"Alice\"\nfederation_id = \"kc-0001\"\n",
            1,
        )
}

fn idp_token(key_file: &str, kid: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut claims = json!({
        "iss": IDP, "aud": [AUDIENCE], "sub": "0oa-alice", "email": ALICE,
        "preferred_username": "kc-0001", "exp": now_secs() + 300, "nbf": now_secs() - 5,
    });
    change(&mut claims);
    sign_jwt_with(
        key_file,
        &json!({"alg": "RS256", "kid": kid, "typ": "JWT"}),
        &claims,
    )
}

async fn exchange(s: &TestServer, token: &str, kind: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", GRANT),
        ("client_id", EXCHANGER_ID),
        ("client_secret", EXCHANGER_SECRET),
        ("subject_token", token),
        ("subject_token_type", kind),
    ];
    form.extend_from_slice(extra);
    s.token(&form).await
}

/// The username the identity URL answers for a token: whose session it is.
async fn whose(s: &TestServer, response: &Value) -> Option<String> {
    let r = s
        .http
        .get(response["id"].as_str()?)
        .bearer_auth(response["access_token"].as_str()?)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.ok()?;
    body["username"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn an_identity_providers_jwt_is_exchanged_for_a_session() {
    let jwks = JwksServer::start(&json!({"keys": [jwk_of("other.key", "kc-1")]})).await;
    let s = TestServer::start_with(&config(&jwks.url), |_| {}).await;

    // The default handler: the certificate's key, Alice by email.
    let (st, r) = exchange(&s, &idp_token("jwt.key", "okta-1", |_| {}), JWT, &[]).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["issued_token_type"], ACCESS);
    assert_eq!(r["token_type"], "Bearer");
    assert_eq!(r["scope"], "api openid");
    assert!(r.get("refresh_token").is_none(), "{r}");
    assert_eq!(
        r["signature"].as_str().unwrap(),
        signature_for(EXCHANGER_SECRET, &r)
    );
    for field in [
        "access_token",
        "instance_url",
        "id",
        "issued_at",
        "id_token",
    ] {
        assert!(r[field].is_string(), "{field} missing: {r}");
    }
    assert_eq!(whose(&s, &r).await.as_deref(), Some(ALICE));

    // The second handler, by name: keys fetched from the issuer, Alice by Federation ID.
    let keyed = idp_token("other.key", "kc-1", |_| {});
    let (st, r) = exchange(&s, &keyed, JWT, &[("token_handler", "Keycloak")]).await;
    assert_eq!(st, 200, "{r}");
    let (st, r) = exchange(&s, &keyed, JWT, &[("token_handler", "Keycloak")]).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        jwks.fetches(),
        1,
        "the issuer's keys are kept, not fetched per exchange"
    );

    // Refusals: Salesforce's invalid_grant, the reason only in the log.
    for (token, extra) in [
        (
            idp_token("jwt.key", "okta-1", |c| c["aud"] = json!("api://other")),
            vec![],
        ),
        (
            idp_token("jwt.key", "okta-1", |c| {
                c["iss"] = json!("https://evil.example")
            }),
            vec![],
        ),
        (
            idp_token("jwt.key", "okta-1", |c| c["exp"] = json!(now_secs() - 600)),
            vec![],
        ),
        (idp_token("other.key", "okta-1", |_| {}), vec![]),
        (
            idp_token("jwt.key", "okta-1", |c| {
                c["email"] = json!("nobody@acme.test")
            }),
            vec![],
        ),
        // Dave is Globex's: a token naming his address finds no user of the app's org.
        (
            idp_token("jwt.key", "okta-1", |c| {
                c["email"] = json!("dave@globex.test")
            }),
            vec![],
        ),
        (keyed.clone(), vec![("token_handler", "Okta")]),
        (keyed.clone(), vec![("token_handler", "Auth0")]),
    ] {
        let (st, e) = exchange(&s, &token, JWT, &extra).await;
        assert_error(st, &e, 400, "invalid_grant", "invalid subject token");
    }
    let (st, e) = exchange(&s, &keyed, "urn:ietf:params:oauth:token-type:saml2", &[]).await;
    assert_error(
        st,
        &e,
        400,
        "invalid_request",
        "unsupported subject_token_type",
    );
    let (st, e) = s
        .token(&[
            ("grant_type", GRANT),
            ("client_id", EXCHANGER_ID),
            ("subject_token", &keyed),
            ("subject_token_type", JWT),
        ])
        .await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    // An app without token exchange.
    let (st, e) = s
        .token(&[
            ("grant_type", GRANT),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("subject_token", &keyed),
            ("subject_token_type", JWT),
        ])
        .await;
    assert_error(
        st,
        &e,
        400,
        "invalid_grant",
        "token exchange flow is not enabled for the app",
    );

    // Login History records each exchange as its own kind of login.
    let db = database_url(s.dir.path());
    let rows = admin(&db, &["login-history", "--user", ALICE]);
    let exchanges = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["login_subtype"] == "OauthTokenExchange" && r["status"] == "Success")
        .count();
    assert_eq!(exchanges, 3, "{rows}");

    // A Federation ID is one user's in the org.
    let refused = admin_refused(&db, &["user", "update", BOB, "--federation-id", "kc-0001"]);
    assert!(refused.contains("another user's"), "{refused}");
    admin(
        &db,
        &["user", "update", BOB, "--federation-id", " kc-0002 "],
    );
    assert_eq!(
        admin(&db, &["user", "show", BOB])["federation_id"],
        "kc-0002"
    );

    // A handler removed: its issuer's tokens are refused from then on.
    let okta = idp_token("jwt.key", "okta-1", |_| {});
    assert_eq!(exchange(&s, &okta, JWT, &[]).await.0, 200);
    admin(
        &db,
        &[
            "org",
            "update",
            "Acme",
            "--remove-token-exchange-handler",
            "Okta",
        ],
    );
    let refused = admin_refused(
        &db,
        &[
            "org",
            "update",
            "Acme",
            "--remove-token-exchange-handler",
            "Okta",
        ],
    );
    assert!(refused.contains("no token exchange handler"), "{refused}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (st, e) = exchange(&s, &okta, JWT, &[]).await;
    assert_error(st, &e, 400, "invalid_grant", "invalid subject token");

    // The flow switched off by an admin stays off when the server starts again on the same
    // config file (which names the handlers but not the switch).
    admin(
        &db,
        &["app", "update", "Exchanger", "--token-exchange", "false"],
    );
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, Some(&config(&jwks.url)), |_| {}).await;
    let (st, e) = exchange(&s, &keyed, JWT, &[("token_handler", "Keycloak")]).await;
    assert_error(
        st,
        &e,
        400,
        "invalid_grant",
        "token exchange flow is not enabled for the app",
    );
}

#[tokio::test]
async fn idforces_own_tokens_are_exchanged_for_another_app() {
    let jwks = JwksServer::start(&json!({"keys": []})).await;
    let s = TestServer::start_with(&config(&jwks.url), |_| {}).await;
    let db = database_url(s.dir.path());
    // Another app's token proves who Alice is, not that she lets Exchanger act for her.
    admin(&db, &["app", "approve-user", "Exchanger", ALICE]);

    // An access token of Self Service (the password grant).
    let (st, own) = password_through(
        &s,
        (SELF_SERVICE_ID, SELF_SERVICE_SECRET),
        ALICE,
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(st, 200, "{own}");
    let access = own["access_token"].as_str().unwrap();
    let (st, r) = exchange(&s, access, ACCESS, &[]).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(whose(&s, &r).await.as_deref(), Some(ALICE));
    assert_eq!(
        r["scope"], "api",
        "no more than Self Service's token carried"
    );
    assert!(r.get("id_token").is_none(), "{r}");

    // An id_token idforce signed (from an exchange that granted openid): exchanged again.
    let (st, r) = exchange(&s, &idp_token("jwt.key", "okta-1", |_| {}), JWT, &[]).await;
    assert_eq!(st, 200, "{r}");
    let id_token = r["id_token"].as_str().unwrap();
    let (st, again) = exchange(
        &s,
        id_token,
        "urn:ietf:params:oauth:token-type:id_token",
        &[],
    )
    .await;
    assert_eq!(st, 200, "{again}");

    // A tampered id_token is no longer idforce's; it falls to the handlers, which refuse it.
    let (st, e) = exchange(
        &s,
        &tamper(id_token),
        "urn:ietf:params:oauth:token-type:id_token",
        &[],
    )
    .await;
    assert_error(st, &e, 400, "invalid_grant", "invalid subject token");

    // A revoked access token is refused; the same request before passed.
    let revoked = s
        .post_form("/services/oauth2/revoke", &[("token", access)])
        .await;
    assert_eq!(revoked.status().as_u16(), 200);
    let (st, e) = exchange(&s, access, ACCESS, &[]).await;
    assert_error(st, &e, 400, "invalid_grant", "invalid subject token");

    // Another org's token: Dave's, of Globex, is no token of Acme's apps.
    let (st, globex) = password_through(
        &s,
        (GLOBEX_ID, GLOBEX_SECRET),
        "dave@globex.test",
        "Globex2026!",
    )
    .await;
    assert_eq!(st, 200, "{globex}");
    let (st, e) = exchange(&s, globex["access_token"].as_str().unwrap(), ACCESS, &[]).await;
    assert_error(st, &e, 400, "invalid_grant", "invalid subject token");

    // A JWT access token of idforce's is an access token, not an id_token.
    admin(
        &db,
        &[
            "app",
            "update",
            "Self Service",
            "--jwt-access-tokens",
            "true",
        ],
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (st, own) = password_through(
        &s,
        (SELF_SERVICE_ID, SELF_SERVICE_SECRET),
        ALICE,
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(st, 200, "{own}");
    let jwt_access = own["access_token"].as_str().unwrap();
    assert!(jwt_access.starts_with("eyJ"), "{jwt_access}");
    let (st, e) = exchange(
        &s,
        jwt_access,
        "urn:ietf:params:oauth:token-type:id_token",
        &[],
    )
    .await;
    assert_error(st, &e, 400, "invalid_grant", "invalid subject token");
    let (st, r) = exchange(&s, jwt_access, ACCESS, &[]).await;
    assert_eq!(st, 200, "{r}");
}

/// The asset token flow (Salesforce's Postman item "Asset Token Flow"): no client
/// authentication, the access token's app decides.
async fn asset_token(s: &TestServer, access_token: &str, actor: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", GRANT),
        ("subject_token_type", ACCESS),
        ("subject_token", access_token),
    ];
    if let Some(actor) = actor {
        form.push(("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"));
        form.push(("actor_token", actor));
    }
    s.token(&form).await
}

fn claims_of(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn asset_tokens_are_signed_by_the_orgs_keys_or_the_apps_certificate() {
    let jwks = JwksServer::start(&json!({"keys": []})).await;
    let s = TestServer::start_with(&config(&jwks.url), |_| {}).await;
    let (st, session) = exchange(&s, &idp_token("jwt.key", "okta-1", |_| {}), JWT, &[]).await;
    assert_eq!(st, 200, "{session}");
    let access = session["access_token"].as_str().unwrap();

    // A device that signs its description with its own key (proof of possession).
    let device_key = jwk_of("other.key", "device-1");
    let actor = sign_jwt_with(
        "other.key",
        &json!({"alg": "RS256", "kid": "device-1"}),
        &json!({"did": "printer-0042", "Name": "Lobby printer", "cnf": {"jwk": device_key}}),
    );
    let (st, r) = asset_token(&s, access, Some(&actor)).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (&r["issued_token_type"], &r["token_type"], &r["expires_in"]),
        (
            &json!("urn:ietf:params:oauth:token-type:jwt"),
            &json!("Bearer"),
            &json!(120)
        )
    );
    let token = r["access_token"].as_str().unwrap();
    // Verifiable with the keys the org publishes.
    let published: Value = s
        .http
        .get(s.at("/id/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = idforce_core::jwks::JwkSet::parse(&published).unwrap();
    let jwt = idforce_core::external_jwt::parse(token).unwrap();
    assert!(jwt.signed_by(&keys));
    let c = claims_of(token);
    assert_eq!(c["aud"], json!(["https://devices.example"]));
    assert_eq!(
        (&c["did"], &c["cnf"]["jwk"]),
        (&json!("printer-0042"), &device_key)
    );
    assert_eq!(c["iss"], json!(s.url));
    // Control for the signature check: a tampered token no longer verifies.
    assert!(
        !idforce_core::external_jwt::parse(&tamper(token))
            .map(|j| j.signed_by(&keys))
            .unwrap_or(false)
    );

    // Refused: a device key the actor token does not prove; an access token no one issued.
    let forged = sign_jwt_with(
        "jwt.key",
        &json!({"alg": "RS256"}),
        &json!({"did": "printer-0042", "cnf": {"jwk": device_key}}),
    );
    let (st, e) = asset_token(&s, access, Some(&forged)).await;
    assert_error(st, &e, 400, "invalid_grant", "invalid actor token");
    let (st, e) = asset_token(&s, "00D000000000001!nothing", None).await;
    assert_error(st, &e, 400, "invalid_grant", "invalid subject token");

    // An app with its own asset signing certificate: its key signs, its certificate verifies.
    let (st, devices) = s
        .token(&[
            ("grant_type", GRANT),
            ("client_id", DEVICES_ID),
            ("client_secret", DEVICES_SECRET),
            ("subject_token", &idp_token("jwt.key", "okta-1", |_| {})),
            ("subject_token_type", JWT),
        ])
        .await;
    assert_eq!(st, 200, "{devices}");
    let (st, r) = asset_token(&s, devices["access_token"].as_str().unwrap(), None).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        r["expires_in"], 60,
        "Salesforce's sample lifetime unless set"
    );
    let jwt = idforce_core::external_jwt::parse(r["access_token"].as_str().unwrap()).unwrap();
    let certificate = std::fs::read_to_string(fixture("jwt.crt")).unwrap();
    let der = idforce_server::config::parse_certificate(certificate.as_bytes()).unwrap();
    assert!(jwt.signed_by_certificate(&der));
    assert!(!jwt.signed_by(&keys), "not by the org's keys");

    // Without Enable Asset Tokens: Self Service's token.
    let (st, own) = password_through(
        &s,
        (SELF_SERVICE_ID, SELF_SERVICE_SECRET),
        ALICE,
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(st, 200, "{own}");
    let (st, e) = asset_token(&s, own["access_token"].as_str().unwrap(), None).await;
    assert_error(
        st,
        &e,
        400,
        "invalid_grant",
        "asset tokens are not enabled for the app",
    );
}
