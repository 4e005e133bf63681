//! Multiple custom domains (MCD): one application served on several Auth0 custom domains of
//! one tenant, the domain of each request picked by the application's resolver.
//!
//! Auth0 gives every custom domain its own issuer (`https://login.a.example/` and
//! `https://login.b.example/` are different issuers of the same tenant), so everything an
//! operation does happens on one domain: discovery, the token endpoint, the JWKS, the logout
//! URL. This module holds the decisions, as pure functions:
//!
//! - [`Domain::parse`]: what the resolver returned, validated and normalised (an origin:
//!   `https://host[:port]`, plain `http` only on loopback, no path, query, fragment or
//!   credentials);
//! - [`session_binding`]: whether a stored session belongs to a domain — the domain it
//!   recorded, else the issuer of its user's ID token; a session of another domain is *no
//!   session* on this one;
//! - [`issuer_is_on_domain`] and [`logout_token_on_domain`]: whether an issuer (a logout
//!   token's, before any key is fetched) is the domain's;
//! - [`OnDomain`]: the operation wrapper that applies them — it stamps the sessions and login
//!   transactions an operation writes with the domain, hides a session of another domain,
//!   refuses a login transaction started on another domain (nothing consumed), and never
//!   deletes another domain's session.
//!
//! The drivers run every operation of a resolver-configured client on the core of the
//! resolved domain ([`Core::on_domain`](crate::Core::on_domain)), wrapped in [`OnDomain`].

use crate::ErrorCode;
use crate::effect::{Effect, Input, Operation, Step, UnexpectedInput};
use crate::session::StateData;
use crate::time::UnixTime;
use serde_json::Value;
use std::net::IpAddr;
use url::Url;

/// The session key that records the domain a session was created on (the key the Python SDK
/// uses too). Absent in sessions written without a resolver.
pub const SESSION_DOMAIN_KEY: &str = "domain";

/// The longest domain accepted from a resolver (a DNS name is at most 253 characters; a
/// scheme and a port add a few).
pub const MAX_DOMAIN_LEN: usize = 300;

/// A validated, normalised custom domain: the origin `scheme://host[:port]` (host lowercased,
/// IDNA-encoded, default port dropped). Two spellings of one domain compare equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain {
    origin: String,
}

impl Domain {
    /// Validates and normalises a domain as a resolver returns it: `login.example.com`,
    /// `login.example.com:8443`, `https://login.example.com` (a trailing `/` is allowed), or
    /// `http://127.0.0.1:4000` for a local emulator (plain http only for `localhost`,
    /// `127.0.0.0/8` and `[::1]`). A path, query, fragment or credentials are refused: a
    /// custom domain is a host.
    pub fn parse(raw: &str) -> Result<Domain, DomainError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(DomainError::invalid("is empty"));
        }
        if raw.len() > MAX_DOMAIN_LEN {
            return Err(DomainError::invalid("is too long"));
        }
        if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(DomainError::invalid("contains whitespace"));
        }
        let with_scheme = if raw.contains("://") {
            raw.to_owned()
        } else {
            format!("https://{raw}")
        };
        let url = Url::parse(&with_scheme).map_err(|_| DomainError::invalid("is not a host"))?;
        let host = url.host().ok_or(DomainError::invalid("has no host"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DomainError::invalid("carries credentials"));
        }
        if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
            return Err(DomainError::invalid(
                "has a path, query or fragment (a custom domain is a host)",
            ));
        }
        let loopback = match host {
            url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
            url::Host::Ipv4(ip) => IpAddr::V4(ip).is_loopback(),
            url::Host::Ipv6(ip) => IpAddr::V6(ip).is_loopback(),
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => {
                return Err(DomainError::invalid(
                    "must use https (plain http only on loopback)",
                ));
            }
        }
        Ok(Domain {
            origin: url.origin().ascii_serialization(),
        })
    }

    /// The domain of an issuer URL (`https://login.example.com/`): its origin, whatever its
    /// path. `None` when the issuer is not an http(s) URL with a host.
    pub fn of_issuer(issuer: &str) -> Option<Domain> {
        let url = Url::parse(issuer).ok()?;
        if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
            return None;
        }
        if !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        Some(Domain {
            origin: url.origin().ascii_serialization(),
        })
    }

    /// The normalised origin, e.g. `https://login.example.com` (no trailing slash): what
    /// sessions and transactions record, and what the domain's configuration uses.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

impl std::fmt::Display for Domain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.origin)
    }
}

/// Whether a stored session belongs to a domain: the answer of [`session_binding`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionBinding {
    /// The session was created on this domain: it is the session.
    ThisDomain,
    /// The session belongs to another domain: on this one there is no session.
    OtherDomain,
    /// The session names no domain and no issuer: it cannot be bound to any domain, so on a
    /// resolver-configured client there is no session.
    Unbound,
}

/// The domain a session belongs to: the one it recorded ([`SESSION_DOMAIN_KEY`], in any
/// spelling [`Domain::parse`] accepts), else the domain of its user's `iss` (sessions written
/// before a resolver was configured, or by an SDK that does not record it).
pub fn session_domain(session: &StateData) -> Option<Domain> {
    match session.extra.get(SESSION_DOMAIN_KEY) {
        Some(Value::String(d)) => Domain::parse(d).ok(),
        // A recorded domain that is not a string is recorded but unusable: bound to nothing.
        Some(Value::Null) | None => session.iss().and_then(Domain::of_issuer),
        Some(_) => None,
    }
}

/// Whether `session` belongs to `domain` ([`session_domain`]).
pub fn session_binding(session: &StateData, domain: &Domain) -> SessionBinding {
    match session_domain(session) {
        Some(d) if d == *domain => SessionBinding::ThisDomain,
        Some(_) => SessionBinding::OtherDomain,
        None => SessionBinding::Unbound,
    }
}

/// Whether `issuer` is an issuer of `domain` (same origin).
pub fn issuer_is_on_domain(issuer: &str, domain: &Domain) -> bool {
    Domain::of_issuer(issuer).as_ref() == Some(domain)
}

/// Whether a logout token, read *without* verifying it, names an issuer of `domain`: checked
/// before any discovery or key is fetched, so that a token of another domain (or garbage)
/// costs no request. The token is verified afterwards against the domain's keys and exact
/// discovered issuer as usual.
pub fn logout_token_on_domain(logout_token: &str, domain: &Domain) -> bool {
    crate::jose::jws::unverified_claims(logout_token)
        .and_then(|claims| match claims.get("iss") {
            Some(Value::String(iss)) => Some(issuer_is_on_domain(iss, domain)),
            _ => None,
        })
        .unwrap_or(false)
}

/// A domain-resolution or domain-binding failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// The resolver returned something that is not a usable custom domain (the value itself
    /// is not repeated: it may come from a request header).
    #[error("the domain resolver returned an invalid domain: it {reason}")]
    Invalid {
        /// Why it was refused.
        reason: &'static str,
    },
    /// The resolver failed (its own error's message).
    #[error("the domain resolver failed: {message}")]
    Resolver {
        /// The resolver's error message.
        message: String,
    },
    /// The login transaction of this callback was started on another domain (or before a
    /// resolver was configured): the callback is refused and the transaction left as it is.
    #[error("the login transaction was started on another domain")]
    TransactionOnOtherDomain,
    /// An operation built for one domain was run while the resolver named another.
    #[error("the operation was built for another domain than the one resolved")]
    OperationOnOtherDomain,
}

impl DomainError {
    fn invalid(reason: &'static str) -> Self {
        DomainError::Invalid { reason }
    }

    /// The stable code: `domain_resolver_error` for a resolver failure or an invalid domain,
    /// `domain_mismatch` for something of another domain.
    pub fn code(&self) -> ErrorCode {
        match self {
            DomainError::Invalid { .. } | DomainError::Resolver { .. } => {
                ErrorCode::DomainResolverError
            }
            DomainError::TransactionOnOtherDomain | DomainError::OperationOnOtherDomain => {
                ErrorCode::DomainMismatch
            }
        }
    }
}

/// The error of an operation run through [`OnDomain`]: the operation's own, or the domain
/// binding's.
#[derive(Debug, thiserror::Error)]
pub enum DomainBound<E> {
    /// The wrapped operation failed.
    #[error(transparent)]
    Operation(E),
    /// The domain binding refused (a login transaction of another domain).
    #[error(transparent)]
    Domain(DomainError),
}

impl<E: From<UnexpectedInput>> From<UnexpectedInput> for DomainBound<E> {
    fn from(e: UnexpectedInput) -> Self {
        DomainBound::Operation(E::from(e))
    }
}

/// What the wrapped operation is waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Awaiting {
    Other,
    Session,
    Transaction,
}

/// An operation bound to one domain. It passes every effect through, except that:
///
/// - a session read that belongs to another domain (or to none, [`session_binding`]) reaches
///   the operation as *no session* — so it is never shown, refreshed, linked or logged out
///   here, and its tokens are never sent to this domain's endpoints;
/// - a session or login transaction written is stamped with the domain;
/// - a login transaction of another domain ends the operation with
///   [`DomainError::TransactionOnOtherDomain`] before the operation sees it (it is neither
///   used nor deleted);
/// - deleting the session after a session of another domain was hidden is skipped (logging
///   out of this domain does not end another domain's session).
#[derive(Debug)]
pub struct OnDomain<O> {
    op: O,
    domain: Domain,
    awaiting: Awaiting,
    /// A session of another domain was hidden from the operation (and not replaced since).
    hid_session: bool,
}

impl<O> OnDomain<O> {
    /// `op` (built by the domain's core), bound to `domain`.
    pub fn new(op: O, domain: Domain) -> Self {
        OnDomain {
            op,
            domain,
            awaiting: Awaiting::Other,
            hid_session: false,
        }
    }

    /// The domain the operation is bound to.
    pub fn domain(&self) -> &Domain {
        &self.domain
    }
}

impl<O: Operation> Operation for OnDomain<O> {
    type Output = O::Output;
    type Error = DomainBound<O::Error>;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<O::Output, Self::Error> {
        let input = match (
            std::mem::replace(&mut self.awaiting, Awaiting::Other),
            input,
        ) {
            (Awaiting::Session, Input::Session(Some(session))) => {
                if session_binding(&session, &self.domain) == SessionBinding::ThisDomain {
                    Input::Session(Some(session))
                } else {
                    self.hid_session = true;
                    Input::Session(None)
                }
            }
            (Awaiting::Transaction, Input::Transaction(Some(tx))) => {
                let same = tx
                    .domain
                    .as_deref()
                    .and_then(|d| Domain::parse(d).ok())
                    .is_some_and(|d| d == self.domain);
                if !same {
                    return Step::Done(Err(DomainBound::Domain(
                        DomainError::TransactionOnOtherDomain,
                    )));
                }
                Input::Transaction(Some(tx))
            }
            (_, input) => input,
        };
        let mut input = input;
        loop {
            let effect = match self.op.step(input, now) {
                Step::Done(result) => return Step::Done(result.map_err(DomainBound::Operation)),
                Step::Effect(effect) => effect,
            };
            return Step::Effect(match effect {
                Effect::LoadSession => {
                    self.awaiting = Awaiting::Session;
                    Effect::LoadSession
                }
                Effect::LoadTransaction { key } => {
                    self.awaiting = Awaiting::Transaction;
                    Effect::LoadTransaction { key }
                }
                Effect::SaveSession(mut session) => {
                    session.extra.insert(
                        SESSION_DOMAIN_KEY.to_owned(),
                        Value::String(self.domain.origin.clone()),
                    );
                    self.hid_session = false;
                    Effect::SaveSession(session)
                }
                Effect::SaveTransaction {
                    key,
                    mut transaction,
                } => {
                    transaction.domain = Some(self.domain.origin.clone());
                    Effect::SaveTransaction { key, transaction }
                }
                Effect::DeleteSession if self.hid_session => {
                    // Not this domain's session: leave it, and tell the operation it is done.
                    input = Input::Done;
                    continue;
                }
                other => other,
            });
        }
    }
}

/// An allowlist of custom domains for a resolver that picks the domain from the request's
/// `Host` header. The header is chosen by the client: a resolver must never use it as the
/// domain unchecked (an attacker would point the SDK at a tenant of their own). This maps a
/// request host to one of the configured domains, and refuses every other host.
///
/// ```
/// use auth0_server_protocol::mcd::DomainAllowlist;
/// let domains = DomainAllowlist::new(["login.a.example", "login.b.example"])?;
/// assert_eq!(domains.resolve(Some("LOGIN.B.EXAMPLE")).unwrap().origin(), "https://login.b.example");
/// assert!(domains.resolve(Some("evil.example")).is_err());
/// assert!(domains.resolve(None).is_err());
/// # Ok::<(), auth0_server_protocol::mcd::DomainError>(())
/// ```
#[derive(Clone, Debug)]
pub struct DomainAllowlist {
    domains: Vec<Domain>,
}

impl DomainAllowlist {
    /// The allowed domains, each as [`Domain::parse`] accepts it.
    pub fn new<I, D>(domains: I) -> Result<Self, DomainError>
    where
        I: IntoIterator<Item = D>,
        D: AsRef<str>,
    {
        let domains = domains
            .into_iter()
            .map(|d| Domain::parse(d.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DomainAllowlist { domains })
    }

    /// The allowed domain a request host (`Host` header: `host[:port]`) names, compared by
    /// host and port (the scheme is the allowed domain's). `None` or any other host is a
    /// [`DomainError::Resolver`] error.
    pub fn resolve(&self, host: Option<&str>) -> Result<Domain, DomainError> {
        let refused = || DomainError::Resolver {
            message: "the request's host is not one of the allowed custom domains".into(),
        };
        let host = host.ok_or_else(refused)?;
        if host.contains('/') || host.contains('@') {
            return Err(refused());
        }
        let wanted = host_and_port(&format!("https://{}", host.trim())).ok_or_else(refused)?;
        self.domains
            .iter()
            .find(|d| host_and_port(d.origin()).is_some_and(|hp| hp == wanted))
            .cloned()
            .ok_or_else(refused)
    }

    /// The allowed domains.
    pub fn domains(&self) -> &[Domain] {
        &self.domains
    }
}

/// `(host, explicit port)` of an URL, host normalised.
fn host_and_port(url: &str) -> Option<(String, Option<u16>)> {
    let url = Url::parse(url).ok()?;
    let host = url.host_str()?.to_owned();
    let port = url.port();
    // An explicit :443 equals none for https.
    let port = port.filter(|p| !(url.scheme() == "https" && *p == 443));
    Some((host, port))
}
