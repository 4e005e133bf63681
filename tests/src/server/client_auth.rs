//! Client authentication at the token, PAR and revocation endpoints: `client_secret_post` or
//! `client_secret_basic`, never both; `private_key_jwt` for a client registered with a
//! public key; or mutual TLS (`tls_client_auth`, `self_signed_tls_client_auth`) for a client
//! registered with a certificate subject or a self-signed certificate.

use super::reply::Reply;
use super::{form, now};
use crate::jwt;
use crate::{RecordedRequest, Shared};
use serde_json::{Map, Value};

/// The `client_assertion_type` of RFC 7523 §2.2.
pub(crate) const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Longest an assertion may be valid from now (`exp` − now): Auth0's documented maximum of
/// five minutes ("Authenticate with Private Key JWT").
const MAX_ASSERTION_LIFETIME: u64 = 300;

/// Clock skew tolerated on `iat` (in the future) and `exp` (just past): the 10 s Auth0
/// documents for `iat` and `nbf`.
const SKEW: u64 = 10;

/// Client authentication (client_secret_post or client_secret_basic, or private_key_jwt for a
/// client with a registered public key). `Err` is the answer.
pub(crate) fn authenticate_client(shared: &Shared, req: &RecordedRequest) -> Result<(), Reply> {
    let cfg = &shared.config;
    if let Some(registration) = &cfg.tls_client_auth {
        return authenticate_certificate(shared, req, registration);
    }
    if let Some(public_key) = &cfg.client_public_key {
        return authenticate_assertion(shared, req, public_key);
    }
    let form_id = req
        .form
        .iter()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.as_str());
    let form_secret = req
        .form
        .iter()
        .find(|(k, _)| k == "client_secret")
        .map(|(_, v)| v.as_str());
    let basic = req.header("authorization").and_then(|h| {
        let (scheme, rest) = h.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = String::from_utf8(jwt::std_b64_decode(rest)?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let dec = |s: &str| -> String {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Some((dec(id), dec(secret)))
    });
    let unauthorized = || Reply::oauth_error(401, "access_denied", "Unauthorized");
    let (id, secret) = match (&basic, form_secret) {
        (Some(_), Some(_)) => {
            return Err(Reply::oauth_error(
                400,
                "invalid_request",
                "Multiple client authentication methods are not allowed",
            ));
        }
        (Some((id, secret)), None) => {
            if form_id.is_some_and(|f| f != id) {
                return Err(Reply::oauth_error(
                    401,
                    "invalid_client",
                    "client_id mismatch",
                ));
            }
            (id.as_str(), secret.as_str())
        }
        (None, Some(secret)) => match form_id {
            Some(id) => (id, secret),
            None => {
                return Err(Reply::oauth_error(
                    401,
                    "invalid_client",
                    "Missing client_id",
                ));
            }
        },
        (None, None) => {
            return Err(Reply::oauth_error(
                401,
                "invalid_client",
                "Client authentication is required",
            ));
        }
    };
    if id != cfg.client_id {
        return Err(Reply::oauth_error(401, "invalid_client", "Unknown client"));
    }
    if !constant_time_eq(secret.as_bytes(), cfg.client_secret.as_bytes()) {
        return Err(unauthorized());
    }
    Ok(())
}

/// Compares secrets without an early exit on the first differing byte.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn invalid_client(description: &str) -> Reply {
    Reply::oauth_error(401, "invalid_client", description)
}

/// `private_key_jwt` (RFC 7523 §3, OpenID Connect Core §9): exactly one method (no secret,
/// no Basic header), the assertion's signature by the registered key, `iss` = `sub` =
/// client id, `aud` exactly the issuer (one string: the issuer identifier, as
/// draft-ietf-oauth-rfc7523bis requires; the token endpoint URL or an array is refused),
/// `exp` in the future and at most five minutes away, `iat` not in the future, and a `jti`
/// never seen before (recorded until the assertion expires).
fn authenticate_assertion(
    shared: &Shared,
    req: &RecordedRequest,
    public_key: &Value,
) -> Result<(), Reply> {
    if form(req, "client_secret").is_some() || req.header("authorization").is_some() {
        return Err(invalid_client(
            "This client authenticates with private_key_jwt; a client secret is not allowed",
        ));
    }
    if form(req, "client_assertion_type") != Some(ASSERTION_TYPE) {
        return Err(invalid_client(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let Some(assertion) = form(req, "client_assertion") else {
        return Err(invalid_client("Missing client_assertion"));
    };
    let client_id = &shared.config.client_id;
    if form(req, "client_id").is_some_and(|id| id != client_id) {
        return Err(invalid_client("client_id mismatch"));
    }
    let (header, claims) = verify_signature(assertion, public_key)
        .ok_or_else(|| invalid_client("Invalid client_assertion signature"))?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    if text("iss") != Some(client_id) || text("sub") != Some(client_id) {
        return Err(invalid_client(
            "client_assertion iss and sub must be the client_id",
        ));
    }
    if claims.get("aud") != Some(&Value::String(shared.issuer())) {
        return Err(invalid_client("client_assertion aud must be the issuer"));
    }
    if header
        .get("typ")
        .and_then(Value::as_str)
        .is_some_and(|t| t != "JWT")
    {
        return Err(invalid_client("client_assertion typ must be JWT"));
    }
    let now = now();
    let number = |name: &str| claims.get(name).and_then(Value::as_u64);
    let Some(exp) = number("exp") else {
        return Err(invalid_client("client_assertion has no exp"));
    };
    if exp + SKEW <= now || exp > now + MAX_ASSERTION_LIFETIME {
        return Err(invalid_client(
            "client_assertion is expired or lives too long",
        ));
    }
    if number("iat").is_some_and(|iat| iat > now + SKEW) {
        return Err(invalid_client("client_assertion iat is in the future"));
    }
    let Some(jti) = text("jti").filter(|j| !j.is_empty()) else {
        return Err(invalid_client("client_assertion has no jti"));
    };
    let mut state = shared.lock();
    state.assertion_jtis.retain(|_, until| *until + SKEW > now);
    if state.assertion_jtis.contains_key(jti) {
        return Err(invalid_client("client_assertion jti has already been used"));
    }
    state.assertion_jtis.insert(jti.to_owned(), exp);
    state.accepted_assertions.push(jti.to_owned());
    Ok(())
}

/// The header and claims of `jws` when its signature verifies with the public JWK (RS256 or
/// PS256 for an RSA key, ES256 for a P-256 key).
pub(crate) fn verify_signature(
    jws: &str,
    jwk: &Value,
) -> Option<(Map<String, Value>, Map<String, Value>)> {
    use rsa::signature::Verifier;
    let mut parts = jws.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header = jwt::decode_header(jws)?;
    let claims = jwt::decode_payload(jws)?;
    let input = format!("{h}.{p}");
    let sig = jwt::b64_decode(s)?;
    let field = |name: &str| {
        jwk.get(name)
            .and_then(Value::as_str)
            .and_then(jwt::b64_decode)
    };
    let ok = match (jwk.get("kty")?.as_str()?, header.get("alg")?.as_str()?) {
        ("RSA", alg @ ("RS256" | "PS256")) => {
            let public = rsa::RsaPublicKey::new(
                rsa::BigUint::from_bytes_be(&field("n")?),
                rsa::BigUint::from_bytes_be(&field("e")?),
            )
            .ok()?;
            if alg == "RS256" {
                let key = rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public);
                let sig = rsa::pkcs1v15::Signature::try_from(&sig[..]).ok()?;
                key.verify(input.as_bytes(), &sig).is_ok()
            } else {
                let key = rsa::pss::VerifyingKey::<sha2::Sha256>::new(public);
                let sig = rsa::pss::Signature::try_from(&sig[..]).ok()?;
                key.verify(input.as_bytes(), &sig).is_ok()
            }
        }
        ("EC", "ES256") => {
            let mut point = vec![4u8];
            point.extend(field("x")?);
            point.extend(field("y")?);
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).ok()?;
            let sig = p256::ecdsa::Signature::from_slice(&sig).ok()?;
            key.verify(input.as_bytes(), &sig).is_ok()
        }
        _ => false,
    };
    ok.then_some((header, claims))
}

/// Mutual TLS (RFC 8705 §2): the request came through the TLS listener with a client
/// certificate; `client_id` names the client; no secret, Basic header or assertion; and the
/// certificate is the registered one: issued by the test CA with the registered subject
/// (`tls_client_auth`), or the registered self-signed certificate, by thumbprint
/// (`self_signed_tls_client_auth`). Every failure is 401 `invalid_client`.
fn authenticate_certificate(
    shared: &Shared,
    req: &RecordedRequest,
    registration: &crate::TlsClientAuth,
) -> Result<(), Reply> {
    if form(req, "client_secret").is_some()
        || req.header("authorization").is_some()
        || form(req, "client_assertion").is_some()
    {
        return Err(invalid_client(
            "This client authenticates with a client certificate; other credentials are not allowed",
        ));
    }
    if form(req, "client_id") != Some(shared.config.client_id.as_str()) {
        return Err(invalid_client("Missing or unknown client_id"));
    }
    let Some(chain) = req
        .tls
        .as_ref()
        .map(|t| &t.client_chain)
        .filter(|c| !c.is_empty())
    else {
        return Err(invalid_client(
            "A client certificate is required (use the mtls_endpoint_aliases)",
        ));
    };
    match registration {
        crate::TlsClientAuth::CaIssued { subject_dn } => {
            crate::tls::check_ca_issued(chain, subject_dn).map_err(invalid_client)
        }
        crate::TlsClientAuth::SelfSigned { certificate_pem } => {
            let registered = crate::tls::certificate_der(certificate_pem)
                .map(|der| crate::tls::thumbprint(&der));
            let presented = crate::tls::thumbprint(&chain[0]);
            if registered.as_deref() == Some(presented.as_str()) {
                Ok(())
            } else {
                Err(invalid_client(
                    "The client certificate is not the registered one",
                ))
            }
        }
    }
}
