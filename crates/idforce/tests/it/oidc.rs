//! OpenID Connect (issue: OIDC; spec §8): discovery, JWKS, id_tokens in every flow that
//! carries one, userinfo, key rotation; and the `openidconnect` crate as a relying party.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use serde_json::{Value, json};

use crate::browser::{Browser, authorize_url};
use crate::helpers::*;

/// Verifies a compact RS256 JWS against the server's JWKS; returns (header, claims).
pub async fn verify_jwt(s: &TestServer, jwt: &str) -> Result<(Value, Value), String> {
    let jwks: Value = s
        .http
        .get(s.at("/id/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .ok_or("kid not in the JWKS")?;
    let n = URL_SAFE_NO_PAD.decode(key["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(key["e"].as_str().unwrap()).unwrap();
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .map_err(|_| "signature is not base64url".to_owned())?;
    RsaPublicKeyComponents { n: &n, e: &e }
        .verify(
            &RSA_PKCS1_2048_8192_SHA256,
            format!("{}.{}", parts[0], parts[1]).as_bytes(),
            &sig,
        )
        .map_err(|_| "bad signature".to_owned())?;
    Ok((header, claims))
}

/// An app for OIDC tests: all users, openid and the standard-claim scopes.
fn oidc_config() -> String {
    CONFIG.replace("scopes = [\"api\", \"refresh_token\"]\ncertificate = \"jwt.crt\"", "scopes = [\"api\", \"refresh_token\", \"openid\", \"profile\", \"email\"]\ncertificate = \"jwt.crt\"")
}

async fn code_with(b: &mut Browser, extra: &[(&str, &str)]) -> String {
    let url = authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, extra);
    b.approved_code(&url, ALICE, ALICE_PASSWORD).await
}

#[tokio::test]
async fn discovery_and_jwks_documents() {
    let s = TestServer::start().await;
    let r = s
        .http
        .get(s.at("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let d: Value = r.json().await.unwrap();
    let u = &s.url;
    assert_eq!(d["issuer"], u.as_str());
    for (k, p) in [
        ("authorization_endpoint", "/services/oauth2/authorize"),
        ("token_endpoint", "/services/oauth2/token"),
        ("revocation_endpoint", "/services/oauth2/revoke"),
        ("userinfo_endpoint", "/services/oauth2/userinfo"),
        ("jwks_uri", "/id/keys"),
        ("introspection_endpoint", "/services/oauth2/introspect"),
    ] {
        assert_eq!(d[k], format!("{u}{p}"), "{k}");
    }
    assert_eq!(
        d["response_types_supported"],
        json!(["code", "token", "token id_token"])
    );
    assert_eq!(d["subject_types_supported"], json!(["public"]));
    assert_eq!(d["id_token_signing_alg_values_supported"], json!(["RS256"]));
    assert_eq!(
        d["display_values_supported"],
        json!(["page", "popup", "touch"])
    );
    assert!(
        d["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("openid"))
    );
    assert!(
        d["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("preferred_username"))
    );
    assert!(
        d.get("end_session_endpoint").is_none()
            && d.get("code_challenge_methods_supported").is_none()
    );
    // Every advertised endpoint answers (none is a 404).
    for k in [
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
        "introspection_endpoint",
    ] {
        let r = s.http.get(d[k].as_str().unwrap()).send().await.unwrap();
        assert_ne!(r.status(), 404, "{k}");
    }
    let m: Value = s
        .http
        .get(s.at("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["issuer"], d["issuer"]);
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    // Salesforce's three, private_key_jwt included (RFC 7523 client assertions).
    assert_eq!(
        d["token_endpoint_auth_methods_supported"],
        json!([
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt"
        ])
    );

    let r = s.http.get(s.at("/id/keys")).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    let jwks: Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    let mut fields: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(
        (
            k["kty"].as_str(),
            k["alg"].as_str(),
            k["use"].as_str(),
            k["e"].as_str()
        ),
        (Some("RSA"), Some("RS256"), Some("sig"), Some("AQAB"))
    );
    assert!(
        URL_SAFE_NO_PAD
            .decode(k["n"].as_str().unwrap())
            .unwrap()
            .len()
            >= 256,
        "at least 2048 bits"
    );
    assert!(
        k["kid"]
            .as_str()
            .unwrap()
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
}

#[tokio::test]
async fn id_token_from_the_code_flow() {
    let s = TestServer::start_with(&oidc_config(), |_| {}).await;
    let mut b = Browser::new(&s);
    let code = code_with(
        &mut b,
        &[
            ("scope", "openid api refresh_token email"),
            ("nonce", "n-0S6_WzA2Mj"),
        ],
    )
    .await;
    let (st, t) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("redirect_uri", SELF_SERVICE_CALLBACK),
        ])
        .await;
    assert_eq!(st, 200, "{t}");
    let (header, c) = verify_jwt(&s, t["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(c["iss"], s.url.as_str());
    assert_eq!(c["sub"], t["id"]);
    assert_eq!(c["aud"], SELF_SERVICE_ID);
    assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        120,
        "two minutes by default"
    );
    assert!(c["auth_time"].as_i64().unwrap() <= c["iat"].as_i64().unwrap());
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        t["access_token"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(c["at_hash"], URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]));
    assert_eq!(c["email"], ALICE);
    assert!(c.get("name").is_none(), "profile was not requested");

    // Refresh with openid brings a fresh id_token (no nonce).
    let (st, r) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(st, 200, "{r}");
    let (_, rc) = verify_jwt(&s, r["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(rc["sub"], c["sub"]);
    assert!(rc.get("nonce").is_none());

    // Without openid there is no id_token.
    let code = code_with(&mut b, &[("scope", "api")]).await;
    let (_, t) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("redirect_uri", SELF_SERVICE_CALLBACK),
        ])
        .await;
    assert!(t.get("id_token").is_none());
}

#[tokio::test]
async fn token_id_token_in_the_fragment() {
    let s = TestServer::start_with(&oidc_config(), |_| {}).await;
    let mut b = Browser::new(&s);
    let url = authorize_url(
        SELF_SERVICE_ID,
        SELF_SERVICE_CALLBACK,
        &[
            ("response_type", "token id_token"),
            ("nonce", "awesome"),
            ("scope", "openid api"),
        ],
    );
    let page = b.authorize(&url, ALICE, ALICE_PASSWORD).await;
    let page = if page.is_consent() {
        b.decide(&page, true).await
    } else {
        page
    };
    let p = page.redirect_params();
    assert!(p.contains_key("id_token"), "{:?}", page.location);
    let (_, c) = verify_jwt(&s, &p["id_token"]).await.unwrap();
    assert_eq!(c["nonce"], "awesome");
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, p["access_token"].as_bytes());
    assert_eq!(c["at_hash"], URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16]));
    // The Postman item sends nonce; without it the request is refused.
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[("response_type", "id_token token"), ("scope", "openid")],
        ))
        .await;
    let p = page.redirect_params();
    assert_eq!(
        (p["error"].as_str(), p["error_description"].as_str()),
        ("invalid_request", "nonce is required")
    );
}

#[tokio::test]
async fn userinfo_by_scope() {
    let s = TestServer::start_with(&oidc_config(), |_| {}).await;
    let mut b = Browser::new(&s);
    let code = code_with(&mut b, &[("scope", "openid email")]).await;
    let (_, t) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("redirect_uri", SELF_SERVICE_CALLBACK),
        ])
        .await;
    let at = t["access_token"].as_str().unwrap();
    let u: Value = s
        .http
        .get(s.at("/services/oauth2/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(u["sub"], t["id"]);
    assert_eq!(u["email"], ALICE);
    assert!(
        u["user_id"].as_str().unwrap().starts_with("005")
            && u["organization_id"] == "00D000000000001EAA"
    );
    assert!(
        u.get("name").is_none() && u.get("preferred_username").is_none(),
        "profile not granted: {u}"
    );
    let post: Value = s
        .http
        .post(s.at("/services/oauth2/userinfo"))
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(post, u);
    let q: Value = s
        .http
        .get(s.at(&format!("/services/oauth2/userinfo?oauth_token={at}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(q, u);

    // Salesforce-style scopes (sf: "refresh_token api web") get the whole document.
    let full: Value = s
        .http
        .get(s.at("/services/oauth2/userinfo"))
        .bearer_auth(s.alice_token().await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(full["preferred_username"], ALICE);
    assert_eq!(full["name"], "Alice Example");
    assert!(full["updated_at"].as_str().unwrap().ends_with('Z'));

    for bad in [None, Some("nope".to_owned()), Some(tamper(at))] {
        let mut req = s.http.get(s.at("/services/oauth2/userinfo"));
        if let Some(t) = bad {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403);
        assert_eq!(r.text().await.unwrap(), "Bad_OAuth_Token");
    }
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_verifiable_until_they_expire() {
    let s = TestServer::start_with(&oidc_config(), |_| {}).await;
    let mut b = Browser::new(&s);
    let redeem = |code: String| {
        let s = &s;
        async move {
            s.token(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", SELF_SERVICE_ID),
                ("client_secret", SELF_SERVICE_SECRET),
                ("redirect_uri", SELF_SERVICE_CALLBACK),
            ])
            .await
            .1
        }
    };
    let before = redeem(code_with(&mut b, &[("scope", "openid")]).await).await;
    let old = before["id_token"].as_str().unwrap().to_owned();
    let (old_header, _) = verify_jwt(&s, &old).await.unwrap();

    let db = database_url(s.dir.path());
    let rotated = admin(&db, &["keys", "rotate"]);
    s.clock.advance_secs(11); // past the node's reload interval
    let listed = admin(&db, &["keys", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert_eq!(listed[0]["kid"], rotated["kid"]);
    assert_eq!(listed[0]["active"], true);

    let after = redeem(code_with(&mut b, &[("scope", "openid")]).await).await;
    let (new_header, _) = verify_jwt(&s, after["id_token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(new_header["kid"], rotated["kid"]);
    assert_ne!(new_header["kid"], old_header["kid"]);
    assert!(
        verify_jwt(&s, &old).await.is_ok(),
        "the old key is still published"
    );

    // Once everything the old key signed has expired (2-minute id_tokens + 5 minutes' skew),
    // it leaves the JWKS.
    s.clock.advance_secs(2 * 60 + 5 * 60 + 1);
    let jwks: Value = s
        .http
        .get(s.at("/id/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [rotated["kid"].as_str().unwrap()]);
    assert_eq!(
        verify_jwt(&s, &old).await.unwrap_err(),
        "kid not in the JWKS"
    );
}

/// The `openidconnect` crate's HTTP interface, served by reqwest.
async fn http_client(
    req: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    oidc_request(&client(), req).await
}

#[tokio::test]
async fn openidconnect_crate_as_relying_party() {
    let s = TestServer::start_with(&oidc_config(), |_| {}).await;
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(s.url.clone()).unwrap(), &http_client)
            .await
            .expect("discovery");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(SELF_SERVICE_ID.into()),
        Some(ClientSecret::new(SELF_SERVICE_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(SELF_SERVICE_CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let mut b = Browser::new(&s);
    let page = b.authorize(url.as_str(), ALICE, ALICE_PASSWORD).await;
    let page = b.decide(&page, true).await;
    let p = page.redirect_params();
    assert_eq!(&p["state"], csrf.secret());

    let token = client
        .exchange_code(AuthorizationCode::new(p["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .expect("code exchange");
    let id_token = token.id_token().expect("an id_token");
    let id_verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .expect("a valid id_token");
    let at_hash = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    assert_eq!(claims.preferred_username().unwrap().as_str(), ALICE);
    assert_eq!(claims.email().unwrap().as_str(), ALICE);

    let info: CoreUserInfoClaims = client
        .user_info(token.access_token().clone(), Some(claims.subject().clone()))
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("userinfo");
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().unwrap().as_str(), ALICE);
}

#[tokio::test]
async fn jwt_access_tokens_verify_offline_and_still_revoke() {
    let config = CONFIG.replace(
        "name = \"Integration\"\n",
        "name = \"Integration\"\njwt_access_tokens = true\n",
    );
    assert_ne!(config, CONFIG);
    let s = TestServer::start_with(&config, |_| {}).await;
    let login = s.password_login(ALICE, ALICE_PASSWORD).await;
    let at = login["access_token"].as_str().unwrap();
    assert!(at.starts_with("eyJ"), "{at}");
    let (header, c) = verify_jwt(&s, at).await.unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(c["iss"], s.url.as_str());
    assert_eq!(c["sub"], login["id"]);
    assert_eq!(c["client_id"], INTEGRATION_ID);
    assert_eq!(c["scope"], "api web full openid id");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        7200
    );
    assert!(c["jti"].as_str().unwrap().len() >= 16);
    // Usable where any access token is, and introspectable.
    let r = s
        .http
        .get(login["id"].as_str().unwrap())
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let i: Value = s
        .post_form(
            "/services/oauth2/introspect",
            &[
                ("token", at),
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(i["active"], true);
    // Revocable: the signature still verifies offline, but the server refuses it.
    assert_eq!(
        s.post_form("/services/oauth2/revoke", &[("token", at)])
            .await
            .status(),
        200
    );
    let r = s
        .http
        .get(login["id"].as_str().unwrap())
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let forged = tamper(at);
    assert!(verify_jwt(&s, &forged).await.is_err());
}
