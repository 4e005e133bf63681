//! Passkeys (Auth0's native passkey API): `POST /passkey/register` (a signup challenge for a
//! new user), `POST /passkey/challenge` (a login challenge), both JSON with the client's
//! credential in the body (`client_secret`; the certificate under mTLS), and the WebAuthn
//! grant at `/oauth/token` (`grant_type=urn:okta:params:oauth:grant-type:webauthn`,
//! `auth_session`, `authn_response`).
//!
//! No WebAuthn cryptography is verified: the grant checks that the `auth_session` is one this
//! emulator issued, unexpired and not used before (every attempt spends it), that the
//! credential's `clientDataJSON` echoes the challenge with the ceremony's `type`
//! (`webauthn.create` / `webauthn.get`), and that a login's credential id is one registered by
//! an earlier signup (for the named user, when the challenge named one). Tests build the
//! browser's side with [`credential_for`].

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::client_auth::authenticate_client;
use super::reply::Reply;
use super::token::issue_tokens;
use super::{form, now, random_token};
use crate::jwt;
use crate::{RecordedRequest, Shared};

/// How long an `auth_session` is valid.
pub(crate) const PASSKEY_SESSION_LIFETIME: u64 = 300;
/// The connection a challenge uses when it names none.
pub const DEFAULT_PASSKEY_REALM: &str = "Username-Password-Authentication";

/// Which ceremony a challenge started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ceremony {
    Signup,
    Login,
}

/// A challenge waiting for its credential.
#[derive(Clone, Debug)]
struct Pending {
    ceremony: Ceremony,
    challenge: String,
    realm: String,
    organization: Option<String>,
    /// The login challenge's `username`.
    username: Option<String>,
    /// The signup's new user.
    profile: Map<String, Value>,
    expires_at: u64,
}

/// The passkey API's state.
#[derive(Debug, Default)]
pub(crate) struct PasskeyState {
    /// Live challenges by `auth_session`.
    pending: HashMap<String, Pending>,
    /// Registered credentials: id → the user's claims.
    credentials: HashMap<String, Map<String, Value>>,
}

impl PasskeyState {
    /// Ends every live challenge's validity now (an `auth_session` that expired).
    pub(crate) fn expire(&mut self) {
        for p in self.pending.values_mut() {
            p.expires_at = 0;
        }
    }
    /// The ids of the registered credentials.
    pub(crate) fn credential_ids(&self) -> Vec<String> {
        self.credentials.keys().cloned().collect()
    }
}

/// The JSON body (challenges are JSON, with nested objects).
fn body(req: &RecordedRequest) -> Map<String, Value> {
    match serde_json::from_slice(&req.body) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn string<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn is_json(req: &RecordedRequest) -> bool {
    req.header("content-type")
        .is_some_and(|c| c.to_ascii_lowercase().starts_with("application/json"))
}

/// `POST /passkey/register`.
pub(crate) fn register(shared: &Shared, req: &RecordedRequest) -> Reply {
    if !is_json(req) {
        return Reply::oauth_error(400, "invalid_request", "Content-Type must be JSON");
    }
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    let body = body(req);
    let Some(Value::Object(profile)) = body.get("user_profile") else {
        return Reply::oauth_error(400, "invalid_request", "Missing user_profile");
    };
    let identifier = ["email", "phone_number", "username"]
        .iter()
        .find_map(|k| string(profile, k));
    let Some(identifier) = identifier else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "user_profile needs an email, phone_number or username",
        );
    };
    let realm = string(&body, "realm").unwrap_or(DEFAULT_PASSKEY_REALM);
    let taken = shared.lock().passkey.credentials.values().any(|u| {
        ["email", "phone_number", "username"]
            .iter()
            .any(|k| string(u, k) == Some(identifier))
    });
    if taken {
        return Reply::oauth_error(400, "invalid_request", "The user already exists.");
    }
    let sub = format!("auth0|passkey-{}", &random_token()[..16]);
    let mut user = Map::new();
    user.insert("sub".into(), sub.clone().into());
    for (k, v) in profile {
        if matches!(
            k.as_str(),
            "email"
                | "phone_number"
                | "username"
                | "name"
                | "given_name"
                | "family_name"
                | "nickname"
                | "picture"
        ) {
            user.insert(k.clone(), v.clone());
        }
    }
    if user.contains_key("email") {
        user.insert("email_verified".into(), false.into());
    }
    let challenge = random_token();
    let auth_session = random_token();
    let display = string(profile, "name").unwrap_or(identifier).to_owned();
    let options = json!({
        "challenge": challenge,
        "timeout": 60000,
        "rp": {"id": "127.0.0.1", "name": "Auth0 emulator"},
        "user": {"id": jwt::b64(sub.as_bytes()), "name": identifier, "displayName": display},
        "pubKeyCredParams": [
            {"type": "public-key", "alg": -8},
            {"type": "public-key", "alg": -7},
            {"type": "public-key", "alg": -257}
        ],
        "authenticatorSelection": {"residentKey": "required", "userVerification": "preferred"}
    });
    shared.lock().passkey.pending.insert(
        auth_session.clone(),
        Pending {
            ceremony: Ceremony::Signup,
            challenge,
            realm: realm.to_owned(),
            organization: string(&body, "organization").map(str::to_owned),
            username: None,
            profile: user,
            expires_at: now() + PASSKEY_SESSION_LIFETIME,
        },
    );
    Reply::json(
        200,
        &json!({"authn_params_public_key": options, "auth_session": auth_session}),
    )
}

/// `POST /passkey/challenge`.
pub(crate) fn challenge(shared: &Shared, req: &RecordedRequest) -> Reply {
    if !is_json(req) {
        return Reply::oauth_error(400, "invalid_request", "Content-Type must be JSON");
    }
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    let body = body(req);
    let challenge = random_token();
    let auth_session = random_token();
    let options = json!({
        "challenge": challenge,
        "timeout": 60000,
        "rpId": "127.0.0.1",
        "userVerification": "preferred"
    });
    shared.lock().passkey.pending.insert(
        auth_session.clone(),
        Pending {
            ceremony: Ceremony::Login,
            challenge,
            realm: string(&body, "realm")
                .unwrap_or(DEFAULT_PASSKEY_REALM)
                .to_owned(),
            organization: string(&body, "organization").map(str::to_owned),
            username: string(&body, "username").map(str::to_owned),
            profile: Map::new(),
            expires_at: now() + PASSKEY_SESSION_LIFETIME,
        },
    );
    Reply::json(
        200,
        &json!({"authn_params_public_key": options, "auth_session": auth_session}),
    )
}

/// The `clientDataJSON` of a credential, decoded.
fn client_data(response: &Map<String, Value>) -> Option<Map<String, Value>> {
    let raw = jwt::b64_decode(string(response, "clientDataJSON")?)?;
    match serde_json::from_slice(&raw).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn bad_credential(why: &str) -> Reply {
    Reply::oauth_error(403, "invalid_grant", why)
}

/// `grant_type=urn:okta:params:oauth:grant-type:webauthn` (client already authenticated).
pub(crate) fn webauthn_grant(shared: &Shared, req: &RecordedRequest) -> Reply {
    let (Some(auth_session), Some(authn_response)) =
        (form(req, "auth_session"), form(req, "authn_response"))
    else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "Missing required parameter: auth_session or authn_response",
        );
    };
    // Every attempt spends the auth_session.
    let pending = shared.lock().passkey.pending.remove(auth_session);
    let Some(pending) = pending.filter(|p| p.expires_at > now()) else {
        return Reply::oauth_error(
            403,
            "invalid_grant",
            "The auth_session is invalid, expired or already used.",
        );
    };
    if form(req, "realm").is_some_and(|r| r != pending.realm) {
        return Reply::oauth_error(400, "invalid_request", "realm does not match the challenge");
    }
    let organization = form(req, "organization").map(str::to_owned);
    if pending.organization.is_some() && organization != pending.organization {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "organization does not match the challenge",
        );
    }
    let Ok(Value::Object(credential)) = serde_json::from_str::<Value>(authn_response) else {
        return Reply::oauth_error(
            400,
            "invalid_request",
            "authn_response must be a JSON object",
        );
    };
    let (Some(id), Some(Value::Object(response))) =
        (string(&credential, "id"), credential.get("response"))
    else {
        return bad_credential("The credential has no id or response.");
    };
    let expected_type = match pending.ceremony {
        Ceremony::Signup => "webauthn.create",
        Ceremony::Login => "webauthn.get",
    };
    let echoed = client_data(response).is_some_and(|c| {
        string(&c, "challenge") == Some(pending.challenge.as_str())
            && string(&c, "type") == Some(expected_type)
    });
    if !echoed {
        return bad_credential("The credential does not answer this challenge.");
    }
    let user = {
        let mut state = shared.lock();
        match pending.ceremony {
            Ceremony::Signup => {
                if string(response, "attestationObject").is_none()
                    || state.passkey.credentials.contains_key(id)
                {
                    return bad_credential("The credential cannot be registered.");
                }
                state
                    .passkey
                    .credentials
                    .insert(id.to_owned(), pending.profile.clone());
                pending.profile
            }
            Ceremony::Login => {
                let Some(user) = state.passkey.credentials.get(id).cloned() else {
                    return bad_credential("Unknown credential.");
                };
                if string(response, "signature").is_none()
                    || string(response, "authenticatorData").is_none()
                {
                    return bad_credential("The credential has no signature.");
                }
                let named = pending.username.as_deref().is_none_or(|n| {
                    ["email", "username", "phone_number"]
                        .iter()
                        .any(|k| string(&user, k) == Some(n))
                });
                if !named {
                    return bad_credential("The credential belongs to another user.");
                }
                user
            }
        }
    };
    let scope = form(req, "scope").unwrap_or("openid").to_owned();
    let audience = form(req, "audience").map(str::to_owned);
    let org = organization.map(|o| {
        if o.starts_with("org_") {
            (o, "emulator-org".to_owned())
        } else {
            (format!("org_{o}"), o)
        }
    });
    Reply::json(
        200,
        &Value::Object(issue_tokens(shared, &user, &scope, audience, org, None)),
    )
}

/// The browser's side, for tests: the credential (`PublicKeyCredential.toJSON()`) a passkey
/// with id `credential_id` answers `options` with (the `authn_params_public_key` of a
/// challenge: a signup's when it has a `user`, else a login's). The `clientDataJSON` echoes
/// the challenge; the other binary members are placeholders (the emulator does not verify
/// WebAuthn signatures).
pub fn credential_for(options: &Value, credential_id: &str) -> Value {
    let challenge = options.get("challenge").and_then(Value::as_str);
    let create = options.get("user").is_some();
    let client_data = json!({
        "type": if create { "webauthn.create" } else { "webauthn.get" },
        "challenge": challenge,
        "origin": "http://127.0.0.1:3000",
        "crossOrigin": false
    });
    let client_data = jwt::b64(client_data.to_string().as_bytes());
    let response = if create {
        json!({
            "clientDataJSON": client_data,
            "attestationObject": jwt::b64(b"attestation (not verified)"),
            "transports": ["internal", "hybrid"]
        })
    } else {
        json!({
            "clientDataJSON": client_data,
            "authenticatorData": jwt::b64(b"authenticator data (not verified)"),
            "signature": jwt::b64(b"signature (not verified)"),
            "userHandle": null
        })
    };
    json!({
        "id": credential_id,
        "rawId": credential_id,
        "type": "public-key",
        "authenticatorAttachment": "platform",
        "response": response,
        "clientExtensionResults": {}
    })
}
