//! The coordinator's part of [`super::super::fuzzing`]: how a waiter reads what the acquire
//! script answered (a published answer or rotation, the lock, or how long to wait), without a
//! Redis server.

use super::{RedisRefreshCoordinatorBuilder, Refreshes};
use crate::coordinator::Coordinated;
use crate::error::Error;
use crate::store::StoreError;
use auth0_server_protocol::effect::Coalesce;

/// The pure logic of a coordinator built from `builder`.
pub(in crate::store::redis) fn refreshes(
    builder: &RedisRefreshCoordinatorBuilder,
) -> Result<Refreshes, StoreError> {
    builder.refreshes()
}

/// Encrypts `plaintext` as a published value (answer or rotation) is encrypted.
pub(in crate::store::redis) fn seal(r: &Refreshes, plaintext: &[u8]) -> Result<String, StoreError> {
    r.codec.encrypt(plaintext)
}

/// What a published answer for `request` and a published rotation of its lane are bound to.
pub(in crate::store::redis) fn bindings(
    r: &Refreshes,
    request: &Coalesce,
) -> (String, Option<String>) {
    let k = r.keys(request);
    (k.hash, k.lane.map(|(lane, _)| lane))
}

/// What a waiter for `request` makes of the acquire script's `reply`: the published outcome
/// or rotation, or `None` (take the lock, wait, or an unreadable value: wait for its expiry).
pub(in crate::store::redis) fn acquired(
    r: &Refreshes,
    request: &Coalesce,
    reply: (i64, String),
) -> Option<Result<Coordinated, Error>> {
    r.published(&r.keys(request), &Refreshes::interpret(reply))
}

/// How long a waiter sleeps before polling again after the acquire script's `reply`, when
/// that reply says to wait (`None` otherwise, or when the waiter gives up).
pub(in crate::store::redis) fn wait(
    r: &Refreshes,
    reply: (i64, String),
) -> Option<std::time::Duration> {
    match Refreshes::interpret(reply) {
        super::Acquired::Wait { pttl_ms } => {
            let mut delay = super::FIRST_DELAY;
            r.delay(&mut delay, pttl_ms, std::time::Instant::now())
        }
        _ => None,
    }
}
