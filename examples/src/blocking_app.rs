//! The example web app on the **blocking** client, served by `tiny_http` (one thread, one
//! request at a time — enough for an example; put a thread pool in front for production).
//!
//! Sessions live server-side in a [`MemoryStateStore`] (the browser holds only a random
//! session id cookie), so back-channel logout can end them; the login transaction travels
//! in an encrypted cookie ([`CookieTransactionStore`]). Each request turns its `Cookie`
//! headers into [`CookieOptions`], hands them to every SDK call, and copies the collected
//! `Set-Cookie` values onto the response.
//!
//! ```no_run
//! let tenant = auth0_server_examples::Tenant::from_env()?;
//! let app = auth0_server_examples::blocking_app::start(tenant, "127.0.0.1:3000")?;
//! println!("open {}", app.base_url());
//! app.wait();
//! # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
//! ```

use crate::{Tenant, pages};
use auth0_server::blocking::ServerClient;
use auth0_server::store::CookieOptions;
use auth0_server::store::cookie::CookieTransactionStore;
use auth0_server::store::memory::MemoryStateStore;
use auth0_server::{LogoutOptions, StartLoginOptions};
use std::io::Read;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The client type of this app.
pub type Client = ServerClient<MemoryStateStore, CookieTransactionStore>;

/// Largest request body read (the back-channel logout form).
const MAX_BODY: u64 = 64 * 1024;

/// A running app; dropping it stops the server.
pub struct RunningApp {
    base_url: String,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
    tenant: Tenant,
}

impl std::fmt::Debug for RunningApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningApp")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl RunningApp {
    /// The app's base URL (`APP_BASE_URL`, or `http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The tenant the app talks to (with the bundled emulator when offline).
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct App {
    client: Client,
    base_url: String,
    api_url: Option<String>,
    agent: ureq::Agent,
}

/// What a route answers.
struct Reply {
    status: u16,
    location: Option<String>,
    content_type: &'static str,
    body: String,
}

impl Reply {
    fn html(status: u16, body: String) -> Self {
        Reply {
            status,
            location: None,
            content_type: "text/html; charset=utf-8",
            body,
        }
    }
    fn redirect(location: impl Into<String>) -> Self {
        Reply {
            status: 302,
            location: Some(location.into()),
            content_type: "text/plain; charset=utf-8",
            body: String::new(),
        }
    }
    fn error(status: u16, e: &auth0_server::Error) -> Self {
        Reply::html(status, pages::error(e.code().as_str(), &e.to_string()))
    }
}

/// Builds the client for `tenant` and starts serving on `addr` (`127.0.0.1:0` for an
/// ephemeral port).
///
/// # Errors
/// When the address cannot be bound or the configuration is invalid.
pub fn start(
    tenant: Tenant,
    addr: &str,
) -> Result<RunningApp, Box<dyn std::error::Error + Send + Sync>> {
    let server = Arc::new(tiny_http::Server::http(addr)?);
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or("the server is not listening on an IP address")?;
    let base_url = tenant.app_base_url_for(bound);
    let config = tenant.config(&base_url)?;
    let transactions = CookieTransactionStore::builder(&config)
        .for_app_base_url(&base_url)
        .build()?;
    let sessions =
        MemoryStateStore::new().secure(!auth0_server::store::cookie::is_loopback_http(&base_url));
    let client = ServerClient::builder(config, sessions, transactions).build();
    let app = App {
        client,
        base_url: base_url.clone(),
        api_url: tenant.api_url.clone(),
        agent: ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .new_agent(),
    };
    let thread = {
        let server = server.clone();
        std::thread::Builder::new()
            .name("blocking-app".into())
            .spawn(move || {
                for request in server.incoming_requests() {
                    handle(&app, request);
                }
            })?
    };
    Ok(RunningApp {
        base_url,
        server,
        thread: Some(thread),
        tenant,
    })
}

/// One request: cookies in, route, `Set-Cookie` out.
fn handle(app: &App, mut request: tiny_http::Request) {
    // Request headers in: the stores read their cookies from these options…
    let mut headers = http::HeaderMap::new();
    for header in request.headers() {
        if header.field.equiv("Cookie")
            && let Ok(value) = http::HeaderValue::from_str(header.value.as_str())
        {
            headers.append(http::header::COOKIE, value);
        }
    }
    let mut options = CookieOptions::from_request_headers(&headers);

    let target = request.url().to_owned();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target.as_str(), None),
    };
    let mut body = String::new();
    if *request.method() == tiny_http::Method::Post {
        let _ = request.as_reader().take(MAX_BODY).read_to_string(&mut body);
    }
    let reply = route(app, request.method(), path, query, &body, &mut options);

    // …and write theirs into them: Set-Cookie out.
    let mut response = tiny_http::Response::from_string(reply.body).with_status_code(reply.status);
    let mut add = |name: &str, value: &str| {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(h);
        }
    };
    add("Content-Type", reply.content_type);
    add("Cache-Control", "no-store");
    if let Some(location) = &reply.location {
        add("Location", location);
    }
    for set_cookie in options.set_cookie_headers() {
        if let Ok(value) = set_cookie.to_str() {
            add("Set-Cookie", value);
        }
    }
    let _ = request.respond(response);
}

fn route(
    app: &App,
    method: &tiny_http::Method,
    path: &str,
    query: Option<&str>,
    body: &str,
    options: &mut CookieOptions,
) -> Reply {
    use tiny_http::Method::{Get, Post};
    let client = &app.client;
    match (method, path) {
        (Get, "/") => match client.get_user(options) {
            Ok(user) => Reply::html(200, pages::home(user.as_ref())),
            Err(e) => Reply::error(500, &e),
        },
        (Get, "/auth/login") => {
            let login = StartLoginOptions::new().app_state(crate::login_app_state(query));
            match client.start_interactive_login(login, options) {
                Ok(url) => Reply::redirect(url.as_str()),
                Err(e) => Reply::error(500, &e),
            }
        }
        (Get, "/auth/callback") => {
            let callback = format!("{path}?{}", query.unwrap_or(""));
            match client.complete_interactive_login(&callback, options) {
                Ok(result) => Reply::redirect(crate::safe_return_to(result.app_state.as_ref())),
                Err(e) => Reply::error(400, &e),
            }
        }
        (Get, "/auth/logout") => {
            match client.logout(
                LogoutOptions::return_to(format!("{}/", app.base_url)),
                options,
            ) {
                Ok(url) => Reply::redirect(url.as_str()),
                Err(e) => Reply::error(500, &e),
            }
        }
        (Post, "/auth/backchannel-logout") => {
            let token = url::form_urlencoded::parse(body.as_bytes())
                .find(|(k, _)| k == "logout_token")
                .map(|(_, v)| v.into_owned());
            let Some(token) = token else {
                return Reply::html(400, pages::error("invalid_request", "missing logout_token"));
            };
            match client.handle_backchannel_logout(&token, options) {
                Ok(_) => Reply::html(200, pages::page("Logged out", "<p>Session ended.</p>")),
                Err(e) => Reply::error(400, &e),
            }
        }
        (Get, "/profile") => match client.get_user(options) {
            Ok(Some(user)) => match client.get_session(options) {
                Ok(session) => Reply::html(200, pages::profile(&user, session.as_ref())),
                Err(e) => Reply::error(500, &e),
            },
            Ok(None) => Reply::html(401, pages::logged_out()),
            Err(e) => Reply::error(500, &e),
        },
        (Get, "/api/data") => api_data(app, options),
        _ => Reply::html(404, pages::error("not_found", path)),
    }
}

fn api_data(app: &App, options: &mut CookieOptions) -> Reply {
    match app.client.get_user(options) {
        Ok(Some(_)) => {}
        Ok(None) => return Reply::html(401, pages::logged_out()),
        Err(e) => return Reply::error(500, &e),
    }
    let token = match app.client.get_access_token(options) {
        Ok(token) => token,
        Err(e) => return Reply::error(500, &e),
    };
    let Some(api_url) = &app.api_url else {
        return Reply::html(
            500,
            pages::error("no_api_url", "set API_URL to the protected API to call"),
        );
    };
    let answer = app
        .agent
        .get(api_url)
        .header(
            "Authorization",
            format!("Bearer {}", token.access_token.expose()),
        )
        .call();
    match answer {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_string().unwrap_or_default();
            Reply::html(200, pages::api_data(status, &body))
        }
        Err(e) => Reply::html(502, pages::error("api_unreachable", &e.to_string())),
    }
}
