//! `access-tokens dev-token`: a bearer token the management API accepts as the given user, for a
//! first run without an identity provider.

use std::time::Duration;

use access_tokens::config::{AddressArgs, Database, StoreArgs};
use access_tokens::keys::{KeyRing, KeySetName};
use access_tokens::service::lifecycle;
use access_tokens::service::policy::Policies;
use access_tokens::tokens::request::{CreateTokenBody, NewToken};
use access_tokens::tokens::{Authority, Caller};
use clap::Args;
use serde_json::Value;

use super::startup::{CliResult, open};

/// How long `dev-token` waits for the service at its PUBLIC_URL before warning that none answers.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Print a bearer token that the management API accepts as the given user, for a first run
/// without an identity provider. It is an api token, stored (listed and revocable like any
/// other) and signed by the api key set. Refused on PostgreSQL unless --allow-production.
///
/// The token's issuer derives from PUBLIC_URL (else http://{LISTEN_ADDR}), as `serve`'s does: give
/// both commands the same address settings and the same DATABASE_URL.
#[derive(Args)]
pub struct DevToken {
    /// The caller's organization id.
    #[arg(long)]
    org: String,
    /// The caller's user id.
    #[arg(long)]
    user: String,
    /// A role the caller holds: <organization_id>:<slug>, or a slug of --org. Repeatable.
    #[arg(long = "role", value_name = "ROLE", num_args = 1..)]
    roles: Vec<String>,
    /// How long the token lives (a number of seconds, or e.g. 30m, 12h, 7d).
    #[arg(long, default_value = "24h")]
    expires_in: String,
    /// Mint it on PostgreSQL too. Anyone who can run this command there can mint a caller
    /// with any organization and role, bypassing the identity provider.
    #[arg(long)]
    allow_production: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    address: AddressArgs,
}

/// Mints a stored api token for the given user and prints it. It goes through the same rules as
/// `POST /v1/access-tokens` (the name, lifetime and role checks), with the named user as creator.
pub async fn run(dev: DevToken) -> CliResult {
    let database = dev.store.database()?;
    if matches!(database, Database::Postgres(_)) && !dev.allow_production {
        return Err(
            "dev-token mints a caller with whatever organization and roles it is given, \
             bypassing the identity provider; DATABASE_URL names PostgreSQL, the production store, \
             so it runs there only with --allow-production"
                .into(),
        );
    }
    let roles = dev
        .roles
        .iter()
        .map(|role| match role.split_once(':') {
            None => Ok(format!("{}:{role}", dev.org)),
            Some((org, _)) if org == dev.org => Ok(role.clone()),
            Some(_) => Err(format!(
                "role {role} is not a role of organization {}: use <organization_id>:<slug> of --org, or the slug alone",
                dev.org
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let public_url = dev.address.public_url()?;
    let (store, kek) = open(&dev.store).await?;
    let keys = KeyRing::load_or_create(&store, &kek, &public_url).await?;
    // The dev user is vouched for by this service itself: its own `api` issuer.
    let caller = Caller {
        user_agent: Some("access-tokens dev-token".to_owned()),
        ..Caller::user(
            &keys.current().set(KeySetName::Api).issuer,
            dev.org,
            dev.user,
            roles,
        )
    };
    let new = NewToken::parse(CreateTokenBody {
        name: Some(format!("dev caller {}", caller.user_id)),
        token_type: Some("api".to_owned()),
        expires_in: Some(serde_json::Value::String(dev.expires_in)),
        ..CreateTokenBody::default()
    })?;
    // The default authority: dev-token names the caller's roles itself, so role settings of
    // `serve` (TOKEN_CREATE_ROLES and the like) would only be asked to approve what it asserts.
    let authority = Authority::default();
    let created = lifecycle::create(
        &store,
        &Policies::default(),
        &keys,
        // A development caller: the default thresholds (its organization's webhooks, if any,
        // are told as of any token's).
        &access_tokens_service::tokens::notice::ExpiryWarnings::default(),
        &authority,
        &caller,
        new,
    )
    .await?;
    store.close().await;
    eprintln!(
        "access-tokens: token {} for user {} of organization {} (roles: {}), issued by {}; send it as `Authorization: Bearer <token>`",
        created.record.id,
        caller.user_id,
        caller.org_id,
        created.record.assignments.join(" "),
        keys.current().set(KeySetName::Api).issuer,
    );
    println!("{}", created.jwt);
    if let Err(why) = probe(&public_url, &created.jwt).await {
        eprintln!(
            "access-tokens: warning: {why}, so the service there would refuse this token (401); \
             start `access-tokens serve` with the same LISTEN_ADDR, PUBLIC_URL and DATABASE_URL \
             as this command"
        );
    }
    Ok(())
}

/// Whether this service answers at `public_url` as the issuer of the token with the JWKS that
/// holds its key: what makes the printed token a caller there. The discovery document's `issuer`
/// is compared, not only the keys: `localhost` and `127.0.0.1` serve the same keys, but a token
/// issued for one is refused by a service that calls itself the other.
async fn probe(public_url: &str, jwt: &str) -> Result<(), String> {
    let base = format!("{public_url}/v1/access-tokens");
    let parsed = access_tokens::keys::jws::parse(jwt).ok();
    let kid = parsed
        .as_ref()
        .and_then(|jws| jws.header.kid.clone())
        .unwrap_or_default();
    let issuer = access_tokens::keys::jws::unverified_issuer(jwt).unwrap_or_default();
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .connect_timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot check {base}: {e}"))?;
    let get = |url: String| {
        let client = client.clone();
        async move {
            let response = client
                .get(&url)
                .send()
                .await
                .map_err(|_| format!("nothing answers at {url}"))?;
            if !response.status().is_success() {
                return Err(format!("{url} answers {}", response.status()));
            }
            response
                .json::<Value>()
                .await
                .map_err(|_| format!("{url} does not answer with JSON"))
        }
    };
    let discovery_url = format!("{base}/.well-known/openid-configuration");
    let discovery = get(discovery_url.clone()).await?;
    let served_issuer = discovery["issuer"].as_str().unwrap_or_default();
    if served_issuer != issuer {
        return Err(format!(
            "the service at {public_url} is the issuer {served_issuer:?}, not this token's {issuer:?} (the same service under another address, or another PUBLIC_URL)"
        ));
    }
    let url = format!("{base}/.well-known/jwks.json");
    let jwks = get(url.clone()).await?;
    let holds_key = jwks["keys"]
        .as_array()
        .is_some_and(|keys| keys.iter().any(|key| key["kid"] == kid.as_str()));
    if !holds_key {
        return Err(format!(
            "the JWKS at {url} does not hold this token's key (another service or database answers there)"
        ));
    }
    Ok(())
}
