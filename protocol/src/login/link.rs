//! Account linking and unlinking: the logged-in user adds (or removes) an identity from
//! another connection to their Auth0 account, through the browser.
//!
//! [`StartLinkUser`] reads the session (a user must be logged in, with an ID token), then
//! starts an interactive login that carries the link request: `scope=openid link_account
//! offline_access` (or `unlink_account`), `id_token_hint` (the session's ID token, so Auth0
//! knows whose account to change), `requested_connection` and `requested_connection_scope`.
//! Its transaction remembers the intent and the user ([`AccountLink`]).
//!
//! The callback is completed by [`complete_interactive_login`](crate::Core::complete_interactive_login)
//! like any login; for a link transaction it *merges* the answer into the existing session
//! instead of replacing it — provided the session still belongs to the user who started the
//! link and the new ID token names that same user (otherwise a typed error and nothing saved).

use super::error::LoginError;
use super::start::{StartInteractiveLogin, StartLoginOptions};
use crate::config::Config;
use crate::effect::{Effect, Input, Operation, Step, UnexpectedInput};
use crate::session::{StateData, TokenSet};
use crate::time::UnixTime;
pub use crate::transaction::{AccountLink, LinkAction};
use serde_json::Value;
use std::sync::Arc;

/// The link flow's scope for an action.
fn link_scope(action: LinkAction) -> &'static str {
    match action {
        LinkAction::Link => "openid link_account offline_access",
        LinkAction::Unlink => "openid unlink_account offline_access",
    }
}

/// Which identity to link or unlink.
///
/// ```
/// use auth0_server_protocol::login::LinkUserOptions;
/// let options = LinkUserOptions::new("google-oauth2")
///     .connection_scope("https://www.googleapis.com/auth/calendar.readonly");
/// assert_eq!(options.connection, "google-oauth2");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkUserOptions {
    /// The connection whose identity is linked (`requested_connection`), e.g. `google-oauth2`.
    pub connection: String,
    /// Scopes to ask that connection for (`requested_connection_scope`).
    pub connection_scope: Option<String>,
    /// Application state returned by the callback.
    pub app_state: Option<Value>,
    /// Further authorization parameters (as [`StartLoginOptions::param`]).
    pub params: Vec<(String, String)>,
}

impl LinkUserOptions {
    /// Link (or unlink) the identity of `connection`.
    pub fn new(connection: impl Into<String>) -> Self {
        LinkUserOptions {
            connection: connection.into(),
            ..Default::default()
        }
    }
    /// Sets the scopes asked of the connection.
    pub fn connection_scope(mut self, scope: impl Into<String>) -> Self {
        self.connection_scope = Some(scope.into());
        self
    }
    /// Sets the application state.
    pub fn app_state(mut self, state: Value) -> Self {
        self.app_state = Some(state);
        self
    }
    /// Adds an authorization parameter.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }
}

/// The parameters a link flow sets itself: never taken from [`LinkUserOptions::params`].
const LINK_PARAMS: [&str; 4] = [
    "scope",
    "id_token_hint",
    "requested_connection",
    "requested_connection_scope",
];

/// The login options of a link flow for the session's ID token: the call's parameters, then
/// the link's own (scope, `id_token_hint`, `requested_connection`, its scope).
pub fn link_login_options(
    action: LinkAction,
    options: &LinkUserOptions,
    id_token: &str,
) -> Result<StartLoginOptions, LoginError> {
    if options.connection.trim().is_empty() {
        return Err(LoginError::InvalidParameter(
            "the connection to link must not be blank".into(),
        ));
    }
    if let Some((name, _)) = options
        .params
        .iter()
        .find(|(k, _)| LINK_PARAMS.contains(&k.as_str()))
    {
        return Err(LoginError::InvalidParameter(format!(
            "`{}` is set by the link flow",
            crate::display::SafeText(name)
        )));
    }
    let mut login = StartLoginOptions::new();
    login.app_state = options.app_state.clone();
    login.params = options.params.clone();
    login = login
        .set_param("scope", link_scope(action))
        .set_param("id_token_hint", id_token)
        .set_param("requested_connection", options.connection.clone());
    if let Some(scope) = &options.connection_scope {
        login = login.set_param("requested_connection_scope", scope.clone());
    }
    Ok(login)
}

/// The session after a completed link: the same session (id, creation, other token sets)
/// with the new ID token and user claims, the rotated refresh token when one came, and the
/// answer's token set.
pub fn merge_linked(
    mut session: StateData,
    claims: serde_json::Map<String, Value>,
    id_token: Option<crate::secret::Secret>,
    refresh_token: Option<crate::secret::Secret>,
    token_set: Option<TokenSet>,
    ceiling: Option<UnixTime>,
) -> StateData {
    session.user = Some(claims);
    if id_token.is_some() {
        session.id_token = id_token;
    }
    if refresh_token.is_some() {
        session.refresh_token = refresh_token;
    }
    if let Some(set) = token_set {
        crate::session::store_token_set(&mut session.token_sets, set);
    }
    if let Some(ceiling) = ceiling {
        session.internal.session_expires_at = Some(ceiling.as_secs());
    }
    session
}

#[derive(Debug)]
enum State {
    Start,
    LoadingSession,
    Starting {
        inner: Box<StartInteractiveLogin>,
        link: AccountLink,
    },
    Finished,
}

/// The `start_link_user` / `start_unlink_user` operation: the authorization URL of a link
/// flow for the logged-in user.
#[derive(Debug)]
pub struct StartLinkUser {
    config: Arc<Config>,
    action: LinkAction,
    options: LinkUserOptions,
    state: State,
}

impl StartLinkUser {
    pub(crate) fn new(config: Arc<Config>, action: LinkAction, options: LinkUserOptions) -> Self {
        StartLinkUser {
            config,
            action,
            options,
            state: State::Start,
        }
    }

    fn finish(&mut self, r: Result<url::Url, LoginError>) -> Step<url::Url, LoginError> {
        self.state = State::Finished;
        Step::Done(r)
    }

    /// Steps the inner login, writing the link intent into the transaction it saves.
    fn forward(
        &mut self,
        mut inner: Box<StartInteractiveLogin>,
        link: AccountLink,
        input: Input,
        now: UnixTime,
    ) -> Step<url::Url, LoginError> {
        match inner.step(input, now) {
            Step::Done(r) => self.finish(r),
            Step::Effect(Effect::SaveTransaction {
                key,
                mut transaction,
            }) => {
                transaction.link = Some(link.clone());
                self.state = State::Starting { inner, link };
                Step::Effect(Effect::SaveTransaction { key, transaction })
            }
            Step::Effect(e) => {
                self.state = State::Starting { inner, link };
                Step::Effect(e)
            }
        }
    }
}

impl Operation for StartLinkUser {
    type Output = url::Url;
    type Error = LoginError;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<url::Url, LoginError> {
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (State::Start, Input::Start) => {
                self.state = State::LoadingSession;
                Step::Effect(Effect::LoadSession)
            }
            (State::LoadingSession, Input::Session(session)) => {
                let Some(session) = session else {
                    return self.finish(Err(LoginError::MissingSession));
                };
                let (Some(id_token), Some(sub)) = (&session.id_token, session.sub()) else {
                    return self.finish(Err(LoginError::MissingSession));
                };
                let login = match link_login_options(self.action, &self.options, id_token.expose())
                {
                    Ok(login) => login,
                    Err(e) => return self.finish(Err(e)),
                };
                let link = AccountLink {
                    action: self.action,
                    sub: sub.to_owned(),
                };
                let inner = Box::new(StartInteractiveLogin::new(self.config.clone(), login));
                self.forward(inner, link, Input::Start, now)
            }
            (State::Starting { inner, link }, input) => self.forward(inner, link, input, now),
            (state, _) => {
                let expected = match state {
                    State::Start => "Start",
                    State::LoadingSession => "LoadSession",
                    State::Starting { .. } => "the login's effects",
                    State::Finished => "nothing (the operation has finished)",
                };
                self.finish(Err(UnexpectedInput { expected }.into()))
            }
        }
    }
}
