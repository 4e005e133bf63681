//! The example web app on the async client (axum + tokio + reqwest).
//!
//! `cargo run -p auth0-server-examples --bin axum_app` — offline against the bundled
//! emulator unless `AUTH0_DOMAIN` (and friends, see the README) are set.
#![forbid(unsafe_code)]

use auth0_server_examples::{Tenant, axum_app};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("axum_app: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let tenant = Tenant::from_env()?;
    let listener = tokio::net::TcpListener::bind(tenant.listen_addr(3000)).await?;
    let base_url = tenant.app_base_url_for(listener.local_addr()?);
    let app = axum_app::router(&tenant, &base_url)?;
    println!("axum_app: Auth0 domain {}", tenant.domain);
    println!("axum_app: open {base_url}/ (Ctrl-C to stop)");
    axum::serve(listener, app).await?;
    Ok(())
}
