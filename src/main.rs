//! The `access-tokens` binary: parses the command line, runs the command (`cli`), and turns its
//! outcome into an exit code.

mod cli;

use std::process::ExitCode;

use access_tokens::telemetry;
use clap::{CommandFactory, FromArgMatches};

/// mimalloc: request handling allocates many small short-lived buffers, where it is markedly
/// cheaper than glibc's malloc (see bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match cli::Cli::from_arg_matches(
        &with_env_values_hidden(cli::Cli::command()).get_matches(),
    ) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    if let Err(error) = telemetry::init(cli.log_output()) {
        eprintln!("access-tokens: {error}");
        return ExitCode::FAILURE;
    }
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Each error of the service says its cause and the fix in its own message.
            eprintln!("access-tokens: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `--help` names each variable (`[env: LISTEN_ADDR]`) without its value: an unset one would read
/// `[env: LISTEN_ADDR=]`, and a set one may be a secret.
fn with_env_values_hidden(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| arg.hide_env_values(true))
        .mut_subcommands(with_env_values_hidden)
}
