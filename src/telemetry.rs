//! Logging, set up once: JSON lines in production, pretty output on a terminal. The filter comes
//! from `RUST_LOG` (default `info`), the format from `LOG_FORMAT` (`json` or `pretty`). The
//! service logs to stdout; commands log to stderr, so that their stdout carries only their answer.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{FmtSpan, JsonFields, Writer};

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
            .fmt_fields(AppendingJsonFields)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The JSON lines' span fields as `JsonFields` writes them, but a field recorded after the span
/// began (a request's organization, its token, status and latency: four per management request)
/// is appended to the span's JSON object, where `JsonFields` parses the object and writes it again
/// each time (about 1 % of a token creation's CPU). A field recorded twice appears twice in the
/// stored object; the line's writer reads the object into a map, where the later value wins, as
/// it did. The lines are the same, keys in the same order.
struct AppendingJsonFields;

impl<'writer> FormatFields<'writer> for AppendingJsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        writer: Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        JsonFields::new().format_fields(writer, fields)
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> std::fmt::Result {
        let mut added = String::new();
        JsonFields::new().format_fields(Writer::new(&mut added), fields)?;
        append_object(&mut current.fields, &added);
        Ok(())
    }
}

/// `{"a":1}` and `{"b":2}` make `{"a":1,"b":2}`; an empty side is the other one.
fn append_object(current: &mut String, added: &str) {
    let Some(members) = added.strip_prefix('{').and_then(|a| a.strip_suffix('}')) else {
        return;
    };
    if members.is_empty() {
        return;
    }
    if current.len() < 2 || current.as_str() == "{}" {
        current.clear();
        current.push_str(added);
        return;
    }
    current.pop();
    current.push(',');
    current.push_str(members);
    current.push('}');
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// The request span's line, logged through `JsonFields` or the appending fields.
    fn line(appending: bool) -> serde_json::Value {
        let lines = Lines::default();
        let builder = tracing_subscriber::fmt()
            .with_writer(lines.clone())
            .without_time()
            .json()
            .with_current_span(true)
            .with_span_list(false);
        let log = || {
            let span = tracing::info_span!(
                "request",
                method = %"POST",
                route = "/v1/access-tokens",
                org_id = tracing::field::Empty,
                token_id = tracing::field::Empty,
                status = tracing::field::Empty,
                latency_ms = tracing::field::Empty,
            );
            let _entered = span.enter();
            span.record("org_id", "1");
            span.record("token_id", "api_\"quoted\"");
            span.record("status", 201);
            span.record("latency_ms", 1.5);
            span.record("status", 500);
            tracing::info!(extra = true, "request finished");
        };
        if appending {
            tracing::subscriber::with_default(
                builder.fmt_fields(AppendingJsonFields).finish(),
                log,
            );
        } else {
            tracing::subscriber::with_default(builder.finish(), log);
        }
        let bytes = lines.0.lock().unwrap().clone();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn appended_span_fields_log_the_same_line() {
        let line_appending = line(true);
        assert_eq!(line_appending, line(false));
        assert_eq!(
            line_appending["span"]["status"], 500,
            "the later value wins"
        );
        assert_eq!(line_appending["span"]["token_id"], "api_\"quoted\"");
    }

    #[test]
    fn objects_are_appended() {
        let mut current = String::new();
        append_object(&mut current, "{}");
        assert_eq!(current, "");
        append_object(&mut current, r#"{"a":1}"#);
        assert_eq!(current, r#"{"a":1}"#);
        append_object(&mut current, "{}");
        append_object(&mut current, r#"{"b":"}"}"#);
        assert_eq!(current, r#"{"a":1,"b":"}"}"#);
    }
}
