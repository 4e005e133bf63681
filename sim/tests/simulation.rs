//! The deterministic simulation (DESIGN.md §8, issue 13): thousands of seeds, each one run of
//! K instances × M concurrent requests against the model token endpoint and the model shared
//! store, with faults, logouts, clock jumps and cancellation; invariants checked after every
//! step. `SIM_SEEDS` sets the seed count (default 10 000), `SIM_SEED` replays one seed with
//! its trace (`replay`).

use std::time::Instant;

/// Seeds run by default (CI).
const DEFAULT_SEEDS: u64 = 10_000;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

#[test]
fn seeds() {
    let seeds = env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(0);
    let started = Instant::now();
    let mut totals = auth0_sim::Stats::default();
    for seed in first..first + seeds {
        match auth0_sim::run(seed, false) {
            Ok(s) => {
                totals.steps += s.steps;
                totals.requests += s.requests;
                totals.errors += s.errors;
                totals.cancelled += s.cancelled;
                totals.refreshes += s.refreshes;
                totals.excused_revocations += s.excused_revocations;
                totals.faults += s.faults;
            }
            Err(_) => {
                // Run it again with its trace (the run is deterministic).
                let failure = auth0_sim::run(seed, true).expect_err("a failing seed fails again");
                panic!("{failure}");
            }
        }
    }
    println!(
        "simulation: {seeds} seeds in {:.1?}: {} steps, {} requests ({} errors, {} cancelled), {} refreshes, {} faults, {} families revoked after an injected lost answer",
        started.elapsed(),
        totals.steps,
        totals.requests,
        totals.errors,
        totals.cancelled,
        totals.refreshes,
        totals.faults,
        totals.excused_revocations
    );
}

/// Replays `SIM_SEED` with its trace.
#[test]
fn replay() {
    let Some(seed) = env_u64("SIM_SEED") else {
        return;
    };
    match auth0_sim::run(seed, true) {
        Ok(stats) => println!("seed {seed} passes: {stats:?}"),
        Err(failure) => panic!("{failure}"),
    }
}
