//! Salesforce's hosts (issue: My Domain, sites, frontdoor, logout, auth-configuration): an org's
//! My Domain reached by its own name (resolved to loopback, as `*.localhost` names are), and an
//! Experience Cloud site under its path on the login host and on the My Domain.

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge,
    RedirectUrl, Scope, TokenResponse,
};
use serde_json::Value;

use crate::browser::{Browser, authorize_url};
use crate::helpers::*;

pub const MY_DOMAIN: &str = "acme.my.localhost";

/// The shared config with Acme given a My Domain, a Logout URL and a site (and Self Service
/// the `openid` scope); Globex has none.
pub fn hosts_config() -> String {
    let config = CONFIG.replace(
        "scopes = [\"api\", \"refresh_token\"]\ncertificate = \"jwt.crt\"",
        "scopes = [\"api\", \"refresh_token\", \"openid\"]\ncertificate = \"jwt.crt\"",
    );
    let config = config.replacen(
        "name = \"Self Service\"\n",
        "name = \"Self Service\"\npost_logout_redirect_uris = [\"https://app.example/logged-out\"]\n",
        1,
    );
    let config = config.replacen(
        "id = \"00D000000000001\"\n",
        "id = \"00D000000000001\"\nmy_domain = \"acme.my.localhost\"\n\
         logout_url = \"https://acme.test/bye\"\n\n\
         [[org.site]]\nname = \"Partners\"\npath = \"partners\"\n",
        1,
    );
    // Globex's app may open browser sessions (frontdoor needs web).
    let config = config.replacen(
        "scopes = [\"api\", \"id\"]\nintrospect_all_tokens = true",
        "scopes = [\"api\", \"id\", \"web\"]\nintrospect_all_tokens = true",
        1,
    );
    assert!(config.contains("\"id\", \"web\""));
    assert_ne!(config, CONFIG);
    config
}

/// A server with `hosts_config`, and a client that finds the My Domain on loopback.
pub struct Hosts {
    pub s: TestServer,
    pub http: reqwest::Client,
    /// The My Domain's URL: `http://acme.my.localhost:<port>`.
    pub my_domain: String,
}

impl Hosts {
    pub async fn start() -> Hosts {
        Hosts::start_with(&hosts_config()).await
    }

    pub async fn start_with(config: &str) -> Hosts {
        let s = TestServer::start_with(config, |_| {}).await;
        let port: u16 = s.url.rsplit(':').next().unwrap().parse().unwrap();
        install_crypto();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(MY_DOMAIN, ([127, 0, 0, 1], port).into())
            .build()
            .unwrap();
        Hosts {
            my_domain: format!("http://{MY_DOMAIN}:{port}"),
            s,
            http,
        }
    }

    pub async fn token(&self, base: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{base}/services/oauth2/token"))
            .form(form)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_json(&self, url: &str) -> Value {
        let r = self.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        r.json().await.unwrap()
    }

    pub fn browser(&self, base: &str) -> Browser {
        Browser::with(base, self.http.clone())
    }
}

const CLIENT_CREDENTIALS: [(&str, &str); 3] = [
    ("grant_type", "client_credentials"),
    ("client_id", INTEGRATION_ID),
    ("client_secret", INTEGRATION_SECRET),
];

fn jwt_bearer(aud: &str, jti: &str) -> String {
    sign_jwt(&serde_json::json!({
        "iss": INTEGRATION_ID, "sub": ALICE, "aud": aud,
        "exp": now_secs() + 180, "jti": jti,
    }))
}

#[tokio::test]
async fn a_my_domain_serves_its_own_org_and_is_where_its_data_lives() {
    let h = Hosts::start().await;
    let login_host = h.s.url.clone();

    // A login on the My Domain, and one on the login host: both point at the My Domain for
    // data; the identity URL stays on the login host.
    for base in [&h.my_domain, &login_host] {
        let (st, t) = h.token(base, &password_form(ALICE, ALICE_PASSWORD)).await;
        assert_eq!(st, 200, "{base}: {t}");
        assert_eq!(t["instance_url"], h.my_domain.as_str(), "{base}");
        let id = t["id"].as_str().unwrap();
        assert!(id.starts_with(&format!("{login_host}/id/")), "{id}");
        assert!(t.get("sfdc_community_url").is_none(), "{t}");
    }

    // A user of another org is refused on Acme's My Domain, as a failed login is; the login
    // host still serves them (the control), with their own org's instance URL.
    let dave = password_form("dave@globex.test", "Globex2026!");
    let (st, e) = h.token(&h.my_domain, &dave).await;
    assert_error(st, &e, 400, "invalid_grant", "authentication failure");
    let (st, t) = h.token(&login_host, &dave).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["instance_url"], login_host.as_str());

    // Client credentials of an org with a My Domain: only there.
    let (st, e) = h.token(&login_host, &CLIENT_CREDENTIALS).await;
    assert_error(
        st,
        &e,
        400,
        "invalid_grant",
        "request not supported on this domain",
    );
    let (st, t) = h.token(&h.my_domain, &CLIENT_CREDENTIALS).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["instance_url"], h.my_domain.as_str());

    // JWT bearer takes the My Domain's URL as audience, on either host; a stranger's URL is
    // still refused.
    let (st, t) = h
        .token(
            &login_host,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &jwt_bearer(&h.my_domain, "md-1")),
            ],
        )
        .await;
    assert_eq!(st, 200, "{t}");
    let (st, e) = h
        .token(
            &h.my_domain,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                (
                    "assertion",
                    &jwt_bearer("http://globex.my.localhost", "md-2"),
                ),
            ],
        )
        .await;
    assert_error(st, &e, 400, "invalid_grant", "audience is invalid");

    // Discovery: each host is its own issuer; the My Domain's advertises logout.
    let d = h
        .get_json(&format!("{}/.well-known/openid-configuration", h.my_domain))
        .await;
    assert_eq!(d["issuer"], h.my_domain.as_str());
    assert_eq!(
        d["token_endpoint"],
        format!("{}/services/oauth2/token", h.my_domain)
    );
    assert_eq!(
        d["end_session_endpoint"],
        format!("{}/services/auth/idp/oidc/logout", h.my_domain)
    );
    let d = h
        .get_json(&format!("{login_host}/.well-known/openid-configuration"))
        .await;
    assert_eq!(d["issuer"], login_host.as_str());
    assert!(d.get("end_session_endpoint").is_none(), "{d}");
}

#[tokio::test]
async fn openidconnect_discovers_the_my_domain_and_verifies_its_id_tokens() {
    let h = Hosts::start().await;
    let http_client = |req| oidc_request(&h.http, req);
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(h.my_domain.clone()).unwrap(),
        &http_client,
    )
    .await
    .expect("discovery of the My Domain");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(SELF_SERVICE_ID.into()),
        Some(ClientSecret::new(SELF_SERVICE_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(SELF_SERVICE_CALLBACK.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("openid".into()))
        .set_pkce_challenge(challenge)
        .url();
    assert!(url.as_str().starts_with(&h.my_domain), "{url}");
    let mut b = h.browser(&h.my_domain);
    let code = b.approved_code(url.as_str(), ALICE, ALICE_PASSWORD).await;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http_client)
        .await
        .expect("code exchange");
    // The crate checks `iss` against the My Domain it discovered.
    let claims = token
        .id_token()
        .expect("an id_token")
        .claims(&client.id_token_verifier(), &nonce)
        .expect("an id_token issued by the My Domain");
    assert_eq!(claims.issuer().as_str(), h.my_domain);

    // The control: a login of Globex's user on Acme's My Domain page fails like a wrong
    // password.
    let mut b = h.browser(&h.my_domain);
    let page = b.get(url.as_str()).await;
    let after = b.log_in(&page, "dave@globex.test", "Globex2026!").await;
    assert_eq!(after.status, 200);
    assert!(
        after
            .body
            .contains("Please check your username and password")
    );
}

#[tokio::test]
async fn a_site_answers_every_oauth_endpoint_under_its_path() {
    let h = Hosts::start().await;
    let login_host = h.s.url.clone();
    for host in [&login_host, &h.my_domain] {
        let site = format!("{host}/partners");
        // Discovery names the site as issuer.
        let d = h
            .get_json(&format!("{site}/.well-known/openid-configuration"))
            .await;
        assert_eq!(d["issuer"], site.as_str());
        assert_eq!(
            d["authorization_endpoint"],
            format!("{site}/services/oauth2/authorize")
        );

        // JWT bearer with the site's URL as audience: tokens carry the site's URL and id.
        let (st, t) = h
            .token(
                &site,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", &jwt_bearer(&site, &format!("site-{host}"))),
                ],
            )
            .await;
        assert_eq!(st, 200, "{t}");
        assert_eq!(t["sfdc_community_url"], site.as_str());
        let id = t["sfdc_community_id"].as_str().unwrap();
        assert!(id.starts_with("0DB") && id.len() == 18, "{id}");
        assert_eq!(t["instance_url"], h.my_domain.as_str());
        // Userinfo answers there too.
        let r = h
            .http
            .get(format!("{site}/services/oauth2/userinfo"))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);

        // The username-password flow is not taken on a site; the same request works off it.
        let (st, e) = h.token(&site, &password_form(ALICE, ALICE_PASSWORD)).await;
        assert_error(st, &e, 400, "invalid_grant", "authentication failure");
        let (st, t) = h.token(host, &password_form(ALICE, ALICE_PASSWORD)).await;
        assert_eq!(st, 200, "{t}");
    }

    // Setup is the org's, not a site's; an unknown first segment is no site.
    let r = h
        .http
        .get(format!(
            "{login_host}/partners/lightning/setup/SetupOneHome/home"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = h
        .http
        .get(format!("{login_host}/nosuchsite/services/oauth2/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_sites_login_page_shows_its_name_and_its_code_carries_the_site() {
    let h = Hosts::start().await;
    let site = format!("{}/partners", h.s.url);
    let mut b = h.browser(&h.s.url);
    let url = authorize_url(
        SELF_SERVICE_ID,
        SELF_SERVICE_CALLBACK,
        &[("scope", "api openid"), ("state", "s1")],
    );
    let page = b.get(&format!("/partners{url}")).await;
    assert!(page.is_login(), "{}", page.body);
    assert!(page.body.contains("Partners"), "{}", page.body);
    assert_eq!(page.form_action().as_deref(), Some("/partners/"));
    let after = b.log_in(&page, ALICE, ALICE_PASSWORD).await;
    assert_eq!(after.status, 302, "{}", after.body);
    let location = after.location.clone().unwrap();
    assert!(
        location.starts_with("/partners/services/oauth2/authorize?"),
        "{location}"
    );
    let page = b.get(&location).await;
    let page = b.decide(&page, true).await;
    let p = page.redirect_params();
    assert_eq!(p["state"], "s1");
    assert_eq!(p["sfdc_community_url"], site);
    assert!(p["sfdc_community_id"].starts_with("0DB"));
    let (st, t) = h
        .token(
            &site,
            &[
                ("grant_type", "authorization_code"),
                ("code", &p["code"]),
                ("client_id", SELF_SERVICE_ID),
                ("client_secret", SELF_SERVICE_SECRET),
                ("redirect_uri", SELF_SERVICE_CALLBACK),
            ],
        )
        .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["sfdc_community_url"], site.as_str());
    assert_eq!(t["sfdc_community_id"], p["sfdc_community_id"].as_str());

    // A Globex user's browser session from the login host does not count on Acme's site:
    // the site asks for a login instead of issuing Dave a code through Acme.
    let mut dave = h.browser(&h.s.url);
    let page = dave.get("/").await;
    let home = dave.log_in(&page, "dave@globex.test", "Globex2026!").await;
    assert_eq!(home.status, 302, "{}", home.body);
    let page = dave.get(&format!("/partners{url}")).await;
    assert!(page.is_login(), "{}", page.body);
    // The control: on the login host the same session is Dave's.
    let page = dave.get("/").await;
    assert!(
        !page.is_login() && page.body.contains("dave@globex.test"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn hosts_that_cannot_work_are_refused_at_start() {
    for (config, said) in [
        (
            hosts_config().replace("path = \"partners\"", "path = \"services\""),
            "one of idforce's own paths",
        ),
        (
            hosts_config().replace(
                "my_domain = \"acme.my.localhost\"",
                "my_domain = \"https://acme.my.localhost\"",
            ),
            "is not a host name",
        ),
        (
            hosts_config().replace(
                "[[org]]\nname = \"Globex\"\n",
                "[[org]]\nname = \"Globex\"\nmy_domain = \"acme.my.localhost\"\n",
            ),
            "is another org's",
        ),
        (
            hosts_config().replace(
                "[[org]]\nname = \"Globex\"\n",
                "[[org]]\nname = \"Globex\"\n\n[[org.site]]\nname = \"G\"\npath = \"partners\"\n",
            ),
            "is org \"Acme\"'s already",
        ),
    ] {
        assert_ne!(config, hosts_config(), "{said}");
        let why = match TestServer::try_start_with(&config, |_| {}).await {
            Err(e) => e.to_string(),
            Ok(_) => panic!("started with a config that cannot work ({said})"),
        };
        assert!(why.contains(said), "{why}");
    }
    // The control: the config they were made from starts.
    Hosts::start().await;
}

#[tokio::test]
async fn auth_configuration_in_salesforces_shape_on_every_host() {
    let h = Hosts::start().await;
    let login_host = h.s.url.clone();
    let keys = [
        "OrgId",
        "Url",
        "MobileSDK",
        "LoginPage",
        "SamlProviders",
        "AuthProviders",
        "CertificateLogin",
        "LoginPageType",
        "LoginPageTypeConfigs",
    ];
    // A My Domain: the org's id (15 characters), its URL, no login page of its own.
    let c = h
        .get_json(&format!("{}/.well-known/auth-configuration", h.my_domain))
        .await;
    for k in keys {
        assert!(c.get(k).is_some(), "{k} missing: {c}");
    }
    assert_eq!(c["OrgId"], ORG_ID_15);
    assert_eq!(c["Url"], h.my_domain.as_str());
    assert!(c["LoginPage"].is_null(), "{c}");
    assert_eq!(
        c["MobileSDK"]["UseAndroidNativeBrowserForAuthentication"],
        false
    );
    assert_eq!(c["AuthProviders"], serde_json::json!([]));
    assert_eq!(c["LoginPageType"], "standard");
    // A site: its URL, and its login page.
    let site = format!("{}/partners", h.my_domain);
    let c = h
        .get_json(&format!("{site}/.well-known/auth-configuration?expid=x"))
        .await;
    assert_eq!(c["Url"], site.as_str());
    assert_eq!(c["LoginPage"]["LoginPageUrl"], format!("{site}/"));
    assert_eq!(c["LoginPage"]["UsernamePasswordEnabled"], true);
    // The login host: no org of its own.
    let c = h
        .get_json(&format!("{login_host}/.well-known/auth-configuration"))
        .await;
    assert!(c["OrgId"].is_null(), "{c}");
    assert_eq!(c["Url"], login_host.as_str());
}

async fn alice_token(h: &Hosts, client_id: &str, secret: &str) -> String {
    let (st, t) = h
        .token(
            &h.s.url,
            &[
                ("grant_type", "password"),
                ("client_id", client_id),
                ("client_secret", secret),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
            ],
        )
        .await;
    assert_eq!(st, 200, "{t}");
    t["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn frontdoor_turns_a_web_token_into_a_browser_session_on_its_own_host() {
    let h = Hosts::start().await;
    let web = alice_token(&h, INTEGRATION_ID, INTEGRATION_SECRET).await;
    let api_only = alice_token(&h, SELF_SERVICE_ID, SELF_SERVICE_SECRET).await;
    let setup = "/lightning/setup/SetupOneHome/home";
    let open = |query: Vec<(&'static str, String)>| {
        let h = &h;
        async move {
            let q = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query)
                .finish();
            let mut b = h.browser(&h.my_domain);
            let page = b.get(&format!("/secur/frontdoor.jsp?{q}")).await;
            (b, page)
        }
    };

    // A web-scoped token: a browser session on the My Domain, landing on retURL.
    let (mut b, page) = open(vec![("sid", web.clone()), ("retURL", setup.into())]).await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some(setup));
    assert!(b.cookies.contains_key("idforce_sid"));
    let home = b.get(setup).await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains("Setup"), "{}", home.body);

    // Posted as a form, as Salesforce's help recommends: the same.
    let mut b = h.browser(&h.my_domain);
    let page = b
        .post(
            "/secur/frontdoor.jsp",
            &[("sid".into(), web.clone()), ("retURL".into(), setup.into())],
        )
        .await;
    assert_eq!(page.location.as_deref(), Some(setup));

    // retURL elsewhere: the session still opens, the browser stays on this host.
    for elsewhere in ["https://evil.test/", "//evil.test/"] {
        let (b, page) = open(vec![("sid", web.clone()), ("retURL", elsewhere.into())]).await;
        assert_eq!(page.location.as_deref(), Some("/"), "{elsewhere}");
        assert!(b.cookies.contains_key("idforce_sid"), "{elsewhere}");
    }

    // No session for a token without web or full, an unknown token, or none: the login page.
    for query in [
        vec![("sid", api_only.clone()), ("retURL", setup.into())],
        vec![("sid", tamper(&web)), ("retURL", setup.into())],
        vec![("retURL", setup.to_owned())],
    ] {
        let (b, page) = open(query).await;
        assert_eq!(page.status, 302);
        assert_eq!(page.location.as_deref(), Some("/"));
        assert!(!b.cookies.contains_key("idforce_sid"));
    }

    // A web-scoped token of Globex's user opens no session on Acme's My Domain; on the login
    // host it does (the control).
    let (st, t) = h
        .token(
            &h.s.url,
            &[
                ("grant_type", "password"),
                ("client_id", GLOBEX_ID),
                ("client_secret", GLOBEX_SECRET),
                ("username", "dave@globex.test"),
                ("password", "Globex2026!"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{t}");
    let dave = t["access_token"].as_str().unwrap().to_owned();
    let (b, page) = open(vec![("sid", dave.clone())]).await;
    assert_eq!(page.location.as_deref(), Some("/"));
    assert!(!b.cookies.contains_key("idforce_sid"));
    let mut b = h.browser(&h.s.url);
    let page = b
        .get(&format!("/secur/frontdoor.jsp?sid={}", urlencode(&dave)))
        .await;
    assert_eq!(page.status, 302);
    assert!(b.cookies.contains_key("idforce_sid"));
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn singleaccess_hands_out_a_frontdoor_url_that_works_once() {
    let h = Hosts::start().await;
    let web = alice_token(&h, INTEGRATION_ID, INTEGRATION_SECRET).await;
    let api_only = alice_token(&h, SELF_SERVICE_ID, SELF_SERVICE_SECRET).await;
    let endpoint = format!("{}/services/oauth2/singleaccess", h.my_domain);

    // As the sf CLI asks: GET, a Bearer token, a path without its slash.
    let r = h
        .http
        .get(format!(
            "{endpoint}?redirect_uri=lightning/setup/ManageUsers/home"
        ))
        .bearer_auth(&web)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url = r.json::<Value>().await.unwrap()["frontdoor_uri"]
        .as_str()
        .unwrap()
        .to_owned();
    let prefix = format!("{}/secur/frontdoor.jsp?otp=", h.my_domain);
    assert!(url.starts_with(&prefix), "{url}");
    assert!(
        url.ends_with("&startURL=%2Flightning%2Fsetup%2FManageUsers%2Fhome"),
        "{url}"
    );
    let mut b = h.browser(&h.my_domain);
    let page = b.get(&url).await;
    assert_eq!(page.status, 302);
    assert_eq!(
        page.location.as_deref(),
        Some("/lightning/setup/ManageUsers/home")
    );
    assert!(b.cookies.contains_key("idforce_sid"));
    // Once only.
    let mut again = h.browser(&h.my_domain);
    let page = again.get(&url).await;
    assert_eq!(page.location.as_deref(), Some("/"));
    assert!(!again.cookies.contains_key("idforce_sid"));

    // As the Mobile SDK asks: POST, a form redirect_uri.
    let r = h
        .http
        .post(&endpoint)
        .bearer_auth(&web)
        .form(&[("redirect_uri", "/lightning/page/home")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let url: Value = r.json().await.unwrap();
    assert!(
        url["frontdoor_uri"]
            .as_str()
            .unwrap()
            .ends_with("startURL=%2Flightning%2Fpage%2Fhome")
    );

    // Refusals: 403 and one word of plain text.
    for (token, word) in [
        (Some(api_only.as_str()), "Invalid_Scope"),
        (Some(tamper(&web)).as_deref(), "Bad_OAuth_Token"),
        (None, "Bad_OAuth_Token"),
    ] {
        let mut req = h.http.post(&endpoint);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 403, "{word}");
        assert!(
            r.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(r.text().await.unwrap(), word);
    }
    // A redirect off this host is refused.
    let r = h
        .http
        .post(&endpoint)
        .bearer_auth(&web)
        .form(&[("redirect_uri", "https://evil.test/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn oidc_logout_ends_the_session_and_goes_where_the_org_or_the_app_says() {
    use openidconnect::core::CoreClient;
    use openidconnect::{LogoutRequest, PostLogoutRedirectUrl, ProviderMetadataWithLogout};
    let h = Hosts::start().await;
    let http_client = |req| oidc_request(&h.http, req);
    let metadata = ProviderMetadataWithLogout::discover_async(
        IssuerUrl::new(h.my_domain.clone()).unwrap(),
        &http_client,
    )
    .await
    .expect("discovery");
    let end_session = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("the My Domain advertises its logout");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(SELF_SERVICE_ID.into()),
        Some(ClientSecret::new(SELF_SERVICE_SECRET.into())),
    )
    .set_redirect_uri(RedirectUrl::new(SELF_SERVICE_CALLBACK.into()).unwrap());
    let (url, _, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("openid".into()))
        .url();
    let mut b = h.browser(&h.my_domain);
    let code = b.approved_code(url.as_str(), ALICE, ALICE_PASSWORD).await;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .request_async(&http_client)
        .await
        .expect("code exchange");
    let id_token = token.id_token().expect("an id_token").clone();
    id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("valid");
    assert!(!b.get("/").await.is_login(), "logged in before");

    // The app's own post-logout page, with state: the hint names the app, which lists it.
    let logout = LogoutRequest::from(end_session.clone())
        .set_id_token_hint(&id_token)
        .set_post_logout_redirect_uri(
            PostLogoutRedirectUrl::new("https://app.example/logged-out".into()).unwrap(),
        )
        .set_state(CsrfToken::new("st-1".into()))
        .http_get_url();
    let page = b.get(logout.as_str()).await;
    assert_eq!(page.status, 302);
    assert_eq!(
        page.location.as_deref(),
        Some("https://app.example/logged-out?state=st-1")
    );
    assert!(b.get("/").await.is_login(), "the session ended");

    // A URI the app does not list, or no hint: the org's Logout URL (Salesforce's answer).
    for logout in [
        LogoutRequest::from(end_session.clone())
            .set_id_token_hint(&id_token)
            .set_post_logout_redirect_uri(
                PostLogoutRedirectUrl::new("https://evil.test/".into()).unwrap(),
            )
            .http_get_url(),
        LogoutRequest::from(end_session.clone())
            .set_post_logout_redirect_uri(
                PostLogoutRedirectUrl::new("https://app.example/logged-out".into()).unwrap(),
            )
            .http_get_url(),
        LogoutRequest::from(end_session.clone())
            .set_id_token_hint(&id_token)
            .set_client_id(ClientId::new(INTEGRATION_ID.into()))
            .set_post_logout_redirect_uri(
                PostLogoutRedirectUrl::new("https://app.example/logged-out".into()).unwrap(),
            )
            .http_get_url(),
    ] {
        let page = b.get(logout.as_str()).await;
        assert_eq!(
            page.location.as_deref(),
            Some("https://acme.test/bye"),
            "{logout}"
        );
    }

    // On the login host: the logged-in user's org's Logout URL; a Globex user's org has none,
    // so the login page.
    let mut alice = h.browser(&h.s.url);
    let page = alice.get("/").await;
    alice.log_in(&page, ALICE, ALICE_PASSWORD).await;
    let page = alice.get("/services/auth/idp/oidc/logout").await;
    assert_eq!(page.location.as_deref(), Some("https://acme.test/bye"));
    let mut dave = h.browser(&h.s.url);
    let page = dave.get("/").await;
    dave.log_in(&page, "dave@globex.test", "Globex2026!").await;
    let page = dave.get("/services/auth/idp/oidc/logout").await;
    assert_eq!(page.location, Some(format!("{}/", h.s.url)));
    assert!(dave.get("/").await.is_login());
}

#[tokio::test]
async fn one_wildcard_certificate_serves_the_login_host_and_every_my_domain() {
    install_crypto();
    let s = TestServer::start_with(&hosts_config(), |o| {
        o.tls = Some((fixture("hosts.crt"), fixture("hosts.key")));
    })
    .await;
    let port: u16 = s.url.rsplit(':').next().unwrap().parse().unwrap();
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(fixture("hosts-ca.crt")).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .resolve(MY_DOMAIN, ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let my_domain = format!("https://{MY_DOMAIN}:{port}");
    for base in [my_domain.clone(), format!("https://localhost:{port}")] {
        let r = http
            .get(format!("{base}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{base}: {e}"));
        assert_eq!(r.status(), 200);
        // HTTP/2, as browsers speak it over TLS: the host comes as `:authority`, not `Host`.
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        let d: Value = r.json().await.unwrap();
        // The My Domain is its own issuer, over HTTPS on the server's port.
        if base == my_domain {
            assert_eq!(d["issuer"], my_domain.as_str());
            // A login of another org's user is refused there over HTTP/2 too; Alice's works.
            let form = |u: &'static str, p: &'static str| password_form(u, p);
            let token = |f: [(&'static str, &'static str); 5]| {
                let (http, base) = (http.clone(), base.clone());
                async move {
                    let r = http
                        .post(format!("{base}/services/oauth2/token"))
                        .form(&f)
                        .send()
                        .await
                        .unwrap();
                    (r.status().as_u16(), r.json::<Value>().await.unwrap())
                }
            };
            let (st, e) = token(form("dave@globex.test", "Globex2026!")).await;
            assert_error(st, &e, 400, "invalid_grant", "authentication failure");
            let (st, t) = token(form(ALICE, ALICE_PASSWORD)).await;
            assert_eq!(st, 200, "{t}");
            // A site by its path, over HTTP/2: the site's URL, with the scheme and host kept.
            let r = http
                .get(format!("{base}/partners/.well-known/openid-configuration"))
                .send()
                .await
                .unwrap();
            let d: Value = r.json().await.unwrap();
            assert_eq!(d["issuer"], format!("{my_domain}/partners"));
        }
    }
    // The control: a name the certificate does not cover is refused by the client.
    let r = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(
            &std::fs::read(fixture("hosts-ca.crt")).unwrap(),
        )
        .unwrap()])
        .resolve("acme.other.localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap()
        .get(format!("https://acme.other.localhost:{port}/healthz"))
        .send()
        .await;
    assert!(r.is_err(), "a name outside the certificate was accepted");
}

#[tokio::test]
async fn org_update_gives_a_running_server_a_new_my_domain_and_site() {
    let h = Hosts::start().await;
    let db = database_url(h.s.dir.path());
    let port: u16 = h.s.url.rsplit(':').next().unwrap().parse().unwrap();
    let http = reqwest::Client::builder()
        .resolve("globex.my.localhost", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap();
    let globex = format!("http://globex.my.localhost:{port}");
    // Before: an unknown host is the login host's.
    let d: Value = http
        .get(format!("{globex}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], h.s.url.as_str());

    let view = admin_seen(
        &db,
        &[
            "org",
            "update",
            "Globex",
            "--my-domain",
            "Globex.My.Localhost",
            "--logout-url",
            "https://globex.test/bye",
            "--site",
            "Store=store",
        ],
    );
    assert_eq!(view["my_domain"], "globex.my.localhost");
    assert_eq!(view["sites"][0]["path"], "store");
    let d: Value = http
        .get(format!("{globex}/store/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], format!("{globex}/store"));
    let trail = admin(&db, &["audit-trail", "--org", "Globex"]);
    assert!(trail.to_string().contains("globex.my.localhost"), "{trail}");

    // Refused as the config file refuses them; the org is unchanged.
    for (args, said) in [
        (vec!["--my-domain", MY_DOMAIN], "is another org's"),
        (vec!["--site", "X=services"], "one of idforce's own paths"),
        (vec!["--site", "X=partners"], "is org \"Acme\"'s already"),
        (vec!["--site", "no-equals"], "expected NAME=PATH"),
        (vec!["--remove-site", "Nothing"], "no site named"),
    ] {
        let mut cmd = vec!["org", "update", "Globex"];
        cmd.extend(args);
        let why = admin_refused(&db, &cmd);
        assert!(why.contains(said), "{why}");
    }
    let view = admin(&db, &["org", "show", "Globex"]);
    assert_eq!(view["my_domain"], "globex.my.localhost");

    // A site removed answers no more.
    admin_seen(&db, &["org", "update", "Globex", "--remove-site", "Store"]);
    let r = http
        .get(format!("{globex}/store/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

async fn dave_token(h: &Hosts) -> String {
    let (st, t) = h
        .token(
            &h.s.url,
            &[
                ("grant_type", "password"),
                ("client_id", GLOBEX_ID),
                ("client_secret", GLOBEX_SECRET),
                ("username", "dave@globex.test"),
                ("password", "Globex2026!"),
            ],
        )
        .await;
    assert_eq!(st, 200, "{t}");
    t["access_token"].as_str().unwrap().to_owned()
}

async fn single_access(h: &Hosts, base: &str, token: &str, redirect: &str) -> String {
    let r = h
        .http
        .post(format!("{base}/services/oauth2/singleaccess"))
        .bearer_auth(token)
        .form(&[("redirect_uri", redirect)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{base}");
    r.json::<Value>().await.unwrap()["frontdoor_uri"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_one_time_url_opens_a_session_only_where_it_was_issued_and_is_no_authorization_code() {
    let h = Hosts::start().await;
    let web = alice_token(&h, INTEGRATION_ID, INTEGRATION_SECRET).await;
    let url = single_access(&h, &h.my_domain, &web, "/lightning/page/home").await;
    let otp = url.split("otp=").nth(1).unwrap().split('&').next().unwrap();
    let otp: String = form_urlencoded::parse(format!("o={otp}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    // Presented as an authorization code (as it is, or with any prefix a client could add):
    // no such code.
    for code in [otp.clone(), format!("frontdoor-otp:{otp}")] {
        for redirect_uri in [
            "/lightning/page/home",
            "https://login.salesforce.com/oauth2/callback",
        ] {
            let (st, e) = h
                .token(
                    &h.my_domain,
                    &[
                        ("grant_type", "authorization_code"),
                        ("code", &code),
                        ("client_id", INTEGRATION_ID),
                        ("client_secret", INTEGRATION_SECRET),
                        ("redirect_uri", redirect_uri),
                    ],
                )
                .await;
            assert_error(st, &e, 400, "invalid_grant", "invalid authorization code");
        }
    }
    // On another host than its own: refused, and not spent there.
    let elsewhere = url.replace(&h.my_domain, &h.s.url);
    let mut b = h.browser(&h.s.url);
    let page = b.get(&elsewhere).await;
    assert_eq!(page.location.as_deref(), Some("/"));
    assert!(!b.cookies.contains_key("idforce_sid"));
    // The control: where it was issued, it still opens the session.
    let mut b = h.browser(&h.my_domain);
    let page = b.get(&url).await;
    assert_eq!(page.location.as_deref(), Some("/lightning/page/home"));
    assert!(b.cookies.contains_key("idforce_sid"));

    // Through a site: the URL is the site's, and lands there.
    let site = format!("{}/partners", h.my_domain);
    let url = single_access(&h, &site, &web, "/partners/").await;
    assert!(
        url.starts_with(&format!("{site}/secur/frontdoor.jsp?otp=")),
        "{url}"
    );
    let mut b = h.browser(&h.my_domain);
    let page = b.get(&url).await;
    assert_eq!(page.location.as_deref(), Some("/partners/"));
    assert!(b.cookies.contains_key("idforce_sid"));

    // Dave's token asks for one on Acme's My Domain: refused; on the login host it works.
    let dave = dave_token(&h).await;
    let r = h
        .http
        .post(format!("{}/services/oauth2/singleaccess", h.my_domain))
        .bearer_auth(&dave)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "Bad_OAuth_Token");
    single_access(&h, &h.s.url, &dave, "/").await;
}

#[tokio::test]
async fn another_orgs_token_is_refused_on_a_my_domain_and_client_credentials_on_a_login_host_site()
{
    let h = Hosts::start().await;
    let dave = dave_token(&h).await;
    for (url, status) in [
        (format!("{}/services/oauth2/userinfo", h.my_domain), 403),
        (format!("{}/services/data/v62.0/", h.my_domain), 401),
    ] {
        let r = h.http.get(&url).bearer_auth(&dave).send().await.unwrap();
        assert_eq!(r.status(), status, "{url}");
        // The control: the same token on the login host.
        let there = url.replace(&h.my_domain, &h.s.url);
        let r = h.http.get(&there).bearer_auth(&dave).send().await.unwrap();
        assert_eq!(r.status(), 200, "{there}");
    }

    // Client credentials of Acme (which has a My Domain) through Acme's site on the login
    // host: refused as on the login host; through the site on the My Domain: served.
    let (st, e) = h
        .token(&format!("{}/partners", h.s.url), &CLIENT_CREDENTIALS)
        .await;
    assert_error(
        st,
        &e,
        400,
        "invalid_grant",
        "request not supported on this domain",
    );
    let (st, t) = h
        .token(&format!("{}/partners", h.my_domain), &CLIENT_CREDENTIALS)
        .await;
    assert_eq!(st, 200, "{t}");
}

#[tokio::test]
async fn logout_ignores_a_forged_hint_and_sites_keep_their_pages() {
    let h = Hosts::start().await;
    // A hint whose signature is not idforce's: the org's Logout URL, not the client's page.
    let forged = sign_jwt(&serde_json::json!({
        "iss": h.my_domain, "aud": SELF_SERVICE_ID, "sub": "x", "exp": now_secs() + 60,
    }));
    let q = form_urlencoded::Serializer::new(String::new())
        .append_pair("id_token_hint", &forged)
        .append_pair("post_logout_redirect_uri", "https://app.example/logged-out")
        .finish();
    let mut b = h.browser(&h.my_domain);
    let page = b.get(&format!("/services/auth/idp/oidc/logout?{q}")).await;
    assert_eq!(page.location.as_deref(), Some("https://acme.test/bye"));

    // A site's login page asked to resume Setup resumes the site's root instead (Setup is
    // not a site's); the control: the login host resumes Setup.
    for (base, start, lands) in [
        (
            format!("{}/partners", h.s.url),
            "/lightning/setup/SetupOneHome/home",
            "/partners/",
        ),
        (
            h.s.url.clone(),
            "/lightning/setup/SetupOneHome/home",
            "/lightning/setup/SetupOneHome/home",
        ),
    ] {
        let mut b = h.browser(&h.s.url);
        let page = b
            .get(&format!(
                "{base}/?startURL={}",
                form_urlencoded::byte_serialize(start.as_bytes()).collect::<String>()
            ))
            .await;
        let after = b.log_in(&page, ALICE, ALICE_PASSWORD).await;
        assert_eq!(after.location.as_deref(), Some(lands), "{base}");
    }

    // The device flow's verification page on a site keeps its forms on the site.
    let (st, d) = h
        .token(
            &format!("{}/partners", h.s.url),
            &[
                ("response_type", "device_code"),
                ("client_id", SELF_SERVICE_ID),
            ],
        )
        .await;
    assert_eq!(st, 200, "{d}");
    assert_eq!(
        d["verification_uri"],
        format!("{}/partners/setup/connect", h.s.url)
    );
}

#[tokio::test]
async fn a_renamed_site_keeps_its_path_and_a_my_domain_cannot_be_the_public_host() {
    let config = hosts_config();
    let s = TestServer::start_with(&config, |_| {}).await;
    let dir = s.stop().await;
    let renamed = config.replace("name = \"Partners\"", "name = \"Partner Portal\"");
    assert_ne!(renamed, config);
    std::fs::write(dir.path().join("idforce.toml"), &renamed).unwrap();
    let s = TestServer::start_in(dir, Some(&renamed), |_| {}).await;
    let org = admin(&database_url(s.dir.path()), &["org", "show", "Acme"]);
    assert_eq!(org["sites"].as_array().unwrap().len(), 1, "{org}");
    assert_eq!(org["sites"][0]["name"], "Partner Portal");
    assert_eq!(org["sites"][0]["path"], "partners");

    let why = match TestServer::try_start_with(&config, |o| {
        o.public_url = Some("http://acme.my.localhost:9".into());
    })
    .await
    {
        Err(e) => e.to_string(),
        Ok(_) => panic!("started with a My Domain that is the public host"),
    };
    assert!(why.contains("public host"), "{why}");
}
