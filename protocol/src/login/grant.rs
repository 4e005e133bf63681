//! A login by a token-endpoint grant that needs no browser: Custom Token Exchange
//! ([`super::token_exchange`]) and passwordless one-time codes ([`super::passwordless`]).
//!
//! The operations [`CustomTokenExchange`], [`LoginWithTokenExchange`] and
//! [`LoginWithPasswordless`] live here; their requests and checks live in the modules of their
//! grants, which know nothing of this machine (no import circle).
//!
//! One state machine for every such grant, in two modes: return the tokens (no session), or
//! create the session from them. Either way the request is checked before anything is sent,
//! an ID token in the answer is verified exactly as an interactive login's (signature, `iss`,
//! `aud`, `azp`, expiry, organization), and a session is only built from verified claims
//! (with the IPSIE ceiling), replacing the previous one (a new session id).

use super::error::LoginError;
use super::landing::{Destination, Landed, Landing, LandingStep};
use super::passkey::PasskeySignIn;
use super::passwordless::PasswordlessOtp;
use super::start::login_scope;
use super::token_exchange::{TokenExchangeRequest, TokenExchangeResult};
use crate::config::Config;
use crate::discovery::Metadata;
use crate::effect::{Effect, Input, Operation, Step, UnexpectedInput};
use crate::login::complete::LoginResult;
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::secret::Secret;
use crate::time::UnixTime;
use crate::token_endpoint::{
    ResponseError, TokenResponse, form_post, parse_token_response_expecting,
};
use std::sync::Arc;

/// The grants this machine runs.
#[derive(Debug)]
pub(crate) enum Grant {
    /// Custom Token Exchange (RFC 8693).
    TokenExchange(TokenExchangeRequest),
    /// A passwordless one-time code (Auth0's `passwordless/otp` grant).
    PasswordlessOtp(PasswordlessOtp),
    /// A passkey credential (Auth0's WebAuthn grant).
    Passkey(Box<PasskeySignIn>),
}

impl Grant {
    fn check(&self) -> Result<(), LoginError> {
        match self {
            Grant::TokenExchange(r) => r.check(),
            Grant::PasswordlessOtp(r) => r.check(),
            Grant::Passkey(r) => r.check(),
        }
    }
    /// Opens what the request carries sealed (a passkey session), at `now`.
    fn open(&mut self, config: &Config, now: UnixTime) -> Result<(), LoginError> {
        match self {
            Grant::Passkey(r) => r.open(config, now),
            Grant::TokenExchange(_) | Grant::PasswordlessOtp(_) => Ok(()),
        }
    }
    /// Whether the scope sent always carries `openid`, even for tokens only.
    fn needs_openid(&self) -> bool {
        matches!(self, Grant::Passkey(_))
    }
    fn audience(&self) -> Option<&str> {
        match self {
            Grant::TokenExchange(r) => r.audience.as_deref(),
            Grant::PasswordlessOtp(r) => r.audience.as_deref(),
            Grant::Passkey(r) => r.audience.as_deref(),
        }
    }
    fn scope(&self) -> Option<&str> {
        match self {
            Grant::TokenExchange(r) => r.scope.as_deref(),
            Grant::PasswordlessOtp(r) => r.scope.as_deref(),
            Grant::Passkey(r) => r.scope.as_deref(),
        }
    }
    fn organization(&self) -> Option<&str> {
        match self {
            Grant::TokenExchange(r) => r.organization.as_deref(),
            Grant::PasswordlessOtp(_) => None,
            Grant::Passkey(r) => r.organization(),
        }
    }
    /// The form parameters, in order; `scope` is the one to send.
    fn params<'a>(&'a self, config: &'a Config, scope: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
        match self {
            Grant::TokenExchange(r) => super::token_exchange::exchange_params(config, r, scope),
            Grant::PasswordlessOtp(r) => r.params(config, scope),
            Grant::Passkey(r) => r.params(config, scope),
        }
    }
    /// What was sent that an error answer must not echo into a message.
    fn secrets(&self) -> Vec<&str> {
        match self {
            Grant::TokenExchange(r) => vec![
                r.subject_token.expose(),
                r.actor.as_ref().map_or("", |a| a.token.expose()),
            ],
            Grant::PasswordlessOtp(r) => vec![r.code.expose()],
            Grant::Passkey(r) => r.secrets(),
        }
    }
    /// The error of a refused (or unusable) answer.
    fn refused(&self, e: ResponseError) -> LoginError {
        match self {
            Grant::TokenExchange(_) => LoginError::TokenExchange(e),
            Grant::PasswordlessOtp(_) => LoginError::Passwordless(e),
            Grant::Passkey(_) => LoginError::PasskeyToken(e),
        }
    }
}

/// Which of the two operations runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Return the tokens; no session.
    Tokens,
    /// Create the session from the answer.
    Session,
}

#[derive(Debug)]
enum State {
    Start,
    Metadata {
        meta: MetadataStep,
    },
    Exchanging {
        metadata: Arc<Metadata>,
        scope: Option<String>,
    },
    /// The answer is verified and lands (tokens, or the session).
    Landing(Box<Landing>),
    Finished,
}

/// The exchange both operations run.
#[derive(Debug)]
pub(crate) struct Exchange {
    config: Arc<Config>,
    grant: Grant,
    mode: Mode,
    state: State,
}

/// What the exchange ends with: what its landing ends with.
type Ended = Landed;

impl Exchange {
    pub(crate) fn new(config: Arc<Config>, grant: Grant, mode: Mode) -> Self {
        Exchange {
            config,
            grant,
            mode,
            state: State::Start,
        }
    }

    fn finish(&mut self, r: Result<Ended, LoginError>) -> Step<Ended, LoginError> {
        self.state = State::Finished;
        Step::Done(r)
    }

    fn audience_key(&self) -> String {
        self.config.audience_key(self.grant.audience()).to_owned()
    }

    /// The scope sent: the request's as given; for a login (or a grant that always needs
    /// `openid`: passkeys), the login scope (always with `openid`, the configured default when
    /// the request names none).
    fn scope(&self) -> Option<String> {
        match self.mode {
            Mode::Tokens if !self.grant.needs_openid() => self.grant.scope().map(str::to_owned),
            Mode::Tokens | Mode::Session => Some(login_scope(
                &self.config,
                &self.audience_key(),
                self.grant.scope(),
            )),
        }
    }

    /// Lands the grant's answer (received at `now`): verified, then the tokens or the session.
    fn land(
        &mut self,
        metadata: Arc<Metadata>,
        scope: Option<String>,
        response: TokenResponse,
        now: UnixTime,
    ) -> Step<Ended, LoginError> {
        let destination = Destination {
            session: self.mode == Mode::Session,
            audience_key: self.audience_key(),
            scope,
            organization: self.grant.organization().map(str::to_owned),
        };
        let (landing, step) = Landing::start(destination, metadata, response, now);
        self.landed(landing, step)
    }

    /// Follows a landing's step.
    fn landed(&mut self, landing: Option<Landing>, step: LandingStep) -> Step<Ended, LoginError> {
        match step {
            LandingStep::Effect(e) => {
                if let Some(landing) = landing {
                    self.state = State::Landing(Box::new(landing));
                }
                Step::Effect(e)
            }
            LandingStep::Done(r) => self.finish(r),
        }
    }

    /// Steps a [`Mode::Session`] exchange: its result is the login's.
    pub(crate) fn step_session(
        &mut self,
        input: Input,
        now: UnixTime,
    ) -> Step<LoginResult, LoginError> {
        done_as(self.step(input, now), |ended| match ended {
            Landed::Session(result) => Some(result),
            Landed::Tokens(_) => None,
        })
    }

    /// Steps a [`Mode::Tokens`] exchange: its result is the tokens.
    pub(crate) fn step_tokens(
        &mut self,
        input: Input,
        now: UnixTime,
    ) -> Step<TokenExchangeResult, LoginError> {
        done_as(self.step(input, now), |ended| match ended {
            Landed::Tokens(tokens) => Some(tokens),
            Landed::Session(_) => None,
        })
    }

    fn step(&mut self, input: Input, now: UnixTime) -> Step<Ended, LoginError> {
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (State::Start, Input::Start) => {
                if let Err(e) = self.grant.check() {
                    return self.finish(Err(e));
                }
                if let Err(e) = self.grant.open(&self.config, now) {
                    return self.finish(Err(e));
                }
                let (meta, effect) = MetadataStep::start();
                self.state = State::Metadata { meta };
                Step::Effect(effect)
            }
            (State::Metadata { mut meta }, input) => match meta.handle(&self.config, input, now) {
                MetadataOutcome::Ready(metadata) => {
                    let scope = self.scope();
                    let params = self.grant.params(&self.config, scope.as_deref());
                    let request = form_post(
                        &self.config,
                        &metadata,
                        metadata.token_endpoint_for(self.config.client_auth_method().transport()),
                        &params,
                    );
                    self.state = State::Exchanging { metadata, scope };
                    Step::Effect(Effect::Http(Box::new(request)))
                }
                MetadataOutcome::Effect(e) => {
                    self.state = State::Metadata { meta };
                    Step::Effect(e)
                }
                MetadataOutcome::Failed(e) => self.finish(Err(LoginError::Discovery(e))),
                MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
            },
            (State::Exchanging { metadata, scope }, Input::Http(response)) => {
                let parsed =
                    match parse_token_response_expecting(&response, Some(self.config.token_type()))
                    {
                        Ok(parsed) => parsed,
                        Err(e) => {
                            // A server that echoes what it was sent must not put it in a log.
                            let mut sent = self.grant.secrets();
                            sent.push(self.config.client_secret().map_or("", Secret::expose));
                            let e = e.redact(&sent);
                            return self.finish(Err(self.grant.refused(e)));
                        }
                    };
                self.land(metadata, scope, parsed, now)
            }
            (State::Landing(mut landing), input) => {
                let step = landing.step(&self.config, input, now);
                self.landed(Some(*landing), step)
            }
            (state, _) => {
                let expected = match state {
                    State::Start => "Start",
                    State::Metadata { .. } => "metadata",
                    State::Exchanging { .. } => "Http (token exchange)",
                    State::Landing(_) => "the landing's effects",
                    State::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}

/// A step of the machine as the step of one operation, whose result is `pick`ed from what the
/// machine ended with (the other mode's result would be a driver bug, reported as such).
fn done_as<T>(
    step: Step<Ended, LoginError>,
    pick: impl FnOnce(Ended) -> Option<T>,
) -> Step<T, LoginError> {
    match step {
        Step::Effect(e) => Step::Effect(e),
        Step::Done(Ok(ended)) => Step::Done(pick(ended).ok_or_else(|| {
            UnexpectedInput {
                expected: "the result of this operation's own mode",
            }
            .into()
        })),
        Step::Done(Err(e)) => Step::Done(Err(e)),
    }
}

/// Declares an operation that runs [`Exchange`] with one grant in one mode: the type, its
/// constructor and its `Operation` impl (the session modes return a [`LoginResult`], the
/// token modes a [`TokenExchangeResult`]).
macro_rules! exchange_operation {
    ($(#[$doc:meta])* $name:ident($arg:ident: $arg_ty:ty) => $grant:expr, Session) => {
        exchange_operation!(@define $(#[$doc])* $name($arg: $arg_ty) => $grant,
            Mode::Session, LoginResult, step_session);
    };
    ($(#[$doc:meta])* $name:ident($arg:ident: $arg_ty:ty) => $grant:expr, Tokens) => {
        exchange_operation!(@define $(#[$doc])* $name($arg: $arg_ty) => $grant,
            Mode::Tokens, TokenExchangeResult, step_tokens);
    };
    (@define $(#[$doc:meta])* $name:ident($arg:ident: $arg_ty:ty) => $grant:expr,
        $mode:expr, $output:ty, $step:ident) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name(Exchange);

        impl $name {
            pub(crate) fn new(config: Arc<Config>, $arg: $arg_ty) -> Self {
                $name(Exchange::new(config, $grant, $mode))
            }
        }

        impl Operation for $name {
            type Output = $output;
            type Error = LoginError;

            fn step(&mut self, input: Input, now: UnixTime) -> Step<$output, LoginError> {
                self.0.$step(input, now)
            }
        }
    };
}

exchange_operation!(
    /// The `custom_token_exchange` operation: tokens for a subject token, no session.
    CustomTokenExchange(request: TokenExchangeRequest) => Grant::TokenExchange(request), Tokens
);
exchange_operation!(
    /// The `login_with_token_exchange` operation: a session from a subject token.
    LoginWithTokenExchange(request: TokenExchangeRequest) => Grant::TokenExchange(request), Session
);
exchange_operation!(
    /// The `login_with_passwordless` operation: a session from a one-time code.
    LoginWithPasswordless(otp: PasswordlessOtp) => Grant::PasswordlessOtp(otp), Session
);
exchange_operation!(
    /// The `login_with_passkey` operation: a session from a passkey credential
    /// ([`super::passkey`]).
    LoginWithPasskey(sign_in: PasskeySignIn) => Grant::Passkey(Box::new(sign_in)), Session
);
exchange_operation!(
    /// The `passkey_tokens` operation: tokens for a passkey credential, no session.
    PasskeyTokens(sign_in: PasskeySignIn) => Grant::Passkey(Box::new(sign_in)), Tokens
);
