//! Client configuration, validated once by [`ConfigBuilder::build`].
//!
//! ```
//! use auth0_server_protocol::config::{Config, ClientAuthMethod};
//! let config = Config::builder("tenant.auth0.com", "my-client-id")
//!     .client_secret("a-client-secret")
//!     .secret("a-cookie-secret-of-at-least-32-bytes!")
//!     .audience("https://api.example.com")
//!     .scope_for("https://api.example.com", "openid profile email offline_access read:orders")
//!     .scope_for("https://analytics.example.com", "read:analytics")
//!     .client_auth_method(ClientAuthMethod::ClientSecretBasic)
//!     .build()?;
//! assert_eq!(config.issuer_url(), "https://tenant.auth0.com");
//! assert_eq!(
//!     config.discovery_url(),
//!     "https://tenant.auth0.com/.well-known/openid-configuration"
//! );
//! # Ok::<(), auth0_server_protocol::config::ConfigError>(())
//! ```
//!
//! # Client authentication and sender-constrained tokens
//!
//! [`ClientAuthMethod`]: a client secret (`client_secret_post`, the default, or
//! `client_secret_basic`), a private key ([`ConfigBuilder::private_key_jwt`], RFC 7523), or
//! a client certificate in the TLS handshake ([`ConfigBuilder::tls_client_auth`],
//! [`ConfigBuilder::self_signed_tls_client_auth`], RFC 8705). With mTLS the requests that
//! authenticate the client go to discovery's `mtls_endpoint_aliases`
//! ([`Metadata::endpoint`](crate::discovery::Metadata::endpoint)) and the certificate is the
//! HTTP client's: the adapters' shipped clients take it directly. Independently,
//! [`ConfigBuilder::dpop`] binds the tokens to an ES256 key (DPoP, RFC 9449; see
//! [`crate::dpop`]): proofs on every token-endpoint request and PAR, `token_type: DPoP`
//! required, tokens stored with their [`TokenType`].
//!
//! # Which issuer is trusted
//!
//! The domain may be a host (`tenant.auth0.com`), an origin, or a full issuer URL with a path
//! (`https://idp.example.com/realms/acme`). Discovery is fetched from
//! `{issuer URL}/.well-known/openid-configuration` (OpenID Connect Discovery §4), and the
//! document's `issuer` must be that URL, with or without one trailing slash (§4.3: Auth0's
//! issuer has one, most providers' do not). From then on every `iss` (ID tokens, logout
//! tokens, the callback's RFC 9207 `iss`) is compared exactly with the *discovered* issuer.
//! [`ConfigBuilder::issuer`] overrides the expected issuer for deployments where discovery
//! is served from another URL than the issuer's (a proxy); the discovered `issuer` must then
//! equal the override exactly.

pub use crate::client_assertion::AssertionAlg;
use crate::client_assertion::AssertionKey;
use crate::dpop::DpopKey;
use crate::error_code::ErrorCode;
use crate::secret::Secret;
pub use crate::time::DEFAULT_CLOCK_TOLERANCE;
pub use crate::token_response::TokenType;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;
use url::Url;

/// The scope requested when none is configured.
pub const DEFAULT_SCOPE: &str = "openid profile email offline_access";
/// How long a sealed MFA token (`crate::mfa`) opens by default: 5 minutes.
pub const DEFAULT_MFA_TOKEN_TTL: Duration = Duration::from_secs(300);
/// Default token expiry leeway: a stored token expiring within it is treated as expired.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);
/// Default lifetime of cached OIDC discovery metadata and JWKS (10 minutes).
pub const DEFAULT_DISCOVERY_TTL: Duration = Duration::from_secs(600);
/// Minimum length of each encryption secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// How the client authenticates at the token, PAR and revocation endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// `client_id` and `client_secret` in the form body (the default).
    #[default]
    ClientSecretPost,
    /// HTTP Basic authentication with the URL-encoded client id and secret.
    ClientSecretBasic,
    /// `private_key_jwt` (RFC 7523, OpenID Connect Core §9): a JWT signed with the client's
    /// private key, fresh for every request; no secret is sent. Chosen by configuring a key
    /// with [`ConfigBuilder::private_key_jwt`].
    PrivateKeyJwt,
    /// `tls_client_auth` (RFC 8705 §2.1): the client proves itself with a certificate from a
    /// certificate authority, in the TLS handshake; the form carries `client_id` and no
    /// secret. Requests go to discovery's `mtls_endpoint_aliases` when it has them. The
    /// certificate and its key are given to the HTTP client. Chosen with
    /// [`ConfigBuilder::tls_client_auth`].
    TlsClientAuth,
    /// `self_signed_tls_client_auth` (RFC 8705 §2.2): as [`TlsClientAuth`](Self::TlsClientAuth)
    /// with a self-signed certificate registered with the application. Chosen with
    /// [`ConfigBuilder::self_signed_tls_client_auth`].
    SelfSignedTlsClientAuth,
}

impl ClientAuthMethod {
    /// The transport the client authenticates over: mutual TLS for
    /// [`TlsClientAuth`](Self::TlsClientAuth) and
    /// [`SelfSignedTlsClientAuth`](Self::SelfSignedTlsClientAuth), which send their
    /// requests to the mTLS endpoint aliases; plain TLS for the others.
    pub fn transport(self) -> ClientTransport {
        match self {
            ClientAuthMethod::TlsClientAuth | ClientAuthMethod::SelfSignedTlsClientAuth => {
                ClientTransport::MutualTls
            }
            ClientAuthMethod::ClientSecretPost
            | ClientAuthMethod::ClientSecretBasic
            | ClientAuthMethod::PrivateKeyJwt => ClientTransport::Tls,
        }
    }

    /// The method's name in OAuth metadata (`token_endpoint_auth_method`).
    pub fn name(self) -> &'static str {
        match self {
            ClientAuthMethod::ClientSecretPost => "client_secret_post",
            ClientAuthMethod::ClientSecretBasic => "client_secret_basic",
            ClientAuthMethod::PrivateKeyJwt => "private_key_jwt",
            ClientAuthMethod::TlsClientAuth => "tls_client_auth",
            ClientAuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }
}

/// How the client's requests to the authorization server are authenticated at the transport
/// level, which decides the endpoints they go to
/// ([`Metadata::endpoint`](crate::discovery::Metadata::endpoint)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTransport {
    /// Server-authenticated TLS: the discovered endpoints.
    Tls,
    /// Mutual TLS with a client certificate (RFC 8705): the `mtls_endpoint_aliases`, where
    /// discovery lists one, else the discovered endpoint.
    MutualTls,
}

/// The configured default scopes: one string for every audience, or one string per audience
/// (Multi-Resource Refresh Tokens).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeConfig {
    /// One scope string used for every audience.
    One(String),
    /// Scope strings keyed by audience. The key `default` stands for "no audience".
    PerAudience(BTreeMap<String, String>),
}

impl Default for ScopeConfig {
    fn default() -> Self {
        ScopeConfig::One(DEFAULT_SCOPE.to_owned())
    }
}

impl ScopeConfig {
    /// The default scopes for an audience key: the map's entry for it, or the single scope
    /// string for every audience.
    pub fn for_audience(&self, audience_key: &str) -> Option<&str> {
        match self {
            ScopeConfig::One(s) => Some(s),
            ScopeConfig::PerAudience(map) => map.get(audience_key).map(String::as_str),
        }
    }
}

/// The configured authorization parameters.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AuthorizationParams {
    /// Where Auth0 sends the user back after login.
    pub redirect_uri: Option<String>,
    /// The default audience.
    pub audience: Option<String>,
    /// The default scopes.
    pub scope: ScopeConfig,
    /// Any other parameters, passed to `/authorize` verbatim and in order; a name may repeat
    /// (several `resource` values, RFC 8707).
    pub extra: Vec<(String, String)>,
}

/// A validated client configuration. Build it with [`Config::builder`].
#[derive(Clone)]
pub struct Config {
    origin: String,
    issuer_url: String,
    issuer_override: Option<String>,
    domain_is_loopback: bool,
    client_id: String,
    client_secret: Option<Secret>,
    client_auth: ClientAuthMethod,
    assertion_key: Option<AssertionKey>,
    secrets: Vec<Secret>,
    authorization_params: AuthorizationParams,
    leeway: Duration,
    discovery_ttl: Duration,
    clock_tolerance: Duration,
    allow_hs256: bool,
    dpop_key: Option<DpopKey>,
    mfa_token_ttl: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("issuer_url", &self.issuer_url)
            .field("issuer_override", &self.issuer_override)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field("client_auth", &self.client_auth)
            .field("assertion_key", &self.assertion_key)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("authorization_params", &self.authorization_params)
            .field("leeway", &self.leeway)
            .field("discovery_ttl", &self.discovery_ttl)
            .field("dpop_key", &self.dpop_key)
            .finish()
    }
}

impl Config {
    /// Starts a configuration for a tenant domain (`tenant.auth0.com`, a custom domain, a full
    /// origin such as `http://127.0.0.1:8080` for a local emulator, or any OpenID Provider's
    /// issuer URL, path included, such as `https://idp.example.com/realms/acme`) and a
    /// client id.
    pub fn builder(domain: impl Into<String>, client_id: impl Into<String>) -> ConfigBuilder {
        ConfigBuilder {
            domain: domain.into(),
            issuer: None,
            allow_hs256: false,
            client_id: client_id.into(),
            client_secret: None,
            client_auth: ClientAuthMethod::default(),
            assertion_key: None,
            assertion_kid: None,
            secrets: Vec::new(),
            params: AuthorizationParams::default(),
            scope_map: None,
            scope_string: None,
            leeway: DEFAULT_LEEWAY,
            discovery_ttl: DEFAULT_DISCOVERY_TTL,
            clock_tolerance: DEFAULT_CLOCK_TOLERANCE,
            dpop_key: None,
            mfa_token_ttl: DEFAULT_MFA_TOKEN_TTL,
        }
    }

    /// The tenant origin, e.g. `https://tenant.auth0.com` (no trailing slash): where Auth0's
    /// `/v2/logout` lives.
    pub fn origin(&self) -> &str {
        &self.origin
    }
    /// The configured issuer URL without trailing slash: the origin, plus the path when the
    /// domain was given as an issuer URL with one (`https://idp.example.com/realms/acme`).
    pub fn issuer_url(&self) -> &str {
        &self.issuer_url
    }
    /// The issuer set with [`ConfigBuilder::issuer`], when one was.
    pub fn issuer_override(&self) -> Option<&str> {
        self.issuer_override.as_deref()
    }
    /// Where discovery is fetched: `{issuer_url}/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer_url)
    }
    /// This configuration on another custom domain (multiple custom domains): every setting
    /// kept, the domain and issuer URL replaced by `origin` (a checked domain's origin,
    /// `crate::mcd::Domain::origin`), no issuer override.
    pub fn for_domain(&self, origin: &str) -> Result<Config, ConfigError> {
        let (origin, issuer_url, loopback) = parse_domain(origin)?;
        let mut config = self.clone();
        config.origin = origin;
        config.issuer_url = issuer_url;
        config.issuer_override = None;
        config.domain_is_loopback = loopback;
        Ok(config)
    }
    /// Whether HS256 ID tokens (keyed by the client secret) are accepted: only when
    /// configured with [`ConfigBuilder::allow_hs256_id_tokens`].
    pub fn allows_hs256(&self) -> bool {
        self.allow_hs256
    }
    /// Whether the tenant is on a loopback address (a local emulator).
    pub fn domain_is_loopback(&self) -> bool {
        self.domain_is_loopback
    }
    /// The client id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
    /// The client secret, when one is configured (with `private_key_jwt` or mTLS it is
    /// optional and never sent).
    pub fn client_secret(&self) -> Option<&Secret> {
        self.client_secret.as_ref()
    }
    /// The client authentication method.
    pub fn client_auth_method(&self) -> ClientAuthMethod {
        self.client_auth
    }
    /// The `private_key_jwt` signing key, when one is configured.
    pub fn assertion_key(&self) -> Option<&AssertionKey> {
        self.assertion_key.as_ref()
    }
    /// The DPoP key, when DPoP is on ([`ConfigBuilder::dpop`]).
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.dpop_key.as_ref()
    }
    /// The token type this client asks the token endpoint for: [`TokenType::Dpop`] with a
    /// DPoP key, [`TokenType::Bearer`] otherwise. An answer of another type is refused.
    pub fn token_type(&self) -> TokenType {
        if self.dpop_key.is_some() {
            TokenType::Dpop
        } else {
            TokenType::Bearer
        }
    }
    /// The encryption secrets: the first encrypts, all decrypt.
    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }
    /// The configured authorization parameters.
    pub fn authorization_params(&self) -> &AuthorizationParams {
        &self.authorization_params
    }
    /// How long a sealed MFA token opens.
    pub fn mfa_token_ttl(&self) -> Duration {
        self.mfa_token_ttl
    }
    /// Token expiry leeway.
    pub fn leeway(&self) -> Duration {
        self.leeway
    }
    /// Lifetime of cached discovery metadata and JWKS.
    pub fn discovery_ttl(&self) -> Duration {
        self.discovery_ttl
    }
    /// Clock tolerance for ID and logout tokens.
    pub fn clock_tolerance(&self) -> Duration {
        self.clock_tolerance
    }

    /// The audience key token sets are stored and looked up under: the requested audience,
    /// else the default audience, else the literal `default`.
    pub fn audience_key<'a>(&'a self, requested: Option<&'a str>) -> &'a str {
        requested
            .or(self.authorization_params.audience.as_deref())
            .unwrap_or(AUDIENCE_DEFAULT_KEY)
    }
}

/// The audience key used when neither the call nor the configuration names an audience.
pub const AUDIENCE_DEFAULT_KEY: &str = "default";

/// An invalid configuration: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: `{field}` {reason}")]
pub struct ConfigError {
    /// The offending field, as named by the builder method.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            field,
            reason: reason.into(),
        }
    }
    /// The stable error code, `invalid_configuration`.
    pub fn code(&self) -> ErrorCode {
        ErrorCode::InvalidConfiguration
    }
}

/// Builds a [`Config`]; see [`Config::builder`].
#[derive(Clone)]
pub struct ConfigBuilder {
    domain: String,
    issuer: Option<String>,
    allow_hs256: bool,
    client_id: String,
    client_secret: Option<Secret>,
    client_auth: ClientAuthMethod,
    assertion_key: Option<(Secret, AssertionAlg)>,
    assertion_kid: Option<String>,
    secrets: Vec<Secret>,
    params: AuthorizationParams,
    scope_map: Option<BTreeMap<String, String>>,
    scope_string: Option<String>,
    leeway: Duration,
    discovery_ttl: Duration,
    clock_tolerance: Duration,
    dpop_key: Option<Secret>,
    mfa_token_ttl: Duration,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("domain", &self.domain)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ConfigBuilder {
    /// Overrides the expected issuer (default: the one discovery answers, which must be the
    /// domain's issuer URL with or without a trailing slash). For deployments whose discovery
    /// document is fetched from another URL than the issuer (a proxy, a staging tenant): the
    /// discovered `issuer` must then equal this value exactly, and every `iss` is compared
    /// with it.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }
    /// Accepts ID and logout tokens signed with HS256, keyed by the client secret (off by
    /// default: only the asymmetric RS256, PS256, ES256 and EdDSA are accepted, never `none`).
    pub fn allow_hs256_id_tokens(mut self, yes: bool) -> Self {
        self.allow_hs256 = yes;
        self
    }
    /// The client secret (required, unless a [`private_key_jwt`](Self::private_key_jwt) key
    /// or mTLS client authentication ([`tls_client_auth`](Self::tls_client_auth),
    /// [`self_signed_tls_client_auth`](Self::self_signed_tls_client_auth)) is configured).
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(Secret::new(secret));
        self
    }
    /// How the client authenticates: with its secret, `client_secret_post` (default) or
    /// `client_secret_basic`; or with a client certificate, [`ClientAuthMethod::TlsClientAuth`]
    /// or [`ClientAuthMethod::SelfSignedTlsClientAuth`] (as
    /// [`tls_client_auth`](Self::tls_client_auth) and
    /// [`self_signed_tls_client_auth`](Self::self_signed_tls_client_auth)). A
    /// [`private_key_jwt`](Self::private_key_jwt) key wins over a secret method: with a key
    /// configured the secret is never sent; a key and an mTLS method together are refused.
    pub fn client_auth_method(mut self, method: ClientAuthMethod) -> Self {
        self.client_auth = method;
        self
    }
    /// Authenticates the client with `private_key_jwt` (RFC 7523, OpenID Connect Core §9):
    /// every request to the token, PAR and revocation endpoints carries a fresh assertion
    /// signed with `private_key` (`iss` = `sub` = client id, `aud` = the discovered issuer,
    /// 60 s lifetime, random `jti`; see [`client_assertion`](crate::client_assertion)), and
    /// no client secret is sent. Register the public half with the application in Auth0
    /// (Credentials → Private Key JWT).
    ///
    /// `private_key` is an unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`) or a
    /// private JWK (JSON): an RSA key of at least 2048 bits for [`AssertionAlg::Rs256`]
    /// (Auth0's default) and [`AssertionAlg::Ps256`], a P-256 key for
    /// [`AssertionAlg::Es256`]. [`build`](Self::build) parses it and refuses a key that
    /// cannot sign with `alg`; the key never appears in `Debug` output or errors.
    ///
    /// ```
    /// use auth0_server_protocol::config::{AssertionAlg, ClientAuthMethod, Config};
    /// // The test fixture key (tests/data/client_keys/ec.pem) as a JWK; in production read
    /// // the PEM or JWK from a secret store.
    /// let jwk = r#"{"kty":"EC","crv":"P-256","kid":"docs-key",
    ///     "d":"JLC9oc5eG0UhYKkkrpM2PVTAwwP7mZv8qo5nYrgHC_M",
    ///     "x":"lLm-LR-AQq_kF9jud3QC-G3zp2SZQ4lESLSdNqSe0NU",
    ///     "y":"0uhQuNO2flc2Q3Ryy2AVDlGvKpdlbKEiaprynmphj_U"}"#;
    /// let config = Config::builder("tenant.auth0.com", "my-client-id")
    ///     .private_key_jwt(jwk, AssertionAlg::Es256)
    ///     .secret("a-cookie-secret-of-at-least-32-bytes!")
    ///     .build()?;
    /// assert_eq!(config.client_auth_method(), ClientAuthMethod::PrivateKeyJwt);
    /// assert_eq!(config.assertion_key().and_then(|k| k.kid()), Some("docs-key"));
    /// assert!(!format!("{config:?}").contains("JLC9"));
    /// # Ok::<(), auth0_server_protocol::config::ConfigError>(())
    /// ```
    pub fn private_key_jwt(mut self, private_key: impl Into<String>, alg: AssertionAlg) -> Self {
        self.assertion_key = Some((Secret::new(private_key), alg));
        self
    }
    /// Authenticates the client with mutual TLS and a certificate issued by a certificate
    /// authority (`tls_client_auth`, RFC 8705 §2.1): Auth0 checks the chain and the subject
    /// registered with the application. The token, PAR and revocation requests carry
    /// `client_id` and no secret, and go to discovery's `mtls_endpoint_aliases` when it
    /// lists them. The certificate and its private key are given to the HTTP client, not
    /// here: `blocking::ServerClientBuilder::client_certificate` or
    /// `ReqwestClientBuilder::client_certificate` in the `auth0-server` crate. Access tokens
    /// Auth0 issues over it may be bound to the certificate (`cnf.x5t#S256`, RFC 8705 §3).
    ///
    /// ```
    /// use auth0_server_protocol::config::{ClientAuthMethod, ClientTransport, Config};
    /// let config = Config::builder("tenant.auth0.com", "my-client-id")
    ///     .tls_client_auth()
    ///     .secret("a-cookie-secret-of-at-least-32-bytes!")
    ///     .build()?;
    /// assert_eq!(config.client_auth_method(), ClientAuthMethod::TlsClientAuth);
    /// assert_eq!(config.client_auth_method().transport(), ClientTransport::MutualTls);
    /// # Ok::<(), auth0_server_protocol::config::ConfigError>(())
    /// ```
    pub fn tls_client_auth(self) -> Self {
        self.client_auth_method(ClientAuthMethod::TlsClientAuth)
    }
    /// Authenticates the client with mutual TLS and a self-signed certificate registered with
    /// the application (`self_signed_tls_client_auth`, RFC 8705 §2.2); otherwise as
    /// [`tls_client_auth`](Self::tls_client_auth).
    pub fn self_signed_tls_client_auth(self) -> Self {
        self.client_auth_method(ClientAuthMethod::SelfSignedTlsClientAuth)
    }
    /// The `kid` header of the client assertions, naming the key among the ones registered
    /// for the application (optional; default: the JWK's `kid`, if the key was a JWK).
    pub fn client_assertion_kid(mut self, kid: impl Into<String>) -> Self {
        self.assertion_kid = Some(kid.into());
        self
    }
    /// Turns on DPoP (RFC 9449): access tokens bound to `private_key`, an ES256 (P-256) key
    /// as an unencrypted PKCS#8 PEM or a private JWK. Every token-endpoint request and PAR
    /// then carries a fresh proof of possession (a nonce challenge is answered once), the
    /// token endpoint must answer `token_type: DPoP` (a bearer answer is refused with
    /// `token_type_mismatch`, nothing saved), and tokens are stored and handed out with
    /// their [`TokenType`]. Call APIs with the client's `dpop_headers`
    /// ([`crate::dpop::resource_headers`]). See [`crate::dpop`].
    ///
    /// Independent of client authentication: combine it with a secret or `private_key_jwt`
    /// (use another key for each). [`build`](Self::build) parses the key; it never appears
    /// in `Debug` output or errors.
    ///
    /// ```
    /// use auth0_server_protocol::config::{Config, TokenType};
    /// let jwk = r#"{"kty":"EC","crv":"P-256",
    ///     "d":"JLC9oc5eG0UhYKkkrpM2PVTAwwP7mZv8qo5nYrgHC_M",
    ///     "x":"lLm-LR-AQq_kF9jud3QC-G3zp2SZQ4lESLSdNqSe0NU",
    ///     "y":"0uhQuNO2flc2Q3Ryy2AVDlGvKpdlbKEiaprynmphj_U"}"#;
    /// let config = Config::builder("tenant.auth0.com", "my-client-id")
    ///     .client_secret("a-client-secret")
    ///     .dpop(jwk)
    ///     .secret("a-cookie-secret-of-at-least-32-bytes!")
    ///     .build()?;
    /// assert_eq!(config.token_type(), TokenType::Dpop);
    /// assert!(!format!("{config:?}").contains("JLC9"));
    /// # Ok::<(), auth0_server_protocol::config::ConfigError>(())
    /// ```
    pub fn dpop(mut self, private_key: impl Into<String>) -> Self {
        self.dpop_key = Some(Secret::new(private_key));
        self
    }
    /// Adds an encryption secret (at least 32 bytes). The first one added encrypts; every one
    /// decrypts, so rotating means adding the new secret first and keeping the old one after it.
    pub fn secret(mut self, secret: impl Into<String>) -> Self {
        self.secrets.push(Secret::new(secret));
        self
    }
    /// The redirect URI registered for the application.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.params.redirect_uri = Some(uri.into());
        self
    }
    /// The default audience.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.params.audience = Some(audience.into());
        self
    }
    /// One scope string for every audience. Replaces any per-audience map.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope_string = Some(scope.into());
        self.scope_map = None;
        self
    }
    /// The default scopes for one audience (MRRT). Replaces a single scope string.
    pub fn scope_for(mut self, audience: impl Into<String>, scope: impl Into<String>) -> Self {
        self.scope_string = None;
        self.scope_map
            .get_or_insert_with(BTreeMap::new)
            .insert(audience.into(), scope.into());
        self
    }
    /// Adds any other authorization parameter, passed to `/authorize` verbatim. Adding a name
    /// twice sends it twice, in order (several `resource` values, RFC 8707).
    pub fn authorization_param(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.params.extra.push((name.into(), value.into()));
        self
    }
    /// Token expiry leeway (default 30 s; whole seconds count).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }
    /// How long a sealed MFA token opens (default 5 minutes; whole seconds count): see
    /// [`crate::mfa`].
    pub fn mfa_token_ttl(mut self, ttl: Duration) -> Self {
        self.mfa_token_ttl = ttl;
        self
    }
    /// Lifetime of cached discovery metadata and JWKS (default 600 s; whole seconds count).
    pub fn discovery_ttl(mut self, ttl: Duration) -> Self {
        self.discovery_ttl = ttl;
        self
    }
    /// Clock tolerance for ID-token and logout-token time claims (default 60 s; whole
    /// seconds count).
    pub fn clock_tolerance(mut self, tolerance: Duration) -> Self {
        self.clock_tolerance = tolerance;
        self
    }

    /// Validates everything and returns the configuration, or the first invalid field.
    pub fn build(self) -> Result<Config, ConfigError> {
        let (origin, issuer_url, loopback) = parse_domain(&self.domain)?;
        let issuer_override = match self.issuer {
            None => None,
            Some(i) => {
                let ok = Url::parse(&i)
                    .map(|u| {
                        (u.scheme() == "https" || (u.scheme() == "http" && loopback))
                            && u.host().is_some()
                            && u.query().is_none()
                            && u.fragment().is_none()
                    })
                    .unwrap_or(false);
                if !ok {
                    return Err(ConfigError::new(
                        "issuer",
                        "must be an https URL without query or fragment",
                    ));
                }
                Some(i)
            }
        };
        if self.client_id.trim().is_empty() {
            return Err(ConfigError::new("client_id", "must not be empty"));
        }
        let assertion_key = match &self.assertion_key {
            Some((pem, alg)) => Some(
                AssertionKey::parse(pem.expose(), *alg, self.assertion_kid.clone())
                    .map_err(|e| ConfigError::new("private_key_jwt", e.reason))?,
            ),
            None if self.client_auth == ClientAuthMethod::PrivateKeyJwt => {
                return Err(ConfigError::new(
                    "private_key_jwt",
                    "is the client authentication method but no private key is configured",
                ));
            }
            None => None,
        };
        let mutual_tls = self.client_auth.transport() == ClientTransport::MutualTls;
        if mutual_tls && assertion_key.is_some() {
            return Err(ConfigError::new(
                "private_key_jwt",
                "and mTLS client authentication (tls_client_auth) cannot both be configured",
            ));
        }
        let dpop_key = match &self.dpop_key {
            Some(key) => {
                Some(DpopKey::parse(key.expose()).map_err(|e| ConfigError::new("dpop", e.reason))?)
            }
            None => None,
        };
        let client_secret = match self.client_secret {
            Some(s) if !s.expose().is_empty() => Some(s),
            _ if assertion_key.is_some() || mutual_tls => None,
            _ => return Err(ConfigError::new("client_secret", "is required")),
        };
        if self.allow_hs256 && client_secret.is_none() {
            return Err(ConfigError::new(
                "allow_hs256_id_tokens",
                "needs the client secret (the HS256 key)",
            ));
        }
        let client_auth = if assertion_key.is_some() {
            ClientAuthMethod::PrivateKeyJwt
        } else {
            self.client_auth
        };
        if self.secrets.is_empty() {
            return Err(ConfigError::new(
                "secret",
                "at least one encryption secret is required",
            ));
        }
        if let Some(i) = self
            .secrets
            .iter()
            .position(|s| s.expose().len() < MIN_SECRET_LEN)
        {
            return Err(ConfigError::new(
                "secret",
                format!("secret #{i} is shorter than {MIN_SECRET_LEN} bytes"),
            ));
        }
        if let Some(uri) = &self.params.redirect_uri {
            let parsed = Url::parse(uri)
                .map_err(|_| ConfigError::new("redirect_uri", "is not an absolute URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(ConfigError::new("redirect_uri", "must be http or https"));
            }
        }
        if let Some(aud) = &self.params.audience {
            if aud.trim().is_empty() {
                return Err(ConfigError::new("audience", "must not be empty"));
            }
        }
        let own_methods = ["redirect_uri", "audience", "scope"];
        for reserved in crate::params::RESERVED_PARAMS.iter().chain(&own_methods) {
            if self.params.extra.iter().any(|(k, _)| k == reserved) {
                return Err(ConfigError::new(
                    "authorization_params",
                    format!("`{reserved}` is set by the SDK or its own builder method"),
                ));
            }
        }
        let mut params = self.params;
        params.scope = match (self.scope_map, self.scope_string) {
            (Some(map), _) => ScopeConfig::PerAudience(map),
            (None, Some(s)) => ScopeConfig::One(s),
            (None, None) => ScopeConfig::default(),
        };
        Ok(Config {
            origin,
            issuer_url,
            issuer_override,
            allow_hs256: self.allow_hs256,
            domain_is_loopback: loopback,
            client_id: self.client_id,
            client_secret,
            client_auth,
            assertion_key,
            secrets: self.secrets,
            authorization_params: params,
            leeway: self.leeway,
            discovery_ttl: self.discovery_ttl,
            clock_tolerance: self.clock_tolerance,
            dpop_key,
            mfa_token_ttl: self.mfa_token_ttl,
        })
    }
}

/// Turns `tenant.auth0.com`, `https://tenant.auth0.com/`, `http://127.0.0.1:8080` or
/// `https://idp.example.com/realms/acme/` into an origin and an issuer URL, both without
/// trailing slash. Plain http is accepted only for loopback hosts.
fn parse_domain(domain: &str) -> Result<(String, String, bool), ConfigError> {
    let domain = domain.trim();
    if domain.is_empty() {
        return Err(ConfigError::new("domain", "must not be empty"));
    }
    let with_scheme = if domain.contains("://") {
        domain.to_owned()
    } else {
        format!("https://{domain}")
    };
    let url =
        Url::parse(&with_scheme).map_err(|_| ConfigError::new("domain", "is not a valid host"))?;
    let host = url
        .host()
        .ok_or_else(|| ConfigError::new("domain", "has no host"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new("domain", "must not carry credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(
            "domain",
            "must be a host, an origin or an issuer URL, without query or fragment",
        ));
    }
    let loopback = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(ip).is_loopback(),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(ConfigError::new(
                "domain",
                "plain http is only allowed for loopback hosts (localhost, 127.0.0.0/8, [::1])",
            ));
        }
        _ => return Err(ConfigError::new("domain", "must use https")),
    }
    let origin = url.origin().ascii_serialization();
    let path = url.path().trim_end_matches('/');
    let issuer_url = format!("{origin}{path}");
    Ok((origin, issuer_url, loopback))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(domain: &str) -> ConfigBuilder {
        Config::builder(domain, "cid")
            .client_secret("cs")
            .secret("0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn bare_domain_becomes_https_origin_and_issuer() {
        let c = base("Tenant.Auth0.com").build().unwrap();
        assert_eq!(c.origin(), "https://tenant.auth0.com");
        assert_eq!(c.issuer_url(), "https://tenant.auth0.com");
        assert!(!c.domain_is_loopback());
    }

    #[test]
    fn an_issuer_url_with_a_path_is_accepted() {
        let c = base("https://idp.example.com/realms/acme/")
            .build()
            .unwrap();
        assert_eq!(c.origin(), "https://idp.example.com");
        assert_eq!(c.issuer_url(), "https://idp.example.com/realms/acme");
        assert_eq!(
            c.discovery_url(),
            "https://idp.example.com/realms/acme/.well-known/openid-configuration"
        );
        let err = base("https://idp.example.com/x?y=1").build().unwrap_err();
        assert_eq!(err.field, "domain");
    }

    #[test]
    fn the_issuer_override_must_be_an_https_url() {
        let c = base("t.auth0.com")
            .issuer("https://login.example.com/")
            .build()
            .unwrap();
        assert_eq!(c.issuer_override(), Some("https://login.example.com/"));
        for bad in ["not a url", "http://login.example.com/", "https://x/?q=1"] {
            assert_eq!(
                base("t.auth0.com").issuer(bad).build().unwrap_err().field,
                "issuer"
            );
        }
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:3000",
            "http://[::1]:9",
        ] {
            let c = base(ok).build().unwrap();
            assert!(c.domain_is_loopback(), "{ok}");
        }
        let err = base("http://tenant.auth0.com").build().unwrap_err();
        assert_eq!(err.field, "domain");
        let err = base("ftp://tenant.auth0.com").build().unwrap_err();
        assert_eq!(err.field, "domain");
    }

    #[test]
    fn each_invalid_field_is_named() {
        let cases: Vec<(ConfigBuilder, &str)> = vec![
            (base("").clone(), "domain"),
            (Config::builder("t.auth0.com", " "), "client_id"),
            (
                Config::builder("t.auth0.com", "c").secret("0123456789abcdef0123456789abcdef"),
                "client_secret",
            ),
            (
                Config::builder("t.auth0.com", "c").client_secret("x"),
                "secret",
            ),
            (base("t.auth0.com").secret("short"), "secret"),
            (
                base("t.auth0.com").redirect_uri("not a url"),
                "redirect_uri",
            ),
            (base("t.auth0.com").audience(""), "audience"),
            (
                base("t.auth0.com").authorization_param("state", "x"),
                "authorization_params",
            ),
        ];
        for (builder, field) in cases {
            let err = builder.build().unwrap_err();
            assert_eq!(err.field, field, "{err}");
            assert_eq!(err.code(), "invalid_configuration");
        }
    }

    #[test]
    fn default_scope_and_scope_map() {
        let c = base("t.auth0.com").build().unwrap();
        assert_eq!(
            c.authorization_params().scope.for_audience("x"),
            Some(DEFAULT_SCOPE)
        );
        let c = base("t.auth0.com")
            .scope_for("https://a", "read:a")
            .build()
            .unwrap();
        assert_eq!(
            c.authorization_params().scope.for_audience("https://a"),
            Some("read:a")
        );
        assert_eq!(
            c.authorization_params().scope.for_audience("https://b"),
            None
        );
    }

    #[test]
    fn audience_key_falls_back_to_default_literal() {
        let c = base("t.auth0.com").build().unwrap();
        assert_eq!(c.audience_key(None), "default");
        assert_eq!(c.audience_key(Some("https://x")), "https://x");
        let c = base("t.auth0.com").audience("https://api").build().unwrap();
        assert_eq!(c.audience_key(None), "https://api");
    }

    const RSA_PEM: &str = include_str!("../../tests/data/client_keys/rsa.pem");

    #[test]
    fn a_private_key_makes_the_secret_optional_and_wins_over_it() {
        let c = Config::builder("t.auth0.com", "cid")
            .private_key_jwt(RSA_PEM, AssertionAlg::Rs256)
            .secret("0123456789abcdef0123456789abcdef")
            .build()
            .unwrap();
        assert_eq!(c.client_auth_method(), ClientAuthMethod::PrivateKeyJwt);
        assert!(c.client_secret().is_none());
        assert_eq!(
            c.assertion_key().map(|k| k.alg()),
            Some(AssertionAlg::Rs256)
        );
        let c = base("t.auth0.com")
            .client_auth_method(ClientAuthMethod::ClientSecretBasic)
            .private_key_jwt(RSA_PEM, AssertionAlg::Ps256)
            .client_assertion_kid("kid-1")
            .build()
            .unwrap();
        assert_eq!(c.client_auth_method(), ClientAuthMethod::PrivateKeyJwt);
        assert_eq!(c.assertion_key().and_then(|k| k.kid()), Some("kid-1"));
        let out = format!("{c:?}");
        assert!(!out.contains("MII") && out.contains("redacted"), "{out}");
    }

    #[test]
    fn private_key_jwt_without_a_usable_key_is_refused() {
        let err = base("t.auth0.com")
            .client_auth_method(ClientAuthMethod::PrivateKeyJwt)
            .build()
            .unwrap_err();
        assert_eq!(err.field, "private_key_jwt");
        let err = base("t.auth0.com")
            .private_key_jwt(RSA_PEM, AssertionAlg::Es256)
            .build()
            .unwrap_err();
        assert_eq!(err.field, "private_key_jwt");
        assert_eq!(err.code(), "invalid_configuration");
        let err = Config::builder("t.auth0.com", "cid")
            .private_key_jwt(RSA_PEM, AssertionAlg::Rs256)
            .secret("0123456789abcdef0123456789abcdef")
            .allow_hs256_id_tokens(true)
            .build()
            .unwrap_err();
        assert_eq!(err.field, "allow_hs256_id_tokens");
    }

    #[test]
    fn mtls_methods_need_no_secret_and_exclude_a_private_key() {
        let no_secret =
            || Config::builder("t.auth0.com", "cid").secret("0123456789abcdef0123456789abcdef");
        for (builder, method) in [
            (
                no_secret().tls_client_auth(),
                ClientAuthMethod::TlsClientAuth,
            ),
            (
                no_secret().self_signed_tls_client_auth(),
                ClientAuthMethod::SelfSignedTlsClientAuth,
            ),
            (
                base("t.auth0.com").client_auth_method(ClientAuthMethod::TlsClientAuth),
                ClientAuthMethod::TlsClientAuth,
            ),
        ] {
            let c = builder.build().unwrap();
            assert_eq!(c.client_auth_method(), method);
            assert_eq!(
                c.client_auth_method().transport(),
                ClientTransport::MutualTls
            );
        }
        assert_eq!(
            ClientAuthMethod::SelfSignedTlsClientAuth.name(),
            "self_signed_tls_client_auth"
        );
        assert_eq!(
            ClientAuthMethod::PrivateKeyJwt.transport(),
            ClientTransport::Tls
        );
        let err = no_secret()
            .tls_client_auth()
            .private_key_jwt(RSA_PEM, AssertionAlg::Rs256)
            .build()
            .unwrap_err();
        assert_eq!(err.field, "private_key_jwt");
    }

    #[test]
    fn debug_redacts_secrets() {
        let c = base("t.auth0.com")
            .client_secret("very-secret-value")
            .build()
            .unwrap();
        let out = format!("{c:?}");
        assert!(!out.contains("very-secret-value"));
        assert!(!out.contains("0123456789abcdef"));
    }
}
