//! **auth0-server**: the Auth0 server-side SDK for Rust web applications.
//!
//! The protocol — every decision — lives in the sans-IO core, [`protocol`]. This crate moves
//! the bytes: a [`blocking`] client over `ureq`, an async client ([`nonblocking`]) over any
//! HTTP client (a `reqwest` one ships in [`http`]), the store traits and stores ([`store`]),
//! and single-flight refresh (concurrent refreshes of one refresh token share one request; a
//! rotated refresh token's answer is remembered briefly so a late request with the old cookie
//! does not trip reuse detection).
//!
//! # Features
//!
//! | feature | what it adds |
//! |---|---|
//! | `blocking` (default) | [`blocking::ServerClient`] over `ureq`, rustls with the Mozilla roots |
//! | `blocking-platform-verifier` | the blocking client verifies certificates with the operating system |
//! | `blocking-native-tls` | the blocking client over the platform's TLS library |
//! | `reqwest` | [`http::ReqwestClient`], the async client's HTTP client (rustls, Mozilla roots) |
//! | `reqwest-native-roots` | `reqwest` also trusts the operating system's root certificates |
//! | `reqwest-native-tls` | `reqwest` over the platform's TLS library |
//! | `redis` | Redis session and transaction stores and the cross-instance refresh coordinator |
//! | `redis-tokio` | their async twins, for the async client on tokio |
//! | `redis-tls`, `redis-tokio-tls` | `rediss://` (TLS, rustls) for the Redis types |
//!
//! An async application needs no `ureq`:
//! `auth0-server = { version = "0.1", default-features = false, features = ["reqwest"] }`.
//! Both HTTP clients take proxies from `HTTPS_PROXY`/`NO_PROXY`; see [`http`].
//!
//! # Client authentication
//!
//! The [`Config`] names how the application authenticates to Auth0: a client secret (post or
//! Basic), `private_key_jwt` (`ConfigBuilder::private_key_jwt`), or mutual TLS
//! (`ConfigBuilder::tls_client_auth` / `self_signed_tls_client_auth`, RFC 8705). For mTLS both
//! shipped HTTP clients take the client certificate and its key directly
//! ([`http::ClientCertificate`]: `blocking::ServerClientBuilder::client_certificate`,
//! `http::ReqwestClientBuilder::client_certificate`), plus extra trusted roots for a private
//! PKI ([`http::RootCertificates`]); the README's "Client authentication" section shows each.
//!
//! # Walkthrough: login, callback, tokens, logout
//!
//! One client per application, built once. Each request handler gives it the request's
//! cookies as [`CookieOptions`](store::CookieOptions) and sends back the `Set-Cookie` headers
//! the stores wrote. With the encrypted cookie stores below the session lives in the browser;
//! [`store::memory`] and `store::redis` keep it on the server instead. The async client
//! ([`nonblocking::ServerClient`]) has the same methods as `async fn`s.
//!
//! ```
//! # // The tenant is the Auth0 emulator on 127.0.0.1; the "browser" keeps cookies in a map.
//! # let emulator = auth0_emulator::Emulator::start(Default::default());
//! # let (domain, client_id, client_secret) =
//! #     (emulator.base_url(), emulator.client_id().to_owned(), emulator.client_secret().to_owned());
//! # let mut jar = std::collections::BTreeMap::<String, String>::new();
//! # fn browser(jar: &mut std::collections::BTreeMap<String, String>, sent: &http::HeaderMap) -> http::HeaderMap {
//! #     for value in sent.get_all(http::header::SET_COOKIE) {
//! #         let value = value.to_str().unwrap();
//! #         let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
//! #         let (name, cookie) = pair.split_once('=').unwrap();
//! #         if attributes.contains("Max-Age=0") { jar.remove(name); } else { jar.insert(name.into(), cookie.into()); }
//! #     }
//! #     let cookie: Vec<String> = jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
//! #     let mut headers = http::HeaderMap::new();
//! #     if !cookie.is_empty() { headers.insert(http::header::COOKIE, cookie.join("; ").parse().unwrap()); }
//! #     headers
//! # }
//! use auth0_server::blocking::ServerClient;
//! use auth0_server::store::CookieOptions;
//! use auth0_server::store::cookie::{CookieStateStore, CookieTransactionStore};
//! use auth0_server::{Config, LogoutOptions, StartLoginOptions};
//!
//! // At start-up: the tenant, the application's credentials, a secret that encrypts cookies.
//! let config = Config::builder(&domain, &client_id)
//!     .client_secret(&client_secret)
//!     .secret("at-least-32-bytes-of-random-secret!!")
//!     .redirect_uri("https://app.example.com/auth/callback")
//!     .audience("https://api.example.com")
//!     .build()?;
//! let client = ServerClient::builder(
//!     config.clone(),
//!     CookieStateStore::new(&config)?,
//!     CookieTransactionStore::new(&config)?,
//! )
//! .build();
//!
//! // GET /auth/login: save the login transaction (a cookie), redirect the browser to Auth0.
//! # let request_headers = browser(&mut jar, &http::HeaderMap::new());
//! let mut cookies = CookieOptions::from_request_headers(&request_headers);
//! let authorize_url = client.start_interactive_login(StartLoginOptions::new(), &mut cookies)?;
//! let mut response_headers = http::HeaderMap::new();
//! cookies.apply_to(&mut response_headers); // then answer 302 to `authorize_url`
//!
//! // The user logs in at Auth0, which redirects the browser to the callback with a code.
//! # let answer = ureq::Agent::config_builder().max_redirects(0).build().new_agent()
//! #     .get(authorize_url.as_str()).call()?;
//! # let callback_url = answer.headers()["location"].to_str()?.to_owned();
//! # let request_headers = browser(&mut jar, &response_headers);
//! // GET /auth/callback?code=…&state=…: check the state, exchange the code, save the session.
//! let mut cookies = CookieOptions::from_request_headers(&request_headers);
//! let login = client.complete_interactive_login(&callback_url, &mut cookies)?;
//! let mut response_headers = http::HeaderMap::new();
//! cookies.apply_to(&mut response_headers); // the session cookie; then redirect into the app
//! # assert!(login.app_state.is_none());
//!
//! // Any later request: who is logged in, and an access token for the API (served from the
//! // session while valid, refreshed with the refresh token when it expired).
//! # let request_headers = browser(&mut jar, &response_headers);
//! let mut cookies = CookieOptions::from_request_headers(&request_headers);
//! let user = client.get_user(&mut cookies)?.expect("logged in");
//! let token = client.get_access_token(&mut cookies)?;
//! let authorization = format!("Bearer {}", token.access_token.expose());
//! # assert!(user.contains_key("sub") && authorization.len() > 7);
//! // With DPoP on (`Config::builder(…).dpop(key)`), the token is bound to the key:
//! // `token.token_type` is `DPoP`, and `client.dpop_headers(&token, "GET", url, None)`
//! // gives the `Authorization: DPoP …` and `DPoP` proof headers for each API request
//! // (README, "DPoP: sender-constrained access tokens").
//!
//! // GET /auth/logout: delete the session, send the browser to Auth0's logout.
//! let mut cookies = CookieOptions::from_request_headers(&request_headers);
//! let logout_url = client.logout(LogoutOptions::default(), &mut cookies)?;
//! let mut response_headers = http::HeaderMap::new();
//! cookies.apply_to(&mut response_headers); // clears the session cookie; 302 to `logout_url`
//! # assert!(logout_url.as_str().starts_with(&domain));
//!
//! // Logged out: no session, and failures are typed, with stable codes.
//! # let request_headers = browser(&mut jar, &response_headers);
//! let mut cookies = CookieOptions::from_request_headers(&request_headers);
//! assert!(client.get_user(&mut cookies)?.is_none());
//! let err = client.get_access_token(&mut cookies).unwrap_err();
//! assert_eq!(err.code(), "missing_session");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Without a browser, a token the application already trusts (a legacy system's session, a
//! partner's assertion) becomes Auth0 tokens by Custom Token Exchange:
//! `client.custom_token_exchange(TokenExchangeRequest::new(token, "urn:acme:legacy-token"))`
//! returns them without a session, and `client.login_with_token_exchange(…, &mut cookies)`
//! logs the user in from it ([`TokenExchangeRequest`]). A user at another device (a call
//! centre, a kiosk) logs in by CIBA: `client.login_backchannel(BackchannelLoginRequest::new(
//! user_id, "Approve login #42"), &mut cookies)` asks them to approve on their phone, polls
//! until they answer, verifies the ID token and creates the session
//! ([`BackchannelLoginRequest`]; waits go through a [`sleep::Sleeper`]).
//!
//! Multi-factor step-up: when `get_access_token` fails with `mfa_required`,
//! `client.seal_mfa_token(&err, &request)` wraps Auth0's `mfa_token` into an encrypted,
//! expiring [`SealedMfaToken`] safe to hand to the browser, and `list_authenticators`,
//! `enroll_authenticator`, `challenge_authenticator` and `verify_mfa` ([`MfaVerify`], OTP, OOB
//! with a binding code, recovery code) take it; `verify_mfa` can save the tokens into the
//! current session.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "blocking")]
pub mod blocking;
pub mod clock;
pub mod coordinator;
mod driver;
mod error;
pub mod http;
pub mod mcd;
pub mod nonblocking;
mod single_flight;
#[cfg(all(test, shuttle))]
mod single_flight_shuttle;
pub mod sleep;
pub mod store;
mod trace;

pub use auth0_server_protocol as protocol;
pub use auth0_server_protocol::access_token::{AccessToken, AccessTokenRequest};
pub use auth0_server_protocol::config::Config;
pub use auth0_server_protocol::connection_token::{ConnectionToken, ConnectionTokenRequest};
pub use auth0_server_protocol::login::{
    BackchannelHandle, BackchannelLoginRequest, BackchannelPoll, LinkUserOptions, LoginResult,
    PasswordlessOtp, PasswordlessStart, StartLoginOptions, TokenExchangeRequest,
    TokenExchangeResult,
};
pub use auth0_server_protocol::login::{
    PasskeyChallenge, PasskeyLogin, PasskeySignIn, PasskeySignup, SealedPasskeySession,
};
pub use auth0_server_protocol::logout::{LogoutEndpoint, LogoutOptions};
pub use auth0_server_protocol::mfa::{
    Authenticator, Challenge, ChallengeType, Enrollment, MfaFactor, MfaProof, MfaVerified,
    MfaVerify, SealedMfaToken,
};
pub use auth0_server_protocol::my_account::{
    ApiProblem, AuthenticationMethod, AuthenticationMethodUpdate, ConnectAccountOptions,
    ConnectedAccount, ConnectedAccountConnection, ConnectedAccountConnections,
    ConnectedAccountResult, ConnectedAccounts, Factor, MyAccountError,
};
/// The scripted driver (feature `test-util`): "given this session and these responses, the SDK
/// sends exactly this and saves exactly that", to test an application's auth handling offline.
#[cfg(feature = "test-util")]
pub use auth0_server_protocol::testing;
pub use driver::DEFAULT_ROTATION_GRACE;
pub use error::{Error, TransportError, TransportErrorKind};

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
