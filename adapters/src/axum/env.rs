//! Configuration from the environment, with the variable names of Auth0's Next.js SDK.

use super::{Auth0, AuthPaths};
use crate::Config;
use crate::nonblocking::{HttpClient, ServerClient};
use crate::protocol::config::ConfigError;
use crate::store::StoreError;
use crate::store::cookie::{CookieStateStore, CookieTransactionStore};
use std::fmt;

/// The variables [`EnvConfig::from_env`] requires.
pub const REQUIRED_VARS: [&str; 5] = [
    "AUTH0_DOMAIN",
    "AUTH0_CLIENT_ID",
    "AUTH0_CLIENT_SECRET",
    "AUTH0_SECRET",
    "APP_BASE_URL",
];

/// The application's Auth0 settings read from the environment: `AUTH0_DOMAIN`,
/// `AUTH0_CLIENT_ID`, `AUTH0_CLIENT_SECRET`, `AUTH0_SECRET` (at least 32 bytes; encrypts the
/// cookies), `APP_BASE_URL` (`https://app.example.com`), and optionally `AUTH0_AUDIENCE` and
/// `AUTH0_SCOPE` (default `openid profile email offline_access`).
#[derive(Clone)]
#[non_exhaustive]
pub struct EnvConfig {
    /// `AUTH0_DOMAIN`.
    pub domain: String,
    /// `AUTH0_CLIENT_ID`.
    pub client_id: String,
    /// `AUTH0_CLIENT_SECRET`.
    pub client_secret: String,
    /// `AUTH0_SECRET`.
    pub secret: String,
    /// `APP_BASE_URL`, without a trailing `/`.
    pub app_base_url: String,
    /// `AUTH0_AUDIENCE`.
    pub audience: Option<String>,
    /// `AUTH0_SCOPE`.
    pub scope: Option<String>,
}

impl fmt::Debug for EnvConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvConfig")
            .field("domain", &self.domain)
            .field("client_id", &self.client_id)
            .field("app_base_url", &self.app_base_url)
            .field("audience", &self.audience)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The scopes asked for when `AUTH0_SCOPE` is unset (`offline_access` gives a refresh token).
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access";

/// The environment does not describe a usable configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvError {
    /// Required variables are unset or empty (all of them are named).
    #[error("missing environment variable(s): {}", .missing.join(", "))]
    Missing {
        /// The names of the missing variables.
        missing: Vec<&'static str>,
    },
    /// The values do not make a valid configuration (e.g. `AUTH0_SECRET` too short).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The cookie stores could not be built from the configuration.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl EnvConfig {
    /// Reads the process environment.
    ///
    /// # Errors
    /// [`EnvError::Missing`] naming every required variable that is unset or empty.
    pub fn from_env() -> Result<EnvConfig, EnvError> {
        EnvConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the variables through `var` (for tests, or another source of settings).
    ///
    /// # Errors
    /// [`EnvError::Missing`] naming every required variable that is unset or empty.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<EnvConfig, EnvError> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let missing: Vec<&'static str> = REQUIRED_VARS
            .into_iter()
            .filter(|name| get(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(EnvError::Missing { missing });
        }
        let required = |name: &str| get(name).unwrap_or_default();
        Ok(EnvConfig {
            domain: required("AUTH0_DOMAIN"),
            client_id: required("AUTH0_CLIENT_ID"),
            client_secret: required("AUTH0_CLIENT_SECRET"),
            secret: required("AUTH0_SECRET"),
            app_base_url: required("APP_BASE_URL").trim_end_matches('/').to_owned(),
            audience: get("AUTH0_AUDIENCE"),
            scope: get("AUTH0_SCOPE"),
        })
    }

    /// The SDK configuration, with `redirect_uri` = `APP_BASE_URL` + `callback_path`.
    ///
    /// # Errors
    /// When the values are invalid (e.g. a secret shorter than 32 bytes).
    pub fn config(&self, callback_path: &str) -> Result<Config, ConfigError> {
        let mut builder = Config::builder(&self.domain, &self.client_id)
            .client_secret(&self.client_secret)
            .secret(&self.secret)
            .redirect_uri(format!("{}{callback_path}", self.app_base_url))
            .scope(self.scope.as_deref().unwrap_or(DEFAULT_SCOPE));
        if let Some(audience) = &self.audience {
            builder = builder.audience(audience);
        }
        builder.build()
    }
}

impl<H: HttpClient + 'static> Auth0<CookieStateStore, CookieTransactionStore, H> {
    /// An [`Auth0`] from the environment ([`EnvConfig`]) with encrypted cookie stores for
    /// sessions and logins (stateless, like Auth0's Next.js SDK: nothing to run besides the
    /// app) and `http` to reach Auth0. For back-channel logout or custom paths, build a
    /// [`ServerClient`] with a server-side store and use [`Auth0::builder`].
    ///
    /// # Errors
    /// Every missing variable named, or why the configuration is invalid.
    pub fn from_env(http: H) -> Result<Self, EnvError> {
        let env = EnvConfig::from_env()?;
        Self::from_env_config(&env, http)
    }

    /// As [`Auth0::from_env`], from settings already read.
    ///
    /// # Errors
    /// Why the configuration is invalid.
    pub fn from_env_config(env: &EnvConfig, http: H) -> Result<Self, EnvError> {
        let config = env.config(&AuthPaths::default().callback)?;
        let sessions = CookieStateStore::builder(&config)
            .for_app_base_url(&env.app_base_url)
            .build()?;
        let transactions = CookieTransactionStore::builder(&config)
            .for_app_base_url(&env.app_base_url)
            .build()?;
        let client = ServerClient::builder(config, sessions, transactions, http).build();
        Ok(Auth0::builder(client, &env.app_base_url).build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_every_missing_variable() {
        let err = EnvConfig::from_vars(|name| {
            (name == "AUTH0_CLIENT_ID" || name == "AUTH0_SECRET").then(|| "x".to_owned())
        })
        .unwrap_err();
        let shown = err.to_string();
        for name in ["AUTH0_DOMAIN", "AUTH0_CLIENT_SECRET", "APP_BASE_URL"] {
            assert!(shown.contains(name), "{shown}");
        }
        assert!(!shown.contains("AUTH0_CLIENT_ID"), "{shown}");
    }

    #[test]
    fn reads_optional_variables() {
        let env = EnvConfig::from_vars(|name| match name {
            "AUTH0_AUDIENCE" => Some("https://api.example.com".into()),
            "AUTH0_SCOPE" => Some(" ".into()),
            "APP_BASE_URL" => Some("https://app.example.com/".into()),
            "AUTH0_SECRET" => Some("a-secret-of-at-least-32-bytes-long!!".into()),
            _ => Some("v".into()),
        })
        .unwrap();
        assert_eq!(env.app_base_url, "https://app.example.com");
        assert_eq!(env.audience.as_deref(), Some("https://api.example.com"));
        assert_eq!(env.scope, None);
        assert!(env.config("/auth/callback").is_ok());
    }
}
