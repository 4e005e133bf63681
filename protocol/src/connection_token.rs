//! `get_access_token_for_connection`: an access token for a federated connection such as
//! `google-oauth2` (Auth0 Token Vault), obtained by exchanging the session's refresh token and
//! cached in the session (as Auth0's guide "Retrieving an Access Token for a Connection"
//! describes).

use crate::config::Config;
use crate::discovery::Metadata;
use crate::effect::{
    Coalesce, Effect, HttpRequest, Input, MAX_ROTATIONS_FOLLOWED, Operation, Step, UnexpectedInput,
};
use crate::error_code::ErrorCode;
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::secret::Secret;
use crate::session::{ConnectionTokenSet, SessionUpdate, StateData, UpdateNext, after_update};
use crate::time::UnixTime;
use crate::time::is_expired;
use crate::token_endpoint::{
    ResponseError, TokenResponse, form_post, parse_token_response_expecting, refresh_token_hash,
};
use serde_json::Value;
use std::sync::Arc;

/// The grant type of the federated-connection token exchange.
pub const GRANT_TYPE: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";
/// The subject token type: a refresh token.
pub const SUBJECT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:refresh_token";
/// The requested token type: a federated connection access token.
pub const REQUESTED_TOKEN_TYPE: &str =
    "http://auth0.com/oauth/token-type/federated-connection-access-token";

/// Which connection's token is wanted.
///
/// ```
/// use auth0_server_protocol::connection_token::ConnectionTokenRequest;
/// let req = ConnectionTokenRequest::new("google-oauth2").login_hint("me@example.com");
/// assert_eq!(req.login_hint.as_deref(), Some("me@example.com"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionTokenRequest {
    /// The connection, e.g. `google-oauth2`.
    pub connection: String,
    /// Which of the user's accounts on that connection, when there are several.
    pub login_hint: Option<String>,
}

impl ConnectionTokenRequest {
    /// A request for a connection.
    pub fn new(connection: impl Into<String>) -> Self {
        ConnectionTokenRequest {
            connection: connection.into(),
            login_hint: None,
        }
    }
    /// Sets the login hint.
    pub fn login_hint(mut self, hint: impl Into<String>) -> Self {
        self.login_hint = Some(hint.into());
        self
    }
}

/// A connection access token as returned to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionToken {
    /// The token.
    pub access_token: Secret,
    /// The connection.
    pub connection: String,
    /// Its scope.
    pub scope: Option<String>,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

impl From<&ConnectionTokenSet> for ConnectionToken {
    fn from(s: &ConnectionTokenSet) -> Self {
        ConnectionToken {
            access_token: s.access_token.clone(),
            connection: s.connection.clone(),
            scope: s.scope.clone(),
            expires_at: s.expires_at,
        }
    }
}

/// Why no connection token could be returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionTokenError {
    /// There is no session.
    #[error("there is no session: the user is not logged in")]
    MissingSession,
    /// The session has no refresh token to exchange.
    #[error(
        "the session has no refresh token to exchange; request the `offline_access` scope at login"
    )]
    MissingRefreshToken,
    /// The connection name is empty.
    #[error("the connection name must not be empty")]
    InvalidRequest,
    /// The exchange was refused or the answer was unusable.
    #[error("failed to get a token for the connection: {0}")]
    FailedToExchange(ResponseError),
    /// The exchange needs multi-factor authentication first.
    #[error("multi-factor authentication is required")]
    MfaRequired {
        /// The MFA token to continue with.
        mfa_token: Secret,
        /// The `mfa_requirements` sent by Auth0.
        mfa_requirements: Option<Value>,
    },
    /// Discovery of the tenant's endpoints failed.
    #[error("OpenID discovery failed: {0}")]
    Discovery(ResponseError),
    /// The connection token was obtained but the session could not be saved (see
    /// [`AccessTokenError::SessionNotSaved`](crate::access_token::AccessTokenError::SessionNotSaved)).
    #[error("{}", crate::access_token::not_saved_message(*.refresh_token_kept, .reason))]
    SessionNotSaved {
        /// Whether a rotated refresh token is kept in the process.
        refresh_token_kept: bool,
        /// What the store reported (never session contents or tokens).
        reason: String,
    },
    /// The driver broke the protocol.
    #[error(transparent)]
    UnexpectedInput(#[from] UnexpectedInput),
}

impl ConnectionTokenError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ConnectionTokenError::MissingSession => ErrorCode::MissingSession,
            ConnectionTokenError::MissingRefreshToken => ErrorCode::MissingRefreshToken,
            ConnectionTokenError::InvalidRequest => ErrorCode::InvalidRequest,
            ConnectionTokenError::FailedToExchange(_) => ErrorCode::FailedToExchangeToken,
            ConnectionTokenError::MfaRequired { .. } => ErrorCode::MfaRequired,
            ConnectionTokenError::Discovery(_) => ErrorCode::DiscoveryFailed,
            ConnectionTokenError::SessionNotSaved { .. } => ErrorCode::SessionNotSaved,
            ConnectionTokenError::UnexpectedInput(_) => ErrorCode::UnexpectedInput,
        }
    }

    /// The OAuth error the server sent, if any.
    pub fn oauth_error(&self) -> Option<&crate::token_endpoint::OAuthError> {
        match self {
            ConnectionTokenError::FailedToExchange(e) | ConnectionTokenError::Discovery(e) => {
                e.oauth()
            }
            _ => None,
        }
    }
}

/// The stored connection token for a request: same connection, and the same login hint when
/// one is given.
pub fn select_connection_token<'a>(
    sets: &'a [ConnectionTokenSet],
    request: &ConnectionTokenRequest,
) -> Option<&'a ConnectionTokenSet> {
    sets.iter().find(|s| {
        s.connection == request.connection
            && (request.login_hint.is_none() || s.login_hint == request.login_hint)
    })
}

/// The token-exchange request: the session's refresh token exchanged for the connection's
/// access token (Token Vault).
pub fn exchange_request(
    config: &Config,
    metadata: &Metadata,
    refresh_token: &Secret,
    request: &ConnectionTokenRequest,
) -> HttpRequest {
    let mut params: Vec<(&str, &str)> = vec![
        ("grant_type", GRANT_TYPE),
        ("subject_token_type", SUBJECT_TOKEN_TYPE),
        ("subject_token", refresh_token.expose()),
        ("requested_token_type", REQUESTED_TOKEN_TYPE),
        ("connection", &request.connection),
    ];
    if let Some(hint) = &request.login_hint {
        params.push(("login_hint", hint));
    }
    let lane = refresh_token_hash(refresh_token);
    HttpRequest {
        coalesce: Some(Coalesce {
            key: format!(
                "connection {lane} {} {}",
                request.connection,
                request.login_hint.as_deref().unwrap_or("")
            ),
            remember: false,
            // The exchange spends the refresh token too: never alongside a refresh of it, and
            // with the rotated token once a refresh has rotated it.
            lane: Some(lane),
        }),
        ..form_post(
            config,
            metadata,
            metadata.token_endpoint_for(config.client_auth_method().transport()),
            &params,
        )
    }
}

/// Stores a received connection token in the session (replacing the one for the same
/// connection and login hint, else appending) and returns it.
pub fn apply_exchange(
    session: &mut StateData,
    request: &ConnectionTokenRequest,
    response: &TokenResponse,
    now: UnixTime,
) -> ConnectionToken {
    let set = ConnectionTokenSet {
        connection: request.connection.clone(),
        login_hint: request.login_hint.clone(),
        access_token: response.access_token.clone(),
        scope: response.scope.clone(),
        expires_at: response.expires_at(now).as_secs(),
    };
    let token = ConnectionToken::from(&set);
    match session
        .connection_token_sets
        .iter_mut()
        .find(|s| s.connection == set.connection && s.login_hint == set.login_hint)
    {
        Some(existing) => *existing = set,
        None => session.connection_token_sets.push(set),
    }
    token
}

/// The `get_access_token_for_connection` operation.
#[derive(Debug)]
pub struct GetConnectionToken {
    config: Arc<Config>,
    request: ConnectionTokenRequest,
    state: State,
}

#[derive(Debug)]
enum State {
    Start,
    LoadingSession,
    Metadata {
        session: Box<StateData>,
        meta: MetadataStep,
    },
    Exchanging {
        /// The session as read from the store.
        base: Box<StateData>,
        /// The session as this operation changes it.
        session: Box<StateData>,
        metadata: Arc<Metadata>,
        /// The refresh tokens sent so far (the session's, then each rotation followed).
        spent: Vec<Secret>,
    },
    Saving {
        token: ConnectionToken,
        update: Box<SessionUpdate>,
    },
    KeepingRotation {
        error: ConnectionTokenError,
    },
    Finished,
}

impl GetConnectionToken {
    pub(crate) fn new(config: Arc<Config>, request: ConnectionTokenRequest) -> Self {
        GetConnectionToken {
            config,
            request,
            state: State::Start,
        }
    }

    fn finish(
        &mut self,
        result: Result<ConnectionToken, ConnectionTokenError>,
    ) -> Step<ConnectionToken, ConnectionTokenError> {
        self.state = State::Finished;
        Step::Done(result)
    }
}

impl Operation for GetConnectionToken {
    type Output = ConnectionToken;
    type Error = ConnectionTokenError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<ConnectionToken, ConnectionTokenError> {
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (State::Start, Input::Start) => {
                if self.request.connection.trim().is_empty() {
                    return self.finish(Err(ConnectionTokenError::InvalidRequest));
                }
                self.state = State::LoadingSession;
                Step::Effect(Effect::LoadSession)
            }
            (State::LoadingSession, Input::Session(session)) => {
                let Some(session) = session else {
                    return self.finish(Err(ConnectionTokenError::MissingSession));
                };
                if let Some(set) =
                    select_connection_token(&session.connection_token_sets, &self.request)
                {
                    if !is_expired(
                        UnixTime::from_secs(set.expires_at),
                        now,
                        self.config.leeway(),
                    ) {
                        return self.finish(Ok(set.into()));
                    }
                }
                if session.refresh_token.is_none() {
                    return self.finish(Err(ConnectionTokenError::MissingRefreshToken));
                }
                let (meta, effect) = MetadataStep::start();
                self.state = State::Metadata {
                    session: Box::new(Arc::unwrap_or_clone(session)),
                    meta,
                };
                Step::Effect(effect)
            }
            (State::Metadata { session, mut meta }, input) => {
                match meta.handle(&self.config, input, now) {
                    MetadataOutcome::Ready(m) => {
                        let Some(rt) = session.refresh_token.as_ref() else {
                            return self.finish(Err(ConnectionTokenError::MissingRefreshToken));
                        };
                        let req = exchange_request(&self.config, &m, rt, &self.request);
                        let spent = vec![rt.clone()];
                        self.state = State::Exchanging {
                            base: session.clone(),
                            session,
                            metadata: m,
                            spent,
                        };
                        Step::Effect(Effect::Http(Box::new(req)))
                    }
                    MetadataOutcome::Effect(e) => {
                        self.state = State::Metadata { session, meta };
                        Step::Effect(e)
                    }
                    MetadataOutcome::Failed(e) => {
                        self.finish(Err(ConnectionTokenError::Discovery(e)))
                    }
                    MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
                }
            }
            (
                State::Exchanging {
                    base,
                    mut session,
                    metadata,
                    mut spent,
                },
                Input::Rotated(rotated_to),
            ) => {
                if spent.len() > usize::from(MAX_ROTATIONS_FOLLOWED) {
                    return self.finish(Err(UnexpectedInput {
                        expected: "Http (the refresh token kept rotating)",
                    }
                    .into()));
                }
                let req = exchange_request(&self.config, &metadata, &rotated_to, &self.request);
                session.refresh_token = Some(rotated_to.clone());
                spent.push(rotated_to);
                self.state = State::Exchanging {
                    base,
                    session,
                    metadata,
                    spent,
                };
                Step::Effect(Effect::Http(Box::new(req)))
            }
            (
                State::Exchanging {
                    base,
                    mut session,
                    spent,
                    ..
                },
                Input::Http(response),
            ) => match
                // With DPoP the exchange carries a proof (the refresh token may be bound), but
                // the token it returns is the upstream provider's: either type is accepted.
                parse_token_response_expecting(&response, None)
            {
                Ok(parsed) => {
                    let token = apply_exchange(&mut session, &self.request, &parsed, now);
                    let update = Box::new(SessionUpdate::between(&base, &session, &spent));
                    self.state = State::Saving {
                        token,
                        update: update.clone(),
                    };
                    Step::Effect(Effect::UpdateSession(update))
                }
                Err(ResponseError::OAuth(o)) if o.error == "mfa_required" => {
                    self.finish(Err(ConnectionTokenError::MfaRequired {
                        mfa_token: o.mfa_token.unwrap_or_default(),
                        mfa_requirements: o.mfa_requirements,
                    }))
                }
                // A server that echoes the refresh token or the secret it was sent must not
                // put them in a log.
                Err(e) => {
                    let sent: Vec<&str> = spent
                        .iter()
                        .map(Secret::expose)
                        .chain([self.config.client_secret().map_or("", Secret::expose)])
                        .collect();
                    self.finish(Err(ConnectionTokenError::FailedToExchange(e.redact(&sent))))
                }
            },
            (State::Saving { token, update }, Input::Updated(outcome)) => {
                match after_update(&update, outcome) {
                    UpdateNext::Saved => self.finish(Ok(token)),
                    UpdateNext::Gone => self.finish(Err(ConnectionTokenError::MissingSession)),
                    UpdateNext::Failed {
                        keep,
                        refresh_token_kept,
                        reason,
                    } => {
                        let error = ConnectionTokenError::SessionNotSaved {
                            refresh_token_kept,
                            reason,
                        };
                        match keep {
                            Some(keep) => {
                                self.state = State::KeepingRotation { error };
                                Step::Effect(keep.into())
                            }
                            None => self.finish(Err(error)),
                        }
                    }
                }
            }
            (State::KeepingRotation { error }, Input::Done) => self.finish(Err(error)),
            (state, _) => {
                let expected = match state {
                    State::Start => "Start",
                    State::LoadingSession => "LoadSession",
                    State::Metadata { .. } => "metadata",
                    State::Exchanging { .. } => "Http (token exchange)",
                    State::Saving { .. } => "Updated",
                    State::KeepingRotation { .. } => "Done (KeepRotation)",
                    State::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}
