//! The limits and policies that make Salesforce logins fail (issue: registration, policies):
//! flows an org switches off. Each refusal with Salesforce's answer, its Login History status,
//! and its control.

use crate::browser::{Browser, authorize_url};
use crate::helpers::*;

fn org_settings(settings: &str) -> String {
    let config = CONFIG.replacen(
        "id = \"00D000000000001\"\n",
        &format!("id = \"00D000000000001\"\n{settings}\n"),
        1,
    );
    assert_ne!(config, CONFIG);
    config
}

#[tokio::test]
async fn a_switched_off_username_password_flow_answers_as_a_wrong_password() {
    let s = TestServer::start_with(
        &org_settings("allow_username_password_flow = false"),
        |_| {},
    )
    .await;
    let db = database_url(s.dir.path());
    let (st, e) = s.token(&password_form(ALICE, ALICE_PASSWORD)).await;
    assert_error(st, &e, 400, "invalid_grant", "authentication failure");
    let rows = admin(&db, &["login-history", "--user", ALICE]);
    assert_eq!(
        rows[0]["status"], "Username-Password Flow Disabled",
        "{rows}"
    );
    // Other flows of the org are not the username-password flow: JWT bearer and SOAP login.
    let assertion = sign_jwt(&serde_json::json!({
        "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": now_secs() + 180,
    }));
    let (st, t) = s.jwt_login(&assertion).await;
    assert_eq!(st, 200, "{t}");

    // Switched on again by the CLI: the same request works on the running server.
    let view = admin_seen(
        &db,
        &[
            "org",
            "update",
            "Acme",
            "--allow-username-password-flow",
            "true",
        ],
    );
    assert_eq!(view["allow_username_password_flow"], true);
    let (st, t) = s.token(&password_form(ALICE, ALICE_PASSWORD)).await;
    assert_eq!(st, 200, "{t}");
}

#[tokio::test]
async fn a_switched_off_user_agent_flow_and_pkce_for_every_app() {
    let s = TestServer::start_with(
        &org_settings("allow_user_agent_flow = false\nrequire_pkce_for_all_apps = true"),
        |_| {},
    )
    .await;
    let redirected = |url: String| {
        let s = &s;
        async move {
            let mut b = Browser::new(s);
            let page = b.get(&url).await;
            assert_eq!(page.status, 302, "{}", page.body);
            page.location.unwrap()
        }
    };
    // The user-agent flow: its error in the fragment, before any login.
    let at = redirected(authorize_url(
        SELF_SERVICE_ID,
        SELF_SERVICE_CALLBACK,
        &[("response_type", "token"), ("state", "s")],
    ))
    .await;
    assert!(
        at.starts_with(&format!(
            "{SELF_SERVICE_CALLBACK}#error=unsupported_response_type&error_description=response+type+not+supported"
        )),
        "{at}"
    );
    // The web server flow without a challenge, for an app that does not itself require PKCE.
    let at = redirected(authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[])).await;
    assert!(
        at.starts_with(&format!(
            "{SELF_SERVICE_CALLBACK}?error=invalid_request&error_description=missing+required+code+challenge"
        )),
        "{at}"
    );
    // The control: with a challenge, the login page.
    let mut b = Browser::new(&s);
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[
                (
                    "code_challenge",
                    "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                ),
                ("code_challenge_method", "S256"),
            ],
        ))
        .await;
    assert!(page.is_login(), "{}", page.body);
}

/// `logout` of the partner API, as RForcecom and the Partner WSDL send it.
fn soap_logout(session_id: Option<&str>) -> String {
    let header = session_id.map_or(String::new(), |sid| {
        format!(
            "<env:Header><SessionHeader xmlns=\"urn:partner.soap.sforce.com\">\
             <sessionId>{sid}</sessionId></SessionHeader></env:Header>"
        )
    });
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\
         <env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\">{header}\
         <env:Body><n1:logout xmlns:n1=\"urn:partner.soap.sforce.com\"></n1:logout></env:Body>\
         </env:Envelope>"
    )
}

async fn soap(s: &TestServer, action: &str, body: String) -> (u16, String) {
    let r = s
        .http
        .post(s.at("/services/Soap/u/62.0"))
        .header("Content-Type", "text/xml")
        .header("SOAPAction", action)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn soap_logout_ends_the_session_it_names() {
    let s = TestServer::start().await;
    let login = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\
         <env:Envelope xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\"><env:Body>\
         <n1:login xmlns:n1=\"urn:partner.soap.sforce.com\"><n1:username>{BOB}</n1:username>\
         <n1:password>{BOB_PASSWORD}{BOB_TOKEN}</n1:password></n1:login></env:Body></env:Envelope>"
    );
    let (st, body) = soap(&s, "login", login).await;
    assert_eq!(st, 200, "{body}");
    let sid = element(&body, "sessionId").unwrap();
    let userinfo = |token: String| {
        let s = &s;
        async move {
            s.http
                .get(s.at("/services/oauth2/userinfo"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(userinfo(sid.clone()).await, 200);

    let (st, body) = soap(&s, "logout", soap_logout(Some(&sid))).await;
    assert_eq!(st, 200, "{body}");
    assert!(body.contains("<logoutResponse/>"), "{body}");
    assert_eq!(userinfo(sid.clone()).await, 403, "the session ended");

    // Again, or without a SessionHeader: Salesforce's INVALID_SESSION_ID fault.
    for envelope in [soap_logout(Some(&sid)), soap_logout(None)] {
        let (st, body) = soap(&s, "logout", envelope).await;
        assert_eq!(st, 500, "{body}");
        assert_eq!(
            element(&body, "faultcode").as_deref(),
            Some("sf:INVALID_SESSION_ID")
        );
        assert_eq!(
            element(&body, "faultstring").as_deref(),
            Some("INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: Illegal Session")
        );
        assert_eq!(
            element(&body, "sf:exceptionCode").as_deref(),
            Some("INVALID_SESSION_ID")
        );
    }
}

#[tokio::test]
async fn profile_photos_are_images_and_the_metadata_lists_every_grant() {
    let s = TestServer::start().await;
    let token = s.alice_token().await;
    let info: serde_json::Value = s
        .http
        .get(s.at("/services/oauth2/userinfo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for url in [
        info["picture"].as_str().unwrap(),
        info["photos"]["picture"].as_str().unwrap(),
        info["photos"]["thumbnail"].as_str().unwrap(),
    ] {
        let r = s.http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        assert_eq!(r.headers()["content-type"], "image/png");
        let bytes = r.bytes().await.unwrap();
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{url}");
    }
    let m: serde_json::Value = s
        .http
        .get(s.at("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let grants = m["grant_types_supported"].as_array().unwrap();
    for g in [
        "authorization_code",
        "refresh_token",
        "password",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    ] {
        assert!(grants.iter().any(|v| v == g), "{g} missing: {m}");
    }
    // Salesforce's OpenID document keeps its own shape, without the list.
    let d: serde_json::Value = s
        .http
        .get(s.at("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(d.get("grant_types_supported").is_none(), "{d}");
}

#[tokio::test]
async fn an_approval_beyond_the_apps_limit_revokes_the_oldest() {
    let config = CONFIG.replacen(
        "name = \"Self Service\"\n",
        "name = \"Self Service\"\nmax_approvals_per_user = 2\n",
        1,
    );
    assert_ne!(config, CONFIG);
    let s = TestServer::start_with(&config, |_| {}).await;
    let mut b = Browser::new(&s);
    let mut refresh = Vec::new();
    for _ in 0..3 {
        let url = authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[("scope", "api refresh_token")],
        );
        let code = b.approved_code(&url, ALICE, ALICE_PASSWORD).await;
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
        refresh.push(t["refresh_token"].as_str().unwrap().to_owned());
    }
    let use_it = |token: String| {
        let s = &s;
        async move {
            s.token(&[
                ("grant_type", "refresh_token"),
                ("client_id", SELF_SERVICE_ID),
                ("client_secret", SELF_SERVICE_SECRET),
                ("refresh_token", &token),
            ])
            .await
        }
    };
    // The third approval revoked the first; the other two work (the control).
    let (st, e) = use_it(refresh[0].clone()).await;
    assert_error(st, &e, 400, "invalid_grant", "expired access/refresh token");
    for r in &refresh[1..] {
        let (st, t) = use_it(r.clone()).await;
        assert_eq!(st, 200, "{t}");
    }
}

fn rate_limited(limit: &str) -> String {
    let config = CONFIG.replacen(
        "[server]\n",
        &format!("[server]\nlogin_rate_limit = \"{limit}\"\n"),
        1,
    );
    assert_ne!(config, CONFIG);
    config
}

/// `[server] login_rate_limit`: every way of logging in counts toward one limit per user; the
/// login beyond it is refused with Salesforce's answer on each (and Login History's status),
/// while another user logs in as usual.
#[tokio::test]
async fn the_login_rate_limit_counts_every_entry_point() {
    use crate::soap_login::{postman_envelope, soap};
    let s = TestServer::start_with(&rate_limited("4/h"), |_| {}).await;
    let db = database_url(s.dir.path());
    // Four logins of Alice, each a different way: password grant, SOAP, JWT bearer, login page.
    let (st, t) = s.token(&password_form(ALICE, ALICE_PASSWORD)).await;
    assert_eq!(st, 200, "{t}");
    let (st, body) = soap(
        &s,
        "/services/Soap/u/60.0",
        postman_envelope(ALICE, ALICE_PASSWORD),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let jwt = |jti: &str| {
        sign_jwt(&serde_json::json!({
            "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": now_secs() + 180, "jti": jti,
        }))
    };
    let (st, t) = s.jwt_login(&jwt("1")).await;
    assert_eq!(st, 200, "{t}");
    let mut b = Browser::new(&s);
    let page = b
        .authorize(
            &authorize_url(
                SELF_SERVICE_ID,
                SELF_SERVICE_CALLBACK,
                &[("response_type", "code")],
            ),
            ALICE,
            ALICE_PASSWORD,
        )
        .await;
    assert!(
        !page.is_login(),
        "the fourth login, on the page: {}",
        page.body
    );

    // The fifth, whichever way: refused.
    let (st, e) = s.token(&password_form(ALICE, ALICE_PASSWORD)).await;
    assert_error(st, &e, 400, "invalid_grant", "login rate exceeded");
    let (st, e) = s.jwt_login(&jwt("2")).await;
    assert_error(st, &e, 400, "invalid_grant", "login rate exceeded");
    let (st, body) = soap(
        &s,
        "/services/Soap/u/60.0",
        postman_envelope(ALICE, ALICE_PASSWORD),
    )
    .await;
    assert_eq!(st, 500, "{body}");
    assert_eq!(
        element(&body, "faultcode").as_deref(),
        Some("sf:LOGIN_RATE_EXCEEDED")
    );
    assert_eq!(
        element(&body, "sf:exceptionCode").as_deref(),
        Some("LOGIN_RATE_EXCEEDED")
    );
    let mut b = Browser::new(&s);
    let login = b
        .get(&authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[]))
        .await;
    let after = b.log_in(&login, ALICE, ALICE_PASSWORD).await;
    assert_eq!(after.status, 200, "refused on the page too");
    assert!(
        after.is_login()
            && after
                .body
                .contains("Please check your username and password")
    );
    let rows = admin(&db, &["login-history", "--user", ALICE, "--limit", "4"]);
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "Login rate exceeded"),
        "{rows}"
    );
    // A wrong password is still a wrong password (it is checked first).
    let (st, e) = s.token(&password_form(ALICE, "wrong")).await;
    assert_error(st, &e, 400, "invalid_grant", "authentication failure");

    // Control: another user, and the client credentials' run-as user, are counted apart.
    let (st, t) = s
        .token(&password_form("integration@acme.test", "Integration2026!"))
        .await;
    assert_eq!(st, 200, "{t}");
    for _ in 0..3 {
        let (st, t) = s
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
            ])
            .await;
        assert_eq!(st, 200, "{t}");
    }
    let (st, e) = s
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
        ])
        .await;
    assert_error(st, &e, 400, "invalid_grant", "login rate exceeded");
}

#[test]
fn a_login_rate_limit_that_is_not_one_is_refused_when_the_config_is_read() {
    let load = |config: &str| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("idforce.toml");
        std::fs::write(&path, config).unwrap();
        idforce_server::config::ConfigFile::load(&path).map(drop)
    };
    let e = load(&rate_limited("lots")).unwrap_err().to_string();
    assert!(
        e.contains("[server] login_rate_limit = \"lots\": expected logins per window"),
        "{e}"
    );
    // Control: Salesforce's own.
    load(&rate_limited("3600/h")).expect("loads");
}

/// Logins from behind this test's trusted proxy: `X-Forwarded-For` names the client.
async fn token_from(
    s: &TestServer,
    client_ip: &str,
    form: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let r = s
        .http
        .post(s.at("/services/oauth2/token"))
        .header("x-forwarded-for", client_ip)
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `[[org.profile]] login_ip_ranges` and `[[org.app]] ip_relaxation` over HTTP: a login from
/// outside the ranges answers `ip restricted` (SOAP: LOGIN_DURING_RESTRICTED_DOMAIN), Login
/// History says "Restricted IP"; an app that relaxes them lets the password flow through but
/// never JWT bearer. Login hours set by the CLI on the running server refuse a login outside
/// them, and all-day hours let it in.
#[tokio::test]
async fn login_ip_ranges_ip_relaxation_and_login_hours() {
    use crate::soap_login::{postman_envelope, soap};
    let config = CONFIG
        .replacen("[server]\n", "[server]\ntrusted_proxies = [\"127.0.0.1\", \"::1\"]\n", 1)
        .replacen(
            "[[org.user]]\nusername = \"alice@acme.test\"",
            "[[org.profile]]\nname = \"System Administrator\"\nlogin_ip_ranges = [\"10.0.0.0-10.0.0.255\", \"2001:db8::-2001:db8::ffff\"]\n\n[[org.user]]\nusername = \"alice@acme.test\"",
            1,
        )
        .replacen(
            "client_secret = \"SELFSERVICESECRET0001\"\n",
            "client_secret = \"SELFSERVICESECRET0001\"\nip_relaxation = \"bypass\"\n",
            1,
        );
    assert_eq!(config.matches("login_ip_ranges").count(), 1);
    assert_eq!(config.matches("ip_relaxation").count(), 1);
    let s = TestServer::start_with(&config, |_| {}).await;
    let db = database_url(s.dir.path());
    let outside = "192.0.2.10";
    for inside in ["10.0.0.7", "2001:db8::1"] {
        let (st, t) = token_from(&s, inside, &password_form(ALICE, ALICE_PASSWORD)).await;
        assert_eq!(st, 200, "from {inside}: {t}");
    }
    let (st, e) = token_from(&s, outside, &password_form(ALICE, ALICE_PASSWORD)).await;
    assert_error(st, &e, 400, "invalid_grant", "ip restricted");
    let rows = admin(&db, &["login-history", "--user", ALICE, "--limit", "1"]);
    assert_eq!(rows[0]["status"], "Restricted IP", "{rows}");
    assert_eq!(rows[0]["source_ip"], outside, "{rows}");
    // SOAP login from outside (this test's own address is not in the ranges).
    let (st, body) = soap(
        &s,
        "/services/Soap/u/60.0",
        postman_envelope(ALICE, ALICE_PASSWORD),
    )
    .await;
    assert_eq!(st, 500, "{body}");
    assert_eq!(
        element(&body, "sf:exceptionCode").as_deref(),
        Some("LOGIN_DURING_RESTRICTED_DOMAIN")
    );
    // Self Service relaxes IP restrictions: its password flow passes from outside.
    let relaxed = [
        ("grant_type", "password"),
        ("client_id", SELF_SERVICE_ID),
        ("client_secret", SELF_SERVICE_SECRET),
        ("username", ALICE),
        ("password", ALICE_PASSWORD),
    ];
    let (st, t) = token_from(&s, outside, &relaxed).await;
    assert_eq!(st, 200, "{t}");
    // JWT bearer is held to the ranges whatever the app says.
    admin_seen(
        &db,
        &["app", "update", "Integration", "--ip-relaxation", "bypass"],
    );
    let (st, t) = token_from(&s, outside, &password_form(ALICE, ALICE_PASSWORD)).await;
    assert_eq!(st, 200, "relaxed by the CLI: {t}");
    let assertion = sign_jwt(&serde_json::json!({
        "iss": INTEGRATION_ID, "sub": ALICE, "aud": s.url, "exp": now_secs() + 180,
    }));
    let jwt_form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("assertion", assertion.as_str()),
    ];
    let (st, e) = token_from(&s, outside, &jwt_form).await;
    assert_error(st, &e, 400, "invalid_grant", "ip restricted");
    let (st, t) = token_from(&s, "10.0.0.8", &jwt_form).await;
    assert_eq!(st, 200, "the same assertion from inside: {t}");
    // A token of the relaxed app does not open a browser session from outside through
    // frontdoor (the login page's rules hold there); from inside it does.
    let (st, t) = token_from(&s, outside, &password_form(ALICE, ALICE_PASSWORD)).await;
    assert_eq!(st, 200, "{t}");
    let sid = t["access_token"].as_str().unwrap().to_owned();
    let frontdoor = |from: &'static str| {
        let (s, sid) = (&s, sid.clone());
        async move {
            let r = s
                .http
                .get(s.at("/secur/frontdoor.jsp"))
                .query(&[
                    ("sid", sid.as_str()),
                    ("retURL", "/lightning/setup/SetupOneHome/home"),
                ])
                .header("x-forwarded-for", from)
                .send()
                .await
                .unwrap();
            let location = r.headers()["location"].to_str().unwrap().to_owned();
            (location, r.headers().contains_key("set-cookie"))
        }
    };
    assert_eq!(frontdoor(outside).await, ("/".to_owned(), false));
    assert_eq!(
        frontdoor("10.0.0.9").await,
        ("/lightning/setup/SetupOneHome/home".to_owned(), true)
    );

    // Login hours, every day, an hour from now (UTC, the org's default): refused; then all day.
    let minute = (now_secs() / 60 % 1440) as u32;
    let start = (minute + 60) % 1380;
    let window = format!(
        "{:02}:{:02}-{:02}:{:02}",
        start / 60,
        start % 60,
        (start + 30) / 60,
        (start + 30) % 60
    );
    let mut args = vec![
        "profile".to_owned(),
        "update".into(),
        "--org".into(),
        "Acme".into(),
        "--name".into(),
        "System Administrator".into(),
    ];
    for day in [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ] {
        args.push("--login-hours".into());
        args.push(format!("{day}={window}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let view = admin_seen(&db, &args);
    assert!(
        view["login_hours"].as_str().unwrap().contains(&window),
        "{view}"
    );
    let (st, e) = token_from(&s, "10.0.0.7", &password_form(ALICE, ALICE_PASSWORD)).await;
    assert_error(st, &e, 400, "invalid_grant", "invalid login hours");
    let rows = admin(&db, &["login-history", "--user", ALICE, "--limit", "1"]);
    assert_eq!(rows[0]["status"], "Restricted time", "{rows}");
    let mut all_day: Vec<&str> = args[..6].to_vec();
    let days: Vec<String> = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
    .iter()
    .map(|d| format!("{d}=00:00-24:00"))
    .collect();
    for d in &days {
        all_day.push("--login-hours");
        all_day.push(d);
    }
    admin_seen(&db, &all_day);
    let (st, t) = token_from(&s, "10.0.0.7", &password_form(ALICE, ALICE_PASSWORD)).await;
    assert_eq!(st, 200, "all day: {t}");
}
