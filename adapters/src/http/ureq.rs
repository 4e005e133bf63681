//! The blocking client's HTTP transport: a `ureq` agent that returns every HTTP status as a
//! response, follows no redirects, applies connect and read timeouts, limits response
//! bodies, and turns `ureq` failures into [`TransportError`]s that say what failed where.

use super::{Failure, classify, describe, kind_of};
use crate::error::{TransportError, TransportErrorKind};
use std::time::Duration;
use ureq::RequestExt;

/// The limits every request is sent with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// How long to wait for a connection.
    pub(crate) connect_timeout: Duration,
    /// How long to wait for the response, and again for its body.
    pub(crate) read_timeout: Duration,
    /// The largest response body accepted.
    pub(crate) max_response_body: usize,
}

impl Limits {
    /// The limits with every timeout clamped to [`super::MAX_TIMEOUT`].
    fn clamped(self) -> Limits {
        Limits {
            connect_timeout: self.connect_timeout.min(super::MAX_TIMEOUT),
            read_timeout: self.read_timeout.min(super::MAX_TIMEOUT),
            ..self
        }
    }
}

/// A new agent for `limits`: statuses as responses, no redirects, TLS as the crate's features
/// choose (rustls with the webpki roots by default) plus `tls`'s client certificate and extra
/// roots, proxy from the environment.
pub(crate) fn agent(limits: Limits, tls: &super::tls::TlsSettings) -> ureq::Agent {
    let limits = limits.clamped();
    let builder = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(limits.connect_timeout))
        .timeout_recv_response(Some(limits.read_timeout))
        .timeout_recv_body(Some(limits.read_timeout));
    let config = ureq::tls::TlsConfig::builder();
    #[cfg(feature = "blocking-platform-verifier")]
    let config = config.root_certs(ureq::tls::RootCerts::PlatformVerifier);
    #[cfg(feature = "blocking-native-tls")]
    let config = config.provider(ureq::tls::TlsProvider::NativeTls);
    let config = config.client_cert(tls.client_certificate.as_ref().and_then(client_cert));
    // Extra roots join the Mozilla roots (ureq's default, as whole certificates); with the
    // platform verifier they replace it (ureq cannot add roots to it).
    let config = if tls.extra_roots.is_empty() {
        config
    } else {
        let roots: Vec<ureq::tls::Certificate<'static>> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .chain(tls.extra_roots.certs())
            .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        config.root_certs(ureq::tls::RootCerts::new_with_certs(&roots))
    };
    builder.tls_config(config.build()).build().new_agent()
}

/// The client certificate as ureq takes it. It was checked by
/// [`super::ClientCertificate::from_pem`] (so ureq's own check, which panics, cannot fail),
/// and the key PEM is the one it read, so ureq reads it too: `None` cannot happen.
fn client_cert(cert: &super::ClientCertificate) -> Option<ureq::tls::ClientCert> {
    use ureq::tls::{Certificate, PrivateKey};
    let chain: Vec<Certificate<'static>> = cert
        .chain()
        .iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    let key = PrivateKey::from_pem(&cert.key_pem()).ok()?;
    Some(ureq::tls::ClientCert::new_with_certs(&chain, key))
}

/// Sends one request through `agent` and reads the whole response.
pub(crate) fn send(
    agent: &ureq::Agent,
    request: http::Request<Vec<u8>>,
    limits: Limits,
) -> Result<http::Response<Vec<u8>>, TransportError> {
    let limits = limits.clamped();
    let (method, uri) = (request.method().clone(), request.uri().clone());
    let fail = |e: ureq::Error| map_error(&method, &uri, e, limits);
    let response = request
        .with_agent(agent)
        .configure()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(limits.connect_timeout))
        .timeout_recv_response(Some(limits.read_timeout))
        .timeout_recv_body(Some(limits.read_timeout))
        .build()
        .run()
        .map_err(fail)?;
    let (parts, mut body) = response.into_parts();
    let limit = u64::try_from(limits.max_response_body).unwrap_or(u64::MAX);
    let bytes = body
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(fail)?;
    Ok(http::Response::from_parts(parts, bytes))
}

/// Maps a `ureq` error to a [`TransportError`] naming the host and what failed, without
/// quoting URLs or bodies; the I/O or TLS error underneath stays the `source()`.
fn map_error(
    method: &http::Method,
    uri: &http::Uri,
    e: ureq::Error,
    limits: Limits,
) -> TransportError {
    use TransportErrorKind as Kind;
    let error = |kind, failure, detail: &str| {
        TransportError::for_target(method, uri, kind, describe(uri, failure, detail))
    };
    match e {
        ureq::Error::Timeout(t) => {
            let (what, limit) = match t {
                ureq::Timeout::Resolve => ("DNS lookup", limits.connect_timeout),
                ureq::Timeout::Connect => ("connecting", limits.connect_timeout),
                ureq::Timeout::RecvBody => ("reading the response body", limits.read_timeout),
                _ => ("waiting for the response", limits.read_timeout),
            };
            error(
                Kind::Timeout,
                Failure::Timeout,
                &format!("{what}: no progress within {} ms", limit.as_millis()),
            )
        }
        ureq::Error::BodyExceedsLimit(n) => TransportError::for_target(
            method,
            uri,
            Kind::ResponseTooLarge,
            format!("response body exceeds {n} bytes"),
        ),
        ureq::Error::HostNotFound => error(Kind::Connect, Failure::Dns, "host not found"),
        ureq::Error::ConnectionFailed => error(
            Kind::Connect,
            Failure::Connect,
            "no address accepted a connection",
        ),
        ureq::Error::Tls(what) => error(Kind::Connect, Failure::Tls, what),
        ureq::Error::Rustls(tls) => {
            error(Kind::Connect, Failure::Tls, &tls.to_string()).with_source(tls)
        }
        #[cfg(feature = "blocking-native-tls")]
        ureq::Error::NativeTls(tls) => {
            error(Kind::Connect, Failure::Tls, &tls.to_string()).with_source(tls)
        }
        // A server that speaks only TLS answers a plain-text request with a TLS record.
        ureq::Error::Protocol(p) => error(
            kind_of(uri, Failure::NotHttp),
            Failure::NotHttp,
            &p.to_string(),
        ),
        ureq::Error::Io(io) => {
            let failure = classify(&io);
            error(kind_of(uri, failure), failure, &io.to_string()).with_source(io)
        }
        ureq::Error::InvalidProxyUrl => error(
            Kind::Connect,
            Failure::Other,
            "the proxy URL in HTTPS_PROXY, HTTP_PROXY or ALL_PROXY is invalid",
        ),
        // Other variants (a bad URI, redirects, cookies) may quote the URL: say only what.
        ureq::Error::BadUri(_) => error(Kind::Io, Failure::Other, "invalid URL"),
        _ => error(Kind::Io, Failure::Other, "HTTP protocol error"),
    }
}
