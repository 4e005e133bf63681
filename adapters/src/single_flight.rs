//! Single-flight HTTP requests, shared by the blocking and the async adapter.
//!
//! The core marks a request it is willing to share with a [`Coalesce`] key (a refresh: the
//! hash of the refresh token, the audience and the scope; discovery: the domain). For such a
//! request the driver asks [`SingleFlight::acquire`]:
//!
//! - a response **remembered** for the key within the rotation grace window is handed back
//!   (with the time it was received), so a request still carrying a rotated-away refresh token
//!   gets the rotated tokens instead of replaying the old token and tripping reuse detection;
//! - else, when a request with the key is **in flight**, the caller waits for it and gets a
//!   copy of the same response;
//! - else the caller becomes the **leader**: it sends the request and publishes the result
//!   with [`Leader::complete`]. A 2xx answer to a request marked `remember` is remembered for
//!   the grace window (when its body is a JSON object); failures (transport errors, non-2xx) are shared with the current
//!   waiters but never remembered, so the next call retries.
//!
//! Requests that spend one refresh token share a **lane** (its hash, set by the core): while
//! a request of the lane is in flight, the others wait, whatever their key (another audience
//! or scope); once one rotated the refresh token, later requests of the lane within the grace
//! window get [`Acquire::Rotated`] — the new refresh token — instead of sending the old one.
//!
//! A leader that never completes — it panicked, or its future was dropped — marks its flight
//! abandoned when the [`Leader`] guard drops: the waiters wake, and one of them takes over.
//! Nobody hangs.
//!
//! [`Coalesce`]: auth0_server_protocol::effect::Coalesce

use crate::error::TransportError;
use auth0_server_protocol::Secret;
use auth0_server_protocol::token_endpoint::rotated_refresh_token;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// Most responses remembered at once; beyond this the oldest are forgotten first.
pub(crate) const MAX_REMEMBERED: usize = 10_000;

/// A response shared between operations, with the time (Unix seconds) it was received.
#[derive(Clone)]
pub(crate) struct SharedResponse {
    status: http::StatusCode,
    version: http::Version,
    headers: http::HeaderMap,
    body: Vec<u8>,
    received_at: u64,
}

impl SharedResponse {
    pub(crate) fn new(response: http::Response<Vec<u8>>, received_at: u64) -> Self {
        let (parts, body) = response.into_parts();
        SharedResponse {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body,
            received_at,
        }
    }

    /// Whether this is a 2xx answer whose body is a JSON object: only such answers are
    /// remembered. A 200 with an empty or truncated body (a broken proxy) is a failure the
    /// core rejects, and must not be replayed to later callers for the whole grace window.
    fn is_well_formed_success(&self) -> bool {
        self.status.is_success()
            && serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&self.body)
                .is_ok()
    }

    /// The new refresh token of a successful answer that rotated it.
    fn rotated_refresh_token(&self) -> Option<Secret> {
        if !self.status.is_success() {
            return None;
        }
        let mut response = http::Response::new(self.body.clone());
        *response.status_mut() = self.status;
        rotated_refresh_token(&response)
    }

    /// The response and the time it was received.
    pub(crate) fn into_response(self) -> (http::Response<Vec<u8>>, u64) {
        let mut response = http::Response::new(self.body);
        *response.status_mut() = self.status;
        *response.version_mut() = self.version;
        *response.headers_mut() = self.headers;
        (response, self.received_at)
    }
}

/// What a flight ends with.
pub(crate) type FlightResult = Result<SharedResponse, TransportError>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking leader must not poison single-flight for everyone else; the guarded data is
    // always left consistent (plain inserts and removals).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The in-flight and remembered requests of one client.
pub(crate) struct SingleFlight {
    inner: Mutex<Inner>,
    /// How long (seconds) a remembered response is served; 0 disables remembering.
    grace: u64,
}

#[derive(Default)]
struct Inner {
    in_flight: HashMap<String, Arc<Flight>>,
    remembered: HashMap<String, SharedResponse>,
    /// Lane → the flight currently spending that refresh token.
    lanes: HashMap<String, Arc<Flight>>,
    /// Lane → the refresh token it was rotated to, and when.
    rotations: HashMap<String, (Secret, u64)>,
}

/// One request in flight, observed by its waiters.
pub(crate) struct Flight {
    state: Mutex<FlightState>,
    done: Condvar,
}

enum FlightState {
    Pending(Vec<Waker>),
    Done(FlightResult),
    Abandoned,
}

/// What [`SingleFlight::acquire`] decided.
pub(crate) enum Acquire<'a> {
    /// A remembered response within the grace window.
    Remembered(SharedResponse),
    /// Someone else is sending the request: wait for it.
    Wait(Waiter),
    /// Another request spends the same refresh token: wait for it, then acquire again.
    WaitLane(Waiter),
    /// The lane's refresh token was rotated within the grace window: spend this one instead.
    Rotated(Secret),
    /// Send the request and complete the flight.
    Lead(Leader<'a>),
}

impl SingleFlight {
    /// Single-flight with a rotation grace window of `grace` seconds.
    pub(crate) fn new(grace: u64) -> Self {
        SingleFlight {
            inner: Mutex::new(Inner::default()),
            grace,
        }
    }

    fn fresh(&self, r: &SharedResponse, now: u64) -> bool {
        // A clock that went backwards keeps the entry (it cannot be older than it was).
        now.saturating_sub(r.received_at) < self.grace
    }

    /// Decides how the request with `key` is obtained, at `now` (Unix seconds).
    #[cfg(test)]
    pub(crate) fn acquire(&self, key: &str, remember: bool, now: u64) -> Acquire<'_> {
        self.acquire_on(key, remember, None, now)
    }

    /// Decides what a request with `key` (on `lane`, when it spends a refresh token) does.
    pub(crate) fn acquire_on(
        &self,
        key: &str,
        remember: bool,
        lane: Option<&str>,
        now: u64,
    ) -> Acquire<'_> {
        let mut inner = lock(&self.inner);
        if let Some(r) = inner.remembered.get(key) {
            if self.fresh(r, now) {
                return Acquire::Remembered(r.clone());
            }
            inner.remembered.remove(key);
        }
        if let Some(flight) = inner.in_flight.get(key) {
            return Acquire::Wait(Waiter {
                flight: flight.clone(),
            });
        }
        if let Some(lane) = lane {
            if let Some((rotated_to, at)) = inner.rotations.get(lane) {
                if now.saturating_sub(*at) < self.grace {
                    return Acquire::Rotated(rotated_to.clone());
                }
                inner.rotations.remove(lane);
            }
            if let Some(flight) = inner.lanes.get(lane) {
                return Acquire::WaitLane(Waiter {
                    flight: flight.clone(),
                });
            }
        }
        let flight = Arc::new(Flight {
            state: Mutex::new(FlightState::Pending(Vec::new())),
            done: Condvar::new(),
        });
        inner.in_flight.insert(key.to_owned(), flight.clone());
        if let Some(lane) = lane {
            inner.lanes.insert(lane.to_owned(), flight.clone());
        }
        Acquire::Lead(Leader {
            owner: self,
            key: key.to_owned(),
            lane: lane.map(str::to_owned),
            remember,
            flight,
            finished: false,
        })
    }

    /// How many responses are remembered (for tests).
    #[cfg(test)]
    fn remembered_len(&self) -> usize {
        lock(&self.inner).remembered.len()
    }

    fn finish(&self, leader: &Leader<'_>, result: Option<FlightResult>) {
        {
            let mut inner = lock(&self.inner);
            if inner
                .in_flight
                .get(&leader.key)
                .is_some_and(|f| Arc::ptr_eq(f, &leader.flight))
            {
                inner.in_flight.remove(&leader.key);
            }
            if let Some(lane) = &leader.lane {
                if inner
                    .lanes
                    .get(lane)
                    .is_some_and(|f| Arc::ptr_eq(f, &leader.flight))
                {
                    inner.lanes.remove(lane);
                }
                // Record a rotation before waking anyone: a request of the lane that wakes
                // must find the new refresh token, never send the spent one.
                if let (Some(Ok(r)), true) = (&result, self.grace > 0) {
                    if let Some(rotated_to) = r.rotated_refresh_token() {
                        let now = r.received_at;
                        inner
                            .rotations
                            .retain(|_, (_, at)| now.saturating_sub(*at) < self.grace);
                        if inner.rotations.len() < MAX_REMEMBERED {
                            inner.rotations.insert(lane.clone(), (rotated_to, now));
                        }
                    }
                }
            }
            // Remember before the flight disappears from `in_flight` is observable: both
            // happen under this one lock, so a newcomer sees one or the other.
            if let Some(Ok(r)) = &result {
                if leader.remember && self.grace > 0 && r.is_well_formed_success() {
                    let now = r.received_at;
                    inner.remembered.retain(|_, e| self.fresh(e, now));
                    while inner.remembered.len() >= MAX_REMEMBERED {
                        let oldest = inner
                            .remembered
                            .iter()
                            .min_by_key(|(_, e)| e.received_at)
                            .map(|(k, _)| k.clone());
                        match oldest {
                            Some(k) => inner.remembered.remove(&k),
                            None => break,
                        };
                    }
                    inner.remembered.insert(leader.key.clone(), r.clone());
                }
            }
        }
        let wakers = {
            let mut state = lock(&leader.flight.state);
            let next = match result {
                Some(r) => FlightState::Done(r),
                None => FlightState::Abandoned,
            };
            match std::mem::replace(&mut *state, next) {
                FlightState::Pending(wakers) => wakers,
                _ => Vec::new(),
            }
        };
        leader.flight.done.notify_all();
        for w in wakers {
            w.wake();
        }
    }
}

/// The caller that sends the request. Dropping it without [`Leader::complete`] (panic,
/// cancelled future) abandons the flight: its waiters wake and retry.
pub(crate) struct Leader<'a> {
    owner: &'a SingleFlight,
    key: String,
    lane: Option<String>,
    remember: bool,
    flight: Arc<Flight>,
    finished: bool,
}

impl Leader<'_> {
    /// Publishes the result to the waiters (and remembers a 2xx answer when asked to).
    pub(crate) fn complete(mut self, result: FlightResult) {
        self.finished = true;
        self.owner.finish(&self, Some(result));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.owner.finish(self, None);
        }
    }
}

/// A caller waiting for another's request.
pub(crate) struct Waiter {
    flight: Arc<Flight>,
}

impl Waiter {
    /// Blocks until the flight ends: its result, or `None` when the leader gave up (retry).
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    pub(crate) fn wait_blocking(self) -> Option<FlightResult> {
        let mut state = lock(&self.flight.state);
        loop {
            match &*state {
                FlightState::Pending(_) => {
                    state = self
                        .flight
                        .done
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
                FlightState::Done(r) => return Some(r.clone()),
                FlightState::Abandoned => return None,
            }
        }
    }

    /// Waits asynchronously (runtime-agnostic): the result, or `None` when the leader gave up.
    pub(crate) fn wait_async(self) -> WaitFuture {
        WaitFuture {
            flight: self.flight,
        }
    }
}

/// The future of [`Waiter::wait_async`].
pub(crate) struct WaitFuture {
    flight: Arc<Flight>,
}

impl Future for WaitFuture {
    type Output = Option<FlightResult>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = lock(&self.flight.state);
        match &mut *state {
            FlightState::Pending(wakers) => {
                if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
            FlightState::Done(r) => Poll::Ready(Some(r.clone())),
            FlightState::Abandoned => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TransportErrorKind;

    fn ok(status: u16, at: u64) -> FlightResult {
        body(status, b"{}", at)
    }

    fn body(status: u16, body: &[u8], at: u64) -> FlightResult {
        let mut r = http::Response::new(body.to_vec());
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        Ok(SharedResponse::new(r, at))
    }

    #[test]
    fn second_caller_waits_and_gets_the_same_response() {
        let sf = SingleFlight::new(60);
        let Acquire::Lead(leader) = sf.acquire("k", true, 100) else {
            panic!("first caller leads")
        };
        let Acquire::Wait(waiter) = sf.acquire("k", true, 100) else {
            panic!("second caller waits")
        };
        std::thread::scope(|s| {
            let h = s.spawn(move || waiter.wait_blocking());
            leader.complete(ok(200, 100));
            let got = h.join().unwrap().unwrap().unwrap();
            assert_eq!(got.into_response().1, 100);
        });
        // Remembered within the grace window, forgotten after it.
        assert!(matches!(sf.acquire("k", true, 159), Acquire::Remembered(_)));
        assert!(matches!(sf.acquire("k", true, 160), Acquire::Lead(_)));
    }

    #[test]
    fn failures_and_unmarked_requests_are_not_remembered() {
        let sf = SingleFlight::new(60);
        for (key, remember, result) in [
            ("a", true, ok(400, 1)),
            ("b", false, ok(200, 1)),
            ("d", true, body(200, b"", 1)),
            ("e", true, body(200, br#"{"access_token": "#, 1)),
            (
                "c",
                true,
                Err(TransportError::new(TransportErrorKind::Timeout, "t")),
            ),
        ] {
            let Acquire::Lead(l) = sf.acquire(key, remember, 1) else {
                panic!()
            };
            l.complete(result);
            assert!(matches!(sf.acquire(key, remember, 1), Acquire::Lead(_)));
        }
        assert_eq!(sf.remembered_len(), 0);
    }

    #[test]
    fn abandoned_flight_wakes_waiters_who_take_over() {
        let sf = SingleFlight::new(60);
        let leader = match sf.acquire("k", true, 1) {
            Acquire::Lead(l) => l,
            _ => panic!(),
        };
        let Acquire::Wait(waiter) = sf.acquire("k", true, 1) else {
            panic!()
        };
        drop(leader);
        assert!(waiter.wait_blocking().is_none());
        assert!(matches!(sf.acquire("k", true, 1), Acquire::Lead(_)));
    }

    #[test]
    fn zero_grace_remembers_nothing() {
        let sf = SingleFlight::new(0);
        let Acquire::Lead(l) = sf.acquire("k", true, 1) else {
            panic!()
        };
        l.complete(ok(200, 1));
        assert_eq!(sf.remembered_len(), 0);
    }

    #[test]
    fn a_lane_runs_one_request_at_a_time_then_hands_out_the_rotated_token() {
        let sf = SingleFlight::new(60);
        let Acquire::Lead(first) = sf.acquire_on("refresh rt aud-a", true, Some("rt"), 1) else {
            panic!()
        };
        // Another audience on the same refresh token waits for the lane.
        let Acquire::WaitLane(waiter) = sf.acquire_on("refresh rt aud-b", true, Some("rt"), 1)
        else {
            panic!()
        };
        // Another refresh token is independent.
        assert!(matches!(
            sf.acquire_on("refresh other aud-a", true, Some("other"), 1),
            Acquire::Lead(_)
        ));
        first.complete(body(
            200,
            br#"{"access_token":"at","refresh_token":"rt-2"}"#,
            1,
        ));
        assert!(waiter.wait_blocking().is_some());
        let Acquire::Rotated(rotated_to) = sf.acquire_on("refresh rt aud-b", true, Some("rt"), 2)
        else {
            panic!()
        };
        assert_eq!(rotated_to.expose(), "rt-2");
        // Past the grace window the rotation is forgotten.
        assert!(matches!(
            sf.acquire_on("refresh rt aud-b", true, Some("rt"), 61),
            Acquire::Lead(_)
        ));
    }

    #[test]
    fn a_lane_frees_without_a_rotation_when_the_answer_did_not_rotate_or_failed() {
        let sf = SingleFlight::new(60);
        for (key, result) in [
            ("a", body(200, br#"{"access_token":"at"}"#, 1)),
            ("b", ok(500, 1)),
        ] {
            let Acquire::Lead(l) = sf.acquire_on(key, true, Some("rt"), 1) else {
                panic!()
            };
            l.complete(result);
            let Acquire::Lead(next) = sf.acquire_on("other", true, Some("rt"), 1) else {
                panic!("the lane is free and nothing rotated")
            };
            drop(next);
        }
    }
}
