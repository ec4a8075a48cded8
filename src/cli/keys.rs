//! `access-tokens keys ...`: list, rotate, revoke and re-wrap the signing keys of the four key
//! sets, on the store the settings name.

use std::io::{BufRead, Write};

use access_tokens::config::StoreArgs;
use access_tokens::keys::lifecycle::{self, Revoked};
use access_tokens::keys::{KeyEncryptionKey, KeySetName};
use access_tokens::store::KeyInfo;
use access_tokens::store::types::Timestamp;
use clap::Subcommand;

use super::startup::{CliResult, open};

#[derive(Subcommand)]
pub enum KeysCommand {
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
        /// The service's public URL: the `source` of the `key.rotated` webhook event each
        /// organization's subscribed endpoints receive (without it, the path alone).
        #[arg(long, env = "PUBLIC_URL", hide_env_values = true)]
        public_url: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a key after a leak: it is no longer published and every token it signed is refused.
    Revoke {
        /// The kid to revoke (see `keys list`). A kid is base64url and may start with `-`: it is
        /// taken as the kid, not as an option.
        #[arg(allow_hyphen_values = true)]
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

pub async fn run(command: KeysCommand) -> CliResult {
    match command {
        KeysCommand::List { store } => {
            let (store, kek) = open(&store).await?;
            let unopened = lifecycle::unopened(&store, &kek).await?;
            print!(
                "{}",
                render_key_table(&lifecycle::list(&store).await?, &unopened)
            );
            if !unopened.is_empty() {
                eprintln!(
                    "{} key(s) marked CANNOT OPEN are not sealed under this KEY_ENCRYPTION_KEY: the service neither publishes nor trusts them",
                    unopened.len()
                );
            }
        }
        KeysCommand::Rotate {
            set,
            all,
            public_url,
            store,
        } => {
            let (store, kek) = open(&store).await?;
            let sets: Vec<KeySetName> = if all {
                KeySetName::ALL.to_vec()
            } else {
                set.into_iter().collect()
            };
            let public_url = public_url.unwrap_or_default();
            let public_url = public_url.trim_end_matches('/');
            for (set, kid) in lifecycle::rotate(&store, &kek, &sets, public_url).await? {
                println!("{set}: {kid} is now active");
            }
        }
        KeysCommand::Revoke { kid, yes, store } => {
            let (store, kek) = open(&store).await?;
            if !yes && !confirm(&kid)? {
                return Err("not revoked".into());
            }
            match lifecycle::revoke(&store, &kek, &kid).await? {
                Revoked::Already => println!("{kid} was already revoked"),
                Revoked::Now { key_set, promoted } => {
                    println!("{kid} of key set {key_set} is revoked; tokens it signed are refused");
                    if let Some(active) = promoted {
                        println!("{key_set}: {active} is now active");
                    }
                }
            }
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
                    return Err("give the old key-encryption key with --old-key-file or OLD_KEY_ENCRYPTION_KEY".into());
                }
            };
            let old = KeyEncryptionKey::from_base64(&old_text)
                .map_err(|e| format!("the old key-encryption key {e}"))?;
            let (store, new) = open(&store).await?;
            let count = lifecycle::rewrap(&store, &old, &new).await?;
            println!("{count} private keys are now sealed under the new KEY_ENCRYPTION_KEY");
        }
    }
    Ok(())
}

/// Asks on the terminal; anything but `yes` (or `y`) keeps the key.
fn confirm(kid: &str) -> std::io::Result<bool> {
    print!(
        "Revoke key {kid}? It will no longer be published and every token it signed will be refused. Type yes to confirm: "
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "yes" | "y"))
}

/// The keys as a table; a published key the key-encryption key does not open says so in STATE.
fn render_key_table(keys: &[KeyInfo], unopened: &std::collections::HashSet<String>) -> String {
    let date = |t: Option<Timestamp>| {
        t.map_or_else(
            || "-".to_owned(),
            |t| t.0.format("%Y-%m-%d %H:%M:%S").to_string(),
        )
    };
    let header = [
        "SET",
        "KID",
        "STATE",
        "CREATED",
        "ACTIVATED",
        "RETIRED",
        "REVOKED",
        "TOKENS",
    ];
    let mut rows = vec![header.map(str::to_owned)];
    for k in keys {
        rows.push([
            k.key_set.clone(),
            k.kid.clone(),
            if unopened.contains(&k.kid) {
                format!("{} (CANNOT OPEN)", k.state)
            } else {
                k.state.to_string()
            },
            date(Some(k.created_at)),
            date(k.activated_at),
            date(k.retired_at),
            date(k.revoked_at),
            k.tokens_signed.to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
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

#[cfg(test)]
mod tests {
    use super::KeysCommand;
    use clap::Parser;

    #[derive(Parser)]
    struct Keys {
        #[command(subcommand)]
        command: KeysCommand,
    }

    #[test]
    fn a_kid_starting_with_a_hyphen_is_a_kid() {
        // Kids are base64url: one in 64 starts with `-`.
        for args in [
            ["x", "revoke", "-Qx1", "--yes"],
            ["x", "revoke", "--yes", "-Qx1"],
        ] {
            let parsed = Keys::try_parse_from(args).unwrap();
            assert!(
                matches!(&parsed.command, KeysCommand::Revoke { kid, yes: true, .. } if kid == "-Qx1"),
                "{args:?}"
            );
        }
    }
}
