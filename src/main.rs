//! The `access-tokens` binary: parses the command line and calls into the library.

use std::io::{BufRead, Write};
use std::process::ExitCode;

use access_tokens::config::{Database, SettingsArgs, StoreArgs};
use access_tokens::keys::lifecycle::{self, KeyInfo, Revoked};
use access_tokens::keys::{KeyEncryptionKey, KeyRing, KeySetName};
use access_tokens::store::{Purpose, Store};
use access_tokens::tokens::request::{CreateTokenBody, NewToken};
use access_tokens::tokens::{Caller, service};
use access_tokens::{App, telemetry};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

/// mimalloc: request handling allocates many small short-lived buffers, where it is markedly
/// cheaper than glibc's malloc (see bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "access-tokens",
    version,
    about = "Long-lived access tokens with Cognito-compatible claims, and the JWKS to verify them"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations, load or create the signing keys, and serve the API.
    Serve {
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Apply pending migrations and exit.
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Inspect and manage the signing keys of the four key sets.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print a bearer token that the management API accepts as the given user, for a first run
    /// without an identity provider. It is an api token, stored (listed and revocable like any
    /// other) and signed by the api key set. Refused on PostgreSQL unless --allow-production.
    DevToken {
        /// The caller's organization id.
        #[arg(long)]
        org: String,
        /// The caller's user id.
        #[arg(long)]
        user: String,
        /// A role the caller holds: <organization_id>:<slug>, or a slug of --org. Repeatable.
        #[arg(long = "role", value_name = "ROLE", num_args = 1..)]
        roles: Vec<String>,
        /// How long the token lives (a number of seconds, or e.g. 30m, 12h, 7d).
        #[arg(long, default_value = "24h")]
        expires_in: String,
        /// Mint it on PostgreSQL too. Anyone who can run this command there can mint a caller
        /// with any organization and role, bypassing the identity provider.
        #[arg(long)]
        allow_production: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List every key: set, kid, state, dates and how many stored tokens it signed.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Rotate: next -> active, active -> retired, and a new next key. Running replicas switch
    /// within seconds; tokens signed by the retired key keep verifying.
    Rotate {
        /// The key set to rotate (api, public, portal-preview, contact-identification).
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        set: Option<KeySetName>,
        /// Rotate every key set.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a key after a leak: it is no longer published and every token it signed is refused.
    Revoke {
        /// The kid to revoke (see `keys list`).
        kid: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Re-encrypt every private key under the key-encryption key in KEY_ENCRYPTION_KEY, in one
    /// transaction. The old key comes from --old-key-file or OLD_KEY_ENCRYPTION_KEY.
    Rewrap {
        /// A file holding the old key-encryption key (base64 of 32 bytes).
        #[arg(long)]
        old_key_file: Option<std::path::PathBuf>,
        /// The old key-encryption key itself.
        #[arg(
            long,
            env = "OLD_KEY_ENCRYPTION_KEY",
            hide_env_values = true,
            conflicts_with = "old_key_file"
        )]
        old_key: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = Cli::parse().command;
    telemetry::init(match command {
        Command::Serve { .. } => telemetry::Output::Stdout,
        _ => telemetry::Output::Stderr,
    });
    let result = match command {
        Command::Serve { settings } => serve(settings).await,
        Command::Migrate { store } => migrate(store).await,
        Command::Keys { command } => keys(command).await,
        Command::DevToken {
            org,
            user,
            roles,
            expires_in,
            allow_production,
            settings,
        } => {
            let caller = DevCaller {
                org,
                user,
                roles,
                expires_in,
            };
            dev_token(caller, allow_production, settings).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("access-tokens: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: SettingsArgs) -> Result<(), String> {
    let settings = args.validate().map_err(|e| e.to_string())?;
    let app = App::build(settings).await.map_err(|e| e.to_string())?;
    tracing::info!(address = %app.address(), public_url = app.public_url(), "serving");
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

/// The store, migrated, and its key-encryption key. A new embedded database gets its key file
/// here, with the database.
async fn open(args: &StoreArgs) -> Result<(Store, KeyEncryptionKey), String> {
    let database = args.database().map_err(|e| e.to_string())?;
    let kek = args
        .key_encryption_key(&database)
        .map_err(|e| e.to_string())?;
    let store = Store::open(&database, Purpose::Command)
        .await
        .map_err(|e| e.to_string())?;
    Ok((store, kek))
}

async fn migrate(store: StoreArgs) -> Result<(), String> {
    open(&store).await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn keys(command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::List { store } => {
            let (store, _) = open(&store).await?;
            let keys = lifecycle::list(&store).await.map_err(|e| e.to_string())?;
            print!("{}", render_key_table(&keys));
            Ok(())
        }
        KeysCommand::Rotate { set, all, store } => {
            let (store, kek) = open(&store).await?;
            let sets: Vec<KeySetName> = if all {
                KeySetName::ALL.to_vec()
            } else {
                set.into_iter().collect()
            };
            let rotated = lifecycle::rotate(&store, &kek, &sets)
                .await
                .map_err(|e| e.to_string())?;
            for (set, kid) in rotated {
                println!("{set}: {kid} is now active");
            }
            Ok(())
        }
        KeysCommand::Revoke { kid, yes, store } => {
            let (store, kek) = open(&store).await?;
            if !yes && !confirm(&kid)? {
                return Err("not revoked".to_owned());
            }
            match lifecycle::revoke(&store, &kek, &kid)
                .await
                .map_err(|e| e.to_string())?
            {
                Revoked::Already => println!("{kid} was already revoked"),
                Revoked::Now { key_set, promoted } => {
                    println!("{kid} of key set {key_set} is revoked; tokens it signed are refused");
                    if let Some(active) = promoted {
                        println!("{key_set}: {active} is now active");
                    }
                }
            }
            Ok(())
        }
        KeysCommand::Rewrap {
            old_key_file,
            old_key,
            store,
        } => {
            let old_text = match (old_key_file, old_key) {
                (Some(path), _) => std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read --old-key-file {}: {e}", path.display()))?,
                (None, Some(key)) => key,
                (None, None) => {
                    return Err("give the old key-encryption key with --old-key-file or OLD_KEY_ENCRYPTION_KEY".to_owned());
                }
            };
            let old = KeyEncryptionKey::from_base64(&old_text)
                .map_err(|e| format!("the old key-encryption key {e}"))?;
            let (store, new) = open(&store).await?;
            let count = lifecycle::rewrap(&store, &old, &new)
                .await
                .map_err(|e| e.to_string())?;
            println!("{count} private keys are now sealed under the new KEY_ENCRYPTION_KEY");
            Ok(())
        }
    }
}

/// Who `dev-token` mints a caller for.
struct DevCaller {
    org: String,
    user: String,
    roles: Vec<String>,
    expires_in: String,
}

/// Mints a stored api token for the given user and prints it. It goes through the same rules as
/// `POST /v1/access-tokens` (the name, lifetime and role checks), with the named user as creator.
async fn dev_token(
    dev: DevCaller,
    allow_production: bool,
    args: SettingsArgs,
) -> Result<(), String> {
    let database = args.store.database().map_err(|e| e.to_string())?;
    if matches!(database, Database::Postgres(_)) && !allow_production {
        return Err(
            "dev-token mints a caller with whatever organization and roles it is given, \
             bypassing the identity provider; DATABASE_URL names PostgreSQL, the production store, \
             so it runs there only with --allow-production"
                .to_owned(),
        );
    }
    let roles = dev
        .roles
        .iter()
        .map(|role| match role.split_once(':') {
            None => Ok(format!("{}:{role}", dev.org)),
            Some((org, _)) if org == dev.org => Ok(role.clone()),
            Some(_) => Err(format!(
                "role {role} is not a role of organization {}: use <organization_id>:<slug> of --org, or the slug alone",
                dev.org
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let settings = args.validate().map_err(|e| e.to_string())?;
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen_addr));
    let store = Store::open(&settings.database, Purpose::Command)
        .await
        .map_err(|e| e.to_string())?;
    let keys = KeyRing::load_or_create(&store, &settings.key_encryption_key, &public_url)
        .await
        .map_err(|e| e.to_string())?;
    let caller = Caller {
        org_id: dev.org,
        user_id: dev.user,
        roles,
        username: None,
        email: None,
        read_only: false,
        anonymize: false,
        token_id: None,
        source_ip: None,
        user_agent: Some("access-tokens dev-token".to_owned()),
    };
    let new = NewToken::parse(CreateTokenBody {
        name: Some(format!("dev caller {}", caller.user_id)),
        token_type: Some("api".to_owned()),
        expires_in: Some(serde_json::Value::String(dev.expires_in)),
        ..CreateTokenBody::default()
    })
    .map_err(|e| e.to_string())?;
    let created = service::create(&store, &keys, &caller, new)
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    eprintln!(
        "access-tokens: token {} for user {} of organization {} (roles: {}), issued by {}; send it as `Authorization: Bearer <token>`",
        created.record.id,
        caller.user_id,
        caller.org_id,
        created.record.assignments.join(" "),
        keys.current().set(KeySetName::Api).issuer,
    );
    println!("{}", created.jwt);
    Ok(())
}

/// Asks on the terminal; anything but `yes` (or `y`) keeps the key.
fn confirm(kid: &str) -> Result<bool, String> {
    print!(
        "Revoke key {kid}? It will no longer be published and every token it signed will be refused. Type yes to confirm: "
    );
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(matches!(answer.trim(), "yes" | "y"))
}

fn render_key_table(keys: &[KeyInfo]) -> String {
    let date = |t: Option<DateTime<Utc>>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
    };
    let mut rows = vec![[
        "SET".to_owned(),
        "KID".to_owned(),
        "STATE".to_owned(),
        "CREATED".to_owned(),
        "ACTIVATED".to_owned(),
        "RETIRED".to_owned(),
        "REVOKED".to_owned(),
        "TOKENS".to_owned(),
    ]];
    for k in keys {
        rows.push([
            k.key_set.clone(),
            k.kid.clone(),
            k.state.clone(),
            date(Some(k.created_at)),
            date(k.activated_at),
            date(k.retired_at),
            date(k.revoked_at),
            k.tokens_signed.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
