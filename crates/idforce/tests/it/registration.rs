//! Dynamic client registration (RFC 7591) at /services/oauth2/register with a parent app's
//! initial access token, RFC 7592's read/update/delete (an extension), and `private_key_jwt`
//! with keys a client registered inline or publishes at a `jwks_uri`. Each refusal with its
//! answer and a control that must pass.

use openidconnect::core::{
    CoreClientAuthMethod, CoreClientRegistrationRequest, CoreGrantType,
    CoreRegisterErrorResponseType,
};
use openidconnect::registration::{ClientRegistrationError, EmptyAdditionalClientMetadata};
use openidconnect::{AccessToken, ClientName, RedirectUrl, RegistrationUrl};
use serde_json::{Value, json};

use crate::helpers::*;

const INITIAL_TOKEN: &str = "SELFSERVICEINITIALACCESSTOKEN0001";

fn registration_config() -> String {
    let config = CONFIG.replacen(
        "client_secret = \"SELFSERVICESECRET0001\"\n",
        &format!(
            "client_secret = \"SELFSERVICESECRET0001\"\ninitial_access_token = \"{INITIAL_TOKEN}\"\n"
        ),
        1,
    );
    assert_ne!(config, CONFIG);
    config
}

async fn post_json(
    s: &TestServer,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut r = s.http.post(s.at(path)).json(body);
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    )
}

async fn call(
    s: &TestServer,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut r = s.http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn password_grant<'a>(client_id: &'a str, secret: &'a str) -> [(&'a str, &'a str); 5] {
    [
        ("grant_type", "password"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("username", ALICE),
        ("password", ALICE_PASSWORD),
    ]
}

async fn introspect(s: &TestServer, client_id: &str, secret: &str, token: &str) -> Value {
    let r = s
        .post_form(
            "/services/oauth2/introspect",
            &[
                ("client_id", client_id),
                ("client_secret", secret),
                ("token", token),
            ],
        )
        .await;
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_client_registers_with_the_openidconnect_crate_then_reads_updates_and_deletes_itself() {
    let s = TestServer::start_with(&registration_config(), |_| {}).await;
    let db = database_url(s.dir.path());
    let discovery: Value = s
        .http
        .get(s.at("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["registration_endpoint"],
        s.at("/services/oauth2/register")
    );
    let endpoint = RegistrationUrl::new(s.at("/services/oauth2/register")).unwrap();
    let http_client = |req| oidc_request(&s.http, req);
    let request = CoreClientRegistrationRequest::new(
        vec![RedirectUrl::new("https://registered.example/callback".into()).unwrap()],
        EmptyAdditionalClientMetadata {},
    )
    .set_client_name(Some(ClientName::new("Registered Tool".into()).into()))
    .set_grant_types(Some(vec![
        CoreGrantType::AuthorizationCode,
        CoreGrantType::RefreshToken,
        CoreGrantType::Password,
    ]))
    .set_token_endpoint_auth_method(Some(CoreClientAuthMethod::ClientSecretPost));

    // Refused without the initial access token, and with a wrong one.
    for token in [None, Some("NOTTHEINITIALACCESSTOKEN")] {
        let refused = request
            .clone()
            .set_initial_access_token(token.map(|t| AccessToken::new(t.into())))
            .register_async(&endpoint, &http_client)
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, ClientRegistrationError::Response(st, _, _) if st.as_u16() == 401),
            "{refused:?}"
        );
    }
    // Metadata refused: the crate reads RFC 7591's error.
    let refused = CoreClientRegistrationRequest::new(
        vec![RedirectUrl::new("https://registered.example/cb#fragment".into()).unwrap()],
        EmptyAdditionalClientMetadata {},
    )
    .set_initial_access_token(Some(AccessToken::new(INITIAL_TOKEN.into())))
    .register_async(&endpoint, &http_client)
    .await
    .unwrap_err();
    match refused {
        ClientRegistrationError::ServerResponse(e) => {
            assert_eq!(
                *e.error(),
                CoreRegisterErrorResponseType::InvalidRedirectUri
            )
        }
        other => panic!("{other:?}"),
    }
    let registered = request
        .set_initial_access_token(Some(AccessToken::new(INITIAL_TOKEN.into())))
        .register_async(&endpoint, &http_client)
        .await
        .expect("registered");
    let client_id = registered.client_id().to_string();
    let secret = registered
        .client_secret()
        .expect("a secret")
        .secret()
        .clone();
    let access_token = registered
        .registration_access_token()
        .expect("a registration access token")
        .secret()
        .clone();
    let config_uri = registered
        .registration_client_uri()
        .expect("a registration client uri")
        .to_string();
    assert_eq!(
        config_uri,
        s.at(&format!("/services/oauth2/register/{client_id}"))
    );
    assert!(client_id.starts_with("3MVG9"), "{client_id}");

    // The new app logs in, and its parent may introspect its tokens; another app may not.
    let (st, t) = s.token(&password_grant(&client_id, &secret)).await;
    assert_eq!(st, 200, "{t}");
    let token = t["access_token"].as_str().unwrap();
    let seen = introspect(&s, SELF_SERVICE_ID, SELF_SERVICE_SECRET, token).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(
        seen["scope"], "api",
        "the password flow's share of the parent's: {seen}"
    );
    assert_eq!(seen["client_id"], client_id.as_str(), "{seen}");
    let other = introspect(&s, "3MVG9idforceTestNoRunAsApp", "NORUNASSECRET0001", token).await;
    assert_eq!(other["active"], false, "another app: {other}");

    // Setup's app view and the CLI say who registered it.
    let view = admin(&db, &["app", "show", &client_id]);
    assert_eq!(view["name"], "Registered Tool");
    assert!(view["registered_by"].is_string(), "{view}");
    assert_eq!(
        view["registration"]["metadata"]["token_endpoint_auth_method"],
        "client_secret_post"
    );

    // HEAD is not a way to read, nor to delete: 405 (the GET below is its control).
    let r = s
        .http
        .head(&config_uri)
        .bearer_auth(&access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    // RFC 7592 read: with its registration access token only.
    let (st, read) = call(&s, reqwest::Method::GET, &config_uri, &access_token, None).await;
    assert_eq!(st, 200, "{read}");
    assert_eq!(read["client_id"], client_id.as_str());
    assert_eq!(read["client_secret"], secret.as_str());
    assert_eq!(read["client_name"], "Registered Tool");
    assert_eq!(
        read["scope"], "api refresh_token",
        "the parent's scopes: {read}"
    );
    assert!(read.get("registration_access_token").is_none(), "{read}");
    let (st, e) = call(&s, reqwest::Method::GET, &config_uri, INITIAL_TOKEN, None).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (401, Some("invalid_token")),
        "{e}"
    );

    // Update: the metadata replaced, the scope narrowed.
    let update = json!({
        "client_id": client_id, "client_name": "Renamed Tool",
        "redirect_uris": ["https://registered.example/callback2"],
        "grant_types": ["authorization_code", "password"],
        "token_endpoint_auth_method": "client_secret_post", "scope": "api",
    });
    let (st, updated) = call(
        &s,
        reqwest::Method::PUT,
        &config_uri,
        &access_token,
        Some(&update),
    )
    .await;
    assert_eq!(st, 200, "{updated}");
    assert_eq!(updated["client_name"], "Renamed Tool");
    assert_eq!(
        updated["redirect_uris"],
        json!(["https://registered.example/callback2"])
    );
    let (st, t) = s.token(&password_grant(&client_id, &secret)).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(updated["scope"], "api", "{updated}");
    let (_, read) = call(&s, reqwest::Method::GET, &config_uri, &access_token, None).await;
    assert_eq!(read["scope"], "api", "{read}");
    assert_eq!(
        admin(&db, &["app", "show", &client_id])["name"],
        "Renamed Tool"
    );
    // An update naming another client, or setting what is the server's: refused.
    let mut wrong = update.clone();
    wrong["client_id"] = json!("3MVG9someoneelse");
    let (st, e) = call(
        &s,
        reqwest::Method::PUT,
        &config_uri,
        &access_token,
        Some(&wrong),
    )
    .await;
    assert_error(
        st,
        &e,
        400,
        "invalid_client_metadata",
        "client_id must be the registered client's",
    );
    let mut wrong = update.clone();
    wrong["registration_access_token"] = json!("mine");
    let (st, e) = call(
        &s,
        reqwest::Method::PUT,
        &config_uri,
        &access_token,
        Some(&wrong),
    )
    .await;
    assert_error(
        st,
        &e,
        400,
        "invalid_client_metadata",
        "registration_access_token is the server's to set, not the client's",
    );

    // Delete: 204, the app is an unknown client from then on, its tokens end, the registration
    // access token stops working.
    let (st, _) = call(
        &s,
        reqwest::Method::DELETE,
        &config_uri,
        &access_token,
        None,
    )
    .await;
    assert_eq!(st, 204);
    let gone = introspect(&s, SELF_SERVICE_ID, SELF_SERVICE_SECRET, token).await;
    assert_eq!(gone["active"], false, "{gone}");
    let (st, e) = s.token(&password_grant(&client_id, &secret)).await;
    assert_error(
        st,
        &e,
        400,
        "invalid_client_id",
        "client identifier invalid",
    );
    let (st, e) = call(&s, reqwest::Method::GET, &config_uri, &access_token, None).await;
    assert_eq!(
        (st, e["error"].as_str()),
        (401, Some("invalid_token")),
        "{e}"
    );
}

#[tokio::test]
async fn registration_refusals_answer_rfc_7591_errors() {
    let s = TestServer::start_with(&registration_config(), |_| {}).await;
    let path = "/services/oauth2/register";
    let good = json!({"redirect_uris": ["https://registered.example/cb"], "client_name": "Good"});
    // No token: 401 with RFC 6750's header.
    let (st, e, headers) = post_json(&s, path, None, &good).await;
    assert_eq!(st, 401, "{e}");
    assert_eq!(e["error"], "invalid_token");
    assert_eq!(
        headers["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    // Another app's consumer secret is not an initial access token.
    let (st, _, _) = post_json(&s, path, Some(SELF_SERVICE_SECRET), &good).await;
    assert_eq!(st, 401);
    let cases = [
        (
            json!({"redirect_uris": ["https://a.example/cb#x"]}),
            "invalid_redirect_uri",
            "\"https://a.example/cb#x\" is not an absolute URL without a fragment",
        ),
        (
            json!({"client_name": "No callback"}),
            "invalid_redirect_uri",
            "redirect_uris is required for the authorization_code and implicit grant types",
        ),
        (
            json!({"grant_types": ["client_credentials"]}),
            "invalid_client_metadata",
            "grant type client_credentials cannot be registered: an admin enables it in Setup",
        ),
        (
            json!({"grant_types": ["password"], "scope": "full"}),
            "invalid_client_metadata",
            "scope full is not one the registering app may hand on",
        ),
        (
            json!({"grant_types": ["password"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
            "private_key_jwt needs the client's public keys: jwks or jwks_uri",
        ),
        (
            json!({"grant_types": ["password"], "jwks_uri": "http://keys.example/jwks"}),
            "invalid_client_metadata",
            "jwks_uri \"http://keys.example/jwks\" must be https (or http to localhost)",
        ),
    ];
    for (body, error, description) in cases {
        let (st, e, _) = post_json(&s, path, Some(INITIAL_TOKEN), &body).await;
        assert_error(st, &e, 400, error, description);
    }
    // A body that is not JSON.
    let r = s
        .http
        .post(s.at(path))
        .bearer_auth(INITIAL_TOKEN)
        .form(&[("client_name", "form")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e: Value = r.json().await.unwrap();
    assert_error(
        400,
        &e,
        400,
        "invalid_client_metadata",
        "the request body must be JSON (Content-Type: application/json)",
    );
    // Control: the same token and a good body register; twice, with numbered names.
    let (st, first, _) = post_json(&s, path, Some(INITIAL_TOKEN), &good).await;
    assert_eq!(st, 201, "{first}");
    let (st, second, _) = post_json(&s, path, Some(INITIAL_TOKEN), &good).await;
    assert_eq!(st, 201, "{second}");
    assert_eq!(second["client_name"], "Good (2)");
    assert_ne!(first["client_id"], second["client_id"]);
    // Resending its own (numbered) name keeps it.
    let update = json!({
        "client_id": second["client_id"], "client_name": "Good (2)",
        "redirect_uris": ["https://registered.example/cb"],
    });
    let (st, same) = call(
        &s,
        reqwest::Method::PUT,
        second["registration_client_uri"].as_str().unwrap(),
        second["registration_access_token"].as_str().unwrap(),
        Some(&update),
    )
    .await;
    assert_eq!(
        (st, same["client_name"].as_str()),
        (200, Some("Good (2)")),
        "{same}"
    );
    // One registration access token does not open another registration.
    let (st, _) = call(
        &s,
        reqwest::Method::GET,
        second["registration_client_uri"].as_str().unwrap(),
        first["registration_access_token"].as_str().unwrap(),
        None,
    )
    .await;
    assert_eq!(st, 401);

    // A blocked parent registers nothing.
    let db = database_url(s.dir.path());
    admin(&db, &["app", "block", "Self Service"]);
    let (st, _, _) = post_json(&s, path, Some(INITIAL_TOKEN), &good).await;
    assert_eq!(st, 401, "a blocked parent");
}

#[tokio::test]
async fn the_cli_generates_an_initial_access_token_and_shows_it_again() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let made = admin(&db, &["app", "generate-initial-access-token", "Auditor"]);
    let token = made["initial_access_token"].as_str().unwrap().to_owned();
    let shown = admin(&db, &["app", "show", "Auditor", "--reveal-secret"]);
    assert_eq!(shown["initial_access_token"], token.as_str());
    assert_eq!(shown["has_initial_access_token"], true);
    let hidden = admin(&db, &["app", "show", "Auditor"]);
    assert!(hidden.get("initial_access_token").is_none(), "{hidden}");
    // The token registers an app with the Auditor's scopes (`id`), on the running server.
    let body = json!({"grant_types": ["password"], "client_name": "From the CLI"});
    let (st, r, _) = post_json(&s, "/services/oauth2/register", Some(&token), &body).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["scope"], "id");
    assert!(r["response_types"].as_array().unwrap().is_empty(), "{r}");
    // Regenerated: the old token no longer registers (control: the new one does).
    let again = admin(&db, &["app", "generate-initial-access-token", "Auditor"]);
    let (st, _, _) = post_json(&s, "/services/oauth2/register", Some(&token), &body).await;
    assert_eq!(st, 401);
    let fresh = again["initial_access_token"].as_str().unwrap();
    let (st, r, _) = post_json(&s, "/services/oauth2/register", Some(fresh), &body).await;
    assert_eq!(st, 201, "{r}");
}

fn client_assertion(key_file: &str, kid: &str, client_id: &str, aud: &str, jti: &str) -> String {
    sign_jwt_with(
        key_file,
        &json!({"alg": "RS256", "kid": kid}),
        &json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": now_secs() + 120, "jti": jti}),
    )
}

async fn assertion_login(s: &TestServer, assertion: &str) -> (u16, Value) {
    s.token(&[
        ("grant_type", "password"),
        ("username", ALICE),
        ("password", ALICE_PASSWORD),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion),
    ])
    .await
}

#[tokio::test]
async fn private_key_jwt_with_registered_keys_inline_and_at_a_jwks_uri() {
    let s = TestServer::start_with(&registration_config(), |_| {}).await;
    let token_endpoint = s.at("/services/oauth2/token");
    // Inline keys.
    let body = json!({
        "grant_types": ["password"], "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [jwk_of("jwt.key", "k1")]}, "client_name": "Inline keys",
    });
    let (st, r, _) = post_json(&s, "/services/oauth2/register", Some(INITIAL_TOKEN), &body).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["jwks"]["keys"][0]["kid"], "k1");
    assert!(
        r.get("client_secret").is_none(),
        "a key-only client has no secret: {r}"
    );
    let client_id = r["client_id"].as_str().unwrap().to_owned();
    // Its client id alone proves nothing.
    let (st, e) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    let (st, t) = assertion_login(
        &s,
        &client_assertion("jwt.key", "k1", &client_id, &token_endpoint, "a-1"),
    )
    .await;
    assert_eq!(st, 200, "{t}");
    // Signed by a key the client did not register: refused (its control is the line above).
    let (st, e) = assertion_login(
        &s,
        &client_assertion("other.key", "k1", &client_id, &token_endpoint, "a-2"),
    )
    .await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    // The same jti again: refused.
    let (st, e) = assertion_login(
        &s,
        &client_assertion("jwt.key", "k1", &client_id, &token_endpoint, "a-1"),
    )
    .await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");

    // Keys at a jwks_uri, fetched once and kept as its Cache-Control says.
    let jwks = JwksServer::start(&json!({"keys": [jwk_of("jwt.key", "k1")]})).await;
    let body = json!({
        "grant_types": ["password"], "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": jwks.url, "client_name": "Published keys",
    });
    let (st, r, _) = post_json(&s, "/services/oauth2/register", Some(INITIAL_TOKEN), &body).await;
    assert_eq!(st, 201, "{r}");
    let client_id = r["client_id"].as_str().unwrap().to_owned();
    for jti in ["b-1", "b-2"] {
        let (st, t) = assertion_login(
            &s,
            &client_assertion("jwt.key", "k1", &client_id, &token_endpoint, jti),
        )
        .await;
        assert_eq!(st, 200, "{t}");
    }
    assert_eq!(jwks.fetches(), 1, "kept, not fetched at each assertion");
    // The client rotates to a new key: an assertion naming it makes one refetch, which finds it.
    *jwks.served.lock().unwrap() = json!({"keys": [jwk_of("other.key", "k2")]}).to_string();
    let (st, t) = assertion_login(
        &s,
        &client_assertion("other.key", "k2", &client_id, &token_endpoint, "b-3"),
    )
    .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(jwks.fetches(), 2);
    // Unknown keys do not make it fetch again within the minute.
    for jti in ["b-4", "b-5"] {
        let (st, e) = assertion_login(
            &s,
            &client_assertion("jwt.key", "k9", &client_id, &token_endpoint, jti),
        )
        .await;
        assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    }
    assert_eq!(jwks.fetches(), 2, "no refetch within a minute");
}
