//! Connections to Redis: a small pool of blocking connections, and (feature `redis-tokio`)
//! one shared multiplexed async connection. Both connect lazily: building a store never
//! touches the network, and a Redis that is down surfaces as a [`StoreError`] on first use.

use crate::store::StoreError;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Default connect timeout to Redis.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default timeout of one Redis command (reading its reply).
pub const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Most idle blocking connections kept per store.
const MAX_IDLE: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where Redis is and how long to wait for it.
#[derive(Clone)]
pub(crate) struct Endpoint {
    pub(crate) url: String,
    pub(crate) connect_timeout: Duration,
    pub(crate) io_timeout: Duration,
}

impl Endpoint {
    pub(crate) fn new(url: String) -> Self {
        Endpoint {
            url,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            io_timeout: DEFAULT_IO_TIMEOUT,
        }
    }

    fn client(&self) -> Result<redis::Client, StoreError> {
        // The URL may hold a user and password: only its scheme and host are ever shown.
        let shown = redacted_url(&self.url);
        if self.url.starts_with("rediss://") && cfg!(not(feature = "redis-tls")) {
            return Err(StoreError::new(format!(
                "Redis URL {shown}: rediss:// (TLS) needs auth0-server's `redis-tls` feature \
                 (`redis-tokio-tls` for the async stores)"
            )));
        }
        redis::Client::open(self.url.as_str())
            .map_err(|e| StoreError::new(format!("invalid Redis URL {shown} ({:?})", e.kind())))
    }
}

/// A Redis URL for messages: scheme, host and port only (no user, password or database).
fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", u.scheme()),
            (Some(host), None) => format!("{}://{host}", u.scheme()),
            _ => format!("{}://…", u.scheme()),
        },
        Err(_) => "(unparsable)".to_owned(),
    }
}

/// A Redis error as a store error. Redis errors carry no session data (values travel in
/// arguments, never in error messages).
pub(crate) fn store_error(what: &str, e: redis::RedisError) -> StoreError {
    StoreError::with_source(format!("Redis: {what} failed"), e)
}

/// Whether a connection that returned `e` must be thrown away.
fn is_broken(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error()
}

/// Blocking connections, reused between calls.
pub(crate) struct Pool {
    client: redis::Client,
    endpoint: Endpoint,
    idle: Mutex<Vec<redis::Connection>>,
}

impl Pool {
    pub(crate) fn new(endpoint: Endpoint) -> Result<Self, StoreError> {
        Ok(Pool {
            client: endpoint.client()?,
            endpoint,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn connect(&self) -> Result<redis::Connection, redis::RedisError> {
        let conn = self
            .client
            .get_connection_with_timeout(self.endpoint.connect_timeout)?;
        conn.set_read_timeout(Some(self.endpoint.io_timeout))?;
        conn.set_write_timeout(Some(self.endpoint.io_timeout))?;
        Ok(conn)
    }

    /// Runs `f` on a connection. A pooled connection that turns out broken (Redis restarted,
    /// idle timeout) is replaced by a fresh one and `f` runs once more: every command this
    /// module sends is safe to repeat.
    pub(crate) fn run<R>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<R>,
    ) -> Result<R, StoreError> {
        let pooled = lock(&self.idle).pop();
        let was_pooled = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect().map_err(|e| store_error(what, e))?,
        };
        let mut result = f(&mut conn);
        if was_pooled
            && result
                .as_ref()
                .is_err_and(|e| is_broken(e) && !e.is_timeout())
        {
            conn = self.connect().map_err(|e| store_error(what, e))?;
            result = f(&mut conn);
        }
        match result {
            Ok(r) => {
                let mut idle = lock(&self.idle);
                if idle.len() < MAX_IDLE {
                    idle.push(conn);
                }
                Ok(r)
            }
            Err(e) => {
                if !is_broken(&e) {
                    let mut idle = lock(&self.idle);
                    if idle.len() < MAX_IDLE {
                        idle.push(conn);
                    }
                }
                Err(store_error(what, e))
            }
        }
    }
}

/// One multiplexed async connection (it pipelines concurrent commands), made on first use
/// and replaced when it breaks. Must be used inside a tokio runtime.
#[cfg(feature = "redis-tokio")]
pub(crate) struct AsyncPool {
    client: redis::Client,
    endpoint: Endpoint,
    conn: Mutex<Option<redis::aio::MultiplexedConnection>>,
}

#[cfg(feature = "redis-tokio")]
impl AsyncPool {
    pub(crate) fn new(endpoint: Endpoint) -> Result<Self, StoreError> {
        Ok(AsyncPool {
            client: endpoint.client()?,
            endpoint,
            conn: Mutex::new(None),
        })
    }

    async fn connection(&self) -> Result<redis::aio::MultiplexedConnection, redis::RedisError> {
        if let Some(c) = lock(&self.conn).clone() {
            return Ok(c);
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.endpoint.connect_timeout))
            .set_response_timeout(Some(self.endpoint.io_timeout));
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        *lock(&self.conn) = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` on the shared connection; a broken connection is dropped (the next call
    /// reconnects) and `f` runs once more on a fresh one.
    pub(crate) async fn run<R, F, Fut>(&self, what: &str, mut f: F) -> Result<R, StoreError>
    where
        F: FnMut(redis::aio::MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<R>>,
    {
        let mut retried = false;
        loop {
            let conn = self.connection().await.map_err(|e| store_error(what, e))?;
            match f(conn).await {
                Ok(r) => return Ok(r),
                Err(e) if is_broken(&e) => {
                    *lock(&self.conn) = None;
                    if retried || e.is_timeout() {
                        return Err(store_error(what, e));
                    }
                    retried = true;
                }
                Err(e) => return Err(store_error(what, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_show_no_user_or_password() {
        let shown = redacted_url("rediss://app-user:s3cret@cache.example.com:6380/2");
        assert_eq!(shown, "rediss://cache.example.com:6380");
        let e = Endpoint::new("redis://app-user:s3cret@cache.example.com:bad/".into())
            .client()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!e.contains("s3cret") && !e.contains("app-user"), "{e}");
    }

    #[cfg(not(feature = "redis-tls"))]
    #[test]
    fn rediss_without_the_tls_feature_says_so() {
        let e = Endpoint::new("rediss://user:s3cret@cache.example.com:6380/".into())
            .client()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("`redis-tls` feature"), "{e}");
        assert!(e.contains("rediss://cache.example.com:6380"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }
}
