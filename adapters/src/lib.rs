//! **auth0-server**: the Auth0 server-side SDK for Rust web applications.
//!
//! The protocol — every decision — lives in the sans-IO core, [`protocol`]. This crate moves
//! the bytes: a [`blocking`] client over `ureq`, an async client ([`nonblocking`]) over any
//! HTTP client you plug in, the store traits and stores ([`store`]), and single-flight refresh
//! (concurrent refreshes of one refresh token share one request; a rotated refresh token's
//! answer is remembered briefly so a late request with the old cookie does not trip reuse
//! detection).
//!
//! # Example
//!
//! A session is in the in-memory store, its access token is valid: `get_access_token`
//! serves it without any network request (the tenant below is never contacted).
//!
//! ```
//! use auth0_server::blocking::ServerClient;
//! use auth0_server::protocol::session::{StateData, TokenSet};
//! use auth0_server::store::CookieOptions;
//! use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
//! use auth0_server::{AccessTokenRequest, Config};
//!
//! let config = Config::builder("tenant.auth0.com", "client-id")
//!     .client_secret("client-secret")
//!     .secret("a-secret-of-at-least-32-bytes-long!!")
//!     .audience("https://api.example.com")
//!     .build()?;
//! let sessions = MemoryStateStore::new();
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
//! let session_id = sessions.insert(StateData {
//!     token_sets: vec![TokenSet {
//!         audience: "https://api.example.com".into(),
//!         access_token: "eyJ...".into(),
//!         scope: Some("openid profile email offline_access".into()),
//!         expires_at: now + 3600,
//!     }],
//!     ..Default::default()
//! })?;
//! let client = ServerClient::builder(config, sessions, MemoryTransactionStore::new()).build();
//!
//! // A request arrives carrying the session cookie.
//! let mut headers = http::HeaderMap::new();
//! headers.insert(http::header::COOKIE, format!("__a0_sid={session_id}").parse()?);
//! let mut store_options = CookieOptions::from_request_headers(&headers);
//!
//! let token = client.get_access_token(&mut store_options)?;
//! assert_eq!(token.access_token.expose(), "eyJ...");
//!
//! // Errors carry stable codes.
//! let err = client
//!     .get_access_token_with(AccessTokenRequest::audience("https://other.example.com"), &mut store_options)
//!     .unwrap_err();
//! assert_eq!(err.code(), "missing_refresh_token");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
pub mod blocking;
pub mod clock;
pub mod coordinator;
mod driver;
mod error;
pub mod nonblocking;
mod single_flight;
pub mod store;
mod trace;

pub use auth0_server_protocol as protocol;
pub use auth0_server_protocol::access_token::{AccessToken, AccessTokenRequest};
pub use auth0_server_protocol::config::Config;
pub use auth0_server_protocol::connection_token::{ConnectionToken, ConnectionTokenRequest};
pub use auth0_server_protocol::login::{LoginResult, StartLoginOptions};
pub use auth0_server_protocol::logout::LogoutOptions;
pub use driver::DEFAULT_ROTATION_GRACE;
pub use error::{Error, TransportError, TransportErrorKind};

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
