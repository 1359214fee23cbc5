//! Fuzz smoke tests: the checks of the cargo-fuzz targets in `fuzz/` (whose harness this
//! includes), run on a few dozen seeded mutations of real files so that `cargo test`
//! catches a regression. `FUZZ_CASES=20000` runs a longer session; `FUZZ_SEED=n` other
//! cases. The long sessions, and their figures, are in docs/reliability.md.

#[path = "../../../fuzz/src/csv.rs"]
mod harness;
#[path = "../../../fuzz/src/mutate.rs"]
mod mutate;
#[path = "../../../fuzz/src/records.rs"]
mod records;

use std::path::Path;

use harness::{Folder, BASE, FILES};
use mutate::{mutate, run_cases};

/// Real files to start from: per pickAtime file, the harness's own and every file of
/// that name in the bad-input corpus.
fn seeds() -> Vec<Vec<Vec<u8>>> {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/bad/pickatime");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    FILES
        .iter()
        .zip(BASE)
        .map(|(name, base)| {
            let mut seeds = vec![base.to_vec()];
            seeds.extend(
                cases
                    .iter()
                    .filter_map(|case| std::fs::read(case.join(name)).ok()),
            );
            seeds
        })
        .collect()
}

#[test]
fn pickatime_files_never_panic_and_errors_are_located() {
    let seeds = seeds();
    let mut folder = Folder::new();
    run_cases(
        "pickatime_files",
        |rng| {
            let which = rng.below(FILES.len());
            let pool = &seeds[which];
            let input = &pool[rng.below(pool.len())];
            let other = &pool[rng.below(pool.len())];
            let mut data = vec![which as u8];
            data.extend(mutate(rng, input, other));
            data
        },
        |data| folder.check(usize::from(data[0]), &data[1..]),
    );
}

#[test]
fn the_text_decoder_matches_its_reference() {
    let seeds: Vec<Vec<u8>> = seeds().into_iter().flatten().collect();
    run_cases(
        "text_decode",
        |rng| {
            if rng.below(8) == 0 {
                (0..rng.below(2048)).map(|_| rng.next() as u8).collect()
            } else {
                let input = &seeds[rng.below(seeds.len())];
                let other = &seeds[rng.below(seeds.len())];
                mutate(rng, input, other)
            }
        },
        harness::check_decode,
    );
}
