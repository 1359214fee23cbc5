//! The fuzz harnesses: what each target feeds a parser and what it checks afterwards.
//! `csv` and `clever` are also compiled into the plugins' fuzz smoke tests (by path), so
//! the long cargo-fuzz sessions and the short runs in `cargo test` check the same things.

#[cfg(feature = "clever")]
pub mod clever;
#[cfg(feature = "csv")]
pub mod csv;
pub mod mutate;
pub mod records;
