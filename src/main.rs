//! The `access-tokens` binary: parses the command line and calls into the library.

use std::process::ExitCode;

use access_tokens::config::SettingsArgs;
use access_tokens::{App, store, telemetry};
use clap::{Parser, Subcommand};

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
        settings: SettingsArgs,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let result = match Cli::parse().command {
        Command::Serve { settings } => serve(settings).await,
        Command::Migrate { settings } => migrate(settings).await,
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

async fn migrate(args: SettingsArgs) -> Result<(), String> {
    let database = args.database().map_err(|e| e.to_string())?;
    let pool = store::pool(database);
    store::migrate(&pool).await.map_err(|e| e.to_string())?;
    tracing::info!("migrations applied");
    Ok(())
}
