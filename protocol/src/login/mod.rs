//! Interactive login, one module per step:
//!
//! 1. [`start`]: `start_interactive_login` builds the authorization URL (PKCE S256, `state`,
//!    `nonce`, optional PAR and RAR, organization, invitation) and saves the transaction.
//!    Randomness (verifier, state, nonce) comes from the adapter through
//!    [`Effect::Random`](crate::effect::Effect::Random); the URL is a pure function of the
//!    configuration, the call's options and those bytes ([`authorization_params`]), so it is
//!    property-tested offline.
//! 2. [`callback`]: reading the callback URL Auth0 redirected the browser to.
//! 3. [`complete`]: `complete_interactive_login` checks the callback against the
//!    transaction, exchanges the code, verifies the ID token and saves the session.
//! 4. [`refreshed_id_token`]: the ID token a later refresh returns, verified like the login's
//!    before it replaces anything.
//!
//! Account linking: [`link`] starts a login that adds (or removes) another connection's
//! identity to the logged-in user's account; its callback merges into the session.
//!
//! Logging in without a browser: [`token_exchange`] trades a token the application trusts for
//! Auth0 tokens (Custom Token Exchange), with or without creating a session; [`passwordless`]
//! sends a one-time code or magic link and logs the user in with it; [`ciba`] logs a user in
//! on another device (Client-Initiated Backchannel Authentication, poll mode); [`passkey`]
//! signs a user up or in with a passkey (WebAuthn challenges, then the WebAuthn grant).
//!
//! [`LoginError`] is the error of every step.

pub mod callback;
pub mod ciba;
pub mod complete;
mod error;
mod grant;
pub(crate) mod landing;
pub use grant::{CustomTokenExchange, LoginWithPasswordless, LoginWithTokenExchange};
pub use grant::{LoginWithPasskey, PasskeyTokens};
pub mod link;
pub mod passkey;
pub mod passwordless;
pub mod refreshed_id_token;
pub mod start;
pub mod token_exchange;

pub use crate::params::RESERVED_PARAMS;
pub use callback::{Callback, MAX_CALLBACK_URL, parse_callback};
pub use ciba::{
    BackchannelAuthenticationGrant, BackchannelHandle, BackchannelLoginRequest, BackchannelPoll,
    LoginBackchannel, PollBackchannelLogin, StartBackchannelLogin,
};
pub use complete::{
    CompleteInteractiveLogin, LoginResult, session_from_login, session_from_tokens,
};
pub use error::LoginError;
pub use link::{AccountLink, LinkAction, LinkUserOptions, StartLinkUser};
pub use passkey::{
    PasskeyCeremony, PasskeyChallenge, PasskeyChallengeRequest, PasskeyLogin, PasskeySignIn,
    PasskeySignup, PasskeyUserProfile, RequestPasskeyChallenge, SealedPasskeySession,
};
pub use passwordless::{
    PasswordlessConnection, PasswordlessOtp, PasswordlessSend, PasswordlessStart, StartPasswordless,
};
pub use start::{
    AuthorizationRequest, LOGIN_RANDOM_BYTES, LoginSecrets, StartInteractiveLogin,
    StartLoginOptions, authorization_params, authorization_url, code_challenge,
};
pub use token_exchange::{ActorToken, TokenExchangeRequest, TokenExchangeResult};
