//! Any bytes as the pages of one Clever district (see `roster_fuzz::clever` for the
//! layout), through the client's page parser and the mapping.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| roster_fuzz::clever::check_pages(data));
