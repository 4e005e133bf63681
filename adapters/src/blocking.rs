//! The blocking client: [`ServerClient`] drives the protocol core's operations over a
//! [`ureq::Agent`] (feature `blocking`, on by default).
//!
//! One agent is reused for every request (connection pooling). HTTP error statuses are not
//! transport errors: 4xx/5xx bodies go to the core, which reads the OAuth error from them.
//! Each request has a connect timeout and a read timeout, and response bodies are limited in
//! size. Refreshes of the same refresh token, audience and scope are single-flight.
//!
//! ```no_run
//! use auth0_server::blocking::ServerClient;
//! use auth0_server::store::CookieOptions;
//! use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
//! use auth0_server::{AccessTokenRequest, Config};
//!
//! let config = Config::builder("tenant.auth0.com", "client-id")
//!     .client_secret("client-secret")
//!     .secret("a-secret-of-at-least-32-bytes-long!!")
//!     .build()?;
//! let client = ServerClient::builder(config, MemoryStateStore::new(), MemoryTransactionStore::new())
//!     .build();
//!
//! // In a request handler: the request's headers in, `Set-Cookie` headers out.
//! let mut options = CookieOptions::from_request_headers(&http::HeaderMap::new());
//! let token = client.get_access_token_with(
//!     AccessTokenRequest::audience("https://analytics.example.com"),
//!     &mut options,
//! )?;
//! println!("expires at {}", token.expires_at);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::clock::Clock;
use crate::coordinator::{CoordinatedResponse, RefreshCoordinator};
use crate::driver::{DEFAULT_ROTATION_GRACE, Shared, Transport, block_on, wants_coordination};
use crate::error::{Error, TransportError};
use crate::single_flight::{FlightFuture, Settled};
use crate::store::{StateStore, TransactionStore};
use auth0_server_protocol::Core;
use auth0_server_protocol::access_token::{AccessToken, AccessTokenRequest};
use auth0_server_protocol::config::Config;
use auth0_server_protocol::connection_token::{ConnectionToken, ConnectionTokenRequest};
use auth0_server_protocol::dpop::DpopHeaders;
use auth0_server_protocol::effect::LogoutTokenClaims;
use auth0_server_protocol::effect::{Coalesce, Operation};
use auth0_server_protocol::login::{
    BackchannelHandle, BackchannelLoginRequest, BackchannelPoll, LinkUserOptions, LoginResult,
    PasswordlessOtp, PasswordlessStart, StartLoginOptions, TokenExchangeRequest,
    TokenExchangeResult,
};
use auth0_server_protocol::login::{PasskeyChallenge, PasskeyLogin, PasskeySignIn, PasskeySignup};
use auth0_server_protocol::logout::LogoutOptions;
use auth0_server_protocol::mfa::{
    Authenticator, Challenge, ChallengeType, Enrollment, MfaFactor, MfaVerified, MfaVerify,
    SealedMfaToken,
};
use auth0_server_protocol::my_account::{
    AuthenticationMethod, AuthenticationMethodUpdate, ConnectAccountOptions,
    ConnectedAccountConnections, ConnectedAccountResult, ConnectedAccounts, Factor,
};
use auth0_server_protocol::session::{Session, UserClaims};
use auth0_server_protocol::token_endpoint::MAX_RESPONSE_BODY;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default read timeout (waiting for the response, and reading its body).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit on response bodies (1 MiB); a larger body is a
/// [`TransportErrorKind::ResponseTooLarge`](crate::TransportErrorKind::ResponseTooLarge) error.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = MAX_RESPONSE_BODY;

/// The blocking Auth0 server client. Cheap to clone (shared state behind an `Arc`); share one
/// per application.
///
/// Every method takes the caller's `store_options` (for cookie-based stores, the request's
/// cookies and a `Set-Cookie` sink: [`CookieOptions`](crate::store::CookieOptions)) and hands
/// them unchanged to every store call.
pub struct ServerClient<S, T> {
    inner: Arc<Inner<S, T>>,
}

struct Inner<S, T> {
    shared: Shared,
    state_store: S,
    transaction_store: T,
    transport: BlockingTransport,
    /// The domain resolver (multiple custom domains), if any.
    resolver: Option<Arc<dyn crate::mcd::ResolveDomain<S>>>,
    /// With a resolver: each custom domain's state.
    domains: crate::mcd::Domains,
}

impl<S, T> Clone for ServerClient<S, T> {
    fn clone(&self) -> Self {
        ServerClient {
            inner: self.inner.clone(),
        }
    }
}

impl<S, T> std::fmt::Debug for ServerClient<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("domain", &self.inner.shared.core.config().origin())
            .field("client_id", &self.inner.shared.core.config().client_id())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ServerClient`]; see [`ServerClient::builder`].
pub struct ServerClientBuilder<S, T> {
    config: Config,
    state_store: S,
    transaction_store: T,
    agent: Option<ureq::Agent>,
    tls: crate::http::tls::TlsSettings,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_response_body: usize,
    clock: Clock,
    rotation_grace: Duration,
    sleeper: crate::sleep::Sleeper,
    coordinator: Option<Arc<dyn RefreshCoordinator>>,
    resolver: Option<Arc<dyn crate::mcd::ResolveDomain<S>>>,
}

impl<S: StateStore + 'static, T> ServerClientBuilder<S, T> {
    /// Multiple custom domains: `resolver` picks the custom domain of each call from its
    /// `store_options` (e.g. the request's host, [`CookieOptions::request_host`](crate::store::CookieOptions::request_host)),
    /// as `login.a.example`, `https://login.a.example` or, for a local emulator,
    /// `http://127.0.0.1:PORT`. Every operation then runs on that domain only: its
    /// discovery, token endpoint, JWKS and logout URL (each domain's discovery and keys cached
    /// separately); sessions and login transactions record their domain, a session of another
    /// domain is no session, a callback on another domain is refused (`domain_mismatch`), a
    /// back-channel logout token must come from the domain's issuer. An error of the
    /// resolver, or a domain that is not a plain https host, is a `domain_resolver_error`.
    /// The configuration's own domain is then only used by [`ServerClient::core`] and
    /// [`ServerClient::drive`]. The operations that take no store options
    /// (`custom_token_exchange`, `backchannel_authentication`, `start_backchannel_login`)
    /// ask the resolver with default options: answer those with your default domain, or
    /// an error if there is none.
    ///
    /// **Never trust the `Host` header as it is**: map it to one of your domains, e.g. with a
    /// [`DomainAllowlist`](crate::mcd::DomainAllowlist) (see [`crate::mcd`]).
    pub fn domain_resolver<F, E>(mut self, resolver: F) -> Self
    where
        F: Fn(&S::Options) -> Result<String, E> + Send + Sync + 'static,
        E: std::fmt::Display + 'static,
    {
        self.resolver = Some(Arc::new(crate::mcd::SyncResolver(resolver)));
        self
    }
}

impl<S, T> ServerClientBuilder<S, T> {
    /// Coordinates refreshes with the application's other instances (default: none, the
    /// in-process single-flight only), e.g. a
    /// `store::redis::RedisRefreshCoordinator` (feature `redis`). It is asked
    /// by the in-process leader of each refresh, and of each request that spends a refresh
    /// token (the connection exchange too); see [`crate::coordinator`].
    pub fn coordinator(mut self, coordinator: impl RefreshCoordinator + 'static) -> Self {
        self.coordinator = Some(Arc::new(coordinator));
        self
    }

    /// The `ureq` agent to send requests with (default: a new agent). Whatever its
    /// configuration, each request is sent with HTTP statuses as responses (not errors), no
    /// redirects, and this builder's timeouts.
    pub fn agent(mut self, agent: ureq::Agent) -> Self {
        self.agent = Some(agent);
        self
    }

    /// The client certificate presented to servers that ask for one: mutual TLS with the
    /// authorization server (`tls_client_auth` / `self_signed_tls_client_auth`, RFC 8705;
    /// configure the method with `ConfigBuilder::tls_client_auth`). Applies to the agent this
    /// builder makes, not to one given with [`agent`](Self::agent) (configure that one's
    /// TLS yourself).
    ///
    /// ```no_run
    /// use auth0_server::blocking::ServerClient;
    /// use auth0_server::http::ClientCertificate;
    /// use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
    /// use auth0_server::Config;
    /// let config = Config::builder("tenant.auth0.com", "client-id")
    ///     .tls_client_auth()
    ///     .secret("a-secret-of-at-least-32-bytes-long!!")
    ///     .build()?;
    /// let certificate = ClientCertificate::from_pem(
    ///     std::fs::read("client-chain.pem")?,
    ///     std::fs::read("client-key.pem")?,
    /// )?;
    /// let client = ServerClient::builder(config, MemoryStateStore::new(), MemoryTransactionStore::new())
    ///     .client_certificate(certificate)
    ///     .build();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn client_certificate(mut self, certificate: crate::http::ClientCertificate) -> Self {
        self.tls.client_certificate = Some(certificate);
        self
    }

    /// Root certificates to trust in addition to the Mozilla roots (with the
    /// `blocking-platform-verifier` feature: instead of the platform verifier, which cannot
    /// take extra roots), for an authorization server whose certificate comes from a private
    /// certificate authority. Adds to the ones given before. Applies to the agent this builder
    /// makes, not to one given with [`agent`](Self::agent).
    pub fn add_root_certificates(mut self, roots: crate::http::RootCertificates) -> Self {
        self.tls.extra_roots = std::mem::take(&mut self.tls.extra_roots).and(roots);
        self
    }

    /// How long to wait for a connection (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long to wait for the response, and again for its body (default 10 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// The largest response body accepted (default 1 MiB).
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = bytes;
        self
    }

    /// How the client waits between CIBA polls (default: [`Sleeper::thread`](crate::sleep::Sleeper::thread),
    /// `std::thread::sleep`). Tests give one that records the waits and returns at once:
    /// `Sleeper::blocking(move |d| waits.lock().unwrap().push(d))`.
    pub fn sleeper(mut self, sleeper: crate::sleep::Sleeper) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// The clock (default: the system clock). Tests move time with [`Clock::from_fn`].
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// How long a successful refresh response is remembered and handed to requests that
    /// still carry the rotated-away refresh token (default 60 s). The rotation itself (old
    /// refresh token → new one) is followed for the session's lifetime
    /// ([`ROTATION_LIFETIME`](auth0_server_protocol::flight::ROTATION_LIFETIME)) whatever the
    /// window. Zero disables both, except for a rotation whose session could not be saved.
    pub fn rotation_grace(mut self, window: Duration) -> Self {
        self.rotation_grace = window;
        self
    }

    /// The client.
    pub fn build(self) -> ServerClient<S, T> {
        let agent = self.agent.unwrap_or_else(|| {
            crate::http::ureq::agent(
                crate::http::ureq::Limits {
                    connect_timeout: self.connect_timeout,
                    read_timeout: self.read_timeout,
                    max_response_body: self.max_response_body,
                },
                &self.tls,
            )
        });
        ServerClient {
            inner: Arc::new(Inner {
                shared: Shared::new(Core::new(self.config), self.clock, self.rotation_grace)
                    .with_sleeper(self.sleeper),
                state_store: self.state_store,
                transaction_store: self.transaction_store,
                transport: BlockingTransport {
                    ureq: Arc::new(Ureq {
                        agent,
                        connect_timeout: self.connect_timeout,
                        read_timeout: self.read_timeout,
                        max_response_body: self.max_response_body,
                    }),
                    coordinator: self.coordinator,
                },
                resolver: self.resolver,
                domains: Default::default(),
            }),
        }
    }
}

impl<S, T> ServerClient<S, T>
where
    S: StateStore,
    T: TransactionStore<Options = S::Options>,
{
    /// A builder from a validated configuration and the two stores.
    pub fn builder(
        config: Config,
        state_store: S,
        transaction_store: T,
    ) -> ServerClientBuilder<S, T> {
        ServerClientBuilder {
            config,
            state_store,
            transaction_store,
            agent: None,
            tls: Default::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
            clock: Clock::system(),
            rotation_grace: DEFAULT_ROTATION_GRACE,
            sleeper: crate::sleep::Sleeper::thread(),
            coordinator: None,
            resolver: None,
        }
    }

    /// The protocol core (configuration, and the operations this client drives).
    pub fn core(&self) -> &Core {
        &self.inner.shared.core
    }

    /// The state store.
    pub fn state_store(&self) -> &S {
        &self.inner.state_store
    }

    /// The transaction store.
    pub fn transaction_store(&self) -> &T {
        &self.inner.transaction_store
    }

    /// The `ureq` agent requests are sent with.
    pub fn agent(&self) -> &ureq::Agent {
        &self.inner.transport.ureq.agent
    }

    /// The logged-in user's claims, or `None` without a session.
    pub fn get_user(&self, store_options: &mut S::Options) -> Result<Option<UserClaims>, Error> {
        self.run("get_user", "", |c| c.get_user(), store_options)
    }

    /// The session (without SDK-internal data), or `None`.
    pub fn get_session(&self, store_options: &mut S::Options) -> Result<Option<Session>, Error> {
        self.run("get_session", "", |c| c.get_session(), store_options)
    }

    /// An access token for the default audience and scope: the stored one while valid, else
    /// a refreshed one (saved to the session).
    pub fn get_access_token(&self, store_options: &mut S::Options) -> Result<AccessToken, Error> {
        self.get_access_token_with(AccessTokenRequest::default(), store_options)
    }

    /// An access token for an audience and extra scopes (Multi-Resource Refresh Tokens).
    pub fn get_access_token_with(
        &self,
        request: AccessTokenRequest,
        store_options: &mut S::Options,
    ) -> Result<AccessToken, Error> {
        let audience = request.audience.clone().unwrap_or_default();
        self.run(
            "get_access_token",
            &audience,
            |c| c.get_access_token(request),
            store_options,
        )
    }

    /// The headers of a request to an API with a DPoP-bound access token (from
    /// [`get_access_token`](Self::get_access_token) on a client configured with
    /// [`ConfigBuilder::dpop`](auth0_server_protocol::config::ConfigBuilder::dpop)):
    /// `Authorization: DPoP <token>` and `DPoP: <proof>`, the proof for this `method` and
    /// `url` (query and fragment are not part of it), with `ath` (the token's hash) and the
    /// API's `nonce` when it gave one. Make new headers for every request: a proof is single
    /// use. When the API answers `401` with a nonce challenge,
    /// [`dpop::resource_retry`](auth0_server_protocol::dpop::resource_retry) gives the nonce
    /// to call this with once more.
    ///
    /// Fails with `dpop_failed` for a bearer token, without a DPoP key, or for a URL that is
    /// not absolute http(s). Performs no I/O (it reads the clock and draws 16 random bytes).
    pub fn dpop_headers(
        &self,
        token: &AccessToken,
        method: &str,
        url: &str,
        nonce: Option<&str>,
    ) -> Result<DpopHeaders, Error> {
        self.inner.shared.dpop_headers(token, method, url, nonce)
    }

    /// An access token for a federated connection (token vault): the stored one while
    /// valid, else exchanged for the refresh token and saved.
    pub fn get_access_token_for_connection(
        &self,
        request: ConnectionTokenRequest,
        store_options: &mut S::Options,
    ) -> Result<ConnectionToken, Error> {
        self.run(
            "get_access_token_for_connection",
            "",
            |c| c.get_access_token_for_connection(request),
            store_options,
        )
    }

    /// Starts an interactive login: saves the transaction (PKCE verifier, `state`, `nonce`,
    /// `app_state`) and returns the authorization URL to redirect the browser to.
    pub fn start_interactive_login(
        &self,
        options: StartLoginOptions,
        store_options: &mut S::Options,
    ) -> Result<url::Url, Error> {
        self.run(
            "start_interactive_login",
            "",
            |c| c.start_interactive_login(options),
            store_options,
        )
    }

    /// Completes an interactive login from the callback URL Auth0 redirected to (absolute, or
    /// path and query): checks `state`, exchanges the code, verifies the ID token, saves the
    /// session, deletes the transaction, and returns `app_state` and `authorization_details`.
    pub fn complete_interactive_login(
        &self,
        callback_url: &str,
        store_options: &mut S::Options,
    ) -> Result<LoginResult, Error> {
        self.run(
            "complete_interactive_login",
            "",
            |c| c.complete_interactive_login(callback_url),
            store_options,
        )
    }

    /// MFA, step 0: seals the `mfa_token` of an `mfa_required` error — from
    /// [`get_access_token`](Self::get_access_token) for `request` (whose audience and scope
    /// the verified tokens are saved under), or a login grant refused with `mfa_required` —
    /// into an opaque, encrypted token that expires after the configured
    /// `mfa_token_ttl` (5 minutes by default) and is safe to hand to the browser. Every MFA
    /// method takes it; the raw `mfa_token` never leaves the server. Fails with
    /// `invalid_parameter` for any other error. Performs no I/O.
    pub fn seal_mfa_token(
        &self,
        error: &Error,
        request: &AccessTokenRequest,
    ) -> Result<SealedMfaToken, Error> {
        self.inner.shared.seal_mfa_token(error, request)
    }

    /// MFA: the user's enrolled authenticators (`GET /mfa/authenticators`).
    pub fn list_authenticators(
        &self,
        sealed: &SealedMfaToken,
        store_options: &mut S::Options,
    ) -> Result<Vec<Authenticator>, Error> {
        self.run(
            "list_authenticators",
            "",
            |c| c.list_authenticators(sealed.clone()),
            store_options,
        )
    }

    /// MFA: enrolls an authenticator (`POST /mfa/associate`): an OTP app (the answer has the
    /// secret and its `otpauth://` URI), or SMS, voice or email (the answer has the OOB code
    /// to verify with).
    pub fn enroll_authenticator(
        &self,
        sealed: &SealedMfaToken,
        factor: MfaFactor,
        store_options: &mut S::Options,
    ) -> Result<Enrollment, Error> {
        self.run(
            "enroll_authenticator",
            "",
            |c| c.enroll_authenticator(sealed.clone(), factor),
            store_options,
        )
    }

    /// MFA: removes one of the user's enrolled authenticators (`DELETE
    /// /mfa/authenticators/{id}`, the sealed `mfa_token` as bearer). An id with whitespace
    /// is `invalid_parameter` and nothing is sent; an expired sealed token
    /// `mfa_token_expired`; Auth0's refusal (an unknown id) `mfa_failed`.
    pub fn delete_authenticator(
        &self,
        sealed: &SealedMfaToken,
        authenticator_id: impl Into<String>,
        store_options: &mut S::Options,
    ) -> Result<(), Error> {
        self.run(
            "delete_authenticator",
            "",
            |c| c.delete_authenticator(sealed.clone(), authenticator_id.into()),
            store_options,
        )
    }

    /// MFA: starts a challenge (`POST /mfa/challenge`, with the client's authentication);
    /// for OOB, Auth0 sends the user a code and the answer has the `oob_code` to verify with.
    pub fn challenge_authenticator(
        &self,
        sealed: &SealedMfaToken,
        challenge_type: ChallengeType,
        authenticator_id: Option<String>,
        store_options: &mut S::Options,
    ) -> Result<Challenge, Error> {
        self.run(
            "challenge_authenticator",
            "",
            |c| c.challenge_authenticator(sealed.clone(), challenge_type, authenticator_id),
            store_options,
        )
    }

    /// MFA: verifies the second factor (OTP, OOB + binding code, recovery code) at the token
    /// endpoint and returns the tokens (an ID token verified as a login's); with
    /// [`MfaVerify::persist`] they are also saved into the current session for the sealed
    /// audience (`missing_session` and nothing sent without one). A wrong or used code is
    /// `mfa_failed` and nothing is saved.
    pub fn verify_mfa(
        &self,
        verify: MfaVerify,
        store_options: &mut S::Options,
    ) -> Result<MfaVerified, Error> {
        self.run("verify_mfa", "", |c| c.verify_mfa(verify), store_options)
    }

    /// Passwordless, step 1: Auth0 sends the user a one-time code (email or SMS) or a magic
    /// link (email). For a magic link a login transaction is saved, and the link's callback is
    /// completed by [`complete_interactive_login`](Self::complete_interactive_login). Inputs
    /// are checked first (`invalid_parameter`, nothing sent); a refusal is
    /// `passwordless_failed`.
    pub fn start_passwordless(
        &self,
        start: PasswordlessStart,
        store_options: &mut S::Options,
    ) -> Result<(), Error> {
        self.run(
            "start_passwordless",
            "",
            |c| c.start_passwordless(start),
            store_options,
        )
    }

    /// Passwordless, step 2: logs the user in with the one-time code they received — the
    /// ID token verified as an interactive login's, the session replaced. A wrong, expired or
    /// used code is `passwordless_failed` and nothing is saved.
    pub fn login_with_passwordless(
        &self,
        otp: PasswordlessOtp,
        store_options: &mut S::Options,
    ) -> Result<LoginResult, Error> {
        let audience = otp.audience.clone().unwrap_or_default();
        self.run(
            "login_with_passwordless",
            &audience,
            |c| c.login_with_passwordless(otp),
            store_options,
        )
    }

    /// Passkey signup, step 1: asks Auth0 (`POST /passkey/register`) for the WebAuthn options
    /// that create the new user's passkey. Hand
    /// [`authn_params_public_key`](PasskeyChallenge::authn_params_public_key) to
    /// `navigator.credentials.create()` and keep the sealed
    /// [`auth_session`](PasskeyChallenge::auth_session) (safe to put in the page) for
    /// [`login_with_passkey`](Self::login_with_passkey). Inputs are checked first
    /// (`invalid_parameter`, nothing sent); a refusal is `passkey_challenge_error`.
    pub fn passkey_signup_challenge(
        &self,
        signup: PasskeySignup,
        store_options: &mut S::Options,
    ) -> Result<PasskeyChallenge, Error> {
        self.run(
            "passkey_signup_challenge",
            "",
            |c| c.passkey_signup_challenge(signup),
            store_options,
        )
    }

    /// Passkey login, step 1: asks Auth0 (`POST /passkey/challenge`) for the WebAuthn options
    /// for `navigator.credentials.get()`, and the sealed session to sign in with.
    pub fn passkey_login_challenge(
        &self,
        login: PasskeyLogin,
        store_options: &mut S::Options,
    ) -> Result<PasskeyChallenge, Error> {
        self.run(
            "passkey_login_challenge",
            "",
            |c| c.passkey_login_challenge(login),
            store_options,
        )
    }

    /// Passkeys, step 2: signs the user in with the browser's credential (the WebAuthn grant,
    /// `openid` always asked) — the ID token verified as an interactive login's (the
    /// challenge's organization included), the session replaced. A tampered or expired
    /// sealed session is `passkey_session_invalid` / `passkey_session_expired` and nothing is
    /// sent; a refusal is `passkey_token_error`; nothing is saved on any failure.
    pub fn login_with_passkey(
        &self,
        sign_in: PasskeySignIn,
        store_options: &mut S::Options,
    ) -> Result<LoginResult, Error> {
        let audience = sign_in.audience.clone().unwrap_or_default();
        self.run(
            "login_with_passkey",
            &audience,
            |c| c.login_with_passkey(sign_in),
            store_options,
        )
    }

    /// As [`login_with_passkey`](Self::login_with_passkey), returning the tokens (the ID
    /// token verified, its claims returned) without reading or writing a session.
    pub fn passkey_tokens(
        &self,
        sign_in: PasskeySignIn,
        store_options: &mut S::Options,
    ) -> Result<TokenExchangeResult, Error> {
        let audience = sign_in.audience.clone().unwrap_or_default();
        self.run(
            "passkey_tokens",
            &audience,
            |c| c.passkey_tokens(sign_in),
            store_options,
        )
    }

    /// Starts linking another connection's identity to the logged-in user's account: saves
    /// a login transaction that remembers the link and returns the authorization URL
    /// (`scope=openid link_account offline_access`, the session's ID token as
    /// `id_token_hint`, `requested_connection`). The callback is completed by
    /// [`complete_interactive_login`](Self::complete_interactive_login), which merges the
    /// answer into the session. Without a logged-in user: `missing_session`.
    pub fn start_link_user(
        &self,
        options: LinkUserOptions,
        store_options: &mut S::Options,
    ) -> Result<url::Url, Error> {
        self.run(
            "start_link_user",
            "",
            |c| c.start_link_user(options),
            store_options,
        )
    }

    /// As [`start_link_user`](Self::start_link_user), removing the connection's identity
    /// from the account (`unlink_account`).
    pub fn start_unlink_user(
        &self,
        options: LinkUserOptions,
        store_options: &mut S::Options,
    ) -> Result<url::Url, Error> {
        self.run(
            "start_unlink_user",
            "",
            |c| c.start_unlink_user(options),
            store_options,
        )
    }

    /// Custom Token Exchange (RFC 8693): Auth0 tokens for a token the application already
    /// trusts (`subject_token` of the type the tenant's exchange profile names). No session is
    /// read or written; an ID token in the answer is verified and its claims returned.
    /// The request is checked first: a blank or `Bearer `-prefixed token, a reserved type URI
    /// or a reserved extra parameter is an `invalid_parameter` error and nothing is sent.
    pub fn custom_token_exchange(
        &self,
        request: TokenExchangeRequest,
    ) -> Result<TokenExchangeResult, Error>
    where
        S::Options: Default,
    {
        self.run(
            "custom_token_exchange",
            request.audience.clone().as_deref().unwrap_or_default(),
            |c| c.custom_token_exchange(request),
            &mut S::Options::default(),
        )
    }

    /// Logs the user in with a Custom Token Exchange: asks for `openid` (and the configured
    /// scope), verifies the ID token as an interactive login does (signature, issuer,
    /// audience, expiry, organization, session ceiling) and replaces the session with one
    /// built from the answer. Returns the granted `authorization_details`.
    pub fn login_with_token_exchange(
        &self,
        request: TokenExchangeRequest,
        store_options: &mut S::Options,
    ) -> Result<LoginResult, Error> {
        self.run(
            "login_with_token_exchange",
            "",
            |c| c.login_with_token_exchange(request),
            store_options,
        )
    }

    /// Logs a user in on another device by CIBA (Client-Initiated Backchannel
    /// Authentication): asks Auth0 to have user `request.user_id` approve (showing the
    /// binding message on both devices), polls the token endpoint at the interval Auth0 names
    /// (waiting through the client's sleeper; 5 s more after each `slow_down`; never past the
    /// request's expiry), verifies the ID token as an interactive login does, and replaces
    /// the session with one built from its claims. Returns the granted
    /// `authorization_details`. A denial is an `access_denied` error, a request that expired
    /// a `backchannel_authentication_expired` one; an invalid binding message is refused
    /// before anything is sent.
    pub fn login_backchannel(
        &self,
        request: BackchannelLoginRequest,
        store_options: &mut S::Options,
    ) -> Result<LoginResult, Error> {
        let audience = request.audience.clone().unwrap_or_default();
        self.run(
            "login_backchannel",
            &audience,
            |c| c.login_backchannel(request),
            store_options,
        )
    }

    /// CIBA as [`login_backchannel`](Self::login_backchannel), returning the tokens (the ID
    /// token verified, its claims in `claims`); no session is read or written.
    pub fn backchannel_authentication(
        &self,
        request: BackchannelLoginRequest,
    ) -> Result<TokenExchangeResult, Error>
    where
        S::Options: Default,
    {
        let audience = request.audience.clone().unwrap_or_default();
        self.run(
            "backchannel_authentication",
            &audience,
            |c| c.backchannel_authentication(request),
            &mut S::Options::default(),
        )
    }

    /// Starts a CIBA login without waiting: sends the backchannel authentication request and
    /// returns the handle to poll with ([`poll_backchannel_login`](Self::poll_backchannel_login),
    /// after `handle.interval`). For applications that schedule their own polling.
    pub fn start_backchannel_login(
        &self,
        request: BackchannelLoginRequest,
    ) -> Result<BackchannelHandle, Error>
    where
        S::Options: Default,
    {
        self.run(
            "start_backchannel_login",
            "",
            |c| c.start_backchannel_login(request),
            &mut S::Options::default(),
        )
    }

    /// Polls a started CIBA login once: [`BackchannelPoll::Pending`] with the wait before the
    /// next poll (store it as the handle's new `interval`), or, once the user approved, the
    /// session created as by [`login_backchannel`](Self::login_backchannel). Nothing is sent
    /// at or after the handle's expiry (a `backchannel_authentication_expired` error).
    pub fn poll_backchannel_login(
        &self,
        handle: BackchannelHandle,
        store_options: &mut S::Options,
    ) -> Result<BackchannelPoll, Error> {
        self.run(
            "poll_backchannel_login",
            "",
            |c| c.poll_backchannel_login(handle),
            store_options,
        )
    }

    /// Deletes the session and returns the Auth0 logout URL to redirect the browser to.
    pub fn logout(
        &self,
        options: LogoutOptions,
        store_options: &mut S::Options,
    ) -> Result<url::Url, Error> {
        self.run("logout", "", |c| c.logout(options), store_options)
    }

    /// Handles a back-channel logout request: verifies the logout token and deletes the
    /// matching sessions through the state store's `delete_by_logout_token`.
    pub fn handle_backchannel_logout(
        &self,
        logout_token: &str,
        store_options: &mut S::Options,
    ) -> Result<LogoutTokenClaims, Error> {
        self.run(
            "handle_backchannel_logout",
            "",
            |c| c.handle_backchannel_logout(logout_token),
            store_options,
        )
    }

    /// Runs any core operation to completion (see the crate's driver: HTTP with single-flight,
    /// stores, caches, randomness). `store_options` reach every store call unchanged.
    /// With a domain resolver, an operation of [`core`](Self::core) is one of the configured
    /// domain: it runs (bound to that domain) only when the resolver names that domain, and
    /// is refused with `domain_mismatch` otherwise.
    pub fn drive<O: Operation>(
        &self,
        op: O,
        store_options: &mut S::Options,
    ) -> Result<O::Output, Error>
    where
        Error: From<O::Error>,
    {
        let inner = &*self.inner;
        let Some(resolver) = &inner.resolver else {
            return self.run("operation", "", |_| op, store_options);
        };
        // An operation of `core()` is of the configured domain: it runs only there.
        let domain = block_on(crate::mcd::resolve(&**resolver, store_options))?;
        crate::mcd::configured_domain_is(&inner.shared, &domain)?;
        block_on(crate::mcd::drive_on(
            "operation",
            "",
            &inner.shared,
            &inner.state_store,
            &inner.transaction_store,
            &inner.transport,
            op,
            domain,
            store_options,
        ))
    }

    /// Connected accounts: asks the My Account API for a connect ticket (with an access
    /// token for `https://{domain}/me/` and `create:me:connected_accounts` from the session,
    /// refreshed through the refresh token when needed), saves the pending connection in the
    /// transaction store and returns the URL to redirect the browser to. Without a session:
    /// `missing_session`.
    pub fn start_connect_account(
        &self,
        options: ConnectAccountOptions,
        store_options: &mut S::Options,
    ) -> Result<url::Url, Error> {
        self.run(
            "start_connect_account",
            "",
            |c| c.start_connect_account(options),
            store_options,
        )
    }

    /// Connected accounts: handles the callback of a connect flow (`state` and
    /// `connect_code`): consumes the pending connection and completes it; the account and
    /// the application state. An unknown or used `state` is `missing_transaction`; a refused
    /// connection `connect_account_error`.
    pub fn complete_connect_account(
        &self,
        callback_url: &str,
        store_options: &mut S::Options,
    ) -> Result<ConnectedAccountResult, Error> {
        self.run(
            "complete_connect_account",
            "",
            |c| c.complete_connect_account(callback_url),
            store_options,
        )
    }

    /// Connected accounts: the user's connected accounts (of `connection`, or all), a
    /// page at a time (`from` is the previous page's `next`, `take` at most 100).
    pub fn list_connected_accounts(
        &self,
        connection: Option<&str>,
        from: Option<&str>,
        take: Option<u32>,
        store_options: &mut S::Options,
    ) -> Result<ConnectedAccounts, Error> {
        self.run(
            "list_connected_accounts",
            "",
            |c| c.list_connected_accounts(connection, from, take),
            store_options,
        )
    }

    /// Connected accounts: disconnects the account with id `id`.
    pub fn delete_connected_account(
        &self,
        id: &str,
        store_options: &mut S::Options,
    ) -> Result<(), Error> {
        self.run(
            "delete_connected_account",
            "",
            |c| c.delete_connected_account(id),
            store_options,
        )
    }

    /// Connected accounts: the connections an account can be connected with.
    pub fn list_connected_account_connections(
        &self,
        from: Option<&str>,
        take: Option<u32>,
        store_options: &mut S::Options,
    ) -> Result<ConnectedAccountConnections, Error> {
        self.run(
            "list_connected_account_connections",
            "",
            |c| c.list_connected_account_connections(from, take),
            store_options,
        )
    }

    /// My Account API: the factors the tenant offers (`GET /me/v1/factors`).
    pub fn get_factors(&self, store_options: &mut S::Options) -> Result<Vec<Factor>, Error> {
        self.run("get_factors", "", |c| c.get_factors(), store_options)
    }

    /// My Account API: the user's authentication methods.
    pub fn list_authentication_methods(
        &self,
        store_options: &mut S::Options,
    ) -> Result<Vec<AuthenticationMethod>, Error> {
        self.run(
            "list_authentication_methods",
            "",
            |c| c.list_authentication_methods(),
            store_options,
        )
    }

    /// My Account API: one of the user's authentication methods.
    pub fn get_authentication_method(
        &self,
        id: &str,
        store_options: &mut S::Options,
    ) -> Result<AuthenticationMethod, Error> {
        self.run(
            "get_authentication_method",
            "",
            |c| c.get_authentication_method(id),
            store_options,
        )
    }

    /// My Account API: renames one of the user's authentication methods, or sets its
    /// preferred method; the method as updated.
    pub fn update_authentication_method(
        &self,
        id: &str,
        update: &AuthenticationMethodUpdate,
        store_options: &mut S::Options,
    ) -> Result<AuthenticationMethod, Error> {
        self.run(
            "update_authentication_method",
            "",
            |c| c.update_authentication_method(id, update),
            store_options,
        )
    }

    /// My Account API: removes one of the user's authentication methods.
    pub fn delete_authentication_method(
        &self,
        id: &str,
        store_options: &mut S::Options,
    ) -> Result<(), Error> {
        self.run(
            "delete_authentication_method",
            "",
            |c| c.delete_authentication_method(id),
            store_options,
        )
    }

    /// Runs the operation `op` makes (from the core of the call's domain: the configured one,
    /// or with a domain resolver the resolved one, the operation then bound to it), named
    /// `name` for its tracing span.
    fn run<O: Operation>(
        &self,
        name: &'static str,
        audience: &str,
        op: impl FnOnce(&Core) -> O,
        store_options: &mut S::Options,
    ) -> Result<O::Output, Error>
    where
        Error: From<O::Error>,
    {
        let inner = &*self.inner;
        // Pinned where it is made: the call's future (kilobytes of state) is not copied
        // into `block_on`.
        let call = std::pin::pin!(crate::mcd::drive_call(
            name,
            audience,
            &inner.shared,
            &inner.domains,
            inner.resolver.as_deref(),
            &inner.state_store,
            &inner.transaction_store,
            &inner.transport,
            op,
            store_options,
        ));
        block_on(call)
    }
}

/// The blocking client's [`Transport`]: requests go through one `ureq` agent, coordinated
/// requests through the coordinator (if any) first.
struct BlockingTransport {
    ureq: Arc<Ureq>,
    coordinator: Option<Arc<dyn RefreshCoordinator>>,
}

impl Transport for BlockingTransport {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send {
        std::future::ready(self.ureq.send(request))
    }

    fn flight(
        &self,
        coalesce: &Coalesce,
        request: http::Request<Vec<u8>>,
        clock: Clock,
    ) -> FlightFuture {
        let ureq = self.ureq.clone();
        let coordinator = self
            .coordinator
            .clone()
            .filter(|_| wants_coordination(coalesce));
        let coalesce = coalesce.clone();
        Box::pin(async move {
            let send = move || {
                // Expiry counts from the sending: the answer cannot be older than that.
                let sent_at = clock.now();
                let response = ureq.send(request)?;
                Ok(CoordinatedResponse {
                    response,
                    received_at: sent_at,
                })
            };
            match coordinator {
                Some(c) => Settled::coordinated(c.coordinate(&coalesce, Box::new(send))),
                None => Settled::sent(send()),
            }
        })
    }
}

/// A `ureq` agent with the client's timeouts and body limit.
struct Ureq {
    agent: ureq::Agent,
    connect_timeout: Duration,
    read_timeout: Duration,
    max_response_body: usize,
}

impl Ureq {
    /// Sends one request through the agent.
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let limits = crate::http::ureq::Limits {
            connect_timeout: self.connect_timeout,
            read_timeout: self.read_timeout,
            max_response_body: self.max_response_body,
        };
        crate::http::ureq::send(&self.agent, request, limits)
    }
}
