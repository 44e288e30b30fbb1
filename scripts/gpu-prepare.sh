#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs on a lent GPU and fills the carry folder .gpu/: the
# release CLI; the library's unit tests and tests/ops.rs as target/release/percept-lib-tests
# and percept-ops-tests (their tensor-core tests cannot run here); and
# ../shared/gpu/prepare.sh's loader and PyTorch baselines.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
cargo build --release
built=$(cargo test --release --lib --test ops --no-run 2>&1)
executable() { sed -n "s|.*Executable $1 (\(.*\))|\1|p" <<< "$built"; }
cp "$(executable 'unittests src/lib.rs')" target/release/percept-lib-tests
cp "$(executable 'tests/ops.rs')" target/release/percept-ops-tests
../shared/gpu/prepare.sh
