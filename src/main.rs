//! The `access-tokens` binary: parses the command line, runs the command (`cli`), and turns its
//! outcome into an exit code.

mod cli;

use std::process::ExitCode;

use access_tokens::telemetry;
use clap::Parser;

/// mimalloc: request handling allocates many small short-lived buffers, where it is markedly
/// cheaper than glibc's malloc (see bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    telemetry::init(cli.log_output());
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Each error of the service says its cause and the fix in its own message.
            eprintln!("access-tokens: {error}");
            ExitCode::FAILURE
        }
    }
}
