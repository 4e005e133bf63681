//! The drive loop, written once for both clients.
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
use crate::store::{AsyncStateStore, AsyncTransactionStore, LogoutTokenIdRecord, StoreError};
use crate::trace::{in_span, record, trace_event};
use auth0_server_protocol::Core;
use auth0_server_protocol::discovery::CachedMetadata;
use auth0_server_protocol::effect::{
    AtSend, CachedJwks, Coalesce, Effect, HttpRequest, Input, JtiRecord, Operation, Step,
    UnexpectedInput,
};
use auth0_server_protocol::session::SaveFailed;
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::{dpop, flight};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
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

/// Whether a shared request goes through the cross-instance coordinator: every request that
/// spends a refresh token (another instance may be spending it, or have rotated it).
/// Discovery and JWKS fetches are idempotent and stay per process.
pub(crate) fn wants_coordination(coalesce: &Coalesce) -> bool {
    coalesce.lane.is_some()
}

impl Settled {
    /// What a coordinator's answer means for the flight.
    pub(crate) fn coordinated(outcome: Result<Coordinated, Error>) -> Settled {
        match outcome {
            Ok(Coordinated::Response(r)) => Settled::sent(Ok(r)),
            Ok(Coordinated::Rotated(to)) => Settled::Rotated(to),
            Err(Error::Transport(e)) => Settled::Answer(Err(e)),
            Err(e) => {
                Settled::CoordinatorFailed(Arc::new(crate::single_flight::Mutex::new(Some(e))))
            }
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
    /// How this client waits when the core asks it to ([`Effect::Wait`]).
    pub(crate) sleeper: crate::sleep::Sleeper,
    metadata: Mutex<Option<CachedMetadata>>,
    jwks: Mutex<Option<CachedJwks>>,
    /// Logout tokens accepted by this process (`{iss} {jti}` → until when to remember them):
    /// the in-process replay record of back-channel logout.
    logout_token_ids: Mutex<JtiLedger>,
    /// The last DPoP nonce the authorization server gave (`DPoP-Nonce`), put in later proofs
    /// so that a server that wants nonces is not challenged on every request.
    dpop_nonce: Mutex<Option<String>>,
}

/// Most logout-token ids remembered by one process. Logout tokens are signed by the
/// provider, so only the provider can fill it; once full (after expired entries are
/// dropped), a new token is refused rather than letting a replay through.
const MAX_LOGOUT_TOKEN_IDS: usize = 100_000;

/// The in-process record of accepted logout-token ids, each until its token expires.
#[derive(Default)]
pub(crate) struct JtiLedger {
    until: std::collections::HashMap<String, UnixTime>,
}

impl JtiLedger {
    /// Records `key` until `until` unless it is already recorded (and not yet past `now`).
    pub(crate) fn record(&mut self, key: String, until: UnixTime, now: UnixTime) -> JtiRecord {
        if self.until.get(&key).is_some_and(|u| *u >= now) {
            return JtiRecord::Replayed;
        }
        if self.until.len() >= MAX_LOGOUT_TOKEN_IDS {
            self.until.retain(|_, u| *u >= now);
            if self.until.len() >= MAX_LOGOUT_TOKEN_IDS {
                return JtiRecord::Replayed;
            }
        }
        self.until.insert(key, until);
        JtiRecord::FirstSeen
    }
}

impl Shared {
    pub(crate) fn new(core: Core, clock: Clock, rotation_grace: Duration) -> Self {
        Shared {
            core,
            clock,
            flights: Arc::new(SingleFlight::new(rotation_grace)),
            sleeper: crate::sleep::Sleeper::thread(),
            metadata: Mutex::new(None),
            jwks: Mutex::new(None),
            logout_token_ids: Mutex::new(JtiLedger::default()),
            dpop_nonce: Mutex::new(None),
        }
    }

    /// The state of another custom domain's calls (multiple custom domains): `core` (that
    /// domain's), with its own discovery-metadata and JWKS caches, DPoP nonce and logout-token
    /// record, sharing this client's clock, sleeper and single-flight (whose keys name the
    /// URL or the refresh token, and a refresh token is only ever spent on its session's
    /// domain).
    pub(crate) fn for_domain(&self, core: Core) -> Self {
        Shared {
            core,
            clock: self.clock.clone(),
            flights: self.flights.clone(),
            sleeper: self.sleeper.clone(),
            metadata: Mutex::new(None),
            jwks: Mutex::new(None),
            logout_token_ids: Mutex::new(JtiLedger::default()),
            dpop_nonce: Mutex::new(None),
        }
    }

    /// The clients' `dpop_headers`: headers for a resource request with a DPoP-bound token,
    /// the proof made now with fresh OS randomness.
    pub(crate) fn dpop_headers(
        &self,
        token: &auth0_server_protocol::access_token::AccessToken,
        method: &str,
        url: &str,
        nonce: Option<&str>,
    ) -> Result<dpop::DpopHeaders, Error> {
        let key = self
            .core
            .config()
            .dpop_key()
            .ok_or(dpop::DpopError::NotConfigured)?;
        let random = random_bytes(dpop::PROOF_RANDOM_LEN).map_err(|_| Error::Random)?;
        Ok(dpop::resource_headers(
            key,
            token,
            method,
            url,
            nonce,
            self.clock.now(),
            &random,
        )?)
    }

    /// Seals the `mfa_token` of an `mfa_required` error (from `get_access_token` for
    /// `request`, or any grant refused with `mfa_required`) with an IV from the OS, to open
    /// until now + the configured MFA token TTL.
    pub(crate) fn seal_mfa_token(
        &self,
        error: &Error,
        request: &auth0_server_protocol::access_token::AccessTokenRequest,
    ) -> Result<auth0_server_protocol::mfa::SealedMfaToken, Error> {
        use auth0_server_protocol::mfa::{self, MfaContext, MfaError};
        let context = match error {
            Error::AccessToken(e) => MfaContext::from_access_token_error(e, request),
            Error::MyAccount(e) => match e.as_ref() {
                auth0_server_protocol::my_account::MyAccountError::AccessToken(e) => {
                    MfaContext::from_access_token_error(e, request)
                }
                _ => None,
            },
            Error::ConnectionToken(e) => match e.as_ref() {
                auth0_server_protocol::connection_token::ConnectionTokenError::MfaRequired {
                    mfa_token,
                    mfa_requirements,
                } if !mfa_token.expose().is_empty() => Some(MfaContext {
                    mfa_token: mfa_token.clone(),
                    mfa_requirements: mfa_requirements.clone(),
                    audience: request.audience.clone(),
                    scope: request.scope.clone(),
                }),
                _ => None,
            },
            other => other.oauth_error().and_then(|o| {
                MfaContext::from_oauth_error(o, request.audience.clone(), request.scope.clone())
            }),
        }
        .ok_or(MfaError::NotMfaRequired)?;
        let random = random_bytes(mfa::SEAL_IV_LEN).map_err(|_| Error::Random)?;
        let mut iv = [0u8; mfa::SEAL_IV_LEN];
        iv.copy_from_slice(&random);
        let config = self.core.config();
        Ok(mfa::seal_mfa_token(
            config.secrets(),
            &context,
            self.clock.now(),
            config.mfa_token_ttl(),
            iv,
        )?)
    }

    /// The last DPoP nonce the authorization server gave.
    fn dpop_nonce(&self) -> Option<String> {
        self.dpop_nonce
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps the DPoP nonce of an answer to a request that carried a proof, if it has one.
    fn keep_dpop_nonce(&self, input: &Input) {
        if let Input::Http(response) = input {
            if let Some(nonce) = dpop::nonce_of(response.headers()) {
                *self
                    .dpop_nonce
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(nonce);
            }
        }
    }

    /// The same, waiting through `sleeper` ([`Effect::Wait`]).
    pub(crate) fn with_sleeper(mut self, sleeper: crate::sleep::Sleeper) -> Self {
        self.sleeper = sleeper;
        self
    }

    /// Performs a cache or randomness effect (`LoadMetadata`, `StoreMetadata`, `LoadJwks`,
    /// `StoreJwks`, `Random`). Store and HTTP effects are [`drive`]'s own; handed one here,
    /// this answers with an `UnexpectedInput` error rather than panicking.
    fn perform_local(&self, effect: Effect, now: UnixTime) -> Result<Input, Error> {
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
            Effect::RecordLogoutTokenId { key, until } => Input::LogoutTokenId(
                self.logout_token_ids
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record(key, until, now),
            ),
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
/// `store_options` reach every store call unchanged. `name` and `audience` label the
/// operation's tracing span.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive<O, S, T, X>(
    name: &'static str,
    audience: &str,
    shared: &Shared,
    state_store: &S,
    transaction_store: &T,
    transport: &X,
    op: O,
    store_options: &mut S::Options,
) -> Result<O::Output, Error>
where
    O: Operation,
    Error: From<O::Error>,
    S: AsyncStateStore,
    T: AsyncTransactionStore<Options = S::Options>,
    X: Transport,
{
    #[cfg(not(feature = "tracing"))]
    let _ = audience;
    let steps = steps(
        name,
        shared,
        state_store,
        transaction_store,
        transport,
        op,
        store_options,
    );
    in_span!(
        steps,
        "auth0.operation",
        operation = name,
        audience = audience,
        outcome = ::tracing::field::Empty
    )
    .await
}

/// How an operation obtained its HTTP answers, for its span's `outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Obtained {
    /// No request was needed (a cache hit).
    Nothing,
    /// Every answer came from another caller's request (in flight or remembered).
    Shared,
    /// This caller sent at least one request.
    Sent,
}

async fn steps<O, S, T, X>(
    name: &'static str,
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
    let mut obtained = Obtained::Nothing;
    let result = loop {
        let effect = match op.step(input, now) {
            Step::Done(result) => break result.map_err(Error::from),
            Step::Effect(effect) => effect,
        };
        now = shared.clock.now();
        let performed = perform(
            shared,
            state_store,
            transaction_store,
            transport,
            effect,
            store_options,
            now,
        )
        .await;
        input = match performed {
            Ok((next, observed_at, how)) => {
                if let Some(at) = observed_at {
                    now = at;
                }
                obtained = match (obtained, how) {
                    (_, Obtained::Sent) | (Obtained::Sent, _) => Obtained::Sent,
                    (_, Obtained::Shared) | (Obtained::Shared, _) => Obtained::Shared,
                    _ => Obtained::Nothing,
                };
                next
            }
            Err(e) => break Err(e),
        };
    };
    let token_operation = name.starts_with("get_access_token");
    let outcome = match (&result, obtained) {
        (Err(_), _) => "error",
        (Ok(_), _) if !token_operation => "ok",
        (Ok(_), Obtained::Nothing) => "cache_hit",
        (Ok(_), Obtained::Shared) => "shared",
        (Ok(_), Obtained::Sent) => "refreshed",
    };
    record!("outcome", outcome);
    #[cfg(feature = "tracing")]
    if let Err(e) = &result {
        trace_event!(
            ::tracing::Level::WARN,
            operation = name,
            code = %e.code(),
            error = %e,
            "auth0 operation failed"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = outcome;
    result
}

/// Performs one effect at `now` (the clock the driver read; stores get it with every call):
/// the input for the operation, the time it was observed when that is not now (a shared
/// answer's receive time), and how an HTTP answer was obtained.
#[allow(clippy::too_many_arguments)]
async fn perform<S, T, X>(
    shared: &Shared,
    state_store: &S,
    transaction_store: &T,
    transport: &X,
    effect: Effect,
    store_options: &mut S::Options,
    now: UnixTime,
) -> Result<(Input, Option<UnixTime>, Obtained), Error>
where
    S: AsyncStateStore,
    T: AsyncTransactionStore<Options = S::Options>,
    X: Transport,
{
    let input = match effect {
        Effect::Http(request) => {
            let method = request.request.method().clone();
            let path = request.request.uri().path().to_owned();
            // Boxed: the HTTP arm's future is kilobytes (the flight, DPoP retry), and a step
            // that only touches a store (a cache hit) should not carry, or copy, that much.
            let sent = Box::pin(http(shared, transport, *request));
            let (input, observed_at, how) = in_span!(
                sent,
                "auth0.http",
                method = %method,
                endpoint = %path,
                status = ::tracing::field::Empty,
                shared = ::tracing::field::Empty
            )
            .await?;
            #[cfg(not(feature = "tracing"))]
            let _ = (method, path);
            return Ok((input, Some(observed_at), how));
        }
        Effect::Wait(duration) => {
            trace_event!(
                ::tracing::Level::DEBUG,
                seconds = duration.as_secs(),
                "waiting before the next poll"
            );
            shared.sleeper.sleep(duration).await;
            // The next step sees the time after the wait.
            return Ok((Input::Done, Some(shared.clock.now()), Obtained::Nothing));
        }
        Effect::LoadSession => Input::Session(
            in_span!(
                state_store.get(store_options, now),
                "auth0.store",
                operation = "load_session"
            )
            .await?,
        ),
        Effect::SaveSession(state) => {
            in_span!(
                state_store.set(&state, store_options, now),
                "auth0.store",
                operation = "save_session"
            )
            .await?;
            Input::Done
        }
        Effect::UpdateSession(update) => {
            let updated = in_span!(
                state_store.update(&update, store_options, now),
                "auth0.store",
                operation = "update_session"
            )
            .await;
            Input::Updated(updated.map_err(|e| SaveFailed {
                message: e.to_string(),
            }))
        }
        Effect::KeepRotation { lanes, rotated_to } => {
            trace_event!(
                ::tracing::Level::WARN,
                "the session could not be saved after its refresh token rotated: keeping the new one in this process"
            );
            shared.flights.keep_rotation(lanes, rotated_to, now);
            Input::Done
        }
        Effect::DeleteSession => {
            in_span!(
                state_store.delete(store_options, now),
                "auth0.store",
                operation = "delete_session"
            )
            .await?;
            Input::Done
        }
        Effect::DeleteSessionsByLogoutToken(claims) => {
            trace_event!(
                ::tracing::Level::INFO,
                by_sid = claims.sid.is_some(),
                by_sub = claims.sub.is_some(),
                "back-channel logout: deleting the matching sessions"
            );
            in_span!(
                state_store.delete_by_logout_token(&claims, store_options, now),
                "auth0.store",
                operation = "delete_by_logout_token"
            )
            .await?;
            Input::Done
        }
        Effect::RecordLogoutTokenId { key, until } => {
            let kept = in_span!(
                state_store.record_logout_token_id(&key, until, now),
                "auth0.store",
                operation = "record_logout_token_id"
            )
            .await?;
            match kept {
                LogoutTokenIdRecord::Kept(record) => Input::LogoutTokenId(record),
                // Not kept by the store: kept here (in the process).
                LogoutTokenIdRecord::NotKept => {
                    shared.perform_local(Effect::RecordLogoutTokenId { key, until }, now)?
                }
            }
        }
        Effect::LoadTransaction { key } => Input::Transaction(
            in_span!(
                transaction_store.get(&key, store_options, now),
                "auth0.store",
                operation = "load_transaction"
            )
            .await?,
        ),
        Effect::SaveTransaction { key, transaction } => {
            in_span!(
                transaction_store.set(&key, &transaction, store_options, now),
                "auth0.store",
                operation = "save_transaction"
            )
            .await?;
            Input::Done
        }
        Effect::DeleteTransaction { key } => {
            in_span!(
                transaction_store.delete(&key, store_options, now),
                "auth0.store",
                operation = "delete_transaction"
            )
            .await?;
            Input::Done
        }
        local => shared.perform_local(local, now)?,
    };
    Ok((input, None, Obtained::Nothing))
}

/// Sends a request, single-flight when the core marked it shareable. Returns the input for
/// the operation, the time it was observed (a shared answer's receive time), and whether this
/// caller sent it.
///
/// A request carrying a DPoP proof is sent once more, with a new proof, when the core's
/// [`dpop::token_endpoint_retry`] says the answer is a nonce challenge (once at most); the
/// nonce of every answer is kept for later proofs. Callers that shared the challenged answer
/// retry too, and share again (the same coalescing key).
async fn http<X: Transport>(
    shared: &Shared,
    transport: &X,
    request: HttpRequest,
) -> Result<(Input, UnixTime, Obtained), Error> {
    if !request.wants_dpop_proof() {
        return http_once(shared, transport, request).await;
    }
    let mut again = request.duplicate();
    let first = http_once(shared, transport, request).await?;
    shared.keep_dpop_nonce(&first.0);
    let Input::Http(response) = &first.0 else {
        return Ok(first);
    };
    match dpop::token_endpoint_retry(response, 0) {
        dpop::NonceRetry::RetryWith(nonce) => {
            trace_event!(
                ::tracing::Level::DEBUG,
                "the server asked for a DPoP nonce: sending once more with it"
            );
            again.set_dpop_nonce(&nonce);
            let second = http_once(shared, transport, again).await?;
            shared.keep_dpop_nonce(&second.0);
            Ok(second)
        }
        _ => Ok(first),
    }
}

/// [`http`] without the DPoP nonce retry: one sending (or sharing).
async fn http_once<X: Transport>(
    shared: &Shared,
    transport: &X,
    request: HttpRequest,
) -> Result<(Input, UnixTime, Obtained), Error> {
    let HttpRequest {
        request,
        coalesce,
        at_send,
    } = request;
    let Some(coalesce) = coalesce else {
        // Lifetimes in the answer count from the sending (see `CoordinatedResponse`).
        let sent_at = shared.clock.now();
        let request = complete(shared, request, &at_send)?;
        let response = transport.send(request).await;
        record!(
            "status",
            response.as_ref().map_or(0, |r| r.status().as_u16())
        );
        return Ok((Input::Http(response?), sent_at, Obtained::Sent));
    };
    let mut request = Some(request);
    let mut sent = false;
    loop {
        let now = shared.clock.now();
        let (flight, same_key, led) = match shared.flights.acquire(&coalesce, now) {
            Acquired::Remembered(r) => {
                trace_event!(
                    ::tracing::Level::DEBUG,
                    "answer remembered within the rotation grace window"
                );
                record!("shared", true);
                let (input, at) = http_input(r);
                return Ok((input, at, Obtained::Shared));
            }
            Acquired::Rotated(to) => {
                trace_event!(
                    ::tracing::Level::INFO,
                    "refresh token rotated by an earlier request: spending the new one"
                );
                return Ok((Input::Rotated(to), now, Obtained::Shared));
            }
            Acquired::Wait(flight) => {
                trace_event!(
                    ::tracing::Level::DEBUG,
                    "waiting for the same request in flight"
                );
                (flight, true, false)
            }
            // Another request spends the same refresh token: once it settles, look again (its
            // answer may have rotated the token).
            Acquired::WaitLane(flight) => {
                trace_event!(
                    ::tracing::Level::DEBUG,
                    "waiting for another request spending the same refresh token"
                );
                (flight, false, false)
            }
            Acquired::Lead(flight) => {
                let Some(request) = request.take() else {
                    return Err(UnexpectedInput {
                        expected: "one request per flight",
                    }
                    .into());
                };
                // Completed only now that this caller sends it (a caller that takes another's
                // answer signs nothing). Should that fail, nothing is sent: this caller
                // reports the error and the waiters try again themselves. With the Redis
                // coordinator the request may still wait for another instance's lock before
                // it goes out: up to `lock_ttl` (default 30 s) of a client assertion's 60 s,
                // and a DPoP proof's `iat` ages as much (servers accept some minutes).
                let future: FlightFuture = match complete(shared, request, &at_send) {
                    Ok(request) => transport.flight(&coalesce, request, shared.clock.clone()),
                    Err(e) => Box::pin(std::future::ready(Settled::CoordinatorFailed(Arc::new(
                        crate::single_flight::Mutex::new(Some(e)),
                    )))),
                };
                shared.flights.start(&flight, future);
                let detached = shared.flights.wait(flight.clone());
                transport.detach(Box::pin(async move {
                    detached.await;
                }));
                sent = true;
                (flight, true, true)
            }
        };
        let how = if sent {
            Obtained::Sent
        } else {
            Obtained::Shared
        };
        let flight_request = flight.request().clone();
        match shared.flights.wait(flight).await {
            Some(Settled::Answer(result)) if same_key => {
                record!("shared", !led);
                record!("status", result.as_ref().map_or(0, |r| r.status()));
                let (input, at) = http_input(result?);
                return Ok((input, at, how));
            }
            // A flight of the same key can spend an older refresh token of the session than
            // this request (which followed a rotation already): its rotation is behind this
            // request; look again instead of following it back (and in circles).
            Some(Settled::Rotated(to))
                if same_key && flight::rotation_applies(&flight_request, &coalesce) =>
            {
                trace_event!(
                    ::tracing::Level::INFO,
                    "another instance rotated the refresh token: spending the new one"
                );
                return Ok((Input::Rotated(to), now, how));
            }
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

/// The request ready to send now: what the core left for the moment of sending (a
/// `private_key_jwt` client assertion, a DPoP proof with the last nonce the server gave)
/// made with the clock's time and fresh OS randomness.
fn complete(
    shared: &Shared,
    mut request: http::Request<Vec<u8>>,
    at_send: &[AtSend],
) -> Result<http::Request<Vec<u8>>, Error> {
    if at_send.is_empty() {
        return Ok(request);
    }
    let now = shared.clock.now();
    let nonce = shared.dpop_nonce();
    for part in at_send {
        let random = random_bytes(part.random_len()).map_err(|_| Error::Random)?;
        request = part
            .apply(
                request,
                shared.core.config(),
                now,
                &random,
                nonce.as_deref(),
            )
            .map_err(Error::from)?;
    }
    Ok(request)
}

/// A shared response as the operation's input, with the time it was received (the `now` to
/// step the operation with).
fn http_input(response: SharedResponse) -> (Input, UnixTime) {
    let (response, received_at) = response.into_response();
    (Input::Http(response), received_at)
}

/// Runs a future on the calling thread, parking it while the future waits (for another
/// thread's request in flight). The blocking client's futures never wait on anything else:
/// their I/O blocks inside `poll`.
#[cfg(any(feature = "blocking", test))]
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    thread_local! {
        // One waker per thread, made once: it only unparks this thread.
        static WAKER: Waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    }
    let mut future = std::pin::pin!(future);
    WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            match future.as_mut().poll(&mut cx) {
                Poll::Ready(output) => return output,
                Poll::Pending => std::thread::park(),
            }
        }
    })
}
