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

/// `LOG_FORMAT`: JSON lines or pretty output; unset or empty, pretty on a terminal, else JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Auto,
    Json,
    Pretty,
}

impl LogFormat {
    /// The value parser of `LOG_FORMAT`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "" => Ok(Self::Auto),
            "json" => Ok(Self::Json),
            "pretty" => Ok(Self::Pretty),
            _ => Err(
                "not a log format: use json or pretty (unset: pretty on a terminal, else json)"
                    .to_owned(),
            ),
        }
    }
}

/// Sets up logging to `output` in `format`.
pub fn init(output: Output, format: LogFormat) {
    // PostgreSQL's notices (such as the ROLLBACK the driver sends after a client hung up mid-query)
    // are chatter, not events of the service.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx::postgres::notice=error"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => match output {
            Output::Stdout => !std::io::stdout().is_terminal(),
            Output::Stderr => !std::io::stderr().is_terminal(),
        },
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
}
