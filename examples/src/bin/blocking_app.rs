//! The example web app on the blocking client (`tiny_http`).
//!
//! `cargo run -p auth0-server-examples --bin blocking_app` — offline against the bundled
//! emulator unless `AUTH0_DOMAIN` (and friends, see the README) are set.
#![forbid(unsafe_code)]

use auth0_server_examples::{Tenant, blocking_app};

fn main() -> std::process::ExitCode {
    let run = || -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let tenant = Tenant::from_env()?;
        let addr = tenant.listen_addr(3000);
        let app = blocking_app::start(tenant, &addr)?;
        print_banner("blocking_app", &app.tenant().domain, app.base_url());
        app.wait();
        Ok(())
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("blocking_app: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn print_banner(name: &str, domain: &str, base_url: &str) {
    println!("{name}: Auth0 domain {domain}");
    println!("{name}: open {base_url}/ (Ctrl-C to stop)");
}
