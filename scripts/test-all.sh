#!/usr/bin/env bash
# Runs every test of zcbuf: formatting and lints, the Rust tests (unit,
# doc, property, socket), the core tests again under valgrind memcheck,
# the benchmarks in their quick test mode, and the Java build and tests.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test --workspace --all-features (tokio, http-body)"
cargo test --workspace --all-features

step "benchmarks compile and run once (criterion --test mode)"
cargo test --benches --release --all-features

step "valgrind memcheck over the core tests"
bash scripts/valgrind.sh

if [ -f java/pom.xml ]; then
  step "mvn -f java verify"
  mvn -B -q -f java verify
fi

step "all tests passed"
