//! The real binary as a child process: logs without secrets, HTTPS, health and metrics,
//! graceful shutdown.

use std::io::Read as _;
use std::process::Command;

use serde_json::json;

use crate::helpers::*;

fn sigterm(pid: u32) {
    let ok = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok);
}

fn blocking_client() -> reqwest::blocking::Client {
    install_crypto();
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Every flow at debug level; then no password, secret, token or assertion may appear in
/// the logs.
#[test]
fn logs_never_contain_credentials() {
    let dir = workdir(CONFIG);
    let p = spawn_process(
        dir.path(),
        &[
            "--config",
            "idforce.toml",
            "--database",
            &database_url(dir.path()),
        ],
        &[("RUST_LOG", "debug")],
    );
    let http = blocking_client();
    let token_url = format!("{}/services/oauth2/token", p.url);
    let mut secrets: Vec<String> = vec![
        ALICE_PASSWORD.into(),
        BOB_PASSWORD.into(),
        BOB_TOKEN.into(),
        INTEGRATION_SECRET.into(),
        AUDITOR_SECRET.into(),
        "WrongPassword123".into(),
    ];
    let login = |user: &str, pw: &str| -> serde_json::Value {
        http.post(&token_url)
            .form(&[
                ("grant_type", "password"),
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("username", user),
                ("password", pw),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let ok = login(ALICE, ALICE_PASSWORD);
    let token = ok["access_token"].as_str().unwrap().to_owned();
    login(ALICE, "WrongPassword123");
    // A password typed into the username field: logged as a keyed digest only.
    login("WrongPassword123", "x");
    login(BOB, &format!("{BOB_PASSWORD}{BOB_TOKEN}"));
    let assertion = sign_jwt(
        &json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": p.url, "exp": now_secs() + 60 }),
    );
    let jwt: serde_json::Value = http
        .post(&token_url)
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &assertion),
        ])
        .send()
        .unwrap()
        .json()
        .unwrap();
    let cc: serde_json::Value = http
        .post(&token_url)
        .basic_auth(INTEGRATION_ID, Some(INTEGRATION_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap()
        .json()
        .unwrap();
    // Token exchange and the asset token flow, refused (no app of this config enables them):
    // the subject token must not be logged with the reason.
    for client in [Some((INTEGRATION_ID, INTEGRATION_SECRET)), None] {
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", token.as_str()),
            (
                "subject_token_type",
                "urn:ietf:params:oauth:token-type:access_token",
            ),
        ];
        if let Some((id, secret)) = client {
            form.push(("client_id", id));
            form.push(("client_secret", secret));
        }
        let answer: serde_json::Value = http
            .post(&token_url)
            .form(&form)
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(answer["error"], "invalid_grant", "{answer}");
    }
    http.post(format!("{}/services/oauth2/introspect", p.url))
        .form(&[
            ("token", token.as_str()),
            ("client_id", AUDITOR_ID),
            ("client_secret", AUDITOR_SECRET),
        ])
        .send()
        .unwrap();
    http.get(format!(
        "{}?oauth_token={token}",
        ok["id"].as_str().unwrap()
    ))
    .send()
    .unwrap();
    http.get(format!("{}/services/data/v62.0/", p.url))
        .bearer_auth(&token)
        .send()
        .unwrap();
    http.get(format!("{}/services/oauth2/revoke?token={token}", p.url))
        .send()
        .unwrap();
    for t in [
        &token,
        jwt["access_token"].as_str().unwrap(),
        cc["access_token"].as_str().unwrap(),
    ] {
        secrets.push(t[16..].to_owned());
    }
    secrets.push(assertion.split('.').nth(2).unwrap().to_owned());

    sigterm(p.child.id());
    let (status, logs) = p.finish();
    assert!(status.success(), "exit status {status}");
    assert!(
        logs.contains("refused") && logs.contains("cause=no user #"),
        "debug logs were captured:\n{logs}"
    );
    assert!(
        logs.contains("has no Enable Token Exchange Flow")
            && logs.contains("has no Enable Asset Tokens"),
        "the exchanges' reasons are logged:\n{logs}"
    );
    // A pipe is not a terminal: plain lines, no colour codes for a log collector to keep.
    assert!(
        !logs.contains('\u{1b}') && logs.contains("path=/services/oauth2/token"),
        "plain-text logs:\n{logs}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a credential leaked into the logs: {secret}"
        );
    }
}

#[test]
fn health_readiness_metrics_and_json_logs() {
    let dir = workdir(CONFIG);
    let p = spawn_process(
        dir.path(),
        &["--config", "idforce.toml", "--log-format", "json"],
        &[],
    );
    let http = blocking_client();
    assert_eq!(
        http.get(format!("{}/healthz", p.url))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{}/readyz", p.url))
            .send()
            .unwrap()
            .status(),
        200
    );
    http.post(format!("{}/services/oauth2/token", p.url))
        .form(&[
            ("grant_type", "password"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .unwrap();
    http.post(format!("{}/services/oauth2/token", p.url))
        .form(&[("grant_type", "password"), ("client_id", "x")])
        .send()
        .unwrap();
    let r = http.get(format!("{}/metrics", p.url)).send().unwrap();
    let x_request_id = r.headers().get("x-request-id").cloned();
    let metrics = r.text().unwrap();
    assert!(x_request_id.is_some());
    assert!(
        metrics.contains(
            r#"idforce_requests_total{endpoint="token",grant="password",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"idforce_requests_total{endpoint="token",grant="password",outcome="invalid_client_id"} 1"#), "{metrics}");
    assert!(
        metrics.contains("idforce_request_duration_seconds_bucket{le="),
        "{metrics}"
    );
    sigterm(p.child.id());
    let (status, logs) = p.finish();
    assert!(status.success());
    // The refused token request's one line: JSON, in its request's span, with its cause.
    let line = logs
        .lines()
        .find(|l| l.contains("refused"))
        .expect("a request log line");
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON log lines");
    assert!(v["span"]["request_id"].is_string(), "{line}");
    let cause = v["fields"]["cause"].as_str().unwrap_or_default();
    assert!(
        cause.starts_with("no app #"),
        "an unknown client id as a digest: {line}"
    );
}

#[test]
fn https_with_a_ca_signed_certificate() {
    install_crypto();
    let dir = workdir(CONFIG);
    let mut p = spawn_process(
        dir.path(),
        &[
            "--config",
            "idforce.toml",
            "--tls-cert",
            fixture("tls.crt").to_str().unwrap(),
            "--tls-key",
            fixture("tls.key").to_str().unwrap(),
        ],
        &[],
    );
    assert!(p.url.starts_with("https://127.0.0.1:"), "{}", p.url);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.crt")).unwrap()).unwrap();
    let http = reqwest::blocking::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let url = p.url.replace("127.0.0.1", "localhost");
    assert_eq!(
        http.get(format!("{url}/healthz")).send().unwrap().status(),
        200
    );
    let r = http
        .post(format!("{url}/services/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("https://"));
    sigterm(p.child.id());
    assert!(p.child.wait().unwrap().success());
}

#[test]
fn sigterm_lets_in_flight_requests_finish() {
    use std::io::Write;
    let dir = workdir(CONFIG);
    let mut p = spawn_process(dir.path(), &["--config", "idforce.toml"], &[]);
    let body = format!(
        "grant_type=password&client_id={INTEGRATION_ID}&client_secret={INTEGRATION_SECRET}&username={ALICE}&password={}",
        "Winter2026%21"
    );
    let (first, rest) = body.split_at(body.len() / 2);
    let mut conn = std::net::TcpStream::connect(p.url.trim_start_matches("http://")).unwrap();
    write!(conn, "POST /services/oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first}", body.len()).unwrap();
    conn.flush().unwrap();
    // The request is now being handled (its body half read) when the signal arrives.
    std::thread::sleep(std::time::Duration::from_millis(300));
    sigterm(p.child.id());
    std::thread::sleep(std::time::Duration::from_millis(300));
    // New connections are refused while the old one is finished.
    assert!(std::net::TcpStream::connect(p.url.trim_start_matches("http://")).is_err());
    conn.write_all(rest.as_bytes()).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"access_token\":\"00D"), "{answer}");
    assert!(p.child.wait().unwrap().success());
}

/// The system secret, as a user meets it: generated beside a new SQLite store (both files
/// private), needed to open the store again, rotated with `secrets reseal`, and given by the
/// old `IDFORCE_KEY_ENCRYPTION_KEY` for one more release.
#[test]
fn the_store_is_sealed_by_a_secret_kept_outside_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = workdir(CONFIG);
    let db = database_url(dir.path());
    // The command before `serve` (which `spawn_command` adds).
    let base = |envs: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = idforce();
        cmd.current_dir(dir.path())
            .args(["--config", "idforce.toml", "--database", &db])
            .args(extra)
            .env_remove("IDFORCE_SECRET")
            .env_remove("IDFORCE_SECRET_FILE")
            .env_remove("IDFORCE_KEY_ENCRYPTION_KEY");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd
    };
    let serve = |envs: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = base(envs, extra);
        cmd.args(["serve", "--listen", "127.0.0.1:0"]);
        cmd
    };
    let p = spawn_command(base(&[], &[]), dir.path(), &[], &[]);
    sigterm(p.child.id());
    let (status, _) = p.finish();
    assert!(status.success());
    let secret = dir.path().join("idforce.secret");
    for file in [&secret, &dir.path().join("idforce.db")] {
        let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
    let raw = std::fs::read(dir.path().join("idforce.db")).unwrap();
    // PKCS#8's version and rsaEncryption algorithm identifier, present in any plain RSA key.
    let pkcs8_header = b"\x02\x01\x00\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01";
    assert!(
        !raw.windows(pkcs8_header.len()).any(|w| w == pkcs8_header),
        "no plain PKCS#8 in the file"
    );
    for secret in [INTEGRATION_SECRET, SELF_SERVICE_SECRET] {
        assert!(
            !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a client secret in the clear"
        );
    }

    // Without its secret (moved away: a new one is generated) or with a wrong one, the store
    // does not open, and the refusal says which secret it needs.
    let kept = dir.path().join("kept.secret");
    std::fs::rename(&secret, &kept).unwrap();
    let wrong: [&[(&str, &str)]; 2] = [&[], &[("IDFORCE_SECRET", "a-wrong-but-long-secret")]];
    for envs in wrong {
        let out = serve(envs, &[]).output().unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("system secret") && err.contains("sealed"),
            "{err}"
        );
        let _ = std::fs::remove_file(&secret);
    }
    // The control: the right one, as a file.
    let kept_path = kept.to_str().unwrap();
    let p = spawn_command(
        base(&[], &["--secret-file", kept_path]),
        dir.path(),
        &[],
        &[],
    );
    sigterm(p.child.id());
    assert!(p.finish().0.success());

    // Rotation: the new secret first, the old one after; reseal; then the new one alone.
    let old = std::fs::read_to_string(&kept).unwrap();
    let old = old
        .lines()
        .rfind(|l| !l.starts_with('#'))
        .unwrap()
        .trim()
        .to_owned();
    let both = format!("new-system-secret-2026,{old}");
    let cli = |envs: &[(&str, &str)], args: &[&str]| {
        let mut cmd = idforce();
        cmd.args(["--database", &db, "--json"]).args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let out = cli(&[("IDFORCE_SECRET", &both)], &["secrets", "reseal"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resealed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(resealed["credential_hash_key_resealed"], true, "{resealed}");
    assert!(
        resealed["client_secrets_resealed"].as_u64().unwrap() >= 5,
        "{resealed}"
    );
    let out = cli(
        &[("IDFORCE_SECRET", "new-system-secret-2026")],
        &["app", "show", "Integration", "--reveal-secret"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["client_secret"], INTEGRATION_SECRET);
    let p = spawn_command(
        base(&[("IDFORCE_SECRET", "new-system-secret-2026")], &[]),
        dir.path(),
        &[],
        &[],
    );
    let r = blocking_client()
        .post(format!("{}/services/oauth2/token", p.url))
        .form(&[
            ("grant_type", "password"),
            ("client_id", INTEGRATION_ID),
            ("client_secret", INTEGRATION_SECRET),
            ("username", ALICE),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    sigterm(p.child.id());
    assert!(p.finish().0.success());
    // The old secret alone no longer opens it.
    let out = serve(&[("IDFORCE_SECRET", &old)], &[]).output().unwrap();
    assert!(!out.status.success());

    // The old variable still works, for one release, and says so.
    let legacy = workdir(CONFIG);
    let legacy_db = database_url(legacy.path());
    let p = spawn_process(
        legacy.path(),
        &["--config", "idforce.toml", "--database", &legacy_db],
        &[("IDFORCE_KEY_ENCRYPTION_KEY", "correct horse battery staple")],
    );
    sigterm(p.child.id());
    let (status, logs) = p.finish();
    assert!(status.success());
    assert!(
        logs.contains("IDFORCE_KEY_ENCRYPTION_KEY is an alias"),
        "{logs}"
    );
    assert!(
        !legacy.path().join("idforce.secret").exists(),
        "none generated"
    );
    let out = idforce()
        .args(["--database", &legacy_db, "--json", "keys", "list"])
        .env("IDFORCE_SECRET", "correct horse battery staple")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigterm_right_after_start_still_exits_cleanly() {
    for _ in 0..3 {
        let dir = workdir(CONFIG);
        let p = spawn_process(dir.path(), &["--config", "idforce.toml"], &[]);
        sigterm(p.child.id());
        let (status, _) = p.finish();
        assert!(status.success(), "{status}");
    }
}

/// Waits up to ten seconds for a child to exit; kills it and fails if it does not.
fn exits_soon(mut child: std::process::Child, what: &str) -> std::process::Output {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().expect("try_wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not exit");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

/// One server per SQLite file: a second `serve` refuses to start and says why, admin
/// commands still work beside the first, and a SIGKILL leaves no stale lock behind.
#[test]
fn one_server_per_sqlite_file() {
    let dir = workdir(CONFIG);
    let mut first = spawn_process(dir.path(), &[], &[]);
    let second = idforce()
        .current_dir(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = exits_soon(second, "a second server on the same file");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("another idforce server is serving") && said.contains("idforce.db"),
        "{said}"
    );
    // Admin commands work beside the server, by URL and by the default in its directory.
    let db = format!("sqlite://{}", dir.path().join("idforce.db").display());
    assert!(!admin(&db, &["org", "list"]).as_array().unwrap().is_empty());
    let out = idforce()
        .current_dir(dir.path())
        .args(["--json", "org", "list"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Killed outright, the first server leaves nothing that stops the next one.
    first.child.kill().expect("SIGKILL");
    first.child.wait().expect("wait");
    let mut third = spawn_process(dir.path(), &[], &[]);
    let health = blocking_client()
        .get(format!("{}/healthz", third.url))
        .send()
        .expect("healthz");
    assert_eq!(health.status(), 200);
    third.child.kill().expect("kill");
    third.child.wait().expect("wait");
}

/// Only `serve` and `import` create the default store: an admin command run where there is
/// none says where it looked and leaves no empty store behind. A URL that asks for creation
/// (`?mode=rwc`) still gets it.
#[test]
fn admin_commands_do_not_create_the_default_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = idforce()
        .current_dir(dir.path())
        .args(["org", "list"])
        .output()
        .expect("run");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    let looked = dir.path().join("idforce.db").display().to_string();
    assert!(
        said.contains("no store at") && said.contains(&looked),
        "{said}"
    );
    assert!(
        !dir.path().join("idforce.db").exists(),
        "an empty store was created"
    );

    // The control: an explicit URL that asks for creation creates its store.
    let made = format!("sqlite://{}?mode=rwc", dir.path().join("made.db").display());
    let out = idforce()
        .args(["--database", &made, "org", "create", "--name", "Acme"])
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let export = dir.path().join("export.json");
    let out = idforce()
        .args(["--database", &made, "export", "--output"])
        .arg(&export)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // And `import` creates the default store where it runs (given the secret the export was
    // sealed with: that of made.db, beside it).
    let out = idforce()
        .current_dir(dir.path())
        .args(["--secret-file", "made.secret", "import"])
        .arg(&export)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("idforce.db").exists());
}

/// A refused request writes one info line, with what was wrong; a flood of them is cut to a
/// budget a second and summarised.
#[test]
fn refusals_say_why_once_and_floods_are_summarised() {
    let dir = workdir(CONFIG);
    let p = spawn_process(
        dir.path(),
        &["--config", "idforce.toml"],
        &[("RUST_LOG", "info")],
    );
    let http = blocking_client();
    let token_url = format!("{}/services/oauth2/token", p.url);
    let wrong_key = sign_jwt_with(
        "other.key",
        &json!({"alg": "RS256"}),
        &json!({ "iss": INTEGRATION_ID, "sub": ALICE, "aud": p.url, "exp": now_secs() + 60 }),
    );
    let r = http
        .post(&token_url)
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &wrong_key),
        ])
        .send()
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(r.status(), 400);
    // The control: a good request writes no info line at all.
    let ok = http
        .post(&token_url)
        .basic_auth(INTEGRATION_ID, Some(INTEGRATION_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .unwrap();
    let ok_id = ok.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(ok.status(), 200);
    // A flood of refusals in well under a second, then one more a second later.
    let bad = [("grant_type", "password"), ("client_id", "3MVG9nobody")];
    for _ in 0..300 {
        http.post(&token_url).form(&bad).send().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    http.post(&token_url).form(&bad).send().unwrap();

    sigterm(p.child.id());
    let (_, logs) = p.finish();
    let of = |id: &str| -> Vec<&str> {
        logs.lines()
            .filter(|l| l.contains(&format!("request_id={id}")))
            .collect()
    };
    let lines = of(&id);
    assert_eq!(lines.len(), 1, "one line for the refused request:\n{logs}");
    assert!(
        lines[0].contains("does not match the app's certificate")
            && lines[0].contains("error=\"invalid_grant\""),
        "{}",
        lines[0]
    );
    assert!(of(&ok_id).is_empty(), "a success is logged at debug only");
    let refused = logs
        .lines()
        .filter(|l| l.contains("cause=no app #"))
        .count();
    assert!(
        (50..=150).contains(&refused),
        "{refused} refusal lines for 301 refusals (50 a second at most)"
    );
    assert!(
        logs.contains("refusal lines left out") && logs.contains("suppressed="),
        "the flood is summarised:\n{logs}"
    );
}

/// `serve --ephemeral` with `[server] signing_key_file`: each run has a store of its own that
/// is gone after exit, the config's fixed credentials work, and the JWKS is the configured
/// key under the same kid every run, so a CI job can pin both.
#[test]
fn ephemeral_runs_start_the_same_and_leave_nothing_behind() {
    use aws_lc_rs::signature::KeyPair;
    use base64::Engine;
    let config = CONFIG.replace(
        "[server]\n",
        "[server]\nsigning_key_file = \"signing.pem\"\n",
    );
    let dir = workdir(&config);
    std::fs::copy(fixture("other.key"), dir.path().join("signing.pem")).expect("copy");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).expect("tmp");
    let pem = std::fs::read_to_string(fixture("other.key")).expect("key");
    let der = base64::engine::general_purpose::STANDARD
        .decode(
            pem.lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .expect("base64");
    let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der).expect("pkcs8");
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        pair.public_key()
            .modulus()
            .big_endian_without_leading_zero(),
    );
    let http = blocking_client();
    let mut jwks_seen = Vec::new();
    for run in 0..2 {
        let started = std::time::Instant::now();
        let p = spawn_process(
            dir.path(),
            &["--config", "idforce.toml", "--ephemeral"],
            &[("TMPDIR", tmp.to_str().unwrap())],
        );
        eprintln!("run {run}: listening after {:?}", started.elapsed());
        let stores: Vec<_> = std::fs::read_dir(&tmp).unwrap().flatten().collect();
        assert_eq!(stores.len(), 1, "one temporary store while it runs");
        assert!(
            stores[0]
                .file_name()
                .to_string_lossy()
                .starts_with("idforce-ephemeral-"),
            "{:?}",
            stores[0].file_name()
        );
        assert!(
            !dir.path().join("idforce.db").exists(),
            "nothing in the working directory"
        );
        let login = http
            .post(format!("{}/services/oauth2/token", p.url))
            .form(&[
                ("grant_type", "password"),
                ("client_id", INTEGRATION_ID),
                ("client_secret", INTEGRATION_SECRET),
                ("username", ALICE),
                ("password", ALICE_PASSWORD),
            ])
            .send()
            .expect("token");
        assert_eq!(login.status(), 200, "the config's credentials");
        let jwks: serde_json::Value = http
            .get(format!("{}/id/keys", p.url))
            .send()
            .expect("jwks")
            .json()
            .expect("json");
        assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1), "{jwks}");
        assert_eq!(jwks["keys"][0]["kid"], "1", "{jwks}");
        assert_eq!(jwks["keys"][0]["n"], n.as_str(), "the configured key");
        jwks_seen.push(jwks);
        sigterm(p.child.id());
        let (status, logs) = p.finish();
        assert!(status.success(), "{logs}");
        assert_eq!(
            std::fs::read_dir(&tmp).unwrap().count(),
            0,
            "the store is deleted on exit"
        );
    }
    assert_eq!(jwks_seen[0], jwks_seen[1]);

    // Mistakes, said before anything starts; the runs above are the control.
    let out = idforce()
        .current_dir(dir.path())
        .args([
            "serve",
            "--config",
            "idforce.toml",
            "--ephemeral",
            "--database",
            "sqlite://x.db",
        ])
        .output()
        .expect("run");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("--ephemeral makes a store of its own: drop --database"),
        "{said}"
    );
    std::fs::copy(fixture("other.crt"), dir.path().join("signing.pem")).expect("copy");
    let out = idforce()
        .current_dir(dir.path())
        .args([
            "serve",
            "--config",
            "idforce.toml",
            "--ephemeral",
            "--listen",
            "127.0.0.1:0",
        ])
        .env("TMPDIR", &tmp)
        .output()
        .expect("run");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("signing_key_file") && said.contains("signing.pem"),
        "{said}"
    );
    assert!(said.contains("no PEM private key"), "{said}");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "a refused start leaves nothing"
    );
}
