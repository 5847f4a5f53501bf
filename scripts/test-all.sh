#!/usr/bin/env bash
# Runs every test of zcbuf: formatting and lints, the Rust tests (unit,
# doc, property, socket), the core's unit tests and the lifetime and model
# tests again under Miri, the core tests again under valgrind memcheck,
# the benchmarks in their quick test mode, and the Java build and tests.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
if [ "$(id -u)" -ne 0 ]; then
  echo "not root: the network-namespace tests (unshare -n) skip, each with a SKIPPED line; everything else runs"
fi

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo test --workspace --all-features (tokio, http-body)"
cargo test --workspace --all-features

step "Miri over the core's unit tests and the memory tests (installs Miri if missing)"
bash scripts/miri.sh

step "benchmarks compile and run once (criterion --test mode)"
cargo test --benches --release --all-features

step "valgrind memcheck over the core tests"
if command -v valgrind >/dev/null; then
  bash scripts/valgrind.sh
else
  echo "SKIPPED valgrind memcheck: valgrind is not installed (installing it needs root)"
  [ "${CI:-}" != true ] || { echo "CI=true: a skipped step fails" >&2; exit 1; }
fi

if [ -f java/pom.xml ]; then
  step "mvn -f java verify"
  mvn -B -q -f java verify
fi

step "all tests passed"
