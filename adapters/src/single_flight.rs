//! Single-flight HTTP requests, shared by the blocking and the async client.
//!
//! The core marks a request it is willing to share with a [`Coalesce`] (a refresh: the hash
//! of the refresh token, the audience and the scope; discovery: the domain). This module keeps
//! the maps — requests in flight, answers remembered for the rotation grace window, lanes and
//! their rotations (followed for the session's lifetime, [`flight::ROTATION_LIFETIME`]) — and
//! every decision about them is the core's ([`flight::acquire`],
//! [`flight::settle`]): no OAuth body is read here.
//!
//! **A request in flight belongs to the flight, not to its caller.** The leader installs the
//! future that obtains the answer in the [`Flight`]; whoever waits for the flight polls that
//! future (the leader too, as the first waiter). When the leader's own future is dropped — a
//! browser closed the tab, a timeout fired — after the request was sent, a waiting caller
//! continues the same request instead of sending a new one, so a refresh token that the
//! authorization server already rotated is never replayed. A later caller of the same key
//! or lane finds the flight and continues it too. With a spawn hook (async client), the
//! flight is also handed to the application's runtime, so it completes and records its
//! outcome even when nobody waits any more.
//!
//! A flight whose future panics is abandoned: the waiters wake and one of them leads anew.
//!
//! [`Coalesce`]: auth0_server_protocol::effect::Coalesce

use crate::error::{Error, TransportError};
use auth0_server_protocol::Secret;
use auth0_server_protocol::effect::Coalesce;
use auth0_server_protocol::flight::{self, Acquire, FlightView, Share};
use auth0_server_protocol::time::UnixTime;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
// Under `--cfg shuttle` the permutation tests (single_flight_shuttle.rs) schedule every lock.
#[cfg(shuttle)]
pub(crate) use shuttle::sync::Mutex;
#[cfg(shuttle)]
use shuttle::sync::{Arc, MutexGuard};
#[cfg(not(shuttle))]
pub(crate) use std::sync::Mutex;
#[cfg(shuttle)]
use std::sync::PoisonError;
#[cfg(not(shuttle))]
use std::sync::{Arc, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Most responses (and rotations) remembered at once; beyond this the oldest are forgotten.
pub(crate) const MAX_REMEMBERED: usize = 10_000;

/// A response shared between operations, with the time (Unix seconds) it was received.
#[derive(Clone, Debug)]
pub(crate) struct SharedResponse {
    response: http::Response<Vec<u8>>,
    received_at: UnixTime,
}

impl SharedResponse {
    pub(crate) fn new(response: http::Response<Vec<u8>>, received_at: UnixTime) -> Self {
        SharedResponse {
            response,
            received_at,
        }
    }

    /// The response's status code.
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn status(&self) -> u16 {
        self.response.status().as_u16()
    }

    /// The response and the time it was received.
    pub(crate) fn into_response(self) -> (http::Response<Vec<u8>>, UnixTime) {
        (self.response, self.received_at)
    }
}

/// What a request that reached the network ended with.
pub(crate) type FlightResult = Result<SharedResponse, TransportError>;

/// How a flight ended.
#[derive(Clone, Debug)]
pub(crate) enum Settled {
    /// The answer (any status), or the transport failure.
    Answer(FlightResult),
    /// Nothing was sent: another instance spent the lane's refresh token and it was rotated
    /// to this one (the cross-instance coordinator said so).
    Rotated(Secret),
    /// Nothing was sent: the cross-instance coordinator failed. The caller that led the
    /// flight reports the error (taken once); the others try again themselves.
    CoordinatorFailed(Arc<Mutex<Option<Error>>>),
}

/// The future that obtains a flight's outcome. It owns everything it needs (`'static`), so
/// it outlives any one caller.
pub(crate) type FlightFuture = Pin<Box<dyn Future<Output = Settled> + Send + 'static>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking poll must not poison single-flight for everyone else; the guarded data is
    // always left consistent (plain inserts and removals).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The in-flight and remembered requests of one client.
pub(crate) struct SingleFlight {
    inner: Mutex<Inner>,
    /// How long a remembered response (or a rotation) is served; zero disables remembering.
    grace: Duration,
}

#[derive(Default)]
struct Inner {
    in_flight: HashMap<String, Arc<Flight>>,
    remembered: HashMap<String, Remembered>,
    /// Lane → the flight currently spending that refresh token.
    lanes: HashMap<String, Arc<Flight>>,
    /// Lane → the refresh token it was rotated to, and when.
    rotations: HashMap<String, Rotation>,
}

struct Rotation {
    to: Secret,
    at: UnixTime,
    /// Kept after its session could not be saved: followed even when remembering is
    /// disabled (a zero grace window).
    kept: bool,
}

/// An answer remembered for its key, and until when it may be served.
struct Remembered {
    response: SharedResponse,
    until: UnixTime,
}

/// One request in flight.
pub(crate) struct Flight {
    coalesce: Coalesce,
    state: Mutex<FlightState>,
}

impl Flight {
    /// How the request in flight was marked (its key and lane).
    pub(crate) fn request(&self) -> &Coalesce {
        &self.coalesce
    }
}

enum FlightState {
    Pending {
        /// The future that obtains the answer; `None` while a waiter polls it (or before the
        /// leader installed it).
        request: Option<FlightFuture>,
        /// Everyone waiting; all are woken when the request makes progress, so that one of
        /// them polls it even when the caller that last polled it has gone.
        wakers: Vec<Waker>,
        /// The request woke while a waiter was polling it (its slot empty): the waiters that
        /// looked meanwhile found nothing to poll, so when the request goes back into its slot
        /// they are woken again — else, if the waiter that polled it goes away, nobody would
        /// ever poll it again (a lost wakeup).
        woken_while_out: bool,
    },
    Done(Settled),
    Abandoned,
}

/// What [`SingleFlight::acquire`] decided.
pub(crate) enum Acquired {
    /// A remembered response within the grace window.
    Remembered(SharedResponse),
    /// Someone else's request with the same key is in flight: wait for it (and help it along).
    Wait(Arc<Flight>),
    /// Another request spends the same refresh token: wait for it, then acquire again.
    WaitLane(Arc<Flight>),
    /// The lane's refresh token was rotated within the grace window: spend this one instead.
    Rotated(Secret),
    /// This caller leads: install the request with [`SingleFlight::start`], then wait.
    Lead(Arc<Flight>),
}

impl SingleFlight {
    /// Single-flight with a rotation grace window.
    pub(crate) fn new(grace: Duration) -> Self {
        SingleFlight {
            inner: Mutex::new(Inner::default()),
            grace,
        }
    }

    /// Decides how the request marked `coalesce` is obtained at `now` (Unix seconds).
    pub(crate) fn acquire(&self, coalesce: &Coalesce, now: UnixTime) -> Acquired {
        let mut inner = lock(&self.inner);
        let lane = coalesce.lane.as_deref();
        let view = FlightView {
            remembered_until: inner.remembered.get(&coalesce.key).map(|r| r.until),
            in_flight: inner.in_flight.contains_key(&coalesce.key),
            rotated_at: lane.and_then(|l| inner.rotations.get(l)).map(|r| r.at),
            rotation_kept: lane
                .and_then(|l| inner.rotations.get(l))
                .is_some_and(|r| r.kept),
            lane_busy: lane.is_some_and(|l| inner.lanes.contains_key(l)),
        };
        let decision = flight::acquire(view, now, self.grace);
        if decision.forget_remembered {
            inner.remembered.remove(&coalesce.key);
        }
        if let (true, Some(lane)) = (decision.forget_rotation, lane) {
            inner.rotations.remove(lane);
        }
        match decision.action {
            Acquire::Remembered => match inner.remembered.get(&coalesce.key) {
                Some(r) => Acquired::Remembered(r.response.clone()),
                None => new_flight(&mut inner, coalesce),
            },
            Acquire::Wait => match inner.in_flight.get(&coalesce.key) {
                Some(f) => Acquired::Wait(f.clone()),
                None => new_flight(&mut inner, coalesce),
            },
            Acquire::Rotated => match lane.and_then(|l| inner.rotations.get(l)) {
                Some(r) => Acquired::Rotated(r.to.clone()),
                None => new_flight(&mut inner, coalesce),
            },
            Acquire::WaitLane => match lane.and_then(|l| inner.lanes.get(l)) {
                Some(f) => Acquired::WaitLane(f.clone()),
                None => new_flight(&mut inner, coalesce),
            },
            Acquire::Lead => new_flight(&mut inner, coalesce),
        }
    }

    /// Installs the leader's request in its flight. Call it right after
    /// [`Acquired::Lead`], with no await in between.
    pub(crate) fn start(&self, flight: &Arc<Flight>, request: FlightFuture) {
        let wakers = match &mut *lock(&flight.state) {
            FlightState::Pending {
                request: slot,
                wakers,
                ..
            } => {
                *slot = Some(request);
                wakers.clone()
            }
            _ => Vec::new(),
        };
        // Whoever started waiting before the request was installed may poll it now.
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Waits for `flight` to settle, polling its request when nobody else is: `None` when it
    /// was abandoned (its request panicked).
    pub(crate) fn wait(self: &Arc<Self>, flight: Arc<Flight>) -> WaitFuture {
        WaitFuture {
            owner: self.clone(),
            flight,
        }
    }

    /// How many responses are remembered (for tests).
    #[cfg(test)]
    fn remembered_len(&self) -> usize {
        lock(&self.inner).remembered.len()
    }

    /// Records what the flight's outcome means for later requests (per the core's
    /// [`flight::settle`]), removes the flight and wakes its waiters.
    fn finish(&self, flight: &Arc<Flight>, settled: &Settled) {
        {
            let mut inner = lock(&self.inner);
            inner.release(flight);
            if let (Settled::Answer(Ok(r)), false) = (settled, self.grace.is_zero()) {
                let decision = flight::settle(&flight.coalesce, &r.response);
                let now = r.received_at;
                // Record a rotation before waking anyone: a request of the lane that wakes must
                // find the new refresh token, never send the spent one.
                if let (Some(to), Some(lane)) = (decision.rotated_to, &flight.coalesce.lane) {
                    let kept = inner.rotations.get(lane).is_some_and(|r| r.kept);
                    inner.record_rotation(lane.clone(), Rotation { to, at: now, kept }, self.grace);
                }
                if decision.share == Share::ForGraceWindow {
                    let until = flight::remember_until(now, self.grace, decision.expires_in);
                    inner.remember(&flight.coalesce.key, r.clone(), until);
                }
            }
        }
        let wakers = replace_state(flight, FlightState::Done(settled.clone()));
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Keeps the rotation of each of `lanes` to `rotated_to` for
    /// [`ROTATION_LIFETIME`](flight::ROTATION_LIFETIME) even when remembering is disabled:
    /// the session holding the replaced token could not be saved, so requests that still
    /// carry it must spend the new one.
    pub(crate) fn keep_rotation(&self, lanes: Vec<String>, rotated_to: Secret, now: UnixTime) {
        let mut inner = lock(&self.inner);
        for lane in lanes {
            let rotation = Rotation {
                to: rotated_to.clone(),
                at: now,
                kept: true,
            };
            inner.record_rotation(lane, rotation, self.grace);
        }
    }

    /// Abandons a flight whose request panicked: nothing is recorded, waiters wake and retry.
    fn abandon(&self, flight: &Arc<Flight>) {
        lock(&self.inner).release(flight);
        replace_state(flight, FlightState::Abandoned)
            .into_iter()
            .for_each(Waker::wake);
    }
}

/// Registers a new flight for `coalesce`, led by the caller.
fn new_flight(inner: &mut Inner, coalesce: &Coalesce) -> Acquired {
    let flight = Arc::new(Flight {
        coalesce: coalesce.clone(),
        state: Mutex::new(FlightState::Pending {
            request: None,
            wakers: Vec::new(),
            woken_while_out: false,
        }),
    });
    inner.in_flight.insert(coalesce.key.clone(), flight.clone());
    if let Some(lane) = &coalesce.lane {
        inner.lanes.insert(lane.clone(), flight.clone());
    }
    Acquired::Lead(flight)
}

fn replace_state(flight: &Flight, next: FlightState) -> Vec<Waker> {
    match std::mem::replace(&mut *lock(&flight.state), next) {
        FlightState::Pending { wakers, .. } => wakers,
        _ => Vec::new(),
    }
}

impl Inner {
    fn release(&mut self, flight: &Arc<Flight>) {
        let key = &flight.coalesce.key;
        if self
            .in_flight
            .get(key)
            .is_some_and(|f| Arc::ptr_eq(f, flight))
        {
            self.in_flight.remove(key);
        }
        if let Some(lane) = &flight.coalesce.lane {
            if self.lanes.get(lane).is_some_and(|f| Arc::ptr_eq(f, flight)) {
                self.lanes.remove(lane);
            }
        }
    }

    /// Records a lane's rotation. Rotations are followed for days
    /// ([`flight::rotation_followed`]) and bounded by [`MAX_REMEMBERED`]: when full, those no
    /// longer followed are dropped, then the oldest.
    fn record_rotation(&mut self, lane: String, rotation: Rotation, grace: Duration) {
        if self.rotations.len() >= MAX_REMEMBERED && !self.rotations.contains_key(&lane) {
            let now = rotation.at;
            self.rotations
                .retain(|_, r| flight::rotation_followed(r.kept, r.at, now, grace));
            while self.rotations.len() >= MAX_REMEMBERED {
                let oldest = self
                    .rotations
                    .iter()
                    .min_by_key(|(_, r)| r.at)
                    .map(|(k, _)| k.clone());
                match oldest {
                    Some(k) => self.rotations.remove(&k),
                    None => break,
                };
            }
        }
        self.rotations.insert(lane, rotation);
    }

    fn remember(&mut self, key: &str, response: SharedResponse, until: UnixTime) {
        let now = response.received_at;
        self.remembered.retain(|_, e| now < e.until);
        while self.remembered.len() >= MAX_REMEMBERED {
            let soonest = self
                .remembered
                .iter()
                .min_by_key(|(_, e)| e.until)
                .map(|(k, _)| k.clone());
            match soonest {
                Some(k) => self.remembered.remove(&k),
                None => break,
            };
        }
        self.remembered
            .insert(key.to_owned(), Remembered { response, until });
    }
}

/// Wakes every waiter of a flight: the waker its request is polled with, so that whichever
/// waiter runs next continues it.
struct FanOut(Arc<Flight>);

impl Wake for FanOut {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let wakers = match &mut *lock(&self.0.state) {
            FlightState::Pending {
                wakers,
                request,
                woken_while_out,
            } => {
                *woken_while_out |= request.is_none();
                wakers.clone()
            }
            _ => Vec::new(),
        };
        wakers.into_iter().for_each(Waker::wake);
    }
}

/// Abandons the flight if polling its request unwinds.
struct PollGuard<'a> {
    owner: &'a SingleFlight,
    flight: &'a Arc<Flight>,
    armed: bool,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.owner.abandon(self.flight);
        }
    }
}

/// The future of [`SingleFlight::wait`] (runtime-agnostic; the blocking client parks its
/// thread on it).
pub(crate) struct WaitFuture {
    owner: Arc<SingleFlight>,
    flight: Arc<Flight>,
}

impl Future for WaitFuture {
    type Output = Option<Settled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut request = {
            let mut state = lock(&this.flight.state);
            match &mut *state {
                FlightState::Done(s) => return Poll::Ready(Some(s.clone())),
                FlightState::Abandoned => return Poll::Ready(None),
                FlightState::Pending {
                    request,
                    wakers,
                    woken_while_out,
                } => {
                    if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
                        wakers.push(cx.waker().clone());
                    }
                    match request.take() {
                        Some(r) => {
                            *woken_while_out = false;
                            r
                        }
                        // Another waiter is polling it: it wakes everyone on progress.
                        None => return Poll::Pending,
                    }
                }
            }
        };
        let mut guard = PollGuard {
            owner: &this.owner,
            flight: &this.flight,
            armed: true,
        };
        let waker = Waker::from(Arc::new(FanOut(this.flight.clone())));
        let polled = request.as_mut().poll(&mut Context::from_waker(&waker));
        guard.armed = false;
        match polled {
            Poll::Ready(settled) => {
                this.owner.finish(&this.flight, &settled);
                Poll::Ready(Some(settled))
            }
            Poll::Pending => {
                let rewake = match &mut *lock(&this.flight.state) {
                    FlightState::Pending {
                        request: slot,
                        wakers,
                        woken_while_out,
                    } => {
                        *slot = Some(request);
                        // Whoever was woken while the request was out found nothing to poll:
                        // wake them again now that it is back.
                        std::mem::take(woken_while_out).then(|| wakers.clone())
                    }
                    _ => None,
                };
                rewake.into_iter().flatten().for_each(Waker::wake);
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::block_on;

    fn t(secs: u64) -> UnixTime {
        UnixTime::from_secs(secs)
    }
    use crate::error::TransportErrorKind;

    fn answer(status: u16, body: &[u8], at: u64) -> Settled {
        let mut r = http::Response::new(body.to_vec());
        *r.status_mut() = http::StatusCode::from_u16(status).unwrap();
        Settled::Answer(Ok(SharedResponse::new(r, t(at))))
    }

    fn ok(status: u16, at: u64) -> Settled {
        answer(status, b"{}", at)
    }

    fn coalesce(key: &str, remember: bool, lane: Option<&str>) -> Coalesce {
        Coalesce {
            key: key.into(),
            remember,
            lane: lane.map(str::to_owned),
        }
    }

    fn sf(grace: u64) -> Arc<SingleFlight> {
        Arc::new(SingleFlight::new(Duration::from_secs(grace)))
    }

    /// Leads `c` with a request that settles with `settled` at once, and waits for it.
    fn lead(sf: &Arc<SingleFlight>, c: &Coalesce, now: u64, settled: Settled) -> Option<Settled> {
        let Acquired::Lead(f) = sf.acquire(c, t(now)) else {
            panic!("expected to lead")
        };
        sf.start(&f, Box::pin(async move { settled }));
        block_on(sf.wait(f))
    }

    fn response_time(s: Option<Settled>) -> u64 {
        match s {
            Some(Settled::Answer(Ok(r))) => r.into_response().1.as_secs(),
            _ => panic!("expected an answer"),
        }
    }

    #[test]
    fn second_caller_waits_and_gets_the_same_response() {
        let sf = sf(60);
        let c = coalesce("k", true, None);
        let Acquired::Lead(leader) = sf.acquire(&c, t(100)) else {
            panic!("first caller leads")
        };
        let Acquired::Wait(waiting) = sf.acquire(&c, t(100)) else {
            panic!("second caller waits")
        };
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        sf.start(
            &leader,
            Box::pin(async move {
                let _ = rx.recv();
                ok(200, 100)
            }),
        );
        std::thread::scope(|s| {
            let sf2 = sf.clone();
            let h = s.spawn(move || block_on(sf2.wait(waiting)));
            tx.send(()).unwrap();
            assert_eq!(response_time(block_on(sf.wait(leader))), 100);
            assert_eq!(response_time(h.join().unwrap()), 100);
        });
        // Remembered within the grace window, forgotten after it.
        assert!(matches!(sf.acquire(&c, t(159)), Acquired::Remembered(_)));
        assert!(matches!(sf.acquire(&c, t(160)), Acquired::Lead(_)));
    }

    #[test]
    fn failures_and_unmarked_requests_are_not_remembered() {
        let sf = sf(60);
        for (key, remember, result) in [
            ("a", true, ok(400, 1)),
            ("b", false, ok(200, 1)),
            ("d", true, answer(200, b"", 1)),
            ("e", true, answer(200, br#"{"access_token": "#, 1)),
            (
                "c",
                true,
                Settled::Answer(Err(TransportError::new(TransportErrorKind::Timeout, "t"))),
            ),
        ] {
            let c = coalesce(key, remember, None);
            lead(&sf, &c, 1, result);
            assert!(matches!(sf.acquire(&c, t(1)), Acquired::Lead(_)));
        }
        assert_eq!(sf.remembered_len(), 0);
    }

    #[test]
    fn a_panicking_request_abandons_the_flight_and_waiters_take_over() {
        let sf = sf(60);
        let c = coalesce("k", true, None);
        let Acquired::Lead(leader) = sf.acquire(&c, t(1)) else {
            panic!()
        };
        let Acquired::Wait(waiting) = sf.acquire(&c, t(1)) else {
            panic!()
        };
        sf.start(&leader, Box::pin(async { panic!("the request panicked") }));
        let sf2 = sf.clone();
        let panicked = std::thread::spawn(move || block_on(sf2.wait(leader))).join();
        assert!(panicked.is_err());
        assert!(block_on(sf.wait(waiting)).is_none());
        assert!(matches!(sf.acquire(&c, t(1)), Acquired::Lead(_)));
    }

    #[test]
    fn a_dropped_leader_leaves_its_request_to_the_waiters() {
        let sf = sf(60);
        let c = coalesce("k", true, Some("rt"));
        let Acquired::Lead(leader) = sf.acquire(&c, t(1)) else {
            panic!()
        };
        let sends = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = sends.clone();
        sf.start(
            &leader,
            Box::pin(async move {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                answer(200, br#"{"access_token":"at","refresh_token":"rt-2"}"#, 1)
            }),
        );
        // The leader's wait is dropped before it ever polls.
        drop(sf.wait(leader));
        // A later caller of the same key continues the same request.
        let Acquired::Wait(waiting) = sf.acquire(&c, t(1)) else {
            panic!("the flight is still in flight")
        };
        assert_eq!(response_time(block_on(sf.wait(waiting))), 1);
        assert_eq!(sends.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn zero_grace_remembers_nothing() {
        let sf = sf(0);
        lead(&sf, &coalesce("k", true, None), 1, ok(200, 1));
        assert_eq!(sf.remembered_len(), 0);
    }

    #[test]
    fn a_lane_runs_one_request_at_a_time_then_hands_out_the_rotated_token() {
        let sf = sf(60);
        let a = coalesce("refresh rt aud-a", true, Some("rt"));
        let b = coalesce("refresh rt aud-b", true, Some("rt"));
        let Acquired::Lead(first) = sf.acquire(&a, t(1)) else {
            panic!()
        };
        // Another audience on the same refresh token waits for the lane.
        let Acquired::WaitLane(lane) = sf.acquire(&b, t(1)) else {
            panic!()
        };
        // Another refresh token is independent.
        assert!(matches!(
            sf.acquire(&coalesce("refresh other aud-a", true, Some("other")), t(1)),
            Acquired::Lead(_)
        ));
        sf.start(
            &first,
            Box::pin(async { answer(200, br#"{"access_token":"at","refresh_token":"rt-2"}"#, 1) }),
        );
        assert!(block_on(sf.wait(lane)).is_some());
        let Acquired::Rotated(rotated_to) = sf.acquire(&b, t(2)) else {
            panic!()
        };
        assert_eq!(rotated_to.expose(), "rt-2");
        // Past the grace window the rotation is still followed (a cancelled, unsaved or
        // overwritten copy of the session may still carry the replaced token); past the
        // session's lifetime it is forgotten.
        assert!(matches!(sf.acquire(&b, t(61)), Acquired::Rotated(_)));
        let lifetime = flight::ROTATION_LIFETIME.as_secs();
        assert!(matches!(sf.acquire(&b, t(lifetime)), Acquired::Rotated(_)));
        assert!(matches!(sf.acquire(&b, t(1 + lifetime)), Acquired::Lead(_)));
    }

    #[test]
    fn rotations_are_bounded_and_the_oldest_goes_first() {
        let sf = sf(60);
        let rotate = |lane: &str, at: u64| {
            let c = coalesce(&format!("refresh {lane}"), true, Some(lane));
            let Acquired::Lead(f) = sf.acquire(&c, t(at)) else {
                panic!("{lane} does not lead")
            };
            sf.start(
                &f,
                Box::pin(async move {
                    answer(200, br#"{"access_token":"at","refresh_token":"new"}"#, at)
                }),
            );
            assert!(block_on(sf.wait(f)).is_some());
        };
        for i in 0..MAX_REMEMBERED {
            rotate(&format!("lane-{i}"), 10 + i as u64 / 1000);
        }
        // A rotation beyond the bound is recorded, the oldest is dropped.
        rotate("latest", 100);
        let rotated = |lane: &str| {
            matches!(
                sf.acquire(
                    &coalesce(&format!("again {lane}"), true, Some(lane)),
                    t(101)
                ),
                Acquired::Rotated(_)
            )
        };
        assert!(rotated("latest"));
        assert!(rotated("lane-9999"));
        assert_eq!(
            (0..1000).filter(|i| !rotated(&format!("lane-{i}"))).count(),
            1,
            "exactly one of the oldest was dropped"
        );
    }

    #[test]
    fn a_lane_frees_without_a_rotation_when_the_answer_did_not_rotate_or_failed() {
        let sf = sf(60);
        for (lane, result) in [
            ("rt-a", answer(200, br#"{"access_token":"at"}"#, 1)),
            ("rt-b", ok(500, 1)),
        ] {
            lead(&sf, &coalesce(lane, true, Some(lane)), 1, result);
            assert!(
                matches!(
                    sf.acquire(&coalesce(&format!("other {lane}"), false, Some(lane)), t(1)),
                    Acquired::Lead(_)
                ),
                "the lane is free and nothing rotated"
            );
        }
    }
}
