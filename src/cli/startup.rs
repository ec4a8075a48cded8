//! What every command starts with: its error type, and the store the settings name, opened and
//! migrated, with its key-encryption key. (`serve` gets the same through `App::build`.)

use access_tokens::config::StoreArgs;
use access_tokens::keys::KeyEncryptionKey;
use access_tokens::store::{Purpose, Store};

/// What a command fails with: any error; each says its cause and the fix.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// The start-up step of the operator commands: the store the settings name, opened and migrated,
/// and its key-encryption key. A new embedded database gets its key file here, with the database.
pub async fn open(
    args: &StoreArgs,
) -> Result<(Store, KeyEncryptionKey), Box<dyn std::error::Error>> {
    let database = args.database()?;
    let kek = args.key_encryption_key(&database)?;
    let store = Store::open(&database, Purpose::Command).await?;
    Ok((store, kek))
}
