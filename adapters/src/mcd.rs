//! Multiple custom domains (MCD): the domain resolver a client can be built with, and the
//! per-domain state of a client that has one.
//!
//! With a resolver ([`blocking::ServerClientBuilder::domain_resolver`](crate::blocking::ServerClientBuilder::domain_resolver),
//! [`nonblocking::ServerClientBuilder::domain_resolver`](crate::nonblocking::ServerClientBuilder::domain_resolver)
//! and `domain_resolver_async`), every call first asks the resolver for the domain of the
//! request (from the call's `store_options`), validates it ([`Domain::parse`]), and runs on
//! that domain only: its own core (configuration with that domain and issuer), its own
//! discovery-metadata and JWKS caches (created on first use, at most [`MAX_DOMAINS`] kept,
//! least recently used dropped), and the session and transaction binding of
//! [`OnDomain`]. The decisions are the protocol core's
//! ([`auth0_server_protocol::mcd`]).
//!
//! **A resolver must not trust the `Host` header blindly**: the client chooses it. Map it
//! to one of your domains with a [`DomainAllowlist`], and refuse the rest.

use crate::driver::{Shared, Transport};
use crate::error::Error;
use crate::store::{AsyncStateStore, AsyncTransactionStore};
use auth0_server_protocol::Core;
use auth0_server_protocol::effect::{Input, Operation, Step};
pub use auth0_server_protocol::mcd::{Domain, DomainAllowlist, DomainError};
use auth0_server_protocol::mcd::{DomainBound, OnDomain};
use auth0_server_protocol::time::UnixTime;
use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

/// Most custom domains one client keeps state (core, metadata and JWKS caches) for; past it,
/// the least recently used domain's state is dropped (and rebuilt, discovery fetched again,
/// should it come back).
pub const MAX_DOMAINS: usize = 100;

/// What a resolver's future gives: the domain, or its failure.
pub(crate) type ResolveFuture =
    Pin<Box<dyn Future<Output = Result<String, DomainError>> + Send + 'static>>;

/// A client's domain resolver, erased over its function type.
pub(crate) trait ResolveDomain<S>: Send + Sync {
    /// The domain of the request these store options belong to.
    fn resolve(&self, options: &<S as AsyncStateStore>::Options) -> ResolveFuture
    where
        S: AsyncStateStore;
}

/// A resolver that answers at once.
pub(crate) struct SyncResolver<F>(pub(crate) F);

impl<S, F, E> ResolveDomain<S> for SyncResolver<F>
where
    S: AsyncStateStore,
    F: Fn(&S::Options) -> Result<String, E> + Send + Sync,
    E: Display,
{
    fn resolve(&self, options: &S::Options) -> ResolveFuture
    where
        S: AsyncStateStore,
    {
        let resolved = (self.0)(options).map_err(|e| DomainError::Resolver {
            message: e.to_string(),
        });
        Box::pin(std::future::ready(resolved))
    }
}

/// A resolver whose answer is a future (it may look the domain up somewhere).
pub(crate) struct AsyncResolver<F>(pub(crate) F);

impl<S, F, Fut, E> ResolveDomain<S> for AsyncResolver<F>
where
    S: AsyncStateStore,
    F: Fn(&S::Options) -> Fut + Send + Sync,
    Fut: Future<Output = Result<String, E>> + Send + 'static,
    E: Display,
{
    fn resolve(&self, options: &S::Options) -> ResolveFuture
    where
        S: AsyncStateStore,
    {
        let future = (self.0)(options);
        Box::pin(async move {
            future.await.map_err(|e| DomainError::Resolver {
                message: e.to_string(),
            })
        })
    }
}

/// The domain of this call: the resolver's answer, validated. The options are read before
/// the returned future is polled (it does not borrow them).
pub(crate) fn resolve<S: AsyncStateStore>(
    resolver: &dyn ResolveDomain<S>,
    options: &S::Options,
) -> impl Future<Output = Result<Domain, Error>> + Send + use<S> {
    let resolving = resolver.resolve(options);
    async move {
        let raw = resolving.await?;
        Ok(Domain::parse(&raw)?)
    }
}

/// The per-domain state of a client with a resolver: each domain's [`Shared`], created on
/// first use from the client's own.
#[derive(Default)]
pub(crate) struct Domains {
    states: Mutex<DomainMap>,
}

#[derive(Default)]
struct DomainMap {
    by_domain: HashMap<Domain, (Arc<Shared>, u64)>,
    tick: u64,
}

impl Domains {
    /// The state of `domain`, created (from `base`: same configuration otherwise) when new.
    pub(crate) fn get(&self, base: &Shared, domain: &Domain) -> Result<Arc<Shared>, Error> {
        let mut map = self.states.lock().unwrap_or_else(PoisonError::into_inner);
        map.tick += 1;
        let tick = map.tick;
        if let Some((state, used)) = map.by_domain.get_mut(domain) {
            *used = tick;
            return Ok(state.clone());
        }
        let core = base
            .core
            .on_domain(domain)
            .map_err(|_| DomainError::Invalid {
                reason: "is not usable as a domain",
            })?;
        if map.by_domain.len() >= MAX_DOMAINS {
            let oldest = map
                .by_domain
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(d, _)| d.clone());
            if let Some(oldest) = oldest {
                map.by_domain.remove(&oldest);
            }
        }
        let state = Arc::new(base.for_domain(core));
        map.by_domain.insert(domain.clone(), (state.clone(), tick));
        Ok(state)
    }
}

/// Whether an operation built by the client's own core (`drive`) may run on `domain`: only
/// when it is the configured domain.
pub(crate) fn configured_domain_is(base: &Shared, domain: &Domain) -> Result<(), Error> {
    let config = base.core.config();
    if config.issuer_override().is_none()
        && config.issuer_url() == config.origin()
        && Domain::parse(config.origin()).as_ref() == Ok(domain)
    {
        Ok(())
    } else {
        Err(DomainError::OperationOnOtherDomain.into())
    }
}

/// An operation bound to its domain ([`OnDomain`]), its errors already the client's.
struct Bound<O>(OnDomain<O>);

impl<O> Operation for Bound<O>
where
    O: Operation,
    O::Error: Into<Error>,
{
    type Output = O::Output;
    type Error = Error;

    fn step(&mut self, input: Input, now: UnixTime) -> Step<O::Output, Error> {
        match self.0.step(input, now) {
            Step::Done(result) => Step::Done(result.map_err(|e| match e {
                DomainBound::Operation(e) => e.into(),
                DomainBound::Domain(e) => Error::Domain(Box::new(e)),
            })),
            Step::Effect(effect) => Step::Effect(effect),
        }
    }
}

/// Runs one client call: on the configured domain when the client has no resolver; with
/// one, on the domain it resolves from `store_options` (that domain's state, created on first
/// use), the operation built by that domain's core and bound to it ([`OnDomain`]). Both
/// clients' calls go through here (the blocking one blocks on it).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive_call<O, S, T, X>(
    name: &'static str,
    audience: &str,
    base: &Shared,
    domains: &Domains,
    resolver: Option<&dyn ResolveDomain<S>>,
    state_store: &S,
    transaction_store: &T,
    transport: &X,
    op: impl FnOnce(&Core) -> O,
    store_options: &mut S::Options,
) -> Result<O::Output, Error>
where
    O: Operation,
    Error: From<O::Error>,
    S: AsyncStateStore,
    T: AsyncTransactionStore<Options = S::Options>,
    X: Transport,
{
    let Some(resolver) = resolver else {
        return crate::driver::drive(
            name,
            audience,
            base,
            state_store,
            transaction_store,
            transport,
            op(&base.core),
            store_options,
        )
        .await;
    };
    let domain = resolve(resolver, store_options).await?;
    let shared = domains.get(base, &domain)?;
    let op = op(&shared.core);
    drive_on(
        name,
        audience,
        &shared,
        state_store,
        transaction_store,
        transport,
        op,
        domain,
        store_options,
    )
    .await
}

/// Drives `op` bound to `domain` ([`OnDomain`]) with `shared`, that domain's state.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drive_on<O, S, T, X>(
    name: &'static str,
    audience: &str,
    shared: &Shared,
    state_store: &S,
    transaction_store: &T,
    transport: &X,
    op: O,
    domain: Domain,
    store_options: &mut S::Options,
) -> Result<O::Output, Error>
where
    O: Operation,
    O::Error: Into<Error>,
    S: AsyncStateStore,
    T: AsyncTransactionStore<Options = S::Options>,
    X: Transport,
{
    crate::driver::drive(
        name,
        audience,
        shared,
        state_store,
        transaction_store,
        transport,
        Bound(OnDomain::new(op, domain)),
        store_options,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth0_server_protocol::Core;
    use auth0_server_protocol::config::Config;

    fn base() -> Shared {
        let config = Config::builder("login.a.example", "client")
            .client_secret("secret")
            .secret("a-secret-of-at-least-32-bytes-long!!")
            .build()
            .expect("config");
        Shared::new(
            Core::new(config),
            crate::clock::Clock::system(),
            std::time::Duration::from_secs(60),
        )
    }

    fn domain(i: usize) -> Domain {
        Domain::parse(&format!("login{i}.example")).expect("domain")
    }

    #[test]
    fn each_domain_has_one_state_on_its_own_domain() {
        let (base, domains) = (base(), Domains::default());
        let a = domains.get(&base, &domain(1)).unwrap();
        assert!(Arc::ptr_eq(&a, &domains.get(&base, &domain(1)).unwrap()));
        assert_eq!(a.core.config().origin(), "https://login1.example");
        assert_eq!(a.core.domain(), Some(&domain(1)));
        let b = domains.get(&base, &domain(2)).unwrap();
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(
            Arc::ptr_eq(&a.flights, &b.flights),
            "single-flight is the client's"
        );
    }

    #[test]
    fn at_most_max_domains_are_kept_least_recently_used_dropped() {
        let (base, domains) = (base(), Domains::default());
        let first = domains.get(&base, &domain(0)).unwrap();
        let second = domains.get(&base, &domain(1)).unwrap();
        for i in 2..MAX_DOMAINS {
            domains.get(&base, &domain(i)).unwrap();
        }
        // Domain 0 used again: domain 1 is now the least recently used.
        assert!(Arc::ptr_eq(
            &first,
            &domains.get(&base, &domain(0)).unwrap()
        ));
        domains.get(&base, &domain(MAX_DOMAINS)).unwrap();
        let held = domains.states.lock().unwrap().by_domain.len();
        assert_eq!(held, MAX_DOMAINS);
        assert!(Arc::ptr_eq(
            &first,
            &domains.get(&base, &domain(0)).unwrap()
        ));
        assert!(
            !Arc::ptr_eq(&second, &domains.get(&base, &domain(1)).unwrap()),
            "rebuilt"
        );
    }

    #[test]
    fn drive_runs_core_operations_only_on_the_configured_domain() {
        let base = base();
        assert!(configured_domain_is(&base, &Domain::parse("LOGIN.A.EXAMPLE").unwrap()).is_ok());
        let e = configured_domain_is(&base, &domain(1)).unwrap_err();
        assert_eq!(e.code(), auth0_server_protocol::ErrorCode::DomainMismatch);
    }
}
