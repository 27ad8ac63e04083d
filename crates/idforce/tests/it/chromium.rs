//! The browser flows in a real headless Chromium (Debian's chromium + chromedriver): what a
//! person sees and does. Screenshots of the login and approval pages, at desktop and phone
//! widths, are saved under the test target directory (`…/screenshots/*.png`).

use serde_json::Value;

use crate::browser::authorize_url;
use crate::helpers::*;
use crate::webdriver::{self, WebDriver};

fn require_chromium() -> bool {
    let ok = webdriver::available();
    if !ok {
        let msg = "SKIPPED: chromium and chromium-driver are not installed (apt-get install chromium chromium-driver; .ci/run does)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("{msg}");
    }
    ok
}

/// An app whose callback is idforce's own success page, so the browser lands somewhere real.
fn create_app(s: &TestServer, name: &str, permitted: &str) -> (String, String, String) {
    create_app_with_callback(
        s,
        name,
        permitted,
        format!("{}/services/oauth2/success", s.url),
    )
}

/// An app with `callback`, approved for the System Administrator profile when admin-approved;
/// returns its client id, secret and callback.
fn create_app_with_callback(
    s: &TestServer,
    name: &str,
    permitted: &str,
    callback: String,
) -> (String, String, String) {
    let app = admin(
        &database_url(s.dir.path()),
        &[
            "app",
            "create",
            "--org",
            "Acme",
            "--name",
            name,
            "--scopes",
            "api refresh_token",
            "--callback-url",
            &callback,
            "--permitted-users",
            permitted,
        ],
    );
    if permitted == "admin_approved" {
        admin(
            &database_url(s.dir.path()),
            &["app", "approve-profile", name, "System Administrator"],
        );
    }
    (
        app["client_id"].as_str().unwrap().to_owned(),
        app["client_secret"].as_str().unwrap().to_owned(),
        callback,
    )
}

fn query_of(url: &str) -> std::collections::BTreeMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

async fn log_in(wd: &WebDriver, username: &str, password: &str) {
    wd.type_into("#username", username).await;
    wd.type_into("#password", password).await;
    // Focus may have moved between the two; make sure neither field lost its text.
    wd.type_into("#username", username).await;
    wd.click("#Login").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_server_flow_in_chromium() {
    if !require_chromium() {
        return;
    }
    let s = TestServer::start().await;
    let (client_id, secret, callback) = create_app(&s, "Chromium App", "all_users");
    let wd = WebDriver::start().await;

    wd.goto(&format!(
        "{}{}",
        s.url,
        authorize_url(&client_id, &callback, &[("state", "chromium")])
    ))
    .await;
    assert!(wd.source().await.contains("Log In"));
    assert_eq!(
        wd.focused_id().await,
        "username",
        "the username field has focus"
    );
    wd.screenshot("login-desktop").await;
    wd.resize(390, 844).await;
    wd.screenshot("login-phone").await;
    wd.resize(1280, 900).await;

    // A wrong password first: the page says so and stays.
    log_in(&wd, ALICE, "not-the-password").await;
    let page = wd.source().await;
    assert!(
        page.contains("Please check your username and password"),
        "{page}"
    );
    wd.screenshot("login-error").await;

    log_in(&wd, ALICE, ALICE_PASSWORD).await;
    let page = wd.source().await;
    assert!(
        page.contains("Allow Access?")
            && page.contains("Chromium App")
            && page.contains("Perform requests at any time"),
        "{page}"
    );
    wd.screenshot("approval-desktop").await;
    wd.resize(390, 844).await;
    wd.screenshot("approval-phone").await;
    wd.resize(1280, 900).await;

    wd.click("#oaapprove").await;
    let landed = wd.url().await;
    assert!(landed.starts_with(&callback), "{landed}");
    let q = query_of(&landed);
    assert_eq!(q["state"], "chromium");
    let (st, tokens) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &q["code"]),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("redirect_uri", &callback),
        ])
        .await;
    assert_eq!(st, 200, "{tokens}");
    let (st, refreshed): (u16, Value) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(st, 200, "{refreshed}");

    // prompt=login asks for the password again although the browser is logged in.
    wd.goto(&format!(
        "{}{}",
        s.url,
        authorize_url(&client_id, &callback, &[("prompt", "login")])
    ))
    .await;
    assert!(wd.source().await.contains("Log In"));
    log_in(&wd, ALICE, ALICE_PASSWORD).await;
    let landed = wd.url().await;
    assert!(
        query_of(&landed).contains_key("code"),
        "approved before, so no approval page: {landed}\n{}",
        wd.source().await
    );
    wd.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_and_outsider_in_chromium() {
    if !require_chromium() {
        return;
    }
    let s = TestServer::start().await;
    let (client_id, _, callback) = create_app(&s, "Deny App", "all_users");
    let (admin_id, _, admin_callback) = create_app(&s, "Admins Only", "admin_approved");
    let wd = WebDriver::start().await;

    wd.goto(&format!(
        "{}{}",
        s.url,
        authorize_url(&client_id, &callback, &[("state", "d")])
    ))
    .await;
    log_in(&wd, ALICE, ALICE_PASSWORD).await;
    wd.click("#oaapprove-deny").await;
    let q = query_of(&wd.url().await);
    assert_eq!(
        (
            q["error"].as_str(),
            q["error_description"].as_str(),
            q["state"].as_str()
        ),
        ("access_denied", "end-user denied authorization", "d")
    );

    // Alice (System Administrator) is pre-authorized: no approval page at all.
    wd.goto(&format!(
        "{}{}",
        s.url,
        authorize_url(&admin_id, &admin_callback, &[])
    ))
    .await;
    assert!(query_of(&wd.url().await).contains_key("code"));

    // Bob is not.
    wd.goto(&format!("{}/secur/logout.jsp", s.url)).await;
    wd.goto(&format!(
        "{}{}",
        s.url,
        authorize_url(&admin_id, &admin_callback, &[])
    ))
    .await;
    log_in(&wd, BOB, BOB_PASSWORD).await;
    let q = query_of(&wd.url().await);
    assert_eq!(q["error"], "OAUTH_APP_ACCESS_DENIED");
    wd.quit().await;
}

/// `idforce login web` with a person clicking through the pages in Chromium: the command
/// listens on the app's localhost callback, the browser comes back to it, and the command
/// redeems the code with its PKCE verifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_web_in_chromium() {
    if !require_chromium() {
        return;
    }
    let s = TestServer::start().await;
    let (client_id, secret, callback) = create_app_with_callback(
        &s,
        "CLI Web",
        "all_users",
        format!("http://localhost:{}/OauthRedirect", free_port()),
    );
    let tokens = tempfile::TempDir::new().unwrap();
    let web = spawn_client(
        &[
            "login",
            "web",
            "--login-url",
            &s.url,
            "--client-id",
            &client_id,
            "--client-secret",
            &secret,
            "--redirect-uri",
            &callback,
            "--no-browser",
            "--save",
            "web",
        ],
        &tokens.path().join("tokens.json"),
    )
    .await;
    let first = web.first_line.clone();
    let url = first
        .trim()
        .strip_prefix("To log in, open ")
        .unwrap()
        .to_owned();
    let q = query_of(&url);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], callback);
    assert!(q["state"].len() >= 32);

    let wd = WebDriver::start().await;
    wd.goto(&url).await;
    log_in(&wd, ALICE, ALICE_PASSWORD).await;
    assert!(wd.source().await.contains("Allow Access?"));
    wd.click("#oaapprove").await;
    let page = wd.source().await;
    assert!(page.contains("You can close this window"), "{page}");
    wd.quit().await;

    let (ok, out, err) = web.finish().await;
    assert!(ok, "{err}");
    let t: Value = serde_json::from_str(&out).unwrap();
    assert!(
        t["access_token"].as_str().unwrap().starts_with(ORG_ID_15),
        "{t}"
    );
    assert!(t["refresh_token"].as_str().is_some(), "{t}");
    let saved: Value =
        serde_json::from_slice(&std::fs::read(tokens.path().join("tokens.json")).unwrap()).unwrap();
    assert_eq!(saved["web"]["tokens"]["access_token"], t["access_token"]);
}

/// Setup in Chromium: a visitor opening Setup logs in and lands there; its pages at desktop
/// and phone widths; another profile's "Insufficient Privileges".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_in_chromium() {
    if !require_chromium() {
        return;
    }
    let s = TestServer::start().await;
    // A refused login first, so Login History has both kinds of row.
    s.token(&[
        ("grant_type", "password"),
        ("client_id", INTEGRATION_ID),
        ("client_secret", INTEGRATION_SECRET),
        ("username", BOB),
        ("password", "wrong"),
    ])
    .await;
    // A live session and a change in the audit trail, so that those pages show rows.
    s.password_login(ALICE, ALICE_PASSWORD).await;
    admin(
        &database_url(s.dir.path()),
        &[
            "app",
            "update",
            "Auditor",
            "--contact-email",
            "ops@acme.test",
        ],
    );
    let wd = WebDriver::start().await;
    wd.goto(&format!("{}/lightning/setup/SetupOneHome/home", s.url))
        .await;
    assert!(wd.source().await.contains("Log In"));
    log_in(&wd, ALICE, ALICE_PASSWORD).await;
    assert!(
        wd.url()
            .await
            .ends_with("/lightning/setup/SetupOneHome/home"),
        "back in Setup"
    );
    assert!(wd.source().await.contains("<h1>Setup</h1>"));
    for (name, width, height) in [("desktop", 1280, 900), ("phone", 390, 844)] {
        wd.resize(width, height).await;
        wd.goto(&format!("{}/lightning/setup/SetupOneHome/home", s.url))
            .await;
        wd.screenshot(&format!("setup-home-{name}")).await;
        wd.click("a[href='/lightning/setup/OrgLoginHistory/home']")
            .await;
        let page = wd.source().await;
        assert!(
            page.contains("Invalid Password") && page.contains("UsernamePasswordUiLogin"),
            "{page}"
        );
        wd.screenshot(&format!("setup-login-history-{name}")).await;
        wd.goto(&format!(
            "{}/lightning/setup/ConnectedApplication/home",
            s.url
        ))
        .await;
        wd.screenshot(&format!("setup-connected-apps-{name}")).await;
        wd.click("a[href*='ConnectedApplication/page']").await;
        assert!(wd.source().await.contains("Consumer Key"));
        wd.screenshot(&format!("setup-connected-app-{name}")).await;
        for (page, shot) in [
            ("ManageUsers", "users"),
            ("EnhancedProfiles", "profiles"),
            ("ConnectedAppsUsage", "oauth-usage"),
            ("SessionManagementPage", "session-management"),
            ("SecurityEvents", "audit-trail"),
        ] {
            wd.goto(&format!("{}/lightning/setup/{page}/home", s.url))
                .await;
            wd.screenshot(&format!("setup-{shot}-{name}")).await;
        }
        // The pages of one user, profile and app, and the forms that make them.
        let db = database_url(s.dir.path());
        let id = |what: &str, which: &str| {
            admin(&db, &[what, "show", which])["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let bob = id("user", BOB);
        let app = id("app", "Self Service");
        let profile = admin(&db, &["profile", "list", "--org", "Acme"])[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        for (path, shot) in [
            (format!("ManageUsers/page?user={bob}"), "user"),
            (format!("ManageUsers/edit?user={bob}"), "edit-user"),
            ("ManageUsers/new".to_owned(), "new-user"),
            (
                format!("EnhancedProfiles/page?profile={profile}"),
                "profile",
            ),
            ("EnhancedProfiles/new".to_owned(), "new-profile"),
            (
                format!("ConnectedAppsUsage/page?app={app}"),
                "oauth-usage-app",
            ),
        ] {
            wd.goto(&format!("{}/lightning/setup/{path}", s.url)).await;
            assert!(!wd.source().await.contains("Data Not Available"), "{path}");
            wd.screenshot(&format!("setup-{shot}-{name}")).await;
        }
        wd.goto(&format!(
            "{}/lightning/settings/personal/ResetApiToken/home",
            s.url
        ))
        .await;
        wd.screenshot(&format!("reset-my-security-token-{name}"))
            .await;
    }
    // The profile's login restrictions, filled in and saved by keyboard and mouse, in a window
    // tall enough to show the whole form.
    let db = database_url(s.dir.path());
    let profile = admin(&db, &["profile", "list", "--org", "Acme"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    wd.resize(1280, 1500).await;
    wd.goto(&format!(
        "{}/lightning/setup/EnhancedProfiles/page?profile={profile}",
        s.url
    ))
    .await;
    wd.type_into("#login_ip_ranges", "10.0.0.0-10.0.0.255")
        .await;
    wd.tick("#restrict_hours").await;
    wd.type_into("#hours_monday", "08:00-18:00").await;
    wd.type_into("#hours_friday", "08:00-16:00").await;
    wd.click("#save-restrictions").await;
    assert!(wd.source().await.contains("Your changes are saved"));
    wd.screenshot("setup-profile-login-restrictions").await;
    wd.resize(1280, 900).await;
    wd.goto(&format!("{}/secur/logout.jsp", s.url)).await;
    wd.goto(&format!("{}/lightning/setup/OrgLoginHistory/home", s.url))
        .await;
    log_in(&wd, BOB, BOB_PASSWORD).await;
    assert!(wd.source().await.contains("Insufficient Privileges"));
    wd.screenshot("setup-insufficient-privileges").await;
    wd.quit().await;
    s.stop().await;
}

/// Seed 002 end to end in Setup, as its reader does it in Salesforce: create the connected app
/// (digital signatures included), make it "Admin approved users are pre-authorized" for System
/// Administrator, reveal its consumer details; then the seed's own steps: the authorize URL in
/// the browser, the code copied from the address bar, the token with the revealed secret, the
/// refresh. Screenshots of each form at desktop and phone widths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_002_in_setup_in_chromium() {
    if !require_chromium() {
        return;
    }
    let s = TestServer::start().await;
    let wd = WebDriver::start().await;
    wd.goto(&format!("{}/lightning/setup/SetupOneHome/home", s.url))
        .await;
    log_in(&wd, ALICE, ALICE_PASSWORD).await;
    wd.click("a[href='/lightning/setup/ConnectedApplication/home']")
        .await;
    wd.click("#new-connected-app").await;
    wd.screenshot("setup-new-connected-app-desktop").await;
    // "Fill in your Name and Email", the callback URL, the three scopes; this app is for the
    // JWT bearer flow too, so it gets the certificate. The seed sends no PKCE challenge.
    wd.type_into("#name", "JWT Demo").await;
    wd.type_into("#contact_email", "alice@acme.test").await;
    assert!(wd.is_selected("#oauth_enabled").await, "ticked by default");
    wd.type_into(
        "#callback_urls",
        "https://login.salesforce.com/oauth2/callback",
    )
    .await;
    for scope in ["#scope-api", "#scope-web", "#scope-refresh_token"] {
        wd.tick(scope).await;
    }
    wd.tick("#digital_signatures").await;
    wd.upload("#certificate", &fixture("jwt.crt")).await;
    wd.tick("#require_pkce").await;
    assert!(!wd.is_selected("#require_pkce").await);
    wd.click("#save").await;
    let page = wd.source().await;
    assert!(page.contains("Your connected app is saved."), "{page}");
    assert!(
        page.contains("Yes (SHA-256 "),
        "the certificate arrived: {page}"
    );
    let client_id = wd.text("#consumer-key").await;

    // "Manage Apps → Connected Apps → Edit → Permitted Users → Admin approved users are
    // pre-authorized → Save".
    wd.click("a[href*='ConnectedApplication/policies']").await;
    wd.screenshot("setup-edit-policies-desktop").await;
    wd.tick("#permitted_users option[value='admin_approved']")
        .await;
    wd.click("#save").await;
    assert_eq!(
        wd.text("#permitted-users").await,
        "Admin approved users are pre-authorized"
    );
    // "Manage Users → Profiles → select System Administrator" (the app's Manage Profiles).
    wd.click("a[href*='ConnectedApplication/profiles']").await;
    wd.screenshot("setup-manage-profiles-desktop").await;
    let sysadmin = "input[name='profile'][value='System Administrator']";
    wd.tick(sysadmin).await;
    assert!(wd.is_selected(sysadmin).await);
    wd.click("#save").await;
    assert!(wd.source().await.contains("<li>System Administrator</li>"));
    // Manage Consumer Details: the password again, then the key and secret.
    wd.click("a[href*='ConnectedApplication/consumer']").await;
    wd.type_into("#password", ALICE_PASSWORD).await;
    wd.click("#verify").await;
    let secret = wd.text("#consumer-secret").await;
    assert!(!secret.is_empty());
    assert_eq!(wd.text("#consumer-key").await, client_id);

    // The seed's authorize URL in the same browser: pre-authorized, so no approval page; the
    // code is in the address bar of the (unreachable) callback.
    let callback = "https://login.salesforce.com/oauth2/callback";
    wd.goto_unreachable(&format!(
        "{}{}",
        s.url,
        authorize_url(&client_id, callback, &[])
    ))
    .await;
    let landed = wd.url().await;
    assert!(landed.starts_with(callback), "{landed}");
    let code = landed
        .split_once('?')
        .and_then(|(_, q)| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
        })
        .expect("a code");
    let (st, tokens) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("redirect_uri", callback),
        ])
        .await;
    assert_eq!(st, 200, "{tokens}");
    let (st, refreshed) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(st, 200, "{refreshed}");
    // And the JWT bearer flow with the uploaded certificate, for her profile.
    let assertion = sign_jwt(&serde_json::json!({
        "iss": client_id, "sub": ALICE, "aud": s.url, "exp": now_secs() + 180,
    }));
    let (st, body) = s.jwt_login(&assertion).await;
    assert_eq!(st, 200, "{body}");

    // The forms at phone width, one with its errors shown.
    wd.resize(390, 844).await;
    wd.goto(&format!(
        "{}/lightning/setup/ConnectedApplication/new",
        s.url
    ))
    .await;
    wd.screenshot("setup-new-connected-app-phone").await;
    wd.type_into("#contact_email", "not-an-email").await;
    wd.click("#save").await;
    assert!(
        wd.source()
            .await
            .contains("Review the errors on this page.")
    );
    wd.screenshot("setup-new-connected-app-errors-phone").await;
    let app_id = admin(&database_url(s.dir.path()), &["app", "show", "JWT Demo"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (page, shot) in [
        ("edit", "edit-connected-app"),
        ("policies", "edit-policies"),
        ("profiles", "manage-profiles"),
        ("consumer", "consumer-details"),
        ("page", "connected-app"),
    ] {
        wd.goto(&format!(
            "{}/lightning/setup/ConnectedApplication/{page}?app={app_id}",
            s.url
        ))
        .await;
        wd.screenshot(&format!("setup-{shot}-phone")).await;
    }
    wd.resize(1280, 900).await;
    wd.goto(&format!(
        "{}/lightning/setup/ConnectedApplication/edit?app={app_id}",
        s.url
    ))
    .await;
    wd.screenshot("setup-edit-connected-app-desktop").await;
    // Its token exchange and asset token settings, scrolled to.
    wd.goto(&format!(
        "{}/lightning/setup/ConnectedApplication/edit?app={app_id}#jwt_access_tokens",
        s.url
    ))
    .await;
    assert!(wd.source().await.contains("Enable Asset Tokens"));
    wd.screenshot("setup-edit-connected-app-token-exchange")
        .await;
    wd.quit().await;
    s.stop().await;
}

/// Setup by keyboard alone: Tab walks the New Connected App form in reading order through every
/// field to Save, Space ticks a box, and Enter on Save submits; the errors come back beside
/// their fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_setup_form_by_keyboard_alone() {
    if !require_chromium() {
        return;
    }
    let s = TestServer::start().await;
    let wd = WebDriver::start().await;
    wd.goto(&format!(
        "{}/lightning/setup/ConnectedApplication/new",
        s.url
    ))
    .await;
    log_in(&wd, ALICE, ALICE_PASSWORD).await;
    assert!(wd.source().await.contains("New Connected App"));
    wd.type_into("#name", "Keyboard App").await;
    let mut order = vec![wd.focused_id().await];
    for _ in 0..40 {
        wd.keys("\u{E004}").await;
        let id = wd.focused_id().await;
        if id == "save" {
            order.push(id);
            break;
        }
        if !id.is_empty() {
            order.push(id);
        }
    }
    let expected = [
        "name",
        "api_name",
        "contact_email",
        "oauth_enabled",
        "callback_urls",
        "digital_signatures",
        "certificate",
        "scope-wave_api",
    ];
    assert_eq!(&order[..expected.len()], expected, "{order:?}");
    for id in [
        "scope-refresh_token",
        "require_pkce",
        "secret_web_server",
        "secret_refresh",
        "client_credentials",
        "run_as",
        "device_flow",
        "jwt_access_tokens",
        "token_exchange",
        "secret_token_exchange",
        "asset_tokens",
        "asset_token_lifetime",
        "asset_audiences",
        "save",
    ] {
        assert!(
            order.contains(&id.to_owned()),
            "{id} unreachable: {order:?}"
        );
    }
    // Back to Enable for Device Flow and tick it with Space; then Enter on Save.
    wd.type_into("#contact_email", "not-an-email").await;
    wd.tick("#device_flow").await;
    assert!(wd.is_selected("#device_flow").await);
    wd.keys("\u{E00D}").await;
    assert!(
        !wd.is_selected("#device_flow").await,
        "Space toggles the focused box"
    );
    // Tab on past the last fields and Cancel to Save, and Enter.
    wd.keys(&"\u{E004}".repeat(8)).await;
    assert_eq!(wd.focused_id().await, "save");
    wd.keys("\u{E007}").await;
    for _ in 0..100 {
        if wd
            .source()
            .await
            .contains("Review the errors on this page.")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let page = wd.source().await;
    assert!(page.contains("Enter an email address"), "{page}");
    assert!(page.contains("value=\"Keyboard App\""), "kept as typed");
    wd.quit().await;
    s.stop().await;
}

/// A site's login page and a frontdoor, reached through a My Domain's own name (Chromium
/// resolves every `*.localhost` name to loopback).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_and_frontdoor_on_a_my_domain_in_chromium() {
    if !require_chromium() {
        return;
    }
    let s = TestServer::start_with(&crate::hosts::hosts_config(), |_| {}).await;
    let port = s.url.rsplit(':').next().unwrap().to_owned();
    let my_domain = format!("http://{}:{port}", crate::hosts::MY_DOMAIN);
    let site = format!("{my_domain}/partners");
    let (client_id, _, callback) = create_app_with_callback(
        &s,
        "Site App",
        "all_users",
        format!("{site}/services/oauth2/success"),
    );
    let wd = WebDriver::start().await;

    wd.goto(&format!(
        "{site}{}",
        authorize_url(&client_id, &callback, &[("state", "site")])
    ))
    .await;
    let page = wd.source().await;
    assert!(
        page.contains("Log In") && page.contains("Partners"),
        "{page}"
    );
    wd.screenshot("site-login-desktop").await;
    wd.resize(390, 844).await;
    wd.screenshot("site-login-phone").await;
    wd.resize(1280, 900).await;
    log_in(&wd, ALICE, ALICE_PASSWORD).await;
    assert!(wd.source().await.contains("Allow Access?"));
    wd.click("#oaapprove").await;
    let landed = wd.url().await;
    assert!(landed.starts_with(&callback), "{landed}");
    let q = query_of(&landed);
    assert_eq!(q["state"], "site");
    assert_eq!(q["sfdc_community_url"], site);
    assert!(q.contains_key("code"));

    // Frontdoor: a web-scoped token becomes this browser's session on the My Domain.
    let token = s.password_login(ALICE, ALICE_PASSWORD).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let wd2 = WebDriver::start().await;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("sid", &token)
        .append_pair("retURL", "/lightning/setup/SetupOneHome/home")
        .finish();
    wd2.goto(&format!("{my_domain}/secur/frontdoor.jsp?{query}"))
        .await;
    assert_eq!(
        wd2.url().await,
        format!("{my_domain}/lightning/setup/SetupOneHome/home")
    );
    let page = wd2.source().await;
    assert!(page.contains("Manage Connected Apps"), "{page}");
    wd2.screenshot("frontdoor-setup-desktop").await;
    // The control: a bad token lands on the login page, not in Setup.
    let wd3 = WebDriver::start().await;
    wd3.goto(&format!(
        "{my_domain}/secur/frontdoor.jsp?sid={}&retURL=%2Flightning%2Fsetup%2FSetupOneHome%2Fhome",
        tamper(&token)
    ))
    .await;
    assert!(wd3.source().await.contains("Log In"));
    // Nor does another org's web-scoped token on Acme's My Domain (it would on the login host:
    // the My Domain is told apart by its name).
    let (st, t) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", GLOBEX_ID),
            ("client_secret", GLOBEX_SECRET),
            ("username", "dave@globex.test"),
            ("password", "Globex2026!"),
        ])
        .await;
    assert_eq!(st, 200, "{t}");
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("sid", t["access_token"].as_str().unwrap())
        .append_pair("retURL", "/lightning/setup/SetupOneHome/home")
        .finish();
    wd3.goto(&format!("{my_domain}/secur/frontdoor.jsp?{query}"))
        .await;
    assert!(wd3.source().await.contains("Log In"));
    for wd in [wd, wd2, wd3] {
        wd.quit().await;
    }
}
