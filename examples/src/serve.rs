//! [`RunningApp`]: the axum example app on its own tokio runtime in a background thread, for
//! the tests and for embedding in a blocking program.

use crate::Tenant;
use axum::Router;
use std::thread::JoinHandle;

/// The app running on its own tokio runtime in a background thread (for the tests, and for
/// embedding in a blocking program); dropping it shuts the server down gracefully.
pub struct RunningApp {
    base_url: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    tenant: Tenant,
}

impl std::fmt::Debug for RunningApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningApp")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl RunningApp {
    /// The app's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The tenant the app talks to (with the bundled emulator when offline).
    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }
}

impl Drop for RunningApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `addr` (`127.0.0.1:0` for an ephemeral port) and serves the app on a new
/// two-worker tokio runtime in a background thread.
///
/// # Errors
/// When the address cannot be bound, the configuration is invalid or the runtime cannot
/// start.
pub fn start(
    tenant: Tenant,
    addr: &str,
) -> Result<RunningApp, Box<dyn std::error::Error + Send + Sync>> {
    start_with(tenant, addr, crate::axum_app::router)
}

/// The router `build` makes for the tenant and base URL.
pub type BuildResult = Result<Router, Box<dyn std::error::Error + Send + Sync>>;

/// As [`start`], with the router `build` makes (called inside the runtime, with the tenant and
/// the app's base URL).
///
/// # Errors
/// As [`start`].
pub fn start_with(
    tenant: Tenant,
    addr: &str,
    build: impl FnOnce(&Tenant, &str) -> BuildResult,
) -> Result<RunningApp, Box<dyn std::error::Error + Send + Sync>> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let base_url = tenant.app_base_url_for(listener.local_addr()?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let app = {
        let _entered = runtime.enter();
        build(&tenant, &base_url)?
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("axum-app".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = rx.await;
                    })
                    .await;
            });
        })?;
    Ok(RunningApp {
        base_url,
        shutdown: Some(tx),
        thread: Some(thread),
        tenant,
    })
}
