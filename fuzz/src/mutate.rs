//! A small, dependency-free mutator for the fuzz smoke tests that run in `cargo test`:
//! seeded (so a failure can be replayed), it takes real inputs and damages them the way
//! files and responses get damaged — bytes flipped, cut, doubled, spliced, and the
//! characters parsers care about (quotes, delimiters, line breaks, BOMs, NULs) dropped in.
//! cargo-fuzz's libFuzzer does the same, guided by coverage, in the long sessions.

/// How many cases a smoke test runs: `FUZZ_CASES`, 64 when unset.
pub fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// The seed of a smoke test's generator: `FUZZ_SEED`, a fixed one when unset (CI runs
/// the same cases every time; set it to explore).
pub fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED_2026)
}

/// xorshift64*: plenty for picking mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Bytes that mean something to a CSV reader, a text decoder or a JSON parser.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"\"\"",
    b"\t",
    b",",
    b";",
    b"\n",
    b"\r",
    b"\r\n",
    b"\x00",
    b"\xff",
    b"\xfe",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xfe\xff",
    b"\xc3",
    b"\xe9",
    b"\xed\xa0\x80",
    b" ",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b"null",
    b"true",
    b"1e999",
    b"-0",
    b"\"\\u0000\"",
    b"\"\\ud800\"",
    b"{\"rel\":\"next\",\"uri\":\"//evil.example/x\"}",
    b"\"data\":",
    b"\"links\":",
    b"\"id\":",
    b"99999999999999999999",
    b"02/30/2014",
    b"2014-13-45",
    b"delete",
    b"ClassID",
    b"StudentID",
    b"ParentID",
];

/// `input` with 1–8 random mutations; now and then spliced with `other`.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(8) {
        let len = data.len();
        match rng.below(10) {
            0 if len > 0 => {
                let i = rng.below(len);
                data[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                data[i] = rng.next() as u8;
            }
            2 | 3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                let at = rng.below(len + 1);
                data.splice(at..at, token.iter().copied());
            }
            4 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(64)).min(len);
                data.drain(from..to);
            }
            5 if len > 0 => {
                let from = rng.below(len);
                let to = (from + 1 + rng.below(256)).min(len);
                let copy = data[from..to].to_vec();
                let at = rng.below(len + 1);
                data.splice(at..at, copy);
            }
            6 => data.truncate(rng.below(len + 1)),
            7 if !other.is_empty() => {
                let cut = rng.below(len + 1);
                let from = rng.below(other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            8 => {
                let at = rng.below(len + 1);
                let run = vec![rng.next() as u8; 1 + rng.below(300)];
                data.splice(at..at, run);
            }
            _ => {
                let at = rng.below(len + 1);
                let noise: Vec<u8> = (0..1 + rng.below(16)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, noise);
            }
        }
    }
    data
}

/// Runs `check` on each case, and on a panic says which case and seed it was, with the
/// input (shortened) so it can be replayed or added to the seeds.
pub fn run_cases(
    name: &str,
    mut case: impl FnMut(&mut Rng) -> Vec<u8>,
    mut check: impl FnMut(&[u8]),
) {
    let (cases, seed) = (cases(), seed());
    let mut rng = Rng::new(seed);
    for n in 0..cases {
        let input = case(&mut rng);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&input)));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let shown: Vec<u8> = input.iter().copied().take(600).collect();
            panic!(
                "{name}: case {n} of {cases} (FUZZ_SEED={seed}) panicked: {message}\ninput ({} bytes): {:?}",
                input.len(),
                String::from_utf8_lossy(&shown)
            );
        }
    }
    eprintln!("{name}: {cases} cases, seed {seed}: no panic");
}
