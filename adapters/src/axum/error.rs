//! `IntoResponse` for the SDK's [`Error`]: the right status, a body without internals, and
//! the detail in tracing.

use crate::error::{Error, TransportErrorKind};
use crate::protocol::access_token::AccessTokenError;
use crate::protocol::connection_token::ConnectionTokenError;
use crate::protocol::login::LoginError;
use crate::protocol::logout::{BackchannelLogoutError, LogoutError};
use crate::protocol::mfa::MfaError;
use crate::protocol::token_endpoint::ResponseError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The HTTP status an [`Error`] answers a browser or API client with.
///
/// - 401: no session, or the session can no longer get tokens (no refresh token, the refresh
///   token was refused, the refreshed ID token is another user's, the identity provider's
///   session ceiling is reached at login): log in again;
/// - 403: multi-factor authentication is required, or a connection exchange was refused;
/// - 400: a bad login callback (state, transaction, code, ID token) or back-channel logout
///   token, an invalid parameter;
/// - 502: Auth0 failed or answered something unusable (discovery, signing keys, a 5xx or
///   malformed token answer, a transport failure); 504 for a transport timeout;
/// - 503: the session store failed (also `session_not_saved`: the tokens were obtained, the
///   session could not be saved, a rotated refresh token is kept in the process);
/// - 500: anything else (a misconfiguration, an SDK bug).
pub fn status_of(error: &Error) -> StatusCode {
    let refused = |e: &ResponseError| match e {
        ResponseError::OAuth(o) => o.status < 500,
        _ => false,
    };
    match error {
        Error::AccessToken(e) => match &**e {
            AccessTokenError::MissingSession
            | AccessTokenError::MissingRefreshToken
            | AccessTokenError::SessionMismatch => StatusCode::UNAUTHORIZED,
            AccessTokenError::MfaRequired { .. } => StatusCode::FORBIDDEN,
            AccessTokenError::FailedToRefresh(r) if refused(r) => StatusCode::UNAUTHORIZED,
            AccessTokenError::FailedToRefresh(_) | AccessTokenError::Discovery(_) => {
                StatusCode::BAD_GATEWAY
            }
            AccessTokenError::SessionNotSaved { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        Error::ConnectionToken(e) => match &**e {
            ConnectionTokenError::MissingSession | ConnectionTokenError::MissingRefreshToken => {
                StatusCode::UNAUTHORIZED
            }
            ConnectionTokenError::InvalidRequest => StatusCode::BAD_REQUEST,
            ConnectionTokenError::MfaRequired { .. } => StatusCode::FORBIDDEN,
            ConnectionTokenError::FailedToExchange(r) if refused(r) => StatusCode::FORBIDDEN,
            ConnectionTokenError::FailedToExchange(_) | ConnectionTokenError::Discovery(_) => {
                StatusCode::BAD_GATEWAY
            }
            ConnectionTokenError::SessionNotSaved { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        Error::Login(e) => match &**e {
            LoginError::InvalidParameter(_)
            | LoginError::InvalidCallback(_)
            | LoginError::InvalidState
            | LoginError::MissingTransaction
            | LoginError::Authorization { .. }
            | LoginError::MissingCode
            | LoginError::MissingIdToken
            | LoginError::InvalidIdToken(_) => StatusCode::BAD_REQUEST,
            LoginError::CodeExchange(r) if refused(r) => StatusCode::BAD_REQUEST,
            LoginError::SessionExpired(_) => StatusCode::UNAUTHORIZED,
            LoginError::CodeExchange(_)
            | LoginError::ParFailed(_)
            | LoginError::Jwks(_)
            | LoginError::Discovery(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        Error::Mfa(e) => match &**e {
            MfaError::InvalidParameter(_)
            | MfaError::NotMfaRequired
            | MfaError::TokenExpired
            | MfaError::TokenInvalid => StatusCode::BAD_REQUEST,
            MfaError::Failed(r) if refused(r) => StatusCode::FORBIDDEN,
            MfaError::Failed(_) | MfaError::Discovery(_) => StatusCode::BAD_GATEWAY,
            MfaError::NotPersisted(e) => match &**e {
                AccessTokenError::SessionNotSaved { .. } => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            },
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        Error::Logout(e) => match &**e {
            LogoutError::Discovery(_) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        Error::BackchannelLogout(e) => match &**e {
            BackchannelLogoutError::InvalidLogoutToken(_) => StatusCode::BAD_REQUEST,
            BackchannelLogoutError::Jwks(_) | BackchannelLogoutError::Discovery(_) => {
                StatusCode::BAD_GATEWAY
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        Error::Transport(e) if e.kind() == TransportErrorKind::Timeout => {
            StatusCode::GATEWAY_TIMEOUT
        }
        Error::Transport(_) => StatusCode::BAD_GATEWAY,
        Error::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The `error` code an answer with `status` shows the client: the SDK's stable code for a
/// client error (4xx), a generic one for server-side failures (their detail is for the
/// operator's logs, not the browser).
pub(crate) fn public_code(error: &Error, status: StatusCode) -> &'static str {
    match status {
        s if s.is_client_error() => error.code().as_str(),
        StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => "upstream_error",
        StatusCode::SERVICE_UNAVAILABLE => "temporarily_unavailable",
        _ => "server_error",
    }
}

/// A JSON body `{"error": code}` with `Cache-Control: no-store`.
pub(crate) fn json_error(status: StatusCode, code: &str) -> Response {
    super::json(status, &serde_json::json!({ "error": code }))
}

/// Reports `error` to tracing (code, status and its `Display`, which carries no secret).
pub(crate) fn trace_failure(error: &Error, status: StatusCode, route: &str) {
    #[cfg(feature = "tracing")]
    {
        if status.is_server_error() {
            crate::trace::trace_event!(
                ::tracing::Level::ERROR,
                route,
                status = status.as_u16(),
                code = %error.code(),
                error = %error,
                "auth0 request failed"
            );
        } else {
            crate::trace::trace_event!(
                ::tracing::Level::INFO,
                route,
                status = status.as_u16(),
                code = %error.code(),
                error = %error,
                "auth0 request refused"
            );
        }
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (error, status, route);
}

/// The status of [`status_of`], a JSON body `{"error": "<code>"}` (the stable code for
/// client errors, `upstream_error` / `server_error` / `temporarily_unavailable` otherwise), and
/// the detail in a tracing event.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        trace_failure(&self, status, "handler");
        json_error(status, public_code(&self, status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TransportError;
    use crate::store::StoreError;

    #[test]
    fn statuses() {
        let s = |e: Error| status_of(&e);
        assert_eq!(s(AccessTokenError::MissingSession.into()), 401);
        assert_eq!(s(LoginError::InvalidState.into()), 400);
        assert_eq!(s(LoginError::MissingTransaction.into()), 400);
        assert_eq!(
            s(TransportError::new(TransportErrorKind::Connect, "GET x").into()),
            502
        );
        assert_eq!(s(StoreError::new("down").into()), 503);
    }

    #[test]
    fn server_errors_hide_their_detail() {
        let e: Error = StoreError::new("redis at 10.0.0.1 is down").into();
        let status = status_of(&e);
        assert_eq!(public_code(&e, status), "temporarily_unavailable");
        let e: Error = LoginError::InvalidState.into();
        assert_eq!(public_code(&e, status_of(&e)), "invalid_state");
    }
}

#[cfg(all(test, feature = "tracing"))]
mod tracing_tests {
    use super::*;
    use crate::store::StoreError;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// Records each event's fields as a line.
    #[derive(Clone, Default)]
    struct Events(Arc<Mutex<Vec<String>>>);

    struct Line(String);

    impl Visit for Line {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }

    impl Subscriber for Events {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut line = Line(event.metadata().level().to_string());
            event.record(&mut line);
            self.0.lock().unwrap().push(line.0);
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn the_detail_goes_to_tracing_not_to_the_body() {
        let events = Events::default();
        let response = tracing::subscriber::with_default(events.clone(), || {
            Error::from(StoreError::new("redis at 10.0.0.7:6379 refused")).into_response()
        });
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let lines = events.0.lock().unwrap().clone();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("ERROR"), "{lines:?}");
        assert!(lines[0].contains("10.0.0.7:6379"), "{lines:?}");
        assert!(lines[0].contains("store_error"), "{lines:?}");
        let body = body_text(response);
        assert_eq!(body, r#"{"error":"temporarily_unavailable"}"#);
    }

    /// The body of a response built from a string (no runtime needed: the body is one frame).
    fn body_text(response: Response) -> String {
        use std::future::Future;
        use std::pin::pin;
        use std::task::{Context, Poll, Waker};
        let mut future = pin!(axum::body::to_bytes(response.into_body(), 1024));
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Ok(bytes)) => String::from_utf8(bytes.to_vec()).unwrap(),
            other => panic!("the body was not ready: {other:?}"),
        }
    }
}
