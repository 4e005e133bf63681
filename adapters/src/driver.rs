//! What the blocking and the async driver share: the protocol core, the clock, single-flight,
//! and the discovery-metadata and JWKS caches (plain data; the core decides staleness).
//!
//! The effects that touch no I/O — the caches and randomness — are performed here, by
//! [`Shared::perform_local`], so the two drivers differ only in how they send HTTP requests
//! and call stores.

use crate::clock::{Clock, random_bytes};
use crate::error::Error;
use crate::single_flight::SingleFlight;
use auth0_server_protocol::Core;
use auth0_server_protocol::discovery::CachedMetadata;
use auth0_server_protocol::effect::{CachedJwks, Effect, Input, UnexpectedInput};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Default rotation grace window: how long a refresh response is remembered.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(60);

/// Largest number of random bytes an operation may ask for at once.
const MAX_RANDOM: usize = 4096;

/// A client's state shared by its calls.
pub(crate) struct Shared {
    pub(crate) core: Core,
    pub(crate) clock: Clock,
    pub(crate) flights: SingleFlight,
    metadata: Mutex<Option<CachedMetadata>>,
    jwks: Mutex<Option<CachedJwks>>,
}

impl Shared {
    pub(crate) fn new(core: Core, clock: Clock, rotation_grace: Duration) -> Self {
        Shared {
            core,
            clock,
            flights: SingleFlight::new(rotation_grace.as_secs()),
            metadata: Mutex::new(None),
            jwks: Mutex::new(None),
        }
    }

    /// Performs a cache or randomness effect (`LoadMetadata`, `StoreMetadata`, `LoadJwks`,
    /// `StoreJwks`, `Random`). Store and HTTP effects are the drivers' own; handed one here,
    /// this answers with an `UnexpectedInput` error rather than panicking.
    pub(crate) fn perform_local(&self, effect: Effect) -> Result<Input, Error> {
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
            other => {
                return Err(UnexpectedInput {
                    expected: match other {
                        Effect::Http(_) => "Http handled by the driver",
                        _ => "a store effect handled by the driver",
                    },
                }
                .into());
            }
        })
    }
}

/// A shared response as the operation's input, with the time it was received (the `now` to
/// step the operation with).
pub(crate) fn http_input(response: crate::single_flight::SharedResponse) -> (Input, u64) {
    let (response, received_at) = response.into_response();
    (Input::Http(response), received_at)
}
