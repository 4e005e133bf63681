//! JOSE: the signed and encrypted token formats the SDK reads and writes.
//!
//! Two token formats cross the SDK's boundary:
//!
//! * **Signed tokens (JWS, RFC 7515)** issued by the Auth0 tenant: the ID token returned by the
//!   token endpoint after a login and the logout token posted to the back-channel
//!   logout endpoint. They are checked in three pure steps, each its own module:
//!   1. [`jws::Jws::parse`] splits the compact serialization and decodes header and claims
//!      (size-limited, strict base64url);
//!   2. [`jws::Jws::verify_rs256`] checks the RS256 signature against the tenant's key set
//!      ([`jwk::Jwks`], parsed once and cached by the adapter, refetched once when the
//!      token names a key the cached set does not have: [`JoseError::UnknownKid`]);
//!   3. [`claims::validate_id_token`] / [`claims::validate_logout_token`] check the claims
//!      (issuer, audience, expiry, nonce, organization, logout event) at a given `now`.
//!
//! * **Encrypted tokens (JWE, RFC 7516)** written by the SDK itself: the session and
//!   transaction cookies, `alg=dir` / `enc=A256CBC-HS512` with a key derived by HKDF from the
//!   application secret, byte-compatible with the Python SDK ([`jwe`]).
//!
//! Everything here is pure: no I/O, no clock (`now` is an argument), no randomness (the JWE
//! IV is handed in). No input makes these functions panic; every failure is a [`JoseError`]
//! with a stable [`code`](JoseError::code), and no error message contains token contents
//! or key material.

pub mod b64;
pub mod claims;
mod error;
pub mod jwe;
pub mod jwk;
pub mod jws;

pub use error::JoseError;
