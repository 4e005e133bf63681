//! Verifying a token signed by the tenant (an ID token or a logout token) against the
//! tenant's JWKS, as a sub-machine shared by the login and back-channel logout operations
//! (the ID token of a login, the logout token of a back-channel logout).
//!
//! The JWKS is cached by the adapter ([`CachedJwks`]); the core decides when it is stale (the
//! discovery TTL) and refetches it **once** when a token names a key the cached set lacks
//! (key rotation), never more than once per call.

use crate::config::Config;
use crate::discovery::{Metadata, is_stale};
use crate::effect::{CachedJwks, Coalesce, Effect, HttpRequest, Input, UnexpectedInput};
use crate::jose::JoseError;
use crate::jose::jwk::Jwks;
use crate::jose::jws::{AlgorithmPolicy, Jws};
use crate::metadata_step::{MetadataOutcome, MetadataStep};
use crate::time::UnixTime;
use crate::token_endpoint::{MAX_RESPONSE_BODY, ResponseError};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Why a signed token could not be verified.
#[derive(Debug)]
pub(crate) enum VerifyFailure {
    /// The token itself is bad (malformed, wrong algorithm, bad signature, unknown key).
    Token(JoseError),
    /// Discovery failed.
    Discovery(ResponseError),
    /// The discovered metadata lacks what verification needs (the reason names it).
    Metadata(&'static str),
    /// The JWKS could not be fetched or parsed.
    Jwks(ResponseError),
    /// The driver sent the wrong input.
    Unexpected(UnexpectedInput),
}

pub(crate) enum VerifyOutcome {
    /// The signature is valid: the token's claims, and the metadata (whose `issuer` the
    /// claims must name).
    Verified(Map<String, Value>, Arc<Metadata>),
    /// Perform this effect and hand the input back.
    Effect(Effect),
    /// Verification failed.
    Failed(VerifyFailure),
}

#[derive(Debug)]
enum State {
    Metadata(MetadataStep),
    LoadingJwks(Arc<Metadata>),
    Fetching(Arc<Metadata>),
    Storing(Jwks, Arc<Metadata>),
    Finished,
}

/// Verifies one compact JWS against the tenant's keys.
#[derive(Debug)]
pub(crate) struct VerifySignedToken {
    jws: Option<Jws>,
    state: State,
    /// How long after a JWKS fetch an unknown `kid` fails instead of refetching.
    refetch_cooldown: Duration,
}

/// How long after a JWKS fetch an unknown `kid` in a *logout token* fails without another
/// fetch. Anyone can post a logout token: without a cooldown, tokens with random `kid`s would
/// make the server fetch the JWKS from the tenant once each. ID tokens arrive from the token
/// endpoint itself, so an unknown `kid` there is a real key rotation and always refetches.
pub const LOGOUT_TOKEN_JWKS_REFETCH_COOLDOWN: Duration = Duration::from_secs(30);

impl VerifySignedToken {
    /// Parses the token and starts: the first effect loads the metadata. After a JWKS fetch,
    /// an unknown `kid` refetches only once `refetch_cooldown` has passed.
    pub(crate) fn start(
        token: &str,
        refetch_cooldown: Duration,
    ) -> Result<(Self, Effect), JoseError> {
        let jws = Jws::parse(token)?;
        let (meta, effect) = MetadataStep::start();
        Ok((
            VerifySignedToken {
                jws: Some(jws),
                state: State::Metadata(meta),
                refetch_cooldown,
            },
            effect,
        ))
    }

    /// Starts with metadata the caller already has: the first effect loads the JWKS.
    pub(crate) fn start_with_metadata(
        token: &str,
        metadata: Arc<Metadata>,
    ) -> Result<(Self, Effect), JoseError> {
        let jws = Jws::parse(token)?;
        Ok((
            VerifySignedToken {
                jws: Some(jws),
                state: State::LoadingJwks(metadata),
                refetch_cooldown: Duration::ZERO,
            },
            Effect::LoadJwks,
        ))
    }

    fn verify(&self, config: &Config, metadata: &Metadata, jwks: &Jwks) -> Result<(), JoseError> {
        match &self.jws {
            Some(jws) => jws.verify(
                jwks,
                &AlgorithmPolicy {
                    advertised: metadata.id_token_signing_alg_values_supported.as_deref(),
                    hs256_secret: config
                        .client_secret()
                        .filter(|_| config.allows_hs256())
                        .map(|s| s.expose().as_bytes()),
                },
            ),
            None => Err(JoseError::Malformed("token already consumed")),
        }
    }

    fn fetch(&mut self, metadata: Arc<Metadata>) -> VerifyOutcome {
        let Some(uri) = metadata.jwks_uri.clone() else {
            return VerifyOutcome::Failed(VerifyFailure::Metadata(
                "the discovery document has no jwks_uri",
            ));
        };
        let request = http::Request::get(uri.as_str())
            .header(http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .unwrap_or_default();
        self.state = State::Fetching(metadata);
        VerifyOutcome::Effect(Effect::Http(Box::new(HttpRequest {
            request,
            coalesce: Some(Coalesce {
                key: format!("jwks {uri}"),
                remember: false,
                lane: None,
            }),
            at_send: Vec::new(),
        })))
    }

    fn finish(&mut self, result: Result<(), JoseError>, metadata: Arc<Metadata>) -> VerifyOutcome {
        self.state = State::Finished;
        match (result, self.jws.take()) {
            (Ok(()), Some(jws)) => VerifyOutcome::Verified(jws.into_claims(), metadata),
            (Ok(()), None) => VerifyOutcome::Failed(VerifyFailure::Unexpected(UnexpectedInput {
                expected: "nothing (verification has finished)",
            })),
            (Err(e), _) => VerifyOutcome::Failed(VerifyFailure::Token(e)),
        }
    }

    pub(crate) fn handle(&mut self, config: &Config, input: Input, now: UnixTime) -> VerifyOutcome {
        match (std::mem::replace(&mut self.state, State::Finished), input) {
            (State::Metadata(mut meta), input) => match meta.handle(config, input, now) {
                MetadataOutcome::Ready(m) => {
                    self.state = State::LoadingJwks(m);
                    VerifyOutcome::Effect(Effect::LoadJwks)
                }
                MetadataOutcome::Effect(e) => {
                    self.state = State::Metadata(meta);
                    VerifyOutcome::Effect(e)
                }
                MetadataOutcome::Failed(e) => VerifyOutcome::Failed(VerifyFailure::Discovery(e)),
                MetadataOutcome::Unexpected(e) => {
                    VerifyOutcome::Failed(VerifyFailure::Unexpected(e))
                }
            },
            (State::LoadingJwks(metadata), Input::Jwks(cached)) => {
                let fresh = cached.filter(|c| !is_stale(c.fetched_at, now, config.discovery_ttl()));
                match fresh {
                    Some(c) => match self.verify(config, &metadata, &c.jwks) {
                        // A key the cached set lacks: the tenant may have rotated; refetch once.
                        Err(JoseError::UnknownKid(kid))
                            if now.saturating_duration_since(c.fetched_at).as_secs()
                                < self.refetch_cooldown.as_secs() =>
                        {
                            self.finish(Err(JoseError::UnknownKid(kid)), metadata)
                        }
                        Err(JoseError::UnknownKid(_)) => self.fetch(metadata),
                        other => self.finish(other, metadata),
                    },
                    None => self.fetch(metadata),
                }
            }
            (State::Fetching(metadata), Input::Http(response)) => {
                let status = response.status().as_u16();
                if response.body().len() > MAX_RESPONSE_BODY {
                    return VerifyOutcome::Failed(VerifyFailure::Jwks(ResponseError::TooLarge {
                        status,
                    }));
                }
                if !response.status().is_success() {
                    return VerifyOutcome::Failed(VerifyFailure::Jwks(
                        crate::token_endpoint::parse_error_body(status, response.body()),
                    ));
                }
                match Jwks::from_slice(response.body()) {
                    Ok(jwks) => {
                        self.state = State::Storing(jwks.clone(), metadata);
                        VerifyOutcome::Effect(Effect::StoreJwks(CachedJwks {
                            jwks,
                            fetched_at: now,
                        }))
                    }
                    Err(_) => VerifyOutcome::Failed(VerifyFailure::Jwks(ResponseError::Invalid {
                        status,
                        reason: "the JWKS is not a valid JSON Web Key Set",
                    })),
                }
            }
            (State::Storing(jwks, metadata), Input::Done) => {
                let result = self.verify(config, &metadata, &jwks);
                self.finish(result, metadata)
            }
            (state, _) => VerifyOutcome::Failed(VerifyFailure::Unexpected(UnexpectedInput {
                expected: match state {
                    State::Metadata(_) => "metadata",
                    State::LoadingJwks(_) => "LoadJwks",
                    State::Fetching(_) => "Http (JWKS)",
                    State::Storing(..) => "StoreJwks",
                    State::Finished => "nothing (verification has finished)",
                },
            })),
        }
    }
}
