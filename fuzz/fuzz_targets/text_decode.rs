//! Any bytes through the data-file text decoder (BOMs, UTF-16, line endings, delimiter),
//! compared with a one-shot reference decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| roster_fuzz::csv::check_decode(data));
