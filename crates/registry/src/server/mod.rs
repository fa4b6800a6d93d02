//! `berth registry serve`: an OCI distribution registry.
//!
//! - [`auth`]: htpasswd users, the access policy, Basic and token auth.
pub mod auth;
pub mod gc;
pub mod tls;
