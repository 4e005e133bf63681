//! OpenID Connect discovery: the request for the tenant's metadata, its parsing, and the
//! decision whether a cached copy is still fresh (the core decides, the adapter keeps it).
//!
//! The cache itself is plain data ([`CachedMetadata`]) that the adapter keeps and hands back;
//! the core only decides, from `now` and the configured TTL, whether it must be refetched.

use crate::config::Config;
use crate::time::UnixTime;
use crate::token_endpoint::{MAX_RESPONSE_BODY, ResponseError};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The parts of the tenant's OpenID Provider metadata the SDK uses.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Metadata {
    /// The issuer identifier.
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The JWKS URI.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The Pushed Authorization Request endpoint.
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// The OIDC RP-initiated logout endpoint.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// The token revocation endpoint.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
}

/// Metadata as cached by the adapter, with the time it was fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedMetadata {
    /// The metadata.
    pub metadata: Arc<Metadata>,
    /// When it was fetched.
    pub fetched_at: UnixTime,
}

impl CachedMetadata {
    /// Whether this copy must be refetched: `ttl` old or older, or from the future (a clock
    /// that went backwards).
    pub fn is_stale(&self, now: UnixTime, ttl: Duration) -> bool {
        is_stale(self.fetched_at, now, ttl)
    }
}

/// Whether a copy fetched at `fetched_at` must be refetched at `now`: `ttl` old or older, or
/// from the future (a clock that went backwards). Shared by the metadata and JWKS caches.
pub(crate) fn is_stale(fetched_at: UnixTime, now: UnixTime, ttl: Duration) -> bool {
    match now.checked_duration_since(fetched_at) {
        Some(age) => age.as_secs() >= ttl.as_secs(),
        None => true,
    }
}

/// The discovery request: `GET {origin}/.well-known/openid-configuration`.
pub fn discovery_request(config: &Config) -> http::Request<Vec<u8>> {
    http::Request::get(format!(
        "{}/.well-known/openid-configuration",
        config.origin()
    ))
    .header(http::header::ACCEPT, "application/json")
    .body(Vec::new())
    .unwrap_or_default()
}

/// Parses a discovery answer. The issuer must be the configured one and every endpoint must
/// be an http(s) URL on a host that is not suspicious; a mismatch is an error (mix-up defence).
pub fn parse_metadata(
    config: &Config,
    response: &http::Response<Vec<u8>>,
) -> Result<Metadata, ResponseError> {
    let status = response.status().as_u16();
    let body = response.body();
    if body.len() > MAX_RESPONSE_BODY {
        return Err(ResponseError::TooLarge { status });
    }
    if !response.status().is_success() {
        return Err(crate::token_endpoint::parse_error_body(status, body));
    }
    let metadata: Metadata = serde_json::from_slice(body).map_err(|_| ResponseError::Invalid {
        status,
        reason: "discovery document is not valid OpenID Provider metadata",
    })?;
    if metadata.issuer != config.issuer()
        && metadata.issuer.trim_end_matches('/') != config.origin()
    {
        return Err(ResponseError::Invalid {
            status,
            reason: "discovery issuer does not match the configured domain",
        });
    }
    let endpoints = [
        Some(&metadata.authorization_endpoint),
        Some(&metadata.token_endpoint),
        metadata.jwks_uri.as_ref(),
        metadata.pushed_authorization_request_endpoint.as_ref(),
        metadata.end_session_endpoint.as_ref(),
        metadata.revocation_endpoint.as_ref(),
    ];
    for endpoint in endpoints.into_iter().flatten() {
        // The requests are built from the string as sent, so `http` must accept it too
        // (`url` tolerates characters such as `{` in a host that `http::Uri` refuses).
        let ok = endpoint.parse::<http::Uri>().is_ok()
            && url::Url::parse(endpoint)
                .map(|u| {
                    u.scheme() == "https" || (u.scheme() == "http" && config.domain_is_loopback())
                })
                .unwrap_or(false);
        if !ok {
            return Err(ResponseError::Invalid {
                status,
                reason: "discovery endpoint is not a valid URL",
            });
        }
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::builder("tenant.auth0.com", "c")
            .client_secret("s")
            .secret("0123456789abcdef0123456789abcdef")
            .build()
            .unwrap()
    }

    #[test]
    fn request_targets_well_known() {
        let r = discovery_request(&config());
        assert_eq!(
            r.uri(),
            "https://tenant.auth0.com/.well-known/openid-configuration"
        );
        assert_eq!(r.method(), http::Method::GET);
    }

    #[test]
    fn parses_and_checks_issuer() {
        let body = br#"{"issuer":"https://tenant.auth0.com/","authorization_endpoint":"https://tenant.auth0.com/authorize","token_endpoint":"https://tenant.auth0.com/oauth/token","jwks_uri":"https://tenant.auth0.com/.well-known/jwks.json","extra":1}"#;
        let r = http::Response::new(body.to_vec());
        let m = parse_metadata(&config(), &r).unwrap();
        assert_eq!(m.token_endpoint, "https://tenant.auth0.com/oauth/token");
        let evil = String::from_utf8_lossy(body).replace(
            "\"issuer\":\"https://tenant.auth0.com/\"",
            "\"issuer\":\"https://evil.example/\"",
        );
        assert!(parse_metadata(&config(), &http::Response::new(evil.into_bytes())).is_err());
        let http_ep = String::from_utf8_lossy(body).replace(
            "https://tenant.auth0.com/oauth/token",
            "http://tenant.auth0.com/oauth/token",
        );
        assert!(parse_metadata(&config(), &http::Response::new(http_ep.into_bytes())).is_err());
    }

    #[test]
    fn staleness_follows_ttl() {
        let m = Metadata {
            issuer: String::new(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            jwks_uri: None,
            pushed_authorization_request_endpoint: None,
            end_session_endpoint: None,
            revocation_endpoint: None,
        };
        let c = CachedMetadata {
            metadata: Arc::new(m),
            fetched_at: UnixTime::from_secs(1000),
        };
        let ttl = Duration::from_secs(600);
        assert!(!c.is_stale(UnixTime::from_secs(1000), ttl));
        assert!(!c.is_stale(UnixTime::from_secs(1599), ttl));
        assert!(c.is_stale(UnixTime::from_secs(1600), ttl));
        assert!(c.is_stale(UnixTime::from_secs(999), ttl));
    }
}
