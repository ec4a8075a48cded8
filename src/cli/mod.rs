//! The commands of the `access-tokens` binary, one module per family: `serve` and `migrate` here,
//! `keys`, `dev-token` and `secret-pattern` beside. Each returns one error type, which `main` prints.

mod dev_token;
mod keys;
mod secret_pattern;
mod startup;
mod tokens;

use access_tokens::config::{SettingsArgs, StoreArgs};
use access_tokens::{App, telemetry};
use clap::{Parser, Subcommand};
use startup::{CliResult, open};

#[derive(Parser)]
#[command(
    name = "access-tokens",
    version,
    about = "Long-lived access tokens with Cognito-compatible claims, and the JWKS to verify them"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines as JSON (json) or for people (pretty). Unset or empty: pretty on a terminal,
    /// else json.
    #[arg(long, env = "LOG_FORMAT", global = true, value_parser = telemetry::LogFormat::parse)]
    log_format: Option<telemetry::LogFormat>,
}

#[derive(Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once per run; serve's settings are simply the most numerous"
)]
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
        command: keys::KeysCommand,
    },
    DevToken(dev_token::DevToken),
    /// Operators' commands on tokens (offboard a user).
    Tokens {
        #[command(subcommand)]
        command: tokens::TokensCommand,
    },
    SecretPattern(secret_pattern::SecretPattern),
}

impl Cli {
    /// Where the log goes: the service logs to stdout; commands keep stdout for their answer.
    pub fn log_output(&self) -> telemetry::Output {
        match self.command {
            Command::Serve { .. } => telemetry::Output::Stdout,
            _ => telemetry::Output::Stderr,
        }
    }

    pub fn log_format(&self) -> telemetry::LogFormat {
        self.log_format.unwrap_or_default()
    }

    pub async fn run(self) -> CliResult {
        match self.command {
            Command::Serve { settings } => serve(settings).await,
            Command::Migrate { store } => {
                open(&store).await?;
                tracing::info!("migrations applied");
                Ok(())
            }
            Command::Keys { command } => keys::run(command).await,
            Command::DevToken(dev) => dev_token::run(dev).await,
            Command::SecretPattern(command) => secret_pattern::run(command),
            Command::Tokens { command } => tokens::run(command).await,
        }
    }
}

async fn serve(args: SettingsArgs) -> CliResult {
    let app = App::build(args.validate()?).await?;
    tracing::info!(address = %app.address(), public_url = app.public_url(), "serving");
    Ok(app.run_until_stopped().await?)
}
