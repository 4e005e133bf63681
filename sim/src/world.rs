//! The world outside the SDK: the network (requests on the wire, answers on their way back)
//! and a model of the authorization server (discovery, JWKS, the token endpoint with MRRT and
//! refresh-token rotation with reuse detection, revocation).
//!
//! The model records what the invariants need: which refresh token each answer rotated to,
//! whether the SDK *received* that answer (its HTTP future returned it), and every reuse of a
//! spent refresh token (which revokes the whole family, as Auth0 does).

use crate::keys;
use auth0_server::{TransportError, TransportErrorKind};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

/// The tenant's origin.
pub const ORIGIN: &str = "https://tenant.sim.example";
/// The application's client id.
pub const CLIENT_ID: &str = "sim-client";
/// The application's client secret.
pub const CLIENT_SECRET: &str = "sim-client-secret";
/// The federated connection token exchange grant.
const FEDERATED_GRANT: &str =
    "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token";

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A violation of an invariant, found where it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// `I1`, `I2`, …
    pub invariant: &'static str,
    /// What happened (no secrets matter here: every token is the model's).
    pub what: String,
}

/// Where an answer goes: the HTTP future of the SDK's request.
#[derive(Default)]
pub struct Slot {
    result: Option<Result<http::Response<Vec<u8>>, TransportError>>,
    /// The refresh token the answer rotated to, if any, and its family.
    rotated_to: Option<String>,
    family: Option<usize>,
    waker: Option<Waker>,
    /// The SDK dropped the HTTP future before it returned.
    dropped: bool,
}

/// A request on the wire.
pub struct Wire {
    /// The instance that sent it.
    pub instance: usize,
    /// When the SDK sent it.
    sent_at: u64,
    /// `METHOD /path`, for the trace.
    pub label: String,
    request: Option<http::Request<Vec<u8>>>,
    /// The server's answer, once the request arrived.
    answer: Option<Answer>,
    slot: Arc<Mutex<Slot>>,
}

impl Wire {
    /// Whether the server has processed it.
    pub fn arrived(&self) -> bool {
        self.answer.is_some()
    }
}

struct Answer {
    response: http::Response<Vec<u8>>,
    rotated_to: Option<String>,
    family: Option<usize>,
}

/// One refresh token the server issued.
struct RefreshToken {
    family: usize,
    /// The token it was rotated to.
    successor: Option<String>,
    /// The SDK received the answer carrying the successor.
    successor_received: bool,
}

/// A refresh-token family (one login).
#[derive(Default)]
pub struct Family {
    /// Revoked: by reuse detection or by revocation at logout.
    pub revoked: Option<&'static str>,
    /// The newest refresh token.
    pub newest: String,
    /// Answers carrying a rotation that a fault lost (a timeout after the server processed
    /// the request): a later reuse is the documented limit, not an SDK bug.
    pub lost_by_fault: u32,
}

/// An access token the server issued.
#[derive(Clone, Debug)]
pub struct Issued {
    /// Its serial (issue order).
    pub serial: u64,
    /// Its family.
    pub family: usize,
    /// Its audience.
    pub audience: String,
    /// Its scope (space separated).
    pub scope: String,
    /// When it expires at the server (Unix seconds).
    pub expires_at: u64,
    /// When it expires as the SDK can know it: its lifetime counted from when the SDK sent
    /// the request (the SDK cannot know when the server issued it).
    pub sdk_expires_at: u64,
}

/// The model authorization server.
pub struct AuthServer {
    /// Whether refresh tokens rotate.
    pub rotation: bool,
    /// `expires_in` of access tokens.
    pub expires_in: u64,
    refresh_tokens: HashMap<String, RefreshToken>,
    /// Families, by number (one per session in the simulation).
    pub families: Vec<Family>,
    /// Access tokens issued.
    pub issued: HashMap<String, Issued>,
    serial: u64,
    /// Refresh requests processed.
    pub refreshes: u64,
}

impl AuthServer {
    fn new(rotation: bool, expires_in: u64) -> Self {
        AuthServer {
            rotation,
            expires_in,
            refresh_tokens: HashMap::new(),
            families: Vec::new(),
            issued: HashMap::new(),
            serial: 0,
            refreshes: 0,
        }
    }

    /// Starts a family (a login) and returns its first refresh token.
    pub fn new_family(&mut self) -> String {
        let family = self.families.len();
        let token = format!("rt{family}.0");
        self.refresh_tokens.insert(
            token.clone(),
            RefreshToken {
                family,
                successor: None,
                successor_received: false,
            },
        );
        self.families.push(Family {
            newest: token.clone(),
            ..Family::default()
        });
        token
    }

    /// Issues an access token (also for sessions the simulation starts with).
    pub fn issue(&mut self, family: usize, audience: &str, scope: &str, now: u64) -> Issued {
        self.serial += 1;
        let issued = Issued {
            serial: self.serial,
            family,
            audience: audience.to_owned(),
            scope: scope.to_owned(),
            expires_at: now + self.expires_in,
            sdk_expires_at: now + self.expires_in,
        };
        self.issued
            .insert(format!("at{}", self.serial), issued.clone());
        issued
    }

    /// The family of a refresh token.
    pub fn family_of(&self, refresh_token: &str) -> Option<usize> {
        self.refresh_tokens.get(refresh_token).map(|t| t.family)
    }

    /// The generation of a refresh token in its family (`rtF.G`).
    pub fn generation(refresh_token: &str) -> Option<u64> {
        refresh_token.rsplit_once('.')?.1.parse().ok()
    }

    fn handle(
        &mut self,
        request: &http::Request<Vec<u8>>,
        now: u64,
        violations: &mut Vec<Violation>,
    ) -> Answer {
        let path = request.uri().path();
        let plain = |response| Answer {
            response,
            rotated_to: None,
            family: None,
        };
        match (request.method().as_str(), path) {
            ("GET", "/.well-known/openid-configuration") => plain(json(
                200,
                &serde_json::json!({
                    "issuer": format!("{ORIGIN}/"),
                    "authorization_endpoint": format!("{ORIGIN}/authorize"),
                    "token_endpoint": format!("{ORIGIN}/oauth/token"),
                    "jwks_uri": format!("{ORIGIN}/.well-known/jwks.json"),
                    "revocation_endpoint": format!("{ORIGIN}/oauth/revoke"),
                }),
            )),
            ("GET", "/.well-known/jwks.json") => plain(json(200, keys::jwks())),
            ("POST", "/oauth/token") => self.token(&form(request), now, violations),
            ("POST", "/oauth/revoke") => {
                let form = form(request);
                if let Some(family) = form.get("token").and_then(|t| self.family_of(t)) {
                    self.families[family]
                        .revoked
                        .get_or_insert("revoked at logout");
                }
                plain(json(200, &serde_json::json!({})))
            }
            _ => plain(json(404, &serde_json::json!({"error": "not_found"}))),
        }
    }

    fn token(
        &mut self,
        form: &BTreeMap<String, String>,
        now: u64,
        violations: &mut Vec<Violation>,
    ) -> Answer {
        let refused = |family| Answer {
            response: json(
                403,
                &serde_json::json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}),
            ),
            rotated_to: None,
            family,
        };
        // The federated connection exchange spends the refresh token as its subject token
        // (reuse detection applies), without rotating it.
        let exchange = form.get("grant_type").map(String::as_str) == Some(FEDERATED_GRANT);
        if !exchange && form.get("grant_type").map(String::as_str) != Some("refresh_token") {
            return refused(None);
        }
        let spent = if exchange {
            form.get("subject_token")
        } else {
            form.get("refresh_token")
        };
        let Some(spent) = spent else {
            return refused(None);
        };
        let Some(token) = self.refresh_tokens.get(spent) else {
            return refused(None);
        };
        let family = token.family;
        if self.families[family].revoked.is_some() {
            return refused(Some(family));
        }
        if let Some(successor) = &token.successor {
            // Reuse detection: the whole family is revoked.
            let received = token.successor_received;
            let f = &mut self.families[family];
            f.revoked = Some("reuse detected");
            if received && f.lost_by_fault == 0 {
                violations.push(Violation {
                    invariant: "I1",
                    what: format!(
                        "refresh token {spent} reached the token endpoint after the SDK had received its successor {successor}: reuse detected, family {family} revoked"
                    ),
                });
            } else if !received && f.lost_by_fault == 0 {
                violations.push(Violation {
                    invariant: "I4",
                    what: format!(
                        "refresh token {spent} was spent twice (its successor {successor} never reached the SDK, and no fault lost it): reuse detected, family {family} revoked"
                    ),
                });
            }
            return refused(Some(family));
        }
        self.refreshes += 1;
        if exchange {
            let connection = form.get("connection").cloned().unwrap_or_default();
            let issued = self.issue(family, &format!("connection:{connection}"), "", now);
            return Answer {
                response: json(
                    200,
                    &serde_json::json!({
                        "access_token": format!("at{}", issued.serial),
                        "token_type": "Bearer",
                        "expires_in": self.expires_in,
                        "issued_token_type": "http://auth0.com/oauth/token-type/federated-connection-access-token",
                    }),
                ),
                rotated_to: None,
                family: Some(family),
            };
        }
        let audience = form
            .get("audience")
            .cloned()
            .unwrap_or_else(|| "default".into());
        let scope = form.get("scope").cloned().unwrap_or_default();
        let issued = self.issue(family, &audience, &scope, now);
        let mut body = serde_json::json!({
            "access_token": format!("at{}", issued.serial),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        });
        if !scope.is_empty() {
            body["scope"] = scope.into();
        }
        let mut rotated_to = None;
        if self.rotation {
            let generation = Self::generation(spent).unwrap_or(0) + 1;
            let next = format!("rt{family}.{generation}");
            body["refresh_token"] = next.clone().into();
            if let Some(t) = self.refresh_tokens.get_mut(spent) {
                t.successor = Some(next.clone());
            }
            self.refresh_tokens.insert(
                next.clone(),
                RefreshToken {
                    family,
                    successor: None,
                    successor_received: false,
                },
            );
            self.families[family].newest = next.clone();
            rotated_to = Some(next);
        }
        Answer {
            response: json(200, &body),
            rotated_to,
            family: Some(family),
        }
    }

    /// The SDK received an answer that rotated to `token`.
    fn received(&mut self, token: &str) {
        let spent = self
            .refresh_tokens
            .iter()
            .find(|(_, t)| t.successor.as_deref() == Some(token))
            .map(|(k, _)| k.clone());
        if let Some(t) = spent.and_then(|s| self.refresh_tokens.get_mut(&s)) {
            t.successor_received = true;
        }
    }
}

fn json(status: u16, body: &serde_json::Value) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(serde_json::to_vec(body).unwrap_or_default());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn form(request: &http::Request<Vec<u8>>) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(request.body())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The network and the authorization server, shared by every instance's HTTP client.
pub struct World {
    /// The authorization server.
    pub auth: AuthServer,
    /// Requests on the wire, by number.
    pub wire: BTreeMap<u64, Wire>,
    next_request: u64,
    /// Violations found by the server or the network.
    pub violations: Vec<Violation>,
    /// Families whose rotated answer the SDK dropped unread (its HTTP future was dropped).
    pub dropped_rotations: BTreeSet<usize>,
    /// Requests sent (all kinds).
    pub sent: u64,
    /// Requests answered with an injected 5xx.
    pub injected_5xx: u64,
    /// Answers delivered to an HTTP future that has not read them yet.
    pub unread: usize,
}

impl World {
    /// A world with a fresh authorization server.
    pub fn new(rotation: bool, expires_in: u64) -> Self {
        World {
            auth: AuthServer::new(rotation, expires_in),
            wire: BTreeMap::new(),
            next_request: 0,
            violations: Vec::new(),
            dropped_rotations: BTreeSet::new(),
            sent: 0,
            injected_5xx: 0,
            unread: 0,
        }
    }

    fn send(
        &mut self,
        instance: usize,
        request: http::Request<Vec<u8>>,
        sent_at: u64,
    ) -> Arc<Mutex<Slot>> {
        self.sent += 1;
        let form = form(&request);
        // I1 at the source: the SDK never sends a refresh token whose successor it received.
        for name in ["refresh_token", "subject_token"] {
            if let Some(t) = form
                .get(name)
                .and_then(|rt| self.auth.refresh_tokens.get(rt).map(|t| (rt, t)))
            {
                // A fault that lost the successor (a lost answer, a lost write) excuses it.
                if t.1.successor_received && self.auth.families[t.1.family].lost_by_fault == 0 {
                    self.violations.push(Violation {
                        invariant: "I1",
                        what: format!(
                            "instance {instance} sent refresh token {} after receiving its successor {}",
                            t.0,
                            t.1.successor.as_deref().unwrap_or("?")
                        ),
                    });
                }
            }
        }
        let slot = Arc::new(Mutex::new(Slot::default()));
        let label = match form.get("audience") {
            Some(a) => format!(
                "{} {} aud={a} scope={:?} rt={}",
                request.method(),
                request.uri().path(),
                form.get("scope").map(String::as_str).unwrap_or(""),
                form.get("refresh_token").map(String::as_str).unwrap_or("-"),
            ),
            None => format!("{} {}", request.method(), request.uri().path()),
        };
        self.wire.insert(
            self.next_request,
            Wire {
                instance,
                sent_at,
                label,
                request: Some(request),
                answer: None,
                slot: slot.clone(),
            },
        );
        self.next_request += 1;
        slot
    }

    /// The request reaches the server, which processes it (or answers `status` without
    /// processing it: an injected 5xx).
    pub fn arrive(&mut self, id: u64, now: u64, injected: Option<u16>) {
        let Some(wire) = self.wire.get_mut(&id) else {
            return;
        };
        let Some(request) = wire.request.take() else {
            return;
        };
        wire.answer = Some(match injected {
            Some(status) => {
                self.injected_5xx += 1;
                Answer {
                    response: json(
                        status,
                        &serde_json::json!({"error": "temporarily_unavailable"}),
                    ),
                    rotated_to: None,
                    family: None,
                }
            }
            None => {
                let before = self.auth.serial;
                let answer = self.auth.handle(&request, now, &mut self.violations);
                let expires_in = self.auth.expires_in;
                for serial in before + 1..=self.auth.serial {
                    if let Some(issued) = self.auth.issued.get_mut(&format!("at{serial}")) {
                        issued.sdk_expires_at = wire.sent_at + expires_in;
                    }
                }
                answer
            }
        });
    }

    /// The answer reaches the SDK's HTTP future.
    pub fn deliver(&mut self, id: u64) {
        let Some(wire) = self.wire.remove(&id) else {
            return;
        };
        let Some(answer) = wire.answer else {
            self.wire.insert(id, wire);
            return;
        };
        let mut slot = lock(&wire.slot);
        if slot.dropped {
            if let (Some(to), Some(family)) = (&answer.rotated_to, answer.family) {
                self.dropped_rotations.insert(family);
                self.violations.push(Violation {
                    invariant: "I4",
                    what: format!(
                        "the answer rotating family {family} to {to} reached instance {} after the SDK had dropped the request's future: the rotated refresh token is lost",
                        wire.instance
                    ),
                });
            }
            return;
        }
        slot.result = Some(Ok(answer.response));
        slot.rotated_to = answer.rotated_to;
        slot.family = answer.family;
        self.unread += 1;
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
    }

    /// The request times out at the SDK: no answer. If the server had processed it, its
    /// answer is lost (with a rotation in it: the documented limit).
    pub fn time_out(&mut self, id: u64) {
        let Some(wire) = self.wire.remove(&id) else {
            return;
        };
        if let Some(Answer {
            rotated_to: Some(_),
            family: Some(family),
            ..
        }) = &wire.answer
        {
            self.auth.families[*family].lost_by_fault += 1;
        }
        let mut slot = lock(&wire.slot);
        if slot.dropped {
            return;
        }
        self.unread += 1;
        slot.result = Some(Err(TransportError::new(
            TransportErrorKind::Timeout,
            format!(
                "{}: timed out",
                wire.label.split(' ').take(2).collect::<Vec<_>>().join(" ")
            ),
        )));
        if let Some(w) = slot.waker.take() {
            w.wake();
        }
    }
}

/// An instance's HTTP client: sending puts the request on the simulated wire; the future
/// stays pending until the simulation delivers an answer or a timeout.
#[derive(Clone)]
pub struct SimHttp {
    /// The instance it belongs to.
    pub instance: usize,
    /// The world.
    pub world: Arc<Mutex<World>>,
    /// The simulated clock (Unix seconds).
    pub now: Arc<std::sync::atomic::AtomicU64>,
}

impl auth0_server::nonblocking::HttpClient for SimHttp {
    fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> impl Future<Output = Result<http::Response<Vec<u8>>, TransportError>> + Send {
        let sent_at = self.now.load(std::sync::atomic::Ordering::SeqCst);
        let slot = lock(&self.world).send(self.instance, request, sent_at);
        SendFuture {
            slot,
            world: self.world.clone(),
            done: false,
        }
    }
}

struct SendFuture {
    slot: Arc<Mutex<Slot>>,
    world: Arc<Mutex<World>>,
    done: bool,
}

impl Future for SendFuture {
    type Output = Result<http::Response<Vec<u8>>, TransportError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (result, rotated_to) = {
            let mut slot = lock(&self.slot);
            match slot.result.take() {
                Some(r) => (r, slot.rotated_to.take()),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
            }
        };
        self.done = true;
        let mut world = lock(&self.world);
        world.unread -= 1;
        if let Some(to) = rotated_to {
            world.auth.received(&to);
        }
        Poll::Ready(result)
    }
}

impl Drop for SendFuture {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut slot = lock(&self.slot);
        slot.dropped = true;
        // An answer that arrived but was never read is thrown away with the future.
        if let Some(result) = slot.result.take() {
            let family = slot
                .family
                .filter(|_| result.is_ok() && slot.rotated_to.is_some());
            drop(slot);
            let mut world = lock(&self.world);
            world.unread -= 1;
            if let Some(family) = family {
                world.dropped_rotations.insert(family);
                world.violations.push(Violation {
                    invariant: "I4",
                    what: format!(
                        "the SDK dropped an unread answer that rotated family {family}'s refresh token: the rotated refresh token is lost"
                    ),
                });
            }
        }
    }
}
