#!/usr/bin/env bash
# Installs what the tests need beyond Rust, JDK and Maven: valgrind for the
# memcheck run, iproute2 and util-linux for the network-namespace tests.
set -euo pipefail
missing=()
command -v valgrind >/dev/null || missing+=(valgrind)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    # Not root: install nothing; the steps that need what is missing say they skip.
    echo "SKIPPED installing ${missing[*]}: not root (apt-get needs root); the tests that need them are skipped" >&2
    exit 0
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
