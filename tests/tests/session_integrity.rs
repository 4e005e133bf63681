//! End-to-end: sessions are never lost or resurrected by what happens while a refresh is in
//! flight (the integrity invariants I2–I4), through the blocking client and the memory store
//! against the emulator. The Redis store runs the same scenarios in `redis.rs`.

mod adapter_support;
mod integrity_support;

use adapter_support::config;
use auth0_emulator::Emulator;
use auth0_server::blocking::ServerClient;
use auth0_server::store::memory::{MemoryStateStore, MemoryTransactionStore};
use integrity_support::FailingUpdates;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

fn client(emu: &Emulator) -> Arc<ServerClient<MemoryStateStore, MemoryTransactionStore>> {
    Arc::new(
        ServerClient::builder(
            config(emu),
            MemoryStateStore::new().secure(false),
            MemoryTransactionStore::new(),
        )
        .build(),
    )
}

#[test]
fn memory_a_logout_during_a_refresh_is_not_undone() {
    let emu = Emulator::start(Default::default());
    let client = client(&emu);
    let cookie = client.state_store().cookie().to_owned();
    integrity_support::logout_during_refresh_stays_logged_out(&emu, client, &cookie);
}

#[test]
fn memory_a_save_during_a_refresh_is_kept() {
    let emu = Emulator::start(Default::default());
    let client = client(&emu);
    let cookie = client.state_store().cookie().to_owned();
    integrity_support::a_concurrent_save_is_not_overwritten(&emu, client, &cookie);
}

#[test]
fn memory_a_failed_save_after_a_rotation_loses_nothing() {
    let emu = Emulator::start(Default::default());
    let (clock, time) = integrity_support::movable_clock();
    let store = FailingUpdates {
        inner: MemoryStateStore::new().secure(false),
        failing: Arc::new(AtomicBool::new(false)),
    };
    let cookie = store.inner.cookie().to_owned();
    let client = ServerClient::builder(config(&emu), store, MemoryTransactionStore::new())
        .clock(clock)
        .build();
    integrity_support::a_failed_save_never_loses_the_rotated_token(&emu, &client, &cookie, &time);
}
