//! OpenID Connect discovery and the JWKS (current key, plus the previous one after a rotation).

use serde_json::json;

use super::reply::Reply;
use crate::Shared;
use crate::jwt;

/// `GET /.well-known/openid-configuration`.
pub(crate) fn discovery(shared: &Shared) -> Reply {
    let base = &shared.issuer_base();
    let shape = &shared.config.provider;
    let alg = shape.alg.name();
    let mut document = json!({
            "issuer": shared.issuer(),
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/oauth/token"),
            "device_authorization_endpoint": format!("{base}/oauth/device/code"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "mfa_challenge_endpoint": format!("{base}/mfa/challenge"),
            "jwks_uri": format!("{base}/.well-known/jwks.json"),
            "registration_endpoint": format!("{base}/oidc/register"),
            "revocation_endpoint": format!("{base}/oauth/revoke"),
            "end_session_endpoint": format!("{base}/oidc/logout"),
            "pushed_authorization_request_endpoint": format!("{base}/oauth/par"),
            "backchannel_authentication_endpoint": format!("{base}/bc-authorize"),
            "backchannel_token_delivery_modes_supported": ["poll"],
            "require_pushed_authorization_requests": false,
            "scopes_supported": ["openid", "profile", "offline_access", "name", "given_name", "family_name",
                "nickname", "email", "email_verified", "picture", "created_at", "identities", "phone", "address"],
            "response_types_supported": ["code", "token", "id_token", "code token", "code id_token",
                "token id_token", "code token id_token"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [alg],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["RS256", "PS256", "ES256"],
            "claims_supported": ["aud", "auth_time", "created_at", "email", "email_verified", "exp",
                "family_name", "given_name", "iat", "identities", "iss", "name", "nickname", "phone_number",
                "picture", "sub"],
            "request_uri_parameter_supported": false,
            "request_parameter_supported": false,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "authorization_details_types_supported": [],
    });
    if shape.iss_in_callback {
        document["authorization_response_iss_parameter_supported"] = json!(true);
    }
    // RFC 8705 §5: with an mTLS client registered, the TLS listener serves the same paths.
    if let Some(tls) = &shared.tls_base_url {
        let tls = format!("{tls}{}", shape.issuer_path);
        document["mtls_endpoint_aliases"] = json!({
            "token_endpoint": format!("{tls}/oauth/token"),
            "revocation_endpoint": format!("{tls}/oauth/revoke"),
            "pushed_authorization_request_endpoint": format!("{tls}/oauth/par"),
            "userinfo_endpoint": format!("{tls}/userinfo"),
            "backchannel_authentication_endpoint": format!("{tls}/bc-authorize"),
        });
        document["tls_client_certificate_bound_access_tokens"] = json!(true);
        document["token_endpoint_auth_methods_supported"] = json!([
            "client_secret_post",
            "client_secret_basic",
            "private_key_jwt",
            "tls_client_auth",
            "self_signed_tls_client_auth"
        ]);
    }
    Reply::json(200, &document)
}

/// `GET /.well-known/jwks.json`: the current key, and the previous one after a rotation.
pub(crate) fn jwks(shared: &Shared) -> Reply {
    let keys = jwt::keys();
    let (current, previous) = {
        let s = shared.lock();
        (s.current_key, s.previous_key)
    };
    let alg = shared.config.provider.alg;
    let published = |i: usize| {
        if alg == crate::ProviderAlg::Es256 {
            return keys[i].ec.jwk.clone();
        }
        let mut jwk = keys[i].jwk.clone();
        jwk["alg"] = json!(alg.name());
        jwk
    };
    let mut list = vec![published(current)];
    if let Some(p) = previous.filter(|p| *p != current) {
        list.push(published(p));
    }
    Reply::json(200, &json!({ "keys": list }))
}
