//! [`Reqwest`]: the SDK's async [`HttpClient`] implemented for `reqwest` — the pattern for any
//! runtime's HTTP client (the SDK will ship one behind a feature; this is the example's own).

use auth0_server::nonblocking::HttpClient;
use auth0_server::{TransportError, TransportErrorKind};
use std::time::Duration;

/// The largest response body the SDK's requests accept (1 MiB).
pub const MAX_RESPONSE_BODY: usize = 1024 * 1024;

/// The SDK's [`HttpClient`] over `reqwest`: any status is a response, no redirects, a
/// timeout, and a body size limit.
#[derive(Clone, Debug)]
pub struct Reqwest(pub reqwest::Client);

impl Reqwest {
    /// A client with a 10 s timeout that does not follow redirects.
    ///
    /// # Errors
    /// When `reqwest` cannot build its client (TLS initialisation).
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Reqwest(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        ))
    }
}

impl HttpClient for Reqwest {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        let (method, uri) = (request.method().clone(), request.uri().clone());
        let fail = |kind, detail: &str| TransportError::for_target(&method, &uri, kind, detail);
        let kind_of = |e: &reqwest::Error| {
            if e.is_timeout() {
                TransportErrorKind::Timeout
            } else if e.is_connect() {
                TransportErrorKind::Connect
            } else {
                TransportErrorKind::Io
            }
        };
        let request = reqwest::Request::try_from(request)
            .map_err(|_| fail(TransportErrorKind::Io, "invalid request"))?;
        let mut response = self
            .0
            .execute(request)
            .await
            .map_err(|e| fail(kind_of(&e), "request failed"))?;
        let mut out = http::Response::builder().status(response.status());
        for (name, value) in response.headers() {
            out = out.header(name, value);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail(kind_of(&e), "reading the response failed"))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BODY {
                return Err(fail(
                    TransportErrorKind::ResponseTooLarge,
                    "response too large",
                ));
            }
            body.extend_from_slice(&chunk);
        }
        out.body(body)
            .map_err(|_| fail(TransportErrorKind::Io, "invalid response"))
    }
}
