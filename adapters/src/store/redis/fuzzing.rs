//! Entry points for the fuzz targets (`fuzz/fuzz_targets/redis_*.rs`; hidden, not API, no
//! stability promise): everything the Redis stores and the refresh coordinator decode from
//! what Redis hands back, reachable without a server.
//!
//! * the stored session value (a JWE of the session JSON) read by `get` and `update`,
//!   through the decoded-session cache (keyed by session id and the exact value);
//! * the stored transaction value (a JWE of `{"b": binding, "t": transaction}`) and the
//!   binding cookie it is compared with;
//! * the acquire script's reply to a waiting coordinator: a published answer (status,
//!   content type, body, receive time) or rotation, bound to its key or lane, or a lock TTL;
//! * the replies of the save, delete and end scripts and of the logout-token `jti` record,
//!   and the session ids an index lists with their stored values (a back-channel logout on a
//!   cluster, or for a token naming both `sid` and `sub`), from which further commands are
//!   built.
//!
//! The stores' own code does the work: these functions only call it at a fixed `now`.

use super::coordinator::fuzzing as coord;
use super::pool::Topology;
use super::{
    Ending, RedisRefreshCoordinator, RedisStateStore, RedisTransactionStore, Sessions,
    Transactions, UpdateStep, ended, logout_token_id_recorded, update_written,
};
use crate::coordinator::Coordinated;
use crate::error::Error;
use crate::store::{CookieOptions, LogoutTokenIdRecord, StoreError};
use auth0_server_protocol::config::Config;
use auth0_server_protocol::effect::{Coalesce, LogoutTokenClaims};
use auth0_server_protocol::session::{SessionUpdate, StateData, Updated};
use auth0_server_protocol::time::UnixTime;
use auth0_server_protocol::transaction::TransactionData;
use std::sync::Arc;
use std::time::Duration;

/// Which kind of stored value to encrypt (each has its own key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    /// A session (`{prefix}s:{id}`, field `v`).
    Session,
    /// A login transaction (`{prefix}t:{hash}`).
    Transaction,
    /// A published refresh answer or rotation.
    Refresh,
}

/// What reading a stored session value means.
#[derive(Debug)]
pub enum SessionRead {
    /// No session: absent, unreadable or past its lifetime (`leftover`: a value to delete).
    Gone {
        /// A stored value was there.
        leftover: bool,
    },
    /// A valid session.
    Valid(StateData),
    /// A valid session, rewritten with `last_active_at = now` (rolling expiry).
    Touched(StateData),
}

/// What an update-only save over a stored session value does.
#[derive(Debug)]
pub enum UpdateRead {
    /// Nothing to write: the session is gone.
    Gone,
    /// Nothing to write: it already holds the update.
    Unchanged,
    /// This session is written.
    Write(Box<StateData>),
}

/// The decoders of one store configuration at a fixed instant.
pub struct RedisDecoders {
    sessions: Sessions,
    transactions: Transactions,
    refreshes: super::coordinator::Refreshes,
    now: UnixTime,
}

impl std::fmt::Debug for RedisDecoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDecoders").finish_non_exhaustive()
    }
}

impl RedisDecoders {
    /// Decoders with `config`'s secrets at `now`, caching up to `cache_capacity` decoded
    /// sessions (`0`: none); `cluster` selects the Redis Cluster steps (never connects).
    pub fn new(
        config: &Config,
        now: UnixTime,
        cache_capacity: usize,
        cluster: bool,
    ) -> Result<Self, StoreError> {
        let url = if cluster {
            "redis+cluster://127.0.0.1:1,127.0.0.1:2/"
        } else {
            "redis://127.0.0.1:1/"
        };
        Ok(RedisDecoders {
            sessions: RedisStateStore::builder(config, url)
                .cache_capacity(cache_capacity)
                .sessions()?,
            transactions: RedisTransactionStore::builder(config, url).transactions()?,
            refreshes: coord::refreshes(&RedisRefreshCoordinator::builder(config, url))?,
            now,
        })
    }

    /// Encrypts `plaintext` as the stores encrypt a value of kind `what`.
    pub fn seal(&self, what: Stored, plaintext: &[u8]) -> Result<String, StoreError> {
        match what {
            Stored::Session => self.sessions.codec.encrypt(plaintext),
            Stored::Transaction => self.transactions.codec.encrypt(plaintext),
            Stored::Refresh => coord::seal(&self.refreshes, plaintext),
        }
    }

    /// Reads the stored `value` of session `id` (`None`: no such key), as `get` does.
    pub fn read_session(&self, id: &str, value: Option<String>) -> Result<SessionRead, StoreError> {
        Ok(match self.sessions.load(id, value, self.now.as_secs())? {
            super::Loaded::Gone { leftover } => SessionRead::Gone { leftover },
            super::Loaded::Valid(state) => SessionRead::Valid(Arc::unwrap_or_clone(state)),
            super::Loaded::Touch(p) => SessionRead::Touched(Arc::unwrap_or_clone(p.state)),
        })
    }

    /// What an update-only save applying `update` over the stored `value` of session `id`
    /// writes, as `update` computes it.
    pub fn update_session(
        &self,
        id: &str,
        value: Option<String>,
        update: &SessionUpdate,
    ) -> Result<UpdateRead, StoreError> {
        Ok(
            match self
                .sessions
                .updated(id, value, update, self.now.as_secs())?
            {
                UpdateStep::Gone => UpdateRead::Gone,
                UpdateStep::Unchanged => UpdateRead::Unchanged,
                UpdateStep::Write { prepared, .. } => {
                    UpdateRead::Write(Box::new(Arc::unwrap_or_clone(prepared.state)))
                }
            },
        )
    }

    /// The transaction stored under `key` as `value`, if the browser's cookies in `options`
    /// hold its binding and it is not past its max age.
    pub fn read_transaction(
        &self,
        key: &str,
        value: Option<String>,
        options: &CookieOptions,
    ) -> Option<TransactionData> {
        self.transactions.load(key, value, options, self.now)
    }

    /// The bindings of a published answer for `request` and of its lane's rotation.
    pub fn bindings(&self, request: &Coalesce) -> (String, Option<String>) {
        coord::bindings(&self.refreshes, request)
    }

    /// What a waiting coordinator makes of the acquire script's `reply` for `request`.
    pub fn read_acquired(
        &self,
        request: &Coalesce,
        reply: (i64, String),
    ) -> Option<Result<Coordinated, Error>> {
        coord::acquired(&self.refreshes, request, reply)
    }

    /// How long a waiter sleeps after the acquire script's `reply`, if it says to wait.
    pub fn wait_after(&self, reply: (i64, String)) -> Option<Duration> {
        coord::wait(&self.refreshes, reply)
    }

    /// The commands a back-channel logout for `claims` builds from what Redis answers: on
    /// a cluster (or for a token naming both `sid` and `sub`), the sessions an index lists,
    /// each with its stored value (read to check the token selects it), then each end
    /// script's `reply`. How many commands, and the ids it ends.
    pub fn logout_commands(
        &self,
        claims: &LogoutTokenClaims,
        listed: &[(String, Option<String>)],
        reply: (i64, String, String),
    ) -> (usize, Vec<String>) {
        let s = &self.sessions;
        let Some(target) = s.logout_target(claims) else {
            return (0, Vec::new());
        };
        if s.topology == Topology::Standalone && target.ending == Ending::Labelled {
            let _ = s.logout_script(&target);
            return (1, Vec::new());
        }
        let mut built = 0;
        let mut ended_ids = Vec::new();
        for label in &target.labels {
            let _ = s.list_cmd(label, self.now);
            built += 1;
            for (id, value) in listed {
                if target.ending == Ending::Selected && !s.selected(id, value.clone(), claims) {
                    continue;
                }
                let _ = s.end_script(id, &target, label);
                built += 1;
                if let (true, labels) = ended(reply.clone()) {
                    built += Sessions::unindex_ended_cmds(id, &labels).len();
                    ended_ids.push(id.clone());
                }
            }
        }
        (built, ended_ids)
    }

    /// What the `SET … NX EXAT` recording a logout token's `jti` answered.
    pub fn logout_token_id_answer(reply: Option<String>) -> LogoutTokenIdRecord {
        logout_token_id_recorded(reply)
    }

    /// What the save script's answer to an update-only save means.
    pub fn update_answer(answer: i64) -> Option<Updated> {
        update_written(answer)
    }
}
