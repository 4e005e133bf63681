//! Logging out: `logout` ends the local session and returns the URL that ends
//! the Auth0 session; `handle_backchannel_logout` verifies a logout token posted by Auth0 and
//! asks the state store to delete the matching sessions.

use crate::config::Config;
use crate::discovery::Metadata;
use crate::effect::JtiRecord;
use crate::effect::{Effect, Input, LogoutTokenClaims, Operation, Step, UnexpectedInput};
use crate::error_code::ErrorCode;
use crate::jose::JoseError;
use crate::jose::claims::{LogoutTokenExpectations, logout_token_id, validate_logout_token};
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::secret::Secret;
use crate::signed_token::{
    LOGOUT_TOKEN_JWKS_REFETCH_COOLDOWN, VerifyFailure, VerifyOutcome, VerifySignedToken,
};
use crate::time::UnixTime;
use crate::token_endpoint::{ResponseError, revocation_request};
use std::sync::Arc;

/// Which logout endpoint the browser is sent to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogoutEndpoint {
    /// The provider's `end_session_endpoint` (OpenID Connect RP-Initiated Logout) whenever
    /// discovery advertises one; Auth0's `/v2/logout` when it does not (or when discovery
    /// cannot be fetched: the local session still ends).
    #[default]
    Auto,
    /// Always the `end_session_endpoint`; an error when discovery advertises none.
    EndSession,
    /// Always Auth0's `{origin}/v2/logout`.
    Auth0V2,
}

/// Options of `logout`.
///
/// ```
/// use auth0_server_protocol::logout::{LogoutEndpoint, LogoutOptions};
/// let options = LogoutOptions::return_to("https://app.example.com/").revoke_refresh_token(true);
/// assert!(options.revoke_refresh_token);
/// assert_eq!(options.endpoint, LogoutEndpoint::Auto);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogoutOptions {
    /// Where the provider sends the browser after logout (must be allowed in the
    /// application's settings): `returnTo` for `/v2/logout`, `post_logout_redirect_uri` for
    /// the `end_session_endpoint`.
    pub return_to: Option<String>,
    /// Which endpoint to use (default [`LogoutEndpoint::Auto`]).
    pub endpoint: LogoutEndpoint,
    /// Revoke the refresh token before ending the session (best effort: a failure never keeps
    /// the session).
    pub revoke_refresh_token: bool,
}

impl LogoutOptions {
    /// Logout returning to a URL.
    pub fn return_to(url: impl Into<String>) -> Self {
        LogoutOptions {
            return_to: Some(url.into()),
            ..Default::default()
        }
    }
    /// Forces OIDC RP-Initiated Logout (`true`) or Auth0's `/v2/logout` (`false`).
    pub fn oidc_logout(mut self, yes: bool) -> Self {
        self.endpoint = if yes {
            LogoutEndpoint::EndSession
        } else {
            LogoutEndpoint::Auth0V2
        };
        self
    }
    /// Chooses the logout endpoint.
    pub fn endpoint(mut self, endpoint: LogoutEndpoint) -> Self {
        self.endpoint = endpoint;
        self
    }
    /// Chooses refresh-token revocation.
    pub fn revoke_refresh_token(mut self, yes: bool) -> Self {
        self.revoke_refresh_token = yes;
        self
    }
}

/// Why `logout` failed. The local session is deleted whenever the store allows it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LogoutError {
    /// Discovery failed (only needed for OIDC logout).
    #[error("OpenID discovery failed: {0}")]
    Discovery(ResponseError),
    /// The tenant has no `end_session_endpoint` but OIDC logout was asked for.
    #[error("the tenant does not advertise an end_session_endpoint")]
    EndSessionNotSupported,
    /// `return_to` is not an absolute URL.
    #[error("return_to is not an absolute URL")]
    InvalidReturnTo,
    /// The driver broke the protocol.
    #[error(transparent)]
    UnexpectedInput(#[from] UnexpectedInput),
}

impl LogoutError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            LogoutError::Discovery(_) => ErrorCode::DiscoveryFailed,
            LogoutError::EndSessionNotSupported => ErrorCode::EndSessionNotSupported,
            LogoutError::InvalidReturnTo => ErrorCode::InvalidReturnTo,
            LogoutError::UnexpectedInput(_) => ErrorCode::UnexpectedInput,
        }
    }
}

/// The `/v2/logout` URL: `{origin}/v2/logout?client_id=…&returnTo=…`.
pub fn v2_logout_url(config: &Config, return_to: Option<&str>) -> url::Url {
    let mut url = url::Url::parse(&format!("{}/v2/logout", config.origin()))
        .unwrap_or_else(|_| unreachable_url());
    url.query_pairs_mut()
        .append_pair("client_id", config.client_id());
    if let Some(r) = return_to {
        url.query_pairs_mut().append_pair("returnTo", r);
    }
    url
}

/// The OIDC RP-initiated logout URL.
pub fn end_session_url(
    config: &Config,
    endpoint: &str,
    return_to: Option<&str>,
    id_token: Option<&Secret>,
) -> Option<url::Url> {
    let mut url = url::Url::parse(endpoint).ok()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("client_id", config.client_id());
        if let Some(r) = return_to {
            q.append_pair("post_logout_redirect_uri", r);
        }
        if let Some(t) = id_token {
            q.append_pair("id_token_hint", t.expose());
        }
    }
    Some(url)
}

// The configured origin is always a valid URL; keep a total fallback rather than panic.
fn unreachable_url() -> url::Url {
    url::Url::parse("https://invalid.invalid/").unwrap_or_else(|_| unreachable_url())
}

/// The `logout` operation: returns the URL to redirect the browser to.
#[derive(Debug)]
pub struct Logout {
    config: Arc<Config>,
    options: LogoutOptions,
    state: State,
}

#[derive(Debug)]
enum State {
    Start,
    LoadingSession,
    Metadata(Option<Secret>, Option<Secret>, MetadataStep),
    Revoking(Option<Secret>, Arc<Metadata>),
    Deleting(url::Url),
    Finished,
}

impl Logout {
    pub(crate) fn new(config: Arc<Config>, options: LogoutOptions) -> Self {
        Logout {
            config,
            options,
            state: State::Start,
        }
    }

    fn finish(&mut self, r: Result<url::Url, LogoutError>) -> Step<url::Url, LogoutError> {
        self.state = State::Finished;
        Step::Done(r)
    }

    fn delete(
        &mut self,
        id_token: Option<Secret>,
        metadata: Option<&Metadata>,
    ) -> Step<url::Url, LogoutError> {
        let return_to = self.options.return_to.as_deref();
        let end_session = metadata
            .and_then(|m| m.end_session_endpoint.as_deref())
            .and_then(|e| end_session_url(&self.config, e, return_to, id_token.as_ref()));
        let url = match (self.options.endpoint, end_session) {
            (LogoutEndpoint::Auth0V2, _) => v2_logout_url(&self.config, return_to),
            (_, Some(u)) => u,
            (LogoutEndpoint::EndSession, None) => {
                return self.finish(Err(LogoutError::EndSessionNotSupported));
            }
            (_, None) => v2_logout_url(&self.config, return_to),
        };
        self.state = State::Deleting(url);
        Step::Effect(Effect::DeleteSession)
    }

    fn revoke_or_delete(
        &mut self,
        id_token: Option<Secret>,
        refresh: Option<Secret>,
        metadata: Arc<Metadata>,
    ) -> Step<url::Url, LogoutError> {
        let revoke = refresh
            .filter(|_| self.options.revoke_refresh_token)
            .and_then(|rt| revocation_request(&self.config, &metadata, &rt));
        if let Some(request) = revoke {
            self.state = State::Revoking(id_token, metadata);
            return Step::Effect(Effect::Http(Box::new(request)));
        }
        self.delete(id_token, Some(&metadata))
    }
}

impl Operation for Logout {
    type Output = url::Url;
    type Error = LogoutError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<url::Url, LogoutError> {
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (State::Start, Input::Start) => {
                if let Some(r) = &self.options.return_to {
                    if url::Url::parse(r).is_err() {
                        return self.finish(Err(LogoutError::InvalidReturnTo));
                    }
                }
                self.state = State::LoadingSession;
                Step::Effect(Effect::LoadSession)
            }
            (State::LoadingSession, Input::Session(session)) => {
                let (id_token, refresh) = session
                    .map(|s| (s.id_token.clone(), s.refresh_token.clone()))
                    .unwrap_or_default();
                let needs_metadata = self.options.endpoint != LogoutEndpoint::Auth0V2
                    || (self.options.revoke_refresh_token && refresh.is_some());
                if !needs_metadata {
                    return self.delete(id_token, None);
                }
                let (meta, effect) = MetadataStep::start();
                self.state = State::Metadata(id_token, refresh, meta);
                Step::Effect(effect)
            }
            (State::Metadata(id_token, refresh, mut meta), input) => {
                match meta.handle(&self.config, input, now) {
                    MetadataOutcome::Ready(m) => self.revoke_or_delete(id_token, refresh, m),
                    MetadataOutcome::Effect(e) => {
                        self.state = State::Metadata(id_token, refresh, meta);
                        Step::Effect(e)
                    }
                    // Discovery only serves revocation and OIDC logout: without it, still end the
                    // local session with /v2/logout unless OIDC logout was required.
                    MetadataOutcome::Failed(e)
                        if self.options.endpoint == LogoutEndpoint::EndSession =>
                    {
                        self.finish(Err(LogoutError::Discovery(e)))
                    }
                    MetadataOutcome::Failed(_) => self.delete(id_token, None),
                    MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
                }
            }
            // Revocation is best effort: whatever the answer, the session ends.
            (State::Revoking(id_token, metadata), Input::Http(_)) => {
                self.delete(id_token, Some(&metadata))
            }
            (State::Deleting(url), Input::Done) => self.finish(Ok(url)),
            (state, _) => {
                let expected = match state {
                    State::Start => "Start",
                    State::LoadingSession => "LoadSession",
                    State::Metadata(..) => "metadata",
                    State::Revoking(..) => "Http (revocation)",
                    State::Deleting(_) => "DeleteSession",
                    State::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}

/// Why a back-channel logout request was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BackchannelLogoutError {
    /// The logout token is invalid.
    #[error("the logout token is invalid: {0}")]
    InvalidLogoutToken(JoseError),
    /// A logout token with the same `jti` was already accepted within its lifetime.
    #[error("the logout token was already used (replayed jti)")]
    Replayed,
    /// The JWKS could not be fetched.
    #[error("the tenant's signing keys could not be fetched: {0}")]
    Jwks(ResponseError),
    /// Discovery failed.
    #[error("OpenID discovery failed: {0}")]
    Discovery(ResponseError),
    /// The discovered metadata lacks an endpoint verification needs (`jwks_uri`).
    #[error("the tenant's discovery metadata is unusable: {0}")]
    InvalidMetadata(&'static str),
    /// The driver broke the protocol.
    #[error(transparent)]
    UnexpectedInput(#[from] UnexpectedInput),
    /// Multiple custom domains: the logout token's issuer (read before verification) is not
    /// the resolved domain's; nothing was fetched and no session ended.
    #[error("the logout token's issuer is not on the resolved custom domain")]
    IssuerNotOnDomain,
}

impl BackchannelLogoutError {
    /// The stable, machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            BackchannelLogoutError::InvalidLogoutToken(_) => ErrorCode::InvalidLogoutToken,
            BackchannelLogoutError::Replayed => ErrorCode::LogoutTokenReplayed,
            BackchannelLogoutError::Jwks(_) => ErrorCode::JwksFetchFailed,
            BackchannelLogoutError::Discovery(_) => ErrorCode::DiscoveryFailed,
            BackchannelLogoutError::InvalidMetadata(_) => ErrorCode::InvalidMetadata,
            BackchannelLogoutError::UnexpectedInput(_) => ErrorCode::UnexpectedInput,
            BackchannelLogoutError::IssuerNotOnDomain => ErrorCode::DomainMismatch,
        }
    }

    /// The precise reason the token was refused.
    pub fn token_error(&self) -> Option<&JoseError> {
        match self {
            BackchannelLogoutError::InvalidLogoutToken(e) => Some(e),
            _ => None,
        }
    }
}

impl From<VerifyFailure> for BackchannelLogoutError {
    fn from(f: VerifyFailure) -> Self {
        match f {
            VerifyFailure::Token(e) => BackchannelLogoutError::InvalidLogoutToken(e),
            VerifyFailure::Discovery(e) => BackchannelLogoutError::Discovery(e),
            VerifyFailure::Metadata(reason) => BackchannelLogoutError::InvalidMetadata(reason),
            VerifyFailure::Jwks(e) => BackchannelLogoutError::Jwks(e),
            VerifyFailure::Unexpected(e) => BackchannelLogoutError::UnexpectedInput(e),
        }
    }
}

/// The `handle_backchannel_logout` operation: returns the claims whose sessions were deleted.
#[derive(Debug)]
pub struct HandleBackchannelLogout {
    config: Arc<Config>,
    token: Secret,
    state: BclState,
    /// The custom domain whose issuer the token must name (multiple custom domains).
    domain: Option<crate::mcd::Domain>,
}

#[derive(Debug)]
enum BclState {
    Start,
    Verifying(VerifySignedToken),
    Recording(LogoutTokenClaims),
    Deleting(LogoutTokenClaims),
    Finished,
}

impl HandleBackchannelLogout {
    pub(crate) fn new(config: Arc<Config>, logout_token: &str) -> Self {
        HandleBackchannelLogout {
            config,
            token: Secret::new(logout_token),
            state: BclState::Start,
            domain: None,
        }
    }

    /// Bound to a custom domain: a token whose (unverified) issuer is not on it is refused
    /// before anything is fetched ([`crate::mcd::logout_token_on_domain`]).
    pub(crate) fn on_domain(mut self, domain: Option<crate::mcd::Domain>) -> Self {
        self.domain = domain;
        self
    }

    fn finish(
        &mut self,
        r: Result<LogoutTokenClaims, BackchannelLogoutError>,
    ) -> Step<LogoutTokenClaims, BackchannelLogoutError> {
        self.state = BclState::Finished;
        Step::Done(r)
    }
}

impl Operation for HandleBackchannelLogout {
    type Output = LogoutTokenClaims;
    type Error = BackchannelLogoutError;

    fn step(
        &mut self,
        input: Input,
        now: UnixTime,
    ) -> Step<LogoutTokenClaims, BackchannelLogoutError> {
        match (
            std::mem::replace(&mut self.state, BclState::Finished),
            input,
        ) {
            (BclState::Start, Input::Start)
                if self.domain.as_ref().is_some_and(|d| {
                    !crate::mcd::logout_token_on_domain(self.token.expose(), d)
                }) =>
            {
                self.finish(Err(BackchannelLogoutError::IssuerNotOnDomain))
            }
            (BclState::Start, Input::Start) => {
                match VerifySignedToken::start(
                    self.token.expose(),
                    LOGOUT_TOKEN_JWKS_REFETCH_COOLDOWN,
                ) {
                    Ok((verify, effect)) => {
                        self.state = BclState::Verifying(verify);
                        Step::Effect(effect)
                    }
                    Err(e) => self.finish(Err(BackchannelLogoutError::InvalidLogoutToken(e))),
                }
            }
            (BclState::Verifying(mut verify), input) => {
                match verify.handle(&self.config, input, now) {
                    VerifyOutcome::Verified(claims, metadata) => {
                        let expectations = LogoutTokenExpectations {
                            issuer: &metadata.issuer,
                            client_id: self.config.client_id(),
                            now,
                            clock_tolerance: self.config.clock_tolerance(),
                        };
                        let valid = validate_logout_token(&claims, &expectations).and_then(|c| {
                            let id = logout_token_id(
                                &claims,
                                &metadata.issuer,
                                self.config.clock_tolerance(),
                            )?;
                            Ok((c, id))
                        });
                        match valid {
                            Ok((claims, id)) => {
                                self.state = BclState::Recording(claims);
                                Step::Effect(Effect::RecordLogoutTokenId {
                                    key: id.key,
                                    until: id.until,
                                })
                            }
                            Err(e) => {
                                self.finish(Err(BackchannelLogoutError::InvalidLogoutToken(e)))
                            }
                        }
                    }
                    VerifyOutcome::Effect(e) => {
                        self.state = BclState::Verifying(verify);
                        Step::Effect(e)
                    }
                    VerifyOutcome::Failed(f) => self.finish(Err(f.into())),
                }
            }
            (BclState::Recording(claims), Input::LogoutTokenId(JtiRecord::FirstSeen)) => {
                self.state = BclState::Deleting(claims.clone());
                Step::Effect(Effect::DeleteSessionsByLogoutToken(claims))
            }
            (BclState::Recording(_), Input::LogoutTokenId(JtiRecord::Replayed)) => {
                self.finish(Err(BackchannelLogoutError::Replayed))
            }
            (BclState::Deleting(claims), Input::Done) => self.finish(Ok(claims)),
            (state, _) => {
                let expected = match state {
                    BclState::Start => "Start",
                    BclState::Verifying(_) => "token verification",
                    BclState::Recording(_) => "RecordLogoutTokenId",
                    BclState::Deleting(_) => "DeleteSessionsByLogoutToken",
                    BclState::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}

/// Whether a back-channel logout token ends `session` (Back-Channel Logout 1.0 §2.5–2.6): the
/// session's issuer, when recorded, is the token's; with a `sid` only, the session's `sid`
/// equals it; with a `sub` only, the session's user is that subject; with **both**, only a
/// session matching both ends (a token naming one user's session id and another user is not
/// a licence to end either). A token with neither selects nothing.
///
/// State stores select the sessions to delete with this rule.
pub fn logout_token_selects(
    claims: &LogoutTokenClaims,
    session: &crate::session::StateData,
) -> bool {
    if session.iss().is_some_and(|iss| iss != claims.iss) {
        return false;
    }
    // A session recorded on a custom domain ends only by a token of that domain's issuer.
    if session.extra.contains_key(crate::mcd::SESSION_DOMAIN_KEY)
        && !crate::mcd::session_domain(session)
            .is_some_and(|d| crate::mcd::issuer_is_on_domain(&claims.iss, &d))
    {
        return false;
    }
    let sid_ok = |sid: &str| !sid.is_empty() && session.internal.sid == sid;
    let sub_ok = |sub: &str| session.sub() == Some(sub);
    match (claims.sid.as_deref(), claims.sub.as_deref()) {
        (Some(sid), Some(sub)) => sid_ok(sid) && sub_ok(sub),
        (Some(sid), None) => sid_ok(sid),
        (None, Some(sub)) => sub_ok(sub) && session.iss().is_some(),
        (None, None) => false,
    }
}
