//! The emulator's mutable state and what the server thread shares with the handle.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Map, Value};

use crate::{BackchannelDelivery, EmulatorConfig, Failure, MfaPolicy, RecordedRequest};

/// A login remembered between `/authorize` and the code exchange.
#[derive(Clone, Debug)]
pub(crate) struct CodeEntry {
    pub(crate) redirect_uri: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) code_challenge_method: String,
    pub(crate) scope: String,
    pub(crate) audience: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) org: Option<(String, String)>,
    pub(crate) authorization_details: Option<String>,
    pub(crate) sid: String,
    pub(crate) expires_at: u64,
}

/// A refresh token's server-side record.
#[derive(Clone, Debug)]
pub(crate) struct RefreshEntry {
    pub(crate) family: u64,
    pub(crate) sub: String,
    pub(crate) scope: String,
    pub(crate) audience: Option<String>,
    pub(crate) sid: String,
    pub(crate) org: Option<(String, String)>,
    pub(crate) rotated: bool,
}

/// A backchannel authentication started at `/bc-authorize`, until approved, denied or
/// expired.
#[derive(Clone, Debug)]
pub(crate) struct CibaEntry {
    pub(crate) scope: String,
    pub(crate) audience: Option<String>,
    pub(crate) authorization_details: Option<Value>,
    #[allow(dead_code)]
    pub(crate) binding_message: String,
    pub(crate) expires_at: u64,
    /// What the next polls are answered with, in order (then: still pending).
    pub(crate) script: std::collections::VecDeque<crate::CibaStep>,
}

/// Mutable emulator state.
pub(crate) struct State {
    pub(crate) requests: Vec<RecordedRequest>,
    pub(crate) failures: Vec<(String, Failure, usize)>,
    pub(crate) current_key: usize,
    pub(crate) previous_key: Option<usize>,
    pub(crate) user: Map<String, Value>,
    pub(crate) authorize_error: Option<(String, String)>,
    pub(crate) refresh_tokens: HashMap<String, RefreshEntry>,
    pub(crate) revoked_families: HashSet<u64>,
    pub(crate) next_family: u64,
    pub(crate) reuse_detections: usize,
    pub(crate) codes: HashMap<String, CodeEntry>,
    pub(crate) par: HashMap<String, (Vec<(String, String)>, u64)>,
    /// Auth0 sessions (`sid` → the user's `sub`): one per login at `/authorize` and per
    /// minted refresh-token grant, until logout or an admin end-session.
    pub(crate) sessions: HashMap<String, String>,
    /// Where back-channel logout tokens are delivered.
    pub(crate) backchannel_logout_uri: Option<String>,
    /// Every back-channel logout delivery attempted, in order.
    pub(crate) deliveries: Vec<BackchannelDelivery>,
    /// Multi-factor policies of the refresh-token grant.
    pub(crate) mfa_policies: Vec<MfaPolicy>,
    /// The MFA API's state: issued `mfa_token`s, authenticators, live codes.
    pub(crate) mfa: crate::server::mfa::MfaState,
    /// `jti`s of the client assertions accepted, with their `exp`: a replay is refused.
    pub(crate) assertion_jtis: HashMap<String, u64>,
    /// Every client assertion `jti` accepted, in order.
    pub(crate) accepted_assertions: Vec<String>,
    /// Backchannel authentications in progress, by `auth_req_id`.
    pub(crate) ciba: HashMap<String, CibaEntry>,
    /// The script each new backchannel authentication follows (default: approved at the
    /// first poll).
    pub(crate) ciba_script: Vec<crate::CibaStep>,
    /// Live passwordless codes: (connection, recipient) → (code, expiry).
    pub(crate) passwordless_codes: HashMap<(String, String), (String, u64)>,
    /// Every passwordless message "sent", in order.
    pub(crate) passwordless_messages: Vec<crate::PasswordlessMessage>,
    /// Every account (un)linking request `/authorize` accepted, in order.
    pub(crate) account_links: Vec<crate::AccountLinkRequest>,
    /// DPoP: replay record, nonces, the bearer-answer switch, accepted proofs.
    pub(crate) dpop: crate::server::dpop::DpopState,
    /// The My Account API: connected accounts, connect flows, authentication methods.
    pub(crate) my_account: crate::server::my_account::MyAccountState,
    /// The passkey API's state: live challenges, registered credentials.
    pub(crate) passkey: crate::server::passkey::PasskeyState,
}

/// What the server thread and the handle share.
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    pub(crate) base_url: String,
    /// `https://127.0.0.1:PORT` of the TLS listener, when it runs.
    pub(crate) tls_base_url: Option<String>,
    /// The TLS listener's open connections (see `crate::tls`).
    pub(crate) tls_peers: crate::tls::Peers,
    /// The tenant's state: shared by the emulator and its custom domains
    /// ([`crate::Emulator::custom_domain`]).
    pub(crate) state: Arc<Mutex<State>>,
}

impl Shared {
    /// The state, even after a panic on another thread while it was held.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not poison the emulator for everyone else.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The issuer (`iss` of every token): the base URL, the shape's issuer path, and a
    /// trailing slash when the shape has one (Auth0: `{base}/`).
    pub(crate) fn issuer(&self) -> String {
        let slash = if self.config.provider.issuer_trailing_slash {
            "/"
        } else {
            ""
        };
        format!("{}{slash}", self.issuer_base())
    }

    /// The issuer without trailing slash: where the endpoints are listed.
    pub(crate) fn issuer_base(&self) -> String {
        format!("{}{}", self.base_url, self.config.provider.issuer_path)
    }
}
