//! The integration suite: the real service, bound on port 0, against a fresh database per test,
//! spoken to over HTTP. One binary runs on either store, as `TEST_STORE` says: `postgres` (the
//! default; a database per test on `TEST_DATABASE_URL`'s server) or `sqlite` (an embedded SQLite
//! file per test). `scripts/test.sh` runs it once per store. The few tests that need one store
//! (`postgres_only`, `standby`, `embedded_only`) return at once on the other, saying so.

mod auth;
mod authority;
mod binary;
mod create;
mod dev_token;
mod embedded_only;
mod faults;
mod federation;
mod hardening;
mod helpers;
mod http_errors;
mod identity_providers;
mod introspection;
mod issuers;
mod keys;
mod leaks;
mod lifecycle;
mod limits;
mod list_revoke;
mod metrics;
mod offboard;
mod offline_verifier;
mod openapi;
mod policy;
mod postgres_only;
mod replicas;
mod rotation;
mod secret_pattern;
mod secret_scanning;
mod settings_page;
mod standby;
mod status_lists;
mod suspension;
mod webhooks;
mod well_known;
