//! The ID token a refresh returns (OpenID Connect Core §12.2): verified like the login's
//! before it replaces anything — signature against the provider's keys, `iss` the discovered
//! issuer, `aud` containing the client id, `azp`, `exp`/`iat`/`nbf` — and its `sub` must be
//! the session's. No nonce (a refresh sends none).
//!
//! `VerifyRefreshedIdToken` is the sub-machine `get_access_token` runs when a refresh answer
//! carries an ID token; [`validate_refreshed_id_token`] is its pure claims check.

use crate::config::Config;
use crate::discovery::Metadata;
use crate::effect::{Effect, Input, UnexpectedInput};
use crate::jose::JoseError;
use crate::jose::claims::{IdTokenExpectations, validate_id_token};
use crate::signed_token::{VerifyFailure, VerifyOutcome, VerifySignedToken};
use crate::time::UnixTime;
use crate::token_endpoint::ResponseError;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Checks the claims of a refreshed ID token whose signature verified: the login checks
/// without nonce, `max_age` or organization, then `sub` equal to the session's (when the
/// session has one). A different `sub` is [`JoseError::SubjectMismatch`].
pub fn validate_refreshed_id_token(
    claims: &Map<String, Value>,
    config: &Config,
    issuer: &str,
    session_sub: Option<&str>,
    now: UnixTime,
) -> Result<(), JoseError> {
    validate_id_token(
        claims,
        &IdTokenExpectations {
            issuer,
            client_id: config.client_id(),
            nonce: None,
            max_age: None,
            organization: None,
            now,
            clock_tolerance: config.clock_tolerance(),
        },
    )?;
    match session_sub {
        Some(sub) if claims.get("sub").and_then(Value::as_str) != Some(sub) => {
            Err(JoseError::SubjectMismatch)
        }
        _ => Ok(()),
    }
}

/// Why a refreshed ID token was not accepted.
#[derive(Debug)]
pub(crate) enum RefreshedIdTokenFailure {
    /// The token failed a check (signature, claims, subject).
    Token(JoseError),
    /// The provider's keys (or metadata) could not be obtained.
    Keys(ResponseError),
    /// The driver sent the wrong input.
    Unexpected(UnexpectedInput),
}

/// What one step of [`VerifyRefreshedIdToken`] decided.
pub(crate) enum RefreshedIdTokenOutcome {
    /// The token is valid and belongs to the session's user.
    Verified,
    /// Perform this effect and hand the input back.
    Effect(Effect),
    /// The token is refused: nothing may be saved.
    Failed(RefreshedIdTokenFailure),
}

/// Verifies the ID token of a refresh answer (signature, claims, subject).
#[derive(Debug)]
pub(crate) struct VerifyRefreshedIdToken {
    verify: VerifySignedToken,
    session_sub: Option<String>,
}

impl VerifyRefreshedIdToken {
    /// Starts verifying `id_token` with the metadata the refresh used; the first effect loads
    /// the JWKS.
    pub(crate) fn start(
        id_token: &str,
        metadata: Arc<Metadata>,
        session_sub: Option<String>,
    ) -> Result<(Self, Effect), JoseError> {
        let (verify, effect) = VerifySignedToken::start_with_metadata(id_token, metadata)?;
        Ok((
            VerifyRefreshedIdToken {
                verify,
                session_sub,
            },
            effect,
        ))
    }

    pub(crate) fn handle(
        &mut self,
        config: &Config,
        input: Input,
        now: UnixTime,
    ) -> RefreshedIdTokenOutcome {
        match self.verify.handle(config, input, now) {
            VerifyOutcome::Verified(claims, metadata) => {
                match validate_refreshed_id_token(
                    &claims,
                    config,
                    &metadata.issuer,
                    self.session_sub.as_deref(),
                    now,
                ) {
                    Ok(()) => RefreshedIdTokenOutcome::Verified,
                    Err(e) => RefreshedIdTokenOutcome::Failed(RefreshedIdTokenFailure::Token(e)),
                }
            }
            VerifyOutcome::Effect(e) => RefreshedIdTokenOutcome::Effect(e),
            VerifyOutcome::Failed(f) => RefreshedIdTokenOutcome::Failed(match f {
                VerifyFailure::Token(e) => RefreshedIdTokenFailure::Token(e),
                VerifyFailure::Discovery(e) | VerifyFailure::Jwks(e) => {
                    RefreshedIdTokenFailure::Keys(e)
                }
                VerifyFailure::Metadata(reason) => {
                    RefreshedIdTokenFailure::Keys(ResponseError::Invalid {
                        status: 200,
                        reason,
                    })
                }
                VerifyFailure::Unexpected(e) => RefreshedIdTokenFailure::Unexpected(e),
            }),
        }
    }
}
