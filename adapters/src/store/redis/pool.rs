//! Connections to Redis: a small pool of blocking connections, and (feature `redis-tokio`)
//! one shared multiplexed async connection. Both connect lazily: building a store never
//! touches the network, and a Redis that is down surfaces as a [`StoreError`] on first use.
//!
//! A `redis+cluster://` (or `rediss+cluster://`) URL names a Redis Cluster (feature
//! `redis-cluster`, and `redis-tokio-cluster` for the async types): the same pool holds
//! cluster connections of the `redis` crate, which route each command to the node owning its
//! key's hash slot and follow `MOVED`/`ASK` redirections.

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

/// Whether the Redis behind an endpoint is one server or a cluster: the stores lay out their
/// keys and split their scripts by it (see the [module documentation](super#redis-cluster)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Topology {
    /// One server (standalone, or a primary with replicas / Sentinel): every script may touch
    /// any key, so a save and its index entries are one atomic script.
    Standalone,
    /// A Redis Cluster: every script touches the keys of one hash slot only.
    Cluster,
}

/// Scheme suffix naming a cluster: `redis+cluster://` and `rediss+cluster://`.
const CLUSTER_SCHEMES: [(&str, &str); 2] = [
    ("redis+cluster://", "redis://"),
    ("rediss+cluster://", "rediss://"),
];

/// The node URLs of a `redis+cluster://[user:password@]host:port[,host:port…][/]` URL (each
/// with the same user and password), or `None` when the URL names no cluster.
pub(crate) fn cluster_nodes(url: &str) -> Option<Vec<String>> {
    let (scheme, rest) = CLUSTER_SCHEMES
        .iter()
        .find_map(|(cluster, plain)| url.strip_prefix(cluster).map(|rest| (*plain, rest)))?;
    let rest = rest.trim_end_matches('/');
    let (userinfo, hosts) = match rest.rsplit_once('@') {
        Some((userinfo, hosts)) => (format!("{userinfo}@"), hosts),
        None => (String::new(), rest),
    };
    Some(
        hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(|h| format!("{scheme}{userinfo}{h}/"))
            .collect(),
    )
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

    /// One server or a cluster, as the URL says.
    pub(crate) fn topology(&self) -> Topology {
        if cluster_nodes(&self.url).is_some() {
            Topology::Cluster
        } else {
            Topology::Standalone
        }
    }

    fn client(&self) -> Result<Client, StoreError> {
        // The URL may hold a user and password: only its scheme and host are ever shown.
        let shown = redacted_url(&self.url);
        if (self.url.starts_with("rediss://") || self.url.starts_with("rediss+cluster://"))
            && cfg!(not(feature = "redis-tls"))
        {
            return Err(StoreError::new(format!(
                "Redis URL {shown}: rediss:// (TLS) needs auth0-server's `redis-tls` feature \
                 (`redis-tokio-tls` for the async stores)"
            )));
        }
        let invalid = |e: redis::RedisError| {
            StoreError::new(format!("invalid Redis URL {shown} ({:?})", e.kind()))
        };
        match cluster_nodes(&self.url) {
            None => redis::Client::open(self.url.as_str())
                .map(Client::Single)
                .map_err(invalid),
            Some(nodes) => self.cluster_client(&shown, nodes),
        }
    }

    #[cfg(feature = "redis-cluster")]
    fn cluster_client(&self, shown: &str, nodes: Vec<String>) -> Result<Client, StoreError> {
        if nodes.is_empty() {
            return Err(StoreError::new(format!(
                "invalid Redis URL {shown} (a cluster URL names at least one host:port)"
            )));
        }
        redis::cluster::ClusterClient::builder(nodes)
            .connection_timeout(self.connect_timeout)
            .response_timeout(self.io_timeout)
            .build()
            .map(Client::Cluster)
            .map_err(|e| StoreError::new(format!("invalid Redis URL {shown} ({:?})", e.kind())))
    }

    #[cfg(not(feature = "redis-cluster"))]
    fn cluster_client(&self, shown: &str, _nodes: Vec<String>) -> Result<Client, StoreError> {
        Err(StoreError::new(format!(
            "Redis URL {shown}: a Redis Cluster needs auth0-server's `redis-cluster` feature \
             (`redis-tokio-cluster` for the async stores)"
        )))
    }
}

/// A client of one server or of a cluster (one per store, made once: its size is no matter).
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
enum Client {
    Single(redis::Client),
    #[cfg(feature = "redis-cluster")]
    Cluster(redis::cluster::ClusterClient),
}

/// A blocking connection to one server or to a cluster.
enum Conn {
    Single(redis::Connection),
    #[cfg(feature = "redis-cluster")]
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Conn {
    fn like(&mut self) -> &mut dyn redis::ConnectionLike {
        match self {
            Conn::Single(c) => c,
            #[cfg(feature = "redis-cluster")]
            Conn::Cluster(c) => &mut **c,
        }
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
    client: Client,
    endpoint: Endpoint,
    idle: Mutex<Vec<Conn>>,
}

impl Pool {
    pub(crate) fn new(endpoint: Endpoint) -> Result<Self, StoreError> {
        Ok(Pool {
            client: endpoint.client()?,
            endpoint,
            idle: Mutex::new(Vec::new()),
        })
    }

    fn connect(&self) -> Result<Conn, redis::RedisError> {
        match &self.client {
            Client::Single(client) => {
                let conn = client.get_connection_with_timeout(self.endpoint.connect_timeout)?;
                conn.set_read_timeout(Some(self.endpoint.io_timeout))?;
                conn.set_write_timeout(Some(self.endpoint.io_timeout))?;
                Ok(Conn::Single(conn))
            }
            #[cfg(feature = "redis-cluster")]
            Client::Cluster(client) => {
                let conn = client.get_connection()?;
                conn.set_write_timeout(Some(self.endpoint.io_timeout))?;
                Ok(Conn::Cluster(Box::new(conn)))
            }
        }
    }

    /// Runs `f` on a connection. A pooled connection that turns out broken (Redis restarted,
    /// idle timeout) is replaced by a fresh one and `f` runs once more: every command this
    /// module sends is safe to repeat.
    pub(crate) fn run<R>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut dyn redis::ConnectionLike) -> redis::RedisResult<R>,
    ) -> Result<R, StoreError> {
        let pooled = lock(&self.idle).pop();
        let was_pooled = pooled.is_some();
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect().map_err(|e| store_error(what, e))?,
        };
        let mut result = f(conn.like());
        if was_pooled
            && result
                .as_ref()
                .is_err_and(|e| is_broken(e) && !e.is_timeout())
        {
            conn = self.connect().map_err(|e| store_error(what, e))?;
            result = f(conn.like());
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

/// An async connection to one server or to a cluster (both multiplex concurrent commands
/// over their sockets; cloning one shares them).
#[cfg(feature = "redis-tokio")]
#[derive(Clone)]
pub(crate) enum AsyncConn {
    Single(redis::aio::MultiplexedConnection),
    #[cfg(feature = "redis-tokio-cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

#[cfg(feature = "redis-tokio")]
impl redis::aio::ConnectionLike for AsyncConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            AsyncConn::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "redis-tokio-cluster")]
            AsyncConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            AsyncConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "redis-tokio-cluster")]
            AsyncConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            AsyncConn::Single(c) => c.get_db(),
            #[cfg(feature = "redis-tokio-cluster")]
            AsyncConn::Cluster(c) => c.get_db(),
        }
    }
}

/// One multiplexed async connection (it pipelines concurrent commands), made on first use
/// and replaced when it breaks. Must be used inside a tokio runtime.
#[cfg(feature = "redis-tokio")]
pub(crate) struct AsyncPool {
    client: Client,
    endpoint: Endpoint,
    conn: Mutex<Option<AsyncConn>>,
}

#[cfg(feature = "redis-tokio")]
impl AsyncPool {
    pub(crate) fn new(endpoint: Endpoint) -> Result<Self, StoreError> {
        let client = endpoint.client()?;
        #[cfg(all(feature = "redis-cluster", not(feature = "redis-tokio-cluster")))]
        if matches!(client, Client::Cluster(_)) {
            return Err(StoreError::new(format!(
                "Redis URL {}: the async stores need auth0-server's `redis-tokio-cluster` \
                 feature for a Redis Cluster",
                redacted_url(&endpoint.url)
            )));
        }
        Ok(AsyncPool {
            client,
            endpoint,
            conn: Mutex::new(None),
        })
    }

    async fn connection(&self) -> Result<AsyncConn, redis::RedisError> {
        if let Some(c) = lock(&self.conn).clone() {
            return Ok(c);
        }
        let c = match &self.client {
            Client::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.endpoint.connect_timeout))
                    .set_response_timeout(Some(self.endpoint.io_timeout));
                AsyncConn::Single(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                )
            }
            #[cfg(feature = "redis-tokio-cluster")]
            Client::Cluster(client) => AsyncConn::Cluster(client.get_async_connection().await?),
            #[cfg(all(feature = "redis-cluster", not(feature = "redis-tokio-cluster")))]
            Client::Cluster(_) => {
                return Err((
                    redis::ErrorKind::InvalidClientConfig,
                    "a Redis Cluster needs the `redis-tokio-cluster` feature",
                )
                    .into());
            }
        };
        *lock(&self.conn) = Some(c.clone());
        Ok(c)
    }

    /// Runs `f` on the shared connection; a broken connection is dropped (the next call
    /// reconnects) and `f` runs once more on a fresh one.
    pub(crate) async fn run<R, F, Fut>(&self, what: &str, mut f: F) -> Result<R, StoreError>
    where
        F: FnMut(AsyncConn) -> Fut,
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

    #[test]
    fn cluster_urls_name_their_nodes_with_the_same_credentials() {
        assert_eq!(
            cluster_nodes("redis+cluster://app:pw@10.0.0.1:7000,10.0.0.2:7001/"),
            Some(vec![
                "redis://app:pw@10.0.0.1:7000/".to_owned(),
                "redis://app:pw@10.0.0.2:7001/".to_owned()
            ])
        );
        assert_eq!(
            cluster_nodes("rediss+cluster://cache.example.com:6380"),
            Some(vec!["rediss://cache.example.com:6380/".to_owned()])
        );
        assert_eq!(cluster_nodes("redis://127.0.0.1:6379/"), None);
        let endpoint = |url: &str| Endpoint::new(url.to_owned());
        assert_eq!(
            endpoint("redis+cluster://h:1").topology(),
            Topology::Cluster
        );
        assert_eq!(endpoint("redis://h:1/").topology(), Topology::Standalone);
    }

    #[cfg(not(feature = "redis-cluster"))]
    #[test]
    fn a_cluster_url_without_the_cluster_feature_says_so() {
        let e = Endpoint::new("redis+cluster://user:s3cret@10.0.0.1:7000,10.0.0.2:7000".into())
            .client()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("`redis-cluster` feature"), "{e}");
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[cfg(feature = "redis-cluster")]
    #[test]
    fn a_cluster_url_without_hosts_is_refused() {
        let e = Endpoint::new("redis+cluster:///".into())
            .client()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("at least one host:port"), "{e}");
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
