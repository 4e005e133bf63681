//! **auth0-server**: the Auth0 server-side SDK for Rust web applications.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clock;
pub mod store;

pub use auth0_server_protocol as protocol;
