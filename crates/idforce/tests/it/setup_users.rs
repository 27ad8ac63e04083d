//! Setup's Manage Users over HTTP: New User and Edit (each error beside its field), a user's
//! page with Reset Password, Unlock and Freeze / Unfreeze taking effect on the wire at once,
//! deactivation, what an admin cannot do to themselves, and Reset My Security Token for any
//! user. Every refusal beside a control that passes.

use crate::browser::*;
use crate::helpers::*;

const USERS: &str = "/lightning/setup/ManageUsers/home";
const NEW: &str = "/lightning/setup/ManageUsers/new";
const RESET_TOKEN: &str = "/lightning/settings/personal/ResetApiToken/home";

fn user_page(db: &str, username: &str) -> String {
    let id = admin(db, &["user", "show", username])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    format!("/lightning/setup/ManageUsers/page?user={id}")
}

async fn password_grant(
    s: &TestServer,
    username: &str,
    password: &str,
) -> (u16, serde_json::Value) {
    s.token(&[
        ("grant_type", "password"),
        ("client_id", SELF_SERVICE_ID),
        ("client_secret", SELF_SERVICE_SECRET),
        ("username", username),
        ("password", password),
    ])
    .await
}

#[tokio::test]
async fn new_user_then_reset_password_freeze_unlock_and_deactivate() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let list = alice.get(USERS).await;
    assert!(list.body.contains(&format!("href=\"{NEW}\"")));
    let blank = alice.get(NEW).await;
    for label in [
        "<label for=\"first_name\">First Name</label>",
        "<label for=\"last_name\">Last Name</label>",
        "<label for=\"email\">Email</label>",
        "<label for=\"username\">Username</label>",
        "<label for=\"profile\">Profile</label>",
        "<label for=\"active\">Active</label>",
    ] {
        assert!(blank.body.contains(label), "{label}");
    }
    let csrf = csrf_of(&blank);
    // Bad fields: said beside each, kept as typed, nobody created.
    let bad = alice
        .post(
            NEW,
            &form(&[
                ("csrf", &csrf),
                ("first_name", "Jane"),
                ("email", "jane"),
                ("username", BOB),
                ("profile", "Standard User"),
                ("active", "on"),
            ]),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert_eq!(
        field_error(&bad, "last_name").as_deref(),
        Some("You must enter a value.")
    );
    assert_eq!(
        field_error(&bad, "email").as_deref(),
        Some("Enter an email address, like jane@example.com.")
    );
    assert_eq!(
        field_error(&bad, "username").as_deref(),
        Some("This username is taken: usernames are unique across every org.")
    );
    assert!(bad.body.contains("value=\"Jane\""));
    assert!(admin_refused(&db, &["user", "show", "jane@acme.test"]).contains("jane@acme.test"));
    // A forged form and Bob: refused.
    let jane = form(&[
        ("csrf", &csrf),
        ("first_name", "Jane"),
        ("last_name", "Doe"),
        ("email", "jane@acme.test"),
        ("username", "jane@acme.test"),
        ("profile", "Standard User"),
        ("federation_id", "00u-Jane"),
        ("active", "on"),
    ]);
    let mut forged = jane.clone();
    forged[0].1 = "forged".into();
    assert_eq!(alice.post(NEW, &forged).await.status, 403);
    let mut bob = logged_in(&s, BOB, BOB_PASSWORD).await;
    assert_eq!(bob.post(NEW, &jane).await.status, 403);

    // Created: her temporary password is shown once, and logs her in.
    let made = alice.post(NEW, &jane).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let password = code_of(&made, "temporary-password").expect("shown once");
    assert_eq!(made.headers["cache-control"], "no-store");
    let shown = admin(&db, &["user", "show", "jane@acme.test"]);
    assert_eq!(shown["profile"], "Standard User");
    assert_eq!(shown["last_name"], "Doe");
    assert_eq!(shown["federation_id"], "00u-Jane");
    let (st, body) = password_grant(&s, "jane@acme.test", &password).await;
    assert_eq!(st, 200, "{body}");
    let page_url = user_page(&db, "jane@acme.test");
    let page = alice.get(&page_url).await;
    assert_eq!(
        code_of(&page, "temporary-password"),
        None,
        "not shown again"
    );

    // Reset Password: the old one stops working, the new one works.
    let reset = alice
        .post(
            &page_url,
            &form(&[("csrf", &csrf_of(&page)), ("action", "reset_password")]),
        )
        .await;
    let fresh = code_of(&reset, "temporary-password").unwrap();
    assert_ne!(fresh, password);
    let (st, body) = password_grant(&s, "jane@acme.test", &password).await;
    assert_error(st, &body, 400, "invalid_grant", "authentication failure");
    assert_eq!(password_grant(&s, "jane@acme.test", &fresh).await.0, 200);

    // Locked out by wrong passwords; Unlock lets her in at once.
    for _ in 0..3 {
        password_grant(&s, "jane@acme.test", "wrong").await;
    }
    let (st, body) = password_grant(&s, "jane@acme.test", &fresh).await;
    assert_error(st, &body, 400, "invalid_grant", "authentication failure");
    let page = alice.get(&page_url).await;
    assert!(
        page.body.contains("<dd id=\"user-status\">Locked out</dd>"),
        "{}",
        page.body
    );
    let unlocked = alice
        .post(
            &page_url,
            &form(&[("csrf", &csrf_of(&page)), ("action", "unlock")]),
        )
        .await;
    assert!(unlocked.body.contains("jane@acme.test can log in again."));
    assert_eq!(password_grant(&s, "jane@acme.test", &fresh).await.0, 200);

    // Freeze: refused as a failed login; Unfreeze: back.
    let frozen = alice
        .post(
            &page_url,
            &form(&[("csrf", &csrf_of(&page)), ("action", "freeze")]),
        )
        .await;
    assert!(frozen.body.contains("<dd id=\"user-status\">Frozen</dd>"));
    let (st, body) = password_grant(&s, "jane@acme.test", &fresh).await;
    assert_error(st, &body, 400, "invalid_grant", "authentication failure");
    alice
        .post(
            &page_url,
            &form(&[("csrf", &csrf_of(&page)), ("action", "unfreeze")]),
        )
        .await;
    assert_eq!(password_grant(&s, "jane@acme.test", &fresh).await.0, 200);
    // Locked out again: Reset Password unlocks her too, as Salesforce's does.
    for _ in 0..3 {
        password_grant(&s, "jane@acme.test", "wrong").await;
    }
    let page = alice.get(&page_url).await;
    assert!(page.body.contains("<dd id=\"user-status\">Locked out</dd>"));
    let reset = alice
        .post(
            &page_url,
            &form(&[("csrf", &csrf_of(&page)), ("action", "reset_password")]),
        )
        .await;
    let fresh = code_of(&reset, "temporary-password").unwrap();
    assert_eq!(password_grant(&s, "jane@acme.test", &fresh).await.0, 200);

    // Edit: deactivate her; the wire says so.
    let edit_url = page_url.replace("/page?", "/edit?");
    let edit = alice.get(&edit_url).await;
    assert!(edit.body.contains("value=\"jane@acme.test\""));
    let mut inactive = jane.clone();
    inactive[0].1 = csrf_of(&edit);
    inactive.retain(|(k, _)| k != "active");
    let saved = alice.post(&edit_url, &inactive).await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (st, body) = password_grant(&s, "jane@acme.test", &fresh).await;
    assert_error(st, &body, 400, "invalid_grant", "inactive user");
    let trail = admin(&db, &["audit-trail"]);
    assert_eq!(trail[0]["user"], "alice@acme.test (Setup)");
    assert_eq!(trail[0]["section"], "Manage Users");
    assert_eq!(
        trail[0]["action"],
        "Changed user jane@acme.test: active true → false"
    );

    // Alice cannot deactivate herself, take away her own profile, or freeze herself.
    let me_url = user_page(&db, ALICE).replace("/page?", "/edit?");
    let me = alice.get(&me_url).await;
    let refused = alice
        .post(
            &me_url,
            &form(&[
                ("csrf", &csrf_of(&me)),
                ("first_name", "Alice"),
                ("last_name", "Example"),
                ("email", ALICE),
                ("username", ALICE),
                ("profile", "Standard User"),
            ]),
        )
        .await;
    assert_eq!(refused.status, 422);
    assert_eq!(
        field_error(&refused, "active").as_deref(),
        Some("You can't deactivate your own user.")
    );
    assert!(field_error(&refused, "profile").is_some());
    let mine = alice.get(&user_page(&db, ALICE)).await;
    assert!(!mine.body.contains("id=\"freeze\""));
    let refused = alice
        .post(
            &user_page(&db, ALICE),
            &form(&[("csrf", &csrf_of(&mine)), ("action", "freeze")]),
        )
        .await;
    assert_eq!(refused.status, 404);
    assert_eq!(admin(&db, &["user", "show", ALICE])["frozen"], false);
    // Another org's user: unknown here.
    let dave = user_page(&db, "dave@globex.test");
    assert_eq!(alice.get(&dave).await.status, 404);
    s.stop().await;
}

#[tokio::test]
async fn any_user_resets_their_own_security_token() {
    let s = TestServer::start().await;
    // Control: Bob's API login with his token works.
    let with_old = format!("{BOB_PASSWORD}{BOB_TOKEN}");
    assert_eq!(password_grant(&s, BOB, &with_old).await.0, 200);
    // A visitor is sent to log in first.
    let mut visitor = Browser::new(&s);
    let page = visitor.get(RESET_TOKEN).await;
    assert_eq!(page.status, 302);
    assert!(page.location.unwrap().contains("startURL="));

    let mut bob = logged_in(&s, BOB, BOB_PASSWORD).await;
    let home = bob.get("/").await;
    assert!(
        home.body.contains(&format!("href=\"{RESET_TOKEN}\"")),
        "{}",
        home.body
    );
    let page = bob.get(RESET_TOKEN).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let forged = bob.post(RESET_TOKEN, &form(&[("csrf", "forged")])).await;
    assert_eq!(forged.status, 403);
    assert_eq!(password_grant(&s, BOB, &with_old).await.0, 200, "unchanged");
    let done = bob
        .post(RESET_TOKEN, &form(&[("csrf", &csrf_of(&page))]))
        .await;
    let token = code_of(&done, "security-token").expect("shown once");
    let (st, body) = password_grant(&s, BOB, &with_old).await;
    assert_error(st, &body, 400, "invalid_grant", "authentication failure");
    let with_new = format!("{BOB_PASSWORD}{token}");
    assert_eq!(password_grant(&s, BOB, &with_new).await.0, 200);
    s.stop().await;
}

#[tokio::test]
async fn a_cloned_profile_may_use_the_sources_apps_until_its_access_changes() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let jwt = |sub: &str| {
        sign_jwt(&serde_json::json!({
            "iss": INTEGRATION_ID, "sub": sub, "aud": s.url, "exp": now_secs() + 180,
        }))
    };
    // Control: Bob (Standard User) may not use the admin-approved Integration app.
    let (st, body) = s.jwt_login(&jwt(BOB)).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );

    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let list = alice.get("/lightning/setup/EnhancedProfiles/home").await;
    assert!(
        list.body
            .contains("href=\"/lightning/setup/EnhancedProfiles/new\"")
    );
    let new = alice.get("/lightning/setup/EnhancedProfiles/new").await;
    assert!(
        new.body
            .contains("<label for=\"clone\">Existing Profile</label>")
    );
    assert!(
        new.body
            .contains("<label for=\"name\">Profile Name</label>")
    );
    let csrf = csrf_of(&new);
    // A name taken (in another case): refused beside the field.
    let taken = alice
        .post(
            "/lightning/setup/EnhancedProfiles/new",
            &form(&[
                ("csrf", &csrf),
                ("clone", "System Administrator"),
                ("name", "standard user"),
            ]),
        )
        .await;
    assert_eq!(taken.status, 422);
    assert_eq!(
        field_error(&taken, "name").as_deref(),
        Some("Your org has a profile with this name.")
    );
    let made = alice
        .post(
            "/lightning/setup/EnhancedProfiles/new",
            &form(&[
                ("csrf", &csrf),
                ("clone", "System Administrator"),
                ("name", "Integration Admins"),
            ]),
        )
        .await;
    assert_eq!(made.status, 303, "{}", made.body);
    let page_url = made.location.unwrap();
    let page = alice.get(&page_url).await;
    assert!(page.body.contains("The profile is created."));
    let app_id = admin(&db, &["app", "show", "Integration"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        page.body.contains(&format!(
            "id=\"app-{app_id}\" name=\"app\" value=\"{app_id}\" checked"
        )),
        "cloned access: {}",
        page.body
    );
    // Bob gets the profile (Edit User): the Integration app admits him now.
    let edit_url = user_page(&db, BOB).replace("/page?", "/edit?");
    let edit = alice.get(&edit_url).await;
    assert!(edit.body.contains("<option value=\"Integration Admins\">"));
    let saved = alice
        .post(
            &edit_url,
            &form(&[
                ("csrf", &csrf_of(&edit)),
                ("first_name", "Bob"),
                ("last_name", "Builder"),
                ("email", BOB),
                ("username", BOB),
                ("profile", "Integration Admins"),
                ("active", "on"),
            ]),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (st, body) = s.jwt_login(&jwt(BOB)).await;
    assert_eq!(st, 200, "{body}");
    // Connected App Access: nothing ticked, saved; he is refused again at once.
    let saved = alice
        .post(&page_url, &form(&[("csrf", &csrf_of(&page))]))
        .await;
    assert_eq!(saved.status, 303);
    let (st, body) = s.jwt_login(&jwt(BOB)).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );
    let trail = admin(&db, &["audit-trail", "--org", "Acme"]);
    assert_eq!(
        trail[0]["action"],
        "Changed the connected app access of profile \"Integration Admins\": given [], taken away [\"Integration\"]"
    );
    // Another org's profile: unknown here.
    let globex = admin(&db, &["profile", "list", "--org", "Globex"]);
    let other = format!(
        "/lightning/setup/EnhancedProfiles/page?profile={}",
        globex[0]["id"].as_str().unwrap()
    );
    assert_eq!(alice.get(&other).await.status, 404);
    s.stop().await;
}

/// Setup's profile page sets Login IP Ranges and Login Hours (a mistake shows the form again
/// with what is wrong, and saves nothing), and Edit Policies sets an app's IP Relaxation; the
/// wire follows both.
#[tokio::test]
async fn login_restrictions_and_ip_relaxation_through_setup() {
    use crate::soap_login::{postman_envelope, soap};
    const BOB_SOAP_PASSWORD: &str = "Summer2026!XYZ789TOKEN";
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let profiles = admin(&db, &["profile", "list", "--org", "Acme"]);
    let admins = profiles
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Standard User")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Control: Bob (Standard User) logs in by SOAP before any restriction.
    let (st, body) = soap(
        &s,
        "/services/Soap/u/60.0",
        postman_envelope(BOB, BOB_SOAP_PASSWORD),
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let page_url = format!("/lightning/setup/EnhancedProfiles/page?profile={admins}");
    let page = alice.get(&page_url).await;
    assert!(
        page.body.contains("Login IP Ranges and Login Hours"),
        "{}",
        page.body
    );
    let post = |csrf: String, ranges: &'static str, monday: &'static str| {
        let mut f = form(&[
            ("section", "restrictions"),
            ("profile", &admins),
            ("login_ip_ranges", ranges),
            ("restrict_hours", "1"),
            ("hours_monday", monday),
        ]);
        f.push(("csrf".into(), csrf));
        f
    };
    // A range that is not one: 422, the form as submitted, nothing saved.
    let bad = alice
        .post(
            "/lightning/setup/EnhancedProfiles/page",
            &post(csrf_of(&page), "10.0.0.9-10.0.0.1", "08:00-18:00"),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("ends before it starts"), "{}", bad.body);
    assert!(bad.body.contains("10.0.0.9-10.0.0.1"));
    let listed = admin(&db, &["profile", "list", "--org", "Acme"]);
    assert!(
        listed.to_string().contains("\"login_ip_ranges\":[]"),
        "{listed}"
    );
    // Control: good values are saved, audited, and shown again.
    let saved = alice
        .post(
            "/lightning/setup/EnhancedProfiles/page",
            &post(
                csrf_of(&page),
                "10.0.0.0-10.0.0.255\n2001:db8::1",
                "08:00-18:00",
            ),
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let again = alice.get(&page_url).await;
    assert!(
        again
            .body
            .contains("10.0.0.0-10.0.0.255\n2001:db8::1-2001:db8::1"),
        "{}",
        again.body
    );
    assert!(again.body.contains("value=\"08:00-18:00\""));
    let trail = admin(&db, &["audit-trail", "--org", "Acme"]);
    assert!(
        trail[0]["action"]
            .as_str()
            .unwrap()
            .starts_with("Changed the login restrictions of profile \"Standard User\""),
        "{trail}"
    );
    // Bob (Standard User) logs in from this test's address, outside the ranges (and, unless it
    // is Monday daytime in UTC, outside the hours): refused, where before it he was not.
    std::thread::sleep(idforce_store::DEFAULT_DIRECTORY_CACHE_TTL);
    let (st, body) = soap(
        &s,
        "/services/Soap/u/60.0",
        postman_envelope(BOB, BOB_SOAP_PASSWORD),
    )
    .await;
    assert_eq!(st, 500, "{body}");
    let code = element(&body, "sf:exceptionCode").unwrap_or_default();
    assert!(
        code == "LOGIN_DURING_RESTRICTED_DOMAIN" || code == "LOGIN_DURING_RESTRICTED_TIME",
        "{body}"
    );

    // Edit Policies: IP Relaxation.
    let app = admin(&db, &["app", "show", "Integration"]);
    let app_id = app["id"].as_str().unwrap();
    let policies = format!("/lightning/setup/ConnectedApplication/policies?app={app_id}");
    let form_page = alice.get(&policies).await;
    assert!(
        form_page
            .body
            .contains("Relax IP restrictions with second factor")
    );
    let mut posted = form(&[
        ("app", app_id),
        ("permitted_users", "admin_approved"),
        ("refresh_token_policy", "until_revoked"),
        ("timeout", "7200"),
        ("ip_relaxation", "bypass"),
    ]);
    posted.push(("csrf".into(), csrf_of(&form_page)));
    let r = alice
        .post("/lightning/setup/ConnectedApplication/policies", &posted)
        .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(
        admin(&db, &["app", "show", "Integration"])["ip_relaxation"],
        "bypass"
    );
    let manage = alice
        .get(&format!(
            "/lightning/setup/ConnectedApplication/page?app={app_id}"
        ))
        .await;
    assert!(
        manage
            .body
            .contains("<dd id=\"ip-relaxation\">Relax IP restrictions</dd>")
    );
    s.stop().await;
}
