//! The session model: the JSON shape of Auth0's Python server SDK.
//!
//! Loading is tolerant: unknown fields are ignored, optional fields may be missing or `null`,
//! numbers written as floats (as JavaScript does) are accepted, and a token set stored with a
//! `null` audience (a known defect of another SDK) is read under the `default` key. A session
//! written by another implementation therefore loads.

use crate::config::AUDIENCE_DEFAULT_KEY;
use crate::scope::{self, Scopes};
use crate::secret::Secret;
use crate::time::UnixTime;
use crate::token_response::{TokenResponse, TokenType};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::time::Duration;

mod budget;
pub mod revocation;
mod update;
pub use budget::fit_within;
pub use update::{
    KeepRotation, Merged, SaveFailed, SessionIdentity, SessionUpdate, UpdateNext, Updated,
    after_update,
};

/// The user's ID-token claims, as stored in the session.
pub type UserClaims = Map<String, Value>;

/// Everything the SDK keeps for a logged-in user (the "state data").
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct StateData {
    /// The user's claims from the ID token.
    #[serde(default)]
    pub user: Option<UserClaims>,
    /// The last ID token received.
    #[serde(default)]
    pub id_token: Option<Secret>,
    /// The refresh token, when `offline_access` was granted.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// Access tokens, one per audience key and scope set.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub token_sets: Vec<TokenSet>,
    /// Access tokens for federated connections (token vault).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub connection_token_sets: Vec<ConnectionTokenSet>,
    /// SDK-internal bookkeeping.
    #[serde(default, deserialize_with = "null_as_default")]
    pub internal: Internal,
    /// Top-level keys this SDK does not know (written by another SDK or a newer version,
    /// e.g. the Python SDK's `domain`): kept as they are and written back, so sharing a
    /// session with another implementation loses nothing.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// SDK-internal session data, not returned by `get_session`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Internal {
    /// The Auth0 session id (`sid` claim), used by back-channel logout.
    #[serde(default, deserialize_with = "null_as_default")]
    pub sid: String,
    /// When the session was created (Unix seconds).
    #[serde(default, deserialize_with = "lenient_u64")]
    pub created_at: u64,
    /// When the session was last used (Unix seconds); our own field, ignored by other readers.
    /// Absent in sessions written by other implementations.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_u64"
    )]
    pub last_active_at: Option<u64>,
    /// The IPSIE session ceiling: the `session_expiry` claim of the login's ID token (Unix
    /// seconds), after which the session ends whatever its other limits say. Written where
    /// Auth0's Python SDK writes it, so either SDK enforces the other's.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient_opt_u64"
    )]
    pub session_expires_at: Option<u64>,
    /// Keys of the `internal` block this SDK does not know (e.g. the Python SDK's
    /// `session_expires_at`), kept and written back.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// An access token for one audience key and scope set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenSet {
    /// The audience key: the requested audience, else the configured default audience, else
    /// the literal `default`.
    #[serde(
        default = "default_audience",
        deserialize_with = "null_as_default_audience"
    )]
    pub audience: String,
    /// The access token.
    pub access_token: Secret,
    /// The granted scope: the token endpoint's `scope`, or the requested one when it sent
    /// none.
    #[serde(default)]
    pub scope: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub expires_at: u64,
    /// The scope that was requested for this token set, when the server granted a different
    /// one: the token set is found again by what was asked for, so a server that grants fewer
    /// scopes than requested still gives a cache hit next time. `None` means "the granted
    /// scope" (sessions written by other SDKs, or a grant equal to the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_scope: Option<String>,
    /// How the access token is presented: `DPoP` for a token bound to the client's DPoP key.
    /// Written only when not `Bearer`, so a bearer session keeps the peers' exact shape and
    /// sessions written before (or by the peers) read as `Bearer`.
    #[serde(default, skip_serializing_if = "TokenType::is_bearer")]
    pub token_type: TokenType,
}

impl TokenSet {
    /// The scope the token set is matched by: the requested scope when it was recorded, else
    /// the granted one.
    pub fn matching_scope(&self) -> &str {
        self.requested_scope
            .as_deref()
            .or(self.scope.as_deref())
            .unwrap_or("")
    }
}

/// An access token for a federated connection (e.g. `google-oauth2`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionTokenSet {
    /// The connection name.
    pub connection: String,
    /// The login hint it was requested with, if any.
    #[serde(default)]
    pub login_hint: Option<String>,
    /// The connection's access token.
    pub access_token: Secret,
    /// The granted scope.
    #[serde(default)]
    pub scope: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub expires_at: u64,
}

/// A session as `get_session` returns it: the state data without its `internal` block.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Session {
    /// The user's claims.
    pub user: Option<UserClaims>,
    /// The last ID token received.
    pub id_token: Option<Secret>,
    /// The refresh token.
    pub refresh_token: Option<Secret>,
    /// Access tokens per audience and scope.
    pub token_sets: Vec<TokenSet>,
    /// Connection access tokens.
    pub connection_token_sets: Vec<ConnectionTokenSet>,
}

impl From<StateData> for Session {
    fn from(s: StateData) -> Self {
        Session {
            user: s.user,
            id_token: s.id_token,
            refresh_token: s.refresh_token,
            token_sets: s.token_sets,
            connection_token_sets: s.connection_token_sets,
        }
    }
}

/// How long a session lives, decided from the times inside it: it ends at the
/// earlier of `last_active_at + inactivity` (rolling), `created_at + absolute`, and the IPSIE
/// ceiling `internal.session_expires_at` less [`SESSION_EXPIRY_LEEWAY`]. Stores
/// enforce this themselves, so a replayed cookie or a forgotten server-side entry past its
/// limits is no session, whatever the browser or the database still holds.
///
/// ```
/// use auth0_server_protocol::session::{SessionLifetime, StateData};
/// use auth0_server_protocol::time::UnixTime;
/// use std::time::Duration;
/// let day = Duration::from_secs(86_400);
/// let lifetime = SessionLifetime { absolute: 7 * day, inactivity: 3 * day };
/// let mut s = StateData::default();
/// s.internal.created_at = 1_000;
/// s.internal.last_active_at = Some(2_000);
/// assert_eq!(lifetime.expires_at(&s), UnixTime::from_secs(2_000 + 3 * 86_400));
/// assert!(lifetime.is_live(&s, UnixTime::from_secs(2_000 + 3 * 86_400 - 1)));
/// assert!(lifetime.needs_touch(&s, UnixTime::from_secs(2_061)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLifetime {
    /// Longest life from creation (default 7 days; whole seconds count).
    pub absolute: Duration,
    /// Longest time without use (default 3 days; whole seconds count).
    pub inactivity: Duration,
}

/// How long before an IPSIE `session_expiry` ceiling a session already counts as ended (as
/// Auth0's SDKs do: a request started just before the ceiling does not outlive it).
pub const SESSION_EXPIRY_LEEWAY: Duration = Duration::from_secs(30);

/// The IPSIE session ceiling an ID token sets (its `session_expiry` claim, OpenID IPSIE SL1),
/// checked at login against the token's `iat` (or `now`, when later):
///
/// * `Ok(None)`: no usable claim — absent, not an integer (a boolean is not one), or outside
///   the plausible range `0 < v < 10^10`; as Auth0's SDKs, the login goes on without a ceiling.
/// * `Ok(Some(t))`: the session ends at `t` (less [`SESSION_EXPIRY_LEEWAY`]).
/// * `Err(SessionBornExpired)`: the ceiling is within the leeway of the login itself.
pub fn session_ceiling(
    claims: &UserClaims,
    now: UnixTime,
) -> Result<Option<UnixTime>, SessionBornExpired> {
    let Some(v) = claims.get("session_expiry").and_then(Value::as_u64) else {
        return Ok(None);
    };
    if v == 0 || v >= 10_000_000_000 {
        return Ok(None);
    }
    let issued = claims
        .get("iat")
        .and_then(Value::as_u64)
        .map_or(now, UnixTime::from_secs)
        .max(now);
    if UnixTime::from_secs(v) <= issued + SESSION_EXPIRY_LEEWAY {
        return Err(SessionBornExpired);
    }
    Ok(Some(UnixTime::from_secs(v)))
}

/// The ID token's IPSIE `session_expiry` ceiling is already reached at login.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the identity provider's session ceiling (session_expiry) is already reached")]
pub struct SessionBornExpired;

/// Default absolute session lifetime: 7 days.
pub const DEFAULT_ABSOLUTE_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Default inactivity limit: 3 days.
pub const DEFAULT_INACTIVITY_LIMIT: Duration = Duration::from_secs(3 * 24 * 3600);
/// A session is re-stamped as active (its rolling expiry extended) at most this often, so a
/// store does not rewrite it on every request.
pub const TOUCH_INTERVAL: Duration = Duration::from_secs(60);

impl Default for SessionLifetime {
    fn default() -> Self {
        SessionLifetime {
            absolute: DEFAULT_ABSOLUTE_LIFETIME,
            inactivity: DEFAULT_INACTIVITY_LIMIT,
        }
    }
}

impl SessionLifetime {
    /// When the session ends. A session without `last_active_at` (written by another
    /// implementation) counts from its creation.
    pub fn expires_at(&self, state: &StateData) -> UnixTime {
        let created = UnixTime::from_secs(state.internal.created_at);
        let last_active = state
            .internal
            .last_active_at
            .map_or(created, UnixTime::from_secs);
        let ceiling = state
            .internal
            .session_expires_at
            .map_or(UnixTime::from_secs(u64::MAX), |at| {
                UnixTime::from_secs(at.saturating_sub(SESSION_EXPIRY_LEEWAY.as_secs()))
            });
        (last_active + self.inactivity)
            .min(created + self.absolute)
            .min(ceiling)
    }

    /// Whether the session is still valid at `now`.
    pub fn is_live(&self, state: &StateData, now: UnixTime) -> bool {
        self.expires_at(state) > now
    }

    /// Whether the session was last stamped active more than [`TOUCH_INTERVAL`] ago, so its
    /// rolling expiry should be extended.
    pub fn needs_touch(&self, state: &StateData, now: UnixTime) -> bool {
        let last_active = state
            .internal
            .last_active_at
            .unwrap_or(state.internal.created_at);
        now.saturating_duration_since(UnixTime::from_secs(last_active)) > TOUCH_INTERVAL
    }
}

/// Largest session JSON the SDK will parse (1 MiB).
pub const MAX_SESSION_JSON: usize = 1 << 20;

/// Why a stored session could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionDecodeError {
    /// The JSON is larger than [`MAX_SESSION_JSON`].
    #[error("session data is too large")]
    TooLarge,
    /// Not a session (the parser's position only; never the content).
    #[error("session data is not valid session JSON (line {line}, column {column})")]
    Invalid {
        /// Line of the error.
        line: usize,
        /// Column of the error.
        column: usize,
    },
}

impl StateData {
    /// The session as a store writes it at `now`: created now when it never was
    /// (`internal.created_at` 0), and last active now. Every store stamps what it writes with
    /// this.
    pub fn written_at(&self, now: UnixTime) -> StateData {
        let mut state = self.clone();
        if state.internal.created_at == 0 {
            state.internal.created_at = now.as_secs();
        }
        state.internal.last_active_at = Some(now.as_secs());
        state
    }

    /// Parses session JSON, tolerating other implementations' output.
    pub fn from_json(bytes: &[u8]) -> Result<StateData, SessionDecodeError> {
        if bytes.len() > MAX_SESSION_JSON {
            return Err(SessionDecodeError::TooLarge);
        }
        serde_json::from_slice(bytes).map_err(|e| SessionDecodeError::Invalid {
            line: e.line(),
            column: e.column(),
        })
    }

    /// Serialises the session as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data structures to a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The `sub` claim of the user, if any.
    pub fn sub(&self) -> Option<&str> {
        self.user.as_ref()?.get("sub")?.as_str()
    }

    /// The `iss` claim of the user, if any.
    pub fn iss(&self) -> Option<&str> {
        self.user.as_ref()?.get("iss")?.as_str()
    }
}

fn default_audience() -> String {
    AUDIENCE_DEFAULT_KEY.to_owned()
}

fn null_as_empty<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn null_as_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_as_default_audience<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(default_audience))
}

/// A Unix time written as an integer, a float (JavaScript) or `null`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Number {
    U(u64),
    F(f64),
}

impl Number {
    fn to_u64(&self) -> u64 {
        match *self {
            Number::U(u) => u,
            // Saturating float-to-int conversion: NaN and negatives become 0.
            Number::F(f) => f as u64,
        }
    }
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(lenient_opt_u64(d)?.unwrap_or(0))
}

fn lenient_opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(Option::<Number>::deserialize(d)?.map(|n| n.to_u64()))
}

/// The token set a token response gives for `audience_key`, asked with `requested_scope`: the
/// granted scope is the response's `scope` (or the requested one when it sent none), and the
/// requested scope is kept beside it when the two differ.
pub fn token_set(
    audience_key: &str,
    requested_scope: Option<&str>,
    response: &TokenResponse,
    expires_at: u64,
) -> TokenSet {
    let granted = response
        .scope
        .clone()
        .or_else(|| requested_scope.map(str::to_owned));
    let differs = !scope::same_set(
        granted.as_deref().unwrap_or(""),
        requested_scope.unwrap_or(""),
    );
    TokenSet {
        audience: audience_key.to_owned(),
        access_token: response.access_token.clone(),
        requested_scope: requested_scope.filter(|_| differs).map(str::to_owned),
        scope: granted,
        expires_at,
        token_type: response.kind(),
    }
}

/// Stores a new token set: it replaces the sets of its audience that it supersedes (those
/// matched by a subset of its own requested scopes and expiring no later), the first of them
/// in place; without one it is appended. Sets of other audiences, of scopes it does not
/// cover, and fresher ones (an answer applied late, e.g. a remembered one) stay.
pub fn store_token_set(sets: &mut Vec<TokenSet>, set: TokenSet) {
    let covers = Scopes::of(Some(set.matching_scope()));
    let superseded = |s: &TokenSet| {
        s.audience == set.audience
            && s.expires_at <= set.expires_at
            && covers.is_superset_of(&Scopes::of(Some(s.matching_scope())))
    };
    match sets.iter().position(superseded) {
        Some(first) => {
            let mut i = 0;
            sets.retain(|s| {
                let keep = i <= first || !superseded(s);
                i += 1;
                keep
            });
            sets[first] = set;
        }
        None => sets.push(set),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_python_sdk_session_with_nulls_and_extras() {
        let json = br#"{
            "user": {"sub": "auth0|1", "name": null, "org_id": null},
            "id_token": null, "refresh_token": "rt",
            "token_sets": [{"audience": null, "access_token": "at", "scope": null, "expires_at": 10}],
            "connection_token_sets": null,
            "domain": "tenant.auth0.com",
            "internal": {"sid": "s", "created_at": 5, "session_expires_at": null, "flags": [1]}
        }"#;
        let s = StateData::from_json(json).unwrap();
        assert_eq!(s.sub(), Some("auth0|1"));
        assert_eq!(s.token_sets[0].audience, "default");
        assert_eq!(s.token_sets[0].expires_at, 10);
        assert!(s.connection_token_sets.is_empty());
        assert_eq!(s.internal.created_at, 5);
        assert_eq!(s.refresh_token.as_ref().map(Secret::expose), Some("rt"));
        // Keys this SDK does not know survive a rewrite (I9).
        let again: Value = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(again["domain"], "tenant.auth0.com");
        assert_eq!(again["internal"]["flags"], serde_json::json!([1]));

        assert_eq!(StateData::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn the_ipsie_ceiling_ends_the_session_30_seconds_early_and_survives_a_rewrite() {
        let lifetime = SessionLifetime::default();
        let mut s = StateData::default();
        s.internal.created_at = 1_000;
        s.internal.session_expires_at = Some(2_000);
        assert_eq!(lifetime.expires_at(&s), UnixTime::from_secs(1_970));
        assert!(lifetime.is_live(&s, UnixTime::from_secs(1_969)));
        assert!(!lifetime.is_live(&s, UnixTime::from_secs(1_970)));
        // Where the Python SDK writes it, so each SDK enforces the other's ceiling.
        let json: Value = serde_json::from_slice(&s.to_json()).unwrap();
        assert_eq!(json["internal"]["session_expires_at"], 2_000);
        let python = br#"{"internal": {"sid": "s", "created_at": 5, "session_expires_at": 99.0}}"#;
        let read = StateData::from_json(python).unwrap();
        assert_eq!(read.internal.session_expires_at, Some(99));
    }

    /// Simulation seed 53037: a broad answer applied late (remembered, or published by
    /// another instance) must not drop a narrower token set that outlives it; one that
    /// expires no later is replaced (the refresh supersedes it).
    #[test]
    fn a_late_broad_answer_keeps_a_narrower_set_that_outlives_it() {
        let set = |token: &str, scope: &str, expires_at: u64| TokenSet {
            audience: "api".into(),
            access_token: Secret::new(token),
            scope: Some(scope.into()),
            expires_at,
            requested_scope: None,
            token_type: Default::default(),
        };
        let tokens = |sets: &[TokenSet]| {
            sets.iter()
                .map(|s| s.access_token.expose().to_owned())
                .collect::<Vec<_>>()
        };
        let mut sets = vec![set("narrow", "openid", 100)];
        store_token_set(&mut sets, set("broad-late", "openid read", 99));
        assert_eq!(tokens(&sets), ["narrow", "broad-late"]);
        store_token_set(&mut sets, set("broad-new", "openid read", 100));
        assert_eq!(
            tokens(&sets),
            ["broad-new"],
            "covered, no fresher: replaced"
        );
    }

    #[test]
    fn a_written_session_is_created_once_and_active_at_each_write() {
        let fresh = StateData::default().written_at(UnixTime::from_secs(100));
        assert_eq!(fresh.internal.created_at, 100);
        assert_eq!(fresh.internal.last_active_at, Some(100));
        let again = fresh.written_at(UnixTime::from_secs(250));
        assert_eq!(again.internal.created_at, 100, "creation time kept");
        assert_eq!(again.internal.last_active_at, Some(250));
    }

    #[test]
    fn loads_minimal_and_float_times() {
        let s = StateData::from_json(b"{}").unwrap();
        assert_eq!(s, StateData::default());
        let s = StateData::from_json(
            br#"{"token_sets":[{"audience":"a","access_token":"t","expires_at":1700000000.75}],"internal":{"created_at":1.5}}"#,
        )
        .unwrap();
        assert_eq!(s.token_sets[0].expires_at, 1_700_000_000);
        assert_eq!(s.internal.created_at, 1);
    }

    #[test]
    fn round_trips_through_json() {
        let s = StateData {
            user: Some(serde_json::from_str(r#"{"sub":"u"}"#).unwrap()),
            refresh_token: Some(Secret::new("rt")),
            token_sets: vec![TokenSet {
                audience: "a".into(),
                access_token: Secret::new("at"),
                scope: Some("x y".into()),
                expires_at: 9,
                requested_scope: None,
                token_type: Default::default(),
            }],
            internal: Internal {
                sid: "sid".into(),
                created_at: 1,
                last_active_at: Some(2),
                extra: Default::default(),
                session_expires_at: None,
            },
            ..Default::default()
        };
        assert_eq!(StateData::from_json(&s.to_json()).unwrap(), s);
    }

    #[test]
    fn invalid_json_reports_position_not_content() {
        let err = StateData::from_json(br#"{"refresh_token": 12345678, "x"#).unwrap_err();
        assert!(!err.to_string().contains("12345678"));
    }

    #[test]
    fn debug_redacts_tokens() {
        let s = StateData {
            refresh_token: Some(Secret::new("refresh-secret")),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("refresh-secret"));
    }
}
