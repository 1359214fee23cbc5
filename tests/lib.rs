//! Only the end-to-end tests in `e2e/` live in this package.
