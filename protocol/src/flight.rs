//! Sharing requests between concurrent operations: the decisions behind single-flight, the
//! rotation grace memory and cross-instance coordination.
//!
//! The core marks a request it is willing to share with a [`Coalesce`]. The adapters keep the
//! maps, the locks and the published values; every decision about them is a pure function
//! here, so no adapter parses an OAuth body or compares times:
//!
//! - [`acquire`]: what a request finds when it arrives — a remembered answer, a request in
//!   flight to wait for, a refresh token rotated by an earlier request of its lane, a lane
//!   busy with another request, or nothing (it leads);
//! - [`settle`]: what a leader's outcome means for the others — share it with the current
//!   waiters only, or also remember it for the rotation grace window (or, across instances,
//!   publish it briefly); and whether it rotated the lane's refresh token, to what;
//! - [`next_poll`]: how long a cross-instance waiter sleeps before looking again, and when it
//!   gives up;
//! - [`Publication`]: the bytes an instance publishes for the others (an answer, a transport
//!   failure, or a rotation), bound to the key or lane they belong to.

use crate::effect::Coalesce;
use crate::secret::Secret;
use crate::time::UnixTime;
use crate::token_endpoint::parse_token_response_expecting;
use crate::token_endpoint::refresh_token_hash;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What is known, at one instant, about a request's key and lane in one process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlightView {
    /// Until when (exclusive) the answer remembered for the key may be served, if one is
    /// (see [`remember_until`]).
    pub remembered_until: Option<UnixTime>,
    /// Whether a request with the same key is in flight.
    pub in_flight: bool,
    /// When the lane's refresh token was last rotated, if a rotation is known.
    pub rotated_at: Option<UnixTime>,
    /// Whether the lane's rotation was kept because the session it belongs to could not be
    /// saved: followed for [`ROTATION_LIFETIME`] even when remembering is disabled (a zero
    /// grace window), as it is the only copy of the user's refresh token.
    pub rotation_kept: bool,
    /// Whether another request spending the lane's refresh token is in flight.
    pub lane_busy: bool,
}

/// What a request does, decided by [`acquire`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// Take the remembered answer (received within the grace window).
    Remembered,
    /// Wait for the request in flight with the same key and take its answer.
    Wait,
    /// Spend the refresh token the lane was rotated to (within [`ROTATION_LIFETIME`]) instead.
    Rotated,
    /// Wait until the lane's request in flight settles, then look again.
    WaitLane,
    /// Send the request and settle it for everyone.
    Lead,
}

/// The outcome of [`acquire`]: the action, and what the caller's maps should forget because
/// it is past its window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcquireDecision {
    /// What to do.
    pub action: Acquire,
    /// The remembered answer is stale: remove it.
    pub forget_remembered: bool,
    /// The lane's rotation is stale: remove it.
    pub forget_rotation: bool,
}

/// Whether something received at `at` is still within a grace window of `grace` at `now`. A
/// clock that went backwards keeps it (it cannot be older than it was); a zero window keeps
/// nothing.
pub fn within_grace(at: UnixTime, now: UnixTime, grace: Duration) -> bool {
    now.saturating_duration_since(at) < grace
}

/// How long a lane's rotation (old refresh token → new one) is followed: the default absolute
/// session lifetime, not just the grace window (which bounds how long whole answers are
/// remembered).
///
/// A rotation must outlive every copy of the session that still holds the replaced token:
/// a request cancelled after the server rotated the token (its answer never saved), a save
/// that failed, a cookie of a concurrent response that the browser kept last. Each of them
/// would otherwise replay the replaced token later, and reuse detection would revoke the
/// user's whole token family. The entry is small (a hash and the new token) and bounded by
/// the adapters' capacity. The price: a request presenting a replaced token within this
/// lifetime (an old copy of a session cookie) is moved on to the new token instead of
/// tripping the authorization server's reuse detection; ending the session (logout,
/// back-channel logout) is what ends such copies.
pub const ROTATION_LIFETIME: Duration = crate::session::DEFAULT_ABSOLUTE_LIFETIME;

/// How long rotations are followed with the grace window `grace`: [`ROTATION_LIFETIME`]
/// (or the window, if longer); nothing when the window is zero (remembering disabled).
pub fn rotation_lifetime(grace: Duration) -> Duration {
    if grace.is_zero() {
        Duration::ZERO
    } else {
        ROTATION_LIFETIME.max(grace)
    }
}

/// Whether a lane's rotation recorded at `at` is still followed at `now`, with the grace
/// window `grace` (see [`rotation_lifetime`]); a `kept` one (its session could not be saved)
/// for [`ROTATION_LIFETIME`] whatever the window.
pub fn rotation_followed(kept: bool, at: UnixTime, now: UnixTime, grace: Duration) -> bool {
    let lifetime = if kept {
        ROTATION_LIFETIME.max(grace)
    } else {
        rotation_lifetime(grace)
    };
    within_grace(at, now, lifetime)
}

/// Whether a flight's outcome "the refresh token was rotated to T" applies to a request that
/// waited for it: only when both spend the same refresh token (the same lane). A request that
/// followed a rotation keeps its session's key, so it can share a flight with a request still
/// spending an older token of the session; that flight's rotation is behind it, and following
/// it would send it back (in circles, with the rotation ahead of it).
pub fn rotation_applies(flight: &Coalesce, request: &Coalesce) -> bool {
    flight.lane == request.lane
}

/// Until when an answer received at `received_at` may be handed to later requests: the
/// rotation grace window, and never past the expiry of the access token it carries (a
/// remembered answer is never served once its token has expired).
pub fn remember_until(
    received_at: UnixTime,
    grace: Duration,
    expires_in: Option<Duration>,
) -> UnixTime {
    let window = expires_in.map_or(grace, |e| e.min(grace));
    received_at.saturating_add(Duration::from_secs(window.as_secs()))
}

/// Decides how a request whose key and lane look like `view` obtains its answer at `now`.
///
/// In order: a fresh remembered answer wins; then a request in flight with the same key; then,
/// for a request that spends a refresh token, a fresh rotation of its lane; then a busy lane.
/// Otherwise the request leads.
pub fn acquire(view: FlightView, now: UnixTime, grace: Duration) -> AcquireDecision {
    let remembered_fresh = view.remembered_until.map(|until| now < until);
    let rotation_fresh = view
        .rotated_at
        .map(|at| rotation_followed(view.rotation_kept, at, now, grace));
    let forget_remembered = remembered_fresh == Some(false);
    let action = if remembered_fresh == Some(true) {
        Acquire::Remembered
    } else if view.in_flight {
        Acquire::Wait
    } else if rotation_fresh == Some(true) {
        Acquire::Rotated
    } else if view.lane_busy {
        Acquire::WaitLane
    } else {
        Acquire::Lead
    };
    // A stale rotation is forgotten only when the decision looked at it.
    let forget_rotation =
        rotation_fresh == Some(false) && !matches!(action, Acquire::Remembered | Acquire::Wait);
    AcquireDecision {
        action,
        forget_remembered,
        forget_rotation,
    }
}

/// How long the others may reuse a leader's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Share {
    /// A well-formed successful answer to a remembered request: remembered (and published
    /// across instances) for the rotation grace window.
    ForGraceWindow,
    /// A failure (transport error, non-2xx, a body that is no JSON object): handed to the
    /// requests waiting now, and published across instances only briefly; never remembered.
    FailureOnly,
    /// The answer belongs to its caller alone beyond the current waiters (the request is not
    /// remembered, e.g. the connection exchange).
    WaitersOnly,
    /// A DPoP nonce challenge (RFC 9449 §8: `use_dpop_nonce` with a `DPoP-Nonce` header): the
    /// server refused before spending anything, so the refresh token is unspent. Handed to
    /// the requests waiting now (each sends again with the nonce, sharing again), never
    /// remembered and never published across instances: another instance sends its own
    /// request (a published copy would not even carry the nonce header), and the leader's
    /// own retry is really sent.
    Unspent,
}

/// What a leader's outcome means for everyone else, decided by [`settle`].
#[derive(Clone, Debug)]
pub struct Settlement {
    /// How long the outcome may be reused.
    pub share: Share,
    /// The refresh token the answer rotated the lane's token to (a successful token response
    /// with a `refresh_token` other than the one spent).
    pub rotated_to: Option<Secret>,
    /// How long the access token of a successful token response is valid (`expires_in`):
    /// a remembered answer is not served past it.
    pub expires_in: Option<Duration>,
}

/// Decides what the answer `response` to a request marked `request` means for the others.
pub fn settle(request: &Coalesce, response: &http::Response<Vec<u8>>) -> Settlement {
    let well_formed = response.status().is_success() && is_json_object(response.body());
    let nonce_challenge = matches!(
        crate::dpop::token_endpoint_retry(response, 0),
        crate::dpop::NonceRetry::RetryWith(_)
    );
    let share = match (request.remember, well_formed) {
        _ if nonce_challenge => Share::Unspent,
        (true, true) => Share::ForGraceWindow,
        (_, false) => Share::FailureOnly,
        (false, true) => Share::WaitersOnly,
    };
    let parsed = well_formed
        // Whatever the token type: DPoP answers rotate refresh tokens too.
        .then(|| parse_token_response_expecting(response, None).ok())
        .flatten();
    let expires_in = parsed
        .as_ref()
        .and_then(|r| r.expires_in)
        .map(Duration::from_secs);
    let rotated_to = match (&request.lane, parsed) {
        (Some(lane), Some(r)) => r.refresh_token.filter(|to| refresh_token_hash(to) != *lane),
        _ => None,
    };
    Settlement {
        share,
        rotated_to,
        expires_in,
    }
}

/// What [`settle`] decides when no answer arrived (a transport error): a failure, no rotation.
pub fn settle_failure() -> Settlement {
    Settlement {
        share: Share::FailureOnly,
        rotated_to: None,
        expires_in: None,
    }
}

fn is_json_object(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
        && body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{')
}

/// How a cross-instance waiter proceeds, decided by [`next_poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Look again after this long.
    After(Duration),
    /// The wait timeout is spent: give up (nothing is sent).
    GiveUp,
}

/// The first delay of a cross-instance waiter.
pub const FIRST_POLL_DELAY: Duration = Duration::from_millis(5);
/// The longest delay between two looks of a cross-instance waiter.
pub const MAX_POLL_DELAY: Duration = Duration::from_millis(100);

/// The backoff of a cross-instance waiter: `delay` is the current step (doubled for the next
/// call, up to [`MAX_POLL_DELAY`]), `lock_expires_in` how long the lock it waits for still
/// lives (when known: the waiter wakes when a crashed holder's lock expires, to take over
/// promptly), `waited` how long it has waited and `timeout` how long it may.
pub fn next_poll(
    delay: &mut Duration,
    lock_expires_in: Option<Duration>,
    waited: Duration,
    timeout: Duration,
) -> Poll {
    let Some(left) = timeout.checked_sub(waited).filter(|l| !l.is_zero()) else {
        return Poll::GiveUp;
    };
    let mut d = *delay;
    *delay = delay.saturating_mul(2).min(MAX_POLL_DELAY);
    if let Some(expires_in) = lock_expires_in.filter(|e| !e.is_zero()) {
        d = d.min(expires_in.saturating_add(Duration::from_millis(1)));
    }
    Poll::After(d.min(left))
}

/// What one instance publishes for the others, bound to the key or lane it belongs to (the
/// adapter encrypts the bytes; [`Publication::decode`] refuses a value bound to another).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Publication {
    /// The answer to a request (any status), with when it was received (Unix seconds).
    Answer {
        /// The status code.
        status: u16,
        /// The `Content-Type` header, if any.
        content_type: Option<String>,
        /// The body.
        body: Vec<u8>,
        /// When it was received.
        received_at: UnixTime,
    },
    /// No answer arrived: a transport failure of this kind, with a message safe to log.
    Failure {
        /// What failed.
        kind: FailureKind,
        /// A message without URLs, bodies or tokens.
        message: String,
    },
    /// The lane's refresh token was rotated to this one.
    Rotation(Secret),
}

/// The kind of transport failure a [`Publication::Failure`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The request timed out.
    Timeout,
    /// No connection could be made.
    Connect,
    /// The response body was too large.
    TooLarge,
    /// Any other I/O failure.
    Io,
}

#[derive(Serialize, Deserialize)]
struct Wire {
    /// The key or lane hash the value is bound to.
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ct: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<FailureKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rt: Option<String>,
}

impl Publication {
    /// The bytes to publish, bound to `binding` (the hash of the key or lane).
    pub fn encode(&self, binding: &str) -> Vec<u8> {
        use base64::Engine;
        let mut wire = Wire {
            k: binding.to_owned(),
            s: None,
            ct: None,
            b: None,
            at: None,
            e: None,
            m: None,
            rt: None,
        };
        match self {
            Publication::Answer {
                status,
                content_type,
                body,
                received_at,
            } => {
                wire.s = Some(*status);
                wire.ct.clone_from(content_type);
                wire.b = Some(base64::engine::general_purpose::STANDARD.encode(body));
                wire.at = Some(received_at.as_secs());
            }
            Publication::Failure { kind, message } => {
                wire.e = Some(*kind);
                wire.m = Some(message.clone());
            }
            Publication::Rotation(to) => wire.rt = Some(to.expose().to_owned()),
        }
        // Serialising plain strings and numbers cannot fail.
        serde_json::to_vec(&wire).unwrap_or_default()
    }

    /// The publication in `bytes` if it is bound to `binding` and well formed; `None` for
    /// another key's or lane's value, or garbage.
    pub fn decode(bytes: &[u8], binding: &str) -> Option<Publication> {
        use base64::Engine;
        let wire: Wire = serde_json::from_slice(bytes).ok()?;
        if wire.k != binding {
            return None;
        }
        if let Some(rt) = wire.rt {
            return Some(Publication::Rotation(Secret::new(rt)));
        }
        if let Some(kind) = wire.e {
            return Some(Publication::Failure {
                kind,
                message: wire.m.unwrap_or_default(),
            });
        }
        let status = wire.s.filter(|s| (100..1000).contains(s))?;
        let body = base64::engine::general_purpose::STANDARD
            .decode(wire.b?)
            .ok()?;
        Some(Publication::Answer {
            status,
            content_type: wire.ct,
            body,
            received_at: UnixTime::from_secs(wire.at?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> http::Response<Vec<u8>> {
        let mut r = http::Response::new(body.as_bytes().to_vec());
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        r
    }

    fn coalesce(remember: bool, lane: Option<&Secret>) -> Coalesce {
        Coalesce {
            key: "k".into(),
            remember,
            lane: lane.map(refresh_token_hash),
        }
    }

    #[test]
    fn only_a_new_refresh_token_in_a_successful_answer_is_a_rotation() {
        let old = Secret::new("rt-old");
        let c = coalesce(true, Some(&old));
        let rotated = settle(
            &c,
            &response(200, r#"{"access_token":"at","refresh_token":"rt-new"}"#),
        );
        assert_eq!(rotated.share, Share::ForGraceWindow);
        assert_eq!(rotated.rotated_to.unwrap().expose(), "rt-new");
        for (status, body) in [
            (200, r#"{"access_token":"at","refresh_token":"rt-old"}"#),
            (200, r#"{"access_token":"at"}"#),
            (403, r#"{"error":"invalid_grant","refresh_token":"rt-new"}"#),
        ] {
            assert!(settle(&c, &response(status, body)).rotated_to.is_none());
        }
    }

    #[test]
    fn malformed_successes_are_failures() {
        let c = coalesce(true, None);
        for body in ["", "{\"access_token\": ", "[]", "null"] {
            assert_eq!(settle(&c, &response(200, body)).share, Share::FailureOnly);
        }
        assert_eq!(
            settle(&coalesce(false, None), &response(200, "{}")).share,
            Share::WaitersOnly
        );
    }

    #[test]
    fn publications_round_trip_only_for_their_binding() {
        for p in [
            Publication::Answer {
                status: 200,
                content_type: Some("application/json".into()),
                body: b"{\"a\":1}".to_vec(),
                received_at: UnixTime::from_secs(7),
            },
            Publication::Failure {
                kind: FailureKind::Timeout,
                message: "timed out".into(),
            },
            Publication::Rotation(Secret::new("rt-2")),
        ] {
            let bytes = p.encode("h1");
            let back = Publication::decode(&bytes, "h1").unwrap();
            match (&p, &back) {
                (Publication::Rotation(a), Publication::Rotation(b)) => {
                    assert_eq!(a.expose(), b.expose())
                }
                _ => assert_eq!(p, back),
            }
            assert!(Publication::decode(&bytes, "h2").is_none());
        }
        assert!(Publication::decode(b"garbage", "h1").is_none());
    }

    #[test]
    fn polling_backs_off_wakes_at_lock_expiry_and_gives_up() {
        let mut d = FIRST_POLL_DELAY;
        let t = Duration::from_secs(1);
        assert_eq!(
            next_poll(&mut d, None, Duration::ZERO, t),
            Poll::After(FIRST_POLL_DELAY)
        );
        assert_eq!(d, FIRST_POLL_DELAY * 2);
        assert_eq!(
            next_poll(&mut d, Some(Duration::from_millis(2)), Duration::ZERO, t),
            Poll::After(Duration::from_millis(3))
        );
        assert_eq!(next_poll(&mut d, None, t, t), Poll::GiveUp);
        assert_eq!(
            next_poll(&mut d, None, Duration::from_millis(999), t),
            Poll::After(Duration::from_millis(1))
        );
    }
}
