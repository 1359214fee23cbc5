#!/usr/bin/env bash
# Build the release binaries the benchmark drives (the roster CLI, the csv and clever plugin
# files, the bench itself), then run it. Arguments go to roster-bench, e.g.
#   bench/run.sh --size nyc
#   bench/run.sh --size tiny --check      # CI: structural checks only, no timing asserts
# Needs the sqlite3 shell for the floor (apt-get install -y sqlite3).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p roster-host -p roster-plugin-csv -p roster-plugin-clever -p roster-bench
exec "${CARGO_TARGET_DIR:-target}/release/roster-bench" "$@"
