//! Step 3 of a login: `complete_interactive_login` checks the callback against the
//! transaction (constant-time `state`), exchanges the code, verifies the ID token, and replaces
//! the session.

use super::callback::{Callback, parse_callback};
use super::error::LoginError;
use crate::config::Config;
use crate::discovery::Metadata;
use crate::effect::{Effect, Input, Operation, Step, UnexpectedInput};
use crate::jose::claims::{IdTokenExpectations, validate_id_token};
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::secret::Secret;
use crate::session::{Internal, StateData, session_ceiling, token_set};
use crate::signed_token::{VerifyFailure, VerifyOutcome, VerifySignedToken};
use crate::time::UnixTime;
use crate::token_endpoint::{TokenResponse, form_post, parse_token_response_expecting};
use crate::transaction::{TransactionData, transaction_key};
use serde_json::Value;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// What a completed login returns to the application.
#[derive(Clone, Debug, PartialEq)]
pub struct LoginResult {
    /// The `app_state` given to `start_interactive_login`.
    pub app_state: Option<Value>,
    /// Rich Authorization Request details granted, when any.
    pub authorization_details: Option<Value>,
}

/// Builds the session of a freshly logged-in user from a verified token response.
pub fn session_from_login(
    config: &Config,
    transaction: &TransactionData,
    response: &TokenResponse,
    claims: serde_json::Map<String, Value>,
    now: UnixTime,
) -> StateData {
    session_from_tokens(
        config.audience_key(transaction.audience.as_deref()),
        transaction.scope.as_deref(),
        response,
        claims,
        now,
    )
}

/// Builds a new session from a verified token response (an interactive login's, or a login
/// by token exchange's): the user is the ID token's `claims`, the one token set is for
/// `audience_key` and the `requested_scope`, and the answer was received at `now`.
pub fn session_from_tokens(
    audience_key: &str,
    requested_scope: Option<&str>,
    response: &TokenResponse,
    claims: serde_json::Map<String, Value>,
    now: UnixTime,
) -> StateData {
    let sid = claims
        .get("sid")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    StateData {
        user: Some(claims),
        id_token: response.id_token.clone(),
        refresh_token: response.refresh_token.clone(),
        token_sets: vec![token_set(
            audience_key,
            requested_scope,
            response,
            response.expires_at(now).as_secs(),
        )],
        connection_token_sets: Vec::new(),
        internal: Internal {
            sid,
            created_at: now.as_secs(),
            last_active_at: Some(now.as_secs()),
            extra: Default::default(),
            session_expires_at: None,
        },
        extra: Default::default(),
    }
}

/// RFC 9207: the callback's `iss`, when present, must be the discovered issuer; when
/// discovery advertises `authorization_response_iss_parameter_supported`, it must be present.
pub fn check_callback_issuer(metadata: &Metadata, iss: Option<&str>) -> Result<(), LoginError> {
    match iss {
        Some(iss) if iss == metadata.issuer => Ok(()),
        None if !metadata.authorization_response_iss_parameter_supported => Ok(()),
        actual => Err(LoginError::InvalidCallbackIssuer {
            expected: metadata.issuer.clone(),
            actual: actual.map(|a| a.chars().take(512).collect()),
        }),
    }
}

/// The `complete_interactive_login` operation. The previous session, if any, is deleted before
/// the new one is saved, so stores that key sessions by an id issue a fresh id (no session
/// fixation).
#[derive(Debug)]
pub struct CompleteInteractiveLogin {
    config: Arc<Config>,
    callback: Result<Callback, LoginError>,
    state: CompleteState,
}

#[derive(Debug)]
enum CompleteState {
    Start,
    /// `LoadTransaction` was emitted for the callback's `state`, stored under `key`.
    LoadingTransaction {
        key: String,
    },
    /// The login failed; its transaction (spent) is being deleted before `error` is returned.
    DeletingFailed {
        error: LoginError,
    },
    /// The callback carries an authorization error; the metadata is loaded to check its
    /// RFC 9207 `iss` before the error is reported.
    ErrorMetadata {
        key: String,
        error: LoginError,
        meta: MetadataStep,
    },
    /// The callback matched the transaction; fetching the tenant's metadata.
    Metadata {
        key: String,
        transaction: Box<TransactionData>,
        code: Secret,
        meta: MetadataStep,
    },
    /// The code was sent to the token endpoint.
    Exchanging {
        key: String,
        transaction: Box<TransactionData>,
        metadata: Arc<Metadata>,
        /// The code sent, redacted from an error answer that echoes it.
        code: Secret,
    },
    /// The ID token of `response` is being verified against the tenant's keys.
    Verifying {
        key: String,
        transaction: Box<TransactionData>,
        response: Box<TokenResponse>,
        verify: VerifySignedToken,
    },
    /// The previous session is being deleted, so a store that keys sessions by an id issues
    /// a new id for the new session (no session fixation).
    Replacing {
        key: String,
        result: Box<LoginResult>,
        session: Box<StateData>,
    },
    /// An account-linking answer is verified; the session it merges into is being read.
    LinkLoading {
        key: String,
        result: Box<LoginResult>,
        link: super::link::AccountLink,
        /// The session-to-be of the answer (user, tokens, ceiling), merged into the one read.
        linked: Box<StateData>,
    },
    /// The new session is being saved.
    Saving {
        key: String,
        result: Box<LoginResult>,
    },
    /// The spent transaction is being deleted; then `result` is returned.
    Deleting {
        result: Box<LoginResult>,
    },
    Finished,
}

impl CompleteInteractiveLogin {
    pub(crate) fn new(config: Arc<Config>, callback_url: &str) -> Self {
        CompleteInteractiveLogin {
            config,
            callback: parse_callback(callback_url),
            state: CompleteState::Start,
        }
    }

    fn finish(&mut self, r: Result<LoginResult, LoginError>) -> Step<LoginResult, LoginError> {
        self.state = CompleteState::Finished;
        Step::Done(r)
    }

    /// Fails the login and deletes its transaction (a failed callback cannot be retried).
    fn fail_and_forget(&mut self, key: String, error: LoginError) -> Step<LoginResult, LoginError> {
        self.state = CompleteState::DeletingFailed { error };
        Step::Effect(Effect::DeleteTransaction { key })
    }
}

impl Operation for CompleteInteractiveLogin {
    type Output = LoginResult;
    type Error = LoginError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<LoginResult, LoginError> {
        match (
            std::mem::replace(&mut self.state, CompleteState::Finished),
            input,
        ) {
            (CompleteState::Start, Input::Start) => {
                let callback = match &self.callback {
                    Ok(cb) => cb,
                    Err(e) => return self.finish(Err(e.clone())),
                };
                let Some(state) = callback
                    .state
                    .as_deref()
                    .filter(|s| !s.is_empty() && s.len() <= 256)
                else {
                    return self.finish(Err(LoginError::InvalidState));
                };
                let key = transaction_key(state);
                self.state = CompleteState::LoadingTransaction { key: key.clone() };
                Step::Effect(Effect::LoadTransaction { key })
            }
            (CompleteState::LoadingTransaction { key }, Input::Transaction(tx)) => {
                // A pending account connection (`my_account`) is never completed as a login.
                let Some(tx) = tx.filter(|t| t.connect.is_none()) else {
                    return self.finish(Err(LoginError::MissingTransaction));
                };
                let Ok(callback) = self.callback.clone() else {
                    return self.finish(Err(LoginError::InvalidState));
                };
                let expected = tx.state.as_deref().unwrap_or_default().as_bytes();
                let got = callback.state.as_deref().unwrap_or_default().as_bytes();
                if expected.is_empty() || !bool::from(expected.ct_eq(got)) {
                    return self.fail_and_forget(key, LoginError::InvalidState);
                }
                if let Some(error) = callback.error {
                    let err = LoginError::Authorization {
                        error,
                        error_description: callback.error_description,
                    };
                    // RFC 9207 applies to error responses too: an error from another issuer
                    // (a mix-up) is reported as such. Without a callback `iss` there is
                    // nothing to compare unless the provider promises one, which needs its
                    // metadata.
                    let (meta, effect) = MetadataStep::start();
                    self.state = CompleteState::ErrorMetadata {
                        key,
                        error: err,
                        meta,
                    };
                    return Step::Effect(effect);
                }
                let Some(code) = callback.code.filter(|c| !c.is_empty()).map(Secret::new) else {
                    return self.fail_and_forget(key, LoginError::MissingCode);
                };
                let (meta, effect) = MetadataStep::start();
                self.state = CompleteState::Metadata {
                    key,
                    transaction: Box::new(tx),
                    code,
                    meta,
                };
                Step::Effect(effect)
            }
            (
                CompleteState::ErrorMetadata {
                    key,
                    error,
                    mut meta,
                },
                input,
            ) => match meta.handle(&self.config, input, now) {
                MetadataOutcome::Ready(m) => {
                    let sent_iss = self.callback.as_ref().ok().and_then(|c| c.iss.clone());
                    match check_callback_issuer(&m, sent_iss.as_deref()) {
                        Ok(()) => self.fail_and_forget(key, error),
                        Err(mix_up) => self.fail_and_forget(key, mix_up),
                    }
                }
                MetadataOutcome::Effect(e) => {
                    self.state = CompleteState::ErrorMetadata { key, error, meta };
                    Step::Effect(e)
                }
                // Without metadata the issuer cannot be checked: report the provider's error.
                MetadataOutcome::Failed(_) => self.fail_and_forget(key, error),
                MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
            },
            (
                CompleteState::Metadata {
                    key,
                    transaction: tx,
                    code,
                    mut meta,
                },
                input,
            ) => match meta.handle(&self.config, input, now) {
                MetadataOutcome::Ready(m) => {
                    let sent_iss = self.callback.as_ref().ok().and_then(|c| c.iss.clone());
                    if let Err(e) = check_callback_issuer(&m, sent_iss.as_deref()) {
                        return self.fail_and_forget(key, e);
                    }
                    let redirect_uri = tx.redirect_uri.as_deref().unwrap_or_default();
                    let mut params = vec![
                        ("grant_type", "authorization_code"),
                        ("code", code.expose()),
                        ("redirect_uri", redirect_uri),
                    ];
                    // A magic link's login was started by Auth0 without PKCE: no verifier.
                    if let Some(verifier) = &tx.code_verifier {
                        params.push(("code_verifier", verifier.expose()));
                    }
                    let request = form_post(
                        &self.config,
                        &m,
                        m.token_endpoint_for(self.config.client_auth_method().transport()),
                        &params,
                    );
                    self.state = CompleteState::Exchanging {
                        key,
                        transaction: tx,
                        metadata: m,
                        code,
                    };
                    Step::Effect(Effect::Http(Box::new(request)))
                }
                MetadataOutcome::Effect(e) => {
                    self.state = CompleteState::Metadata {
                        key,
                        transaction: tx,
                        code,
                        meta,
                    };
                    Step::Effect(e)
                }
                MetadataOutcome::Failed(e) => self.finish(Err(LoginError::Discovery(e))),
                MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
            },
            (
                CompleteState::Exchanging {
                    key,
                    transaction: tx,
                    metadata,
                    code,
                },
                Input::Http(response),
            ) => {
                let parsed =
                    match parse_token_response_expecting(&response, Some(self.config.token_type()))
                    {
                        Ok(p) => p,
                        // The code is single-use: this transaction cannot succeed any more.
                        Err(e) => {
                            let sent = [
                                code.expose(),
                                tx.code_verifier.as_ref().map_or("", Secret::expose),
                                self.config.client_secret().map_or("", Secret::expose),
                            ];
                            return self
                                .fail_and_forget(key, LoginError::CodeExchange(e.redact(&sent)));
                        }
                    };
                let Some(id_token) = parsed.id_token.clone() else {
                    return self.fail_and_forget(key, LoginError::MissingIdToken);
                };
                match VerifySignedToken::start_with_metadata(id_token.expose(), metadata) {
                    Ok((verify, effect)) => {
                        self.state = CompleteState::Verifying {
                            key,
                            transaction: tx,
                            response: Box::new(parsed),
                            verify,
                        };
                        Step::Effect(effect)
                    }
                    Err(e) => self.fail_and_forget(key, LoginError::InvalidIdToken(e)),
                }
            }
            (
                CompleteState::Verifying {
                    key,
                    transaction: tx,
                    response,
                    mut verify,
                },
                input,
            ) => match verify.handle(&self.config, input, now) {
                VerifyOutcome::Verified(claims, metadata) => {
                    let expectations = IdTokenExpectations {
                        issuer: &metadata.issuer,
                        client_id: self.config.client_id(),
                        nonce: tx.nonce.as_deref(),
                        max_age: tx.max_age.map(std::time::Duration::from_secs),
                        organization: tx.organization.as_deref(),
                        now,
                        clock_tolerance: self.config.clock_tolerance(),
                    };
                    if let Err(e) = validate_id_token(&claims, &expectations) {
                        return self.fail_and_forget(key, LoginError::InvalidIdToken(e));
                    }
                    let ceiling = match session_ceiling(&claims, now) {
                        Ok(ceiling) => ceiling,
                        Err(e) => return self.fail_and_forget(key, e.into()),
                    };
                    let mut session = session_from_login(&self.config, &tx, &response, claims, now);
                    session.internal.session_expires_at = ceiling.map(UnixTime::as_secs);
                    let result = LoginResult {
                        app_state: tx.app_state.clone(),
                        authorization_details: response.authorization_details.clone(),
                    };
                    if let Some(link) = tx.link.clone() {
                        // A link keeps the account: the answer must name the user who started it.
                        if session.sub() != Some(link.sub.as_str()) {
                            return self.fail_and_forget(key, LoginError::SessionMismatch);
                        }
                        self.state = CompleteState::LinkLoading {
                            key,
                            result: Box::new(result),
                            link,
                            linked: Box::new(session),
                        };
                        return Step::Effect(Effect::LoadSession);
                    }
                    self.state = CompleteState::Replacing {
                        key,
                        result: Box::new(result),
                        session: Box::new(session),
                    };
                    Step::Effect(Effect::DeleteSession)
                }
                VerifyOutcome::Effect(e) => {
                    self.state = CompleteState::Verifying {
                        key,
                        transaction: tx,
                        response,
                        verify,
                    };
                    Step::Effect(e)
                }
                VerifyOutcome::Failed(VerifyFailure::Token(e)) => {
                    self.fail_and_forget(key, LoginError::InvalidIdToken(e))
                }
                VerifyOutcome::Failed(f) => self.finish(Err(f.into())),
            },
            (
                CompleteState::Replacing {
                    key,
                    result,
                    session,
                },
                Input::Done,
            ) => {
                self.state = CompleteState::Saving { key, result };
                Step::Effect(Effect::SaveSession(session))
            }
            (
                CompleteState::LinkLoading {
                    key,
                    result,
                    link,
                    linked,
                },
                Input::Session(current),
            ) => {
                let Some(current) = current else {
                    return self.fail_and_forget(key, LoginError::MissingSession);
                };
                if current.sub() != Some(link.sub.as_str()) {
                    return self.fail_and_forget(key, LoginError::SessionMismatch);
                }
                let linked = *linked;
                let merged = super::link::merge_linked(
                    std::sync::Arc::unwrap_or_clone(current),
                    linked.user.unwrap_or_default(),
                    linked.id_token,
                    linked.refresh_token,
                    linked.token_sets.into_iter().next(),
                    linked.internal.session_expires_at.map(UnixTime::from_secs),
                );
                self.state = CompleteState::Saving { key, result };
                Step::Effect(Effect::SaveSession(Box::new(merged)))
            }
            (CompleteState::Saving { key, result }, Input::Done) => {
                self.state = CompleteState::Deleting { result };
                Step::Effect(Effect::DeleteTransaction { key })
            }
            (CompleteState::Deleting { result }, Input::Done) => self.finish(Ok(*result)),
            (CompleteState::DeletingFailed { error }, Input::Done) => self.finish(Err(error)),
            (state, _) => {
                let expected = match state {
                    CompleteState::Start => "Start",
                    CompleteState::LoadingTransaction { .. } => "LoadTransaction",
                    CompleteState::DeletingFailed { .. } | CompleteState::Deleting { .. } => {
                        "DeleteTransaction"
                    }
                    CompleteState::Metadata { .. } | CompleteState::ErrorMetadata { .. } => {
                        "metadata"
                    }
                    CompleteState::Exchanging { .. } => "Http (code exchange)",
                    CompleteState::Verifying { .. } => "ID token verification",
                    CompleteState::Replacing { .. } => "DeleteSession",
                    CompleteState::LinkLoading { .. } => "LoadSession",
                    CompleteState::Saving { .. } => "SaveSession",
                    CompleteState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}
