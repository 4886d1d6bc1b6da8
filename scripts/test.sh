#!/usr/bin/env bash
# The test command (README.md): formatting, lints, then every unit and
# integration test of the workspace. Integration tests need root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --locked
cargo test --workspace --locked -- --test-threads=2
