//! The `access-tokens` binary: parses the command line, runs the command (`cli`), and turns its
//! outcome into an exit code.

mod cli;

use std::process::ExitCode;

use access_tokens::{config, telemetry};
use clap::{CommandFactory, FromArgMatches};

/// mimalloc: request handling allocates many small short-lived buffers, where it is markedly
/// cheaper than glibc's malloc (see bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What may still run once the command is done (blocking work such as a SQLite statement or key
/// generation) is waited for this long at most before the process exits anyway.
const LEFTOVER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The runtime's worker threads: one more than the cores the process may use. A token creation
/// holds its worker for its RSA signature (0.3 to 1 ms of CPU, most of a creation's), and with
/// one worker per core a moment when every worker signs leaves everything else waiting until a
/// signature ends: the writer's finished statement, the answers it frees, new requests. Under
/// load the machine then idles between the writer's groups. With one worker more, the kernel
/// interleaves them (bench/RESULTS.md, "A worker more than the cores"). `TOKIO_WORKER_THREADS`,
/// when set, decides instead; a value that is not a number of threads is refused with the
/// variable named (tokio itself would panic).
fn worker_threads() -> Result<usize, String> {
    const VARIABLE: &str = "TOKIO_WORKER_THREADS";
    let Some(value) = std::env::var_os(VARIABLE) else {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        return Ok(cores + 1);
    };
    value
        .to_str()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|threads| *threads > 0)
        .ok_or_else(|| {
            format!("{VARIABLE}={value:?} is not a number of threads: a whole number, 1 or more")
        })
}

fn main() -> ExitCode {
    let workers = match worker_threads() {
        Ok(workers) => workers,
        Err(message) => {
            eprintln!("access-tokens: {message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("access-tokens: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    // Dropping a runtime waits for its blocking threads without a bound: a stop must not.
    runtime.shutdown_timeout(LEFTOVER_TIMEOUT);
    code
}

async fn run() -> ExitCode {
    // `.env` in the working directory (never a parent's), when there is one, as `.env.example`
    // implies; a variable already set wins.
    let dotenv_path = std::path::Path::new(".env");
    let dotenv = match dotenvy::from_path(dotenv_path) {
        Ok(()) => Some(dotenv_path),
        Err(error) if error.not_found() => None,
        Err(error) => {
            eprintln!("access-tokens: .env could not be read: {error}");
            return ExitCode::FAILURE;
        }
    };
    let command = with_env_values_hidden(cli::Cli::command());
    let cli = match command
        .clone()
        .try_get_matches()
        .and_then(|matches| cli::Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(error) => match config::setting_error(&error, &command) {
            Some(message) => {
                eprintln!("access-tokens: {message}");
                return ExitCode::from(2);
            }
            None => error.exit(),
        },
    };
    telemetry::init(cli.log_output(), cli.log_format());
    if let Some(path) = dotenv {
        tracing::info!(file = %path.display(), "settings read from .env (variables already set win)");
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
