//! Access and ID token claims, signed with the current key.

use serde_json::{Map, Value, json};

use super::{now, random_token, split_scope};
use crate::Shared;
use crate::jwt;

/// Signs `claims` with the current key, in the provider shape's algorithm.
pub(crate) fn sign_current(shared: &Shared, claims: &Map<String, Value>) -> String {
    let current = shared.lock().current_key;
    match shared.config.provider.alg {
        crate::ProviderAlg::Rs256 => jwt::sign_rs256(&jwt::keys()[current], claims, &Map::new()),
        crate::ProviderAlg::Ps256 => jwt::sign_ps256(&jwt::keys()[current], claims),
        crate::ProviderAlg::Es256 => jwt::sign_es256(&jwt::keys()[current].ec, claims),
    }
}

/// An RS256 access token. With an audience its `aud` is `[audience, {issuer}userinfo]` when the
/// scope includes `openid` (as Auth0 does), else the audience string; without one, the
/// userinfo audience.
pub(crate) fn access_token(
    shared: &Shared,
    sub: &str,
    audience: Option<&str>,
    scope: &str,
    lifetime: u64,
) -> String {
    let issuer = shared.issuer();
    let userinfo = format!("{}/userinfo", shared.issuer_base());
    let aud = match audience {
        Some(a) if split_scope(scope).contains(&"openid") && a != userinfo => json!([a, userinfo]),
        Some(a) => json!(a),
        None => json!(userinfo),
    };
    let now = now();
    let mut claims = Map::new();
    claims.insert("iss".into(), issuer.into());
    claims.insert("sub".into(), sub.into());
    claims.insert("aud".into(), aud);
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + lifetime).into());
    claims.insert("scope".into(), scope.into());
    claims.insert("azp".into(), shared.config.client_id.clone().into());
    claims.insert("jti".into(), random_token().into());
    sign_current(shared, &claims)
}

/// Valid ID token claims for `user`.
pub(crate) fn id_token_claims(
    shared: &Shared,
    user: &Map<String, Value>,
    nonce: Option<&str>,
    sid: &str,
    org: Option<&(String, String)>,
) -> Map<String, Value> {
    let now = now();
    let mut claims = user.clone();
    claims.insert("iss".into(), shared.issuer().into());
    claims.insert("aud".into(), shared.config.client_id.clone().into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + shared.config.id_token_lifetime).into());
    claims.insert("sid".into(), sid.into());
    claims.insert("updated_at".into(), "2024-01-01T00:00:00.000Z".into());
    if let Some(nonce) = nonce {
        claims.insert("nonce".into(), nonce.into());
    }
    if let Some((id, name)) = org {
        claims.insert("org_id".into(), id.clone().into());
        claims.insert("org_name".into(), name.clone().into());
    }
    claims
}

/// How long a back-channel logout token is valid (Auth0 issues them for two minutes).
const LOGOUT_TOKEN_LIFETIME: u64 = 120;

/// The claims of a back-channel logout token (OpenID Connect Back-Channel Logout 1.0 §2.4):
/// `iss`, `aud` (the client), `iat`, `exp`, `jti`, the back-channel logout `events` member,
/// and `sub` / `sid` when given. Never a `nonce`.
pub(crate) fn logout_token_claims(
    shared: &Shared,
    sub: Option<&str>,
    sid: Option<&str>,
) -> Map<String, Value> {
    let now = now();
    let mut claims = Map::new();
    claims.insert("iss".into(), shared.issuer().into());
    claims.insert("aud".into(), shared.config.client_id.clone().into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + LOGOUT_TOKEN_LIFETIME).into());
    claims.insert("jti".into(), random_token().into());
    claims.insert(
        "events".into(),
        json!({ crate::BACKCHANNEL_LOGOUT_EVENT: {} }),
    );
    if let Some(sub) = sub {
        claims.insert("sub".into(), sub.into());
    }
    if let Some(sid) = sid {
        claims.insert("sid".into(), sid.into());
    }
    claims
}

/// The claims of `token` when it is an RS256 token signed by a published key (current or
/// previous) with this issuer. Expiry is not checked.
pub(crate) fn verify_issued(shared: &Shared, token: &str) -> Option<Map<String, Value>> {
    let (current, previous) = {
        let s = shared.lock();
        (s.current_key, s.previous_key)
    };
    let keys = jwt::keys();
    let candidates = std::iter::once(&keys[current]).chain(previous.map(|p| &keys[p]));
    let claims = jwt::verify_rs256(token, candidates)?;
    (claims.get("iss").and_then(Value::as_str) == Some(shared.issuer().as_str())).then_some(claims)
}
