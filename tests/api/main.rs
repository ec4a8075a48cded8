//! Integration tests: the real service, bound on port 0, against a fresh PostgreSQL database per
//! test, spoken to over HTTP.

mod auth;
mod binary;
mod create;
mod helpers;
mod http_errors;
mod introspection;
mod keys;
mod lifecycle;
mod list_revoke;
mod openapi;
mod replicas;
mod well_known;
