//! The sans-IO protocol core of **auth0-server**, the Auth0 server-side SDK for Rust.
//!
//! This crate decides everything and performs no I/O: no sockets, no clock, no randomness
//! (every decision is a function of its inputs). Each SDK operation is a state machine ([`effect::Operation`]) that asks its
//! driver for effects — send this HTTP request, load or save the session — and finishes with a
//! result. The `auth0-server` crate drives these machines over `ureq` or any async HTTP client;
//! tests drive them from a script.
//!
//! Modules follow the protocol, and import only downwards, from the operations to the
//! vocabulary they share:
//!
//! - the operations: [`access_token`] and [`connection_token`] (token retrieval),
//!   [`user_session`] (`get_user`/`get_session`), [`login`] (one module per step: start,
//!   callback, complete; and the logins without a browser: Custom Token Exchange and CIBA,
//!   whose polling waits through [`effect::Effect::Wait`]), [`mfa`] (multi-factor step-up:
//!   the sealed `mfa_token`, the MFA API and its verification grants) and [`logout`] (logout,
//!   back-channel logout);
//! - the steps they share: fetching discovery metadata, verifying a signed token;
//! - the requests they send: [`token_endpoint`] (grant and revocation requests, with client
//!   authentication);
//! - the machine's vocabulary: [`effect`] (what an operation asks its driver for);
//! - the protocol's data: [`discovery`] (OIDC metadata), [`token_response`] (what a token
//!   endpoint answers), [`session`] (the stored session), [`transaction`] (in-flight logins),
//!   [`config`] (validated client configuration), [`client_assertion`] (`private_key_jwt`:
//!   the key and the signed assertion the driver adds when it sends a request), [`dpop`]
//!   (DPoP, RFC 9449: the key, the proofs the driver adds when it sends a request, the
//!   nonce-retry decisions, the headers of a resource request), [`jose`] (JWS, JWK, JWE);
//! - the shared vocabulary at the bottom: [`time`], [`scope`] (scope merging and comparison),
//!   [`secret`], [`ErrorCode`], the reserved authorization parameters.
//!
//! # Example: a cache hit, driven by hand
//!
//! ```
//! use auth0_server_protocol::{Core, config::Config, access_token::AccessTokenRequest};
//! use auth0_server_protocol::effect::{Effect, Input, Operation, Step};
//! use auth0_server_protocol::session::{StateData, TokenSet};
//! use auth0_server_protocol::time::UnixTime;
//!
//! let core = Core::new(
//!     Config::builder("tenant.auth0.com", "client-id")
//!         .client_secret("client-secret")
//!         .secret("a-secret-of-at-least-32-bytes-long!!")
//!         .audience("https://api.example.com")
//!         .build()?,
//! );
//! let now = UnixTime::from_secs(1_700_000_000); // read from a clock by the driver
//! // Stores hand sessions out shared: a cache hit copies nothing.
//! let session = std::sync::Arc::new(StateData {
//!     token_sets: vec![TokenSet {
//!         audience: "https://api.example.com".into(),
//!         access_token: "eyJ...".into(),
//!         scope: Some("openid profile email offline_access".into()),
//!         expires_at: now.as_secs() + 3600, // stored as Unix seconds
//!         requested_scope: None,
//!         token_type: Default::default(),
//!     }],
//!     ..Default::default()
//! });
//!
//! let mut op = core.get_access_token(AccessTokenRequest::default());
//! let mut input = Input::Start;
//! let token = loop {
//!     match op.step(input, now) {
//!         Step::Done(result) => break result?,
//!         Step::Effect(Effect::LoadSession) => input = Input::Session(Some(session.clone())),
//!         Step::Effect(other) => unreachable!("a cache hit needs no {other:?}"),
//!     }
//! };
//! assert_eq!(token.access_token.expose(), "eyJ...");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access_token;
pub mod client_assertion;
pub mod config;
pub mod connection_token;
pub mod discovery;
pub mod display;
pub mod dpop;
pub mod effect;
mod error_code;
pub mod flight;
pub mod jose;
pub mod login;
pub mod logout;
pub mod mcd;
mod metadata_step;
pub mod mfa;
pub mod my_account;
mod params;
pub mod scope;
pub mod secret;
pub mod session;
mod signed_token;
#[cfg(feature = "test-util")]
pub mod testing;
pub mod time;
pub mod token_endpoint;
pub mod token_response;
pub mod transaction;
pub mod user_session;

pub use error_code::ErrorCode;

/// Not part of the API, without any stability promise: the JOSE parsers and checks the
/// operations use internally, re-exported for the fuzz targets and this crate's own tests,
/// which exercise them directly.
#[doc(hidden)]
pub mod __internals {
    /// Strict base64url.
    pub mod b64 {
        pub use crate::jose::b64::*;
    }
    /// Validation of ID-token and logout-token claims.
    pub mod claims {
        pub use crate::jose::claims::*;
    }
    /// JSON Web Key Sets.
    pub mod jwk {
        pub use crate::jose::jwk::*;
    }
    /// Compact JWS parsing and signature verification.
    pub mod jws {
        pub use crate::jose::jws::*;
    }
}
pub use secret::Secret;

use access_token::{AccessTokenRequest, GetAccessToken};
use config::Config;
use connection_token::{ConnectionTokenRequest, GetConnectionToken};
use login::{
    BackchannelAuthenticationGrant, BackchannelHandle, BackchannelLoginRequest, LoginBackchannel,
    PollBackchannelLogin, StartBackchannelLogin,
};
use login::{
    CompleteInteractiveLogin, CustomTokenExchange, LoginWithTokenExchange, StartInteractiveLogin,
    StartLoginOptions, TokenExchangeRequest,
};
use logout::{HandleBackchannelLogout, Logout, LogoutOptions};
use std::sync::Arc;
use user_session::{GetSession, GetUser};

/// The protocol core for one configured client: creates operations.
#[derive(Clone, Debug)]
pub struct Core {
    config: Arc<Config>,
    /// The custom domain this core is bound to ([`Core::on_domain`]), if any.
    domain: Option<mcd::Domain>,
}

impl Core {
    /// A core for a validated configuration.
    pub fn new(config: Config) -> Self {
        Core {
            config: Arc::new(config),
            domain: None,
        }
    }

    /// The core of one custom domain (multiple custom domains, [`mcd`]): this configuration
    /// with `domain` as its domain and issuer (an issuer override does not carry over), bound
    /// to it — a back-channel logout token is refused unless its issuer is on `domain`.
    pub fn on_domain(&self, domain: &mcd::Domain) -> Result<Core, config::ConfigError> {
        Ok(Core {
            config: Arc::new(self.config.for_domain(domain.origin())?),
            domain: Some(domain.clone()),
        })
    }

    /// The custom domain this core is bound to ([`Core::on_domain`]); `None` for a core of the
    /// configured domain.
    pub fn domain(&self) -> Option<&mcd::Domain> {
        self.domain.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `get_user`: the session's user claims.
    pub fn get_user(&self) -> GetUser {
        GetUser::default()
    }

    /// `get_session`: the session without its internal block.
    pub fn get_session(&self) -> GetSession {
        GetSession::default()
    }

    /// `get_access_token`: a stored token while valid, else a refreshed one.
    pub fn get_access_token(&self, request: AccessTokenRequest) -> GetAccessToken {
        GetAccessToken::new(self.config.clone(), request)
    }

    /// `get_access_token_for_connection`: a federated connection's token.
    pub fn get_access_token_for_connection(
        &self,
        request: ConnectionTokenRequest,
    ) -> GetConnectionToken {
        GetConnectionToken::new(self.config.clone(), request)
    }

    /// `start_interactive_login`: the authorization URL to redirect the browser to.
    pub fn start_interactive_login(&self, options: StartLoginOptions) -> StartInteractiveLogin {
        StartInteractiveLogin::new(self.config.clone(), options)
    }

    /// `complete_interactive_login`: handles the callback URL Auth0 redirected to.
    pub fn complete_interactive_login(&self, callback_url: &str) -> CompleteInteractiveLogin {
        CompleteInteractiveLogin::new(self.config.clone(), callback_url)
    }

    /// `custom_token_exchange`: Auth0 tokens for a subject token (Custom Token Exchange,
    /// RFC 8693); no session is read or written.
    pub fn custom_token_exchange(&self, request: TokenExchangeRequest) -> CustomTokenExchange {
        CustomTokenExchange::new(self.config.clone(), request)
    }

    /// `login_with_token_exchange`: a Custom Token Exchange whose verified answer replaces
    /// the session, as a completed interactive login does.
    pub fn login_with_token_exchange(
        &self,
        request: TokenExchangeRequest,
    ) -> LoginWithTokenExchange {
        LoginWithTokenExchange::new(self.config.clone(), request)
    }

    /// `login_backchannel`: CIBA — asks the user to approve a login on another device, polls
    /// until they answer (waiting through [`Effect::Wait`](effect::Effect::Wait)), verifies
    /// the ID token and replaces the session.
    pub fn login_backchannel(&self, request: BackchannelLoginRequest) -> LoginBackchannel {
        LoginBackchannel::new(self.config.clone(), request)
    }

    /// `backchannel_authentication`: CIBA as [`login_backchannel`](Self::login_backchannel),
    /// returning the verified tokens; no session is read or written.
    pub fn backchannel_authentication(
        &self,
        request: BackchannelLoginRequest,
    ) -> BackchannelAuthenticationGrant {
        BackchannelAuthenticationGrant::new(self.config.clone(), request)
    }

    /// `start_backchannel_login`: sends the CIBA request and returns the handle to poll with
    /// ([`poll_backchannel_login`](Self::poll_backchannel_login)); nothing waits.
    pub fn start_backchannel_login(
        &self,
        request: BackchannelLoginRequest,
    ) -> StartBackchannelLogin {
        StartBackchannelLogin::new(self.config.clone(), request)
    }

    /// `poll_backchannel_login`: one poll of a started CIBA login; pending, or the session
    /// created.
    pub fn poll_backchannel_login(&self, handle: BackchannelHandle) -> PollBackchannelLogin {
        PollBackchannelLogin::new(self.config.clone(), handle)
    }

    /// `start_passwordless`: Auth0 sends the user a one-time code (email or SMS) or a magic
    /// link (email; its callback is completed by
    /// [`complete_interactive_login`](Self::complete_interactive_login)).
    pub fn start_passwordless(&self, start: login::PasswordlessStart) -> login::StartPasswordless {
        login::StartPasswordless::new(self.config.clone(), start)
    }

    /// `login_with_passwordless`: a session from the one-time code the user received.
    pub fn login_with_passwordless(
        &self,
        otp: login::PasswordlessOtp,
    ) -> login::LoginWithPasswordless {
        login::LoginWithPasswordless::new(self.config.clone(), otp)
    }

    /// `passkey_signup_challenge`: the WebAuthn options to create a new user's passkey, and
    /// the sealed session to sign in with ([`login::passkey`]).
    pub fn passkey_signup_challenge(
        &self,
        signup: login::PasskeySignup,
    ) -> login::RequestPasskeyChallenge {
        login::RequestPasskeyChallenge::new(
            self.config.clone(),
            login::PasskeyChallengeRequest::Signup(signup),
        )
    }

    /// `passkey_login_challenge`: the WebAuthn options to use a returning user's passkey, and
    /// the sealed session to sign in with.
    pub fn passkey_login_challenge(
        &self,
        login: login::PasskeyLogin,
    ) -> login::RequestPasskeyChallenge {
        login::RequestPasskeyChallenge::new(
            self.config.clone(),
            login::PasskeyChallengeRequest::Login(login),
        )
    }

    /// `login_with_passkey`: a session from the browser's passkey credential.
    pub fn login_with_passkey(&self, sign_in: login::PasskeySignIn) -> login::LoginWithPasskey {
        login::LoginWithPasskey::new(self.config.clone(), sign_in)
    }

    /// `passkey_tokens`: tokens for the browser's passkey credential, no session.
    pub fn passkey_tokens(&self, sign_in: login::PasskeySignIn) -> login::PasskeyTokens {
        login::PasskeyTokens::new(self.config.clone(), sign_in)
    }

    /// `list_authenticators`: the user's enrolled MFA authenticators, for a sealed
    /// `mfa_token` ([`mfa`]).
    pub fn list_authenticators(&self, sealed: mfa::SealedMfaToken) -> mfa::ListAuthenticators {
        mfa::ListAuthenticators::list(self.config.clone(), sealed)
    }

    /// `enroll_authenticator`: enrolls an MFA authenticator (OTP app, SMS, voice, email).
    pub fn enroll_authenticator(
        &self,
        sealed: mfa::SealedMfaToken,
        factor: mfa::MfaFactor,
    ) -> mfa::EnrollAuthenticator {
        mfa::EnrollAuthenticator::enroll(self.config.clone(), sealed, factor)
    }

    /// `challenge_authenticator`: starts an MFA challenge (Auth0 sends an OOB code).
    pub fn challenge_authenticator(
        &self,
        sealed: mfa::SealedMfaToken,
        challenge_type: mfa::ChallengeType,
        authenticator_id: Option<String>,
    ) -> mfa::ChallengeAuthenticator {
        mfa::ChallengeAuthenticator::challenge(
            self.config.clone(),
            sealed,
            challenge_type,
            authenticator_id,
        )
    }

    /// `delete_authenticator`: removes one of the user's enrolled MFA authenticators
    /// (`DELETE /mfa/authenticators/{id}`, the sealed `mfa_token` as bearer).
    pub fn delete_authenticator(
        &self,
        sealed: mfa::SealedMfaToken,
        authenticator_id: String,
    ) -> mfa::DeleteAuthenticator {
        mfa::DeleteAuthenticator::delete(self.config.clone(), sealed, authenticator_id)
    }

    /// `verify_mfa`: the MFA verification grant (OTP, OOB + binding code, recovery code);
    /// the tokens, saved into the current session when asked.
    pub fn verify_mfa(&self, verify: mfa::MfaVerify) -> mfa::VerifyMfa {
        mfa::VerifyMfa::new(self.config.clone(), verify)
    }

    /// `start_link_user`: the authorization URL that links another connection's identity to
    /// the logged-in user's account; complete it with
    /// [`complete_interactive_login`](Self::complete_interactive_login).
    pub fn start_link_user(&self, options: login::LinkUserOptions) -> login::StartLinkUser {
        login::StartLinkUser::new(self.config.clone(), login::LinkAction::Link, options)
    }

    /// `start_unlink_user`: as [`start_link_user`](Self::start_link_user), removing the
    /// identity instead.
    pub fn start_unlink_user(&self, options: login::LinkUserOptions) -> login::StartLinkUser {
        login::StartLinkUser::new(self.config.clone(), login::LinkAction::Unlink, options)
    }

    /// `logout`: ends the session and returns the Auth0 logout URL.
    pub fn logout(&self, options: LogoutOptions) -> Logout {
        Logout::new(self.config.clone(), options)
    }

    /// `handle_backchannel_logout`: verifies a logout token and deletes matching sessions.
    pub fn handle_backchannel_logout(&self, logout_token: &str) -> HandleBackchannelLogout {
        HandleBackchannelLogout::new(self.config.clone(), logout_token)
            .on_domain(self.domain.clone())
    }

    /// `start_connect_account`: asks the My Account API for a connect ticket (with an access
    /// token for `https://{domain}/me/` from the session) and returns the URL to send the
    /// browser to; complete it with [`complete_connect_account`](Self::complete_connect_account).
    pub fn start_connect_account(
        &self,
        options: my_account::ConnectAccountOptions,
    ) -> my_account::StartConnectAccount {
        my_account::StartConnectAccount::new(self.config.clone(), options)
    }

    /// `complete_connect_account`: handles the connect callback URL (`state`,
    /// `connect_code`) and returns the connected account.
    pub fn complete_connect_account(
        &self,
        callback_url: &str,
    ) -> my_account::CompleteConnectAccount {
        my_account::CompleteConnectAccount::new(self.config.clone(), callback_url)
    }

    /// `list_connected_accounts`: the user's connected accounts, of one connection or all,
    /// a page at a time (`from` cursor, `take` up to [`my_account::MAX_TAKE`]).
    pub fn list_connected_accounts(
        &self,
        connection: Option<&str>,
        from: Option<&str>,
        take: Option<u32>,
    ) -> my_account::ListConnectedAccounts {
        my_account::ListConnectedAccounts::list(self.config.clone(), connection, from, take)
    }

    /// `delete_connected_account`: disconnects the account with this id.
    pub fn delete_connected_account(&self, id: &str) -> my_account::DeleteConnectedAccount {
        my_account::DeleteConnectedAccount::delete_account(self.config.clone(), id)
    }

    /// `list_connected_account_connections`: the connections an account can be connected
    /// with.
    pub fn list_connected_account_connections(
        &self,
        from: Option<&str>,
        take: Option<u32>,
    ) -> my_account::ListConnectedAccountConnections {
        my_account::ListConnectedAccountConnections::list(self.config.clone(), from, take)
    }

    /// `get_factors`: the factors the tenant offers (My Account API).
    pub fn get_factors(&self) -> my_account::GetFactors {
        my_account::GetFactors::factors(self.config.clone())
    }

    /// `list_authentication_methods`: the user's authentication methods (My Account API).
    pub fn list_authentication_methods(&self) -> my_account::ListAuthenticationMethods {
        my_account::ListAuthenticationMethods::list(self.config.clone())
    }

    /// `get_authentication_method`: one of the user's authentication methods.
    pub fn get_authentication_method(&self, id: &str) -> my_account::GetAuthenticationMethod {
        my_account::GetAuthenticationMethod::get(self.config.clone(), id)
    }

    /// `update_authentication_method`: renames one of the user's authentication methods, or
    /// sets its preferred method.
    pub fn update_authentication_method(
        &self,
        id: &str,
        update: &my_account::AuthenticationMethodUpdate,
    ) -> my_account::UpdateAuthenticationMethod {
        my_account::UpdateAuthenticationMethod::update(self.config.clone(), id, update)
    }

    /// `delete_authentication_method`: removes one of the user's authentication methods.
    pub fn delete_authentication_method(&self, id: &str) -> my_account::DeleteAuthenticationMethod {
        my_account::DeleteAuthenticationMethod::delete_method(self.config.clone(), id)
    }
}
