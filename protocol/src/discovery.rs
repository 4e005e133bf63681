//! OpenID Connect discovery: the request for the tenant's metadata, its parsing, and the
//! decision whether a cached copy is still fresh (the core decides, the adapter keeps it).
//!
//! The cache itself is plain data ([`CachedMetadata`]) that the adapter keeps and hands back;
//! the core only decides, from `now` and the configured TTL, whether it must be refetched.

use crate::config::{ClientTransport, Config};
use crate::time::UnixTime;
use crate::token_response::{MAX_RESPONSE_BODY, ResponseError};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// The parts of the tenant's OpenID Provider metadata the SDK uses.
///
/// What the SDK trusts discovery for: the issuer (checked against the configured URL, then
/// the only accepted `iss`), the endpoints (each https, loopback excepted), the key set
/// location (`jwks_uri`, required), the ID-token signing algorithms the provider uses, whether
/// the callback carries an RFC 9207 `iss`, and whether RP-Initiated Logout is available.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Metadata {
    /// The issuer identifier: every `iss` is compared with it exactly.
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
    /// RFC 9207: the provider puts `iss` on every authorization response, so a callback
    /// without it is refused.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub authorization_response_iss_parameter_supported: bool,
    /// The JWS algorithms the provider signs ID tokens with, when advertised.
    #[serde(default, deserialize_with = "lenient_strings")]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    /// The UserInfo endpoint.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The CIBA backchannel authentication endpoint (OpenID CIBA Core 1.0 §4), where a
    /// login on another device starts.
    #[serde(default)]
    pub backchannel_authentication_endpoint: Option<String>,
    /// RFC 8705 §5: the endpoints to use instead when the client authenticates with mutual
    /// TLS (usually on another host that asks for a client certificate).
    #[serde(default)]
    pub mtls_endpoint_aliases: Option<MtlsEndpointAliases>,
}

/// The `mtls_endpoint_aliases` of RFC 8705 §5: where a client using mutual TLS sends the
/// requests that would go to the endpoint of the same name. Members not listed here are
/// ignored; a listed member is validated like every other endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct MtlsEndpointAliases {
    /// The token endpoint over mTLS.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// The Pushed Authorization Request endpoint over mTLS.
    #[serde(default)]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// The token revocation endpoint over mTLS.
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    /// The UserInfo endpoint over mTLS (where a certificate-bound access token is accepted).
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The token introspection endpoint over mTLS.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// The device authorization endpoint over mTLS.
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    /// The CIBA backchannel authentication endpoint over mTLS.
    #[serde(default)]
    pub backchannel_authentication_endpoint: Option<String>,
}

/// An endpoint the client may send an authenticated request to, as named in discovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `token_endpoint`: code exchange, refresh, token exchange.
    Token,
    /// `pushed_authorization_request_endpoint` (RFC 9126).
    PushedAuthorizationRequest,
    /// `revocation_endpoint` (RFC 7009).
    Revocation,
    /// `userinfo_endpoint`.
    Userinfo,
    /// `backchannel_authentication_endpoint` (OpenID CIBA Core 1.0).
    BackchannelAuthentication,
}

impl Metadata {
    /// Where a request for `endpoint` goes for a client authenticating over `transport`: with
    /// [`ClientTransport::MutualTls`], the `mtls_endpoint_aliases` entry when discovery lists
    /// one (RFC 8705 §5), else the endpoint itself; with [`ClientTransport::Tls`], always the
    /// endpoint itself (aliases are only for mTLS clients). `None` when the provider has
    /// neither.
    pub fn endpoint(&self, endpoint: Endpoint, transport: ClientTransport) -> Option<&str> {
        let alias = match (transport, &self.mtls_endpoint_aliases) {
            (ClientTransport::MutualTls, Some(aliases)) => match endpoint {
                Endpoint::Token => aliases.token_endpoint.as_deref(),
                Endpoint::PushedAuthorizationRequest => {
                    aliases.pushed_authorization_request_endpoint.as_deref()
                }
                Endpoint::Revocation => aliases.revocation_endpoint.as_deref(),
                Endpoint::Userinfo => aliases.userinfo_endpoint.as_deref(),
                Endpoint::BackchannelAuthentication => {
                    aliases.backchannel_authentication_endpoint.as_deref()
                }
            },
            _ => None,
        };
        alias.or(match endpoint {
            Endpoint::Token => Some(self.token_endpoint.as_str()),
            Endpoint::PushedAuthorizationRequest => {
                self.pushed_authorization_request_endpoint.as_deref()
            }
            Endpoint::Revocation => self.revocation_endpoint.as_deref(),
            Endpoint::Userinfo => self.userinfo_endpoint.as_deref(),
            Endpoint::BackchannelAuthentication => {
                self.backchannel_authentication_endpoint.as_deref()
            }
        })
    }

    /// The token endpoint for `transport` (see [`endpoint`](Self::endpoint)).
    pub fn token_endpoint_for(&self, transport: ClientTransport) -> &str {
        self.endpoint(Endpoint::Token, transport)
            .unwrap_or(&self.token_endpoint)
    }
}

/// A boolean member that is not a boolean counts as absent (`false`).
fn lenient_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(matches!(
        serde_json::Value::deserialize(d)?,
        serde_json::Value::Bool(true)
    ))
}

/// A list of strings; anything else counts as absent.
fn lenient_strings<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Array(items) => Some(
            items
                .into_iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    })
}

/// Whether `discovered` is the issuer the configuration expects: the override exactly when
/// one is set, else the configured issuer URL with or without one trailing slash (OpenID
/// Connect Discovery §4.3). On a mismatch, the error names both.
pub fn check_discovered_issuer(config: &Config, discovered: &str) -> Result<(), ResponseError> {
    let ok = match config.issuer_override() {
        Some(expected) => discovered == expected,
        None => {
            let base = config.issuer_url();
            discovered == base || discovered.strip_suffix('/') == Some(base)
        }
    };
    if ok {
        return Ok(());
    }
    Err(ResponseError::IssuerMismatch {
        expected: config
            .issuer_override()
            .map_or_else(|| config.issuer_url().to_owned(), str::to_owned),
        actual: discovered.to_owned(),
    })
}

/// Whether an endpoint URL from discovery may be used: `https`, or `http` on a loopback host
/// (a local provider), and parseable both by `url` and by `http`.
pub fn endpoint_allowed(endpoint: &str) -> bool {
    // The requests are built from the string as sent, so `http` must accept it too
    // (`url` tolerates characters such as `{` in a host that `http::Uri` refuses).
    endpoint.parse::<http::Uri>().is_ok()
        && url::Url::parse(endpoint)
            .map(|u| match u.scheme() {
                "https" => u.host().is_some(),
                "http" => match u.host() {
                    Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                },
                _ => false,
            })
            .unwrap_or(false)
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

/// The discovery request: `GET {issuer_url}/.well-known/openid-configuration`.
pub fn discovery_request(config: &Config) -> http::Request<Vec<u8>> {
    http::Request::get(config.discovery_url())
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .unwrap_or_default()
}

/// Parses a discovery answer. The issuer must be the configured one
/// ([`check_discovered_issuer`]: a mismatch is an error naming both, the mix-up defence),
/// `jwks_uri` must be present, and every endpoint must be `https` (`http` only on loopback).
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
        return Err(crate::token_response::parse_error_body(status, body));
    }
    let metadata: Metadata = serde_json::from_slice(body).map_err(|_| ResponseError::Invalid {
        status,
        reason: "discovery document is not valid OpenID Provider metadata",
    })?;
    check_discovered_issuer(config, &metadata.issuer)?;
    if metadata.jwks_uri.is_none() {
        return Err(ResponseError::Invalid {
            status,
            reason: "the discovery document has no jwks_uri",
        });
    }
    let endpoints = [
        Some(&metadata.authorization_endpoint),
        Some(&metadata.token_endpoint),
        metadata.jwks_uri.as_ref(),
        metadata.pushed_authorization_request_endpoint.as_ref(),
        metadata.end_session_endpoint.as_ref(),
        metadata.revocation_endpoint.as_ref(),
        metadata.userinfo_endpoint.as_ref(),
        metadata.backchannel_authentication_endpoint.as_ref(),
    ];
    let aliases = metadata.mtls_endpoint_aliases.iter().flat_map(|a| {
        [
            a.token_endpoint.as_ref(),
            a.pushed_authorization_request_endpoint.as_ref(),
            a.revocation_endpoint.as_ref(),
            a.userinfo_endpoint.as_ref(),
            a.introspection_endpoint.as_ref(),
            a.device_authorization_endpoint.as_ref(),
            a.backchannel_authentication_endpoint.as_ref(),
        ]
    });
    for endpoint in endpoints.into_iter().chain(aliases).flatten() {
        if !endpoint_allowed(endpoint) {
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

    fn doc(issuer: &str, base: &str) -> http::Response<Vec<u8>> {
        http::Response::new(
            serde_json::json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "jwks_uri": format!("{base}/jwks"),
                "authorization_response_iss_parameter_supported": true,
                "id_token_signing_alg_values_supported": ["ES256", 7],
            })
            .to_string()
            .into_bytes(),
        )
    }

    fn config_for(domain: &str) -> Config {
        Config::builder(domain, "c")
            .client_secret("s")
            .secret("0123456789abcdef0123456789abcdef")
            .build()
            .unwrap()
    }

    #[test]
    fn the_issuer_must_be_the_url_fetched_for_with_or_without_one_slash() {
        let c = config_for("https://idp.example.com/realms/acme");
        assert_eq!(
            discovery_request(&c).uri(),
            "https://idp.example.com/realms/acme/.well-known/openid-configuration"
        );
        let base = "https://idp.example.com/realms/acme";
        for good in [base.to_owned(), format!("{base}/")] {
            let m = parse_metadata(&c, &doc(&good, base)).unwrap();
            assert_eq!(m.issuer, good);
            assert!(m.authorization_response_iss_parameter_supported);
            assert_eq!(
                m.id_token_signing_alg_values_supported,
                Some(vec!["ES256".to_owned()])
            );
        }
        for bad in [
            format!("{base}//"),
            "https://idp.example.com".to_owned(),
            "https://idp.example.com/realms/other".to_owned(),
            format!("{base}/x"),
        ] {
            let err = parse_metadata(&c, &doc(&bad, base)).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(base) && text.contains(&bad), "{text}");
        }
    }

    #[test]
    fn the_issuer_override_is_compared_exactly() {
        let c = Config::builder("https://proxy.example.com", "c")
            .client_secret("s")
            .secret("0123456789abcdef0123456789abcdef")
            .issuer("https://login.example.com/")
            .build()
            .unwrap();
        let base = "https://login.example.com";
        assert!(parse_metadata(&c, &doc("https://login.example.com/", base)).is_ok());
        assert!(parse_metadata(&c, &doc("https://login.example.com", base)).is_err());
        assert!(parse_metadata(&c, &doc("https://proxy.example.com", base)).is_err());
    }

    #[test]
    fn jwks_uri_is_required_and_endpoints_are_https_except_loopback() {
        let c = config_for("https://idp.example.com");
        let mut no_jwks: serde_json::Value = serde_json::from_slice(
            doc("https://idp.example.com", "https://idp.example.com").body(),
        )
        .unwrap();
        no_jwks.as_object_mut().unwrap().remove("jwks_uri");
        let r = http::Response::new(no_jwks.to_string().into_bytes());
        assert!(parse_metadata(&c, &r).is_err());
        assert!(endpoint_allowed("https://idp.example.com/token"));
        assert!(endpoint_allowed("http://127.0.0.1:8080/token"));
        assert!(endpoint_allowed("http://localhost:8080/token"));
        assert!(!endpoint_allowed("http://idp.example.com/token"));
        assert!(!endpoint_allowed("ftp://idp.example.com/token"));
    }

    #[test]
    fn staleness_follows_ttl() {
        let m = Metadata::default();
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
