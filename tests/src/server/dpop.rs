//! DPoP (RFC 9449): proofs verified at the token endpoint, PAR and the test resource
//! `/api/dpop`; tokens bound to the proof's key (`cnf.jkt`) and answered as `token_type: DPoP`;
//! server nonces issued and required when a test asks for them.
//!
//! A proof is checked as RFC 9449 §4.3 lists: one `DPoP` header, a JWS with `typ: dpop+jwt`,
//! `alg: ES256` and a public P-256 `jwk` (no private part) that verifies its signature; `htm`
//! the request's method, `htu` exactly the endpoint's URL (no query, no fragment), `iat`
//! within a minute of now, a `jti` never seen before, the current nonce when one is
//! required, and at a resource `ath` = the presented token's hash and the key the token is
//! bound to.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::client_auth::verify_signature;
use super::mint::{sign_current, verify_issued};
use super::reply::Reply;
use super::{now, random_token};
use crate::jwt;
use crate::{RecordedRequest, Shared};

/// How far `iat` may be from now, either way.
const IAT_WINDOW: u64 = 60;

/// The emulator's DPoP state.
#[derive(Default)]
pub(crate) struct DpopState {
    /// `jti`s of the proofs accepted, with their `iat`: a replay is refused.
    pub(crate) jtis: std::collections::HashMap<String, u64>,
    /// Whether the token endpoint and PAR require a nonce.
    pub(crate) require_nonce: bool,
    /// The nonce the token endpoint and PAR accept now.
    pub(crate) nonce: Option<String>,
    /// Whether `/api/dpop` requires a nonce.
    pub(crate) require_resource_nonce: bool,
    /// The nonce `/api/dpop` accepts now.
    pub(crate) resource_nonce: Option<String>,
    /// Answer `token_type: Bearer` (unbound) to DPoP requests: a misbehaving server.
    pub(crate) answer_bearer: bool,
    /// Nonce challenges answered (token endpoint and PAR, then resource).
    pub(crate) challenges: usize,
    /// The claims of every proof accepted, in order.
    pub(crate) accepted: Vec<Map<String, Value>>,
}

/// Where a proof is presented (which nonce applies, and how errors are answered).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    /// The token endpoint or PAR: errors are `400` OAuth errors.
    AuthorizationServer,
    /// The resource `/api/dpop`: errors are `401` with a `WWW-Authenticate: DPoP` challenge.
    Resource,
}

fn error(at: At, code: &str, description: &str) -> Reply {
    match at {
        At::AuthorizationServer => Reply::oauth_error(400, code, description),
        At::Resource => {
            let mut reply = Reply::json(
                401,
                &json!({"error": code, "error_description": description}),
            );
            reply.headers.push((
                "WWW-Authenticate".into(),
                format!(
                    "DPoP algs=\"ES256\", error=\"{code}\", error_description=\"{description}\""
                ),
            ));
            reply
        }
    }
}

/// RFC 7638 thumbprint of a public EC JWK (the required members in order, no whitespace).
pub(crate) fn thumbprint(jwk: &Value) -> Option<String> {
    let m = |n: &str| jwk.get(n).and_then(Value::as_str);
    let canonical = format!(
        r#"{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}"#,
        m("crv")?,
        m("kty")?,
        m("x")?,
        m("y")?
    );
    Some(jwt::b64(&Sha256::digest(canonical.as_bytes())))
}

/// The URL a proof for `path` must name: the issuer base (where discovery lists endpoints)
/// and the path.
fn expected_htu(shared: &Shared, path: &str) -> String {
    format!("{}{path}", shared.issuer_base())
}

/// Verifies the request's DPoP proof for the endpoint at `path`. `Ok(None)`: no proof (a
/// bearer request); `Ok(Some(jkt))`: a valid proof by the key with that thumbprint; `Err`:
/// the answer (an invalid proof, or a nonce challenge).
pub(crate) fn check_proof(
    shared: &Shared,
    req: &RecordedRequest,
    path: &str,
    at: At,
    access_token: Option<&str>,
) -> Result<Option<String>, Reply> {
    let proofs: Vec<&str> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("dpop"))
        .map(|(_, v)| v.as_str())
        .collect();
    let proof = match proofs.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err(error(at, "invalid_dpop_proof", "More than one DPoP proof")),
    };
    let invalid = |d: &str| error(at, "invalid_dpop_proof", d);
    let header = jwt::decode_header(proof).ok_or_else(|| invalid("Malformed DPoP proof"))?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(invalid("DPoP proof typ must be dpop+jwt"));
    }
    if header.get("alg").and_then(Value::as_str) != Some("ES256") {
        return Err(invalid("DPoP proof alg must be ES256"));
    }
    let jwk = header
        .get("jwk")
        .filter(|j| j.get("d").is_none() && j.get("kty").and_then(Value::as_str) == Some("EC"))
        .ok_or_else(|| invalid("DPoP proof jwk must be a public EC key"))?;
    let (_, claims) =
        verify_signature(proof, jwk).ok_or_else(|| invalid("Invalid DPoP proof signature"))?;
    let text = |n: &str| claims.get(n).and_then(Value::as_str);
    if text("htm") != Some(req.method.as_str()) {
        return Err(invalid("DPoP proof htm does not match the request method"));
    }
    if text("htu") != Some(expected_htu(shared, path).as_str()) {
        return Err(invalid("DPoP proof htu does not match the request URL"));
    }
    let now = now();
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or_else(|| invalid("DPoP proof has no iat"))?;
    if iat + IAT_WINDOW < now || iat > now + IAT_WINDOW {
        return Err(invalid("DPoP proof iat is outside the acceptable window"));
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| invalid("DPoP proof has no jti"))?;
    if let Some(token) = access_token {
        let ath = jwt::b64(&Sha256::digest(token.as_bytes()));
        if text("ath") != Some(ath.as_str()) {
            return Err(invalid("DPoP proof ath does not match the access token"));
        }
    }
    let jkt = thumbprint(jwk).ok_or_else(|| invalid("DPoP proof jwk is incomplete"))?;
    let mut state = shared.lock();
    let dpop = &mut state.dpop;
    let (required, current) = match at {
        At::AuthorizationServer => (dpop.require_nonce, &mut dpop.nonce),
        At::Resource => (dpop.require_resource_nonce, &mut dpop.resource_nonce),
    };
    if required && (current.is_none() || text("nonce") != current.as_deref()) {
        let nonce = current.get_or_insert_with(random_token).clone();
        dpop.challenges += 1;
        let mut reply = match at {
            At::AuthorizationServer => Reply::oauth_error(
                400,
                "use_dpop_nonce",
                "Authorization server requires nonce in DPoP proof",
            ),
            At::Resource => error(
                at,
                "use_dpop_nonce",
                "Resource server requires nonce in DPoP proof",
            ),
        };
        reply.headers.push(("DPoP-Nonce".into(), nonce));
        return Err(reply);
    }
    dpop.jtis.retain(|_, t| *t + 2 * IAT_WINDOW > now);
    if dpop.jtis.contains_key(jti) {
        return Err(invalid("DPoP proof jti has already been used"));
    }
    dpop.jtis.insert(jti.to_owned(), iat);
    dpop.accepted.push(claims.clone());
    Ok(Some(jkt))
}

/// A successful token answer to a DPoP request, bound to `jkt`: the access token re-signed
/// with `cnf.jkt` and `token_type: DPoP` — unless the test switched the emulator to answer
/// bearer tokens. Tokens the emulator did not mint (a federated connection's) stay as they
/// are.
pub(crate) fn bind_answer(shared: &Shared, mut reply: Reply, jkt: &str) -> Reply {
    if reply.status != 200 || shared.lock().dpop.answer_bearer {
        return reply;
    }
    let Ok(Value::Object(mut body)) = serde_json::from_slice::<Value>(&reply.body) else {
        return reply;
    };
    let Some(mut claims) = body
        .get("access_token")
        .and_then(Value::as_str)
        .and_then(|t| verify_issued(shared, t))
    else {
        return reply;
    };
    claims.insert("cnf".into(), json!({ "jkt": jkt }));
    body.insert("access_token".into(), sign_current(shared, &claims).into());
    body.insert("token_type".into(), "DPoP".into());
    reply.body = Value::Object(body).to_string().into_bytes();
    reply
}

/// `GET` or `POST /api/dpop`: a test API that accepts only DPoP-bound tokens, presented as
/// `Authorization: DPoP <token>` with a proof by the bound key for this request (`ath`,
/// `htm`, `htu`), and the resource nonce when a test requires one.
pub(crate) fn api_dpop(shared: &Shared, req: &RecordedRequest) -> Reply {
    let unauthorized = |d: &str| error(At::Resource, "invalid_token", d);
    let Some((scheme, token)) = req
        .header("authorization")
        .and_then(|h| h.trim().split_once(' '))
    else {
        return unauthorized("Missing access token");
    };
    if !scheme.eq_ignore_ascii_case("dpop") {
        return unauthorized("This API requires DPoP-bound access tokens");
    }
    let token = token.trim();
    let Some(claims) = verify_issued(shared, token) else {
        return unauthorized("Invalid access token");
    };
    if claims
        .get("exp")
        .and_then(Value::as_u64)
        .is_none_or(|e| e <= now())
    {
        return unauthorized("Expired access token");
    }
    let Some(bound) = claims
        .get("cnf")
        .and_then(|c| c.get("jkt"))
        .and_then(Value::as_str)
    else {
        return unauthorized("The access token is not DPoP-bound");
    };
    match check_proof(shared, req, "/api/dpop", At::Resource, Some(token)) {
        Ok(Some(jkt)) if jkt == bound => Reply::json(
            200,
            &json!({
                "message": "Hello from the emulator's DPoP API",
                "sub": claims.get("sub").cloned().unwrap_or(Value::Null),
                "jkt": jkt,
            }),
        ),
        Ok(Some(_)) => unauthorized("The DPoP proof is not by the key the token is bound to"),
        Ok(None) => unauthorized("Missing DPoP proof"),
        Err(reply) => reply,
    }
}
