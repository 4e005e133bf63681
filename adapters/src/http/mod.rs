//! HTTP clients shipped with the SDK, one per feature.
//!
//! | feature | client | TLS |
//! |---|---|---|
//! | `blocking` (default) | the [`blocking`](crate::blocking) client's `ureq` agent | rustls, Mozilla (webpki) roots |
//! | `blocking-platform-verifier` | same | rustls, the operating system's verifier and trust store |
//! | `blocking-native-tls` | same | the platform's TLS library (OpenSSL, SChannel, Security.framework) |
//! | `reqwest` | [`ReqwestClient`], an async [`HttpClient`](crate::nonblocking::HttpClient) | rustls, Mozilla (webpki) roots |
//! | `reqwest-native-roots` | same | rustls, the Mozilla roots and the operating system's trust store |
//! | `reqwest-native-tls` | same | the platform's TLS library |
//!
//! An async application enables `reqwest` without the default features and compiles no
//! `ureq`:
//!
//! ```toml
//! auth0-server = { version = "0.1", default-features = false, features = ["reqwest"] }
//! ```
//!
//! **Proxies.** Both clients honour the conventional environment variables: `HTTPS_PROXY`
//! (and `https_proxy`) for requests to the tenant, `HTTP_PROXY`, `ALL_PROXY`, and `NO_PROXY`
//! for hosts to reach directly. Give a client of your own
//! ([`blocking::ServerClientBuilder::agent`](crate::blocking::ServerClientBuilder::agent),
//! [`ReqwestClient::from_client`]) for any other proxy, TLS or root-certificate setting, for
//! instance reqwest's `use_preconfigured_tls` with a `rustls-platform-verifier` configuration.
//!
//! **Mutual TLS** (RFC 8705: `tls_client_auth`, `self_signed_tls_client_auth`). Both
//! clients take the client certificate chain and its private key directly
//! ([`ClientCertificate`]: `blocking::ServerClientBuilder::client_certificate`,
//! [`ReqwestClientBuilder::client_certificate`]), and, for a private PKI, extra root
//! certificates to trust ([`RootCertificates`]); no custom transport to write. The
//! configuration names the method (`ConfigBuilder::tls_client_auth`) and the core sends the
//! token, PAR and revocation requests to discovery's `mtls_endpoint_aliases`.
//!
//! **Errors.** A request that gets no response is a [`TransportError`](crate::TransportError)
//! whose message names the method, the host and the path (never the query) and what failed:
//! the DNS lookup, the TCP connection, the TLS handshake, a timeout, an `http://` URL
//! answered by a server that speaks only TLS. The underlying error stays reachable through
//! [`std::error::Error::source`].

// The error classification below serves the shipped clients; a build with neither has no use
// for it (an application's own `HttpClient` builds its `TransportError`s itself).
#![cfg_attr(not(any(feature = "blocking", feature = "reqwest")), allow(dead_code))]

#[cfg(feature = "reqwest")]
mod reqwest;
#[cfg(any(feature = "blocking", feature = "reqwest"))]
pub(crate) mod tls;
#[cfg(feature = "blocking")]
pub(crate) mod ureq;

#[cfg(any(feature = "blocking", feature = "reqwest"))]
pub use self::tls::{ClientCertificate, RootCertificates, TlsError};

#[cfg(feature = "reqwest")]
pub use self::reqwest::{ReqwestClient, ReqwestClientBuilder};

/// The `reqwest` crate this SDK was built with, to configure a client for
/// [`ReqwestClient::from_client`] with the same version.
#[cfg(feature = "reqwest")]
pub use ::reqwest as reqwest_crate;

use std::error::Error as StdError;
use std::time::Duration;

/// The longest timeout an HTTP client is given: longer ones (up to `Duration::MAX`) mean "no
/// practical limit" and are clamped to this, since the clients compute deadlines by adding the
/// timeout to the current instant.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What a failed request's error chain says went wrong, from the standard error types every
/// HTTP stack wraps (`std::io::Error` and its kinds) and the stable descriptions they give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The host name did not resolve.
    Dns,
    /// The TCP connection was refused.
    Refused,
    /// The TCP connection failed otherwise (unreachable, reset).
    Connect,
    /// The TLS handshake or certificate check failed.
    Tls,
    /// A timeout elapsed.
    Timeout,
    /// The server answered with bytes that are not HTTP (over `http://`), or are not TLS
    /// (over `https://`: reported as [`Failure::Tls`]).
    NotHttp,
    /// Anything else.
    Other,
}

/// Classifies an error chain, outermost first: the descriptions DNS resolvers and TLS
/// libraries give (`failed to lookup address`, `dns error`, `certificate`, `handshake`, …),
/// else a `std::io::Error` with a telling kind.
pub(crate) fn classify(error: &(dyn StdError + 'static)) -> Failure {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("failed to lookup address")
            || text.contains("dns error")
            || text.contains("name or service not known")
        {
            return Failure::Dns;
        }
        // rustls, native-tls and OpenSSL describe their failures with these words.
        if [
            "certificate",
            "handshake",
            "tls",
            "ssl",
            "corrupt message",
            "alert",
        ]
        .iter()
        .any(|word| text.contains(word))
        {
            return Failure::Tls;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            match io.kind() {
                K::InvalidData => return Failure::NotHttp,
                K::ConnectionRefused => return Failure::Refused,
                K::TimedOut | K::WouldBlock => return Failure::Timeout,
                K::ConnectionReset | K::ConnectionAborted | K::NotConnected => {
                    return Failure::Connect;
                }
                _ => {}
            }
        }
        next = e.source();
    }
    Failure::Other
}

/// Undecodable bytes over `https://` are a TLS failure (for instance a plain-HTTP server
/// on that port).
pub(crate) fn refine(uri: &http::Uri, failure: Failure) -> Failure {
    match failure {
        Failure::NotHttp if uri.scheme_str() == Some("https") => Failure::Tls,
        failure => failure,
    }
}

/// The [`TransportErrorKind`](crate::TransportErrorKind) of a failure.
pub(crate) fn kind_of(uri: &http::Uri, failure: Failure) -> crate::TransportErrorKind {
    use crate::TransportErrorKind as Kind;
    match refine(uri, failure) {
        Failure::Timeout => Kind::Timeout,
        Failure::Dns | Failure::Refused | Failure::Connect | Failure::Tls => Kind::Connect,
        Failure::NotHttp | Failure::Other => Kind::Io,
    }
}

/// The host and port a request went to, for messages (`tenant.auth0.com:443`).
pub(crate) fn host_of(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or("?");
    match uri.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The detail of a transport error: what failed, with the host, and a hint for an `http://`
/// URL answered in TLS.
pub(crate) fn describe(uri: &http::Uri, failure: Failure, detail: &str) -> String {
    let host = host_of(uri);
    let plain_http = uri.scheme_str() == Some("http");
    match refine(uri, failure) {
        Failure::Dns => format!(
            "DNS lookup of {} failed ({detail})",
            uri.host().unwrap_or("?")
        ),
        Failure::Refused => format!("connection to {host} refused"),
        Failure::Connect => format!("connection to {host} failed ({detail})"),
        Failure::Tls if plain_http => format!(
            "TLS error talking to {host} over http:// ({detail}): the URL may need https://"
        ),
        Failure::Tls => format!("TLS handshake with {host} failed ({detail})"),
        Failure::Timeout => format!("{host} did not answer in time ({detail})"),
        Failure::NotHttp if plain_http => format!(
            "{host} did not answer in HTTP ({detail}): it may accept only TLS; use an https:// URL"
        ),
        Failure::NotHttp => format!("{host} did not answer in HTTP ({detail})"),
        Failure::Other => format!("request to {host} failed ({detail})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn classify_reads_io_kinds_and_library_descriptions() {
        let dns =
            io::Error::other("failed to lookup address information: Name or service not known");
        assert_eq!(classify(&dns), Failure::Dns);
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(classify(&refused), Failure::Refused);
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        );
        assert_eq!(classify(&tls), Failure::Tls);
        let garbled = io::Error::new(io::ErrorKind::InvalidData, "bad status line");
        assert_eq!(classify(&garbled), Failure::NotHttp);
        assert_eq!(classify(&io::Error::other("reset")), Failure::Other);
    }

    #[test]
    fn undecodable_bytes_over_https_are_a_tls_failure() {
        let https: http::Uri = "https://tenant.example/oauth/token?code=x".parse().unwrap();
        let http: http::Uri = "http://127.0.0.1:8080/oauth/token".parse().unwrap();
        assert_eq!(refine(&https, Failure::NotHttp), Failure::Tls);
        assert_eq!(refine(&http, Failure::NotHttp), Failure::NotHttp);
        let shown = describe(&https, Failure::NotHttp, "corrupt");
        assert!(
            shown.starts_with("TLS handshake with tenant.example failed"),
            "{shown}"
        );
        assert!(!shown.contains("code=x"), "{shown}");
        let shown = describe(&http, Failure::NotHttp, "bad status line");
        assert!(
            shown.contains("127.0.0.1:8080 did not answer in HTTP"),
            "{shown}"
        );
        assert!(shown.contains("use an https:// URL"), "{shown}");
    }
}
