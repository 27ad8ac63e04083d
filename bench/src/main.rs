//! idforce's performance harness: idforce and node-oidc-provider under the same load, from
//! the same load generator, in the same run. `bench/run` builds everything and calls this.

mod fixtures;
mod load;
mod proc;
mod report;
mod servers;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use serde_json::{Value, json};

use fixtures::{CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME};
use load::{Bodies, Plan, Workload};
use report::{Report, Row, Target};
use servers::Server;

#[derive(Parser, Debug)]
#[command(about = "Benchmark idforce against node-oidc-provider")]
struct Args {
    /// The idforce binary to measure (a release build).
    #[arg(long)]
    idforce: PathBuf,
    /// A folder where oidc-provider@9 is installed (`npm install oidc-provider@9`); without
    /// it the peer's rows are missing and no ratio is computed.
    #[arg(long)]
    peer_dir: Option<PathBuf>,
    /// The repository (for bench/peer/server.mjs and the test key pair).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Where signed assertions are kept between runs.
    #[arg(long, default_value = "/var/tmp/idforce-bench-cache")]
    cache: PathBuf,
    /// Seconds per workload.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Concurrent connections of the load generator.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Single-use JWT assertions signed for the JWT bearer workload (it ends when they do).
    #[arg(long, default_value_t = 200_000)]
    assertions: usize,
    /// Live tokens in the store for the large-store introspection run.
    #[arg(long, default_value_t = 10_000_000)]
    stored_tokens: u64,
    /// A few seconds in all: proves the harness works, measures nothing worth keeping.
    #[arg(long)]
    smoke: bool,
    /// Measures only the workloads whose names contain this text (for reproducing one row;
    /// targets whose rows are missing are listed as not measured).
    #[arg(long)]
    only: Option<String>,
    /// Measure idforce on PostgreSQL instead of SQLite: the URL of any database on the server
    /// (e.g. postgres://postgres@127.0.0.1:5432/postgres); the run makes a database of its own
    /// there and drops it after.
    #[arg(long)]
    postgres: Option<String>,
    /// idforce processes serving the one PostgreSQL database, driven round robin (connection
    /// by connection); more than one needs --postgres (a second `serve` on one SQLite file
    /// refuses to start). All share this machine's cores with the database and the load.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    nodes: u16,
    /// The results as JSON.
    #[arg(long, default_value = "bench/results/latest.json")]
    out: PathBuf,
}

fn main() {
    let mut args = Args::parse();
    if args.smoke {
        args.seconds = args.seconds.min(0.5);
        args.assertions = args.assertions.min(500);
        args.stored_tokens = args.stored_tokens.min(20_000);
        args.connections = args.connections.min(16);
    }
    match run(&args) {
        Ok(report) => {
            report.print();
            if let Err(e) = write_json(&args.out, &report) {
                eprintln!("cannot write {}: {e}", args.out.display());
                std::process::exit(1);
            }
            println!("\nwrote {}", args.out.display());
            let failed: u64 = report.rows.iter().map(|r| r.failed).sum();
            if failed > 0 {
                eprintln!("{failed} requests failed: the figures above are not valid");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}

fn write_json(path: &Path, report: &Report) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(&report.to_json()).unwrap_or_default();
    std::fs::write(path, text + "\n")
}

struct Bench<'a> {
    args: &'a Args,
    rows: Vec<Row>,
}

impl Bench<'_> {
    fn plan(&self) -> Plan {
        Plan {
            connections: self.args.connections,
            duration: Duration::from_secs_f64(self.args.seconds),
            rate: None,
        }
    }

    /// Whether `--only` leaves the workload `name` in the run.
    fn wanted(&self, name: &str) -> bool {
        self.args
            .only
            .as_ref()
            .is_none_or(|only| name.contains(only.as_str()))
    }

    /// Runs a workload against a server, with a short warm-up first unless its requests are
    /// single-use, and records the row.
    fn measure(&mut self, name: &str, server: &Server, w: &Workload, plan: Plan) -> Row {
        if !self.wanted(name) {
            return Row::skipped(name, server.name);
        }
        if matches!(w.bodies, Bodies::Same(_)) && plan.rate.is_none() {
            let warm = Plan {
                duration: plan.duration.mul_f64(0.2).max(Duration::from_millis(100)),
                ..plan
            };
            load::run(&server.addrs(), w, warm);
        }
        let pids = server.pids();
        let cpu_before = proc::cpu_seconds_of(&pids);
        let peak = proc::PeakRss::start(pids.clone());
        let stolen = proc::Stolen::start();
        let out = load::run(&server.addrs(), w, plan);
        let cpu = proc::cpu_seconds_of(&pids) - cpu_before;
        let mut row = Row::new(name, server.name, &out, cpu, peak.finish(), plan.rate);
        row.stolen_percent = stolen.percent();
        eprintln!(
            "  {:<42} {:<14} {:>9.0} req/s  p99 {:>8.3} ms  stolen {:>4.1}%{}",
            row.workload,
            row.server,
            row.rate,
            row.p99_ms,
            row.stolen_percent,
            match &row.first_failure {
                Some(f) => format!("  ({} failed; first: {f})", row.failed),
                None => String::new(),
            }
        );
        self.rows.push(row.clone());
        row
    }

    /// The maximum rate, then the same workload at half of it for the latency target.
    fn max_and_half(&mut self, name: &str, server: &Server, w: &Workload) -> (Row, Row) {
        let max = self.measure(name, server, w, self.plan());
        let at_half = self.measure(
            &format!("{name} @ half rate"),
            server,
            w,
            half_of(&max, self.plan()),
        );
        (max, at_half)
    }

    /// The floor under a half-rate row's latency: `GET /healthz`, which does no work past the
    /// HTTP stack, at the same rate on the same connections. What it adds above the floor is
    /// the workload's own; the floor is the load generator's, the kernel's and the machine's.
    fn floor(&mut self, half: &Row, server: &Server) -> Row {
        let healthz = Workload::get("/healthz");
        let plan = Plan {
            rate: half.offered_rate,
            ..self.plan()
        };
        self.measure(
            &format!("floor under {}", half.workload),
            server,
            &healthz,
            plan,
        )
    }
}

/// Half the rate `max` reached, as an open-loop plan.
fn half_of(max: &Row, plan: Plan) -> Plan {
    Plan {
        rate: Some((max.rate / 2.0).max(1.0)),
        ..plan
    }
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (k, v) in pairs {
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(&percent(v));
    }
    s
}

fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One form POST on a connection of its own: the setup requests.
fn post(server: &Server, path: &str, body: &str) -> Result<Value, String> {
    let w = Workload::form(path, body.to_owned());
    let addr = server.addr();
    let got = load::fetch(addr, &addr.to_string(), &w)?;
    serde_json::from_slice(&got).map_err(|e| format!("{path}: not JSON: {e}"))
}

fn run(args: &Args) -> Result<Report, String> {
    let repo = args.repo.canonicalize().map_err(|e| e.to_string())?;
    if args.nodes > 1 && args.postgres.is_none() {
        return Err(
            "--nodes above 1 needs --postgres: a second `idforce serve` on one SQLite \
                    file refuses to start"
                .into(),
        );
    }
    let mut facts: Vec<(String, Value)> = vec![
        ("machine".into(), json!(machine())),
        ("seconds_per_workload".into(), json!(args.seconds)),
        ("connections".into(), json!(args.connections)),
    ];
    let mut targets = Vec::new();

    eprintln!("references…");
    // This machine's own noise, against which the latency tails and the ratios are read.
    let stolen = proc::Stolen::start();
    let [w50, w99, w999] = proc::wakeup_overshoot_ms(if args.smoke { 100 } else { 3000 });
    facts.push((
        "idle_wakeup_overshoot_ms".into(),
        json!({ "p50": w50, "p99": w99, "p99.9": w999 }),
    ));
    let [h50, h99] = proc::handoff_round_trip_us(if args.smoke { 100 } else { 5000 });
    facts.push((
        "thread_handoff_round_trip_us".into(),
        json!({ "p50": h50, "p99": h99 }),
    ));

    eprintln!("assertions…");
    let assertions = fixtures::assertions(&repo, &args.cache, args.assertions)?;

    let mut bench = Bench {
        args,
        rows: Vec::new(),
    };

    // idforce: a new store, seeded by the first start; measured from the second.
    let dir = fixtures::idforce_dir(&repo)?;
    let db = match &args.postgres {
        Some(base) => fixtures::Db::postgres(base)?,
        None => fixtures::Db::sqlite(dir.path()),
    };
    let database = db.url();
    let nodes = usize::from(args.nodes);
    facts.push(("idforce_store".into(), json!(db.backend())));
    facts.push(("idforce_nodes".into(), json!(nodes)));
    let (first, _) = servers::start_idforce(&args.idforce, dir.path(), &database, 1)?;
    first.stop();
    let (idf, ready) = servers::start_idforce(&args.idforce, dir.path(), &database, nodes)?;
    std::thread::sleep(Duration::from_millis(300));
    // One node's: the target is per process.
    let idle_rss = proc::rss_bytes(idf.pids()[0]) as f64 / 1048576.0;
    facts.push(("idforce_idle_rss_mb".into(), json!(idle_rss)));
    facts.push((
        "idforce_start_to_ready_ms".into(),
        json!(ready.as_secs_f64() * 1000.0),
    ));
    targets.push(Target::at_most("idle RSS", idle_rss, 15.0, " MB"));
    targets.push(Target::at_most(
        "start to ready, existing store",
        ready.as_secs_f64() * 1000.0,
        50.0,
        " ms",
    ));
    // A CI job's start (`serve --ephemeral`): a new store, migrations, the config applied and
    // its signing key stored. The median of three.
    let mut ephemeral = Vec::new();
    for _ in 0..3 {
        let (server, ready) = servers::start_ephemeral(&args.idforce, dir.path())?;
        server.stop();
        ephemeral.push(ready.as_secs_f64() * 1000.0);
    }
    ephemeral.sort_by(f64::total_cmp);
    facts.push((
        "idforce_ephemeral_start_to_ready_ms".into(),
        json!(ephemeral),
    ));
    targets.push(Target::at_most(
        "start to ready, --ephemeral with a config",
        ephemeral[1],
        250.0,
        " ms",
    ));

    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let refresh = rt.block_on(fixtures::refresh_token(&database, "api refresh_token"))?;
    let refresh_oidc = rt.block_on(fixtures::refresh_token(
        &database,
        "api refresh_token openid",
    ))?;
    let client = [("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)];
    let cc_body = form(&[("grant_type", "client_credentials"), client[0], client[1]]);
    let issued = post(&idf, "/services/oauth2/token", &cc_body)?;
    let access_token = issued["access_token"].as_str().ok_or("no access_token")?;
    let identity_path = issued["id"]
        .as_str()
        .and_then(|id| id.find("/id/").map(|i| id[i..].to_owned()))
        .ok_or("no identity URL")?;
    fixtures::fill_sessions(&db, 1_000)?;
    let introspect = Workload::form(
        "/services/oauth2/introspect",
        form(&[("token", access_token), client[0], client[1]]),
    );

    eprintln!("idforce…");
    let (intro_small, intro_half) = bench.max_and_half("introspection", &idf, &introspect);
    let token = Workload::form("/services/oauth2/token", cc_body.clone());
    let (cc_max, cc_half) = bench.max_and_half("client credentials", &idf, &token);
    let intro_floor = bench.floor(&intro_half, &idf);
    let cc_floor = bench.floor(&cc_half, &idf);
    let mut jwt = Workload::form("/services/oauth2/token", String::new());
    jwt.bodies = Bodies::each_once(
        assertions
            .iter()
            .map(|a| {
                Bytes::from(form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", a),
                ]))
            })
            .collect(),
    );
    let jwt_row = bench.measure("JWT bearer", &idf, &jwt, bench.plan());
    let password = Workload::form(
        "/services/oauth2/token",
        form(&[
            ("grant_type", "password"),
            client[0],
            client[1],
            ("username", USERNAME),
            ("password", PASSWORD),
        ]),
    );
    let pw_plan = Plan {
        connections: 8,
        ..bench.plan()
    };
    let argon2_seconds = if args.smoke { 0.3 } else { 3.0 };
    let (pw_row, argon2) = beside(
        &mut facts,
        "argon2id_verifications_per_second",
        bench.wanted("password"),
        || argon2_verifications(argon2_seconds),
        || bench.measure("password", &idf, &password, pw_plan),
    );
    let refresh_w = Workload::form(
        "/services/oauth2/token",
        form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            client[0],
            client[1],
        ]),
    );
    let refresh_row = bench.measure("refresh", &idf, &refresh_w, bench.plan());
    let refresh_oidc_w = Workload::form(
        "/services/oauth2/token",
        form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh_oidc),
            client[0],
            client[1],
        ]),
    );
    let openssl_seconds = if args.smoke { 1 } else { 2 };
    let id_token_plan = bench.plan();
    let (id_token_row, openssl) = beside(
        &mut facts,
        "openssl_rsa2048_signs_per_second",
        bench.wanted("refresh + RS256 id_token"),
        || openssl_rsa2048_signs(openssl_seconds),
        || {
            bench.measure(
                "refresh + RS256 id_token",
                &idf,
                &refresh_oidc_w,
                id_token_plan,
            )
        },
    );
    let mut identity = Workload::get(&identity_path);
    identity.headers = vec![("authorization", format!("Bearer {access_token}"))];
    bench.measure("identity URL", &idf, &identity, bench.plan());

    // Every token answered 200 must be in the store after a crash.
    let issued_ok: u64 = bench
        .rows
        .iter()
        .filter(|r| {
            r.server == "idforce"
                && (r.workload.starts_with("client credentials")
                    || [
                        "JWT bearer",
                        "password",
                        "refresh",
                        "refresh + RS256 id_token",
                    ]
                    .contains(&r.workload.as_str()))
        })
        .map(|r| r.ok)
        .sum();
    idf.kill();
    let stored = fixtures::count_sessions(&db)?;
    // The 1,000 sessions include the setup token and the filler.
    let durable = stored.saturating_sub(1_000);
    facts.push((
        "durability_after_kill_9".into(),
        json!({"tokens_answered": issued_ok, "tokens_in_store": durable}),
    ));
    if durable < issued_ok {
        return Err(format!(
            "only {durable} of {issued_ok} issued tokens survived kill -9"
        ));
    }

    // What recording each login costs: client credentials with Login History on, between two
    // runs with it off (their mean is the reference), each on a server started for it.
    let history_on = "client credentials, Login History on";
    let history_off = "client credentials, Login History off";
    let history_rows = if bench.wanted(history_on) {
        let mut run = |config: &str, name: &str| -> Result<Row, String> {
            let (idf, _) =
                servers::start_idforce_with(&args.idforce, dir.path(), config, &database, nodes)?;
            let row = bench.measure(name, &idf, &token, bench.plan());
            idf.stop();
            Ok(row)
        };
        let before = run("no-login-history.toml", history_off)?;
        let on = run("idforce.toml", history_on)?;
        let after = run("no-login-history.toml", history_off)?;
        Some((on, before, after))
    } else {
        None
    };

    // The same store with many live tokens (filling it takes a while: only when measured).
    let large_name = format!("introspection, {} tokens", args.stored_tokens);
    let intro_large = if bench.wanted(&large_name) {
        eprintln!("filling the store to {} tokens…", args.stored_tokens);
        let started = Instant::now();
        fixtures::fill_sessions(&db, args.stored_tokens)?;
        facts.push((
            "fill_seconds".into(),
            json!(started.elapsed().as_secs_f64()),
        ));
        let (idf, ready_large) =
            servers::start_idforce(&args.idforce, dir.path(), &database, nodes)?;
        facts.push((
            "idforce_start_to_ready_ms_large_store".into(),
            json!(ready_large.as_secs_f64() * 1000.0),
        ));
        let row = bench.measure(&large_name, &idf, &introspect, bench.plan());
        idf.stop();
        row
    } else {
        Row::skipped(&large_name, "idforce")
    };

    // The peer.
    let peer_rows = match &args.peer_dir {
        Some(peer_dir) => {
            eprintln!("oidc-provider…");
            let peer = servers::start_peer(peer_dir, &servers::peer_script(&repo), CLIENT_SECRET)?;
            let peer_cc = form(&[
                ("grant_type", "client_credentials"),
                client[0],
                client[1],
                ("scope", "api"),
            ]);
            let issued = post(&peer, "/token", &peer_cc)?;
            let peer_token = issued["access_token"]
                .as_str()
                .ok_or("peer: no access_token")?;
            let peer_introspect = Workload::form(
                "/token/introspection",
                form(&[("token", peer_token), client[0], client[1]]),
            );
            let (p_intro, _) = bench.max_and_half("introspection", &peer, &peer_introspect);
            let (p_cc, _) = bench.max_and_half(
                "client credentials",
                &peer,
                &Workload::form("/token", peer_cc),
            );
            peer.stop();
            Some((p_cc, p_intro))
        }
        None => None,
    };

    // Targets.
    if let Some((p_cc, p_intro)) = &peer_rows {
        targets.push(
            ratio("client credentials vs peer", cc_max.rate, p_cc.rate, 4.0)
                .during(&[&cc_max, p_cc]),
        );
        targets.push(
            ratio("introspection vs peer", intro_small.rate, p_intro.rate, 5.0)
                .during(&[&intro_small, p_intro]),
        );
        targets.push(
            ratio(
                "JWT bearer vs peer's client credentials",
                jwt_row.rate,
                p_cc.rate,
                2.0,
            )
            .during(&[&jwt_row, p_cc]),
        );
    }
    targets.push(
        ratio(
            "password grant vs raw Argon2id verifications",
            pw_row.rate,
            argon2,
            0.9,
        )
        .during(&[&pw_row]),
    );
    targets.push(
        ratio(
            "RS256 id_token grant vs `openssl speed rsa2048` signs",
            id_token_row.rate,
            openssl,
            0.7,
        )
        .during(&[&id_token_row]),
    );
    if let Some((on, before, after)) = &history_rows {
        let reference = (before.rate + after.rate) / 2.0;
        facts.push((
            "client_credentials_without_login_history_before_and_after".into(),
            json!([before.rate, after.rate]),
        ));
        targets.push(
            ratio(
                "client credentials with Login History vs without",
                on.rate,
                reference,
                0.9,
            )
            .during(&[before, on, after]),
        );
    }
    for (name, half, floor) in [
        ("client credentials", &cc_half, &cc_floor),
        ("introspection", &intro_half, &intro_floor),
    ] {
        targets.push(
            Target::at_most(
                format!("{name}: p99 at half the maximum rate"),
                half.p99_ms,
                2.0,
                " ms",
            )
            .during(&[half])
            .above(floor.p99_ms),
        );
    }
    targets.push(
        Target::at_most(
            format!(
                "introspection slowdown, {} vs 1,000 stored tokens",
                args.stored_tokens
            ),
            intro_small.rate / intro_large.rate,
            1.3,
            "x",
        )
        .during(&[&intro_small, &intro_large]),
    );
    targets.push(Target::at_most(
        "introspection RSS growth with the store",
        intro_large.peak_rss_mb / intro_small.peak_rss_mb,
        1.1,
        "x",
    ));
    facts.push(("refresh_per_second".into(), json!(refresh_row.rate)));
    facts.push((
        "cpu_stolen_by_hypervisor_percent".into(),
        json!(stolen.percent()),
    ));
    Ok(Report {
        rows: bench.rows,
        targets,
        facts,
    })
}

fn ratio(name: &str, ours: f64, theirs: f64, bound: f64) -> Target {
    Target::at_least(name, ours / theirs, bound, "x")
}

/// Measures a row between two measurements of its reference; the reference's figure is the
/// mean of the two (both are kept in `facts`, under `fact` and `fact`_before_and_after).
/// What a noisy neighbour does to the CPU or to memory bandwidth changes over minutes: a
/// reference taken at the start of the run was off by up to 20% by the time its row ran.
fn beside(
    facts: &mut Vec<(String, Value)>,
    fact: &str,
    wanted: bool,
    mut reference: impl FnMut() -> f64,
    row: impl FnOnce() -> Row,
) -> (Row, f64) {
    let before = if wanted { reference() } else { f64::NAN };
    let row = row();
    let after = if wanted { reference() } else { f64::NAN };
    let mean = (before + after) / 2.0;
    facts.push((fact.to_owned(), json!(mean)));
    facts.push((format!("{fact}_before_and_after"), json!([before, after])));
    (row, mean)
}

/// What `openssl speed rsa2048` reports as signatures per second (one core, as it runs).
fn openssl_rsa2048_signs(seconds: u32) -> f64 {
    let out = std::process::Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "rsa2048"])
        .stderr(std::process::Stdio::null())
        .output();
    let Ok(out) = out else { return f64::NAN };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("rsa") && l.contains("2048 bits"))
        .and_then(|l| l.split_whitespace().nth(5))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

/// Argon2id verifications per second with idforce's own parameters, on every core (as the
/// server runs them, each thread reusing its memory), for `seconds`.
fn argon2_verifications(seconds: f64) -> f64 {
    let hash = idforce_server::passwords::hash(PASSWORD);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let hash = &hash;
                s.spawn(move || {
                    let mut n = 0;
                    let mut memory = idforce_server::passwords::Memory::default();
                    while Instant::now() < until {
                        if memory.verify(hash, PASSWORD) {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).sum()
    });
    done as f64 / started.elapsed().as_secs_f64()
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    json!({"cpu": cpu, "cores": cores, "kernel": kernel.trim()})
}
