//! Logging, set up once: JSON lines in production, pretty output on a terminal. The filter comes
//! from `RUST_LOG` (default `info`), the format from `LOG_FORMAT` (`json` or `pretty`). The
//! service logs to stdout; commands log to stderr, so that their stdout carries only their answer.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
}

/// Sets up logging; refuses a `LOG_FORMAT` other than `json` or `pretty` (unset or empty: pretty
/// on a terminal, else json).
pub fn init(output: Output) -> Result<(), String> {
    // PostgreSQL's notices (such as the ROLLBACK the driver sends after a client hung up mid-query)
    // are chatter, not events of the service.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=error"));
    let format = std::env::var("LOG_FORMAT").ok();
    let json = match format.as_deref().map(str::trim) {
        Some("json") => true,
        Some("pretty") => false,
        None | Some("") => match output {
            Output::Stdout => !std::io::stdout().is_terminal(),
            Output::Stderr => !std::io::stderr().is_terminal(),
        },
        Some(other) => {
            return Err(format!(
                "LOG_FORMAT {other:?} is not a log format: use json or pretty (unset: pretty on a terminal, else json)"
            ));
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(move || -> Box<dyn std::io::Write> {
            match output {
                Output::Stdout => Box::new(std::io::stdout()),
                Output::Stderr => Box::new(std::io::stderr()),
            }
        });
    // A second initialisation (tests) keeps the first subscriber.
    let _ = if json {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    Ok(())
}
