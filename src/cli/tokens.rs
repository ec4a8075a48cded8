//! `tokens`: operators' commands on tokens, for when no admin's token is at hand.

use std::io::{BufRead, Write};

use access_tokens::config::StoreArgs;
use access_tokens::service::offboard;
use access_tokens::tokens::Actor;
use clap::Subcommand;

use super::startup::{CliResult, open};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Revoke every token a user created in an organization, and every token made from them, in
    /// one transaction (someone left). Each gets a `revoked` audit event with
    /// details.reason "offboarded" and the actor {"type": "operator"}; running replicas refuse
    /// them within a second. Asks first.
    Offboard {
        /// The organization id.
        #[arg(long)]
        org: String,
        /// The user id (the tokens' created_by).
        #[arg(long)]
        user: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

pub async fn run(command: TokensCommand) -> CliResult {
    match command {
        TokensCommand::Offboard {
            org,
            user,
            yes,
            store,
        } => {
            let user = offboard::user_id(&user)?.to_owned();
            let (store, _) = open(&store).await?;
            if !yes && !confirm(&org, &user)? {
                return Err("nothing revoked".into());
            }
            let actor = Actor {
                org_id: org.clone(),
                home_org_id: None,
                user_id: String::new(),
                token_id: None,
                source_ip: None,
                user_agent: Some(
                    concat!("access-tokens/", env!("CARGO_PKG_VERSION"), " cli").to_owned(),
                ),
            };
            let revoked = offboard::offboard(&store, &org, &user, &actor, Some("operator")).await?;
            store.close().await;
            for token in &revoked {
                println!("{}", token.id);
            }
            eprintln!(
                "{} token(s) of user {user} in organization {org} revoked",
                revoked.len()
            );
        }
    }
    Ok(())
}

fn confirm(org: &str, user: &str) -> std::io::Result<bool> {
    print!(
        "Revoke every token user {user} created in organization {org}, and every token made from them? Type yes to confirm: "
    );
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "yes" | "y"))
}
