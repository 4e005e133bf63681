//! The async Redis stores (feature `redis-tokio`): the same logic and data as the blocking
//! stores, over one multiplexed connection of the `redis` crate's tokio integration. Use them
//! inside a tokio runtime.

use super::pool::AsyncPool;
use super::pool::Topology;
use super::{
    Ending, IndexMode, Loaded, MAX_UPDATE_ATTEMPTS, MISSING_INDEX, Prepared, SESSION_ID_BYTES,
    Sessions, Transactions, UpdateStep, chunks, ended, logout_token_id_recorded, random_token,
    record_logout_token_id_cmd, update_contended, update_written,
};
use crate::store::{
    AsyncStateStore, AsyncTransactionStore, CookieOptions, LogoutTokenIdRecord, StoreError,
};
use auth0_server_protocol::effect::LogoutTokenClaims;
use auth0_server_protocol::session::{SessionUpdate, StateData, Updated};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::transaction::TransactionData;
use std::future::Future;
use std::sync::Arc;

/// Sessions in Redis for the async client (feature `redis-tokio`); built with
/// [`RedisStateStoreBuilder::build_async`](super::RedisStateStoreBuilder::build_async). See
/// the [module documentation](super).
pub struct AsyncRedisStateStore {
    sessions: Sessions,
    pool: AsyncPool,
}

impl std::fmt::Debug for AsyncRedisStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRedisStateStore")
            .field("prefix", &self.sessions.prefix)
            .field("cookie_name", &self.sessions.cookie_name)
            .finish_non_exhaustive()
    }
}

impl AsyncRedisStateStore {
    pub(crate) fn new(sessions: Sessions, pool: AsyncPool) -> Self {
        AsyncRedisStateStore { sessions, pool }
    }

    /// The name of the session-id cookie.
    pub fn cookie(&self) -> &str {
        &self.sessions.cookie_name
    }

    /// The Redis key of the session with this id.
    pub fn session_key(&self, id: &str) -> String {
        self.sessions.key(id)
    }

    async fn script<T: redis::FromRedisValue>(
        &self,
        what: &str,
        inv: &redis::ScriptInvocation<'static>,
    ) -> Result<T, StoreError> {
        self.pool
            .run(what, |mut c| async move { inv.invoke_async(&mut c).await })
            .await
    }

    async fn cmd<T: redis::FromRedisValue>(
        &self,
        what: &str,
        cmd: &redis::Cmd,
    ) -> Result<T, StoreError> {
        self.pool
            .run(what, |mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    /// Writes `p` under `id`, as the blocking store's `save`.
    async fn save(
        &self,
        id: &str,
        p: &Prepared,
        update_only: bool,
        read: &str,
    ) -> Result<i64, StoreError> {
        let s = &self.sessions;
        let what = "writing the session";
        let mode = s.first_mode(update_only);
        if s.topology == Topology::Cluster && mode == IndexMode::Done {
            for inv in s.index_scripts(id, p) {
                self.script::<i64>("indexing the session", &inv).await?;
            }
        }
        let answer = self
            .script(what, &s.save_script(id, p, update_only, read, mode))
            .await?;
        if answer != MISSING_INDEX {
            return Ok(answer);
        }
        for inv in s.index_scripts(id, p) {
            self.script::<i64>("indexing the session", &inv).await?;
        }
        self.script(
            what,
            &s.save_script(id, p, update_only, read, IndexMode::Done),
        )
        .await
    }

    /// Deletes session `id` and its index entries.
    async fn delete_id(&self, id: &str) -> Result<(), StoreError> {
        let s = &self.sessions;
        s.decoded.remove(id);
        let reply: (i64, String, String) = self
            .script("deleting the session", &s.delete_script(id))
            .await?;
        let (_, labels) = ended(reply);
        for cmd in s.unindex_cmds(id, &labels) {
            self.cmd::<i64>("unindexing the session", &cmd).await?;
        }
        Ok(())
    }

    async fn logout_impl(
        &self,
        claims: &LogoutTokenClaims,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let s = &self.sessions;
        let Some(target) = s.logout_target(claims) else {
            return Ok(());
        };
        let what = "deleting sessions by logout token";
        if s.topology == Topology::Standalone && target.ending == Ending::Labelled {
            self.script::<i64>(what, &s.logout_script(&target)).await?;
            return Ok(());
        }
        for label in &target.labels {
            let ids: Vec<String> = self.cmd(what, &s.list_cmd(label, now)).await?;
            for id in ids {
                if target.ending == Ending::Selected {
                    let value: Option<String> =
                        self.cmd(what, &redis::Cmd::hget(s.key(&id), "v")).await?;
                    if !s.selected(&id, value, claims) {
                        continue;
                    }
                }
                let reply: (i64, String, String) = self
                    .script(what, &s.end_script(&id, &target, label))
                    .await?;
                if let (true, labels) = ended(reply) {
                    for cmd in Sessions::unindex_ended_cmds(&id, &labels) {
                        self.cmd::<i64>(what, &cmd).await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn get_impl(
        &self,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<Option<Arc<StateData>>, StoreError> {
        let s = &self.sessions;
        let Some(id) = s.id(options).map(str::to_owned) else {
            return Ok(None);
        };
        let key = s.key(&id);
        let value: Option<String> = self
            .pool
            .run("reading the session", |mut c| {
                let cmd = redis::Cmd::hget(&key, "v");
                async move { cmd.query_async(&mut c).await }
            })
            .await?;
        match s.load(&id, value, now.as_secs())? {
            Loaded::Valid(state) => Ok(Some(state)),
            Loaded::Touch(p) => {
                if self.save(&id, &p, true, "").await? == 1 {
                    let state = Arc::clone(&p.state);
                    s.remember(&id, p);
                    Ok(Some(state))
                } else {
                    s.clear_cookie(options);
                    Ok(None)
                }
            }
            Loaded::Gone { leftover } => {
                if leftover {
                    self.delete_id(&id).await?;
                }
                s.clear_cookie(options);
                Ok(None)
            }
        }
    }

    async fn set_impl(
        &self,
        state: &StateData,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<(), StoreError> {
        let s = &self.sessions;
        let Some(p) = s.prepare(state, now.as_secs())? else {
            return self.delete_impl(options).await;
        };
        if let Some(id) = s.id(options).map(str::to_owned)
            && self.save(&id, &p, true, "").await? == 1
        {
            s.remember(&id, p);
            return Ok(());
        }
        let id = random_token(SESSION_ID_BYTES)?;
        self.save(&id, &p, false, "").await?;
        s.set_cookie(options, &id, p.cookie_max_age);
        s.remember(&id, p);
        Ok(())
    }

    async fn update_impl(
        &self,
        update: &SessionUpdate,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> Result<Updated, StoreError> {
        let s = &self.sessions;
        let Some(id) = s.id(options).map(str::to_owned) else {
            return Ok(Updated::Gone);
        };
        let key = s.key(&id);
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let value: Option<String> = self
                .pool
                .run("reading the session", |mut c| {
                    let cmd = redis::Cmd::hget(&key, "v");
                    async move { cmd.query_async(&mut c).await }
                })
                .await?;
            let (read, p) = match s.updated(&id, value, update, now.as_secs())? {
                UpdateStep::Gone => return Ok(Updated::Gone),
                UpdateStep::Unchanged => return Ok(Updated::Saved),
                UpdateStep::Write { read, prepared } => (read, *prepared),
            };
            let answer = self.save(&id, &p, true, &read).await?;
            if let Some(updated) = update_written(answer) {
                if updated == Updated::Saved {
                    s.remember(&id, p);
                }
                return Ok(updated);
            }
        }
        Err(update_contended())
    }

    async fn delete_impl(&self, options: &mut CookieOptions) -> Result<(), StoreError> {
        let s = &self.sessions;
        if let Some(id) = s.id(options).map(str::to_owned) {
            self.delete_id(&id).await?;
        }
        s.clear_cookie(options);
        Ok(())
    }
}

impl AsyncStateStore for AsyncRedisStateStore {
    type Options = CookieOptions;

    fn get(
        &self,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<Arc<StateData>>, StoreError>> + Send {
        self.get_impl(options, now)
    }

    fn set(
        &self,
        state: &StateData,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.set_impl(state, options, now)
    }

    fn update(
        &self,
        update: &SessionUpdate,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> impl Future<Output = Result<Updated, StoreError>> + Send {
        self.update_impl(update, options, now)
    }

    fn delete(
        &self,
        options: &mut CookieOptions,
        _now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.delete_impl(options)
    }

    fn delete_by_logout_token(
        &self,
        claims: &LogoutTokenClaims,
        _options: &mut CookieOptions,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.logout_impl(claims, now)
    }

    /// See [`RedisStateStore`](super::RedisStateStore)'s: one `SET … NX EXAT`.
    fn record_logout_token_id(
        &self,
        key: &str,
        until: UnixTime,
        now: UnixTime,
    ) -> impl Future<Output = Result<LogoutTokenIdRecord, StoreError>> + Send {
        let cmd = record_logout_token_id_cmd(&self.sessions.prefix, key, until, now);
        async move {
            let reply: Option<String> = self.cmd("recording a logout token", &cmd).await?;
            Ok(logout_token_id_recorded(reply))
        }
    }
}

/// Login transactions in Redis for the async client (feature `redis-tokio`); built with
/// [`RedisTransactionStoreBuilder::build_async`](super::RedisTransactionStoreBuilder::build_async).
/// Bound to the browser like [`RedisTransactionStore`](super::RedisTransactionStore).
pub struct AsyncRedisTransactionStore {
    transactions: Transactions,
    pool: AsyncPool,
}

impl std::fmt::Debug for AsyncRedisTransactionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncRedisTransactionStore")
            .field("prefix", &self.transactions.prefix)
            .finish_non_exhaustive()
    }
}

impl AsyncRedisTransactionStore {
    pub(crate) fn new(transactions: Transactions, pool: AsyncPool) -> Self {
        AsyncRedisTransactionStore { transactions, pool }
    }
}

impl AsyncTransactionStore for AsyncRedisTransactionStore {
    type Options = CookieOptions;

    fn get(
        &self,
        key: &str,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> impl Future<Output = Result<Option<TransactionData>, StoreError>> + Send {
        let k = self.transactions.key(key);
        let key = key.to_owned();
        async move {
            if !chunks::is_valid_name(&key) || options.cookie(&key).is_none() {
                return Ok(None);
            }
            let value: Option<String> = self
                .pool
                .run("reading the transaction", |mut c| {
                    let cmd = redis::Cmd::get(&k);
                    async move { cmd.query_async(&mut c).await }
                })
                .await?;
            Ok(self.transactions.load(&key, value, options, now))
        }
    }

    fn set(
        &self,
        key: &str,
        transaction: &TransactionData,
        options: &mut CookieOptions,
        now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let prepared = self.transactions.prepare(key, transaction, now);
        let k = self.transactions.key(key);
        let key = key.to_owned();
        async move {
            let Some((value, ttl_ms, binding, max_age)) = prepared? else {
                return self.delete(&key, options, now).await;
            };
            self.pool
                .run("writing the transaction", |mut c| {
                    let cmd = redis::Cmd::pset_ex(&k, value.as_str(), ttl_ms);
                    async move { cmd.query_async::<()>(&mut c).await }
                })
                .await?;
            self.transactions
                .set_cookie(options, &key, &binding, max_age);
            Ok(())
        }
    }

    fn delete(
        &self,
        key: &str,
        options: &mut CookieOptions,
        _now: UnixTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let k = self.transactions.key(key);
        let key = key.to_owned();
        async move {
            if !chunks::is_valid_name(&key) {
                return Ok(());
            }
            self.pool
                .run("deleting the transaction", |mut c| {
                    let cmd = redis::Cmd::del(&k);
                    async move { cmd.query_async::<i64>(&mut c).await }
                })
                .await?;
            self.transactions.clear_cookie(options, &key);
            Ok(())
        }
    }
}
