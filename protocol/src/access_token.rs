//! `get_access_token`: serve a stored access token while it is valid, otherwise refresh it
//! with the refresh token (as Auth0's guides "Retrieving an Access Token" and
//! "Multi-Resource Refresh Tokens" describe).
//!
//! The decisions are plain functions ([`requested_scope`], [`select_token_set`],
//! [`is_expired`], [`refresh_request`], [`apply_refresh`]) so they can be tested and
//! benchmarked alone; [`GetAccessToken`] strings them together as an [`Operation`].

use crate::config::{AUDIENCE_DEFAULT_KEY, Config};
use crate::discovery::Metadata;
use crate::effect::{
    Coalesce, Effect, HttpRequest, Input, MAX_ROTATIONS_FOLLOWED, Operation, Step, UnexpectedInput,
};
use crate::error_code::ErrorCode;
use crate::jose::JoseError;
use crate::jose::jws::unverified_claims;
use crate::login::refreshed_id_token::{
    RefreshedIdTokenFailure, RefreshedIdTokenOutcome, VerifyRefreshedIdToken,
};
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::scope::{self, QuickComparison, Scopes};
use crate::secret::Secret;
use crate::session::{SessionUpdate, StateData, TokenSet, UpdateNext, after_update};
pub use crate::session::{store_token_set, token_set};
use crate::time::UnixTime;
pub use crate::time::is_expired;
pub use crate::token_endpoint::refresh_token_hash;
use crate::token_endpoint::{
    ResponseError, TokenResponse, form_post, parse_token_response_expecting, revocation_request,
};
use serde_json::Value;
use std::sync::Arc;

/// What `get_access_token` is asked for: an audience and extra scopes, both optional.
///
/// ```
/// use auth0_server_protocol::access_token::AccessTokenRequest;
/// let req = AccessTokenRequest::audience("https://analytics.example.com").scope("write:analytics");
/// assert_eq!(req.audience.as_deref(), Some("https://analytics.example.com"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessTokenRequest {
    /// The API; `None` means the configured default audience.
    pub audience: Option<String>,
    /// Scopes wanted on top of the audience's configured default scopes.
    pub scope: Option<String>,
}

impl AccessTokenRequest {
    /// A request for an audience.
    pub fn audience(audience: impl Into<String>) -> Self {
        AccessTokenRequest {
            audience: Some(audience.into()),
            scope: None,
        }
    }
    /// Adds scopes to the request.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

/// An access token as returned to the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    /// The token.
    pub access_token: Secret,
    /// Its audience key.
    pub audience: String,
    /// Its scope.
    pub scope: Option<String>,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
    /// How to present it: `Bearer`, or `DPoP` (bound to the client's DPoP key: send it with
    /// the client's `dpop_headers`, never as a bearer token).
    pub token_type: crate::token_response::TokenType,
}

impl AccessToken {
    fn from_set(set: &TokenSet) -> Self {
        AccessToken {
            access_token: set.access_token.clone(),
            audience: set.audience.clone(),
            scope: set.scope.clone(),
            expires_at: set.expires_at,
            token_type: set.token_type,
        }
    }
}

/// Why no access token could be returned.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessTokenError {
    /// There is no session (the user is not logged in).
    #[error("there is no session: the user is not logged in")]
    MissingSession,
    /// No usable token is stored and the session has no refresh token (request `offline_access`).
    #[error(
        "no valid access token is stored and the session has no refresh token; request the `offline_access` scope at login"
    )]
    MissingRefreshToken,
    /// The refresh was refused or the answer was unusable.
    #[error("failed to refresh the access token: {0}")]
    FailedToRefresh(ResponseError),
    /// The refresh needs multi-factor authentication first.
    #[error("multi-factor authentication is required{}", .error_description.as_deref().map(|d| format!(": {}", crate::display::SafeText(d))).unwrap_or_default())]
    MfaRequired {
        /// The MFA token to continue with.
        mfa_token: Secret,
        /// The `mfa_requirements` sent by Auth0.
        mfa_requirements: Option<Value>,
        /// The server's description.
        error_description: Option<String>,
    },
    /// Auth0 answered with a token for another audience: the requested audience is not in the
    /// application's refresh token policy.
    #[error(
        "Auth0 returned an access token for {received:?} instead of `{requested}`: add `{requested}` to the application's refresh token policy (Multi-Resource Refresh Token) in the Auth0 dashboard"
    )]
    AudienceMismatch {
        /// The audience asked for.
        requested: String,
        /// The `aud` of the token received.
        received: Vec<String>,
    },
    /// A refreshed ID token belongs to another user or issuer than the session's.
    #[error(
        "the refreshed ID token does not belong to the session's user; the session was not updated"
    )]
    SessionMismatch,
    /// The ID token of the refresh answer failed verification (signature, issuer, audience,
    /// `azp`, times); the session was not updated.
    #[error("the refreshed ID token is invalid; the session was not updated: {0}")]
    InvalidIdToken(crate::jose::JoseError),
    /// The provider's signing keys could not be fetched to verify a refreshed ID token.
    #[error("the provider's signing keys could not be fetched: {0}")]
    Jwks(ResponseError),
    /// Discovery of the tenant's endpoints failed.
    #[error("OpenID discovery failed: {0}")]
    Discovery(ResponseError),
    /// A token was obtained but the session could not be saved. When the refresh token was
    /// rotated, the new one is kept in this process (`refresh_token_kept`) and the next call
    /// on the session spends it and saves again, so the user stays logged in.
    #[error("{}", not_saved_message(*.refresh_token_kept, .reason))]
    SessionNotSaved {
        /// Whether the refresh token was rotated and the new one is kept in the process.
        refresh_token_kept: bool,
        /// What the store reported (never session contents or tokens).
        reason: String,
    },
    /// The driver broke the protocol.
    #[error(transparent)]
    UnexpectedInput(#[from] UnexpectedInput),
}

impl AccessTokenError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            AccessTokenError::MissingSession => ErrorCode::MissingSession,
            AccessTokenError::MissingRefreshToken => ErrorCode::MissingRefreshToken,
            AccessTokenError::FailedToRefresh(ResponseError::TokenTypeMismatch { .. }) => {
                ErrorCode::TokenTypeMismatch
            }
            AccessTokenError::FailedToRefresh(_) => ErrorCode::FailedToRefreshToken,
            AccessTokenError::MfaRequired { .. } => ErrorCode::MfaRequired,
            AccessTokenError::AudienceMismatch { .. } => ErrorCode::AudienceMismatch,
            AccessTokenError::SessionMismatch => ErrorCode::SessionMismatch,
            AccessTokenError::InvalidIdToken(_) => ErrorCode::InvalidIdToken,
            AccessTokenError::Jwks(_) => ErrorCode::JwksFetchFailed,
            AccessTokenError::SessionNotSaved { .. } => ErrorCode::SessionNotSaved,
            AccessTokenError::Discovery(_) => ErrorCode::DiscoveryFailed,
            AccessTokenError::UnexpectedInput(_) => ErrorCode::UnexpectedInput,
        }
    }

    /// The OAuth error the server sent, if any.
    pub fn oauth_error(&self) -> Option<&crate::token_endpoint::OAuthError> {
        match self {
            AccessTokenError::FailedToRefresh(e) | AccessTokenError::Discovery(e) => e.oauth(),
            _ => None,
        }
    }

    /// Turns a token endpoint failure into `mfa_required` or `failed_to_refresh_token`.
    fn from_response(e: ResponseError) -> Self {
        match e {
            ResponseError::OAuth(o) if o.error == "mfa_required" => AccessTokenError::MfaRequired {
                mfa_token: o.mfa_token.unwrap_or_default(),
                mfa_requirements: o.mfa_requirements,
                error_description: o.error_description,
            },
            other => AccessTokenError::FailedToRefresh(other),
        }
    }
}

/// The message of a `session_not_saved` error.
pub(crate) fn not_saved_message(refresh_token_kept: bool, reason: &str) -> String {
    let kept = if refresh_token_kept {
        "; the rotated refresh token is kept in this process and the next call saves it"
    } else {
        ""
    };
    format!("the token was obtained but the session could not be saved ({reason}){kept}")
}

/// The requested scope for an audience key: the configured default scopes for that audience
/// followed by the call's scopes, de-duplicated (first occurrence kept); `None` if empty.
pub fn requested_scope(
    config: &Config,
    audience_key: &str,
    call_scope: Option<&str>,
) -> Option<String> {
    scope::merge_scopes(
        config
            .authorization_params()
            .scope
            .for_audience(audience_key),
        call_scope,
    )
}

/// Picks the stored token set for an audience key and requested scope (step 3): one whose
/// scope set equals the requested set, else the superset with the fewest scopes (the first of
/// equals), else none.
///
/// The usual cache hit is settled without parsing either string: the SDK stores the scope a
/// set was requested with, so the audience's first set is most often spelled exactly as
/// `requested`, and a string equal to it names the same set (the answer
/// [`select_by_scopes`] gives). Any other case is [`select_by_scopes`].
pub fn select_token_set<'a>(
    sets: &'a [TokenSet],
    audience_key: &str,
    requested: Option<&str>,
) -> Option<&'a TokenSet> {
    let first = sets.iter().position(|s| s.audience == audience_key)?;
    let rest = sets.get(first..).unwrap_or_default();
    match rest.first() {
        Some(set) if set.matching_scope() == requested.unwrap_or("") => Some(set),
        _ => select_by_scopes(rest, audience_key, &Scopes::of(requested)),
    }
}

/// [`select_token_set`] with the requested scopes already parsed.
pub fn select_by_scopes<'a>(
    sets: &'a [TokenSet],
    audience_key: &str,
    requested: &Scopes<'_>,
) -> Option<&'a TokenSet> {
    let mut best: Option<(&TokenSet, usize)> = None;
    let mut stored = Scopes::default();
    for set in sets.iter().filter(|s| s.audience == audience_key) {
        match requested.compare_quickly(set.matching_scope()) {
            QuickComparison::Same => return Some(set),
            QuickComparison::Lacks => continue,
            QuickComparison::Undecided => {}
        }
        stored.reset(set.matching_scope());
        if !stored.is_superset_of(requested) {
            continue;
        }
        // Both lists are de-duplicated: a superset of the same size is the same set.
        if stored.len() == requested.len() {
            return Some(set);
        }
        if best.is_none_or(|(_, m)| stored.len() < m) {
            best = Some((set, stored.len()));
        }
    }
    best.map(|(s, _)| s)
}

/// The refresh request (step 6): `grant_type=refresh_token`, `refresh_token`, `audience`
/// unless the key is `default`, `scope` when some, and client authentication.
pub fn refresh_request(
    config: &Config,
    metadata: &Metadata,
    refresh_token: &Secret,
    audience_key: &str,
    scope: Option<&str>,
) -> HttpRequest {
    let mut params: Vec<(&str, &str)> = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.expose()),
    ];
    if audience_key != AUDIENCE_DEFAULT_KEY {
        params.push(("audience", audience_key));
    }
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    let lane = refresh_token_hash(refresh_token);
    HttpRequest {
        coalesce: Some(Coalesce {
            key: format!("refresh {lane} {audience_key} {}", scope.unwrap_or("")),
            remember: true,
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

/// The audiences of a JWT access token, or `None` when the token is opaque or has no `aud`.
pub fn token_audiences(access_token: &str) -> Option<Vec<String>> {
    match crate::jose::jws::unverified_claim(access_token, "aud")? {
        Value::String(s) => Some(vec![s]),
        Value::Array(a) => Some(
            a.into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

/// Updates the session after a successful refresh (step 7) and returns the token to hand out.
///
/// The token set with the same audience key and scope set is replaced, else one is appended;
/// a rotated refresh token replaces the old one; a returned ID token replaces the old one and
/// refreshes the user claims. Nothing else changes. When the response's ID token names another
/// `sub` or `iss` than the session, the session is left untouched and `SessionMismatch` is
/// returned. When the access token is for another audience than requested (step 8), the
/// rotated refresh token and ID token are still kept — losing a rotated refresh token would
/// lock the user out — but the access token is not stored, and `AudienceMismatch` is returned.
pub fn apply_refresh(
    session: &mut StateData,
    audience_key: &str,
    requested_scope: Option<&str>,
    response: &TokenResponse,
    now: UnixTime,
) -> Result<AccessToken, AccessTokenError> {
    let new_user = match &response.id_token {
        Some(id_token) => {
            let claims =
                unverified_claims(id_token.expose()).ok_or(AccessTokenError::SessionMismatch)?;
            let same = |claim: &str, current: Option<&str>| {
                current.is_none_or(|c| claims.get(claim).and_then(Value::as_str) == Some(c))
            };
            if !same("sub", session.sub()) || !same("iss", session.iss()) {
                return Err(AccessTokenError::SessionMismatch);
            }
            Some(claims)
        }
        None => None,
    };
    if let Some(rt) = &response.refresh_token {
        session.refresh_token = Some(rt.clone());
    }
    if let Some(id_token) = &response.id_token {
        session.id_token = Some(id_token.clone());
        session.user = new_user;
    }
    if audience_key != AUDIENCE_DEFAULT_KEY {
        if let Some(auds) = token_audiences(response.access_token.expose()) {
            if !auds.iter().any(|a| a == audience_key) {
                return Err(AccessTokenError::AudienceMismatch {
                    requested: audience_key.to_owned(),
                    received: auds,
                });
            }
        }
    }
    let set = token_set(
        audience_key,
        requested_scope,
        response,
        response.expires_at(now).as_secs(),
    );
    let token = AccessToken::from_set(&set);
    store_token_set(&mut session.token_sets, set);
    Ok(token)
}

impl<'t> From<&'t AccessToken> for crate::dpop::PresentedToken<'t> {
    fn from(token: &'t AccessToken) -> Self {
        crate::dpop::PresentedToken {
            access_token: &token.access_token,
            token_type: token.token_type,
        }
    }
}

/// The `get_access_token` operation. Create it with [`crate::Core::get_access_token`].
#[derive(Debug)]
pub struct GetAccessToken {
    config: Arc<Config>,
    request: AccessTokenRequest,
    state: State,
    /// Whether the operation started over once because its answer was stale on arrival
    /// ([`stale_on_arrival`]).
    restarted: bool,
    /// The requested scope, merged on first use ([`requested_scope`]).
    requested_scope: std::sync::OnceLock<Option<String>>,
}

/// Whether a refreshed access token is stale on arrival: it was still valid when its answer
/// was received (`received_at`) but had expired by the time the answer was applied and saved
/// (`now`). That happens when a request is continued long after its answer arrived — a leader
/// dropped after sending, its flight continued by a caller an hour later. The session is saved
/// with the answer all the same (its rotated refresh token must not be lost), and the
/// operation starts over once, from the saved session, rather than hand out a token the API
/// would refuse.
///
/// A token the server issued already expired (`expires_in: 0`) is not stale on arrival: the
/// delay did not cause it, and asking again would only spend another refresh on the same
/// answer. The caller gets it as issued.
pub fn stale_on_arrival(token: &AccessToken, received_at: UnixTime, now: UnixTime) -> bool {
    let expires_at = UnixTime::from_secs(token.expires_at);
    received_at < expires_at && expires_at <= now
}

#[derive(Debug)]
enum State {
    Start,
    LoadingSession,
    Metadata {
        session: Box<StateData>,
        meta: MetadataStep,
    },
    Refreshing {
        /// The session as read from the store.
        base: Box<StateData>,
        /// The session as this operation changes it.
        session: Box<StateData>,
        metadata: Arc<Metadata>,
        key: String,
        /// The refresh tokens sent so far (the session's, then each rotation followed).
        spent: Vec<Secret>,
    },
    /// The refresh answer carries an ID token, being verified before anything is applied.
    VerifyingIdToken {
        base: Box<StateData>,
        session: Box<StateData>,
        spent: Vec<Secret>,
        metadata: Arc<Metadata>,
        response: Box<TokenResponse>,
        /// When the response was received: expiry times count from it, not from the end of
        /// the verification.
        received_at: UnixTime,
        verify: VerifyRefreshedIdToken,
    },
    Saving {
        result: Result<AccessToken, AccessTokenError>,
        update: Box<SessionUpdate>,
        metadata: Arc<Metadata>,
        /// When the answer being saved was received ([`stale_on_arrival`]).
        received_at: UnixTime,
    },
    /// The session ended while the refresh was in flight: revoking the refresh token it
    /// obtained (best effort), then failing with `missing_session`.
    RevokingOrphan,
    KeepingRotation {
        error: AccessTokenError,
    },
    Finished,
}

impl GetAccessToken {
    pub(crate) fn new(config: Arc<Config>, request: AccessTokenRequest) -> Self {
        GetAccessToken {
            config,
            request,
            state: State::Start,
            restarted: false,
            requested_scope: std::sync::OnceLock::new(),
        }
    }

    fn audience_key(&self) -> &str {
        self.config.audience_key(self.request.audience.as_deref())
    }

    /// The requested scope ([`requested_scope`]), merged once per operation.
    fn scope(&self) -> Option<&str> {
        self.requested_scope
            .get_or_init(|| {
                requested_scope(
                    &self.config,
                    self.audience_key(),
                    self.request.scope.as_deref(),
                )
            })
            .as_deref()
    }

    fn after_metadata(
        &mut self,
        session: Box<StateData>,
        metadata: Arc<Metadata>,
    ) -> Step<AccessToken, AccessTokenError> {
        let Some(refresh_token) = session.refresh_token.as_ref() else {
            return self.finish(Err(AccessTokenError::MissingRefreshToken));
        };
        let req = refresh_request(
            &self.config,
            &metadata,
            refresh_token,
            self.audience_key(),
            self.scope(),
        );
        let key = req
            .coalesce
            .as_ref()
            .map(|c| c.key.clone())
            .unwrap_or_default();
        let spent = vec![refresh_token.clone()];
        self.state = State::Refreshing {
            base: as_read(&session),
            session,
            metadata,
            key,
            spent,
        };
        Step::Effect(Effect::Http(Box::new(req)))
    }

    /// The refresh token was rotated by an earlier request while this one waited: spend the
    /// new one. The coalescing key stays the one of the session's token, so later requests
    /// carrying the same (old) session still find the remembered answer.
    fn follow_rotation(
        &mut self,
        base: Box<StateData>,
        mut session: Box<StateData>,
        metadata: Arc<Metadata>,
        key: String,
        mut spent: Vec<Secret>,
        rotated_to: Secret,
    ) -> Step<AccessToken, AccessTokenError> {
        if spent.len() > usize::from(MAX_ROTATIONS_FOLLOWED) {
            return self.finish(Err(UnexpectedInput {
                expected: "Http (the refresh token kept rotating)",
            }
            .into()));
        }
        let mut req = refresh_request(
            &self.config,
            &metadata,
            &rotated_to,
            self.audience_key(),
            self.scope(),
        );
        if let Some(c) = req.coalesce.as_mut() {
            c.key = key.clone();
        }
        // The old token is spent: even if this answer does not rotate again, keep the new one.
        session.refresh_token = Some(rotated_to.clone());
        spent.push(rotated_to);
        self.state = State::Refreshing {
            base,
            session,
            metadata,
            key,
            spent,
        };
        Step::Effect(Effect::Http(Box::new(req)))
    }

    fn finish(
        &mut self,
        result: Result<AccessToken, AccessTokenError>,
    ) -> Step<AccessToken, AccessTokenError> {
        self.state = State::Finished;
        Step::Done(result)
    }
}

impl Operation for GetAccessToken {
    type Output = AccessToken;
    type Error = AccessTokenError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<AccessToken, AccessTokenError> {
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (State::Start, Input::Start) => {
                self.state = State::LoadingSession;
                Step::Effect(Effect::LoadSession)
            }
            (State::LoadingSession, Input::Session(session)) => {
                let Some(session) = session else {
                    return self.finish(Err(AccessTokenError::MissingSession));
                };
                let key = self.audience_key();
                let defaults = self.config.authorization_params().scope.for_audience(key);
                let chosen = match self.request.scope.as_deref() {
                    // The defaults alone: one string, compared as it is spelled first.
                    None => select_token_set(&session.token_sets, key, defaults),
                    Some(call) => select_by_scopes(
                        &session.token_sets,
                        key,
                        &Scopes::of(defaults.into_iter().chain([call])),
                    ),
                };
                if let Some(set) = chosen {
                    if !is_expired(
                        UnixTime::from_secs(set.expires_at),
                        now,
                        self.config.leeway(),
                    ) {
                        return self.finish(Ok(AccessToken::from_set(set)));
                    }
                }
                if session.refresh_token.is_none() {
                    return self.finish(Err(AccessTokenError::MissingRefreshToken));
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
                    MetadataOutcome::Ready(m) => self.after_metadata(session, m),
                    MetadataOutcome::Effect(e) => {
                        self.state = State::Metadata { session, meta };
                        Step::Effect(e)
                    }
                    MetadataOutcome::Failed(e) => self.finish(Err(AccessTokenError::Discovery(e))),
                    MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
                }
            }
            (
                State::Refreshing {
                    base,
                    session,
                    metadata,
                    key,
                    spent,
                },
                Input::Rotated(rotated_to),
            ) => self.follow_rotation(base, session, metadata, key, spent, rotated_to),
            (
                State::Refreshing {
                    base,
                    session,
                    metadata,
                    spent,
                    ..
                },
                Input::Http(response),
            ) => {
                let mut parsed =
                    match parse_token_response_expecting(&response, Some(self.config.token_type()))
                    {
                        Ok(r) => r,
                        Err(e) => {
                            // A server that echoes what it was sent must not put it in a log.
                            let sent = [
                                session.refresh_token.as_ref().map_or("", Secret::expose),
                                self.config.client_secret().map_or("", Secret::expose),
                            ];
                            return self
                                .finish(Err(AccessTokenError::from_response(e.redact(&sent))));
                        }
                    };
                // An answer shared under this request's key can carry a refresh token this
                // request has already spent (it followed a rotation past it): that is no
                // rotation, and the session must never go back to it.
                if parsed
                    .refresh_token
                    .as_ref()
                    .is_some_and(|rt| spent.contains(rt))
                {
                    parsed.refresh_token = None;
                }
                // An ID token in the answer is verified before anything is applied or saved.
                if let Some(id_token) = &parsed.id_token {
                    let sub = session.sub().map(str::to_owned);
                    let verify_metadata = metadata.clone();
                    return match VerifyRefreshedIdToken::start(id_token.expose(), metadata, sub) {
                        Ok((verify, effect)) => {
                            self.state = State::VerifyingIdToken {
                                base,
                                session,
                                spent,
                                metadata: verify_metadata,
                                response: Box::new(parsed),
                                received_at: now,
                                verify,
                            };
                            Step::Effect(effect)
                        }
                        Err(e) => self.finish(Err(AccessTokenError::InvalidIdToken(e))),
                    };
                }
                self.apply_and_save(&base, session, &spent, metadata, &parsed, now)
            }
            (
                State::VerifyingIdToken {
                    base,
                    session,
                    spent,
                    metadata,
                    response,
                    received_at,
                    mut verify,
                },
                input,
            ) => match verify.handle(&self.config, input, now) {
                RefreshedIdTokenOutcome::Verified => {
                    self.apply_and_save(&base, session, &spent, metadata, &response, received_at)
                }
                RefreshedIdTokenOutcome::Effect(e) => {
                    self.state = State::VerifyingIdToken {
                        base,
                        session,
                        spent,
                        metadata,
                        response,
                        received_at,
                        verify,
                    };
                    Step::Effect(e)
                }
                RefreshedIdTokenOutcome::Failed(f) => self.finish(Err(match f {
                    RefreshedIdTokenFailure::Token(JoseError::SubjectMismatch) => {
                        AccessTokenError::SessionMismatch
                    }
                    RefreshedIdTokenFailure::Token(e) => AccessTokenError::InvalidIdToken(e),
                    RefreshedIdTokenFailure::Keys(e) => AccessTokenError::Jwks(e),
                    RefreshedIdTokenFailure::Unexpected(e) => e.into(),
                })),
            },
            (
                State::Saving {
                    result,
                    update,
                    metadata,
                    received_at,
                },
                Input::Updated(outcome),
            ) => {
                match after_update(&update, outcome) {
                    UpdateNext::Saved => match &result {
                        Ok(token)
                            if !self.restarted && stale_on_arrival(token, received_at, now) =>
                        {
                            self.restarted = true;
                            self.state = State::LoadingSession;
                            Step::Effect(Effect::LoadSession)
                        }
                        _ => self.finish(result),
                    },
                    UpdateNext::Gone => {
                        // The user logged out meanwhile: the refresh token this refresh obtained
                        // belongs to no session; revoke it rather than leave it live.
                        let revoke = update
                            .rotation()
                            .and_then(|(rt, _)| revocation_request(&self.config, &metadata, rt));
                        match revoke {
                            Some(request) => {
                                self.state = State::RevokingOrphan;
                                Step::Effect(Effect::Http(Box::new(request)))
                            }
                            None => self.finish(Err(AccessTokenError::MissingSession)),
                        }
                    }
                    UpdateNext::Failed {
                        keep,
                        refresh_token_kept,
                        reason,
                    } => {
                        let error = AccessTokenError::SessionNotSaved {
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
            (State::RevokingOrphan, Input::Http(_)) => {
                self.finish(Err(AccessTokenError::MissingSession))
            }
            (state, _) => self.finish(Err(UnexpectedInput {
                expected: state.expects(),
            }
            .into())),
        }
    }
}

/// The session as an operation read it, for [`SessionUpdate::between`]: its tokens, token
/// sets and identity. `between` never reads the user claims or unknown keys, so they are not
/// copied (they can be most of a session).
fn as_read(session: &StateData) -> Box<StateData> {
    Box::new(StateData {
        user: None,
        id_token: session.id_token.clone(),
        refresh_token: session.refresh_token.clone(),
        token_sets: session.token_sets.clone(),
        connection_token_sets: session.connection_token_sets.clone(),
        internal: session.internal.clone(),
        extra: serde_json::Map::new(),
    })
}

impl GetAccessToken {
    /// Applies a (verified) refresh answer to the session and asks the store to update it.
    fn apply_and_save(
        &mut self,
        base: &StateData,
        mut session: Box<StateData>,
        spent: &[Secret],
        metadata: Arc<Metadata>,
        parsed: &TokenResponse,
        now: UnixTime,
    ) -> Step<AccessToken, AccessTokenError> {
        let result = apply_refresh(&mut session, self.audience_key(), self.scope(), parsed, now);
        match result {
            Err(AccessTokenError::SessionMismatch) => {
                self.finish(Err(AccessTokenError::SessionMismatch))
            }
            result => {
                let update = Box::new(SessionUpdate::between(base, &session, spent));
                self.state = State::Saving {
                    result,
                    update: Box::new(update.rotation_only()),
                    metadata,
                    received_at: now,
                };
                Step::Effect(Effect::UpdateSession(update))
            }
        }
    }
}

impl State {
    fn expects(&self) -> &'static str {
        match self {
            State::Start => "Start",
            State::LoadingSession => "LoadSession",
            State::Metadata { .. } => "metadata",
            State::Refreshing { .. } => "Http (refresh)",
            State::VerifyingIdToken { .. } => "refreshed ID token verification",
            State::Saving { .. } => "Updated",
            State::KeepingRotation { .. } => "Done (KeepRotation)",
            State::RevokingOrphan => "Http (revocation)",
            State::Finished => "nothing (the operation has finished)",
        }
    }
}
