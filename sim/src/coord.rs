//! A model of the cross-instance refresh coordinator, as the Redis one works: a lock per lane
//! (or key) with an expiry in (simulated) time, answers published per key for the
//! rotation grace window and rotations per lane for the session's lifetime, waiters that look again when something changes, and
//! a wait timeout after which nothing is sent. A holder that goes away releases nothing: its
//! lock expires, as a Redis key does.

use crate::exec::{Queues, TaskKind};
use crate::world::lock;
use auth0_server::coordinator::{
    AsyncRefreshCoordinator, CoordinateFuture, Coordinated, CoordinatedResponse, SendFuture,
};
use auth0_server::protocol::Secret;
use auth0_server::protocol::effect::Coalesce;
use auth0_server::protocol::flight::{self, Share};
use auth0_server::protocol::time::UnixTime;
use auth0_server::store::StoreError;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

struct Lock {
    owner: u64,
    expires_at: u64,
}

#[derive(Default)]
struct State {
    locks: BTreeMap<String, Lock>,
    answers: BTreeMap<String, (http::Response<Vec<u8>>, u64)>,
    rotations: BTreeMap<String, (Secret, u64)>,
    waiters: Vec<Waker>,
    next_owner: u64,
}

/// The model coordinator, shared by every instance (clones share the state).
#[derive(Clone)]
pub struct ModelCoordinator {
    state: Arc<Mutex<State>>,
    now: Arc<AtomicU64>,
    grace: u64,
    lock_ttl: u64,
    wait_timeout: u64,
    /// The executor it finishes a cancelled caller's flight on when the client has no spawn
    /// hook (as the Redis coordinator does on tokio), if any.
    runtime: Option<Queues>,
}

impl ModelCoordinator {
    /// A coordinator reading the simulated clock `now`.
    pub fn new(now: Arc<AtomicU64>, grace: u64, lock_ttl: u64, wait_timeout: u64) -> Self {
        ModelCoordinator {
            state: Arc::default(),
            now,
            grace,
            lock_ttl,
            wait_timeout,
            runtime: None,
        }
    }

    /// The same coordinator, giving the clients a spawn hook onto `runtime`
    /// (`AsyncRefreshCoordinator::spawn_hook`), as the Redis coordinator does on tokio.
    pub fn finishing_on(mut self, runtime: Queues) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Wakes every waiter (the clock moved: locks may have expired, waits timed out).
    pub fn wake_all(&self) {
        let waiters = std::mem::take(&mut lock(&self.state).waiters);
        waiters.into_iter().for_each(Waker::wake);
    }

    /// How many locks are held (and not expired).
    pub fn locks_held(&self) -> usize {
        let now = self.now.load(Ordering::SeqCst);
        lock(&self.state)
            .locks
            .values()
            .filter(|l| l.expires_at > now)
            .count()
    }

    fn now(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }
}

/// Pending until the coordinator's state changes (or the clock moves).
struct Changed<'a> {
    coordinator: &'a ModelCoordinator,
    registered: bool,
}

impl Future for Changed<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.registered {
            return Poll::Ready(());
        }
        self.registered = true;
        lock(&self.coordinator.state)
            .waiters
            .push(cx.waker().clone());
        Poll::Pending
    }
}

enum Look {
    Answer(http::Response<Vec<u8>>, u64),
    Rotated(Secret),
    Locked(u64),
    Wait,
    GiveUp,
}

impl AsyncRefreshCoordinator for ModelCoordinator {
    fn coordinate<'a>(
        &'a self,
        request: &'a Coalesce,
        send: SendFuture<'a>,
    ) -> CoordinateFuture<'a> {
        Box::pin(async move {
            let started = self.now();
            let name = request.lane.clone().unwrap_or_else(|| request.key.clone());
            let owner = loop {
                let look = {
                    let mut s = lock(&self.state);
                    let now = self.now();
                    let within = |at: u64| {
                        flight::within_grace(
                            UnixTime::from_secs(at),
                            UnixTime::from_secs(now),
                            std::time::Duration::from_secs(self.grace),
                        )
                    };
                    // Answers are published per lane and key, as the Redis coordinator keys them
                    // (`r:{lane}:{key}`): a request that followed a rotation never gets the
                    // answer to an older refresh token of its session.
                    let answer_key = format!("{name} {}", request.key);
                    if let Some((r, at)) = s.answers.get(&answer_key).filter(|(_, at)| within(*at))
                    {
                        Look::Answer(r.clone(), *at)
                    } else if let Some((to, _)) = request
                        .lane
                        .as_ref()
                        .and_then(|l| s.rotations.get(l))
                        .filter(|(_, at)| {
                            // Rotations are published as long as the core follows them.
                            flight::rotation_followed(
                                false,
                                UnixTime::from_secs(*at),
                                UnixTime::from_secs(now),
                                std::time::Duration::from_secs(self.grace),
                            )
                        })
                    {
                        Look::Rotated(to.clone())
                    } else if s.locks.get(&name).is_none_or(|l| l.expires_at <= now) {
                        let owner = s.next_owner;
                        s.next_owner += 1;
                        s.locks.insert(
                            name.clone(),
                            Lock {
                                owner,
                                expires_at: now + self.lock_ttl,
                            },
                        );
                        Look::Locked(owner)
                    } else if now.saturating_sub(started) >= self.wait_timeout {
                        Look::GiveUp
                    } else {
                        Look::Wait
                    }
                };
                match look {
                    Look::Answer(response, at) => {
                        return Ok(Coordinated::Response(CoordinatedResponse {
                            response,
                            received_at: UnixTime::from_secs(at),
                        }));
                    }
                    Look::Rotated(to) => return Ok(Coordinated::Rotated(to)),
                    Look::Locked(owner) => break owner,
                    Look::GiveUp => {
                        return Err(
                            StoreError::new("timed out waiting for the refresh lock").into()
                        );
                    }
                    Look::Wait => {
                        Changed {
                            coordinator: self,
                            registered: false,
                        }
                        .await
                    }
                }
            };
            let result = send.await;
            {
                let mut s = lock(&self.state);
                if let Ok(r) = &result {
                    let settled = flight::settle(request, &r.response);
                    let at = r.received_at.as_secs();
                    if settled.share == Share::ForGraceWindow {
                        s.answers
                            .insert(format!("{name} {}", request.key), (r.response.clone(), at));
                    }
                    if let (Some(to), Some(lane)) = (settled.rotated_to, &request.lane) {
                        s.rotations.insert(lane.clone(), (to, at));
                    }
                }
                if s.locks.get(&name).is_some_and(|l| l.owner == owner) {
                    s.locks.remove(&name);
                }
            }
            self.wake_all();
            Ok(Coordinated::Response(result?))
        })
    }

    fn spawn_hook(&self) -> Option<auth0_server::nonblocking::Spawn> {
        let runtime = self.runtime.clone()?;
        Some(Arc::new(move |flight| {
            runtime.spawn(TaskKind::Detached, flight)
        }))
    }
}
