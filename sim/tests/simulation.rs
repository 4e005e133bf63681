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

/// Failing seeds by invariant: (count, first seed, what it broke).
type Failing = std::collections::BTreeMap<&'static str, (u64, u64, String)>;

fn add(totals: &mut auth0_sim::Stats, s: &auth0_sim::Stats) {
    totals.steps += s.steps;
    totals.requests += s.requests;
    totals.errors += s.errors;
    totals.cancelled += s.cancelled;
    totals.refreshes += s.refreshes;
    totals.excused_revocations += s.excused_revocations;
    totals.faults += s.faults;
    totals.not_saved += s.not_saved;
    totals.overlapped += s.overlapped;
}

#[test]
fn seeds() {
    let seeds = env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let first = env_u64("SIM_FIRST_SEED").unwrap_or(0);
    let started = Instant::now();
    // Seeds are independent: split them over a few threads (each run stays single-threaded
    // and deterministic).
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 4) as u64;
    let results: Vec<(auth0_sim::Stats, Failing)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut totals = auth0_sim::Stats::default();
                    let mut failing = Failing::default();
                    for seed in (first + t..first + seeds).step_by(threads as usize) {
                        match auth0_sim::run(seed, false) {
                            Ok(s) => add(&mut totals, &s),
                            Err(f) => {
                                let entry = failing.entry(f.violation.invariant).or_insert((
                                    0,
                                    seed,
                                    f.violation.what.clone(),
                                ));
                                entry.0 += 1;
                                if seed < entry.1 {
                                    (entry.1, entry.2) = (seed, f.violation.what.clone());
                                }
                            }
                        }
                    }
                    (totals, failing)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a simulation thread panicked"))
            .collect()
    });
    let mut totals = auth0_sim::Stats::default();
    let mut failing = Failing::default();
    for (t, f) in results {
        add(&mut totals, &t);
        for (invariant, (count, seed, what)) in f {
            let entry = failing.entry(invariant).or_insert((0, seed, what.clone()));
            entry.0 += count;
            if seed < entry.1 {
                (entry.1, entry.2) = (seed, what);
            }
        }
    }
    println!(
        "simulation: {seeds} seeds ({threads} threads) in {:.1?}: {} steps, {} requests ({} errors, {} cancelled), {} refreshes, {} faults, {} families revoked after an injected fault lost a rotated refresh token",
        started.elapsed(),
        totals.steps,
        totals.requests,
        totals.errors,
        totals.cancelled,
        totals.refreshes,
        totals.faults,
        totals.excused_revocations
    );
    if let Some((_, (_, seed, _))) = failing.iter().next() {
        for (invariant, (count, seed, what)) in &failing {
            println!("{invariant}: {count} seeds, first {seed}: {what}");
            println!(
                "  replay: SIM_SEED={seed} cargo test -p auth0-sim --test simulation replay -- --nocapture"
            );
        }
        // Run the first failing seed again with its trace (the run is deterministic).
        let failure = auth0_sim::run(*seed, true).expect_err("a failing seed fails again");
        panic!("{failure}");
    }
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
