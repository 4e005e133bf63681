//! Multiple custom domains: `mcd::Domain::parse` on what a resolver returned (often derived
//! from a request's `Host` header), `DomainAllowlist::resolve` on a request host, and
//! `logout_token_on_domain` on a logout token read before verification.
#![no_main]

use auth0_server_protocol::mcd::{Domain, DomainAllowlist, logout_token_on_domain};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(domain) = Domain::parse(text) {
        // Accepted: an http(s) origin, normalised (it parses to itself).
        let origin = domain.origin();
        assert!(origin.starts_with("https://") || origin.starts_with("http://"));
        assert!(!origin.ends_with('/'));
        assert_eq!(Domain::parse(origin).as_ref(), Ok(&domain));
    }
    let allowed = DomainAllowlist::new(["login.a.example", "http://127.0.0.1:4001"])
        .expect("valid allowlist");
    if let Ok(domain) = allowed.resolve(Some(text)) {
        assert!(allowed.domains().contains(&domain), "resolved outside the allowlist");
    }
    let a = Domain::parse("login.a.example").expect("valid domain");
    let _ = logout_token_on_domain(text, &a);
});
