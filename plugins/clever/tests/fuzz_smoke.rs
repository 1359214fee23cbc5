//! Fuzz smoke test: the checks of the `clever_pages` cargo-fuzz target in `fuzz/` (whose
//! harness this includes), run on a few dozen seeded mutations of the demo district's
//! real pages so that `cargo test` catches a regression. `FUZZ_CASES=20000` runs a longer
//! session; `FUZZ_SEED=n` other cases. Figures of the long sessions: docs/reliability.md.

#[path = "../../../fuzz/src/clever.rs"]
mod harness;
#[path = "../../../fuzz/src/mutate.rs"]
mod mutate;
#[path = "../../../fuzz/src/records.rs"]
mod records;

use std::path::Path;

use mutate::{mutate, run_cases};

#[test]
fn clever_pages_never_panic_and_errors_are_located() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/clever_pages");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 4, "seeds in {}", folder.display());
    // Every seed maps cleanly as it is.
    for seed in &seeds {
        harness::check_pages(seed);
    }
    run_cases(
        "clever_pages",
        |rng| {
            let input = &seeds[rng.below(seeds.len())];
            let other = &seeds[rng.below(seeds.len())];
            // Keep the flags byte sensible most of the time; mutate the bodies.
            let mut data = mutate(rng, input, other);
            if rng.below(4) != 0 && !data.is_empty() {
                data[0] = input[0];
            }
            data
        },
        harness::check_pages,
    );
}
