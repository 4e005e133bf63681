//! The tower layer that owns the cookies: request cookies into the stores' options before
//! the handler, every `Set-Cookie` the stores produced onto the response after it.

use super::extract::AuthRejection;
use super::{Access, BoxFuture, Settings, no_store};
use crate::store::CookieOptions;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::Mutex;

/// What the layer puts into each request's extensions for the routes and extractors.
#[derive(Clone)]
pub(crate) struct RequestContext {
    pub(crate) access: Arc<dyn Access>,
    /// The stores' options of this request, shared by everything that handles it; the layer
    /// writes their `Set-Cookie` values onto the response.
    pub(crate) cookies: Arc<Mutex<CookieOptions>>,
    pub(crate) settings: Arc<Settings>,
}

/// The layer of [`Auth0::layer`](super::Auth0::layer) and
/// [`Auth0::require_session`](super::Auth0::require_session).
#[derive(Clone)]
pub struct Auth0Layer {
    access: Arc<dyn Access>,
    settings: Arc<Settings>,
    guard: bool,
}

impl std::fmt::Debug for Auth0Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth0Layer")
            .field("require_session", &self.guard)
            .finish_non_exhaustive()
    }
}

impl Auth0Layer {
    pub(crate) fn new(access: Arc<dyn Access>, settings: Arc<Settings>, guard: bool) -> Self {
        Auth0Layer {
            access,
            settings,
            guard,
        }
    }
}

impl<Svc> tower_layer::Layer<Svc> for Auth0Layer {
    type Service = Auth0Service<Svc>;
    fn layer(&self, inner: Svc) -> Self::Service {
        Auth0Service {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`Auth0Layer`].
#[derive(Clone)]
pub struct Auth0Service<Svc> {
    inner: Svc,
    layer: Auth0Layer,
}

impl<Svc> std::fmt::Debug for Auth0Service<Svc> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth0Service")
            .field("layer", &self.layer)
            .finish_non_exhaustive()
    }
}

impl<Svc> tower_service::Service<Request> for Auth0Service<Svc>
where
    Svc: tower_service::Service<Request> + Clone + Send + 'static,
    Svc::Response: IntoResponse,
    Svc::Future: Send + 'static,
{
    type Response = Response;
    type Error = Svc::Error;
    type Future = BoxFuture<'static, Result<Response, Svc::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // The clone that was not polled ready stays; the ready one serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // An outer Auth0 layer already owns this request's cookies: share its context.
        let (context, owner) = match request.extensions().get::<RequestContext>() {
            Some(context) => (context.clone(), false),
            None => {
                let context = RequestContext {
                    access: self.layer.access.clone(),
                    cookies: Arc::new(Mutex::new(request_options(&request))),
                    settings: self.layer.settings.clone(),
                };
                request.extensions_mut().insert(context.clone());
                (context, true)
            }
        };
        let guard = self.layer.guard;
        Box::pin(async move {
            let mut response = if guard {
                let (parts, body) = request.into_parts();
                match AuthRejection::require_user(&context, &parts).await {
                    Ok(_) => inner
                        .call(Request::from_parts(parts, body))
                        .await?
                        .into_response(),
                    Err(rejection) => rejection.into_response(),
                }
            } else {
                inner.call(request).await?.into_response()
            };
            if owner {
                let cookies = context.cookies.lock().await;
                if !cookies.set_cookie_headers().is_empty() {
                    cookies.apply_to(response.headers_mut());
                    // A response that sets a session cookie must never be cached by a proxy.
                    no_store(&mut response);
                }
            }
            Ok(response)
        })
    }
}

/// The store options of a request: its cookies, and its host for a domain resolver (the
/// `Host` header, else the URI's authority, as HTTP/2 sends it).
fn request_options(request: &Request) -> CookieOptions {
    let options = CookieOptions::from_request_headers(request.headers());
    match (options.request_host(), request.uri().authority()) {
        (None, Some(authority)) => options.with_request_host(authority.as_str()),
        _ => options,
    }
}
