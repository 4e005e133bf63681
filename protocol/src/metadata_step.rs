//! The "make sure we have fresh metadata" step shared by every operation that talks to the
//! tenant: load the cached discovery metadata, fetch discovery when it is stale, store the
//! result. The decisions themselves are in [`crate::discovery`].

use crate::config::Config;
use crate::discovery::{CachedMetadata, Metadata, discovery_request, parse_metadata};
use crate::effect::{Coalesce, Effect, HttpRequest, Input, UnexpectedInput};
use crate::time::UnixTime;
use crate::token_endpoint::ResponseError;
use std::sync::Arc;

/// The "make sure we have fresh metadata" part shared by every operation that talks to the
/// tenant: load the cache, fetch discovery when stale, store the result.
#[derive(Debug, Default)]
pub(crate) enum MetadataStep {
    /// `LoadMetadata` was emitted.
    #[default]
    Loading,
    /// The discovery request was emitted.
    Fetching,
    /// `StoreMetadata` was emitted; this is what was stored.
    Storing(Arc<Metadata>),
}

/// What [`MetadataStep::handle`] decided.
pub(crate) enum MetadataOutcome {
    /// Metadata is available.
    Ready(Arc<Metadata>),
    /// Perform this effect and hand the input back.
    Effect(Effect),
    /// Discovery failed.
    Failed(ResponseError),
    /// The driver sent the wrong input.
    Unexpected(UnexpectedInput),
}

impl MetadataStep {
    /// The first effect: read the cache.
    pub(crate) fn start() -> (MetadataStep, Effect) {
        (MetadataStep::Loading, Effect::LoadMetadata)
    }

    pub(crate) fn handle(
        &mut self,
        config: &Config,
        input: Input,
        now: UnixTime,
    ) -> MetadataOutcome {
        match (std::mem::take(self), input) {
            (MetadataStep::Loading, Input::Metadata(Some(cached)))
                if !cached.is_stale(now, config.discovery_ttl()) =>
            {
                MetadataOutcome::Ready(cached.metadata)
            }
            (MetadataStep::Loading, Input::Metadata(_)) => {
                *self = MetadataStep::Fetching;
                MetadataOutcome::Effect(Effect::Http(Box::new(HttpRequest {
                    request: discovery_request(config),
                    coalesce: Some(Coalesce {
                        key: format!("discovery {}", config.discovery_url()),
                        // Remembered briefly: a caller that finds the metadata cache empty
                        // between another caller's fetch and its `StoreMetadata` takes that
                        // answer instead of fetching again (a cold start fetches once).
                        remember: true,
                        lane: None,
                    }),
                    at_send: Vec::new(),
                })))
            }
            (MetadataStep::Fetching, Input::Http(response)) => {
                match parse_metadata(config, &response) {
                    Ok(metadata) => {
                        let metadata = Arc::new(metadata);
                        *self = MetadataStep::Storing(metadata.clone());
                        MetadataOutcome::Effect(Effect::StoreMetadata(CachedMetadata {
                            metadata,
                            fetched_at: now,
                        }))
                    }
                    Err(e) => MetadataOutcome::Failed(e),
                }
            }
            (MetadataStep::Storing(m), Input::Done) => MetadataOutcome::Ready(m),
            (state, _) => MetadataOutcome::Unexpected(UnexpectedInput {
                expected: match state {
                    MetadataStep::Loading => "LoadMetadata",
                    MetadataStep::Fetching => "Http (discovery)",
                    MetadataStep::Storing(_) => "StoreMetadata",
                },
            }),
        }
    }
}
