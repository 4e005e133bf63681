//! CIBA, Client-Initiated Backchannel Authentication (OpenID CIBA Core 1.0, poll mode, as
//! Auth0 runs it): log a user in on another device. The application names the user and a
//! short `binding_message`; Auth0 asks the user (a push notification to Guardian) to approve;
//! the application polls the token endpoint until the user approves, denies, or the request
//! expires.
//!
//! One state machine serves four operations:
//!
//! * [`LoginBackchannel`] ([`Core::login_backchannel`](crate::Core::login_backchannel)):
//!   start, wait and poll until done, verify the ID token exactly as an interactive login
//!   does (signature, `iss`, `aud`, `azp`, expiry, the IPSIE ceiling; there is no nonce in
//!   CIBA), and replace the session with one built from the verified claims;
//! * [`BackchannelAuthenticationGrant`]
//!   ([`Core::backchannel_authentication`](crate::Core::backchannel_authentication)): the
//!   same, returning the tokens and touching no session;
//! * [`StartBackchannelLogin`] and [`PollBackchannelLogin`]: the two halves, for an
//!   application that schedules its own polling (start returns a [`BackchannelHandle`]; each
//!   poll sends one request and answers [`BackchannelPoll::Pending`] or creates the session).
//!
//! When to poll next is the pure decision [`PollSchedule::next_poll`]: after `interval`
//! (default 5 s), 5 s more after each `slow_down` (CIBA Core §11), never at or past the
//! request's `expires_in` deadline. The adapter only waits ([`Effect::Wait`]).

use super::error::LoginError;
use super::landing::{Destination, Landed, Landing, LandingStep};
use super::start::login_scope;
use super::token_exchange::TokenExchangeResult;
use crate::config::Config;
use crate::discovery::{Endpoint, Metadata};
use crate::effect::{Effect, Input, Operation, Step, UnexpectedInput};
use crate::login::complete::LoginResult;
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::secret::Secret;
use crate::time::UnixTime;
use crate::token_endpoint::{
    ResponseError, TokenResponse, form_post, parse_token_response_expecting,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The grant type of a CIBA token request (CIBA Core §10.1).
pub const GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";

/// How long to wait between polls when the server names no `interval` (CIBA Core §7.3).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// The shortest wait between polls, whatever the server says (an `interval` of 0 would
/// make the client hammer the token endpoint).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// How much each `slow_down` answer adds to the interval (CIBA Core §11).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// Longest `binding_message` accepted, in characters (Auth0's limit).
pub const MAX_BINDING_MESSAGE_LEN: usize = 64;

/// Longest user id (`sub`) accepted, in bytes.
pub const MAX_USER_ID_LEN: usize = 1024;

/// Longest `requested_expiry` accepted (Auth0 accepts 1 s to 300 s).
pub const MAX_REQUESTED_EXPIRY: Duration = Duration::from_secs(300);

/// Largest `expires_in` believed from the server (a day): a longer one is cut to this.
const MAX_EXPIRES_IN: u64 = 86_400;

/// Whether `c` may appear in a binding message: Auth0 allows letters and digits, whitespace
/// (spaces; no control characters) and `+-_.,:#`.
fn binding_char_allowed(c: char) -> bool {
    c.is_alphanumeric() || c == ' ' || "+-_.,:#".contains(c)
}

/// Whom to log in, with what message, and for what.
///
/// ```
/// use auth0_server_protocol::login::BackchannelLoginRequest;
/// let request = BackchannelLoginRequest::new("auth0|user-1", "Approve transfer #42")
///     .scope("openid profile offline_access")
///     .audience("https://api.example.com/");
/// assert!(request.check().is_ok());
/// assert!(BackchannelLoginRequest::new("auth0|user-1", "line\nbreak").check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct BackchannelLoginRequest {
    /// The user's id (`sub`), sent as the `login_hint` `{"format":"iss_sub","iss":…,"sub":…}`.
    pub user_id: String,
    /// The message shown on both devices so the user can tell the requests apart
    /// (`binding_message`): 1 to 64 characters, letters, digits, spaces and `+-_.,:#`.
    pub binding_message: String,
    /// The scope asked for; `openid` is always included, and the configured default is used
    /// when `None`.
    pub scope: Option<String>,
    /// The API the access token is for; the configured audience when `None`.
    pub audience: Option<String>,
    /// How long the user has to approve (`requested_expiry`); Auth0's default otherwise.
    pub requested_expiry: Option<Duration>,
    /// Rich Authorization Request details (`authorization_details`, a JSON array).
    pub authorization_details: Option<Value>,
}

impl BackchannelLoginRequest {
    /// Log in user `user_id`, showing `binding_message`.
    pub fn new(user_id: impl Into<String>, binding_message: impl Into<String>) -> Self {
        BackchannelLoginRequest {
            user_id: user_id.into(),
            binding_message: binding_message.into(),
            scope: None,
            audience: None,
            requested_expiry: None,
            authorization_details: None,
        }
    }
    /// Sets the scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
    /// Sets the audience.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }
    /// Sets `requested_expiry`.
    pub fn requested_expiry(mut self, expiry: Duration) -> Self {
        self.requested_expiry = Some(expiry);
        self
    }
    /// Sets the Rich Authorization Request details (a JSON array of objects with a `type`).
    pub fn authorization_details(mut self, details: Value) -> Self {
        self.authorization_details = Some(details);
        self
    }

    /// Checks the request before anything is sent; the error names the offending field,
    /// never its value.
    pub fn check(&self) -> Result<(), LoginError> {
        check_binding_message(&self.binding_message)?;
        let user = &self.user_id;
        if user.trim().is_empty() || user.trim() != user || user.len() > MAX_USER_ID_LEN {
            return Err(invalid(format!(
                "user_id must be a user id of 1 to {MAX_USER_ID_LEN} bytes without surrounding whitespace"
            )));
        }
        if user.chars().any(char::is_control) {
            return Err(invalid(
                "user_id must not contain control characters".into(),
            ));
        }
        for (name, value) in [("audience", &self.audience), ("scope", &self.scope)] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                return Err(invalid(format!("{name} must not be blank when given")));
            }
        }
        if self
            .requested_expiry
            .is_some_and(|expiry| expiry.as_secs() == 0 || expiry > MAX_REQUESTED_EXPIRY)
        {
            return Err(invalid(format!(
                "requested_expiry must be between 1 s and {} s",
                MAX_REQUESTED_EXPIRY.as_secs()
            )));
        }
        if let Some(details) = &self.authorization_details {
            let ok = details.as_array().is_some_and(|items| {
                !items.is_empty()
                    && items
                        .iter()
                        .all(|i| i.get("type").and_then(Value::as_str).is_some())
            });
            if !ok {
                return Err(invalid(
                    "authorization_details must be a non-empty JSON array of objects with a `type`"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

/// Checks a binding message: 1 to [`MAX_BINDING_MESSAGE_LEN`] characters, not blank, only
/// letters, digits, spaces and `+-_.,:#` (Auth0's rule; so no control characters).
pub fn check_binding_message(message: &str) -> Result<(), LoginError> {
    if message.trim().is_empty() {
        return Err(invalid("binding_message must not be blank".into()));
    }
    if message.chars().count() > MAX_BINDING_MESSAGE_LEN {
        return Err(invalid(format!(
            "binding_message must be at most {MAX_BINDING_MESSAGE_LEN} characters"
        )));
    }
    if !message.chars().all(binding_char_allowed) {
        return Err(invalid(
            "binding_message may only contain letters, digits, spaces and +-_.,:#".into(),
        ));
    }
    Ok(())
}

fn invalid(reason: String) -> LoginError {
    LoginError::InvalidParameter(reason)
}

/// The form parameters of the backchannel authentication request, in order (without client
/// authentication, which the request builder adds). `scope` is the one to send; `issuer` the
/// discovered issuer, named in the `login_hint`.
pub fn start_params(
    config: &Config,
    request: &BackchannelLoginRequest,
    scope: &str,
    issuer: &str,
) -> Vec<(String, String)> {
    let login_hint = serde_json::json!({
        "format": "iss_sub",
        "iss": issuer,
        "sub": request.user_id,
    });
    let mut params = vec![
        ("scope".to_owned(), scope.to_owned()),
        ("login_hint".to_owned(), login_hint.to_string()),
        (
            "binding_message".to_owned(),
            request.binding_message.clone(),
        ),
    ];
    if let Some(audience) = request
        .audience
        .as_deref()
        .or(config.authorization_params().audience.as_deref())
    {
        params.push(("audience".to_owned(), audience.to_owned()));
    }
    if let Some(expiry) = request.requested_expiry {
        params.push(("requested_expiry".to_owned(), expiry.as_secs().to_string()));
    }
    if let Some(details) = &request.authorization_details {
        params.push(("authorization_details".to_owned(), details.to_string()));
    }
    params
}

/// A started backchannel authentication: what polling needs. An application that polls on
/// its own schedule keeps it (it serializes) until [`PollBackchannelLogin`] is done.
/// `auth_req_id` is a credential of the request: keep it server-side.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackchannelHandle {
    /// The request's id (`auth_req_id`).
    pub auth_req_id: Secret,
    /// How long to wait before the next poll.
    pub interval: Duration,
    /// When the request expires: no poll is sent at or after it.
    pub expires_at: UnixTime,
    /// The audience asked for (the session's token set is filed under it).
    pub audience: Option<String>,
    /// The scope asked for.
    pub scope: String,
}

/// The answer to one poll of [`PollBackchannelLogin`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum BackchannelPoll {
    /// The user has not answered yet: poll again after `retry_after` (the interval, grown by
    /// 5 s when the server asked to slow down; keep it in the handle).
    Pending {
        /// How long to wait before the next poll.
        retry_after: Duration,
    },
    /// The user approved: the session was created.
    Done(LoginResult),
}

/// What a poll was answered with, as far as the schedule is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollAnswer {
    /// The request was just started (no poll yet).
    Started,
    /// `authorization_pending`: ask again after the interval.
    Pending,
    /// `slow_down`: ask again after the interval grown by [`SLOW_DOWN_STEP`].
    SlowDown,
}

/// When to poll next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextPoll {
    /// Wait `after`, then poll.
    WaitThenPoll {
        /// How long to wait.
        after: Duration,
    },
    /// The request expires before another poll could be sent: stop, without sending.
    Expired,
}

/// The polling schedule of one backchannel authentication: the interval and the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollSchedule {
    /// The current interval (never below [`MIN_INTERVAL`]; only grows).
    pub interval: Duration,
    /// When the request expires.
    pub deadline: UnixTime,
}

impl PollSchedule {
    /// A schedule for a request started at `now` that expires in `expires_in` and asks for
    /// `interval` between polls (`None`: [`DEFAULT_INTERVAL`]).
    pub fn new(now: UnixTime, expires_in: Duration, interval: Option<Duration>) -> Self {
        PollSchedule {
            interval: interval.unwrap_or(DEFAULT_INTERVAL).max(MIN_INTERVAL),
            deadline: now + expires_in.min(Duration::from_secs(MAX_EXPIRES_IN)),
        }
    }

    /// The decision after `answer`, at `now`: a `slow_down` grows the interval by 5 s (it
    /// never shrinks); the next poll comes one interval after `now`, unless that is at or past
    /// the deadline, when polling stops.
    pub fn next_poll(&mut self, answer: PollAnswer, now: UnixTime) -> NextPoll {
        if answer == PollAnswer::SlowDown {
            self.interval = self.interval.saturating_add(SLOW_DOWN_STEP);
        }
        if now + self.interval >= self.deadline || now.saturating_add(self.interval) < now {
            return NextPoll::Expired;
        }
        NextPoll::WaitThenPoll {
            after: self.interval,
        }
    }
}

/// The backchannel authentication endpoint's answer (CIBA Core §7.3).
#[derive(Deserialize)]
struct StartAnswer {
    auth_req_id: String,
    expires_in: serde_json::Number,
    #[serde(default)]
    interval: Option<serde_json::Number>,
}

/// Reads the backchannel authentication endpoint's answer at `now`: the handle to poll with
/// (`audience` and `scope` as sent).
pub fn parse_start_response(
    response: &http::Response<Vec<u8>>,
    now: UnixTime,
    audience: Option<String>,
    scope: String,
) -> Result<BackchannelHandle, ResponseError> {
    let status = response.status().as_u16();
    let body = response.body();
    if body.len() > crate::token_response::MAX_RESPONSE_BODY {
        return Err(ResponseError::TooLarge { status });
    }
    if !response.status().is_success() {
        return Err(crate::token_response::parse_error_body(status, body));
    }
    let invalid = |reason| ResponseError::Invalid { status, reason };
    let answer: StartAnswer = serde_json::from_slice(body)
        .map_err(|_| invalid("not a backchannel authentication answer"))?;
    if answer.auth_req_id.is_empty() || answer.auth_req_id.len() > 4096 {
        return Err(invalid("auth_req_id is empty or too long"));
    }
    let secs = |n: &serde_json::Number| n.as_u64().or_else(|| n.as_f64().map(|f| f as u64));
    let expires_in = secs(&answer.expires_in)
        .filter(|s| *s > 0)
        .ok_or(invalid("expires_in is not a positive number"))?;
    let interval = match &answer.interval {
        Some(n) => Some(Duration::from_secs(
            secs(n).ok_or(invalid("interval is not a number"))?,
        )),
        None => None,
    };
    let schedule = PollSchedule::new(now, Duration::from_secs(expires_in), interval);
    Ok(BackchannelHandle {
        auth_req_id: Secret::new(answer.auth_req_id),
        interval: schedule.interval,
        expires_at: schedule.deadline,
        audience,
        scope,
    })
}

/// Which operation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Start, poll until done, return the tokens; no session.
    Tokens,
    /// Start, poll until done, create the session.
    Session,
    /// Start only: return the handle.
    StartOnly,
    /// One poll of a handle; create the session when approved.
    PollOnce,
}

#[derive(Debug)]
enum State {
    Start,
    Metadata {
        meta: MetadataStep,
    },
    Starting {
        metadata: Arc<Metadata>,
        scope: String,
    },
    Waiting {
        metadata: Arc<Metadata>,
    },
    Polling {
        metadata: Arc<Metadata>,
    },
    /// The approval's answer is verified and lands (tokens, or the session).
    Landing(Box<Landing>),
    Finished,
}

/// What the flow ends with.
enum Ended {
    Started(BackchannelHandle),
    Pending(Duration),
    Tokens(TokenExchangeResult),
    Session(LoginResult),
}

/// The flow every CIBA operation runs.
#[derive(Debug)]
struct Flow {
    config: Arc<Config>,
    request: Option<BackchannelLoginRequest>,
    handle: Option<BackchannelHandle>,
    schedule: Option<PollSchedule>,
    mode: Mode,
    state: State,
}

impl Flow {
    fn new(config: Arc<Config>, request: BackchannelLoginRequest, mode: Mode) -> Flow {
        Flow {
            config,
            request: Some(request),
            handle: None,
            schedule: None,
            mode,
            state: State::Start,
        }
    }

    fn finish(&mut self, r: Result<Ended, LoginError>) -> Step<Ended, LoginError> {
        self.state = State::Finished;
        Step::Done(r)
    }

    fn audience(&self) -> Option<&str> {
        match (&self.handle, &self.request) {
            (Some(h), _) => h.audience.as_deref(),
            (None, Some(r)) => r.audience.as_deref(),
            (None, None) => None,
        }
    }

    fn audience_key(&self) -> String {
        self.config.audience_key(self.audience()).to_owned()
    }

    /// The poll request for the handle.
    fn poll(&mut self, metadata: Arc<Metadata>) -> Step<Ended, LoginError> {
        let Some(handle) = &self.handle else {
            return self.finish(Err(UnexpectedInput {
                expected: "a started backchannel authentication",
            }
            .into()));
        };
        let request = form_post(
            &self.config,
            &metadata,
            metadata.token_endpoint_for(self.config.client_auth_method().transport()),
            &[
                ("grant_type", GRANT_TYPE),
                ("auth_req_id", handle.auth_req_id.expose()),
            ],
        );
        self.state = State::Polling { metadata };
        Step::Effect(Effect::Http(Box::new(request)))
    }

    /// After the start or a pending poll: wait and poll again, or stop at the deadline.
    fn schedule(
        &mut self,
        metadata: Arc<Metadata>,
        answer: PollAnswer,
        now: UnixTime,
    ) -> Step<Ended, LoginError> {
        let Some(schedule) = self.schedule.as_mut() else {
            return self.finish(Err(UnexpectedInput {
                expected: "a started backchannel authentication",
            }
            .into()));
        };
        match schedule.next_poll(answer, now) {
            NextPoll::WaitThenPoll { after } => {
                self.state = State::Waiting { metadata };
                Step::Effect(Effect::Wait(after))
            }
            NextPoll::Expired => self.finish(Err(LoginError::BackchannelExpired)),
        }
    }

    /// Lands the approval's answer (received at `now`): verified, then the tokens or the
    /// session.
    fn land(
        &mut self,
        metadata: Arc<Metadata>,
        response: TokenResponse,
        now: UnixTime,
    ) -> Step<Ended, LoginError> {
        let destination = Destination {
            session: self.mode != Mode::Tokens,
            audience_key: self.audience_key(),
            scope: self.handle.as_ref().map(|h| h.scope.clone()),
            organization: None,
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
            LandingStep::Done(r) => self.finish(r.map(|landed| match landed {
                Landed::Tokens(tokens) => Ended::Tokens(tokens),
                Landed::Session(result) => Ended::Session(result),
            })),
        }
    }

    /// What a poll was answered with.
    fn polled(
        &mut self,
        metadata: Arc<Metadata>,
        response: http::Response<Vec<u8>>,
        now: UnixTime,
    ) -> Step<Ended, LoginError> {
        // The token type asked for (DPoP when configured): a bearer answer to a DPoP client
        // is refused, as for every other grant.
        let parsed = match parse_token_response_expecting(&response, Some(self.config.token_type()))
        {
            Ok(parsed) => parsed,
            Err(e) => {
                let answer = match e.oauth().map(|o| o.error.as_str()) {
                    Some("authorization_pending") => PollAnswer::Pending,
                    Some("slow_down") => PollAnswer::SlowDown,
                    Some("expired_token") => {
                        return self.finish(Err(LoginError::BackchannelExpired));
                    }
                    Some("access_denied") => {
                        let description = e.oauth().and_then(|o| o.error_description.clone());
                        return self.finish(Err(LoginError::AccessDenied {
                            error_description: description,
                        }));
                    }
                    _ => {
                        let sent = [
                            self.handle.as_ref().map_or("", |h| h.auth_req_id.expose()),
                            self.config.client_secret().map_or("", Secret::expose),
                        ];
                        return self.finish(Err(LoginError::Backchannel(e.redact(&sent))));
                    }
                };
                if self.mode == Mode::PollOnce {
                    let mut interval = self
                        .handle
                        .as_ref()
                        .map_or(DEFAULT_INTERVAL, |h| h.interval);
                    if answer == PollAnswer::SlowDown {
                        interval = interval.saturating_add(SLOW_DOWN_STEP);
                    }
                    return self.finish(Ok(Ended::Pending(interval)));
                }
                return self.schedule(metadata, answer, now);
            }
        };
        self.land(metadata, parsed, now)
    }

    fn step(&mut self, input: Input, now: UnixTime) -> Step<Ended, LoginError> {
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (State::Start, Input::Start) => {
                if let Some(Err(e)) = self.request.as_ref().map(BackchannelLoginRequest::check) {
                    return self.finish(Err(e));
                }
                if self.handle.as_ref().is_some_and(|h| now >= h.expires_at) {
                    return self.finish(Err(LoginError::BackchannelExpired));
                }
                let (meta, effect) = MetadataStep::start();
                self.state = State::Metadata { meta };
                Step::Effect(effect)
            }
            (State::Metadata { mut meta }, input) => match meta.handle(&self.config, input, now) {
                MetadataOutcome::Ready(metadata) => {
                    if self.mode == Mode::PollOnce {
                        return self.poll(metadata);
                    }
                    let transport = self.config.client_auth_method().transport();
                    let Some(endpoint) =
                        metadata.endpoint(Endpoint::BackchannelAuthentication, transport)
                    else {
                        return self.finish(Err(LoginError::BackchannelNotSupported));
                    };
                    let Some(request) = &self.request else {
                        return self.finish(Err(UnexpectedInput {
                            expected: "a backchannel login request",
                        }
                        .into()));
                    };
                    let audience_key = self
                        .config
                        .audience_key(request.audience.as_deref())
                        .to_owned();
                    let scope = login_scope(&self.config, &audience_key, request.scope.as_deref());
                    let params = start_params(&self.config, request, &scope, &metadata.issuer);
                    let params: Vec<(&str, &str)> = params
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    let http = form_post(&self.config, &metadata, endpoint, &params);
                    self.state = State::Starting { metadata, scope };
                    Step::Effect(Effect::Http(Box::new(http)))
                }
                MetadataOutcome::Effect(e) => {
                    self.state = State::Metadata { meta };
                    Step::Effect(e)
                }
                MetadataOutcome::Failed(e) => self.finish(Err(LoginError::Discovery(e))),
                MetadataOutcome::Unexpected(e) => self.finish(Err(e.into())),
            },
            (State::Starting { metadata, scope }, Input::Http(response)) => {
                let audience = self.request.as_ref().and_then(|r| r.audience.clone());
                let handle = match parse_start_response(&response, now, audience, scope) {
                    Ok(handle) => handle,
                    Err(e) => {
                        let secret = self.config.client_secret().map_or("", Secret::expose);
                        return self.finish(Err(LoginError::Backchannel(e.redact(&[secret]))));
                    }
                };
                if self.mode == Mode::StartOnly {
                    return self.finish(Ok(Ended::Started(handle)));
                }
                self.schedule = Some(PollSchedule {
                    interval: handle.interval,
                    deadline: handle.expires_at,
                });
                self.handle = Some(handle);
                self.schedule(metadata, PollAnswer::Started, now)
            }
            (State::Waiting { metadata }, Input::Done) => {
                // The deadline is checked again after the wait (a slow sleeper, a clock jump).
                if self.schedule.is_some_and(|s| now >= s.deadline) {
                    return self.finish(Err(LoginError::BackchannelExpired));
                }
                self.poll(metadata)
            }
            (State::Polling { metadata }, Input::Http(response)) => {
                self.polled(metadata, response, now)
            }
            (State::Landing(mut landing), input) => {
                let step = landing.step(&self.config, input, now);
                self.landed(Some(*landing), step)
            }
            (state, _) => {
                let expected = match state {
                    State::Start => "Start",
                    State::Metadata { .. } => "metadata",
                    State::Starting { .. } => "Http (backchannel authentication)",
                    State::Waiting { .. } => "Done (the wait)",
                    State::Polling { .. } => "Http (CIBA token request)",
                    State::Landing(_) => "the landing's effects",
                    State::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}

/// Maps the flow's ending to one operation's output.
fn ended<T>(
    step: Step<Ended, LoginError>,
    pick: impl FnOnce(Ended) -> Option<T>,
    expected: &'static str,
) -> Step<T, LoginError> {
    match step {
        Step::Effect(e) => Step::Effect(e),
        Step::Done(Ok(end)) => match pick(end) {
            Some(t) => Step::Done(Ok(t)),
            None => Step::Done(Err(UnexpectedInput { expected }.into())),
        },
        Step::Done(Err(e)) => Step::Done(Err(e)),
    }
}

/// The `login_backchannel` operation: start, poll until the user answers, create the
/// session.
#[derive(Debug)]
pub struct LoginBackchannel(Flow);

impl LoginBackchannel {
    pub(crate) fn new(config: Arc<Config>, request: BackchannelLoginRequest) -> Self {
        LoginBackchannel(Flow::new(config, request, Mode::Session))
    }
}

impl Operation for LoginBackchannel {
    type Output = LoginResult;
    type Error = LoginError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<LoginResult, LoginError> {
        let step = self.0.step(input, now);
        ended(
            step,
            |e| match e {
                Ended::Session(r) => Some(r),
                _ => None,
            },
            "a backchannel login",
        )
    }
}

/// The `backchannel_authentication` operation: start, poll until the user answers, return
/// the (verified) tokens; no session.
#[derive(Debug)]
pub struct BackchannelAuthenticationGrant(Flow);

impl BackchannelAuthenticationGrant {
    pub(crate) fn new(config: Arc<Config>, request: BackchannelLoginRequest) -> Self {
        BackchannelAuthenticationGrant(Flow::new(config, request, Mode::Tokens))
    }
}

impl Operation for BackchannelAuthenticationGrant {
    type Output = TokenExchangeResult;
    type Error = LoginError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<TokenExchangeResult, LoginError> {
        let step = self.0.step(input, now);
        ended(
            step,
            |e| match e {
                Ended::Tokens(t) => Some(t),
                _ => None,
            },
            "a backchannel authentication without a session",
        )
    }
}

/// The `start_backchannel_login` operation: sends the backchannel authentication request
/// and returns the handle to poll with; nothing waits.
#[derive(Debug)]
pub struct StartBackchannelLogin(Flow);

impl StartBackchannelLogin {
    pub(crate) fn new(config: Arc<Config>, request: BackchannelLoginRequest) -> Self {
        StartBackchannelLogin(Flow::new(config, request, Mode::StartOnly))
    }
}

impl Operation for StartBackchannelLogin {
    type Output = BackchannelHandle;
    type Error = LoginError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<BackchannelHandle, LoginError> {
        let step = self.0.step(input, now);
        ended(
            step,
            |e| match e {
                Ended::Started(h) => Some(h),
                _ => None,
            },
            "a started backchannel login",
        )
    }
}

/// The `poll_backchannel_login` operation: one poll of a started backchannel login; creates
/// the session once the user approved. Nothing is sent at or after the handle's expiry.
#[derive(Debug)]
pub struct PollBackchannelLogin(Flow);

impl PollBackchannelLogin {
    pub(crate) fn new(config: Arc<Config>, handle: BackchannelHandle) -> Self {
        PollBackchannelLogin(Flow {
            config,
            request: None,
            handle: Some(handle),
            schedule: None,
            mode: Mode::PollOnce,
            state: State::Start,
        })
    }
}

impl Operation for PollBackchannelLogin {
    type Output = BackchannelPoll;
    type Error = LoginError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<BackchannelPoll, LoginError> {
        let step = self.0.step(input, now);
        ended(
            step,
            |e| match e {
                Ended::Pending(retry_after) => Some(BackchannelPoll::Pending { retry_after }),
                Ended::Session(r) => Some(BackchannelPoll::Done(r)),
                _ => None,
            },
            "a poll of a backchannel login",
        )
    }
}
