//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0 §2.5): when an Auth0
//! session ends — `/v2/logout`, `/oidc/logout` or an admin end-session — the emulator POSTs a
//! signed logout token (`logout_token=…`, form encoded) to the client's back-channel logout
//! URI, waits for the answer, records it, and only then answers the request that ended the
//! session, so a test sees the delivery's outcome as soon as its logout call returns.

use std::time::Duration;

use super::mint::{logout_token_claims, sign_current};
use crate::Shared;

/// How long a delivery may take before it counts as failed.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

/// What ended the session and triggered a back-channel logout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogoutTrigger {
    /// `GET /v2/logout` (Auth0's logout endpoint).
    V2Logout,
    /// `GET /oidc/logout` (OIDC RP-initiated logout, the end-session endpoint).
    OidcLogout,
    /// [`Emulator::end_session`](crate::Emulator::end_session) or
    /// [`Emulator::end_user_sessions`](crate::Emulator::end_user_sessions), as Auth0's
    /// Management API deletes a session.
    EndSession,
}

/// How a back-channel logout delivery went.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// The application answered with this HTTP status (OIDC asks for 200 on success).
    Status(u16),
    /// No answer: the connection failed or timed out. A short reason.
    Failed(String),
    /// Not sent: the configured URI is not an `http` loopback URI. A short reason.
    Refused(String),
}

/// One back-channel logout delivery, as recorded by the emulator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackchannelDelivery {
    /// What ended the session.
    pub trigger: LogoutTrigger,
    /// The back-channel logout URI the token was sent (or refused to be sent) to.
    pub uri: String,
    /// The ended session's `sid`, when known.
    pub sid: Option<String>,
    /// The session's user (`sub`), when known.
    pub sub: Option<String>,
    /// The signed logout token (the `logout_token` form parameter).
    pub logout_token: String,
    /// The application's answer.
    pub outcome: DeliveryOutcome,
}

/// Ends the Auth0 session `sid` (and/or the user `sub`'s session): forgets it and, when a
/// back-channel logout URI is configured, delivers a logout token there and records the
/// outcome. `sub` is looked up from the session when not given. Returns the delivery, or
/// `None` when no URI is configured or there is neither a `sid` nor a `sub`.
pub(crate) fn end_session(
    shared: &Shared,
    trigger: LogoutTrigger,
    sid: Option<&str>,
    sub: Option<&str>,
) -> Option<BackchannelDelivery> {
    let (uri, sub) = {
        let mut state = shared.lock();
        let known = sid.and_then(|sid| state.sessions.remove(sid));
        let sub = sub.map(str::to_owned).or(known);
        (state.backchannel_logout_uri.clone(), sub)
    };
    let uri = uri?;
    if sid.is_none() && sub.is_none() {
        return None;
    }
    let claims = logout_token_claims(shared, sub.as_deref(), sid);
    let logout_token = sign_current(shared, &claims);
    // The lock is not held while the application answers: its handler may call the emulator
    // (the JWKS, to verify the token) on another connection.
    let outcome = match loopback_http(&uri) {
        Err(reason) => DeliveryOutcome::Refused(reason.to_owned()),
        Ok(()) => post_logout_token(&uri, &logout_token),
    };
    let delivery = BackchannelDelivery {
        trigger,
        uri,
        sid: sid.map(str::to_owned),
        sub,
        logout_token,
        outcome,
    };
    shared.lock().deliveries.push(delivery.clone());
    Some(delivery)
}

/// Ends every known session of user `sub`, one logout token (with `sid` and `sub`) each.
pub(crate) fn end_user_sessions(shared: &Shared, sub: &str) -> Vec<BackchannelDelivery> {
    let mut sids: Vec<String> = shared
        .lock()
        .sessions
        .iter()
        .filter(|(_, s)| s.as_str() == sub)
        .map(|(sid, _)| sid.clone())
        .collect();
    sids.sort();
    sids.iter()
        .filter_map(|sid| end_session(shared, LogoutTrigger::EndSession, Some(sid), Some(sub)))
        .collect()
}

/// `Ok` for an `http` URI whose host is a loopback address or `localhost`: the emulator never
/// calls anything beyond this machine.
fn loopback_http(uri: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(uri).map_err(|_| "not an absolute URI")?;
    if url.scheme() != "http" {
        return Err("only http loopback URIs are called");
    }
    match url.host() {
        Some(url::Host::Ipv4(ip)) if ip.is_loopback() => Ok(()),
        Some(url::Host::Ipv6(ip)) if ip.is_loopback() => Ok(()),
        Some(url::Host::Domain(d)) if d.eq_ignore_ascii_case("localhost") => Ok(()),
        _ => Err("not a loopback host"),
    }
}

/// POSTs `logout_token=…` (form encoded) and returns the answer's status. A plain HTTP/1.1
/// exchange over a loopback TCP connection (the URI was checked by [`loopback_http`]): the
/// emulator needs no HTTP client crate, so an async-only build of the SDK has none in its
/// dependency tree, dev-dependencies included.
fn post_logout_token(uri: &str, logout_token: &str) -> DeliveryOutcome {
    use std::io::{BufRead, BufReader, Write};
    let Ok(url) = url::Url::parse(uri) else {
        return DeliveryOutcome::Failed("not an absolute URI".into());
    };
    let Ok(addrs) = url.socket_addrs(|| Some(80)) else {
        return DeliveryOutcome::Failed("the host did not resolve".into());
    };
    let Some(stream) = addrs
        .iter()
        .find_map(|a| std::net::TcpStream::connect_timeout(a, DELIVERY_TIMEOUT).ok())
    else {
        return DeliveryOutcome::Failed("connection refused".into());
    };
    let _ = stream.set_read_timeout(Some(DELIVERY_TIMEOUT));
    let _ = stream.set_write_timeout(Some(DELIVERY_TIMEOUT));
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("logout_token", logout_token)
        .finish();
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let host = url.host_str().unwrap_or("localhost");
    let port = url.port_or_known_default().unwrap_or(80);
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut writer = &stream;
    if let Err(e) = writer.write_all(request.as_bytes()) {
        return DeliveryOutcome::Failed(format!("I/O error: {}", e.kind()));
    }
    let mut status_line = String::new();
    match BufReader::new(&stream).read_line(&mut status_line) {
        Ok(_) => match status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
        {
            Some(status) => DeliveryOutcome::Status(status),
            None => DeliveryOutcome::Failed("not an HTTP answer".into()),
        },
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            DeliveryOutcome::Failed("timed out".into())
        }
        Err(e) => DeliveryOutcome::Failed(format!("I/O error: {}", e.kind())),
    }
}
