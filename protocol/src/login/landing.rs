//! How every login without a browser ends (Custom Token Exchange, passwordless codes, CIBA):
//! the token answer's ID token is verified exactly as an interactive login's (signature,
//! `iss`, `aud`, `azp`, expiry, organization), then either the tokens are returned, or a
//! session is built from the verified claims only (with the IPSIE ceiling) and replaces the
//! previous one: `DeleteSession` (a new session id), then `SaveSession`.
//!
//! [`Landing`] is the sub-machine those operations run once their grant has been answered.

use super::complete::{LoginResult, session_from_tokens};
use super::error::LoginError;
use super::token_exchange::TokenExchangeResult;
use crate::config::Config;
use crate::discovery::Metadata;
use crate::effect::{Effect, Input};
use crate::jose::claims::{IdTokenExpectations, validate_id_token};
use crate::session::{StateData, session_ceiling};
use crate::signed_token::{VerifyFailure, VerifyOutcome, VerifySignedToken};
use crate::time::UnixTime;
use crate::token_endpoint::TokenResponse;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Where a verified answer goes.
#[derive(Clone, Debug)]
pub(crate) struct Destination {
    /// Create the session (`true`), or return the tokens.
    pub(crate) session: bool,
    /// The audience key of the session's token set.
    pub(crate) audience_key: String,
    /// The scope requested, stored with the token set.
    pub(crate) scope: Option<String>,
    /// The organization the ID token must name, when one was asked for.
    pub(crate) organization: Option<String>,
}

/// What a landing ends with.
pub(crate) enum Landed {
    /// The tokens (no session).
    Tokens(TokenExchangeResult),
    /// The session was replaced.
    Session(LoginResult),
}

/// One step of a landing.
pub(crate) enum LandingStep {
    /// Perform this effect and hand its outcome to [`Landing::step`].
    Effect(Effect),
    /// The landing is over.
    Done(Result<Landed, LoginError>),
}

#[derive(Debug)]
enum State {
    Verifying {
        response: Box<TokenResponse>,
        verify: VerifySignedToken,
    },
    Replacing {
        session: Box<StateData>,
        result: Box<LoginResult>,
    },
    Saving {
        result: Box<LoginResult>,
    },
    Finished,
}

/// The end of a browserless login, from the grant's answer on.
#[derive(Debug)]
pub(crate) struct Landing {
    destination: Destination,
    /// When the answer was received: expiry times count from it.
    received_at: UnixTime,
    state: State,
}

impl Landing {
    /// Lands `response` (received at `now`): verifies its ID token, when it has one (a session
    /// needs one). The landing is `None` when it is over at once.
    pub(crate) fn start(
        destination: Destination,
        metadata: Arc<Metadata>,
        response: TokenResponse,
        now: UnixTime,
    ) -> (Option<Landing>, LandingStep) {
        let Some(id_token) = response.id_token.clone() else {
            let done = if destination.session {
                Err(LoginError::MissingIdToken)
            } else {
                Ok(Landed::Tokens(TokenExchangeResult::new(
                    response, None, now,
                )))
            };
            return (None, LandingStep::Done(done));
        };
        match VerifySignedToken::start_with_metadata(id_token.expose(), metadata) {
            Ok((verify, effect)) => (
                Some(Landing {
                    destination,
                    received_at: now,
                    state: State::Verifying {
                        response: Box::new(response),
                        verify,
                    },
                }),
                LandingStep::Effect(effect),
            ),
            Err(e) => (None, LandingStep::Done(Err(LoginError::InvalidIdToken(e)))),
        }
    }

    fn done(&mut self, r: Result<Landed, LoginError>) -> LandingStep {
        self.state = State::Finished;
        LandingStep::Done(r)
    }

    /// Advances the landing with the outcome of its last effect.
    pub(crate) fn step(&mut self, config: &Config, input: Input, now: UnixTime) -> LandingStep {
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (
                State::Verifying {
                    response,
                    mut verify,
                },
                input,
            ) => match verify.handle(config, input, now) {
                VerifyOutcome::Verified(claims, metadata) => {
                    let expectations = IdTokenExpectations {
                        issuer: &metadata.issuer,
                        client_id: config.client_id(),
                        nonce: None,
                        max_age: None,
                        organization: self.destination.organization.as_deref(),
                        now,
                        clock_tolerance: config.clock_tolerance(),
                    };
                    if let Err(e) = validate_id_token(&claims, &expectations) {
                        return self.done(Err(LoginError::InvalidIdToken(e)));
                    }
                    self.verified(*response, claims, now)
                }
                VerifyOutcome::Effect(e) => {
                    self.state = State::Verifying { response, verify };
                    LandingStep::Effect(e)
                }
                VerifyOutcome::Failed(VerifyFailure::Token(e)) => {
                    self.done(Err(LoginError::InvalidIdToken(e)))
                }
                VerifyOutcome::Failed(f) => self.done(Err(f.into())),
            },
            (State::Replacing { session, result }, Input::Done) => {
                self.state = State::Saving { result };
                LandingStep::Effect(Effect::SaveSession(session))
            }
            (State::Saving { result }, Input::Done) => self.done(Ok(Landed::Session(*result))),
            (state, _) => {
                let expected = match state {
                    State::Verifying { .. } => "ID token verification",
                    State::Replacing { .. } => "DeleteSession",
                    State::Saving { .. } => "SaveSession",
                    State::Finished => "nothing (the landing has finished)",
                };
                self.done(Err(crate::effect::UnexpectedInput { expected }.into()))
            }
        }
    }

    /// The ID token is verified: the tokens with its claims, or the session built from them.
    fn verified(
        &mut self,
        response: TokenResponse,
        claims: Map<String, Value>,
        now: UnixTime,
    ) -> LandingStep {
        if !self.destination.session {
            return self.done(Ok(Landed::Tokens(TokenExchangeResult::new(
                response,
                Some(claims),
                self.received_at,
            ))));
        }
        let ceiling = match session_ceiling(&claims, now) {
            Ok(ceiling) => ceiling,
            Err(e) => return self.done(Err(e.into())),
        };
        let mut session = session_from_tokens(
            &self.destination.audience_key,
            self.destination.scope.as_deref(),
            &response,
            claims,
            self.received_at,
        );
        session.internal.session_expires_at = ceiling.map(UnixTime::as_secs);
        let result = LoginResult {
            app_state: None,
            authorization_details: response.authorization_details.clone(),
        };
        self.state = State::Replacing {
            session: Box::new(session),
            result: Box::new(result),
        };
        LandingStep::Effect(Effect::DeleteSession)
    }
}
