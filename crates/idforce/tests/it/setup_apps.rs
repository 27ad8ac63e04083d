//! Setup's connected app forms over HTTP: New Connected App (each error beside its field, the
//! form kept as typed), the new app working on the wire with the secret revealed under Manage
//! Consumer Details, Edit, Edit Policies and Manage Profiles taking effect without a restart,
//! and who may do none of it.

use serde_json::json;

use crate::browser::*;
use crate::helpers::*;

const CONNECTED_APPS: &str = "/lightning/setup/ConnectedApplication/home";
const NEW: &str = "/lightning/setup/ConnectedApplication/new";

/// Seed 002's app, as its steps fill the form in.
fn seed_002_app(csrf: &str) -> Vec<(String, String)> {
    form(&[
        ("csrf", csrf),
        ("name", "JWT Demo"),
        ("contact_email", "admin@acme.test"),
        ("oauth_enabled", "on"),
        (
            "callback_urls",
            "https://login.salesforce.com/oauth2/callback",
        ),
        ("scope", "api"),
        ("scope", "web"),
        ("scope", "refresh_token"),
        ("secret_web_server", "on"),
        ("secret_refresh", "on"),
    ])
}

/// The app's id (`?app=…`) from the Manage page a save redirects to.
fn app_of(location: &str) -> String {
    let query = location.split_once('?').unwrap().1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "app")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test]
async fn a_new_connected_app_is_checked_field_by_field_then_works_on_the_wire() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let list = alice.get(CONNECTED_APPS).await;
    assert!(
        list.body.contains(&format!("href=\"{NEW}\"")),
        "{}",
        list.body
    );
    let blank = alice.get(NEW).await;
    assert_eq!(blank.status, 200, "{}", blank.body);
    // Salesforce's labels, each tied to its input; Salesforce's defaults ticked.
    for label in [
        "<label for=\"name\">Connected App Name</label>",
        "<label for=\"api_name\">API Name</label>",
        "<label for=\"contact_email\">Contact Email</label>",
        "<label for=\"oauth_enabled\">Enable OAuth Settings</label>",
        "<label for=\"callback_urls\">Callback URL</label>",
        "<label for=\"digital_signatures\">Use digital signatures</label>",
        "<legend>Selected OAuth Scopes</legend>",
        "<label for=\"scope-api\">Manage user data via APIs (api)</label>",
        "<label for=\"scope-refresh_token\">Perform requests at any time (refresh_token, offline_access)</label>",
        "<label for=\"scope-openid\">Access unique user identifiers (openid)</label>",
        "<label for=\"require_pkce\">Require Proof Key for Code Exchange (PKCE) Extension for Supported Authorization Flows</label>",
        "<label for=\"secret_web_server\">Require Secret for Web Server Flow</label>",
        "<label for=\"secret_refresh\">Require Secret for Refresh Token Flow</label>",
        "<label for=\"client_credentials\">Enable Client Credentials Flow</label>",
        "<label for=\"run_as\">Run As</label>",
        "<label for=\"device_flow\">Enable for Device Flow</label>",
        "<label for=\"jwt_access_tokens\">Issue JSON Web Token (JWT)-based access tokens for named users</label>",
    ] {
        assert!(unescape(&blank.body).contains(label), "{label}");
    }
    assert!(
        blank
            .body
            .contains("id=\"require_pkce\" name=\"require_pkce\" checked")
    );
    assert!(
        !blank
            .body
            .contains("id=\"device_flow\" name=\"device_flow\" checked")
    );
    let csrf = csrf_of(&blank);

    // Bad fields: each error beside its field, what was typed kept, nothing saved.
    let mut bad = form(&[
        ("csrf", &csrf),
        ("name", "Integration"),
        ("contact_email", "not-an-email"),
        ("oauth_enabled", "on"),
        (
            "callback_urls",
            "https://ok.example/cb\njavascript:alert(1)",
        ),
        ("scope", "api"),
        ("client_credentials", "on"),
    ]);
    let page = alice.post(NEW, &bad).await;
    assert_eq!(page.status, 422, "{}", page.body);
    assert!(page.body.contains("Review the errors on this page."));
    assert_eq!(
        field_error(&page, "name").as_deref(),
        Some("A connected app with this name already exists in your org.")
    );
    assert_eq!(
        field_error(&page, "contact_email").as_deref(),
        Some("Enter an email address, like admin@example.com.")
    );
    assert!(
        field_error(&page, "callback_urls")
            .unwrap()
            .starts_with("javascript:alert(1) is not a callback URL"),
    );
    assert_eq!(
        field_error(&page, "run_as").as_deref(),
        Some("You must enter a value.")
    );
    // The API Name proposed from a taken name is taken too.
    assert_eq!(
        field_error(&page, "api_name").as_deref(),
        Some("Another connected app of your org has this API Name.")
    );
    assert_eq!(field_error(&page, "scopes"), None);
    let typed = unescape(&page.body);
    assert!(typed.contains("value=\"not-an-email\""));
    assert!(typed.contains(">https://ok.example/cb\njavascript:alert(1)</textarea>"));
    assert!(typed.contains("id=\"scope-api\" name=\"scope\" value=\"api\" checked"));
    assert!(typed.contains("aria-invalid=\"true\" aria-describedby=\"contact_email-error\""));
    assert_eq!(admin(&db, &["app", "list"]).as_array().unwrap().len(), 6);
    // Without the page's CSRF token, or as Bob: refused before anything is read.
    bad[0].1 = "forged".into();
    assert_eq!(alice.post(NEW, &bad).await.status, 403);
    let mut bob = logged_in(&s, BOB, BOB_PASSWORD).await;
    let page = bob.post(NEW, &seed_002_app(&csrf)).await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("Insufficient Privileges"));

    // Seed 002's app: saved, the Manage page says so.
    let saved = alice.post(NEW, &seed_002_app(&csrf)).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let manage_url = saved.location.clone().unwrap();
    let app_id = app_of(&manage_url);
    let manage = alice.get(&manage_url).await;
    assert!(
        manage.body.contains("Your connected app is saved."),
        "{}",
        manage.body
    );
    assert!(manage.body.contains("<dd id=\"api-name\">JWT_Demo</dd>"));
    let client_id = code_of(&manage, "consumer-key").unwrap();
    assert!(client_id.starts_with("3MVG9"), "{client_id}");
    let shown = admin(&db, &["app", "show", "JWT Demo"]);
    assert_eq!(shown["scopes"], "api web refresh_token offline_access");
    assert_eq!(shown["contact_email"], "admin@acme.test");
    assert_eq!(shown["require_pkce"], false);
    assert_eq!(shown["device_flow"], false);
    let trail = admin(&db, &["audit-trail"]);
    assert_eq!(trail[0]["user"], "alice@acme.test (Setup)");
    assert_eq!(trail[0]["action"], "Created connected app \"JWT Demo\"");

    // Manage Consumer Details: the secret only after the password.
    let consumer = format!("/lightning/setup/ConnectedApplication/consumer?app={app_id}");
    let page = alice.get(&consumer).await;
    assert_eq!(code_of(&page, "consumer-secret"), None);
    let c = csrf_of(&page);
    let wrong = alice
        .post(
            &consumer,
            &form(&[("csrf", &c), ("password", "wrong"), ("action", "reveal")]),
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert_eq!(code_of(&wrong, "consumer-secret"), None);
    assert_eq!(
        field_error(&wrong, "password").as_deref(),
        Some("Your password is incorrect, or you are locked out.")
    );
    let shown = alice
        .post(
            &consumer,
            &form(&[
                ("csrf", &c),
                ("password", ALICE_PASSWORD),
                ("action", "reveal"),
            ]),
        )
        .await;
    assert_eq!(shown.status, 200);
    let secret = code_of(&shown, "consumer-secret").expect("the secret after the password");
    assert_eq!(shown.headers["cache-control"], "no-store");

    // Seed 002's own steps: authorize, the code, the token with the revealed secret, refresh.
    let url = crate::browser::authorize_url(
        &client_id,
        "https://login.salesforce.com/oauth2/callback",
        &[],
    );
    let code = alice.approved_code(&url, ALICE, ALICE_PASSWORD).await;
    let (st, tokens) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &client_id),
            ("client_secret", &secret),
            (
                "redirect_uri",
                "https://login.salesforce.com/oauth2/callback",
            ),
        ])
        .await;
    assert_eq!(st, 200, "{tokens}");
    let (st, refreshed) = s
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(st, 200, "{refreshed}");

    // Device flow: off as the form left it; ticked in Edit, served at once.
    let device = [
        ("response_type", "device_code"),
        ("client_id", client_id.as_str()),
    ];
    let (st, body) = s.token(&device).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_grant",
        "device flow is not enabled for the app",
    );
    let edit_url = format!("/lightning/setup/ConnectedApplication/edit?app={app_id}");
    let edit = alice.get(&edit_url).await;
    assert!(
        unescape(&edit.body).contains(">https://login.salesforce.com/oauth2/callback</textarea>")
    );
    let mut edited = seed_002_app(&csrf_of(&edit));
    edited.push(("device_flow".into(), "on".into()));
    let saved = alice.post(&edit_url, &edited).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (st, body) = s.token(&device).await;
    assert_eq!(st, 200, "{body}");
    let trail = admin(&db, &["audit-trail"]);
    assert_eq!(
        trail[0]["action"],
        "Changed connected app \"JWT Demo\": device_flow false → true"
    );

    // Generate New Consumer Secret: the old one is refused from now on, the new one works.
    let page = alice.get(&consumer).await;
    let generated = alice
        .post(
            &consumer,
            &form(&[
                ("csrf", &csrf_of(&page)),
                ("password", ALICE_PASSWORD),
                ("action", "generate"),
            ]),
        )
        .await;
    let new_secret = code_of(&generated, "consumer-secret").unwrap();
    assert_ne!(new_secret, secret);
    let refresh_with = |secret: String| {
        let rt = refreshed["refresh_token"]
            .as_str()
            .or(tokens["refresh_token"].as_str())
            .unwrap()
            .to_owned();
        let client_id = client_id.clone();
        let s = &s;
        async move {
            s.token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &client_id),
                ("client_secret", &secret),
            ])
            .await
        }
    };
    let (st, body) = refresh_with(secret).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_client",
        "invalid client credentials",
    );
    assert_eq!(refresh_with(new_secret).await.0, 200);

    // Generate Initial Access Token (dynamic client registration): shown once generated, and
    // again after the password; it registers an app (the control: none was shown before).
    let manage = alice.get(&manage_url).await;
    assert!(
        manage.body.contains("None. Generate one under"),
        "{}",
        manage.body
    );
    let page = alice.get(&consumer).await;
    assert_eq!(code_of(&page, "initial-access-token"), None);
    let generated = alice
        .post(
            &consumer,
            &form(&[
                ("csrf", &csrf_of(&page)),
                ("password", ALICE_PASSWORD),
                ("action", "generate_initial_access_token"),
            ]),
        )
        .await;
    let initial = code_of(&generated, "initial-access-token").expect("the new token");
    let revealed = alice
        .post(
            &consumer,
            &form(&[
                ("csrf", &csrf_of(&page)),
                ("password", ALICE_PASSWORD),
                ("action", "reveal"),
            ]),
        )
        .await;
    assert_eq!(
        code_of(&revealed, "initial-access-token"),
        Some(initial.clone())
    );
    let r = s
        .http
        .post(s.at("/services/oauth2/register"))
        .bearer_auth(&initial)
        .json(&serde_json::json!({"grant_types": ["password"], "client_name": "From Setup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let manage = alice.get(&manage_url).await;
    assert!(
        manage.body.contains("Generated: clients that present it"),
        "{}",
        manage.body
    );

    // Enable OAuth Settings off: the consumer key is unknown on the wire.
    let edit = alice.get(&edit_url).await;
    let off: Vec<(String, String)> = seed_002_app(&csrf_of(&edit))
        .into_iter()
        .filter(|(k, _)| k != "oauth_enabled")
        .collect();
    assert_eq!(alice.post(&edit_url, &off).await.status, 303);
    let (st, body) = s.token(&device).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_client_id",
        "client identifier invalid",
    );
    s.stop().await;
}

#[tokio::test]
async fn policies_and_profiles_decide_who_may_use_the_app() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let blank = alice.get(NEW).await;
    let mut app = seed_002_app(&csrf_of(&blank));
    app.push(("digital_signatures".into(), "on".into()));
    // No certificate yet: refused beside the field; a file that is not PEM: the same.
    let page = alice.post(NEW, &app).await;
    assert_eq!(
        field_error(&page, "certificate").as_deref(),
        Some("Upload a certificate.")
    );
    app.push(("certificate".into(), "not a certificate".into()));
    let page = alice.post(NEW, &app).await;
    assert!(
        field_error(&page, "certificate")
            .unwrap()
            .starts_with("Upload an X.509 certificate in PEM format")
    );
    app.pop();
    // A path on the server: never read, refused as not PEM.
    app.push(("certificate".into(), "/etc/hostname".into()));
    let page = alice.post(NEW, &app).await;
    assert_eq!(
        field_error(&page, "certificate").as_deref(),
        Some("Upload an X.509 certificate in PEM format (the file is not PEM).")
    );
    app.pop();
    let pem = std::fs::read_to_string(fixture("jwt.crt")).unwrap();
    app.push(("certificate".into(), pem));
    let saved = alice.post(NEW, &app).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let app_id = app_of(saved.location.as_deref().unwrap());
    let client_id = code_of(
        &alice.get(saved.location.as_deref().unwrap()).await,
        "consumer-key",
    )
    .unwrap();
    let jwt = |sub: &str| {
        sign_jwt(&json!({
            "iss": client_id, "sub": sub, "aud": s.url,
            "exp": now_secs() + 180,
        }))
    };
    // All users may self-authorize: JWT bearer needs a prior approval, which nobody has.
    let (st, body) = s.jwt_login(&jwt(ALICE)).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_grant",
        "user hasn't approved this consumer",
    );

    // Edit Policies: admin approved; a bad span is refused beside its field.
    let policies = format!("/lightning/setup/ConnectedApplication/policies?app={app_id}");
    let page = alice.get(&policies).await;
    for label in [
        "<label for=\"permitted_users\">Permitted Users</label>",
        "<legend>Refresh Token Policy</legend>",
        "<label for=\"refresh-until-revoked\">Refresh token is valid until revoked</label>",
        "<label for=\"refresh-immediately\">Immediately expire refresh token</label>",
        "<label for=\"refresh-unused\">Expire refresh token if not used for</label>",
        "<label for=\"refresh-after\">Expire refresh token after</label>",
        "<label for=\"timeout\">Timeout Value</label>",
    ] {
        assert!(page.body.contains(label), "{label}");
    }
    let c = csrf_of(&page);
    let bad = form(&[
        ("csrf", &c),
        ("permitted_users", "admin_approved"),
        ("refresh_token_policy", "expire_after"),
        ("after_count", "0"),
        ("after_unit", "days"),
        ("timeout", "3600"),
    ]);
    let page = alice.post(&policies, &bad).await;
    assert_eq!(page.status, 422);
    assert_eq!(
        field_error(&page, "after_count").as_deref(),
        Some("Enter a whole number from 1 to 999.")
    );
    assert!(page.body.contains(
        "id=\"refresh-after\" name=\"refresh_token_policy\" value=\"expire_after\" checked"
    ));
    let good = form(&[
        ("csrf", &c),
        ("permitted_users", "admin_approved"),
        ("refresh_token_policy", "expire_after"),
        ("after_count", "30"),
        ("after_unit", "days"),
        ("timeout", "3600"),
    ]);
    let saved = alice.post(&policies, &good).await;
    assert_eq!(saved.status, 303);
    let manage = alice.get(saved.location.as_deref().unwrap()).await;
    assert!(
        manage
            .body
            .contains("Admin approved users are pre-authorized")
    );
    assert!(
        manage.body.contains("Expire refresh token after 30days"),
        "{}",
        manage.body
    );
    assert!(manage.body.contains("<dd id=\"timeout-value\">1h</dd>"));
    let shown = admin(&db, &["app", "show", "JWT Demo"]);
    assert_eq!(shown["refresh_token_policy"], "expire_after:30days");
    assert_eq!(shown["session_timeout_secs"], 3600);
    // Admin approved, no profile yet: nobody.
    let (st, body) = s.jwt_login(&jwt(ALICE)).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );

    // Manage Profiles: System Administrator. Alice (one) may; Bob (Standard User) may not.
    let profiles = format!("/lightning/setup/ConnectedApplication/profiles?app={app_id}");
    let page = alice.get(&profiles).await;
    assert!(
        page.body.contains(">System Administrator</label>"),
        "{}",
        page.body
    );
    assert!(page.body.contains(">Standard User</label>"));
    let saved = alice
        .post(
            &profiles,
            &form(&[
                ("csrf", &csrf_of(&page)),
                ("profile", "System Administrator"),
                ("profile", "No Such Profile"),
            ]),
        )
        .await;
    assert_eq!(saved.status, 303);
    assert_eq!(
        admin(&db, &["app", "show", "JWT Demo"])["profiles"],
        json!(["System Administrator"])
    );
    let (st, body) = s.jwt_login(&jwt(ALICE)).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = s.jwt_login(&jwt(BOB)).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );

    // Manage Users: Bob by name; he may now, whatever his profile.
    let users = format!("/lightning/setup/ConnectedApplication/users?app={app_id}");
    let page = alice.get(&users).await;
    let bob_id = admin(&db, &["user", "show", BOB])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        page.body.contains(&format!(
            "<label for=\"user-{bob_id}\">Bob Builder (bob@acme.test)</label>"
        )),
        "{}",
        page.body
    );
    let saved = alice
        .post(
            &users,
            &form(&[
                ("csrf", &csrf_of(&page)),
                ("user", &bob_id),
                ("user", "005000000000ZZZ"),
            ]),
        )
        .await;
    assert_eq!(saved.status, 303);
    let manage = alice.get(saved.location.as_deref().unwrap()).await;
    assert!(
        manage.body.contains("<li>bob@acme.test</li>"),
        "{}",
        manage.body
    );
    let (st, body) = s.jwt_login(&jwt(BOB)).await;
    assert_eq!(st, 200, "{body}");

    // Another org's app cannot be reached through these pages.
    let globex = admin(&db, &["app", "show", "Globex App"]);
    let other = format!(
        "/lightning/setup/ConnectedApplication/policies?app={}",
        globex["id"].as_str().unwrap()
    );
    assert_eq!(alice.get(&other).await.status, 404);
    let mut posted = good.clone();
    posted.push(("app".into(), globex["id"].as_str().unwrap().into()));
    assert_eq!(
        alice
            .post("/lightning/setup/ConnectedApplication/policies", &posted)
            .await
            .status,
        404
    );
    assert_eq!(
        admin(&db, &["app", "show", "Globex App"])["permitted_users"],
        "all_users"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_setup_audit_trail_shows_the_orgs_own_changes_newest_first() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    // One change in each org, by the CLI; then one in Acme through Setup.
    admin(
        &db,
        &[
            "app",
            "update",
            "Globex App",
            "--contact-email",
            "ops@globex.test",
        ],
    );
    admin(
        &db,
        &[
            "app",
            "update",
            "Auditor",
            "--contact-email",
            "ops@acme.test",
        ],
    );
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let blank = alice.get(NEW).await;
    assert_eq!(
        alice
            .post(NEW, &seed_002_app(&csrf_of(&blank)))
            .await
            .status,
        303
    );

    let page = alice.get("/lightning/setup/SecurityEvents/home").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = unescape(&page.body);
    let created = body
        .find("Created connected app \"JWT Demo\"")
        .expect("Setup's change");
    let updated = body
        .find("Changed connected app \"Auditor\": contact_email \"\" → \"ops@acme.test\"")
        .expect("the CLI's change");
    assert!(created < updated, "newest first");
    assert!(body.contains("<td>alice@acme.test (Setup)</td>"));
    assert!(!body.contains("Globex"), "another org's change: {body}");
    // The CLI: one org's, or every org's.
    let acme = admin(&db, &["audit-trail", "--org", "Acme"]);
    assert_eq!(acme.as_array().unwrap().len(), 2, "{acme}");
    assert_eq!(acme[0]["org_id"], "00D000000000001EAA");
    assert_eq!(admin(&db, &["audit-trail"]).as_array().unwrap().len(), 3);
    // Bob: not his to see.
    let mut bob = logged_in(&s, BOB, BOB_PASSWORD).await;
    assert_eq!(
        bob.get("/lightning/setup/SecurityEvents/home").await.status,
        403
    );
    s.stop().await;
}

#[tokio::test]
async fn a_restart_on_the_config_file_keeps_setups_changes_it_does_not_name() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let id = admin(&db, &["app", "show", "Integration"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Setup changes a field the config does not name (Timeout Value) and one it does
    // (Callback URL).
    let policies = format!("/lightning/setup/ConnectedApplication/policies?app={id}");
    let page = alice.get(&policies).await;
    let saved = alice
        .post(
            &policies,
            &form(&[
                ("csrf", &csrf_of(&page)),
                ("permitted_users", "admin_approved"),
                ("refresh_token_policy", "until_revoked"),
                ("timeout", "3600"),
            ]),
        )
        .await;
    assert_eq!(saved.status, 303);
    let edit_url = format!("/lightning/setup/ConnectedApplication/edit?app={id}");
    let edit = alice.get(&edit_url).await;
    let mut typed: Vec<(String, String)> = edit
        .hidden()
        .into_iter()
        .filter(|(k, _)| k == "csrf")
        .collect();
    typed.extend(form(&[
        ("name", "Integration"),
        ("contact_email", "ops@acme.test"),
        ("oauth_enabled", "on"),
        ("callback_urls", "https://changed.example/cb"),
        ("scope", "api"),
        ("digital_signatures", "on"),
        ("secret_web_server", "on"),
        ("secret_refresh", "on"),
        ("client_credentials", "on"),
        ("run_as", "integration@acme.test"),
    ]));
    assert_eq!(alice.post(&edit_url, &typed).await.status, 303);
    let changed = admin(&db, &["app", "show", "Integration"]);
    assert_eq!(changed["callback_urls"][0], "https://changed.example/cb");
    assert_eq!(changed["session_timeout_secs"], 3600);

    let dir = s.stop().await;
    let s = TestServer::start_in(dir, Some(CONFIG), |_| {}).await;
    let after = admin(&db, &["app", "show", "Integration"]);
    assert_eq!(after["session_timeout_secs"], 3600, "not named: kept");
    assert_eq!(after["contact_email"], "ops@acme.test", "not named: kept");
    assert_eq!(
        after["callback_urls"][0], "https://login.salesforce.com/oauth2/callback",
        "named by the file: the file's"
    );
    s.stop().await;
}

#[tokio::test]
async fn edit_policies_keeps_what_its_lists_cannot_name_unless_changed() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    // Values the config file or the CLI can give and the form's lists cannot.
    admin(
        &db,
        &[
            "app",
            "update",
            "Self Service",
            "--session-timeout",
            "90m",
            "--refresh-token-policy",
            "expire_after:5400s",
        ],
    );
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let id = admin(&db, &["app", "show", "Self Service"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let policies = format!("/lightning/setup/ConnectedApplication/policies?app={id}");
    let page = alice.get(&policies).await;
    assert!(
        page.body
            .contains("<option value=\"5400\" selected>1h 30m</option>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(
            "name=\"after_count\" type=\"text\" inputmode=\"numeric\" size=\"4\" value=\"90\""
        ),
        "{}",
        page.body
    );
    // Only Permitted Users changes; the rest is submitted as shown.
    let saved = alice
        .post(
            &policies,
            &form(&[
                ("csrf", &csrf_of(&page)),
                ("permitted_users", "admin_approved"),
                ("refresh_token_policy", "expire_after"),
                ("after_count", "90"),
                ("after_unit", "minutes"),
                ("timeout", "5400"),
            ]),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let before = admin(&db, &["app", "show", "Self Service"]);
    assert_eq!(before["permitted_users"], "admin_approved");
    assert_eq!(before["session_timeout_secs"], 5400);
    let policy = before["refresh_token_policy"].as_str().unwrap().to_owned();
    assert!(policy.starts_with("expire_after:1h"), "{policy}");
    // Another span is taken as typed.
    let page = alice.get(&policies).await;
    let saved = alice
        .post(
            &policies,
            &form(&[
                ("csrf", &csrf_of(&page)),
                ("permitted_users", "admin_approved"),
                ("refresh_token_policy", "expire_after"),
                ("after_count", "2"),
                ("after_unit", "days"),
                ("timeout", "5400"),
            ]),
        )
        .await;
    assert_eq!(saved.status, 303);
    assert_eq!(
        admin(&db, &["app", "show", "Self Service"])["refresh_token_policy"],
        "expire_after:2days"
    );
    s.stop().await;
}

#[tokio::test]
async fn token_exchange_and_asset_tokens_are_switched_on_in_setup() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let (st, own) = password_through(
        &s,
        (SELF_SERVICE_ID, SELF_SERVICE_SECRET),
        ALICE,
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(st, 200, "{own}");
    let access = own["access_token"].as_str().unwrap().to_owned();
    const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    const ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
    let exchange = [
        ("grant_type", GRANT),
        ("client_id", SELF_SERVICE_ID),
        ("client_secret", SELF_SERVICE_SECRET),
        ("subject_token", access.as_str()),
        ("subject_token_type", ACCESS),
    ];
    let asset = [
        ("grant_type", GRANT),
        ("subject_token", access.as_str()),
        ("subject_token_type", ACCESS),
    ];
    // Off until Setup switches them on.
    let (st, e) = s.token(&exchange).await;
    assert_error(
        st,
        &e,
        400,
        "invalid_grant",
        "token exchange flow is not enabled for the app",
    );
    let (st, e) = s.token(&asset).await;
    assert_error(
        st,
        &e,
        400,
        "invalid_grant",
        "asset tokens are not enabled for the app",
    );

    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let id = admin(&db, &["app", "show", "Self Service"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let edit = format!("/lightning/setup/ConnectedApplication/edit?app={id}");
    let page = alice.get(&edit).await;
    assert!(
        page.body
            .contains("<label for=\"token_exchange\">Enable Token Exchange Flow</label>")
    );
    let fields = |lifetime: &str| {
        form(&[
            ("csrf", &csrf_of(&page)),
            ("name", "Self Service"),
            ("contact_email", "admin@acme.test"),
            ("oauth_enabled", "on"),
            (
                "callback_urls",
                "https://app.example/callback\nmyapp://callback",
            ),
            ("digital_signatures", "on"),
            ("scope", "api"),
            ("scope", "refresh_token"),
            ("secret_web_server", "on"),
            ("secret_refresh", "on"),
            ("token_exchange", "on"),
            ("secret_token_exchange", "on"),
            ("asset_tokens", "on"),
            ("asset_token_lifetime", lifetime),
            ("asset_audiences", "https://devices.example\n"),
        ])
    };
    let refused = alice.post(&edit, &fields("ninety")).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused
            .body
            .contains("Enter a number of seconds from 1 to 86400."),
        "{}",
        refused.body
    );
    let (st, _) = s.token(&exchange).await;
    assert_eq!(st, 400, "a refused form changes nothing");
    let saved = alice.post(&edit, &fields("90")).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let manage = alice
        .get(&format!(
            "/lightning/setup/ConnectedApplication/page?app={id}"
        ))
        .await;
    let text = unescape(&manage.body);
    assert!(
        text.contains("<dd id=\"token-exchange\">Yes, for this org's own tokens (no handler)</dd>"),
        "{text}"
    );
    assert!(
        text.contains("Yes: valid for 1m 30s, for https://devices.example, signed with the org's keys (/id/keys)"),
        "{text}"
    );

    // In force at once (Alice's own token, for an app she approved).
    admin(&db, &["app", "approve-user", "Self Service", ALICE]);
    let (st, r) = s.token(&exchange).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["issued_token_type"], ACCESS);
    let (st, r) = s.token(&asset).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["expires_in"], 90);
    let shown = admin(&db, &["app", "show", "Self Service"]);
    assert_eq!(
        shown["token_exchange"]["asset_tokens"]["audiences"],
        json!(["https://devices.example"])
    );
}
