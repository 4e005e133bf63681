//! Configuration from the environment, with the variable names of Auth0's Next.js SDK.

use super::{Auth0, AuthPaths};
use crate::Config;
use crate::nonblocking::{HttpClient, ServerClient};
use crate::protocol::Secret;
use crate::protocol::config::{AssertionAlg, ConfigError};
use crate::store::StoreError;
use crate::store::cookie::{CookieStateStore, CookieTransactionStore};
use std::fmt;

/// The variables [`EnvConfig::from_env`] requires (`AUTH0_CLIENT_SECRET` only without
/// `AUTH0_CLIENT_ASSERTION_SIGNING_KEY`).
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
///
/// For `private_key_jwt` client authentication set `AUTH0_CLIENT_ASSERTION_SIGNING_KEY` (the
/// private key: PKCS#8 PEM or JWK) and optionally `AUTH0_CLIENT_ASSERTION_SIGNING_ALG`
/// (`RS256`, the default, `PS256` or `ES256`) instead of `AUTH0_CLIENT_SECRET`; see
/// [`ConfigBuilder::private_key_jwt`](crate::protocol::config::ConfigBuilder::private_key_jwt).
#[derive(Clone)]
#[non_exhaustive]
pub struct EnvConfig {
    /// `AUTH0_DOMAIN`.
    pub domain: String,
    /// `AUTH0_CLIENT_ID`.
    pub client_id: String,
    /// `AUTH0_CLIENT_SECRET` (empty when a signing key replaces it).
    pub client_secret: String,
    /// `AUTH0_CLIENT_ASSERTION_SIGNING_KEY` and `AUTH0_CLIENT_ASSERTION_SIGNING_ALG`, when
    /// the client authenticates with `private_key_jwt`. Never shown by `Debug`.
    pub client_assertion_signing_key: Option<(Secret, AssertionAlg)>,
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
            .field(
                "client_assertion_signing_alg",
                &self
                    .client_assertion_signing_key
                    .as_ref()
                    .map(|(_, alg)| alg),
            )
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
        let signing_key = get("AUTH0_CLIENT_ASSERTION_SIGNING_KEY");
        let missing: Vec<&'static str> = REQUIRED_VARS
            .into_iter()
            .filter(|name| !(signing_key.is_some() && *name == "AUTH0_CLIENT_SECRET"))
            .filter(|name| get(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(EnvError::Missing { missing });
        }
        let client_assertion_signing_key = match signing_key {
            None => None,
            Some(key) => {
                let alg = match get("AUTH0_CLIENT_ASSERTION_SIGNING_ALG").as_deref() {
                    None | Some("RS256") => AssertionAlg::Rs256,
                    Some("PS256") => AssertionAlg::Ps256,
                    Some("ES256") => AssertionAlg::Es256,
                    Some(_) => {
                        return Err(EnvError::Config(ConfigError {
                            field: "AUTH0_CLIENT_ASSERTION_SIGNING_ALG",
                            reason: "must be RS256, PS256 or ES256".into(),
                        }));
                    }
                };
                Some((Secret::new(key), alg))
            }
        };
        let required = |name: &str| get(name).unwrap_or_default();
        Ok(EnvConfig {
            domain: required("AUTH0_DOMAIN"),
            client_id: required("AUTH0_CLIENT_ID"),
            client_secret: required("AUTH0_CLIENT_SECRET"),
            secret: required("AUTH0_SECRET"),
            app_base_url: required("APP_BASE_URL").trim_end_matches('/').to_owned(),
            audience: get("AUTH0_AUDIENCE"),
            scope: get("AUTH0_SCOPE"),
            client_assertion_signing_key,
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
        if let Some((key, alg)) = &self.client_assertion_signing_key {
            builder = builder.private_key_jwt(key.expose(), *alg);
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
    fn a_signing_key_replaces_the_client_secret() {
        const PEM: &str = include_str!("../../../tests/data/client_keys/ec.pem");
        let vars = |alg: Option<&'static str>| {
            move |name: &str| match name {
                "AUTH0_CLIENT_SECRET" => None,
                "AUTH0_CLIENT_ASSERTION_SIGNING_KEY" => Some(PEM.to_owned()),
                "AUTH0_CLIENT_ASSERTION_SIGNING_ALG" => alg.map(str::to_owned),
                "APP_BASE_URL" => Some("https://app.example.com".into()),
                "AUTH0_SECRET" => Some("a-secret-of-at-least-32-bytes-long!!".into()),
                _ => Some("v".into()),
            }
        };
        let env = EnvConfig::from_vars(vars(Some("ES256"))).unwrap();
        assert!(!format!("{env:?}").contains("PRIVATE KEY"));
        let config = env.config("/auth/callback").unwrap();
        assert_eq!(
            config.client_auth_method(),
            crate::protocol::config::ClientAuthMethod::PrivateKeyJwt
        );
        // RS256 by default: an EC key cannot sign it.
        let env = EnvConfig::from_vars(vars(None)).unwrap();
        assert_eq!(env.config("/cb").unwrap_err().field, "private_key_jwt");
        let err = EnvConfig::from_vars(vars(Some("HS256"))).unwrap_err();
        assert!(
            err.to_string()
                .contains("AUTH0_CLIENT_ASSERTION_SIGNING_ALG"),
            "{err}"
        );
    }

    #[test]
    fn reads_optional_variables() {
        let env = EnvConfig::from_vars(|name| match name {
            "AUTH0_AUDIENCE" => Some("https://api.example.com".into()),
            "AUTH0_SCOPE" => Some(" ".into()),
            "AUTH0_CLIENT_ASSERTION_SIGNING_KEY" | "AUTH0_CLIENT_ASSERTION_SIGNING_ALG" => None,
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
