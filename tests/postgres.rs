//! The integration suite on PostgreSQL: the real service, bound on port 0, against a fresh
//! database per test, spoken to over HTTP. `tests/sqlite.rs` runs the same modules on the
//! embedded store.

const STORE: helpers::StoreKind = helpers::StoreKind::Postgres;

#[path = "api/auth.rs"]
mod auth;
#[path = "api/authority.rs"]
mod authority;
#[path = "api/binary.rs"]
mod binary;
#[path = "api/create.rs"]
mod create;
#[path = "api/dev_token.rs"]
mod dev_token;
#[path = "api/faults.rs"]
mod faults;
#[path = "api/hardening.rs"]
mod hardening;
// Shared by both suites; each uses its part.
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/http_errors.rs"]
mod http_errors;
#[path = "api/introspection.rs"]
mod introspection;
#[path = "api/issuers.rs"]
mod issuers;
#[path = "api/keys.rs"]
mod keys;
#[path = "api/lifecycle.rs"]
mod lifecycle;
#[path = "api/limits.rs"]
mod limits;
#[path = "api/list_revoke.rs"]
mod list_revoke;
#[path = "api/metrics.rs"]
mod metrics;
#[path = "api/offline_verifier.rs"]
mod offline_verifier;
#[path = "api/openapi.rs"]
mod openapi;
#[path = "api/policy.rs"]
mod policy;
#[path = "api/postgres_only.rs"]
mod postgres_only;
#[path = "api/replicas.rs"]
mod replicas;
#[path = "api/standby.rs"]
mod standby;
#[path = "api/status_lists.rs"]
mod status_lists;
#[path = "api/suspension.rs"]
mod suspension;
#[path = "api/well_known.rs"]
mod well_known;
