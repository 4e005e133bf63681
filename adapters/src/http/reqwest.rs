//! [`ReqwestClient`]: the async client's [`HttpClient`] over `reqwest` (feature `reqwest`).

use super::{Failure, classify, describe, kind_of};
use crate::error::{TransportError, TransportErrorKind};
use crate::nonblocking::HttpClient;
use std::time::Duration;

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default timeout of a whole request (connect, send, response and body).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default limit on response bodies (1 MiB); a larger body is a
/// [`TransportErrorKind::ResponseTooLarge`] error.
pub const DEFAULT_MAX_RESPONSE_BODY: usize =
    auth0_server_protocol::token_endpoint::MAX_RESPONSE_BODY;

/// The async client's [`HttpClient`] over `reqwest`, for applications on tokio: every HTTP
/// status is a response, redirects are not followed, requests have a connect and an overall
/// timeout, and response bodies are limited in size. TLS is rustls with the Mozilla roots by
/// default (see [the features](crate::http)); proxies come from `HTTPS_PROXY`/`NO_PROXY`.
///
/// Cheap to clone (a `reqwest::Client` is a handle to a connection pool). Build it inside the
/// tokio runtime it is used on.
///
/// ```no_run
/// use auth0_server::Config;
/// use auth0_server::http::ReqwestClient;
/// use auth0_server::nonblocking::ServerClient;
/// use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = Config::builder("tenant.auth0.com", "client-id")
///     .client_secret("client-secret")
///     .secret("a-secret-of-at-least-32-bytes-long!!")
///     .build()?;
/// let http = ReqwestClient::builder()
///     .timeout(std::time::Duration::from_secs(5))
///     .build()?;
/// let client = ServerClient::builder(
///     config,
///     MemoryStateStore::new(),
///     MemoryTransactionStore::new(),
///     http,
/// )
/// .build();
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ReqwestClient {
    client: reqwest::Client,
    max_response_body: usize,
}

/// Builds a [`ReqwestClient`]; see [`ReqwestClient::builder`].
#[derive(Clone, Debug)]
pub struct ReqwestClientBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    max_response_body: usize,
    tls: super::tls::TlsSettings,
}

impl ReqwestClientBuilder {
    /// How long to wait for a connection, TLS included (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long a whole request may take, response body included (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body accepted (default 1 MiB).
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = bytes;
        self
    }

    /// The client certificate presented to servers that ask for one: mutual TLS with the
    /// authorization server (`tls_client_auth` / `self_signed_tls_client_auth`, RFC 8705;
    /// configure the method with `ConfigBuilder::tls_client_auth`). With
    /// `reqwest-native-tls` the key must be PKCS#8.
    ///
    /// ```no_run
    /// use auth0_server::http::{ClientCertificate, ReqwestClient};
    /// # fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let certificate = ClientCertificate::from_pem(
    ///     std::fs::read("client-chain.pem")?,
    ///     std::fs::read("client-key.pem")?,
    /// )?;
    /// let http = ReqwestClient::builder().client_certificate(certificate).build()?;
    /// # Ok(()) }
    /// ```
    pub fn client_certificate(mut self, certificate: super::ClientCertificate) -> Self {
        self.tls.client_certificate = Some(certificate);
        self
    }

    /// Root certificates to trust in addition to the client's usual ones, for an
    /// authorization server whose certificate comes from a private certificate authority.
    /// Adds to the ones given before.
    pub fn add_root_certificates(mut self, roots: super::RootCertificates) -> Self {
        self.tls.extra_roots = std::mem::take(&mut self.tls.extra_roots).and(roots);
        self
    }

    /// The client.
    ///
    /// # Errors
    /// When `reqwest` cannot initialise TLS (for instance no usable root certificates with
    /// `reqwest-native-roots` alone, or the platform TLS library failing), or, with
    /// `reqwest-native-tls`, a client certificate whose key is not PKCS#8.
    pub fn build(self) -> Result<ReqwestClient, reqwest::Error> {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout.min(super::MAX_TIMEOUT))
            .timeout(self.timeout.min(super::MAX_TIMEOUT));
        #[cfg(feature = "reqwest-native-tls")]
        let builder = builder.use_native_tls();
        let mut builder = builder;
        for root in self.tls.extra_roots.certs() {
            builder = builder.add_root_certificate(reqwest::Certificate::from_der(root.as_ref())?);
        }
        if let Some(cert) = &self.tls.client_certificate {
            #[cfg(not(feature = "reqwest-native-tls"))]
            let identity = reqwest::Identity::from_pem(&cert.identity_pem())?;
            #[cfg(feature = "reqwest-native-tls")]
            let identity = reqwest::Identity::from_pkcs8_pem(
                &cert.chain_pem(),
                &cert.pkcs8_key_pem().unwrap_or_default(),
            )?;
            builder = builder.identity(identity);
        }
        Ok(ReqwestClient {
            client: builder.build()?,
            max_response_body: self.max_response_body,
        })
    }
}

impl ReqwestClient {
    /// A client with the default timeouts and body limit.
    ///
    /// # Errors
    /// As [`ReqwestClientBuilder::build`].
    pub fn new() -> Result<Self, reqwest::Error> {
        Self::builder().build()
    }

    /// A builder with the defaults: connect timeout 5 s, request timeout 10 s, body limit
    /// 1 MiB.
    pub fn builder() -> ReqwestClientBuilder {
        ReqwestClientBuilder {
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            timeout: DEFAULT_TIMEOUT,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
            tls: Default::default(),
        }
    }

    /// Wraps a `reqwest::Client` you configured (proxy, TLS, roots, timeouts), with the
    /// default body limit. Configure it with `redirect(Policy::none())`: the SDK must see the
    /// authorization server's answers as they are, and a redirect would resend credentials.
    pub fn from_client(client: reqwest::Client) -> Self {
        ReqwestClient {
            client,
            max_response_body: DEFAULT_MAX_RESPONSE_BODY,
        }
    }

    /// The same client with another body limit.
    pub fn with_max_response_body(mut self, bytes: usize) -> Self {
        self.max_response_body = bytes;
        self
    }

    /// The `reqwest::Client` requests are sent with (e.g. for the application's own calls).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

impl HttpClient for ReqwestClient {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let fail = |e: reqwest::Error| map_error(&method, &uri, e);
        let request = reqwest::Request::try_from(request).map_err(fail)?;
        let mut response = self.client.execute(request).await.map_err(fail)?;
        if response
            .content_length()
            .is_some_and(|n| n > u64::try_from(self.max_response_body).unwrap_or(u64::MAX))
        {
            return Err(too_large(&method, &uri, self.max_response_body));
        }
        let mut out = http::Response::builder()
            .status(response.status())
            .version(response.version());
        if let Some(headers) = out.headers_mut() {
            *headers = std::mem::take(response.headers_mut());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(fail)? {
            if body.len() + chunk.len() > self.max_response_body {
                return Err(too_large(&method, &uri, self.max_response_body));
            }
            body.extend_from_slice(&chunk);
        }
        out.body(body).map_err(|e| {
            TransportError::for_target(&method, &uri, TransportErrorKind::Io, "invalid response")
                .with_source(e)
        })
    }
}

fn too_large(method: &http::Method, uri: &http::Uri, limit: usize) -> TransportError {
    TransportError::for_target(
        method,
        uri,
        TransportErrorKind::ResponseTooLarge,
        format!("response body exceeds {limit} bytes"),
    )
}

/// Maps a `reqwest` error to a [`TransportError`] naming the host and what failed. The
/// `reqwest` error, stripped of its URL (which may carry a query), is the `source()`.
fn map_error(method: &http::Method, uri: &http::Uri, e: reqwest::Error) -> TransportError {
    let e = e.without_url();
    let failure = if e.is_timeout() {
        Failure::Timeout
    } else {
        match classify(&e) {
            // reqwest reports a TLS record received over http:// as a parse error.
            Failure::Other if !e.is_connect() && e.is_request() => Failure::NotHttp,
            Failure::Other if e.is_connect() => Failure::Connect,
            failure => failure,
        }
    };
    let detail = innermost(&e);
    TransportError::for_target(
        method,
        uri,
        kind_of(uri, failure),
        describe(uri, failure, &detail),
    )
    .with_source(e)
}

/// The innermost cause's description (the most specific: "Connection refused", "invalid
/// peer certificate: UnknownIssuer", …).
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}
