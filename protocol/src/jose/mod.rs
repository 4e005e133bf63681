//! JOSE: the signed and encrypted token formats the SDK reads and writes.
//!
//! Two token formats cross the SDK's boundary:
//!
//! * **Signed tokens (JWS, RFC 7515)** issued by the Auth0 tenant: the ID token returned by the
//!   token endpoint after a login (DESIGN §5) and the logout token posted to the back-channel
//!   logout endpoint. They are checked in three pure steps, each its own (crate-private)
//!   module:
//!   1. `jws::Jws::parse` splits the compact serialization and decodes header and claims
//!      (size-limited, strict base64url);
//!   2. `jws::Jws::verify` checks the signature (RS256, PS256, ES256 or EdDSA by the key's
//!      type and the algorithms discovery advertises; HS256 only when configured) against
//!      the provider's key set
//!      ([`Jwks`], parsed once and cached by the adapter, refetched once when the token
//!      names a key the cached set does not have: [`JoseError::UnknownKid`]);
//!   3. `claims::validate_id_token` / `claims::validate_logout_token` check the claims
//!      (issuer, audience, expiry, nonce, organization, logout event) at a given `now`.
//!
//!   Only [`Jwks`] (the cache an adapter keeps) and [`JoseError`] (the reason a token was
//!   refused) are public: the operations do the verifying.
//!
//! * **Encrypted tokens (JWE, RFC 7516)** written by the SDK itself: the session and
//!   transaction cookies, `alg=dir` / `enc=A256CBC-HS512` with a key derived by HKDF from the
//!   application secret, byte-compatible with the Python SDK ([`jwe`], public: the
//!   adapters' encrypted cookie and Redis stores use it).
//!
//! Everything here is pure: no I/O, no clock (`now` is an argument), no randomness (the JWE
//! IV is handed in). No input makes these functions panic; every failure is a [`JoseError`]
//! with a stable [`code`](JoseError::code), and no error message contains token contents
//! or key material.

pub(crate) mod b64;
pub(crate) mod claims;
mod error;
pub mod jwe;
pub(crate) mod jwk;
pub(crate) mod jws;
pub(crate) mod sealed;

pub use error::JoseError;
pub use jwk::Jwks;
