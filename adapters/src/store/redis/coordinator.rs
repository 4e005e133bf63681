//! Cross-instance refresh coordination on Redis: see [`RedisRefreshCoordinator`].

#[cfg(feature = "redis-tokio")]
use super::pool::AsyncPool;
use super::pool::{Endpoint, Pool, Topology};
use super::{REFRESH_SALT, check_secrets, codec, hex_sha256, random_token, scripts};
use crate::coordinator::{Coordinated, CoordinatedResponse, RefreshCoordinator, SendRequest};
use crate::driver::DEFAULT_ROTATION_GRACE;
use crate::error::{Error, TransportError, TransportErrorKind};
use crate::store::StoreError;
use crate::store::cookie::codec::CookieCodec;
use auth0_server_protocol::config::Config;
use auth0_server_protocol::effect::Coalesce;
use auth0_server_protocol::flight::{self, FailureKind, Share};
use auth0_server_protocol::secret::Secret;
use std::time::{Duration, Instant};

/// Default lifetime of a refresh lock: how long a crashed winner blocks the others.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(30);
/// The longest refresh lock accepted.
pub const MAX_LOCK_TTL: Duration = Duration::from_secs(24 * 3600);
/// Default lifetime of a published failure.
pub const DEFAULT_FAILURE_TTL: Duration = Duration::from_secs(2);

const FIRST_DELAY: Duration = flight::FIRST_POLL_DELAY;
const FENCE_BYTES: usize = 16;

/// The pure decoding for the fuzz targets (`super::fuzzing`).
pub(super) mod fuzzing;

/// Settings and pure logic shared by the blocking and the async coordinator.
pub(crate) struct Refreshes {
    prefix: String,
    topology: Topology,
    codec: CookieCodec,
    lock_ttl: Duration,
    wait_timeout: Duration,
    grace: Duration,
    failure_ttl: Duration,
}

/// The Redis keys of one coordinated request.
struct Keys {
    /// SHA-256 of the coalesce key, bound into its published answer.
    hash: String,
    /// The published answer, per coalesce key.
    result: String,
    /// The lock: per lane for a request that spends a refresh token, else per key.
    lock: String,
    /// For a request with a lane: SHA-256 of the lane (bound into its published rotation) and
    /// the key of the published rotation.
    lane: Option<(String, String)>,
}

/// What the acquire script answered.
enum Acquired {
    Published(String),
    Rotated(String),
    Lock,
    Wait { pttl_ms: u64 },
}

/// A value to publish and its TTL in milliseconds.
type Publication = Option<(String, u64)>;

impl Refreshes {
    /// The keys of a request. On one server: `{prefix}r:{h}:result`, `{prefix}l:{g}:lock`,
    /// `{prefix}l:{g}:rotated` (or `{prefix}r:{h}:lock` without a lane), as versions before
    /// Redis Cluster support named them, so instances of both versions coordinate during a
    /// rolling upgrade. On a cluster the keys one script touches share a hash tag, the lane
    /// hash `g` in literal braces (`…l:{g}:lock`, `…l:{g}:rotated`, `…r:{g}:h:result`), or
    /// the key hash `h` without a lane (`…r:{h}:result`, `…r:{h}:lock`).
    fn keys(&self, request: &Coalesce) -> Keys {
        let p = &self.prefix;
        let hash = hex_sha256(&[&request.key]);
        let cluster = self.topology == Topology::Cluster;
        match &request.lane {
            Some(lane) => {
                let l = hex_sha256(&[lane]);
                let (tag, result) = if cluster {
                    (format!("{{{l}}}"), format!("{p}r:{{{l}}}:{hash}:result"))
                } else {
                    (l.clone(), format!("{p}r:{hash}:result"))
                };
                Keys {
                    lock: format!("{p}l:{tag}:lock"),
                    lane: Some((l, format!("{p}l:{tag}:rotated"))),
                    hash,
                    result,
                }
            }
            None => {
                let tag = if cluster {
                    format!("{{{hash}}}")
                } else {
                    hash.clone()
                };
                Keys {
                    lock: format!("{p}r:{tag}:lock"),
                    result: format!("{p}r:{tag}:result"),
                    lane: None,
                    hash,
                }
            }
        }
    }

    fn acquire(&self, k: &Keys, fence: &str) -> redis::ScriptInvocation<'static> {
        let mut inv = scripts::ACQUIRE.prepare_invoke();
        inv.key(&k.result).key(&k.lock);
        if let Some((_, rotation)) = &k.lane {
            inv.key(rotation);
        }
        inv.arg(fence).arg(
            u64::try_from(self.lock_ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        inv
    }

    fn interpret(reply: (i64, String)) -> Acquired {
        match reply.0 {
            1 => Acquired::Published(reply.1),
            3 => Acquired::Rotated(reply.1),
            2 => Acquired::Lock,
            _ => Acquired::Wait {
                pttl_ms: reply.1.parse().unwrap_or(0),
            },
        }
    }

    /// The script that publishes what the winner learnt and releases its lock: the answer for
    /// its key (only for remembered requests), and the lane's new refresh token when the
    /// answer rotated it (both as the core's [`flight::settle`] decides). An encoding failure
    /// publishes nothing of that part (the answer matters more than publishing it); the lock
    /// is released all the same.
    fn settle(
        &self,
        request: &Coalesce,
        k: &Keys,
        fence: &str,
        outcome: &Result<CoordinatedResponse, TransportError>,
    ) -> redis::ScriptInvocation<'static> {
        let settlement = settlement(request, outcome);
        // A DPoP nonce challenge spent nothing: not published, so the leader's retry and
        // the other instances send their own requests.
        let result: Publication = if request.remember && settlement.share != Share::Unspent {
            self.encode(&k.hash, outcome, settlement.share).ok()
        } else {
            None
        };
        let rotation: Publication = match (settlement.rotated_to, &k.lane) {
            (Some(to), Some((lane_hash, _))) => self.encode_rotation(lane_hash, &to).ok(),
            _ => None,
        };
        let mut inv = scripts::PUBLISH.prepare_invoke();
        inv.key(&k.result).key(&k.lock);
        if let Some((_, rotation_key)) = &k.lane {
            inv.key(rotation_key);
        }
        let (result, result_ttl) = result.unwrap_or_default();
        let (rotation, rotation_ttl) = rotation.unwrap_or_default();
        inv.arg(fence)
            .arg(result)
            .arg(result_ttl.max(1))
            .arg(rotation)
            .arg(rotation_ttl.max(1));
        inv
    }

    /// Encrypts a publication bound to `binding`, with how long (ms) to keep it.
    fn seal(
        &self,
        binding: &str,
        publication: &flight::Publication,
        ttl: Duration,
    ) -> Result<(String, u64), StoreError> {
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        Ok((self.codec.encrypt(&publication.encode(binding))?, ttl_ms))
    }

    /// The publication in `value` if it is readable and bound to `binding`.
    fn open(&self, binding: &str, value: &str) -> Option<flight::Publication> {
        flight::Publication::decode(&self.codec.decrypt(value)?, binding)
    }

    /// The encrypted rotation of the lane hashed `lane_hash` to `to`, and how long (ms) to
    /// keep it published: as long as the core follows rotations
    /// ([`flight::rotation_lifetime`]), so an instance whose copy of the session still
    /// holds the replaced token (its save failed, its request was cancelled) spends the new
    /// one days later too.
    fn encode_rotation(&self, lane_hash: &str, to: &Secret) -> Result<(String, u64), StoreError> {
        self.seal(
            lane_hash,
            &flight::Publication::Rotation(to.clone()),
            flight::rotation_lifetime(self.grace),
        )
    }

    /// A published rotation of the lane hashed `lane_hash`, or `None` when it is unreadable
    /// (foreign secret, tampered, another lane's).
    fn decode_rotation(&self, lane_hash: &str, value: &str) -> Option<Secret> {
        match self.open(lane_hash, value)? {
            flight::Publication::Rotation(to) => Some(to),
            _ => None,
        }
    }

    /// What a published value means for a waiter: its outcome, or `None` (unreadable: wait
    /// until it expires).
    fn published(&self, k: &Keys, acquired: &Acquired) -> Option<Result<Coordinated, Error>> {
        match acquired {
            Acquired::Published(value) => self
                .decode(&k.hash, value)
                .map(|outcome| Ok(Coordinated::Response(outcome?))),
            Acquired::Rotated(value) => {
                let (lane_hash, _) = k.lane.as_ref()?;
                self.decode_rotation(lane_hash, value)
                    .map(|to| Ok(Coordinated::Rotated(to)))
            }
            Acquired::Lock | Acquired::Wait { .. } => None,
        }
    }

    /// The encrypted outcome and how long (ms) to keep it published: the grace window for an
    /// answer the core says to remember, the failure TTL otherwise.
    fn encode(
        &self,
        hash: &str,
        outcome: &Result<CoordinatedResponse, TransportError>,
        share: Share,
    ) -> Result<(String, u64), StoreError> {
        let publication = match outcome {
            Ok(r) => flight::Publication::Answer {
                status: r.response.status().as_u16(),
                content_type: r
                    .response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                body: r.response.body().clone(),
                received_at: r.received_at,
            },
            Err(e) => flight::Publication::Failure {
                kind: match e.kind() {
                    TransportErrorKind::Timeout => FailureKind::Timeout,
                    TransportErrorKind::Connect => FailureKind::Connect,
                    TransportErrorKind::ResponseTooLarge => FailureKind::TooLarge,
                    _ => FailureKind::Io,
                },
                message: e.message().to_owned(),
            },
        };
        let ttl = match share {
            Share::ForGraceWindow => self.grace,
            Share::FailureOnly | Share::WaitersOnly | Share::Unspent => self.failure_ttl,
        };
        self.seal(hash, &publication, ttl)
    }

    /// A published outcome for `hash`, or `None` when it is unreadable (foreign secret,
    /// tampered, another key's).
    fn decode(
        &self,
        hash: &str,
        value: &str,
    ) -> Option<Result<CoordinatedResponse, TransportError>> {
        match self.open(hash, value)? {
            flight::Publication::Failure { kind, message } => {
                let kind = match kind {
                    FailureKind::Timeout => TransportErrorKind::Timeout,
                    FailureKind::Connect => TransportErrorKind::Connect,
                    FailureKind::TooLarge => TransportErrorKind::ResponseTooLarge,
                    FailureKind::Io => TransportErrorKind::Io,
                };
                Some(Err(TransportError::new(
                    kind,
                    format!("{message} (sent by another instance)"),
                )))
            }
            flight::Publication::Answer {
                status,
                content_type,
                body,
                received_at,
            } => {
                let mut response = http::Response::new(body);
                *response.status_mut() = http::StatusCode::from_u16(status).ok()?;
                if let Some(v) = content_type.and_then(|ct| http::HeaderValue::try_from(ct).ok()) {
                    response.headers_mut().insert(http::header::CONTENT_TYPE, v);
                }
                Some(Ok(CoordinatedResponse {
                    response,
                    received_at,
                }))
            }
            flight::Publication::Rotation(_) => None,
        }
    }

    /// How long to sleep before polling again (the core's backoff), or `None` to give up.
    fn delay(&self, delay: &mut Duration, pttl_ms: u64, started: Instant) -> Option<Duration> {
        let lock_expires_in = (pttl_ms > 0).then(|| Duration::from_millis(pttl_ms));
        match flight::next_poll(delay, lock_expires_in, started.elapsed(), self.wait_timeout) {
            flight::Poll::After(d) => Some(d),
            flight::Poll::GiveUp => None,
        }
    }

    fn timed_out() -> Error {
        StoreError::new("timed out waiting for another instance's refresh").into()
    }
}

/// What the core decides a winner's outcome means for the other instances.
fn settlement(
    request: &Coalesce,
    outcome: &Result<CoordinatedResponse, TransportError>,
) -> flight::Settlement {
    match outcome {
        Ok(r) => flight::settle(request, &r.response),
        Err(_) => flight::settle_failure(),
    }
}

/// Cross-instance refresh coordination on Redis for the blocking client. Set it with
/// [`ServerClientBuilder::coordinator`](crate::blocking::ServerClientBuilder::coordinator).
///
/// A request has a coalesce key `k` (hashed again: `h = SHA-256(k)`) and, when it spends a
/// refresh token (every refresh, and the connection exchange), a lane `l` (the token's hash,
/// hashed again: `g = SHA-256(l)`). Instances share these keys:
///
/// * `{prefix}r:{h}:result` — the published answer for the key (remembered requests only);
/// * `{prefix}l:{g}:lock` — the lock of the lane: one instance at a time spends a refresh
///   token, whatever the audience or scope it asks for (a request without a lane locks
///   `{prefix}r:{h}:lock`, its key, instead);
/// * `{prefix}l:{g}:rotated` — the refresh token the lane's token was rotated to.
///
/// The in-process leader of a request runs one atomic script that returns the published
/// answer for its key if there is one, else the lane's published rotation if there is one,
/// else takes the lock with `SET NX PX lock_ttl` and a random fencing value:
///
/// * **Winner** (took the lock): sends the request, then — in one script, only while it still
///   holds the lock (fencing value compared) — publishes the answer for its key, publishes
///   the new refresh token for its lane when the answer rotated it, and deletes the lock.
///   Both are encrypted with the secrets under [`REFRESH_SALT`] (an answer: status, content
///   type, body and receive time; a rotation: the new token) and bound to their key or lane.
///   A well-formed 2xx answer stays published for the rotation grace window, a rotation for
///   the session's lifetime ([`flight::ROTATION_LIFETIME`]: a copy of the session that still
///   holds the replaced token may turn up days later); a
///   failure (non-2xx, malformed body, transport error) for [`DEFAULT_FAILURE_TTL`], so the
///   instances waiting now share it instead of retrying with a refresh token Auth0 may have
///   rotated. The answer to a request that is not remembered (the connection exchange) is
///   not published; its rotation, if any, is.
/// * **Waiters** poll the same script with a short backoff (5 ms doubling to 100 ms, never
///   past the lock's expiry). A waiter for the winner's key takes its answer; a waiter for
///   another key of the lane (another audience) finds the rotation and returns
///   [`Coordinated::Rotated`] without sending — the operation then asks again with the new
///   token, on that token's lane. Because publishing and releasing are one atomic step,
///   whoever takes the lock next sees the answer and the rotation first: no instance spends
///   a refresh token after another rotated it.
/// * **Crashed winner**: its lock expires after `lock_ttl`; one waiter then takes it and
///   refreshes. Keep `lock_ttl` above the HTTP client's total timeout, or a slow (not
///   crashed) winner loses its lock while its request is still in flight.
/// * **Bounded**: a waiter gives up after `wait_timeout` (default twice `lock_ttl`) with a
///   `store_error`; so does every caller when Redis is unreachable — nothing is sent then
///   (failing closed: sending uncoordinated could revoke the user's token family).
///
/// An async winner whose future is dropped mid-refresh cannot release its lock (there is no
/// async drop): the lock expires after `lock_ttl`, as for a crash.
pub struct RedisRefreshCoordinator {
    refreshes: Refreshes,
    pool: Pool,
}

impl std::fmt::Debug for RedisRefreshCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRefreshCoordinator")
            .field("prefix", &self.refreshes.prefix)
            .field("lock_ttl", &self.refreshes.lock_ttl)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisRefreshCoordinator`] (or an [`AsyncRedisRefreshCoordinator`]); start with
/// [`RedisRefreshCoordinator::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisRefreshCoordinatorBuilder {
    secrets: Vec<Secret>,
    endpoint: Endpoint,
    prefix: String,
    lock_ttl: Duration,
    wait_timeout: Option<Duration>,
    grace: Duration,
    failure_ttl: Duration,
}

impl std::fmt::Debug for RedisRefreshCoordinatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRefreshCoordinatorBuilder")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisRefreshCoordinator {
    /// A builder using the configuration's secrets and the Redis at `redis_url`.
    pub fn builder(
        config: &Config,
        redis_url: impl Into<String>,
    ) -> RedisRefreshCoordinatorBuilder {
        Self::builder_with_secrets(
            config.secrets().iter().map(|s| s.expose().to_owned()),
            redis_url,
        )
    }

    /// A builder with explicit secrets (each at least 32 bytes; the first encrypts).
    pub fn builder_with_secrets<S: Into<String>>(
        secrets: impl IntoIterator<Item = S>,
        redis_url: impl Into<String>,
    ) -> RedisRefreshCoordinatorBuilder {
        RedisRefreshCoordinatorBuilder {
            secrets: secrets.into_iter().map(Secret::new).collect(),
            endpoint: Endpoint::new(redis_url.into()),
            prefix: super::DEFAULT_KEY_PREFIX.to_owned(),
            lock_ttl: DEFAULT_LOCK_TTL,
            wait_timeout: None,
            grace: DEFAULT_ROTATION_GRACE,
            failure_ttl: DEFAULT_FAILURE_TTL,
        }
    }

    /// The Redis key of the lock a request takes (for operations and tests): its lane's lock
    /// when it spends a refresh token, else its key's.
    pub fn lock_key(&self, request: &Coalesce) -> String {
        self.refreshes.keys(request).lock
    }

    /// The Redis key of the published answer for a request's coalesce key.
    pub fn result_key(&self, request: &Coalesce) -> String {
        self.refreshes.keys(request).result
    }

    /// The Redis key of the published rotation of a request's lane (`None` without a lane).
    pub fn rotation_key(&self, request: &Coalesce) -> Option<String> {
        self.refreshes.keys(request).lane.map(|(_, key)| key)
    }
}

impl RedisRefreshCoordinatorBuilder {
    /// The prefix of every key (default [`DEFAULT_KEY_PREFIX`](super::DEFAULT_KEY_PREFIX)).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a lock lives (default [`DEFAULT_LOCK_TTL`]): the longest a crashed winner
    /// holds up the others. Must exceed the HTTP client's total timeout.
    pub fn lock_ttl(mut self, ttl: Duration) -> Self {
        self.lock_ttl = ttl;
        self
    }

    /// How long a waiter waits for another instance's answer before failing with
    /// `store_error` (default twice the lock TTL).
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = Some(timeout);
        self
    }

    /// How long a successful answer stays published (default
    /// [`DEFAULT_ROTATION_GRACE`](crate::DEFAULT_ROTATION_GRACE)); use the clients'
    /// `rotation_grace`.
    pub fn rotation_grace(mut self, window: Duration) -> Self {
        self.grace = window;
        self
    }

    /// How long a failure stays published (default [`DEFAULT_FAILURE_TTL`]).
    pub fn failure_ttl(mut self, ttl: Duration) -> Self {
        self.failure_ttl = ttl;
        self
    }

    /// How long to wait for a connection to Redis (default 2 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.endpoint.connect_timeout = timeout;
        self
    }

    /// How long to wait for one command's reply (default 2 s).
    pub fn io_timeout(mut self, timeout: Duration) -> Self {
        self.endpoint.io_timeout = timeout;
        self
    }

    fn refreshes(&self) -> Result<Refreshes, StoreError> {
        check_secrets(&self.secrets)?;
        if self.lock_ttl.as_millis() == 0 {
            return Err(StoreError::new(
                "Redis coordinator: lock_ttl must not be zero",
            ));
        }
        if self.lock_ttl > MAX_LOCK_TTL {
            return Err(StoreError::new(
                "Redis coordinator: lock_ttl must be at most 24 hours (a crashed instance's lock blocks refreshes that long)",
            ));
        }
        Ok(Refreshes {
            prefix: self.prefix.clone(),
            topology: self.endpoint.topology(),
            codec: codec(&self.secrets, REFRESH_SALT),
            lock_ttl: self.lock_ttl,
            wait_timeout: self.wait_timeout.unwrap_or(self.lock_ttl.saturating_mul(2)),
            // Published values live at most as long as a lock may (Redis refuses huge TTLs).
            grace: self.grace.clamp(Duration::from_millis(1), MAX_LOCK_TTL),
            failure_ttl: self
                .failure_ttl
                .clamp(Duration::from_millis(1), MAX_LOCK_TTL),
        })
    }

    /// The blocking coordinator (connects on first use).
    pub fn build(self) -> Result<RedisRefreshCoordinator, StoreError> {
        Ok(RedisRefreshCoordinator {
            refreshes: self.refreshes()?,
            pool: Pool::new(self.endpoint)?,
        })
    }

    /// The async coordinator (feature `redis-tokio`; use it inside a tokio runtime).
    #[cfg(feature = "redis-tokio")]
    pub fn build_async(self) -> Result<AsyncRedisRefreshCoordinator, StoreError> {
        Ok(AsyncRedisRefreshCoordinator {
            refreshes: self.refreshes()?,
            pool: AsyncPool::new(self.endpoint)?,
        })
    }
}

impl RefreshCoordinator for RedisRefreshCoordinator {
    fn coordinate(&self, request: &Coalesce, send: SendRequest<'_>) -> Result<Coordinated, Error> {
        let r = &self.refreshes;
        let k = r.keys(request);
        let fence = random_token(FENCE_BYTES)?;
        let started = Instant::now();
        let mut delay = FIRST_DELAY;
        loop {
            let reply: (i64, String) = self.pool.run("taking the refresh lock", |c| {
                r.acquire(&k, &fence).invoke(c)
            })?;
            let acquired = Refreshes::interpret(reply);
            let pttl_ms = match &acquired {
                Acquired::Lock => {
                    let outcome = send();
                    // The answer matters more than publishing it: a Redis failure now is
                    // not the caller's error (the others fall back on the lock's expiry).
                    let settle = r.settle(request, &k, &fence, &outcome);
                    let _ = self
                        .pool
                        .run("publishing the refresh", |c| settle.invoke::<i64>(c));
                    return Ok(Coordinated::Response(outcome?));
                }
                Acquired::Wait { pttl_ms } => *pttl_ms,
                Acquired::Published(_) | Acquired::Rotated(_) => {
                    match r.published(&k, &acquired) {
                        Some(outcome) => return outcome,
                        None => 0, // unreadable: wait until it expires
                    }
                }
            };
            match r.delay(&mut delay, pttl_ms, started) {
                Some(d) => std::thread::sleep(d),
                None => return Err(Refreshes::timed_out()),
            }
        }
    }
}

/// Cross-instance refresh coordination on Redis for the async client (feature
/// `redis-tokio`; use it inside a tokio runtime): the protocol of [`RedisRefreshCoordinator`].
/// Set it with
/// [`ServerClientBuilder::coordinator`](crate::nonblocking::ServerClientBuilder::coordinator).
#[cfg(feature = "redis-tokio")]
pub struct AsyncRedisRefreshCoordinator {
    refreshes: Refreshes,
    pool: AsyncPool,
}

#[cfg(feature = "redis-tokio")]
impl std::fmt::Debug for AsyncRedisRefreshCoordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRedisRefreshCoordinator")
            .field("prefix", &self.refreshes.prefix)
            .field("lock_ttl", &self.refreshes.lock_ttl)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "redis-tokio")]
impl AsyncRedisRefreshCoordinator {
    /// The Redis key of the lock a request takes (for operations and tests): its lane's lock
    /// when it spends a refresh token, else its key's.
    pub fn lock_key(&self, request: &Coalesce) -> String {
        self.refreshes.keys(request).lock
    }

    async fn run(
        &self,
        request: &Coalesce,
        send: crate::coordinator::SendFuture<'_>,
    ) -> Result<Coordinated, Error> {
        let r = &self.refreshes;
        let k = r.keys(request);
        let fence = random_token(FENCE_BYTES)?;
        let started = Instant::now();
        let mut delay = FIRST_DELAY;
        loop {
            let reply: (i64, String) = self
                .pool
                .run("taking the refresh lock", |mut c| {
                    let inv = r.acquire(&k, &fence);
                    async move { inv.invoke_async(&mut c).await }
                })
                .await?;
            let acquired = Refreshes::interpret(reply);
            let pttl_ms = match &acquired {
                Acquired::Lock => {
                    let outcome = send.await;
                    let settle = r.settle(request, &k, &fence, &outcome);
                    let _ = self
                        .pool
                        .run("publishing the refresh", |mut c| {
                            let inv = &settle;
                            async move { inv.invoke_async::<i64>(&mut c).await }
                        })
                        .await;
                    return Ok(Coordinated::Response(outcome?));
                }
                Acquired::Wait { pttl_ms } => *pttl_ms,
                Acquired::Published(_) | Acquired::Rotated(_) => match r.published(&k, &acquired) {
                    Some(outcome) => return outcome,
                    None => 0,
                },
            };
            match r.delay(&mut delay, pttl_ms, started) {
                Some(d) => tokio::time::sleep(d).await,
                None => return Err(Refreshes::timed_out()),
            }
        }
    }
}

#[cfg(feature = "redis-tokio")]
impl crate::coordinator::AsyncRefreshCoordinator for AsyncRedisRefreshCoordinator {
    fn coordinate<'a>(
        &'a self,
        request: &'a Coalesce,
        send: crate::coordinator::SendFuture<'a>,
    ) -> crate::coordinator::CoordinateFuture<'a> {
        Box::pin(self.run(request, send))
    }

    /// Finishes a flight whose caller went away on the tokio runtime (the one current where
    /// the caller was dropped, else the one the client was built on), so the lock this
    /// coordinator took is released with the answer published, even when the application
    /// gave no spawn hook of its own.
    fn spawn_hook(&self) -> Option<crate::nonblocking::Spawn> {
        let built_on = tokio::runtime::Handle::try_current().ok();
        Some(std::sync::Arc::new(
            move |flight| match tokio::runtime::Handle::try_current()
                .ok()
                .or_else(|| built_on.clone())
            {
                Some(runtime) => {
                    runtime.spawn(flight);
                }
                None => crate::trace::trace_event!(
                    ::tracing::Level::WARN,
                    "no tokio runtime to finish a refresh whose caller went away on; its coordinator lock is released when it expires"
                ),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth0_server_protocol::access_token::refresh_token_hash;
    use auth0_server_protocol::time::UnixTime;

    fn refreshes() -> Refreshes {
        RedisRefreshCoordinator::builder_with_secrets(
            ["a-secret-of-at-least-32-bytes-long!!"],
            "redis://127.0.0.1:1/",
        )
        .refreshes()
        .unwrap()
    }

    fn response(status: u16, body: &str) -> Result<CoordinatedResponse, TransportError> {
        let mut response = http::Response::new(body.as_bytes().to_vec());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(CoordinatedResponse {
            response,
            received_at: UnixTime::from_secs(1234),
        })
    }

    #[test]
    fn extreme_durations_are_refused_or_saturate_never_panic() {
        let builder = || {
            RedisRefreshCoordinator::builder_with_secrets(
                ["a-secret-of-at-least-32-bytes-long!!"],
                "redis://127.0.0.1:1/",
            )
        };
        let refused = builder().lock_ttl(Duration::MAX).refreshes();
        assert!(refused.is_err_and(|e| e.to_string().contains("lock_ttl")));
        let r = builder()
            .lock_ttl(MAX_LOCK_TTL)
            .wait_timeout(Duration::MAX)
            .rotation_grace(Duration::MAX)
            .failure_ttl(Duration::MAX)
            .refreshes()
            .unwrap();
        let (_, ttl) = r.encode_rotation("g", &Secret::new("rt")).unwrap();
        assert_eq!(
            ttl,
            flight::ROTATION_LIFETIME.as_millis() as u64,
            "the grace window is clamped to a day; a rotation lives the session's lifetime"
        );
        let mut delay = FIRST_DELAY;
        assert!(r.delay(&mut delay, u64::MAX, Instant::now()).is_some());
    }

    #[test]
    fn answers_round_trip_encrypted_and_only_for_their_key() {
        let r = refreshes();
        let ok = response(200, r#"{"access_token":"at-secret"}"#);
        let (value, ttl) = r.encode("h1", &ok, Share::ForGraceWindow).unwrap();
        assert!(!value.contains("at-secret"));
        assert_eq!(ttl, 60_000, "a success lives for the grace window");
        let back = r.decode("h1", &value).unwrap().unwrap();
        assert_eq!(back.received_at.as_secs(), 1234);
        assert_eq!(back.response.body(), ok.unwrap().response.body());
        assert_eq!(
            back.response.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        assert!(r.decode("h2", &value).is_none(), "another key's answer");
        assert!(r.decode("h1", "garbage").is_none());
    }

    fn coalesce(key: &str, lane: Option<&str>) -> Coalesce {
        Coalesce {
            key: key.into(),
            remember: true,
            lane: lane.map(str::to_owned),
        }
    }

    #[test]
    fn lane_requests_lock_their_lane_and_publish_per_key() {
        let r = refreshes();
        let (a, b) = (
            r.keys(&coalesce("refresh rt aud-a", Some("rt"))),
            r.keys(&coalesce("refresh rt aud-b", Some("rt"))),
        );
        assert_eq!(a.lock, b.lock, "one lock per lane, whatever the audience");
        assert_ne!(a.result, b.result, "answers stay per key");
        assert_eq!(a.lane.as_ref().unwrap().1, b.lane.as_ref().unwrap().1);
        assert!(a.lock.ends_with(":lock") && a.lock.contains(":l:"));
        let other = r.keys(&coalesce("refresh other aud-a", Some("other")));
        assert_ne!(other.lock, a.lock);
        // Without a lane, the key is locked (and there is no rotation).
        let laneless = r.keys(&coalesce("k", None));
        assert!(laneless.lock.contains(":r:") && laneless.lane.is_none());
    }

    /// The hash tag of a Redis Cluster key: what the first `{…}` holds, if non-empty.
    fn hash_tag(key: &str) -> &str {
        key.split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(tag, _)| tag)
            .filter(|tag| !tag.is_empty())
            .unwrap_or(key)
    }

    #[test]
    fn on_a_cluster_the_keys_of_one_script_share_a_hash_slot() {
        let cluster = RedisRefreshCoordinator::builder_with_secrets(
            ["a-secret-of-at-least-32-bytes-long!!"],
            "redis+cluster://127.0.0.1:1,127.0.0.1:2",
        )
        .refreshes()
        .unwrap();
        let k = cluster.keys(&coalesce("refresh rt aud-a", Some("rt")));
        let (_, rotated) = k.lane.as_ref().unwrap();
        assert_eq!(hash_tag(&k.lock), hash_tag(&k.result));
        assert_eq!(hash_tag(&k.lock), hash_tag(rotated));
        let other = cluster.keys(&coalesce("refresh other aud-a", Some("other")));
        assert_ne!(hash_tag(&k.lock), hash_tag(&other.lock), "lanes spread");
        let laneless = cluster.keys(&coalesce("k", None));
        assert_eq!(hash_tag(&laneless.lock), hash_tag(&laneless.result));
        // On one server the keys keep the names earlier versions used (no braces), so both
        // versions coordinate during a rolling upgrade.
        let single = refreshes().keys(&coalesce("refresh rt aud-a", Some("rt")));
        assert!(!single.lock.contains('{') && !single.result.contains('{'));
        assert_eq!(single.lock.replace(['{', '}'], ""), single.lock);
        assert_eq!(k.lock.replace(['{', '}'], ""), single.lock);
    }

    #[test]
    fn rotations_round_trip_encrypted_and_only_for_their_lane() {
        let r = refreshes();
        let (value, ttl) = r
            .encode_rotation("g1", &Secret::new("rt-new-secret"))
            .unwrap();
        assert!(!value.contains("rt-new-secret"));
        assert_eq!(
            ttl,
            flight::ROTATION_LIFETIME.as_millis() as u64,
            "a rotation lives as long as sessions do, not just the grace window"
        );
        assert_eq!(
            r.decode_rotation("g1", &value).unwrap().expose(),
            "rt-new-secret"
        );
        assert!(r.decode_rotation("g2", &value).is_none(), "another lane's");
        assert!(r.decode_rotation("g1", "garbage").is_none());
    }

    #[test]
    fn only_a_successful_answer_with_a_new_refresh_token_is_a_rotation() {
        let lane = refresh_token_hash(&Secret::new("rt-old"));
        let request = coalesce("k", Some(&lane));
        let rotation_of = |outcome: &Result<CoordinatedResponse, TransportError>| {
            settlement(&request, outcome).rotated_to
        };
        let rotated = response(200, r#"{"access_token":"at","refresh_token":"rt-new"}"#);
        assert_eq!(rotation_of(&rotated).unwrap().expose(), "rt-new");
        for outcome in [
            response(200, r#"{"access_token":"at"}"#),
            response(200, r#"{"access_token":"at","refresh_token":"rt-old"}"#),
            response(403, r#"{"error":"invalid_grant","refresh_token":"rt-new"}"#),
            Err(TransportError::new(TransportErrorKind::Timeout, "t")),
        ] {
            assert!(rotation_of(&outcome).is_none());
        }
    }

    #[test]
    fn failures_are_published_briefly() {
        let r = refreshes();
        let request = coalesce("k", None);
        let encode = |outcome: &Result<CoordinatedResponse, TransportError>| {
            r.encode("h", outcome, settlement(&request, outcome).share)
                .unwrap()
        };
        let (_, ttl) = encode(&response(403, r#"{"error":"invalid_grant"}"#));
        assert_eq!(ttl, 2_000);
        let (_, ttl) = encode(&response(200, ""));
        assert_eq!(ttl, 2_000, "a malformed 200 is a failure");
        let e = TransportError::new(TransportErrorKind::Timeout, "POST /oauth/token: timed out");
        let (value, ttl) = encode(&Err(e));
        assert_eq!(ttl, 2_000);
        let back = r.decode("h", &value).unwrap().unwrap_err();
        assert_eq!(back.kind(), TransportErrorKind::Timeout);
    }

    #[test]
    fn waiting_is_bounded_and_wakes_at_lock_expiry() {
        let r = refreshes();
        let started = Instant::now();
        let mut delay = FIRST_DELAY;
        assert_eq!(r.delay(&mut delay, 0, started), Some(FIRST_DELAY));
        assert_eq!(
            r.delay(&mut delay, 3, started),
            Some(Duration::from_millis(4))
        );
        for _ in 0..10 {
            r.delay(&mut delay, 0, started);
        }
        assert_eq!(delay, flight::MAX_POLL_DELAY);
        let long_ago = Instant::now() - r.wait_timeout;
        assert_eq!(r.delay(&mut delay, 0, long_ago), None);
    }
}
