//! The `idforce` binary: `serve`, the administrative commands, and the client commands.

mod admin;
mod cli;
mod login;
mod transfer;

use std::process::ExitCode;
use std::sync::Arc;

use idforce_core::model::LockoutPolicy;
use idforce_server::clock::SystemClock;
use idforce_server::config::{ConfigFile, parse_duration_secs};
use idforce_server::secrets::{Origin, SecretSources, SystemSecret};
use idforce_server::{Application, ServeOptions};

use cli::{Cli, Command, ServeArgs};

const DEFAULT_DATABASE: &str = "sqlite://idforce.db?mode=rwc";
/// The file of the default database, for the commands that must not create it.
const DEFAULT_DATABASE_FILE: &str = "idforce.db";
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

fn main() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Err(e) = unused_flags(&cli, &matches) {
        eprintln!("idforce: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("idforce: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("idforce: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), String> {
    // The client commands talk to a login server, not to a store.
    if let Some(done) = login::run(&cli.command).await {
        return done;
    }
    let config = match &cli.config {
        Some(path) => Some(ConfigFile::load(path).map_err(|e| e.to_string())?),
        None => None,
    };
    let named = cli
        .database
        .clone()
        .or_else(|| config.as_ref().and_then(|c| c.server.database.clone()));
    let implicit = named.is_none();
    let database = named.unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
    let secret = SecretSources {
        flag_file: cli.secret_file.clone(),
        config_file: config
            .as_ref()
            .and_then(|c| c.server.secret_file.as_ref().map(|f| c.base_dir.join(f))),
    };
    match cli.command {
        Command::Serve(args) if args.ephemeral => {
            if config.as_ref().is_some_and(|c| c.server.database.is_some()) {
                eprintln!("idforce: --ephemeral: the config's [server] database is not used");
            }
            if cli.database.is_some() {
                return Err("--ephemeral makes a store of its own: drop --database (or \
                            IDFORCE_DATABASE_URL)"
                    .into());
            }
            let dir = tempfile::Builder::new()
                .prefix("idforce-ephemeral-")
                .tempdir()
                .map_err(|e| format!("--ephemeral: cannot make a temporary directory: {e}"))?;
            let database = format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("idforce.db").display()
            );
            let done = serve(args, config, database, secret, Some(dir.path())).await;
            // Dropping `dir` deletes the store, its WAL and its generated secret.
            drop(dir);
            done
        }
        Command::Serve(args) => serve(args, config, database, secret, None).await,
        command => {
            // Only `serve` and `import` create the default store: an admin command run from
            // the wrong directory would otherwise make an empty one there and report nothing.
            if implicit && !matches!(command, Command::Import { .. }) {
                default_store_exists()?;
            }
            let settings = store_settings(config.as_ref())?;
            let (secrets, _) = SystemSecret::resolve(&secret, &database)
                .map_err(|e| format!("system secret: {e}"))?;
            let (store, hasher) = idforce_server::app::open_store(&database, &settings, &secrets)
                .await
                .map_err(|e| e.to_string())?;
            let admin = admin::Admin {
                store,
                hasher,
                secrets,
                json: cli.json,
            };
            match command {
                Command::Org(c) => admin.run_org(c).await,
                Command::User(c) => admin.run_user(c).await,
                Command::Profile(c) => admin.run_profile(c).await,
                Command::AuditTrail { org, limit } => admin.run_audit_trail(org, limit).await,
                Command::LoginHistory {
                    org,
                    user,
                    app,
                    since,
                    limit,
                    csv,
                } => {
                    let filter = admin::LoginFilter {
                        org,
                        user,
                        app,
                        since,
                        limit,
                    };
                    admin.run_login_history(filter, csv).await
                }
                Command::App(c) => admin.run_app(c).await,
                Command::Token(c) => admin.run_token(c).await,
                Command::Keys(c) => admin.run_keys(c).await,
                Command::Secrets(c) => admin.run_secrets(c).await,
                Command::Export {
                    refresh_tokens,
                    output,
                } => {
                    let doc =
                        transfer::export(admin.store.as_ref(), &admin.secrets, refresh_tokens)
                            .await?;
                    let text = serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?;
                    match output {
                        Some(path) => std::fs::write(&path, text)
                            .map_err(|e| format!("{}: {e}", path.display())),
                        None => {
                            println!("{text}");
                            Ok(())
                        }
                    }
                }
                Command::Import { file } => {
                    let text = match file {
                        Some(path) => std::fs::read_to_string(&path)
                            .map_err(|e| format!("{}: {e}", path.display()))?,
                        None => {
                            std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())?
                        }
                    };
                    let doc: serde_json::Value =
                        serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))?;
                    let written =
                        transfer::import(admin.store.as_ref(), &admin.secrets, &doc).await?;
                    admin
                        .audit(
                            None,
                            "Data Management",
                            format!("Imported an export: {written}"),
                        )
                        .await?;
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&written).unwrap_or_default()
                    );
                    Ok(())
                }
                // Handled above, before any store is opened.
                Command::Serve(_)
                | Command::Login(_)
                | Command::Introspect { .. }
                | Command::Revoke { .. }
                | Command::Userinfo { .. }
                | Command::Whoami { .. } => Ok(()),
            }
        }
    }
}

/// Refuses a global flag given on the command line to a command that does not use it (a
/// typo'd intent, silently ignored otherwise). Their environment twins are not refused: they
/// are set once for every command.
fn unused_flags(cli: &Cli, matches: &clap::ArgMatches) -> Result<(), String> {
    let typed = |id: &str| {
        matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            || matches.subcommand().is_some_and(|(_, sub)| {
                sub.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
            })
    };
    let client = matches!(
        cli.command,
        Command::Login(_)
            | Command::Introspect { .. }
            | Command::Revoke { .. }
            | Command::Userinfo { .. }
            | Command::Whoami { .. }
    );
    let (name, unused): (&str, &[(&str, &str)]) = match &cli.command {
        Command::Serve(_) => (
            "serve does",
            &[("json", "--json (its logs: --log-format json)")],
        ),
        _ if client => (
            "the client commands do",
            &[
                (
                    "database",
                    "--database (they talk to a login server, not a store)",
                ),
                ("config", "--config"),
                ("secret_file", "--secret-file"),
                ("json", "--json (they print JSON already)"),
            ],
        ),
        _ => return Ok(()),
    };
    match unused.iter().find(|(id, _)| typed(id)) {
        Some((_, flag)) => Err(format!("{name} not use {flag}")),
        None => Ok(()),
    }
}

/// The default store must already exist in the working directory.
fn default_store_exists() -> Result<(), String> {
    let path = std::path::Path::new(DEFAULT_DATABASE_FILE);
    if path.exists() {
        return Ok(());
    }
    let here = std::env::current_dir()
        .map(|d| d.join(DEFAULT_DATABASE_FILE).display().to_string())
        .unwrap_or_else(|_| DEFAULT_DATABASE_FILE.to_owned());
    Err(format!(
        "no store at {here} (the default database); run this where `idforce serve` keeps \
         its store, or name one with --database (e.g. sqlite://path/idforce.db)"
    ))
}

fn store_settings(config: Option<&ConfigFile>) -> Result<idforce_store::StoreSettings, String> {
    let server = config.map(|c| &c.server);
    Ok(idforce_store::StoreSettings {
        pool_size: server.and_then(|s| s.database_pool_size),
        statement_timeout: match (
            config,
            server.and_then(|s| s.database_statement_timeout.as_deref()),
        ) {
            (Some(cfg), Some(d)) => Some(std::time::Duration::from_secs(
                cfg.duration_secs("database_statement_timeout", d)
                    .map_err(|e| e.to_string())? as u64,
            )),
            _ => None,
        },
        directory_cache_ttl: match (
            config,
            server.and_then(|s| s.directory_cache_ttl.as_deref()),
        ) {
            (Some(cfg), Some(d)) => Some(std::time::Duration::from_secs(
                cfg.duration_secs("directory_cache_ttl", d)
                    .map_err(|e| e.to_string())? as u64,
            )),
            _ => None,
        },
        serve: false,
    })
}

async fn serve(
    args: ServeArgs,
    config: Option<ConfigFile>,
    database: String,
    secret: SecretSources,
    ephemeral: Option<&std::path::Path>,
) -> Result<(), String> {
    let server = config.as_ref().map(|c| &c.server);
    let log_json = args
        .log_format
        .as_deref()
        .or(server.and_then(|s| s.log_format.as_deref()))
        == Some("json");
    idforce_server::init_logging(log_json);
    let lockout = LockoutPolicy {
        attempts: server.and_then(|s| s.lockout_attempts).unwrap_or(10).max(1),
        duration_secs: match server.and_then(|s| s.lockout_duration.as_deref()) {
            Some(d) => match &config {
                Some(cfg) => cfg
                    .duration_secs("lockout_duration", d)
                    .map_err(|e| e.to_string())?,
                None => parse_duration_secs(d).map_err(|e| e.to_string())?,
            },
            None => 15 * 60,
        },
    };
    // How the admin commands name this store, for the start-up lines.
    let database_flag = if database == DEFAULT_DATABASE {
        String::new()
    } else {
        format!(" --database '{}'", idforce_store::redact_url(&database))
    };
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(c), Some(k)) => Some((c, k)),
        _ => server.and_then(|s| s.tls_cert.clone().zip(s.tls_key.clone())),
    };
    let args_explain = args.explain || args.explain_anywhere;
    let opts = ServeOptions {
        listen: args
            .listen
            .or(server.and_then(|s| s.listen.clone()))
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
        public_url: args
            .public_url
            .or(server.and_then(|s| s.public_url.clone())),
        accept_salesforce_audiences: server
            .and_then(|s| s.accept_salesforce_audiences)
            .unwrap_or(true),
        lockout,
        limits: idforce_server::config::connection_limits(server, config.as_ref())
            .map_err(|e| e.to_string())?,
        secret,
        tls,
        signing_key: config.as_ref().and_then(|c| {
            c.server
                .signing_key_file
                .as_ref()
                .map(|f| c.base_dir.join(f))
        }),
        explain: match (args.explain, args.explain_anywhere) {
            (_, true) => idforce_server::Explain::Anywhere,
            (true, false) => idforce_server::Explain::Loopback,
            (false, false) => idforce_server::Explain::Off,
        },
        database,
        store: idforce_store::StoreSettings {
            serve: true,
            ..store_settings(config.as_ref())?
        },
        config,
    };
    // Signals are caught from here on: one during the start (seeding, a key generated) stops
    // it cleanly, so that an --ephemeral store is still deleted; one right after the banner
    // shuts down cleanly.
    let mut shutdown = Box::pin(idforce_server::app::shutdown_signal());
    let app = tokio::select! {
        built = Application::build(opts, Arc::new(SystemClock)) => built.map_err(|e| e.to_string())?,
        () = &mut shutdown => return Err("stopped by a signal while starting".into()),
    };
    let url = app.public_url().to_owned();
    println!("idforce listening on {url} (bound to {})", app.local_addr());
    if let (
        Origin::Beside {
            path,
            generated: true,
        },
        None,
    ) = (&app.secret_origin, ephemeral)
    {
        println!(
            "generated the system secret into {} (it seals this store's keys and secrets: keep \
             it, and keep it apart from backups of the store)",
            path.display()
        );
    }
    for line in &app.generated.lines {
        match ephemeral {
            // Nothing to show again: the store goes with the process.
            Some(_) => println!("generated {line}"),
            None => println!(
                "generated {line} (`idforce app show NAME --reveal-secret` shows it again)"
            ),
        }
    }
    if let Some(demo) = &app.demo {
        println!(
            "\nEmpty store: seeded org \"Demo\", user {user} (password {pw}) and app \"Demo Integration\".\n\
             Consumer key:    {id}\nConsumer secret: {secret}\n(`idforce app show \"Demo Integration\" --reveal-secret` shows it again.)\n\n\
             Try it:\n  curl -s {url}/services/oauth2/token -d grant_type=password \\\n    \
             -d client_id={id} \\\n    -d client_secret={secret} \\\n    \
             --data-urlencode username={user} --data-urlencode 'password={pw}'\n",
            user = demo.username,
            pw = demo.password,
            id = demo.client_id,
            secret = demo.client_secret,
        );
    } else if let Some(dir) = ephemeral {
        println!(
            "\nEphemeral store in {} (deleted on exit): the config's ids and secrets are the \
             credentials.\n",
            dir.display()
        );
    } else if app.fresh_store {
        let db = &database_flag;
        println!(
            "\nNew store, from the config: its ids and secrets are the credentials \
             (`idforce{db} app list`, `idforce{db} app show NAME --reveal-secret`).\n"
        );
    } else {
        // Credentials are shown once; a restart says how to get them back.
        let db = &database_flag;
        println!(
            "\nExisting store. Credentials again:\n  \
             idforce{db} app list                              # the apps and their consumer keys\n  \
             idforce{db} app show \"NAME\" --reveal-secret      # an app's consumer secret\n  \
             idforce{db} user set-password USERNAME            # a new password, printed\n"
        );
    }
    if args_explain {
        tracing::warn!(
            "--explain: every refusal says why on the wire (idforce_reason, X-Idforce-Reason); \
             for development only"
        );
    }
    tracing::info!(public_url = %url, "ready");
    app.run_until(shutdown).await.map_err(|e| e.to_string())?;
    tracing::info!("stopped");
    Ok(())
}
