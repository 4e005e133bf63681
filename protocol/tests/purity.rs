//! The core's contract: no I/O, no ambient clock, no ambient randomness,
//! no environment, and no HTTP client, async runtime or RNG among its dependencies.
//! (`protocol/clippy.toml` refuses impure calls line by line; this test, which reads the
//! crate's own files, is not part of the core and may.)
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).unwrap(),
            ));
        }
    }
}

#[test]
fn protocol_sources_read_no_clock_environment_network_files_or_rng() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 10, "found the sources");
    let forbidden = [
        "SystemTime",
        "Instant::now",
        "std::env",
        "std::fs",
        "std::io::stdin",
        "TcpStream",
        "UdpSocket",
        "getrandom",
        "thread_rng",
        "OsRng",
        "std::thread",
    ];
    for (path, text) in &files {
        for word in forbidden {
            assert!(!text.contains(word), "{path} uses {word}");
        }
    }
}

#[test]
fn protocol_depends_on_no_http_client_runtime_or_rng() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let normal = manifest.split("[dev-dependencies]").next().unwrap();
    for dep in [
        "ureq",
        "reqwest",
        "hyper",
        "tokio",
        "async-std",
        "smol",
        "getrandom",
        "rand ",
        "rand=",
        "rand_core",
    ] {
        assert!(!normal.contains(dep), "protocol depends on {dep}");
    }
}
