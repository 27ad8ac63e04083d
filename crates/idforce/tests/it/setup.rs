//! Setup over HTTP: who may open it (a visitor logs in first and comes back; another profile
//! gets "Insufficient Privileges"), the home page's Setup link, and the Login History page of
//! the admin's own org with its CSV download and pages.

use crate::browser::*;
use crate::helpers::*;

const SETUP_HOME: &str = "/lightning/setup/SetupOneHome/home";
const LOGIN_HISTORY: &str = "/lightning/setup/OrgLoginHistory/home";

fn assert_insufficient(page: &Page) {
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body.contains("<h1>Insufficient Privileges</h1>"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_visitor_logs_in_first_and_lands_back_in_setup() {
    let s = TestServer::start().await;
    let mut b = Browser::new(&s);
    let first = b.get(LOGIN_HISTORY).await;
    assert_eq!(first.status, 302);
    let to_login = first.location.clone().unwrap();
    assert_eq!(
        to_login,
        "/?startURL=%2Flightning%2Fsetup%2FOrgLoginHistory%2Fhome"
    );
    let login = b.get(&to_login).await;
    assert!(login.is_login());
    let after = b.log_in(&login, ALICE, ALICE_PASSWORD).await;
    assert_eq!(after.status, 302);
    assert_eq!(
        after.location.as_deref(),
        Some(LOGIN_HISTORY),
        "back where they started"
    );
    let page = b.get(LOGIN_HISTORY).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<h1>Login History</h1>"));
    // The login that brought them here is the newest row.
    assert!(
        page.body.contains("UsernamePasswordUiLogin"),
        "{}",
        page.body
    );
    // Control: a start URL elsewhere is not followed.
    let mut other = Browser::new(&s);
    let login = other.get("/?startURL=https%3A%2F%2Fevil.example%2F").await;
    let after = other.log_in(&login, ALICE, ALICE_PASSWORD).await;
    assert_eq!(after.location.as_deref(), Some("/"));
    s.stop().await;
}

#[tokio::test]
async fn only_a_system_administrator_may_open_setup() {
    let s = TestServer::start().await;
    // Alice (System Administrator): the home page links Setup, and Setup opens.
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let home = alice.get("/").await;
    assert!(
        home.body.contains(&format!("href=\"{SETUP_HOME}\"")),
        "{}",
        home.body
    );
    let setup = alice.get(SETUP_HOME).await;
    assert_eq!(setup.status, 200);
    assert!(setup.body.contains(&format!("href=\"{LOGIN_HISTORY}\"")));
    assert!(setup.body.contains("Acme"));
    // Bob (Standard User): no link, and every Setup page refuses him.
    let mut bob = logged_in(&s, BOB, BOB_PASSWORD).await;
    let home = bob.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Signed in as bob@acme.test"));
    assert!(!home.body.contains(SETUP_HOME), "{}", home.body);
    assert_insufficient(&bob.get(SETUP_HOME).await);
    assert_insufficient(&bob.get(LOGIN_HISTORY).await);
    assert_insufficient(&bob.get(&format!("{LOGIN_HISTORY}?download=csv")).await);
    for path in [
        "/lightning/setup/ConnectedApplication/home",
        "/lightning/setup/ConnectedApplication/page",
        "/lightning/setup/ManageUsers/home",
        "/lightning/setup/EnhancedProfiles/home",
        "/lightning/setup/ConnectedAppsUsage/home",
    ] {
        assert_insufficient(&bob.get(path).await);
    }
    s.stop().await;
}

#[tokio::test]
async fn login_history_shows_the_admins_own_org_pages_and_downloads() {
    let s = TestServer::start().await;
    // Dave logs in to Globex; Bob fails to Acme 55 times (the later ones as a lockout).
    s.http
        .post(s.at("/services/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", GLOBEX_ID),
            ("client_secret", GLOBEX_SECRET),
            ("username", "dave@globex.test"),
            ("password", "Globex2026!"),
        ])
        .send()
        .await
        .unwrap();
    // Bob fails three times, then Alice logs in 52 times (refusals of one user are recorded
    // 20 a minute at most; successes all).
    for (user, password, times, status) in
        [(BOB, "wrong", 3, 400), (ALICE, ALICE_PASSWORD, 52, 200)]
    {
        for _ in 0..times {
            let (got, _) = s
                .token(&[
                    ("grant_type", "password"),
                    ("client_id", INTEGRATION_ID),
                    ("client_secret", INTEGRATION_SECRET),
                    ("username", user),
                    ("password", password),
                ])
                .await;
            assert_eq!(got, status);
        }
    }
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let first = alice.get(LOGIN_HISTORY).await;
    assert_eq!(first.status, 200);
    let rows = |p: &Page| p.body.matches("<tr><td>").count();
    assert_eq!(rows(&first), 50, "a page of 50");
    assert!(
        first.body.contains("UsernamePasswordUiLogin"),
        "the newest: Alice's own login"
    );
    assert!(
        !first.body.contains("dave@globex.test"),
        "another org's logins"
    );
    let older = first.body.split("id=\"older\"").next().unwrap();
    let href = older.rsplit("href=\"").next().unwrap();
    let href = crate::browser::unescape(&href[..href.find('"').unwrap()]);
    assert!(
        href.starts_with(&format!("{LOGIN_HISTORY}?before=")),
        "{href}"
    );
    let second = alice.get(&href).await;
    assert_eq!(
        rows(&second),
        6,
        "the rest: Bob's first failures and Alice's login"
    );
    assert!(second.body.contains("Invalid Password"));
    assert!(!second.body.contains("id=\"older\""));

    let csv = alice.get(&format!("{LOGIN_HISTORY}?download=csv")).await;
    assert_eq!(csv.status, 200);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 57, "a header and every Acme login");
    assert!(lines[0].starts_with("\"Login Time\",\"Username\""));
    assert!(!csv.body.contains("globex"));
    s.stop().await;
}

const CONNECTED_APPS: &str = "/lightning/setup/ConnectedApplication/home";

#[tokio::test]
async fn manage_connected_apps_lists_the_orgs_apps_with_salesforces_labels() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let list = alice.get(CONNECTED_APPS).await;
    assert_eq!(list.status, 200, "{}", list.body);
    for name in [
        "Integration",
        "Self Service",
        "Rotating",
        "Auditor",
        "No Run As",
    ] {
        assert!(list.body.contains(&format!("<td>{name}</td>")), "{name}");
    }
    assert!(!list.body.contains("Globex App"), "another org's app");
    assert!(list.body.contains(INTEGRATION_ID));

    // Manage: the Integration app, as the config made it.
    let integration = admin(&db, &["app", "show", "Integration"]);
    let id = integration["id"].as_str().unwrap();
    let href = format!("/lightning/setup/ConnectedApplication/page?app={id}");
    assert!(
        list.body.contains(&href.replace('&', "&amp;")),
        "{}",
        list.body
    );
    let page = alice.get(&href).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = crate::browser::unescape(&page.body);
    for text in [
        "<h1>Integration</h1>",
        &format!("<code id=\"consumer-key\">{INTEGRATION_ID}</code>"),
        "https://login.salesforce.com/oauth2/callback",
        "Manage user data via APIs (api)",
        "Perform requests at any time (refresh_token, offline_access)",
        "Access unique user identifiers (openid)",
        "Admin approved users are pre-authorized",
        "Refresh token is valid until revoked",
        "Yes, run as integration@acme.test",
        "<li>System Administrator</li>",
        "<li>integration@acme.test</li>",
        "Yes (SHA-256 ",
        "2h",
    ] {
        assert!(body.contains(text), "{text} missing: {body}");
    }
    // Self Service: all users, no run-as, no secret requirement changes.
    let self_service = admin(&db, &["app", "show", "Self Service"]);
    let page = alice
        .get(&format!(
            "/lightning/setup/ConnectedApplication/page?app={}",
            self_service["id"].as_str().unwrap()
        ))
        .await;
    assert!(page.body.contains("All users may self-authorize"));
    assert!(page.body.contains("None pre-authorized."));

    // Another org's app, a malformed id, no id: not found, and nothing of it shown.
    let globex = admin(&db, &["app", "show", "Globex App"]);
    for query in [
        format!("?app={}", globex["id"].as_str().unwrap()),
        "?app=not-an-id".to_owned(),
        String::new(),
    ] {
        let page = alice
            .get(&format!(
                "/lightning/setup/ConnectedApplication/page{query}"
            ))
            .await;
        assert_eq!(page.status, 404, "{query}");
        assert!(page.body.contains("Data Not Available"));
        assert!(!page.body.contains(GLOBEX_ID));
    }
    // Bob: neither page.
    let mut bob = logged_in(&s, BOB, BOB_PASSWORD).await;
    assert_insufficient(&bob.get(CONNECTED_APPS).await);
    assert_insufficient(&bob.get(&href).await);
    s.stop().await;
}

#[tokio::test]
async fn users_and_profiles_list_the_orgs_own() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    for _ in 0..3 {
        s.token(&[
            ("grant_type", "password"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            ("username", BOB),
            ("password", "wrong"),
        ])
        .await;
    }
    admin(&db, &["user", "freeze", "integration@acme.test"]);
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let users = alice.get("/lightning/setup/ManageUsers/home").await;
    assert_eq!(users.status, 200, "{}", users.body);
    let row = |username: &str| {
        let start = users.body.find(&format!("<td>{username}</td>")).unwrap();
        let end = users.body[start..].find("</tr>").unwrap() + start;
        users.body[start..end].to_owned()
    };
    assert!(row(ALICE).contains("<td>System Administrator</td><td>Yes</td><td></td>"));
    assert!(
        row(BOB).contains("<td>Standard User</td><td>Yes</td><td>Locked out</td>"),
        "{}",
        row(BOB)
    );
    assert!(row("carol@acme.test").contains("<td>No</td>"));
    assert!(row("integration@acme.test").contains("<td>Frozen</td>"));
    assert!(users.body.contains(">Alice Example</a></td>"));
    assert!(!users.body.contains("dave@globex.test"));

    let profiles = alice.get("/lightning/setup/EnhancedProfiles/home").await;
    assert_eq!(profiles.status, 200);
    assert!(
        profiles
            .body
            .contains(">System Administrator</a></td><td>2</td><td>Integration</td>"),
        "{}",
        profiles.body
    );
    assert!(
        profiles
            .body
            .contains(">Standard User</a></td><td>1</td><td></td>")
    );
    assert!(profiles.body.contains(">API Only</a></td><td>1</td>"));

    // Each user's own Login History, from their row.
    let bob_row = row(BOB);
    let href = bob_row
        .split("href=\"")
        .find(|h| h.starts_with("/lightning/setup/OrgLoginHistory"))
        .unwrap();
    let href = crate::browser::unescape(&href[..href.find('"').unwrap()]);
    let history = alice.get(&href).await;
    assert_eq!(history.status, 200, "{href}");
    assert!(
        history
            .body
            .contains("<h1>Login History: bob@acme.test</h1>")
    );
    assert_eq!(
        history.body.matches("<tr><td>").count(),
        3,
        "Bob's three refusals only"
    );
    assert!(!history.body.contains("<td>alice@acme.test</td>"));
    let csv = alice.get(&format!("{href}&download=csv")).await;
    assert_eq!(csv.body.lines().count(), 4, "{}", csv.body);
    // Control: every user's page has Alice's login too.
    let everyone = alice.get(LOGIN_HISTORY).await;
    assert!(everyone.body.contains("<td>alice@acme.test</td>"));
    // Another org's user, or no user at all: not found.
    let dave = admin(&db, &["user", "show", "dave@globex.test"]);
    for id in [dave["id"].as_str().unwrap(), "nobody"] {
        let page = alice.get(&format!("{LOGIN_HISTORY}?user={id}")).await;
        assert_eq!(page.status, 404, "{id}");
        assert!(!page.body.contains("dave@globex.test"));
    }

    let mut bob_admin_check = Browser::new(&s);
    let page = bob_admin_check
        .get("/lightning/setup/ManageUsers/home")
        .await;
    assert_eq!(page.status, 302, "a visitor is sent to log in");
    s.stop().await;
}

const OAUTH_USAGE: &str = "/lightning/setup/ConnectedAppsUsage/home";

async fn refresh(s: &TestServer, token: &str) -> (u16, serde_json::Value) {
    s.token(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", SELF_SERVICE_ID),
        ("client_secret", SELF_SERVICE_SECRET),
    ])
    .await
}

#[tokio::test]
async fn oauth_usage_counts_token_holders_and_blocks_an_app() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    // Alice approves Self Service and holds a refresh token of it.
    let mut alice = logged_in(&s, ALICE, ALICE_PASSWORD).await;
    let url = crate::browser::authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[]);
    let code = alice.approved_code(&url, ALICE, ALICE_PASSWORD).await;
    let (st, tokens) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("redirect_uri", SELF_SERVICE_CALLBACK),
        ])
        .await;
    assert_eq!(st, 200, "{tokens}");
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();

    let page = alice.get(OAUTH_USAGE).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(">Self Service</a></td><td>1</td><td>Active</td>"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(">Integration</a></td><td>0</td><td>Active</td>")
    );
    let csrf = csrf_of(&page);
    let app_id = admin(&db, &["app", "show", "Self Service"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let form = |csrf: &str, action: &str, app: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("app".to_owned(), app.to_owned()),
            ("action".to_owned(), action.to_owned()),
        ]
    };

    // Without the page's CSRF token: refused, nothing changed.
    let forged = alice
        .post(OAUTH_USAGE, &form("forged", "block", &app_id))
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!(refresh(&s, &refresh_token).await.0, 200, "still usable");
    // Another org's app: as unknown as a missing one.
    let globex_id = admin(&db, &["app", "show", "Globex App"])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = alice
        .post(OAUTH_USAGE, &form(&csrf, "block", &globex_id))
        .await;
    assert_eq!(other.status, 404);
    assert_eq!(admin(&db, &["app", "show", "Globex App"])["blocked"], false);
    // Bob cannot.
    let mut bob = logged_in(&s, BOB, BOB_PASSWORD).await;
    assert_insufficient(&bob.post(OAUTH_USAGE, &form(&csrf, "block", &app_id)).await);

    // Block: back to the page, which says so; the app's tokens are ended and new ones refused.
    let done = alice
        .post(OAUTH_USAGE, &form(&csrf, "block", &app_id))
        .await;
    assert_eq!(done.status, 303);
    let page = alice.get(done.location.as_deref().unwrap()).await;
    assert!(page.body.contains("Blocked Self Service"), "{}", page.body);
    assert!(
        page.body
            .contains(">Self Service</a></td><td>0</td><td>Blocked</td>")
    );
    let (st, body) = refresh(&s, &refresh_token).await;
    assert_error(
        st,
        &body,
        400,
        "OAUTH_APP_BLOCKED",
        "this app is blocked by admin",
    );
    let trail = admin(&db, &["audit-trail"]);
    assert_eq!(trail[0]["user"], "alice@acme.test (Setup)");
    assert_eq!(trail[0]["section"], "Connected Apps OAuth Usage");
    assert_eq!(trail[0]["action"], "Blocked connected app \"Self Service\"");

    // Unblock: the app works again, the ended tokens stay ended.
    let done = alice
        .post(OAUTH_USAGE, &form(&csrf, "unblock", &app_id))
        .await;
    assert_eq!(done.status, 303);
    let page = alice.get(done.location.as_deref().unwrap()).await;
    assert!(page.body.contains("Unblocked Self Service."));
    let (st, body) = refresh(&s, &refresh_token).await;
    assert_error(
        st,
        &body,
        400,
        "invalid_grant",
        "expired access/refresh token",
    );
    s.stop().await;
}
