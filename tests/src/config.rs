//! How the emulator behaves: the registered client, the tenant's APIs and policies, the user.

use serde_json::{Map, Value, json};

use crate::{ANALYTICS_AUDIENCE, DEFAULT_AUDIENCE};

/// A federated connection whose access token the emulator hands out through the
/// token-exchange grant (Auth0 "token vault").
#[derive(Clone, Debug)]
pub struct FederatedConnection {
    /// Connection name, e.g. `google-oauth2`.
    pub name: String,
    /// The access token returned for this connection.
    pub access_token: String,
    /// The scope returned with it.
    pub scope: String,
    /// `expires_in` of the returned token, in seconds.
    pub expires_in: u64,
}

/// A Custom Token Exchange profile of the tenant (RFC 8693, Auth0's profile): the
/// `subject_token_type` it handles, and what its Action decides for each subject token it
/// accepts (the user it sets); any other subject token is rejected as invalid.
#[derive(Clone, Debug)]
pub struct TokenExchangeProfile {
    /// The profile's subject token type URI, e.g. `urn:acme:legacy-token`.
    pub subject_token_type: String,
    /// Accepted subject tokens and the user claims (with `sub`) each one logs in.
    pub subjects: Vec<(String, Map<String, Value>)>,
}

/// One Multi-Resource Refresh Token policy of the registered client (Auth0's
/// `refresh_token.policies[]`): a refresh token may be exchanged for an access token to
/// `audience` carrying at most the scopes in `scope`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshTokenPolicy {
    /// The API identifier the policy lets a refresh token reach.
    pub audience: String,
    /// The scopes an access token for `audience` may carry through this policy.
    pub scope: Vec<String>,
}

impl RefreshTokenPolicy {
    /// A policy for `audience` permitting `scope`.
    pub fn new(audience: &str, scope: &[&str]) -> RefreshTokenPolicy {
        RefreshTokenPolicy {
            audience: audience.to_owned(),
            scope: scope.iter().map(|s| (*s).to_owned()).collect(),
        }
    }
}

/// The scopes the default policy permits for [`DEFAULT_AUDIENCE`] (the quickstart's and the
/// tests' API permissions).
pub const DEFAULT_API_SCOPES: [&str; 5] = [
    "read:data",
    "write:data",
    "read:products",
    "read:orders",
    "write:orders",
];

/// The scopes the default policy permits for [`ANALYTICS_AUDIENCE`].
pub const ANALYTICS_API_SCOPES: [&str; 2] = ["read:analytics", "write:analytics"];

/// Whom an [`MfaPolicy`] applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MfaTarget {
    /// Every token request for this user (`sub`).
    User(String),
    /// Every token request whose (resolved) audience is this API identifier.
    Audience(String),
}

/// What the user must do before Auth0 issues the token: the `mfa_requirements` of the
/// `mfa_required` answer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MfaRequirements {
    /// The user has these factors (e.g. `otp`) and must answer a challenge with one of them:
    /// `{"challenge": [{"type": "otp"}, …]}`.
    Challenge(Vec<String>),
    /// The user has no factor yet and must enroll one of these: `{"enroll": [{"type": …}]}`.
    Enroll(Vec<String>),
}

/// A multi-factor policy: a refresh-token grant that matches `applies_to` is answered with
/// Auth0's `mfa_required` error (HTTP 403, `mfa_token`, `mfa_requirements`) instead of tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaPolicy {
    /// The user or audience the policy applies to.
    pub applies_to: MfaTarget,
    /// The `mfa_requirements` answered.
    pub requirements: MfaRequirements,
}

impl MfaPolicy {
    /// MFA (an `otp` challenge) for every refresh of user `sub`.
    pub fn for_user(sub: &str) -> MfaPolicy {
        MfaPolicy {
            applies_to: MfaTarget::User(sub.to_owned()),
            requirements: MfaRequirements::Challenge(vec!["otp".into()]),
        }
    }

    /// MFA (an `otp` challenge) for every refresh for `audience`.
    pub fn for_audience(audience: &str) -> MfaPolicy {
        MfaPolicy {
            applies_to: MfaTarget::Audience(audience.to_owned()),
            requirements: MfaRequirements::Challenge(vec!["otp".into()]),
        }
    }
}

/// The signature algorithm of every token the emulator issues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (Auth0's default).
    #[default]
    Rs256,
    /// RSASSA-PSS with SHA-256 (Auth0's other asymmetric choice, common elsewhere).
    Ps256,
    /// ECDSA P-256 with SHA-256: the JWKS publishes EC keys instead of RSA keys.
    Es256,
}

impl ProviderAlg {
    /// The JWS `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            ProviderAlg::Rs256 => "RS256",
            ProviderAlg::Ps256 => "PS256",
            ProviderAlg::Es256 => "ES256",
        }
    }
}

/// The shape of the OpenID Provider the emulator plays: Auth0 (the default) or a generic
/// provider (Keycloak realm, Okta authorization server, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderShape {
    /// The issuer's path below the base URL: empty for an issuer at the origin (Auth0),
    /// `/realms/acme` for a path issuer. Every endpoint is also served below it, and
    /// discovery lists them there.
    pub issuer_path: String,
    /// Whether the issuer ends with `/` (Auth0's does; most providers' do not).
    pub issuer_trailing_slash: bool,
    /// RFC 9207: put `iss` on every authorization response and advertise
    /// `authorization_response_iss_parameter_supported`.
    pub iss_in_callback: bool,
    /// The signature algorithm of ID, access and logout tokens (published in the JWKS and in
    /// `id_token_signing_alg_values_supported`).
    pub alg: ProviderAlg,
}

impl ProviderShape {
    /// Auth0: issuer `{base}/`, no callback `iss`, RS256.
    pub fn auth0() -> ProviderShape {
        ProviderShape {
            issuer_path: String::new(),
            issuer_trailing_slash: true,
            iss_in_callback: false,
            alg: ProviderAlg::Rs256,
        }
    }

    /// A generic provider: issuer `{base}{path}` without trailing slash, `iss` in the
    /// callback, PS256.
    pub fn generic(path: &str) -> ProviderShape {
        ProviderShape {
            issuer_path: path.trim_end_matches('/').to_owned(),
            issuer_trailing_slash: false,
            iss_in_callback: true,
            alg: ProviderAlg::Ps256,
        }
    }
}

impl Default for ProviderShape {
    fn default() -> Self {
        ProviderShape::auth0()
    }
}

/// An mTLS client's registration (RFC 8705 §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsClientAuth {
    /// `tls_client_auth`: a certificate issued by the test CA ([`crate::tls::TEST_CA_PEM`])
    /// whose subject is this RFC 4514 distinguished name (e.g.
    /// [`crate::tls::CLIENT_SUBJECT_DN`]).
    CaIssued {
        /// The registered subject.
        subject_dn: String,
    },
    /// `self_signed_tls_client_auth`: exactly this certificate (PEM), compared by its SHA-256
    /// thumbprint.
    SelfSigned {
        /// The registered certificate.
        certificate_pem: String,
    },
}

/// How the emulator behaves. Build with struct update syntax:
/// `EmulatorConfig { rotation: false, ..Default::default() }`.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The one registered client (default `emulator-client`).
    pub client_id: String,
    /// Its secret (default: 48 characters). Refused when
    /// [`client_public_key`](Self::client_public_key) is set.
    pub client_secret: String,
    /// The client's registered public key (a JWK: RSA `n`/`e`, or EC P-256 `crv`/`x`/`y`)
    /// for `private_key_jwt` (RFC 7523). When set, the client must authenticate with a
    /// signed `client_assertion` (RS256 or PS256 for an RSA key, ES256 for a P-256 key)
    /// and a `client_secret` is refused, as Auth0 does for an application whose
    /// authentication method is Private Key JWT. Default none.
    pub client_public_key: Option<Value>,
    /// The client authenticates with mutual TLS (RFC 8705) instead: the emulator runs a TLS
    /// listener ([`Emulator::tls_base_url`](crate::Emulator::tls_base_url)), discovery lists
    /// `mtls_endpoint_aliases` on it, and the token, PAR and revocation endpoints require a
    /// client certificate there that this registration accepts (a secret or an assertion is
    /// refused; every failure is 401 `invalid_client`). Access tokens issued to it carry
    /// `cnf: {"x5t#S256": <the certificate's thumbprint>}`. Default none.
    pub tls_client_auth: Option<TlsClientAuth>,
    /// The tenant's default audience (default [`DEFAULT_AUDIENCE`]). Requests for an audience
    /// outside the refresh-token policies get a token for this audience, as Auth0 does.
    pub default_audience: Option<String>,
    /// The client's Multi-Resource Refresh Token policies: which audiences a refresh token may
    /// be exchanged for, and with which scopes. A refresh is granted the requested scopes that
    /// the original grant (for its own audience) or the policy (for the requested audience)
    /// permits; the rest are silently dropped, as Auth0 does. Default: [`DEFAULT_AUDIENCE`]
    /// with [`DEFAULT_API_SCOPES`] and [`ANALYTICS_AUDIENCE`] with [`ANALYTICS_API_SCOPES`].
    pub refresh_token_policies: Vec<RefreshTokenPolicy>,
    /// Refresh-token rotation with reuse detection (default `true`).
    pub rotation: bool,
    /// Auth0 only lets a client use Token Vault (the federated connection token exchange)
    /// when its refresh tokens do not rotate. With `true` and [`rotation`](Self::rotation) on,
    /// the exchange is refused as Auth0 refuses a grant type the client may not use (403
    /// `unauthorized_client`). Default `false`, so the default tenant (rotation on) can demo
    /// Token Vault.
    pub token_vault_requires_non_rotating: bool,
    /// Multi-factor policies for the refresh-token grant (default none; can be replaced
    /// later with [`Emulator::set_mfa_policies`](crate::Emulator::set_mfa_policies)).
    pub mfa_policies: Vec<MfaPolicy>,
    /// The client's back-channel logout URI: on `/v2/logout`, `/oidc/logout` and
    /// [`Emulator::end_session`](crate::Emulator::end_session) the emulator POSTs a signed
    /// logout token there before answering. Only `http` loopback URIs are called. Default
    /// none; can be set later with
    /// [`Emulator::set_backchannel_logout_uri`](crate::Emulator::set_backchannel_logout_uri).
    pub backchannel_logout_uri: Option<String>,
    /// Access token lifetime in seconds (default 3600).
    pub access_token_lifetime: u64,
    /// ID token lifetime in seconds (default 36000).
    pub id_token_lifetime: u64,
    /// The test user's claims (must include `sub`).
    pub user: Map<String, Value>,
    /// Federated connections available to the token exchange (default: `google-oauth2`).
    pub connections: Vec<FederatedConnection>,
    /// Scopes never granted (removed from requested scopes). Default empty.
    pub denied_scopes: Vec<String>,
    /// Custom Token Exchange profiles (default: one, [`LEGACY_TOKEN_TYPE`], accepting
    /// [`LEGACY_SUBJECT_TOKEN`] for the default user).
    pub token_exchange_profiles: Vec<TokenExchangeProfile>,
    /// Which provider shape to play (default [`ProviderShape::auth0`]).
    pub provider: ProviderShape,
    /// The scopes the client's refresh-token policy grants for the tenant's My Account API
    /// (audience `{base_url}/me/`, which is only known once the emulator runs). Default
    /// [`MY_ACCOUNT_SCOPES`]: all of them; empty: the API is not in the policy (a refresh
    /// for it gets a token for the default audience).
    pub my_account_scopes: Vec<String>,
}

/// Every My Account API scope the emulator checks.
pub const MY_ACCOUNT_SCOPES: [&str; 7] = [
    "create:me:connected_accounts",
    "read:me:connected_accounts",
    "delete:me:connected_accounts",
    "read:me:factors",
    "read:me:authentication_methods",
    "delete:me:authentication_methods",
    "update:me:authentication_methods",
];

impl EmulatorConfig {
    /// The default test user: `auth0|emulator-user` with name, email, nickname and picture.
    pub fn default_user() -> Map<String, Value> {
        let Value::Object(map) = json!({
            "sub": "auth0|emulator-user",
            "name": "Emulator User",
            "nickname": "emulator-user",
            "email": "emulator-user@example.com",
            "email_verified": true,
            "picture": "https://example.com/emulator-user.png",
        }) else {
            unreachable!("object literal")
        };
        map
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            client_id: "emulator-client".into(),
            client_secret: "emulator-client-secret-0123456789abcdefghijklmno".into(),
            client_public_key: None,
            tls_client_auth: None,
            default_audience: Some(DEFAULT_AUDIENCE.into()),
            refresh_token_policies: vec![
                RefreshTokenPolicy::new(DEFAULT_AUDIENCE, &DEFAULT_API_SCOPES),
                RefreshTokenPolicy::new(ANALYTICS_AUDIENCE, &ANALYTICS_API_SCOPES),
            ],
            rotation: true,
            token_vault_requires_non_rotating: false,
            mfa_policies: Vec::new(),
            backchannel_logout_uri: None,
            access_token_lifetime: 3600,
            id_token_lifetime: 36000,
            user: Self::default_user(),
            connections: vec![FederatedConnection {
                name: "google-oauth2".into(),
                access_token: "ya29.emulator-google-access-token".into(),
                scope: "https://www.googleapis.com/auth/calendar.readonly".into(),
                expires_in: 3600,
            }],
            denied_scopes: Vec::new(),
            token_exchange_profiles: vec![TokenExchangeProfile {
                subject_token_type: crate::LEGACY_TOKEN_TYPE.into(),
                subjects: vec![(crate::LEGACY_SUBJECT_TOKEN.into(), Self::default_user())],
            }],
            provider: ProviderShape::default(),
            my_account_scopes: MY_ACCOUNT_SCOPES.iter().map(|s| s.to_string()).collect(),
        }
    }
}
