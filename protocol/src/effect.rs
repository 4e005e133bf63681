//! Operations as state machines that emit effects: the core decides, the adapter performs.
//!
//! Every SDK operation is a value implementing [`Operation`]. The adapter drives it:
//!
//! ```text
//! let mut input = Input::Start;
//! loop {
//!     match op.step(input, now) {
//!         Step::Done(result) => return result,
//!         Step::Effect(effect) => input = perform(effect),   // HTTP, store or cache
//!     }
//! }
//! ```
//!
//! `now` is the time ([`UnixTime`]) at which the input was obtained. A driver that hands an
//! operation a response it received earlier (a shared or remembered refresh) passes the time
//! that response was received, so expiry times stay exact.

use crate::discovery::CachedMetadata;
pub use crate::jose::claims::LogoutTokenClaims;
use crate::session::{SaveFailed, SessionUpdate, StateData, Updated};
use crate::time::UnixTime;
use crate::transaction::TransactionData;
use std::fmt;
use std::sync::Arc;

/// What an operation asks the adapter to do next.
#[non_exhaustive]
pub enum Effect {
    /// Send this HTTP request and answer with [`Input::Http`] (any status).
    Http(Box<HttpRequest>),
    /// Read the session from the state store; answer [`Input::Session`].
    LoadSession,
    /// Write the session to the state store; answer [`Input::Done`].
    SaveSession(Box<StateData>),
    /// Apply an operation's changes to the session the state store holds now, only if it
    /// still exists (an update-only save); answer [`Input::Updated`].
    UpdateSession(Box<SessionUpdate>),
    /// A refresh rotated the refresh token but its session could not be saved: keep the new
    /// token in the process, so that a later request that still carries a replaced one spends
    /// the new one instead (which would otherwise be lost, and replaying a replaced one trips
    /// reuse detection); answer [`Input::Done`].
    KeepRotation {
        /// SHA-256 hashes of the replaced refresh tokens (their single-flight lanes).
        lanes: Vec<String>,
        /// The refresh token they were rotated to.
        rotated_to: crate::secret::Secret,
    },
    /// Delete the session from the state store; answer [`Input::Done`].
    DeleteSession,
    /// Delete every session matching a verified logout token; answer [`Input::Done`].
    DeleteSessionsByLogoutToken(LogoutTokenClaims),
    /// Read the login transaction stored under `key`; answer [`Input::Transaction`].
    LoadTransaction {
        /// The transaction's key.
        key: String,
    },
    /// Write a login transaction under `key`; answer [`Input::Done`].
    SaveTransaction {
        /// The transaction's key.
        key: String,
        /// The transaction.
        transaction: Box<TransactionData>,
    },
    /// Delete the login transaction stored under `key`; answer [`Input::Done`].
    DeleteTransaction {
        /// The transaction's key.
        key: String,
    },
    /// Read the cached discovery metadata for the client's domain; answer [`Input::Metadata`].
    LoadMetadata,
    /// Replace the cached discovery metadata; answer [`Input::Done`].
    StoreMetadata(CachedMetadata),
    /// Read the cached JWKS; answer [`Input::Jwks`].
    LoadJwks,
    /// Replace the cached JWKS; answer [`Input::Done`].
    StoreJwks(CachedJwks),
    /// Draw `len` random bytes from the operating system; answer [`Input::Random`].
    Random {
        /// How many bytes.
        len: usize,
    },
    /// Wait this long before the next step (CIBA polling: the interval the server asked
    /// for); answer [`Input::Done`] once it has passed. The adapter only waits, through its
    /// sleeper; the core decided how long.
    Wait(std::time::Duration),
    /// Record that a logout token with this identity (`{iss} {jti}`) was accepted, unless it
    /// already was: remember it until `until` (the token's `exp` plus the clock tolerance;
    /// after that the token is refused as expired anyway). The check and the record are one
    /// atomic step (set-if-absent), shared by every instance when the state store is shared.
    /// Answer [`Input::LogoutTokenId`].
    RecordLogoutTokenId {
        /// The issuer and the token's `jti`.
        key: String,
        /// Until when to remember it.
        until: UnixTime,
    },
}

/// Whether a logout token's `jti` was new: the answer to [`Effect::RecordLogoutTokenId`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JtiRecord {
    /// Not seen within its lifetime: now recorded; the logout proceeds.
    FirstSeen,
    /// Already recorded: a replay; the logout token is refused.
    Replayed,
}

/// A JWKS as cached by the adapter, with the time it was fetched.
#[derive(Clone, Debug)]
pub struct CachedJwks {
    /// The key set.
    pub jwks: crate::jose::jwk::Jwks,
    /// When it was fetched.
    pub fetched_at: UnixTime,
}

/// An HTTP request the operation wants sent.
pub struct HttpRequest {
    /// The request. Its body may carry credentials: never log it.
    pub request: http::Request<Vec<u8>>,
    /// When set, concurrent requests with the same key are the same request: the driver may
    /// send one and hand its response to every operation waiting on that key.
    pub coalesce: Option<Coalesce>,
    /// What the driver must add right before sending, with the time of sending and fresh
    /// random bytes (see [`AtSend::apply`]), in order; empty for a request sent as it is. A
    /// request may need several: a `private_key_jwt` client assertion and a DPoP proof.
    pub at_send: Vec<AtSend>,
}

impl HttpRequest {
    /// Whether the request carries a DPoP proof (made at sending): its answer may be a
    /// nonce challenge ([`crate::dpop::token_endpoint_retry`]).
    pub fn wants_dpop_proof(&self) -> bool {
        self.at_send
            .iter()
            .any(|a| matches!(a, AtSend::DpopProof { .. }))
    }

    /// A copy of this request (method, URL, headers, body, coalescing and what is added at
    /// sending), for a driver that may have to send it again: a DPoP nonce retry.
    pub fn duplicate(&self) -> HttpRequest {
        let mut builder = http::Request::builder()
            .method(self.request.method().clone())
            .uri(self.request.uri().clone())
            .version(self.request.version());
        if let Some(headers) = builder.headers_mut() {
            *headers = self.request.headers().clone();
        }
        HttpRequest {
            request: builder
                .body(self.request.body().clone())
                .unwrap_or_default(),
            coalesce: self.coalesce.clone(),
            at_send: self.at_send.clone(),
        }
    }

    /// Sets the nonce of this request's DPoP proof (a server's `DPoP-Nonce`).
    pub fn set_dpop_nonce(&mut self, nonce: &str) {
        for a in &mut self.at_send {
            if let AtSend::DpopProof { nonce: n } = a {
                *n = Some(nonce.to_owned());
            }
        }
    }
}

/// A part of a request that must be made at the moment it is sent: it needs the time and
/// fresh randomness, which the pure core does not have. The driver completes it once per
/// actual sending (never for a request that takes another caller's answer), so a resent
/// request gets a new one; it is not part of any [`Coalesce`] key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AtSend {
    /// Append a `private_key_jwt` client assertion for `audience` (the discovered issuer) to
    /// the form body: `client_assertion_type` and `client_assertion` (RFC 7523 §2.2).
    ClientAssertion {
        /// The assertion's `aud`.
        audience: String,
    },
    /// Add a DPoP proof (RFC 9449) for the request's own method and URL in its `DPoP`
    /// header, signed with the configured DPoP key (see [`crate::dpop`]).
    DpopProof {
        /// The server's nonce to put in the proof; `None` for the one the driver last
        /// received from the server, if any.
        nonce: Option<String>,
    },
}

/// Why what a request needs at sending could not be made (nothing was sent).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AtSendError {
    /// The `private_key_jwt` client assertion.
    #[error(transparent)]
    ClientAssertion(#[from] crate::client_assertion::ClientAssertionError),
    /// The DPoP proof.
    #[error(transparent)]
    Dpop(#[from] crate::dpop::DpopError),
}

impl AtSendError {
    /// The stable code: `client_assertion_failed` or `dpop_failed`.
    pub fn code(&self) -> crate::error_code::ErrorCode {
        match self {
            AtSendError::ClientAssertion(e) => e.code(),
            AtSendError::Dpop(e) => e.code(),
        }
    }
}

impl AtSend {
    /// How many random bytes [`apply`](Self::apply) needs.
    pub fn random_len(&self) -> usize {
        match self {
            AtSend::ClientAssertion { .. } => crate::client_assertion::ASSERTION_RANDOM_LEN,
            AtSend::DpopProof { .. } => crate::dpop::PROOF_RANDOM_LEN,
        }
    }

    /// `request` ready to send at `now`, completed with `random` (at least
    /// [`random_len`](Self::random_len) bytes drawn from the OS for this one sending). The
    /// driver calls this immediately before sending, once per sending. `known_nonce` is the
    /// last DPoP nonce the server gave, used by a DPoP proof without a nonce of its own.
    pub fn apply(
        &self,
        request: http::Request<Vec<u8>>,
        config: &crate::config::Config,
        now: UnixTime,
        random: &[u8],
        known_nonce: Option<&str>,
    ) -> Result<http::Request<Vec<u8>>, AtSendError> {
        match self {
            AtSend::ClientAssertion { audience } => {
                let key = config
                    .assertion_key()
                    .ok_or(crate::client_assertion::ClientAssertionError::NoKey)?;
                let jwt = crate::client_assertion::assertion(
                    key,
                    config.client_id(),
                    audience,
                    now,
                    random,
                )?;
                let (parts, mut body) = request.into_parts();
                let mut form = url::form_urlencoded::Serializer::for_suffix(
                    String::from_utf8(std::mem::take(&mut body)).unwrap_or_default(),
                    0,
                );
                form.append_pair(
                    "client_assertion_type",
                    crate::client_assertion::ASSERTION_TYPE,
                );
                form.append_pair("client_assertion", &jwt);
                Ok(http::Request::from_parts(parts, form.finish().into_bytes()))
            }
            AtSend::DpopProof { nonce } => {
                let key = config
                    .dpop_key()
                    .ok_or(crate::dpop::DpopError::NotConfigured)?;
                let nonce = nonce.as_deref().or(known_nonce);
                Ok(crate::dpop::with_proof(key, request, nonce, now, random)?)
            }
        }
    }
}

/// How a request may be shared between operations.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Coalesce {
    /// Requests with equal keys are interchangeable. The key never contains a token in
    /// clear (refresh tokens appear as a SHA-256 hash).
    pub key: String,
    /// Whether a successful (2xx) response should be remembered for the rotation grace window
    /// (never past the expiry of the access token it carries) and handed to later operations
    /// with the same key: a refresh (replaying a rotated-away refresh token would trip reuse
    /// detection), and discovery (a caller that finds the metadata cache still empty just
    /// after another caller's fetch takes that answer: a cold start fetches once).
    pub remember: bool,
    /// Requests that spend the same refresh token share a lane (the token's SHA-256 hash):
    /// the driver sends them one at a time, whatever their audience or scope, and when an
    /// earlier request of the lane rotated the token within the grace window it answers
    /// [`Input::Rotated`] with the new refresh token instead of sending (the operation then
    /// asks again with that token). Two requests never spend one refresh token concurrently,
    /// which with rotation and reuse detection would revoke the user's token family.
    pub lane: Option<String>,
}

impl fmt::Debug for Coalesce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalesce")
            .field("key", &self.key)
            .field("remember", &self.remember)
            .field("lane", &self.lane)
            .finish()
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Method and path only: query strings, headers and bodies can carry credentials.
        f.debug_struct("HttpRequest")
            .field("method", self.request.method())
            .field("path", &self.request.uri().path())
            .field("coalesce", &self.coalesce)
            .field("at_send", &self.at_send)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Http(r) => f.debug_tuple("Http").field(r).finish(),
            Effect::LoadSession => f.write_str("LoadSession"),
            Effect::SaveSession(_) => f.write_str("SaveSession(..)"),
            Effect::UpdateSession(u) => f.debug_tuple("UpdateSession").field(u).finish(),
            Effect::KeepRotation { lanes, .. } => f
                .debug_struct("KeepRotation")
                .field("lanes", &lanes.len())
                .finish_non_exhaustive(),
            Effect::DeleteSession => f.write_str("DeleteSession"),
            Effect::DeleteSessionsByLogoutToken(c) => f
                .debug_tuple("DeleteSessionsByLogoutToken")
                .field(c)
                .finish(),
            Effect::LoadTransaction { .. } => f.write_str("LoadTransaction"),
            Effect::SaveTransaction { .. } => f.write_str("SaveTransaction(..)"),
            Effect::DeleteTransaction { .. } => f.write_str("DeleteTransaction"),
            Effect::LoadMetadata => f.write_str("LoadMetadata"),
            Effect::StoreMetadata(_) => f.write_str("StoreMetadata(..)"),
            Effect::LoadJwks => f.write_str("LoadJwks"),
            Effect::StoreJwks(_) => f.write_str("StoreJwks(..)"),
            Effect::Random { len } => write!(f, "Random({len})"),
            Effect::Wait(d) => write!(f, "Wait({}s)", d.as_secs()),
            Effect::RecordLogoutTokenId { until, .. } => {
                write!(f, "RecordLogoutTokenId(until {})", until.as_secs())
            }
        }
    }
}

/// What the adapter hands back after performing an effect.
#[non_exhaustive]
pub enum Input {
    /// The first step of an operation.
    Start,
    /// The response to [`Effect::Http`].
    Http(http::Response<Vec<u8>>),
    /// The session read for [`Effect::LoadSession`], shared: a store that keeps decoded
    /// sessions (the cookie and Redis stores' caches, the memory store) hands the same one to
    /// every request without copying it, and an operation copies it only to change it.
    Session(Option<Arc<StateData>>),
    /// The transaction read for [`Effect::LoadTransaction`].
    Transaction(Option<TransactionData>),
    /// The cached metadata read for [`Effect::LoadMetadata`].
    Metadata(Option<CachedMetadata>),
    /// The cached JWKS read for [`Effect::LoadJwks`].
    Jwks(Option<CachedJwks>),
    /// The bytes drawn for [`Effect::Random`].
    Random(Vec<u8>),
    /// Instead of a response to [`Effect::Http`]: the refresh token the request spends was
    /// rotated by an earlier request of its [`Coalesce::lane`]; this is the new one.
    Rotated(crate::secret::Secret),
    /// The answer to [`Effect::RecordLogoutTokenId`].
    LogoutTokenId(JtiRecord),
    /// What the store did with [`Effect::UpdateSession`].
    Updated(Result<Updated, SaveFailed>),
    /// A save or delete was performed.
    Done,
}

impl fmt::Debug for Input {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Input::Start => "Start",
            Input::Http(_) => "Http(..)",
            Input::Session(_) => "Session(..)",
            Input::Transaction(_) => "Transaction(..)",
            Input::Metadata(_) => "Metadata(..)",
            Input::Jwks(_) => "Jwks(..)",
            Input::Random(_) => "Random(..)",
            Input::Rotated(_) => "Rotated(..)",
            Input::LogoutTokenId(r) => match r {
                JtiRecord::FirstSeen => "LogoutTokenId(FirstSeen)",
                JtiRecord::Replayed => "LogoutTokenId(Replayed)",
            },
            Input::Updated(_) => "Updated(..)",
            Input::Done => "Done",
        })
    }
}

/// One step of an operation: finished, or one more effect to perform.
#[derive(Debug)]
pub enum Step<T, E> {
    /// The operation finished.
    Done(Result<T, E>),
    /// Perform this effect and call `step` again with its outcome.
    Effect(Effect),
}

/// An SDK operation as a state machine.
pub trait Operation {
    /// What the operation returns.
    type Output;
    /// Its error type.
    type Error: From<UnexpectedInput>;
    /// Advances the operation with the outcome of the previous effect (or [`Input::Start`]),
    /// observed at `now`. After `Step::Done`, further calls return an error.
    fn step(&mut self, input: Input, now: UnixTime) -> Step<Self::Output, Self::Error>;
}

/// How many times one operation accepts [`Input::Rotated`] before giving up (a refresh token
/// rotated again and again while the operation waited). Each rotation followed is another
/// request of the same session that went first (N concurrent refreshes of one session for
/// N APIs make the last follow N - 1), so the bound is far above what real pages do; it only
/// stops a driver that answers `Rotated` forever.
pub const MAX_ROTATIONS_FOLLOWED: u8 = 32;

/// The driver answered an effect with the wrong kind of input, or stepped a finished
/// operation: a bug in the driver, reported as an error rather than a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the driver answered `{expected}` with the wrong input")]
pub struct UnexpectedInput {
    /// What the operation was waiting for.
    pub expected: &'static str,
}

impl From<crate::session::KeepRotation> for Effect {
    fn from(keep: crate::session::KeepRotation) -> Self {
        Effect::KeepRotation {
            lanes: keep.lanes,
            rotated_to: keep.rotated_to,
        }
    }
}
