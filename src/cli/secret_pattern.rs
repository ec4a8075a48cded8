//! `secret-pattern`: the regular expressions that recognise this deployment's tokens, for secret
//! scanners (GitHub custom patterns, gitleaks, trufflehog).

use access_tokens::config::AddressArgs;
use access_tokens::tokens::KeySetName;
use access_tokens::tokens::secret_pattern::{keyword, pattern};
use clap::{Args, ValueEnum};

use super::startup::CliResult;

/// Print one regular expression per key set that matches every token of that key set this
/// deployment issues, and nothing else (RE2 and PCRE syntax: GitHub custom patterns, gitleaks,
/// trufflehog). The deployment is its PUBLIC_URL (else http://{LISTEN_ADDR}), as for `serve`:
/// give both the same address settings. contact_identification tokens (never stored, 15 minutes
/// at most) have none.
#[derive(Args)]
pub struct SecretPattern {
    /// `lines`: `<key set> <pattern>` per line; `gitleaks`: a gitleaks rule file (TOML).
    #[arg(long, value_enum, default_value_t = Format::Lines)]
    format: Format,
    /// Only this key set's pattern (api, public, portal-preview), printed alone.
    #[arg(long)]
    set: Option<KeySetName>,
    #[command(flatten)]
    address: AddressArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Lines,
    Gitleaks,
}

/// The key sets whose tokens are stored, and so can be revoked once found.
fn scanned() -> impl Iterator<Item = KeySetName> {
    KeySetName::ALL.into_iter().filter(|s| s.has_status_lists())
}

pub fn run(command: SecretPattern) -> CliResult {
    let public_url = command.address.public_url()?;
    if let Some(set) = command.set {
        if !set.has_status_lists() {
            return Err(format!(
                "key set {set} has no pattern: its tokens are never stored and live 15 minutes at most"
            )
            .into());
        }
        println!("{}", pattern(&set.issuer(&public_url)));
        return Ok(());
    }
    match command.format {
        Format::Lines => {
            for set in scanned() {
                println!("{set} {}", pattern(&set.issuer(&public_url)));
            }
        }
        Format::Gitleaks => print!("{}", gitleaks(&public_url)),
    }
    Ok(())
}

/// A gitleaks configuration holding one rule per key set.
fn gitleaks(public_url: &str) -> String {
    let mut out = format!(
        "# gitleaks rules for the tokens of access-tokens at {public_url}\n\
         # (access-tokens secret-pattern --format gitleaks). Use alone (gitleaks detect --config\n\
         # this-file), or beside the default rules with [extend] useDefault = true.\n\
         title = \"access-tokens at {public_url}\"\n"
    );
    for set in scanned() {
        let issuer = set.issuer(public_url);
        out.push_str(&format!(
            "\n[[rules]]\n\
             id = \"access-tokens-{set}\"\n\
             description = \"access-tokens {set} token (issuer {issuer}); revoke it with POST {public_url}/v1/access-tokens/revoke\"\n\
             regex = '''{}'''\n\
             keywords = [\"{}\"]\n",
            pattern(&issuer),
            keyword(),
        ));
    }
    out
}
