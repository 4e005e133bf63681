//! Examples for **auth0-server**: the quickstart walkthrough (`src/bin/quickstart.rs`) and
//! two example web apps with the same routes, one on the blocking client
//! ([`blocking_app`], `tiny_http`) and one on the SDK's axum integration ([`axum_app`], axum +
//! tokio + reqwest, run by [`serve`]).
//!
//! Without `AUTH0_DOMAIN` in the environment everything runs offline against the bundled
//! Auth0 emulator ([`Tenant::emulator`]); with `AUTH0_DOMAIN`, `AUTH0_CLIENT_ID`,
//! `AUTH0_CLIENT_SECRET`, `AUTH0_SECRET` (and optionally `APP_BASE_URL`, `AUTH0_AUDIENCE`,
//! `API_URL`) the same binaries talk to a real tenant ([`Tenant::from_env`]). An application
//! that authenticates with `private_key_jwt` sets `AUTH0_CLIENT_ASSERTION_SIGNING_KEY` (and
//! optionally `AUTH0_CLIENT_ASSERTION_SIGNING_ALG`) instead of `AUTH0_CLIENT_SECRET`.
//!
//! Routes of both apps: `/`, `/auth/login`, `/auth/callback`, `/auth/logout`,
//! `/auth/backchannel-logout` (POST, form field `logout_token`), `/profile`, `/api/data`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod axum_app;
pub mod blocking_app;
pub mod jar;
pub mod pages;
pub mod serve;

use auth0_emulator::{ANALYTICS_AUDIENCE, DEFAULT_AUDIENCE, Emulator, EmulatorConfig};
use auth0_server::Config;
use auth0_server::protocol::config::AssertionAlg;

/// The session encryption secret used with the bundled emulator (never use it for a real
/// tenant: `AUTH0_SECRET` must be a long random value there).
pub const EMULATOR_APP_SECRET: &str = "example-app-secret-for-the-emulator-only-0123456789";

/// The default scopes requested for the default audience (the guide's broad defaults;
/// `offline_access` gives a refresh token).
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access read:products read:orders";

/// The default scopes of the second API (Multi-Resource Refresh Tokens).
pub const ANALYTICS_SCOPE: &str = "read:analytics write:analytics";

/// The path Auth0 redirects back to after login (register `APP_BASE_URL` + this path as an
/// Allowed Callback URL).
pub const CALLBACK_PATH: &str = "/auth/callback";

/// Where the Auth0 tenant is, and the application's credentials.
pub struct Tenant {
    /// The Auth0 domain (`tenant.auth0.com`, or the emulator's `http://127.0.0.1:PORT`).
    pub domain: String,
    /// The application's client id.
    pub client_id: String,
    /// The application's client secret (empty with a signing key).
    pub client_secret: String,
    /// The `private_key_jwt` signing key (PKCS#8 PEM or JWK) and algorithm, when the
    /// application authenticates with one (`AUTH0_CLIENT_ASSERTION_SIGNING_KEY`,
    /// `AUTH0_CLIENT_ASSERTION_SIGNING_ALG`).
    pub client_assertion_signing_key: Option<(String, AssertionAlg)>,
    /// The secret the session cookies are encrypted with (`AUTH0_SECRET`).
    pub secret: String,
    /// The default audience (`AUTH0_AUDIENCE`; the emulator's API when running offline).
    pub audience: Option<String>,
    /// The protected API `/api/data` calls (`API_URL`; the emulator's `/api/data` offline).
    pub api_url: Option<String>,
    /// `APP_BASE_URL`, when set.
    pub app_base_url: Option<String>,
    /// The bundled emulator, when running offline (kept alive as long as the tenant).
    pub emulator: Option<Emulator>,
}

impl std::fmt::Debug for Tenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenant")
            .field("domain", &self.domain)
            .field("client_id", &self.client_id)
            .field("emulator", &self.emulator.is_some())
            .finish_non_exhaustive()
    }
}

impl Tenant {
    /// The real tenant described by the environment, or — when `AUTH0_DOMAIN` is unset — the
    /// bundled emulator ([`Tenant::emulator`] with its default configuration).
    ///
    /// # Errors
    /// When `AUTH0_DOMAIN` is set but another required variable is missing.
    pub fn from_env() -> Result<Tenant, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(domain) = var("AUTH0_DOMAIN") else {
            let mut tenant = Tenant::emulator(EmulatorConfig::default());
            tenant.app_base_url = var("APP_BASE_URL");
            return Ok(tenant);
        };
        let required = |name: &str| {
            var(name).ok_or_else(|| format!("AUTH0_DOMAIN is set, so {name} must be set too"))
        };
        let client_assertion_signing_key = match var("AUTH0_CLIENT_ASSERTION_SIGNING_KEY") {
            None => None,
            Some(key) => Some((
                key,
                match var("AUTH0_CLIENT_ASSERTION_SIGNING_ALG").as_deref() {
                    None | Some("RS256") => AssertionAlg::Rs256,
                    Some("PS256") => AssertionAlg::Ps256,
                    Some("ES256") => AssertionAlg::Es256,
                    Some(_) => {
                        return Err(
                            "AUTH0_CLIENT_ASSERTION_SIGNING_ALG must be RS256, PS256 or ES256"
                                .into(),
                        );
                    }
                },
            )),
        };
        let client_secret = match &client_assertion_signing_key {
            Some(_) => var("AUTH0_CLIENT_SECRET").unwrap_or_default(),
            None => required("AUTH0_CLIENT_SECRET")?,
        };
        Ok(Tenant {
            domain,
            client_id: required("AUTH0_CLIENT_ID")?,
            client_secret,
            client_assertion_signing_key,
            secret: required("AUTH0_SECRET")?,
            audience: var("AUTH0_AUDIENCE"),
            api_url: var("API_URL"),
            app_base_url: var("APP_BASE_URL"),
            emulator: None,
        })
    }

    /// Starts the bundled emulator on an ephemeral loopback port and describes it.
    pub fn emulator(config: EmulatorConfig) -> Tenant {
        let emulator = Emulator::start(config);
        Tenant {
            domain: emulator.base_url(),
            client_id: emulator.client_id().to_owned(),
            client_secret: emulator.client_secret().to_owned(),
            client_assertion_signing_key: None,
            secret: EMULATOR_APP_SECRET.to_owned(),
            audience: Some(DEFAULT_AUDIENCE.to_owned()),
            api_url: Some(emulator.url("/api/data")),
            app_base_url: None,
            emulator: Some(emulator),
        }
    }

    /// The SDK configuration for an app served at `app_base_url`: the callback URL, the
    /// default audience and the per-audience scope map (default audience →
    /// [`DEFAULT_SCOPE`]; with the emulator also its analytics API → [`ANALYTICS_SCOPE`]).
    ///
    /// # Errors
    /// When the configuration is invalid (e.g. a secret shorter than 32 bytes).
    pub fn config(
        &self,
        app_base_url: &str,
    ) -> Result<Config, auth0_server::protocol::config::ConfigError> {
        let mut builder = Config::builder(&self.domain, &self.client_id)
            .client_secret(&self.client_secret)
            .secret(&self.secret)
            .redirect_uri(format!(
                "{}{CALLBACK_PATH}",
                app_base_url.trim_end_matches('/')
            ));
        match &self.audience {
            Some(audience) => {
                builder = builder
                    .audience(audience)
                    .scope_for(audience, DEFAULT_SCOPE);
            }
            None => builder = builder.scope(DEFAULT_SCOPE),
        }
        if self.emulator.is_some() {
            builder = builder.scope_for(ANALYTICS_AUDIENCE, ANALYTICS_SCOPE);
        }
        if let Some((key, alg)) = &self.client_assertion_signing_key {
            builder = builder.private_key_jwt(key, *alg);
        }
        builder.build()
    }

    /// The address to listen on: `PORT`, else the port of `APP_BASE_URL`, else `default_port`
    /// (0 for an ephemeral port), on 127.0.0.1.
    pub fn listen_addr(&self, default_port: u16) -> String {
        let port = std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .or_else(|| {
                self.app_base_url
                    .as_deref()
                    .and_then(|u| url::Url::parse(u).ok())
                    .and_then(|u| u.port_or_known_default())
            })
            .unwrap_or(default_port);
        format!("127.0.0.1:{port}")
    }

    /// The app's base URL: `APP_BASE_URL`, else `http://` + the address actually bound.
    pub fn app_base_url_for(&self, bound: std::net::SocketAddr) -> String {
        match &self.app_base_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{bound}"),
        }
    }
}

/// A token shortened for display: the first 10 characters and the length, never the whole
/// value (`eyJhbGciOi…(812 chars)`).
pub fn shorten(token: &str) -> String {
    let head: String = token.chars().take(10).collect();
    format!("{head}…({} chars)", token.chars().count())
}

/// A relative path to return to after login, taken from the login's `app_state`
/// (`{"returnTo": "/profile"}`): only same-site paths are accepted (no open redirects).
pub fn safe_return_to(app_state: Option<&serde_json::Value>) -> String {
    app_state
        .and_then(|s| s.get("returnTo"))
        .and_then(|v| v.as_str())
        // The SDK's check: same-origin paths only (no `//`, backslashes, control characters or
        // whitespace, which browsers may read as another origin: `/\t/evil.example`).
        .and_then(auth0_server::axum::safe_return_to)
        .unwrap_or("/profile")
        .to_owned()
}

/// The `returnTo` a login started from `/auth/login?returnTo=…` carries through Auth0.
pub fn login_app_state(query: Option<&str>) -> serde_json::Value {
    let return_to = query
        .and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "returnTo")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_else(|| "/profile".to_owned());
    serde_json::json!({ "returnTo": return_to })
}

#[cfg(test)]
mod tests {
    use super::safe_return_to;
    use serde_json::json;

    #[test]
    fn return_to_accepts_same_origin_paths_only() {
        let to = |p: &str| safe_return_to(Some(&json!({ "returnTo": p })));
        assert_eq!(to("/orders?id=1"), "/orders?id=1");
        for hostile in [
            "//evil.example",
            "/\t/evil.example",
            "/\\evil",
            "https://evil.example/",
        ] {
            assert_eq!(to(hostile), "/profile", "{hostile:?}");
        }
        assert_eq!(safe_return_to(None), "/profile");
    }
}
