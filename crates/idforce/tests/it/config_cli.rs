//! Config seeding (idempotent, keeps generated values), demo data, and the admin commands.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn config_is_applied_idempotently_and_generated_values_are_kept() {
    let config = format!("{CONFIG}\n[[org.app]]\nname = \"Generated\"\nscopes = [\"api\"]\n");
    let s = TestServer::start_with(&config, |_| {}).await;
    let generated = s.app.as_ref().unwrap().generated.clone();
    let line = generated
        .iter()
        .find(|l| l.contains("\"Generated\""))
        .expect("secret shown once");
    let words: Vec<&str> = line.split_whitespace().collect();
    let client_id = words[words.iter().position(|w| *w == "client_id").unwrap() + 1].to_owned();
    let secret = words[words.iter().position(|w| *w == "client_secret").unwrap() + 1].to_owned();
    let db = database_url(s.dir.path());
    let before = admin(&db, &["app", "list"]);
    let users_before = admin(&db, &["user", "list"]);

    let dir = s.stop().await;
    let s = TestServer::start_in(dir, Some(&config), |_| {}).await;
    assert!(
        s.app.as_ref().unwrap().generated.is_empty(),
        "nothing new generated on restart"
    );
    assert_eq!(admin(&db, &["app", "list"]), before);
    assert_eq!(admin(&db, &["user", "list"]), users_before);
    // The generated secret still works.
    let (st, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(st, 200, "{body}");
    // Org ids given in the file are kept; others are minted with a checksum-valid 18-char form.
    let orgs = admin(&db, &["org", "list"]);
    assert_eq!(orgs[0]["id"], "00D000000000001EAA");
    assert_eq!(orgs[1]["name"], "Globex");
}

#[tokio::test]
async fn config_changes_update_what_they_name() {
    let s = TestServer::start().await;
    let dir = s.stop().await;
    let changed = CONFIG.replace("password = \"Winter2026!\"", "password = \"Spring2027!\"");
    std::fs::write(dir.path().join("idforce.toml"), &changed).unwrap();
    let s = TestServer::start_in(dir, Some(&changed), |_| {}).await;
    // The server is ready before the new password's Argon2 hash is stored; a login at once
    // must still see only the new password.
    let (st, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .await;
    assert_eq!(st, 400, "the old password still works: {body}");
    s.password_login(ALICE, "Spring2027!").await;
}

#[tokio::test]
async fn bad_config_is_refused_with_a_reason() {
    let dir = workdir("[server]\nlisten = \"127.0.0.1:0\"\ntypo_key = 1\n");
    let out = idforce()
        .current_dir(dir.path())
        .args(["--config", "idforce.toml", "serve"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("typo_key"), "{err}");

    let dir = workdir("[[org]]\nname = \"A\"\nid = \"001000000000001\"\n");
    let out = idforce()
        .current_dir(dir.path())
        .args([
            "--config",
            "idforce.toml",
            "--database",
            &database_url(dir.path()),
            "serve",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an org id"));
}

#[tokio::test]
async fn an_empty_store_gets_demo_data_that_works() {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let s = TestServer::start_in(dir, None, |_| {}).await;
    let (user, password, client_id, secret) = s
        .app
        .as_ref()
        .unwrap()
        .demo_secret
        .clone()
        .expect("demo seeded");
    let (st, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("username", &user),
            ("password", &password),
        ])
        .await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = s
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(st, 200, "{body}");
    let db = database_url(s.dir.path());
    let cli = admin(&db, &["app", "show", "PlatformCLI"]);
    assert_eq!(
        cli["callback_urls"],
        serde_json::json!(["http://localhost:1717/OauthRedirect"])
    );
    assert_eq!(cli["require_secret_for_web_server_flow"], false);
    // Started again, the store is not empty: no second demo.
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, None, |_| {}).await;
    assert!(s.app.as_ref().unwrap().demo_secret.is_none());
}

#[test]
fn admin_commands_create_and_show() {
    let dir = tempfile::tempdir().unwrap();
    let db = database_url(dir.path());
    let org = admin(&db, &["org", "create", "--name", "Initech"]);
    assert_eq!(org["id"].as_str().unwrap().len(), 18);
    let user = admin(
        &db,
        &[
            "user",
            "create",
            "--org",
            "Initech",
            "--username",
            "peter@initech.test",
            "--password",
            "Tps2026!",
            "--profile",
            "System Administrator",
        ],
    );
    assert!(user["id"].as_str().unwrap().starts_with("005"));
    assert!(
        user.get("password").is_none(),
        "a given password is not echoed"
    );
    let generated = admin(
        &db,
        &[
            "user",
            "create",
            "--org",
            org["id"].as_str().unwrap(),
            "--username",
            "milton@initech.test",
        ],
    );
    assert!(generated["password"].as_str().unwrap().len() >= 12);
    let app = admin(
        &db,
        &[
            "app",
            "create",
            "--org",
            "Initech",
            "--name",
            "Stapler",
            "--scopes",
            "api refresh_token",
            "--callback-url",
            "http://localhost/cb",
            "--certificate",
            fixture("jwt.crt").to_str().unwrap(),
        ],
    );
    assert_eq!(app["client_secret"].as_str().unwrap().len(), 64);
    assert_eq!(app["has_certificate"], true);
    let rotated = admin(&db, &["app", "rotate-secret", "Stapler"]);
    assert_ne!(rotated["client_secret"], app["client_secret"]);
    let shown = admin(&db, &["app", "show", app["client_id"].as_str().unwrap()]);
    assert_eq!(shown["name"], "Stapler");
    assert!(
        !shown
            .to_string()
            .contains(rotated["client_secret"].as_str().unwrap())
    );
    admin(
        &db,
        &[
            "user",
            "set-password",
            "peter@initech.test",
            "--password",
            "New2026!",
        ],
    );
    let listed: Value = admin(&db, &["user", "list", "--org", "Initech"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);

    // Errors are reported, not panicked.
    let out = idforce()
        .args(["--database", &db, "user", "show", "nobody@x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user"));
    let out = idforce()
        .args(["--database", &db, "org", "create", "--name", "Initech"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `idforce export` from SQLite and `idforce import` into PostgreSQL (or, without one, into
/// another SQLite file): users keep their passwords, apps their secrets, clients their
/// refresh tokens, and the JWKS its keys.
#[tokio::test]
async fn export_and_import_move_a_whole_store() {
    let s = TestServer::start().await;
    let mut b = crate::browser::Browser::new(&s);
    let page = b
        .authorize(
            &crate::browser::authorize_url(SELF_SERVICE_ID, SELF_SERVICE_CALLBACK, &[]),
            ALICE,
            ALICE_PASSWORD,
        )
        .await;
    let page = b.decide(&page, true).await;
    let code = page.redirect_params()["code"].clone();
    let (_, t) = s
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("redirect_uri", SELF_SERVICE_CALLBACK),
        ])
        .await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let jwks: Value = s
        .http
        .get(s.at("/id/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let source = database_url(s.dir.path());
    let _source_dir = s.stop().await;

    let target_dir = tempfile::tempdir().unwrap();
    let target = match idforce_store::testing::fresh_postgres_schema().await {
        Ok(url) => url,
        Err(why) if idforce_store::testing::strict() => panic!("{why}"),
        Err(why) => {
            eprintln!("PostgreSQL unavailable ({why}); importing into SQLite instead");
            database_url(target_dir.path())
        }
    };
    std::fs::write(target_dir.path().join(".database_url"), &target).unwrap();
    // The export is sealed under the source's system secret: the target is given the same
    // (and the server that starts on it finds it there).
    let source_secret = secret_file(_source_dir.path())
        .unwrap_or_else(|| _source_dir.path().join("idforce.secret"));
    let secret = target_dir.path().join("system.secret");
    std::fs::copy(&source_secret, &secret).unwrap();
    let with_secret = |db: &str, args: &[&str]| {
        let out = idforce()
            .args(["--database", db, "--json", "--secret-file"])
            .arg(&secret)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let file = target_dir.path().join("export.json");
    let out = idforce()
        .arg("--secret-file")
        .arg(&source_secret)
        .args([
            "--database",
            &source,
            "export",
            "--refresh-tokens",
            "--output",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains(SELF_SERVICE_SECRET),
        "a client secret in the clear"
    );
    // Without the secret that sealed it, the import is refused and names that secret.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = idforce()
        .args(["--database", &database_url(elsewhere.path()), "import"])
        .arg(&file)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let needed = doc["sealed_with"].as_str().unwrap();
    assert!(
        said.contains(&format!("fingerprint {needed} sealed")),
        "{said}"
    );

    let written = with_secret(&target, &["import", file.to_str().unwrap()]);
    assert_eq!(
        (
            written["users"].as_u64(),
            written["apps"].as_u64(),
            written["refresh_tokens"].as_u64()
        ),
        (Some(5), Some(6), Some(1)),
        "{written}"
    );
    // The profiles moved with their ids: Acme's three and Globex's one.
    assert_eq!(written["profiles"].as_u64(), Some(4), "{written}");
    let exported: Vec<&str> = doc["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    let imported = with_secret(&target, &["profile", "list"]);
    for p in imported.as_array().unwrap() {
        let id15 = &p["id"].as_str().unwrap()[..15];
        assert!(exported.contains(&id15), "{p} kept its id");
    }
    // Idempotent.
    with_secret(&target, &["import", file.to_str().unwrap()]);
    // The secrets moved sealed, and open on the other side.
    let shown = with_secret(&target, &["app", "show", "Self Service", "--reveal-secret"]);
    assert_eq!(shown["client_secret"], SELF_SERVICE_SECRET);

    let moved = TestServer::start_in(std::sync::Arc::new(target_dir), None, |_| {}).await;
    assert!(
        moved.app.as_ref().unwrap().demo_secret.is_none(),
        "not an empty store"
    );
    moved.password_login(ALICE, ALICE_PASSWORD).await;
    let (st, r) = moved
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("refresh_token", &rt),
        ])
        .await;
    assert_eq!(st, 200, "{r}");
    let moved_jwks: Value = moved
        .http
        .get(moved.at("/id/keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(moved_jwks, jwks);
    // New ids do not collide with imported ones.
    let created = with_secret(
        &target,
        &[
            "user",
            "create",
            "--org",
            "Acme",
            "--username",
            "new@acme.test",
            "--password",
            "Pw2026!x",
        ],
    );
    assert!(created["id"].as_str().unwrap().starts_with("005"));

    // Into a store that already holds other data under another key: refused.
    let other = tempfile::tempdir().unwrap();
    let other_db = database_url(other.path());
    with_secret(&other_db, &["org", "create", "--name", "Elsewhere"]);
    let out = idforce()
        .args(["--database", &other_db, "--secret-file"])
        .arg(&secret)
        .args(["import", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("another hashing key"));
}

/// What a newcomer gets wrong at start is refused at once, saying what and what to do.
#[test]
fn start_up_mistakes_are_refused_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let serve = |args: &[&str]| {
        let started = std::time::Instant::now();
        let out = idforce()
            .current_dir(dir.path())
            .env("IDFORCE_SECRET", "0123456789abcdef0123456789")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} started");
        (
            String::from_utf8_lossy(&out.stderr).into_owned(),
            started.elapsed(),
        )
    };
    let (said, _) = serve(&["--public-url", "127.0.0.1:18322"]);
    assert!(
        said.contains("--public-url")
            && said.contains("127.0.0.1:18322")
            && said.contains("http://"),
        "{said}"
    );
    let (said, _) = serve(&["--database", "sqlite://nodir/x.db?mode=rwc"]);
    assert!(
        said.contains("its directory nodir does not exist"),
        "{said}"
    );
    let (said, _) = serve(&["--database", "sqlite://rel.db"]);
    assert!(said.contains("?mode=rwc creates one"), "{said}");
    // A PostgreSQL server that is not there: named, with the reason, at once.
    let (said, took) = serve(&["--database", "postgres://postgres@127.0.0.1:1/idforce"]);
    assert!(
        said.contains("PostgreSQL at 127.0.0.1:1") && said.contains("Connection refused"),
        "{said}"
    );
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
    let (said, _) = serve(&["--tls-cert", "nope.crt", "--tls-key", "nope.key"]);
    assert!(
        said.contains("TLS certificate (--tls-cert, [server] tls_cert) nope.crt: no such file"),
        "{said}"
    );
    let out = idforce()
        .current_dir(dir.path())
        .args(["serve", "--listen", "nonsense"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("--listen \"nonsense\": expected host:port"),
        "{said}"
    );
    // Refused flags leave no store behind: they are checked before it is opened.
    assert!(
        !dir.path().join("idforce.db").exists(),
        "a refused start made a store"
    );
    // Config values: the file, the line, the value and what is expected.
    for (config, expected) in [
        (
            "[server]\nlog_format = \"xml\"\n",
            "bad.toml line 2: [server] log_format = \"xml\": expected \"text\" or \"json\"",
        ),
        (
            "[server]\nlockout_attempts = 0\n",
            "bad.toml line 2: [server] lockout_attempts = 0: must be at least 1",
        ),
        (
            "[[org]]\nname = \"A\"\n\n[[org.app]]\nname = \"X\"\ncallback_urls = [\"not a url\"]\n",
            "bad.toml line 5: app \"X\": callback_urls: \"not a url\" is not an absolute URL",
        ),
        (
            "[[org]]\nname = \"A\"\n\n[[org.app]]\nname = \"X\"\npermitted_users = \"everyone\"\n",
            "bad.toml line 5: app \"X\": permitted_users must be all_users or admin_approved, not \"everyone\"",
        ),
    ] {
        // A directory of its own: a seeding mistake is found in a store already opened.
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("bad.toml"), config).unwrap();
        let out = idforce()
            .current_dir(elsewhere.path())
            .args(["serve", "--listen", "127.0.0.1:0", "--config", "bad.toml"])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(said.contains(expected), "{said}");
    }

    // The control: the same directory, a sound start.
    let db = database_url(dir.path());
    let p = spawn_process(dir.path(), &["--database", &db], &[]);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(p.finish().0.success());
    // A restart says how to get the credentials back.
    let mut restarted = idforce()
        .current_dir(dir.path())
        .args(["--database", &db, "serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = restarted.stdout.take().unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
    let mut banner = String::new();
    for line in lines.by_ref().take(6) {
        banner.push_str(&line.unwrap());
        banner.push('\n');
    }
    assert!(
        banner.contains("Existing store. Credentials again")
            && banner.contains("app show \"NAME\" --reveal-secret")
            && banner.contains("user set-password USERNAME"),
        "{banner}"
    );
    restarted.kill().unwrap();
    restarted.wait().unwrap();

    // Booleans in the environment read as people write them.
    for yes in ["1", "true", "yes"] {
        let out = idforce()
            .env("IDFORCE_JSON", yes)
            .args(["--database", &db, "org", "list"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let listed: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert!(listed.is_array());
    }
}

/// A global flag given to a command that does not use it is refused, not ignored; its
/// environment twin (set once for every command) is not; the global form keeps working.
#[test]
fn commands_refuse_flags_they_do_not_use() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut cmd = idforce();
        cmd.current_dir(dir.path()).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = run(&["serve", "--json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("serve does not use --json"), "{said}");
    let login = [
        "login",
        "password",
        "--login-url",
        "http://127.0.0.1:9",
        "--client-id",
        "x",
        "--username",
        "u",
        "--password",
        "p",
    ];
    let out = run(
        &[&["--database", "sqlite://x.db"][..], &login[..]].concat(),
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("do not use --database"), "{said}");
    // The environment twin is not refused: the login goes ahead (and fails to connect).
    let out = run(&login, &[("IDFORCE_DATABASE_URL", "sqlite://x.db")]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("do not use"), "{said}");
    // The global form, before or after the command, for a command that uses it.
    let db = database_url(dir.path());
    for args in [
        vec!["--database", db.as_str(), "--json", "org", "list"],
        vec!["org", "list", "--database", db.as_str(), "--json"],
    ] {
        let out = run(&args, &[]);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(serde_json::from_slice::<Value>(&out.stdout).is_ok());
    }
}

/// Profiles are things: made when a user or an app names them or when `[[org.profile]]` does,
/// listed with their users and the apps that admit them; a clone gets the connected-app access
/// of its source, and a user of the clone is then admitted by those apps on the wire.
#[tokio::test]
async fn profiles_are_made_when_named_and_cloned_with_their_app_access() {
    let config = CONFIG.replace(
        "[[org]]\nname = \"Acme\"\nid = \"00D000000000001\"\n",
        "[[org]]\nname = \"Acme\"\nid = \"00D000000000001\"\n\n[[org.profile]]\nname = \"Read Only\"\n",
    );
    assert_ne!(config, CONFIG, "the config names a profile");
    let s = TestServer::start_with(&config, |_| {}).await;
    let db = database_url(s.dir.path());
    let listed = admin(&db, &["profile", "list", "--org", "Acme"]);
    let by_name = |list: &Value, name: &str| -> Value {
        list.as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no profile {name} in {list}"))
            .clone()
    };
    let admin_profile = by_name(&listed, "System Administrator");
    assert!(
        admin_profile["id"].as_str().unwrap().starts_with("00e"),
        "{admin_profile}"
    );
    assert_eq!(
        admin_profile["users"], 2,
        "alice and carol (inactive): {admin_profile}"
    );
    assert_eq!(admin_profile["apps"], json!(["Integration"]));
    assert_eq!(by_name(&listed, "Read Only")["users"], 0);
    assert_eq!(by_name(&listed, "Standard User")["users"], 1);
    assert_eq!(by_name(&listed, "Standard User")["apps"], json!([]));
    // Another org's profile of the same name is its own.
    let everywhere = admin(&db, &["profile", "list"]);
    let admins = everywhere
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == "System Administrator")
        .count();
    assert_eq!(admins, 2, "Acme's and Globex's");

    // Control: a user of another profile is not admitted by the admin-approved app.
    let claims = |sub: &str| json!({ "iss": INTEGRATION_ID, "sub": sub, "aud": s.url, "exp": now_secs() + 60 });
    let (status, body) = s.jwt_login(&sign_jwt(&claims(BOB))).await;
    assert_error(
        status,
        &body,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );

    // A clone of System Administrator, given to bob: the app admits him.
    let cloned = admin(
        &db,
        &[
            "profile",
            "create",
            "--org",
            "Acme",
            "--name",
            "Custom Admin",
            "--clone",
            "System Administrator",
        ],
    );
    assert_eq!(cloned["apps"], json!(["Integration"]));
    assert_eq!(cloned["users"], 0);
    let said = admin_refused(
        &db,
        &[
            "profile",
            "create",
            "--org",
            "Acme",
            "--name",
            "custom admin",
        ],
    );
    assert!(
        said.contains("has a profile named \"custom admin\""),
        "{said}"
    );
    admin_seen(
        &db,
        &[
            "user",
            "create",
            "--org",
            "Acme",
            "--username",
            "erin@acme.test",
            "--password",
            "Spring2026!",
            "--profile",
            "Custom Admin",
        ],
    );
    let (status, body) = s.jwt_login(&sign_jwt(&claims("erin@acme.test"))).await;
    assert_eq!(status, 200, "{body}");
    let listed = admin(&db, &["profile", "list", "--org", "Acme"]);
    assert_eq!(by_name(&listed, "Custom Admin")["users"], 1);
}

/// `app update` and the `user` commands change what the wire answers, check values as the
/// config does, and a later start with a config keeps what the config does not name.
#[tokio::test]
async fn app_and_user_updates_take_effect_on_the_wire() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let fails = |args: &[&str]| admin_refused(&db, args);
    let claims = |sub: &str| json!({ "iss": INTEGRATION_ID, "sub": sub, "aud": s.url, "exp": now_secs() + 60 });
    // Control before: alice (System Administrator) is admitted, bob (Standard User) is not.
    assert_eq!(s.jwt_login(&sign_jwt(&claims(ALICE))).await.0, 200);
    assert_eq!(s.jwt_login(&sign_jwt(&claims(BOB))).await.0, 400);

    let updated = admin_seen(
        &db,
        &[
            "app",
            "update",
            "Integration",
            "--profile",
            "Standard User",
            "--session-timeout",
            "30m",
            "--callback-url",
            "https://new.example/cb",
            "--require-pkce",
            "true",
        ],
    );
    assert_eq!(updated["profiles"], json!(["Standard User"]));
    assert_eq!(updated["session_timeout_secs"], 1800);
    assert_eq!(updated["callback_urls"], json!(["https://new.example/cb"]));
    assert_eq!(updated["require_pkce"], true);
    assert_eq!(
        updated["permitted_users"], "admin_approved",
        "not named: kept"
    );
    let (status, body) = s.jwt_login(&sign_jwt(&claims(BOB))).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = s.jwt_login(&sign_jwt(&claims(ALICE))).await;
    assert_error(
        status,
        &body,
        400,
        "invalid_app_access",
        "user is not admin approved to access this app",
    );

    // Values are checked as the config checks them; a refused update changes nothing.
    let said = fails(&[
        "app",
        "update",
        "Integration",
        "--refresh-token-policy",
        "sometimes",
    ]);
    assert!(
        said.contains("refresh_token_policy \"sometimes\" is not until_revoked"),
        "{said}"
    );
    let said = fails(&[
        "app",
        "update",
        "Integration",
        "--callback-url",
        "not a url",
    ]);
    assert!(
        said.contains("\"not a url\" is not an absolute URL"),
        "{said}"
    );
    let said = fails(&["app", "update", "Integration", "--id-token-lifetime", "13h"]);
    assert!(
        said.contains("id_token_lifetime must be 1 to 720 minutes"),
        "{said}"
    );
    let said = fails(&["app", "update", "Integration", "--require-pkce", "maybe"]);
    assert!(said.contains("--require-pkce"), "{said}");
    let shown = admin(&db, &["app", "show", "Integration"]);
    assert_eq!(shown["callback_urls"], json!(["https://new.example/cb"]));

    // Users: a new profile, a new security token (the old one stops working), reactivation.
    let bob = admin(
        &db,
        &[
            "user",
            "update",
            BOB,
            "--first-name",
            "Robert",
            "--profile",
            "standard user",
        ],
    );
    assert_eq!(bob["first_name"], "Robert");
    assert_eq!(bob["profile"], "Standard User", "the org's spelling");
    let old = format!("{BOB_PASSWORD}{BOB_TOKEN}");
    assert_eq!(s.password_login(BOB, &old).await["token_type"], "Bearer");
    let reset = admin_seen(&db, &["user", "reset-security-token", BOB]);
    let fresh = reset["security_token"].as_str().unwrap();
    assert_eq!(fresh.len(), 24);
    assert!(fresh.bytes().all(|b| b.is_ascii_alphanumeric()), "{fresh}");
    let (status, body) = password_grant(&s, BOB, &old).await;
    assert_error(
        status,
        &body,
        400,
        "invalid_grant",
        "authentication failure",
    );
    let (status, body) = password_grant(&s, BOB, &format!("{BOB_PASSWORD}{fresh}")).await;
    assert_eq!(status, 200, "{body}");
    admin_seen(&db, &["user", "deactivate", BOB]);
    let (status, body) = password_grant(&s, BOB, &format!("{BOB_PASSWORD}{fresh}")).await;
    assert_error(status, &body, 400, "invalid_grant", "inactive user");
    admin_seen(&db, &["user", "reactivate", BOB]);
    let (status, body) = password_grant(&s, BOB, &format!("{BOB_PASSWORD}{fresh}")).await;
    assert_eq!(status, 200, "{body}");

    // A restart with the config: what it names (profiles, callback URLs) is its again; what
    // it does not name (the session timeout, PKCE) stays as updated.
    let dir = s.stop().await;
    let again = TestServer::start_in(dir, Some(CONFIG), |_| {}).await;
    let shown = admin(
        &database_url(again.dir.path()),
        &["app", "show", "Integration"],
    );
    assert_eq!(shown["profiles"], json!(["System Administrator"]));
    assert_eq!(shown["session_timeout_secs"], 1800);
    assert_eq!(shown["require_pkce"], true);
}

/// The password grant of the Integration app, answered as it is.
async fn password_grant(s: &TestServer, username: &str, password: &str) -> (u16, Value) {
    s.token(&[
        ("grant_type", "password"),
        ("client_id", INTEGRATION_ID),
        ("client_secret", INTEGRATION_SECRET),
        ("username", username),
        ("password", password),
    ])
    .await
}

/// Freezing ends a user's sessions and refuses their logins as failed ones until unfrozen;
/// blocking an app ends its tokens, answers `OAUTH_APP_BLOCKED` at the token endpoint and on the
/// authorize redirect, and unblocking brings no ended token back.
#[tokio::test]
async fn freezing_and_blocking_take_effect_on_the_wire() {
    let s = TestServer::start().await;
    let db = database_url(s.dir.path());
    let userinfo = |at: String| {
        let s = &s;
        async move {
            s.http
                .get(s.at("/services/oauth2/userinfo"))
                .bearer_auth(at)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let at = s.alice_token().await;
    assert_eq!(userinfo(at.clone()).await, 200, "control");

    let frozen = admin_seen(&db, &["user", "freeze", ALICE]);
    assert_eq!(frozen["frozen"], true);
    assert_eq!(frozen["sessions_revoked"], 1);
    assert_eq!(userinfo(at).await, 403, "her session ended");
    let (status, body) = password_grant(&s, ALICE, ALICE_PASSWORD).await;
    assert_error(
        status,
        &body,
        400,
        "invalid_grant",
        "authentication failure",
    );
    assert_eq!(
        admin(&db, &["user", "show", ALICE])["active"],
        true,
        "not deactivated"
    );
    admin_seen(&db, &["user", "unfreeze", ALICE]);
    let (status, body) = password_grant(&s, ALICE, ALICE_PASSWORD).await;
    assert_eq!(status, 200, "{body}");

    // Blocking the app.
    let cc = || {
        s.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
        ])
    };
    let (status, body) = cc().await;
    assert_eq!(status, 200, "{body}");
    let app_token = body["access_token"].as_str().unwrap().to_owned();
    let blocked = admin_seen(&db, &["app", "block", "Integration"]);
    assert_eq!(blocked["blocked"], true);
    assert!(
        blocked["sessions_revoked"].as_u64().unwrap() >= 2,
        "{blocked}"
    );
    assert_eq!(userinfo(app_token.clone()).await, 403);
    let (status, body) = cc().await;
    assert_error(
        status,
        &body,
        400,
        "OAUTH_APP_BLOCKED",
        "this app is blocked by admin",
    );
    let authorize = s
        .http
        .get(s.at(&format!(
            "/services/oauth2/authorize?response_type=code&client_id={INTEGRATION_ID}\
             &redirect_uri=https://login.salesforce.com/oauth2/callback&state=st"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(authorize.status(), 302);
    let location = authorize.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("https://login.salesforce.com/oauth2/callback?")
            && location.contains("error=OAUTH_APP_BLOCKED")
            && location.contains("error_description=this+app+is+blocked+by+admin")
            && location.contains("state=st"),
        "{location}"
    );
    // Another app of the org is not affected.
    let (status, body) = s
        .token(&[
            ("grant_type", "password"),
            ("client_id", SELF_SERVICE_ID),
            ("client_secret", SELF_SERVICE_SECRET),
            ("username", BOB),
            ("password", &format!("{BOB_PASSWORD}{BOB_TOKEN}")),
        ])
        .await;
    assert_eq!(status, 200, "{body}");

    admin_seen(&db, &["app", "unblock", "Integration"]);
    let (status, body) = cc().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(userinfo(app_token).await, 403, "ended tokens stay ended");
}

/// Every admin change lands in the Setup Audit Trail, newest first, with what changed and
/// never a secret.
#[test]
fn admin_changes_are_in_the_audit_trail() {
    let dir = workdir(CONFIG);
    let db = database_url(dir.path());
    // A store seeded from the config, before any admin change: the trail is empty.
    let p = spawn_process(
        dir.path(),
        &["--config", "idforce.toml", "--database", &db],
        &[],
    );
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    assert!(p.finish().0.success());
    assert_eq!(
        admin(&db, &["audit-trail"]),
        json!([]),
        "seeding is not an admin change"
    );

    admin(
        &db,
        &[
            "app",
            "update",
            "Integration",
            "--session-timeout",
            "30m",
            "--require-pkce",
            "true",
        ],
    );
    admin(&db, &["app", "rotate-secret", "Integration"]);
    admin(&db, &["user", "freeze", BOB]);
    admin(&db, &["user", "reset-security-token", BOB]);
    admin(
        &db,
        &["profile", "create", "--org", "Acme", "--name", "Auditors"],
    );
    let trail = admin(&db, &["audit-trail"]);
    let actions: Vec<&str> = trail
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), 5, "{trail}");
    assert_eq!(actions[0], "Created profile \"Auditors\" in org \"Acme\"");
    assert_eq!(actions[1], format!("Reset the security token of {BOB}"));
    assert_eq!(actions[2], format!("Froze user {BOB}"));
    assert_eq!(
        actions[3],
        "Generated a new consumer secret for connected app \"Integration\""
    );
    assert!(
        actions[4].starts_with("Changed connected app \"Integration\": ")
            && actions[4].contains("require_pkce false → true")
            && actions[4].contains("session_timeout_secs 7200 → 1800"),
        "{}",
        actions[4]
    );
    assert_eq!(trail[0]["section"], "Profiles");
    assert_eq!(trail[4]["section"], "Connected Apps");
    assert!(
        trail[0]["user"]
            .as_str()
            .unwrap()
            .ends_with("(idforce CLI)")
    );
    let text = trail.to_string();
    assert!(
        !text.contains(INTEGRATION_SECRET) && !text.contains(BOB_TOKEN),
        "no secret: {text}"
    );
    assert_eq!(
        admin(&db, &["audit-trail", "--limit", "2"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // Listings print a header and UTC times.
    let mut listing = idforce();
    if db.starts_with("postgres") {
        listing.env("IDFORCE_SECRET", POSTGRES_SECRET);
    }
    let out = listing
        .args(["--database", &db, "audit-trail", "--limit", "1"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.starts_with("CHANGED_AT "), "{listed}");
    assert!(listed.contains("Z  "), "a UTC time: {listed}");
}

/// `trusted_proxies` takes addresses and networks; anything else is refused where it is written.
#[test]
fn trusted_proxies_are_addresses_or_networks() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("proxies.toml"),
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\", \"proxy.internal\"]\n",
    )
    .unwrap();
    let out = idforce()
        .current_dir(dir.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            "proxies.toml",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("proxies.toml line 2: [server] trusted_proxies: \"proxy.internal\" is not an address or a network"),
        "{said}"
    );
    // Control: the same list without the name starts.
    std::fs::write(
        dir.path().join("proxies.toml"),
        "[server]\ntrusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\", \"fd00::/8\"]\n",
    )
    .unwrap();
    let mut p = spawn_process(dir.path(), &["--config", "proxies.toml"], &[]);
    install_crypto();
    let health = reqwest::blocking::get(format!("{}/healthz", p.url)).unwrap();
    assert_eq!(health.status(), 200);
    p.child.kill().unwrap();
    p.child.wait().unwrap();
}
