//! Browser flows over HTTP (issue: browser flows): authorize, login, approval, codes, the
//! user-agent flow, and their errors (spec §3.1–3.3, §6.2).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::browser::{Browser, authorize_url, unescape};
use crate::helpers::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn redeem(
    s: &TestServer,
    client_id: &str,
    secret: Option<&str>,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(sec) = secret {
        form.push(("client_secret", sec));
    }
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    s.token(&form).await
}

/// Logs Alice in to Self Service and approves it; returns the code.
async fn alice_code(s: &TestServer, b: &mut Browser, extra: &[(&str, &str)]) -> String {
    let mut params = vec![("state", "st8")];
    params.extend_from_slice(extra);
    let page = b
        .authorize(
            &authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &params),
            ALICE,
            ALICE_PASSWORD,
        )
        .await;
    let page = if page.is_consent() {
        b.decide(&page, true).await
    } else {
        page
    };
    assert_eq!(page.status, 302, "{}", page.body);
    let loc = page.location.clone().unwrap();
    assert!(
        loc.starts_with(&format!("{SELF_SERVICE_CALLBACK}?code=aPrx")),
        "{loc}"
    );
    assert!(
        loc.contains("%3D%3D&state=st8"),
        "the code is URL-encoded: {loc}"
    );
    let _ = s;
    page.redirect_params()["code"].clone()
}

#[tokio::test]
async fn web_server_flow_login_approve_redeem_refresh() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    let code = alice_code(&s, &mut b, &[]).await;
    assert_eq!(code.len(), 76);
    let (st, tokens) = redeem(
        &s,
        SELF_SERVICE_ID,
        Some(SELF_SERVICE_SECRET),
        &code,
        SELF_SERVICE_CALLBACK,
        None,
    )
    .await;
    assert_eq!(st, 200, "{tokens}");
    let keys: Vec<&str> = tokens
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "refresh_token",
            "signature",
            "scope",
            "instance_url",
            "id",
            "token_type",
            "issued_at"
        ]
    );
    assert_eq!(tokens["scope"], "api refresh_token");
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert!(rt.starts_with("5Aep861") && rt.len() == 87);

    // Seed 001: refresh with id and secret in the body.
    let (st, refreshed) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("refresh_token", rt),
        ])
        .await;
    assert_eq!(st, 200, "{refreshed}");
    let keys: Vec<&str> = refreshed
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "signature",
            "scope",
            "instance_url",
            "id",
            "token_type",
            "issued_at"
        ]
    );
    assert_eq!(refreshed["scope"], "api refresh_token");
    assert_eq!(refreshed["id"], tokens["id"]);

    // The approval is remembered: the next authorize goes straight back with a code.
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[("state", "again")],
        ))
        .await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(page.redirect_params().contains_key("code"));

    // And that approval is what lets Alice use the JWT bearer flow with this all-users app
    // (seed 002's pre-approval step).
    let assertion = sign_jwt(
        &json!({ "iss": SELF_SERVICE_ID, "sub": ALICE, "aud": s.url, "exp": now_secs() + 60 }),
    );
    let (st, body) = s.jwt_login(&assertion).await;
    assert_eq!(st, 200, "{body}");
}

#[tokio::test]
async fn deny_wrong_password_prompt_and_immediate() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    // Deny.
    let page = b
        .authorize(
            &authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[("state", "s1")]),
            ALICE,
            ALICE_PASSWORD,
        )
        .await;
    let denied = b.decide(&page, false).await;
    let p = denied.redirect_params();
    assert_eq!(
        (
            p["error"].as_str(),
            p["error_description"].as_str(),
            p["state"].as_str()
        ),
        ("access_denied", "end-user denied authorization", "s1")
    );
    assert!(
        denied
            .location
            .unwrap()
            .contains("error_description=end-user+denied+authorization")
    );

    // Wrong password: the login page again, with an error, and the failure counts.
    let mut other = Browser::new(&s);
    let login = other
        .get(&authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[]))
        .await;
    let failed = other.log_in(&login, BOB, "wrong").await;
    assert_eq!(failed.status, 200);
    assert!(failed.is_login() && failed.body.contains("role=\"alert\""));
    let second = other.log_in(&failed, BOB, "wrong").await;
    let third = other.log_in(&second, BOB, "wrong").await;
    assert!(third.is_login());
    // Bob is now locked out of the password grant too (lockout_attempts = 3).
    let (st, b2) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("username", BOB),
            ("password", &format!("{BOB_PASSWORD}{BOB_TOKEN}")),
        ])
        .await;
    assert_error(st, &b2, 400, "invalid_grant", "authentication failure");

    // prompt=login asks for the password although Alice has a session.
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[("prompt", "login")],
        ))
        .await;
    assert!(page.is_login());
    assert!(
        !page
            .hidden()
            .iter()
            .any(|(k, v)| k == "startURL" && v.contains("prompt=login"))
    );
    // prompt=consent asks again although she approved... nothing yet: deny above stored nothing.
    let page = b
        .authorize(
            &authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[]),
            ALICE,
            ALICE_PASSWORD,
        )
        .await;
    let page = b.decide(&page, true).await;
    assert!(page.redirect_params().contains_key("code"));
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[("prompt", "consent")],
        ))
        .await;
    assert!(page.is_consent());

    // immediate=true: no session → immediate_unsuccessful; with session and approval → code.
    let mut fresh = Browser::new(&s);
    let page = fresh
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[("immediate", "true"), ("state", "i")],
        ))
        .await;
    assert_eq!(page.redirect_params()["error"], "immediate_unsuccessful");
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[("immediate", "true")],
        ))
        .await;
    assert!(page.redirect_params().contains_key("code"));
}

#[tokio::test]
async fn admin_approved_apps_skip_consent_and_refuse_outsiders() {
    let s = TestServer::start().await;
    let callback = "https://login.salesforce.com/oauth2/callback";
    let mut alice = Browser::new(&s);
    let page = alice
        .authorize(
            &authorize_url(INTEGRATION_ID, callback, &[]),
            ALICE,
            ALICE_PASSWORD,
        )
        .await;
    assert_eq!(page.status, 302);
    let code = page.redirect_params()["code"].clone();
    // Seed 002: the code, URL-decoded, redeemed with id and secret.
    let (st, body) = redeem(
        &s,
        INTEGRATION_ID,
        Some(INTEGRATION_SECRET),
        &code,
        callback,
        None,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert!(body["refresh_token"].is_string());

    let mut bob = Browser::new(&s);
    let page = bob
        .authorize(
            &authorize_url(INTEGRATION_ID, callback, &[("state", "b")]),
            BOB,
            BOB_PASSWORD,
        )
        .await;
    let p = page.redirect_params();
    assert_eq!(
        (p["error"].as_str(), p["error_description"].as_str()),
        (
            "OAUTH_APP_ACCESS_DENIED",
            "user is not admin approved to access this app"
        )
    );
}

#[tokio::test]
async fn authorize_errors_page_or_redirect() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    let page = b
        .get(&authorize_url("nope", SELF_SERVICE_CALLBACK, &[]))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    assert!(
        unescape(&page.body)
            .contains("error=invalid_client_id&error_description=client%20identifier%20invalid"),
        "{}",
        page.body
    );
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            "https://evil.example/cb",
            &[],
        ))
        .await;
    assert_eq!(page.status, 400);
    assert!(unescape(&page.body).contains(
        "error=redirect_uri_mismatch&error_description=redirect_uri%20must%20match%20configuration"
    ));
    // Near misses of a registered URI are not matches.
    for near in [
        "https://app.example/callback/",
        "https://APP.example/callback",
        "https://app.example/callback?x=1",
    ] {
        assert_eq!(
            b.get(&authorize_url(SELF_SERVICE_ID, near, &[]))
                .await
                .status,
            400,
            "{near}"
        );
    }

    let cases: &[(&[(&str, &str)], &str, &str)] = &[
        (
            &[("response_type", "bogus")],
            "unsupported_response_type",
            "response type not supported",
        ),
        (
            &[("scope", "api chatter_api")],
            "invalid_scope",
            "the requested scope is not allowed: chatter_api",
        ),
        (
            &[("scope", "nonsense")],
            "invalid_scope",
            "the requested scope is not allowed: nonsense",
        ),
        (
            &[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
            "invalid code challenge method",
        ),
    ];
    for (extra, error, description) in cases {
        let mut e = extra.to_vec();
        e.push(("state", "x y"));
        let page = b
            .get(&authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &e))
            .await;
        assert_eq!(page.status, 302, "{extra:?}");
        let p = page.redirect_params();
        assert_eq!(
            (
                p["error"].as_str(),
                p["error_description"].as_str(),
                p["state"].as_str()
            ),
            (*error, *description, "x y")
        );
    }
    // An app that requires PKCE.
    let page = b
        .get(&authorize_url(
            ROTATING_ID,
            "https://rotating.example/cb",
            &[],
        ))
        .await;
    let p = page.redirect_params();
    assert_eq!(
        (p["error"].as_str(), p["error_description"].as_str()),
        ("invalid_request", "missing required code challenge")
    );
    // The token flow gets its errors in the fragment.
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[("response_type", "token"), ("scope", "bogus")],
        ))
        .await;
    assert!(
        page.location
            .as_deref()
            .unwrap()
            .starts_with(&format!("{SELF_SERVICE_CALLBACK}#error=invalid_scope"))
    );
}

#[tokio::test]
async fn code_redemption_errors() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    let code = alice_code(&s, &mut b, &[("code_challenge", CHALLENGE)]).await;
    let cb = SELF_SERVICE_CALLBACK;
    let sec = Some(SELF_SERVICE_SECRET);
    let (st, e) = redeem(
        &s,
        SELF_SERVICE_ID,
        sec,
        &code,
        "https://app.example/other",
        Some(VERIFIER),
    )
    .await;
    assert_error(
        st,
        &e,
        400,
        "redirect_uri_mismatch",
        "redirect_uri must match configuration",
    );
    // The failed attempt spent the code.
    let (st, e) = redeem(&s, SELF_SERVICE_ID, sec, &code, cb, Some(VERIFIER)).await;
    assert_error(st, &e, 400, "invalid_grant", "expired authorization code");

    let code = alice_code(&s, &mut b, &[("code_challenge", CHALLENGE)]).await;
    let (st, e) = redeem(&s, SELF_SERVICE_ID, sec, &code, cb, Some("wrong-verifier")).await;
    assert_error(st, &e, 400, "invalid_grant", "invalid code verifier");
    let code = alice_code(&s, &mut b, &[("code_challenge", CHALLENGE)]).await;
    let (st, e) = redeem(&s, SELF_SERVICE_ID, sec, &code, cb, None).await;
    assert_error(st, &e, 400, "invalid_grant", "invalid code verifier");
    // jsforce/sf: a challenge without a method is S256, and the right verifier works.
    let code = alice_code(&s, &mut b, &[("code_challenge", CHALLENGE)]).await;
    assert_eq!(
        redeem(&s, SELF_SERVICE_ID, sec, &code, cb, Some(VERIFIER))
            .await
            .0,
        200
    );

    let code = alice_code(&s, &mut b, &[]).await;
    let (st, e) = redeem(&s, SELF_SERVICE_ID, Some("wrong"), &code, cb, None).await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    let (st, e) = redeem(&s, SELF_SERVICE_ID, None, &code, cb, None).await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    let (st, e) = redeem(&s, AUDITOR_ID, Some(AUDITOR_SECRET), &code, cb, None).await;
    assert_error(st, &e, 400, "invalid_grant", "invalid authorization code");
    let (st, e) = redeem(&s, SELF_SERVICE_ID, sec, "aPrxnotacode==", cb, None).await;
    assert_error(st, &e, 400, "invalid_grant", "invalid authorization code");

    // Fifteen minutes later a code is expired.
    let code = alice_code(&s, &mut b, &[]).await;
    s.clock.advance_secs(15 * 60 + 1);
    let (st, e) = redeem(&s, SELF_SERVICE_ID, sec, &code, cb, None).await;
    assert_error(st, &e, 400, "invalid_grant", "expired authorization code");
}

#[tokio::test]
async fn a_reused_code_revokes_what_it_issued() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    let code = alice_code(&s, &mut b, &[]).await;
    let (_, first) = redeem(
        &s,
        SELF_SERVICE_ID,
        Some(SELF_SERVICE_SECRET),
        &code,
        SELF_SERVICE_CALLBACK,
        None,
    )
    .await;
    let (st, e) = redeem(
        &s,
        SELF_SERVICE_ID,
        Some(SELF_SERVICE_SECRET),
        &code,
        SELF_SERVICE_CALLBACK,
        None,
    )
    .await;
    assert_error(st, &e, 400, "invalid_grant", "expired authorization code");
    let r = s
        .http
        .get(first["id"].as_str().unwrap())
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "the first redemption's access token is revoked"
    );
    let (st, e) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_error(st, &e, 400, "invalid_grant", "expired access/refresh token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_redemptions_one_winner() {
    let s = Arc::new(TestServer::start().await);
    let mut b = Browser::new(&s);
    let code = alice_code(&s, &mut b, &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (s, code) = (s.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            redeem(
                &s,
                SELF_SERVICE_ID,
                Some(SELF_SERVICE_SECRET),
                &code,
                SELF_SERVICE_CALLBACK,
                None,
            )
            .await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (st, body) = t.await.unwrap();
        if st == 200 {
            winners.push(body);
        } else {
            assert_error(
                st,
                &body,
                400,
                "invalid_grant",
                "expired authorization code",
            );
        }
    }
    assert_eq!(winners.len(), 1);
}

#[tokio::test]
async fn user_agent_flow_puts_tokens_in_the_fragment() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    let url = authorize_url(
        SELF_SERVICE_ID,
        SELF_SERVICE_CALLBACK,
        &[("response_type", "token"), ("state", "ua")],
    );
    let page = b.authorize(&url, ALICE, ALICE_PASSWORD).await;
    let page = b.decide(&page, true).await;
    let loc = page.location.clone().unwrap();
    // Salesforce's session ids continue `!AQ` or `!AR` after the org id (spec §5).
    let token_start = format!("{SELF_SERVICE_CALLBACK}#access_token=00D000000000001%21A");
    assert!(
        loc.starts_with(&token_start)
            && matches!(loc.as_bytes().get(token_start.len()), Some(b'Q' | b'R')),
        "{loc}"
    );
    let p = page.redirect_params();
    assert_eq!(p["token_type"], "Bearer");
    assert_eq!(p["state"], "ua");
    assert_eq!(p["scope"], "api");
    assert!(
        p["issued_at"].parse::<i64>().is_ok()
            && p["id"].starts_with(&s.url)
            && p["instance_url"] == s.url
    );
    assert!(
        !p.contains_key("refresh_token"),
        "no refresh token through an https callback"
    );
    // Signed with the app's secret, as Salesforce signs the fragment, though no secret was sent.
    let fragment = serde_json::json!({ "id": p["id"], "issued_at": p["issued_at"] });
    assert_eq!(
        p["signature"],
        signature_for(SELF_SERVICE_SECRET, &fragment)
    );
    assert!(
        loc.contains("&issued_at=") && loc.find("&signature=") > loc.find("&issued_at="),
        "in Salesforce's order: {loc}"
    );
    let r = s
        .http
        .get(&p["id"])
        .bearer_auth(&p["access_token"])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The built-in success page and custom schemes may receive a refresh token.
    for redirect in [
        format!("{}/services/oauth2/success", s.url),
        "myapp://callback".to_owned(),
    ] {
        let page = b
            .get(&authorize_url(
                SELF_SERVICE_ID,
                &redirect,
                &[("response_type", "token")],
            ))
            .await;
        let p = page.redirect_params();
        assert!(
            p["refresh_token"].starts_with("5Aep861"),
            "{redirect}: {p:?}"
        );
        assert_eq!(p["scope"], "api refresh_token");
    }
    let success = b.get("/services/oauth2/success").await;
    assert_eq!(success.status, 200);
}

#[tokio::test]
async fn pages_are_protected() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    let page = b
        .get(&authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[]))
        .await;
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["cache-control"], "no-store");
    let cookie = page.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    // A login without the CSRF token (another site posting the form) is refused.
    let mut form = page.hidden();
    form.retain(|(k, _)| k != "csrf");
    form.push(("username".into(), ALICE.into()));
    form.push(("pw".into(), ALICE_PASSWORD.into()));
    let refused = b.post("/", &form).await;
    assert_eq!(refused.status, 403);
    assert!(!b.cookies.contains_key("idforce_sid"));

    // Log in properly; then an approval without the session-bound token is refused.
    let consent = b.log_in(&refused, ALICE, ALICE_PASSWORD).await;
    let sid = b.cookies["idforce_sid"].clone();
    let consent = b.get(consent.location.as_deref().unwrap()).await;
    assert!(consent.is_consent());
    let mut form = consent.hidden();
    for (k, v) in form.iter_mut() {
        if k == "csrf" {
            *v = "forged".into();
        }
    }
    form.push(("decision".into(), "allow".into()));
    assert_eq!(
        b.post("/setup/secur/RemoteAccessAuthorizationPage.apexp", &form)
            .await
            .status,
        403
    );

    // Logout ends the browser session.
    b.get("/secur/logout.jsp").await;
    assert!(!b.cookies.contains_key("idforce_sid"));
    b.cookies.insert("idforce_sid".into(), sid);
    let page = b
        .get(&authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[]))
        .await;
    assert!(page.is_login(), "the old session cookie no longer works");
    // Escaping: a state full of markup comes back escaped in the page.
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[("state", "\"><script>alert(1)</script>")],
        ))
        .await;
    assert!(!page.body.contains("<script>"));
}

#[tokio::test]
async fn login_hint_fills_in_the_username() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    let page = b
        .get(&authorize_url(
            SELF_SERVICE_ID,
            SELF_SERVICE_CALLBACK,
            &[("login_hint", ALICE), ("display", "touch")],
        ))
        .await;
    assert!(page.is_login());
    assert!(
        page.body.contains(&format!("value=\"{ALICE}\"")),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn under_https_the_login_cookie_is_secure() {
    let s = TestServer::start_with(CONFIG, |o| {
        o.tls = Some((fixture("tls.crt"), fixture("tls.key")))
    })
    .await;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.crt")).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!(
        "{}{}",
        s.url.replace("127.0.0.1", "localhost"),
        authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[])
    );
    let r = http.get(url).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn rotating_the_secret_keeps_tokens_but_not_the_old_secret() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    let code = alice_code(&s, &mut b, &[]).await;
    let (_, t) = redeem(
        &s,
        SELF_SERVICE_ID,
        Some(SELF_SERVICE_SECRET),
        &code,
        SELF_SERVICE_CALLBACK,
        None,
    )
    .await;
    let rotated = admin_seen(
        &database_url(s.dir.path()),
        &["app", "rotate-secret", "Self Service"],
    );
    let new_secret = rotated["client_secret"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let (st, e) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("refresh_token", rt),
        ])
        .await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    let (st, ok) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", new_secret),
            ("refresh_token", rt),
        ])
        .await;
    assert_eq!(st, 200, "{ok}");
    let r = s
        .http
        .get(t["id"].as_str().unwrap())
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sessions survive a secret rotation");
}

#[tokio::test]
async fn web_server_flow_without_a_secret_when_the_app_allows_it() {
    let config = CONFIG.replace(
        "callback_urls = [\"https://app.example/callback\", \"myapp://callback\"]",
        "callback_urls = [\"https://app.example/callback\", \"myapp://callback\"]\nrequire_secret_for_web_server_flow = false",
    );
    let s = TestServer::start_with(&config, |_| {}).await;
    let mut b = Browser::new(&s);
    let code = alice_code(&s, &mut b, &[("code_challenge", CHALLENGE)]).await;
    let (st, e) = redeem(
        &s,
        SELF_SERVICE_ID,
        Some("wrong"),
        &code,
        SELF_SERVICE_CALLBACK,
        Some(VERIFIER),
    )
    .await;
    assert_error(st, &e, 400, "invalid_client", "invalid client credentials");
    let code = alice_code(&s, &mut b, &[("code_challenge", CHALLENGE)]).await;
    let (st, t) = redeem(
        &s,
        SELF_SERVICE_ID,
        None,
        &code,
        SELF_SERVICE_CALLBACK,
        Some(VERIFIER),
    )
    .await;
    assert_eq!(st, 200, "{t}");
    // Signed all the same, with the app's own secret (kept sealed), as Salesforce signs it.
    assert_eq!(
        t["signature"].as_str(),
        Some(signature_for(SELF_SERVICE_SECRET, &t).as_str()),
        "{t}"
    );
}
