//! The drive loop, written once for both clients (DESIGN.md §2.3).
//!
//! [`drive`] steps a core operation and performs the effects it asks for: store calls (through
//! the async store traits, which every blocking store also implements), the discovery and JWKS
//! caches and randomness ([`Shared::perform_local`]), and HTTP requests — single-flight when
//! the core marked them shareable. What differs between the clients is only *how a request is
//! sent*: the [`Transport`] each client implements (ureq, or the application's async
//! [`HttpClient`](crate::nonblocking::HttpClient)). The blocking client runs the same future
//! with [`block_on`], which parks the thread while another thread's request is in flight.
//!
//! Adding an operation to the SDK needs no code here: it is one more [`Operation`].

use crate::clock::{Clock, random_bytes};
use crate::coordinator::{Coordinated, CoordinatedResponse};
use crate::error::{Error, TransportError};
use crate::single_flight::{Acquired, FlightFuture, Settled, SharedResponse, SingleFlight};
use crate::store::{AsyncStateStore, AsyncTransactionStore, StoreError};
use auth0_server_protocol::Core;
use auth0_server_protocol::discovery::CachedMetadata;
use auth0_server_protocol::effect::{
    CachedJwks, Coalesce, Effect, HttpRequest, Input, Operation, Step, UnexpectedInput,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

/// Default rotation grace window: how long a refresh response is remembered.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(60);

/// Largest number of random bytes an operation may ask for at once.
const MAX_RANDOM: usize = 4096;

/// A future handed to the application's runtime (see the async client's `spawn_with`).
pub type Detached = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How a client sends HTTP requests: the one effect whose performing differs between the
/// blocking and the async client.
pub(crate) trait Transport: Send + Sync {
    /// Sends a request nobody shares and reads the whole response (any status).
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send;

    /// The future that obtains the outcome of a shared request — sent, or coordinated with
    /// the application's other instances when a coordinator is set. It owns all it needs, so
    /// it completes even when the caller that started it has gone.
    fn flight(
        &self,
        coalesce: &Coalesce,
        request: http::Request<Vec<u8>>,
        clock: Clock,
    ) -> FlightFuture;

    /// Hands a flight to the application's runtime, so that it completes (and its outcome is
    /// recorded) when every caller has gone. Without a runtime hook this does nothing: the
    /// callers that wait continue it.
    fn detach(&self, _flight: Detached) {}
}

/// Whether a shared request goes through the cross-instance coordinator: remembered
/// refreshes, and every request that spends a refresh token (another instance may be
/// spending it, or have rotated it). Discovery and JWKS fetches stay per process.
pub(crate) fn wants_coordination(coalesce: &Coalesce) -> bool {
    coalesce.remember || coalesce.lane.is_some()
}

impl Settled {
    /// What a coordinator's answer means for the flight.
    pub(crate) fn coordinated(outcome: Result<Coordinated, Error>) -> Settled {
        match outcome {
            Ok(Coordinated::Response(r)) => Settled::sent(Ok(r)),
            Ok(Coordinated::Rotated(to)) => Settled::Rotated(to),
            Err(Error::Transport(e)) => Settled::Answer(Err(e)),
            Err(e) => Settled::CoordinatorFailed(Arc::new(Mutex::new(Some(e)))),
        }
    }

    /// What sending the request ourselves gave.
    pub(crate) fn sent(outcome: Result<CoordinatedResponse, TransportError>) -> Settled {
        Settled::Answer(outcome.map(|r| SharedResponse::new(r.response, r.received_at)))
    }
}

/// A client's state shared by its calls: the core, the clock (read here and nowhere else in
/// the clients), single-flight, and the discovery-metadata and JWKS caches (plain data; the
/// core decides staleness).
pub(crate) struct Shared {
    pub(crate) core: Core,
    pub(crate) clock: Clock,
    pub(crate) flights: Arc<SingleFlight>,
    metadata: Mutex<Option<CachedMetadata>>,
    jwks: Mutex<Option<CachedJwks>>,
}

impl Shared {
    pub(crate) fn new(core: Core, clock: Clock, rotation_grace: Duration) -> Self {
        Shared {
            core,
            clock,
            flights: Arc::new(SingleFlight::new(rotation_grace)),
            metadata: Mutex::new(None),
            jwks: Mutex::new(None),
        }
    }

    /// Performs a cache or randomness effect (`LoadMetadata`, `StoreMetadata`, `LoadJwks`,
    /// `StoreJwks`, `Random`). Store and HTTP effects are [`drive`]'s own; handed one here,
    /// this answers with an `UnexpectedInput` error rather than panicking.
    fn perform_local(&self, effect: Effect) -> Result<Input, Error> {
        Ok(match effect {
            Effect::LoadMetadata => Input::Metadata(
                self.metadata
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
            Effect::StoreMetadata(m) => {
                *self.metadata.lock().unwrap_or_else(PoisonError::into_inner) = Some(m);
                Input::Done
            }
            Effect::LoadJwks => Input::Jwks(
                self.jwks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone(),
            ),
            Effect::StoreJwks(j) => {
                *self.jwks.lock().unwrap_or_else(PoisonError::into_inner) = Some(j);
                Input::Done
            }
            Effect::Random { len } if len > MAX_RANDOM => {
                return Err(UnexpectedInput {
                    expected: "Random of at most 4096 bytes",
                }
                .into());
            }
            Effect::Random { len } => Input::Random(random_bytes(len).map_err(|_| Error::Random)?),
            _ => {
                return Err(UnexpectedInput {
                    expected: "an effect the driver knows",
                }
                .into());
            }
        })
    }
}

/// Runs a core operation to completion: the one place the SDK performs effects. The
/// `store_options` reach every store call unchanged.
pub(crate) async fn drive<O, S, T, X>(
    shared: &Shared,
    state_store: &S,
    transaction_store: &T,
    transport: &X,
    mut op: O,
    store_options: &mut S::Options,
) -> Result<O::Output, Error>
where
    O: Operation,
    Error: From<O::Error>,
    S: AsyncStateStore,
    T: AsyncTransactionStore<Options = S::Options>,
    X: Transport,
{
    let mut input = Input::Start;
    let mut now = shared.clock.now();
    loop {
        let effect = match op.step(input, now) {
            Step::Done(result) => return result.map_err(Error::from),
            Step::Effect(effect) => effect,
        };
        now = shared.clock.now();
        input = match effect {
            Effect::Http(request) => {
                let (input, observed_at) = http(shared, transport, *request).await?;
                now = observed_at;
                input
            }
            Effect::LoadSession => Input::Session(state_store.get(store_options).await?),
            Effect::SaveSession(state) => {
                state_store.set(&state, store_options).await?;
                Input::Done
            }
            Effect::DeleteSession => {
                state_store.delete(store_options).await?;
                Input::Done
            }
            Effect::DeleteSessionsByLogoutToken(claims) => {
                state_store
                    .delete_by_logout_token(&claims, store_options)
                    .await?;
                Input::Done
            }
            Effect::LoadTransaction { key } => {
                Input::Transaction(transaction_store.get(&key, store_options).await?)
            }
            Effect::SaveTransaction { key, transaction } => {
                transaction_store
                    .set(&key, &transaction, store_options)
                    .await?;
                Input::Done
            }
            Effect::DeleteTransaction { key } => {
                transaction_store.delete(&key, store_options).await?;
                Input::Done
            }
            local => shared.perform_local(local)?,
        };
    }
}

/// Sends a request, single-flight when the core marked it shareable. Returns the input for
/// the operation and the time it was observed (a shared answer's receive time).
async fn http<X: Transport>(
    shared: &Shared,
    transport: &X,
    request: HttpRequest,
) -> Result<(Input, u64), Error> {
    let Some(coalesce) = request.coalesce else {
        let response = transport.send(request.request).await?;
        return Ok((Input::Http(response), shared.clock.now()));
    };
    let mut request = Some(request.request);
    loop {
        let now = shared.clock.now();
        let (flight, same_key, led) = match shared.flights.acquire(&coalesce, now) {
            Acquired::Remembered(r) => return Ok(http_input(r)),
            Acquired::Rotated(to) => return Ok((Input::Rotated(to), now)),
            Acquired::Wait(flight) => (flight, true, false),
            // Another request spends the same refresh token: once it settles, look again (its
            // answer may have rotated the token).
            Acquired::WaitLane(flight) => (flight, false, false),
            Acquired::Lead(flight) => {
                let Some(request) = request.take() else {
                    return Err(UnexpectedInput {
                        expected: "one request per flight",
                    }
                    .into());
                };
                let future = transport.flight(&coalesce, request, shared.clock.clone());
                shared.flights.start(&flight, future);
                let detached = shared.flights.wait(flight.clone());
                transport.detach(Box::pin(async move {
                    detached.await;
                }));
                (flight, true, true)
            }
        };
        match shared.flights.wait(flight).await {
            Some(Settled::Answer(result)) if same_key => return Ok(http_input(result?)),
            Some(Settled::Rotated(to)) if same_key => return Ok((Input::Rotated(to), now)),
            Some(Settled::CoordinatorFailed(error)) if led => {
                let taken = error.lock().unwrap_or_else(PoisonError::into_inner).take();
                return Err(taken
                    .unwrap_or_else(|| StoreError::new("the refresh coordinator failed").into()));
            }
            // A lane's request settled, the coordinator failed for the caller that led, or the
            // request panicked: look again (maybe leading this time).
            _ => continue,
        }
    }
}

/// A shared response as the operation's input, with the time it was received (the `now` to
/// step the operation with).
fn http_input(response: SharedResponse) -> (Input, u64) {
    let (response, received_at) = response.into_response();
    (Input::Http(response), received_at)
}

/// Runs a future on the calling thread, parking it while the future waits (for another
/// thread's request in flight). The blocking client's futures never wait on anything else:
/// their I/O blocks inside `poll`.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => std::thread::park(),
        }
    }
}
