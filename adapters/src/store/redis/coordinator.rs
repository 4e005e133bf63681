//! Cross-instance refresh coordination on Redis: see [`RedisRefreshCoordinator`].

#[cfg(feature = "redis-tokio")]
use super::pool::AsyncPool;
use super::pool::{Endpoint, Pool};
use super::{REFRESH_SALT, check_secrets, codec, hex_sha256, random_token, scripts};
use crate::coordinator::{CoordinatedResponse, RefreshCoordinator, SendRequest};
use crate::driver::DEFAULT_ROTATION_GRACE;
use crate::error::{Error, TransportError, TransportErrorKind};
use crate::store::StoreError;
use crate::store::cookie::codec::CookieCodec;
use auth0_server_protocol::config::Config;
use auth0_server_protocol::secret::Secret;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Default lifetime of a refresh lock: how long a crashed winner blocks the others.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(30);
/// Default lifetime of a published failure.
pub const DEFAULT_FAILURE_TTL: Duration = Duration::from_secs(2);

const FIRST_DELAY: Duration = Duration::from_millis(5);
const MAX_DELAY: Duration = Duration::from_millis(100);
const FENCE_BYTES: usize = 16;

/// Settings and pure logic shared by the blocking and the async coordinator.
pub(crate) struct Refreshes {
    prefix: String,
    codec: CookieCodec,
    lock_ttl: Duration,
    wait_timeout: Duration,
    grace: Duration,
    failure_ttl: Duration,
}

/// What the acquire script answered.
enum Acquired {
    Published(String),
    Lock,
    Wait { pttl_ms: u64 },
}

impl Refreshes {
    fn keys(&self, key: &str) -> (String, String, String) {
        let h = hex_sha256(&[key]);
        let result = format!("{}r:{h}:result", self.prefix);
        let lock = format!("{}r:{h}:lock", self.prefix);
        (h, result, lock)
    }

    fn acquire(&self, result: &str, lock: &str, fence: &str) -> redis::ScriptInvocation<'static> {
        let mut inv = scripts::ACQUIRE.prepare_invoke();
        inv.key(result).key(lock).arg(fence).arg(
            u64::try_from(self.lock_ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        inv
    }

    fn interpret(reply: (i64, String)) -> Acquired {
        match reply.0 {
            1 => Acquired::Published(reply.1),
            2 => Acquired::Lock,
            _ => Acquired::Wait {
                pttl_ms: reply.1.parse().unwrap_or(0),
            },
        }
    }

    fn publish(
        &self,
        result: &str,
        lock: &str,
        fence: &str,
        value: &str,
        ttl_ms: u64,
    ) -> redis::ScriptInvocation<'static> {
        let mut inv = scripts::PUBLISH.prepare_invoke();
        inv.key(result).key(lock).arg(fence).arg(value).arg(ttl_ms);
        inv
    }

    fn release(&self, lock: &str, fence: &str) -> redis::ScriptInvocation<'static> {
        let mut inv = scripts::RELEASE.prepare_invoke();
        inv.key(lock).arg(fence);
        inv
    }

    /// The encrypted outcome and how long (ms) to keep it published.
    fn encode(
        &self,
        hash: &str,
        outcome: &Result<CoordinatedResponse, TransportError>,
    ) -> Result<(String, u64), StoreError> {
        let (doc, ttl) = match outcome {
            Ok(r) => {
                let content_type = r
                    .response
                    .headers()
                    .get(http::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok());
                let doc = json!({
                    "k": hash,
                    "s": r.response.status().as_u16(),
                    "ct": content_type,
                    "b": STANDARD.encode(r.response.body()),
                    "at": r.received_at,
                });
                let ttl = if is_well_formed_success(&r.response) {
                    self.grace
                } else {
                    self.failure_ttl
                };
                (doc, ttl)
            }
            Err(e) => {
                let kind = match e.kind() {
                    TransportErrorKind::Timeout => "timeout",
                    TransportErrorKind::Connect => "connect",
                    TransportErrorKind::ResponseTooLarge => "too_large",
                    _ => "io",
                };
                (
                    json!({ "k": hash, "e": kind, "m": e.message() }),
                    self.failure_ttl,
                )
            }
        };
        let bytes = serde_json::to_vec(&doc)
            .map_err(|e| StoreError::with_source("cannot serialise the refresh answer", e))?;
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        Ok((self.codec.encrypt(&bytes)?, ttl_ms))
    }

    /// A published outcome for `hash`, or `None` when it is unreadable (foreign secret,
    /// tampered, another key's).
    fn decode(
        &self,
        hash: &str,
        value: &str,
    ) -> Option<Result<CoordinatedResponse, TransportError>> {
        let doc: Value = serde_json::from_slice(&self.codec.decrypt(value)?).ok()?;
        if doc.get("k")?.as_str()? != hash {
            return None;
        }
        if let Some(kind) = doc.get("e").and_then(Value::as_str) {
            let kind = match kind {
                "timeout" => TransportErrorKind::Timeout,
                "connect" => TransportErrorKind::Connect,
                "too_large" => TransportErrorKind::ResponseTooLarge,
                _ => TransportErrorKind::Io,
            };
            let message = doc.get("m").and_then(Value::as_str).unwrap_or_default();
            return Some(Err(TransportError::new(
                kind,
                format!("{message} (sent by another instance)"),
            )));
        }
        let status =
            http::StatusCode::from_u16(u16::try_from(doc.get("s")?.as_u64()?).ok()?).ok()?;
        let body = STANDARD.decode(doc.get("b")?.as_str()?).ok()?;
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        if let Some(ct) = doc.get("ct").and_then(Value::as_str) {
            if let Ok(v) = http::HeaderValue::from_str(ct) {
                response.headers_mut().insert(http::header::CONTENT_TYPE, v);
            }
        }
        Some(Ok(CoordinatedResponse {
            response,
            received_at: doc.get("at")?.as_u64()?,
        }))
    }

    /// How long to sleep before polling again.
    fn delay(&self, delay: &mut Duration, pttl_ms: u64, started: Instant) -> Option<Duration> {
        let left = self.wait_timeout.checked_sub(started.elapsed())?;
        if left.is_zero() {
            return None;
        }
        let mut d = *delay;
        *delay = (*delay * 2).min(MAX_DELAY);
        if pttl_ms > 0 {
            // Wake when the lock expires, to take over from a crashed winner promptly.
            d = d.min(Duration::from_millis(pttl_ms + 1));
        }
        Some(d.min(left))
    }

    fn timed_out() -> Error {
        StoreError::new("timed out waiting for another instance's refresh").into()
    }
}

/// Whether a response is a 2xx whose body is a JSON object (only those are kept for the
/// rotation grace window, as in-process).
fn is_well_formed_success(r: &http::Response<Vec<u8>>) -> bool {
    r.status().is_success()
        && serde_json::from_slice::<serde_json::Map<String, Value>>(r.body()).is_ok()
}

/// Cross-instance refresh coordination on Redis for the blocking client. Set it with
/// [`ServerClientBuilder::coordinator`](crate::blocking::ServerClientBuilder::coordinator).
///
/// For a refresh with coalesce key `k` (hashed again: `h = SHA-256(k)`), instances share two
/// keys: `{prefix}r:{h}:lock` and `{prefix}r:{h}:result`. The in-process leader of a refresh
/// runs one atomic script that returns the published result if there is one, else takes the
/// lock with `SET NX PX lock_ttl` and a random fencing value:
///
/// * **Winner** (took the lock): sends the refresh, then — in one script, only while it still
///   holds the lock (fencing value compared) — publishes the answer (status, content type,
///   body and receive time, encrypted with the secrets under [`REFRESH_SALT`]) and deletes the
///   lock. A well-formed 2xx answer stays published for the rotation grace window; a failure
///   (non-2xx, malformed body, transport error) for [`DEFAULT_FAILURE_TTL`], so the instances
///   waiting now share it instead of retrying with a refresh token Auth0 may have rotated.
/// * **Waiters** poll the same script with a short backoff (5 ms doubling to 100 ms, never
///   past the lock's expiry) until the answer is published, and use it. Because publishing
///   and releasing are one atomic step, whoever takes the lock next sees the answer first: no
///   instance sends the old refresh token after another rotated it, within the window.
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

    /// The Redis key of the lock for a coalesce key (for operations and tests).
    pub fn lock_key(&self, coalesce_key: &str) -> String {
        self.refreshes.keys(coalesce_key).2
    }

    /// The Redis key of the published answer for a coalesce key.
    pub fn result_key(&self, coalesce_key: &str) -> String {
        self.refreshes.keys(coalesce_key).1
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
        Ok(Refreshes {
            prefix: self.prefix.clone(),
            codec: codec(&self.secrets, REFRESH_SALT),
            lock_ttl: self.lock_ttl,
            wait_timeout: self.wait_timeout.unwrap_or(self.lock_ttl * 2),
            grace: self.grace.max(Duration::from_millis(1)),
            failure_ttl: self.failure_ttl.max(Duration::from_millis(1)),
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
    fn coordinate(&self, key: &str, send: SendRequest<'_>) -> Result<CoordinatedResponse, Error> {
        let r = &self.refreshes;
        let (hash, result, lock) = r.keys(key);
        let fence = random_token(FENCE_BYTES)?;
        let started = Instant::now();
        let mut delay = FIRST_DELAY;
        loop {
            let reply: (i64, String) = self.pool.run("taking the refresh lock", |c| {
                r.acquire(&result, &lock, &fence).invoke(c)
            })?;
            let pttl_ms = match Refreshes::interpret(reply) {
                Acquired::Published(value) => match r.decode(&hash, &value) {
                    Some(outcome) => return Ok(outcome?),
                    None => 0, // unreadable: wait until it expires
                },
                Acquired::Lock => {
                    let outcome = send();
                    // The answer matters more than publishing it: a Redis failure now is
                    // not the caller's error (the others fall back on the lock's expiry).
                    match r.encode(&hash, &outcome) {
                        Ok((value, ttl_ms)) => {
                            let _ = self.pool.run("publishing the refresh", |c| {
                                r.publish(&result, &lock, &fence, &value, ttl_ms)
                                    .invoke::<i64>(c)
                            });
                        }
                        Err(_) => {
                            let _ = self.pool.run("releasing the refresh lock", |c| {
                                r.release(&lock, &fence).invoke::<i64>(c)
                            });
                        }
                    }
                    return Ok(outcome?);
                }
                Acquired::Wait { pttl_ms } => pttl_ms,
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
    /// The Redis key of the lock for a coalesce key (for operations and tests).
    pub fn lock_key(&self, coalesce_key: &str) -> String {
        self.refreshes.keys(coalesce_key).2
    }

    async fn run(
        &self,
        key: &str,
        send: crate::coordinator::SendFuture<'_>,
    ) -> Result<CoordinatedResponse, Error> {
        let r = &self.refreshes;
        let (hash, result, lock) = r.keys(key);
        let fence = random_token(FENCE_BYTES)?;
        let started = Instant::now();
        let mut delay = FIRST_DELAY;
        loop {
            let reply: (i64, String) = self
                .pool
                .run("taking the refresh lock", |mut c| {
                    let inv = r.acquire(&result, &lock, &fence);
                    async move { inv.invoke_async(&mut c).await }
                })
                .await?;
            let pttl_ms = match Refreshes::interpret(reply) {
                Acquired::Published(value) => match r.decode(&hash, &value) {
                    Some(outcome) => return Ok(outcome?),
                    None => 0,
                },
                Acquired::Lock => {
                    let outcome = send.await;
                    let inv = match r.encode(&hash, &outcome) {
                        Ok((value, ttl_ms)) => r.publish(&result, &lock, &fence, &value, ttl_ms),
                        Err(_) => r.release(&lock, &fence),
                    };
                    let _ = self
                        .pool
                        .run("publishing the refresh", |mut c| {
                            let inv = &inv;
                            async move { inv.invoke_async::<i64>(&mut c).await }
                        })
                        .await;
                    return Ok(outcome?);
                }
                Acquired::Wait { pttl_ms } => pttl_ms,
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
        key: &'a str,
        send: crate::coordinator::SendFuture<'a>,
    ) -> crate::coordinator::CoordinateFuture<'a> {
        Box::pin(self.run(key, send))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            received_at: 1234,
        })
    }

    #[test]
    fn answers_round_trip_encrypted_and_only_for_their_key() {
        let r = refreshes();
        let ok = response(200, r#"{"access_token":"at-secret"}"#);
        let (value, ttl) = r.encode("h1", &ok).unwrap();
        assert!(!value.contains("at-secret"));
        assert_eq!(ttl, 60_000, "a success lives for the grace window");
        let back = r.decode("h1", &value).unwrap().unwrap();
        assert_eq!(back.received_at, 1234);
        assert_eq!(back.response.body(), ok.unwrap().response.body());
        assert_eq!(
            back.response.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        assert!(r.decode("h2", &value).is_none(), "another key's answer");
        assert!(r.decode("h1", "garbage").is_none());
    }

    #[test]
    fn failures_are_published_briefly() {
        let r = refreshes();
        let (_, ttl) = r
            .encode("h", &response(403, r#"{"error":"invalid_grant"}"#))
            .unwrap();
        assert_eq!(ttl, 2_000);
        let (_, ttl) = r.encode("h", &response(200, "")).unwrap();
        assert_eq!(ttl, 2_000, "a malformed 200 is a failure");
        let e = TransportError::new(TransportErrorKind::Timeout, "POST /oauth/token: timed out");
        let (value, ttl) = r.encode("h", &Err(e)).unwrap();
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
        assert_eq!(delay, MAX_DELAY);
        let long_ago = Instant::now() - r.wait_timeout;
        assert_eq!(r.delay(&mut delay, 0, long_ago), None);
    }
}
