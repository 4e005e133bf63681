//! Multi-factor authentication, as Auth0's MFA API answers it:
//!
//! * `GET /mfa/authenticators` and `POST /mfa/associate` (JSON), authorized by the
//!   `mfa_token` of an `mfa_required` answer as a bearer token;
//! * `POST /mfa/challenge` (client credentials, `mfa_token`, `challenge_type`,
//!   `authenticator_id`): an OOB challenge "sends" a binding code the test reads
//!   ([`Emulator::mfa_binding_code`](crate::Emulator::mfa_binding_code));
//! * the grants `mfa-otp` (the current code: [`Emulator::mfa_otp`](crate::Emulator::mfa_otp)),
//!   `mfa-oob` (`oob_code` + `binding_code`) and `mfa-recovery-code` (single use: a new one
//!   comes back) at `/oauth/token`, issuing tokens for the audience and scope of the refused
//!   refresh.
//!
//! An unknown `mfa_token` is 401 `invalid_token` (API) or 403 `invalid_grant` (grants); an
//! expired one (10 minutes, or [`Emulator::expire_mfa_tokens`](crate::Emulator::expire_mfa_tokens))
//! 401/403 `expired_token`; a wrong code 403 `invalid_grant`.

use serde_json::{Value, json};

use super::client_auth::authenticate_client;
use super::reply::Reply;
use super::token::issue_tokens;
use super::{form, now, random_token};
use crate::{RecordedRequest, Shared};

/// How long an `mfa_token` is valid (Auth0: 10 minutes).
pub(crate) const MFA_TOKEN_LIFETIME: u64 = 600;

/// An `mfa_token` the emulator issued with an `mfa_required` answer.
#[derive(Clone, Debug)]
pub(crate) struct MfaTokenEntry {
    pub(crate) sub: String,
    pub(crate) scope: String,
    pub(crate) audience: Option<String>,
    pub(crate) expires_at: u64,
}

/// The MFA state: the user's authenticators, the live codes.
#[derive(Debug, Default)]
pub(crate) struct MfaState {
    pub(crate) tokens: std::collections::HashMap<String, MfaTokenEntry>,
    /// The OTP code the user's authenticator app shows now.
    pub(crate) otp: String,
    /// The user's (single-use) recovery code.
    pub(crate) recovery_code: String,
    /// Live OOB challenges: `oob_code` → the binding code sent.
    pub(crate) oob: std::collections::HashMap<String, String>,
    /// The binding code of the last OOB challenge or enrollment.
    pub(crate) last_binding_code: Option<String>,
    /// Enrolled authenticators, as listed.
    pub(crate) authenticators: Vec<Value>,
}

/// Six random digits.
pub(crate) fn digits() -> String {
    random_token()
        .bytes()
        .take(6)
        .map(|b| char::from(b'0' + b % 10))
        .collect()
}

/// 24 random upper-case letters and digits (Auth0's recovery code shape).
fn recovery_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    random_token()
        .bytes()
        .take(24)
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

impl MfaState {
    /// A user with an OTP app, an SMS number and a recovery code enrolled.
    pub(crate) fn new() -> Self {
        MfaState {
            otp: digits(),
            recovery_code: recovery_code(),
            authenticators: vec![
                json!({"id": "totp|dev_emulator_otp", "authenticator_type": "otp", "active": true}),
                json!({"id": "sms|dev_emulator_sms", "authenticator_type": "oob", "oob_channel": "sms", "name": "+1XXXXXXX0100", "active": true}),
                json!({"id": "recovery-code|dev_emulator_rc", "authenticator_type": "recovery-code", "active": true}),
            ],
            ..Default::default()
        }
    }

    /// Issues an `mfa_token` for a refused grant.
    pub(crate) fn issue(&mut self, sub: &str, scope: &str, audience: Option<&str>) -> String {
        let token = random_token();
        self.tokens.insert(
            token.clone(),
            MfaTokenEntry {
                sub: sub.to_owned(),
                scope: scope.to_owned(),
                audience: audience.map(str::to_owned),
                expires_at: now() + MFA_TOKEN_LIFETIME,
            },
        );
        token
    }
}

enum TokenCheck {
    Valid(MfaTokenEntry),
    Expired,
    Unknown,
}

fn check_token(shared: &Shared, token: Option<&str>) -> TokenCheck {
    let state = shared.lock();
    match token.and_then(|t| state.mfa.tokens.get(t)) {
        None => TokenCheck::Unknown,
        Some(e) if e.expires_at <= now() => TokenCheck::Expired,
        Some(e) => TokenCheck::Valid(e.clone()),
    }
}

fn bearer(req: &RecordedRequest) -> Option<&str> {
    let (scheme, token) = req.header("authorization")?.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// The API's answer to a bearer `mfa_token` that is not valid now.
fn api_token(shared: &Shared, req: &RecordedRequest) -> Result<MfaTokenEntry, Reply> {
    match check_token(shared, bearer(req)) {
        TokenCheck::Valid(e) => Ok(e),
        TokenCheck::Expired => Err(Reply::oauth_error(
            401,
            "expired_token",
            "mfa_token is expired",
        )),
        TokenCheck::Unknown => Err(Reply::oauth_error(
            401,
            "invalid_token",
            "Invalid or missing mfa_token",
        )),
    }
}

/// `GET /mfa/authenticators`.
pub(crate) fn authenticators(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = api_token(shared, req) {
        return reply;
    }
    let list = shared.lock().mfa.authenticators.clone();
    Reply::json(200, &Value::Array(list))
}

/// `DELETE /mfa/authenticators/{id}` (`id` as it appears in the path, percent-encoded):
/// 204 when the authenticator was enrolled, else 404.
pub(crate) fn delete_authenticator(shared: &Shared, req: &RecordedRequest, id: &str) -> Reply {
    if let Err(reply) = api_token(shared, req) {
        return reply;
    }
    let id = url::form_urlencoded::parse(format!("id={id}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut state = shared.lock();
    let before = state.mfa.authenticators.len();
    state
        .mfa
        .authenticators
        .retain(|a| a.get("id").and_then(Value::as_str) != Some(id.as_str()));
    if state.mfa.authenticators.len() == before {
        return Reply::oauth_error(404, "not_found", "Authenticator not found");
    }
    Reply {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// `POST /mfa/associate`.
pub(crate) fn associate(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = api_token(shared, req) {
        return reply;
    }
    let list = |name: &str| -> Vec<String> {
        form(req, name)
            .and_then(|v| serde_json::from_str(v).ok())
            .unwrap_or_default()
    };
    let types = list("authenticator_types");
    let mut state = shared.lock();
    let recovery_codes = vec![state.mfa.recovery_code.clone()];
    match types.first().map(String::as_str) {
        Some("otp") => {
            let secret = "JBSWY3DPEHPK3PXP";
            state.mfa.authenticators.push(json!({"id": format!("totp|dev_{}", &random_token()[..8]), "authenticator_type": "otp", "active": false}));
            Reply::json(
                200,
                &json!({
                    "authenticator_type": "otp",
                    "secret": secret,
                    "barcode_uri": format!("otpauth://totp/emulator:user?secret={secret}&issuer=emulator"),
                    "recovery_codes": recovery_codes,
                }),
            )
        }
        Some("oob") => {
            let channels = list("oob_channels");
            let channel = channels.first().map(String::as_str).unwrap_or("sms");
            let member = if channel == "email" {
                "email"
            } else {
                "phone_number"
            };
            if form(req, member).is_none() {
                return Reply::oauth_error(400, "invalid_request", &format!("Missing {member}"));
            }
            let (oob_code, binding) = (random_token(), digits());
            state.mfa.oob.insert(oob_code.clone(), binding.clone());
            state.mfa.last_binding_code = Some(binding);
            state.mfa.authenticators.push(json!({"id": format!("{channel}|dev_{}", &random_token()[..8]), "authenticator_type": "oob", "oob_channel": channel, "active": false}));
            Reply::json(
                200,
                &json!({
                    "authenticator_type": "oob",
                    "oob_channel": channel,
                    "oob_code": oob_code,
                    "binding_method": "prompt",
                    "recovery_codes": recovery_codes,
                }),
            )
        }
        _ => Reply::oauth_error(400, "invalid_request", "Unsupported authenticator_types"),
    }
}

/// `POST /mfa/challenge`.
pub(crate) fn challenge(shared: &Shared, req: &RecordedRequest) -> Reply {
    if let Err(reply) = authenticate_client(shared, req) {
        return reply;
    }
    match check_token(shared, form(req, "mfa_token")) {
        TokenCheck::Valid(_) => {}
        TokenCheck::Expired => {
            return Reply::oauth_error(401, "expired_token", "mfa_token is expired");
        }
        TokenCheck::Unknown => {
            return Reply::oauth_error(401, "invalid_token", "Invalid or missing mfa_token");
        }
    }
    match form(req, "challenge_type") {
        Some("otp") => Reply::json(200, &json!({"challenge_type": "otp"})),
        Some("oob") => {
            let (oob_code, binding) = (random_token(), digits());
            let mut state = shared.lock();
            state.mfa.oob.insert(oob_code.clone(), binding.clone());
            state.mfa.last_binding_code = Some(binding);
            Reply::json(
                200,
                &json!({"challenge_type": "oob", "oob_code": oob_code, "binding_method": "prompt"}),
            )
        }
        _ => Reply::oauth_error(400, "invalid_request", "challenge_type must be otp or oob"),
    }
}

/// The three MFA grants at `/oauth/token`.
pub(crate) fn mfa_grant(shared: &Shared, req: &RecordedRequest, grant: &str) -> Reply {
    let entry = match check_token(shared, form(req, "mfa_token")) {
        TokenCheck::Valid(e) => e,
        TokenCheck::Expired => {
            return Reply::oauth_error(403, "expired_token", "mfa_token is expired");
        }
        TokenCheck::Unknown => {
            return Reply::oauth_error(403, "invalid_grant", "Malformed mfa_token");
        }
    };
    let mut new_recovery_code = None;
    {
        let mut state = shared.lock();
        let ok = match grant {
            crate::MFA_OTP_GRANT_TYPE => form(req, "otp") == Some(state.mfa.otp.as_str()),
            crate::MFA_OOB_GRANT_TYPE => {
                let Some(oob_code) = form(req, "oob_code") else {
                    return Reply::oauth_error(400, "invalid_request", "Missing oob_code");
                };
                let ok =
                    state.mfa.oob.get(oob_code).map(String::as_str) == form(req, "binding_code");
                if ok {
                    state.mfa.oob.remove(oob_code);
                }
                ok
            }
            _ => {
                let ok = form(req, "recovery_code") == Some(state.mfa.recovery_code.as_str());
                if ok {
                    // Single use: the next one comes back.
                    let next = recovery_code();
                    state.mfa.recovery_code = next.clone();
                    new_recovery_code = Some(next);
                }
                ok
            }
        };
        if !ok {
            let what = match grant {
                crate::MFA_OTP_GRANT_TYPE => "Invalid otp_code.",
                crate::MFA_OOB_GRANT_TYPE => "Invalid binding_code.",
                _ => "Invalid recovery_code.",
            };
            return Reply::oauth_error(403, "invalid_grant", what);
        }
    }
    let mut user = shared.lock().user.clone();
    user.insert("sub".into(), entry.sub.clone().into());
    let mut body = issue_tokens(shared, &user, &entry.scope, entry.audience, None, None);
    if let Some(code) = new_recovery_code {
        body.insert("recovery_code".into(), code.into());
    }
    Reply::json(200, &Value::Object(body))
}
