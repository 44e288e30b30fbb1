#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs on a lent GPU and fills the carry folder .gpu/: the
# release CLI, the library's unit tests as target/release/percept-lib-tests (their tensor-core
# kernels cannot run here), and ../shared/gpu/prepare.sh's loader and PyTorch baselines.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
cargo build --release
tests=$(cargo test --release --lib --no-run 2>&1 |
    sed -n 's/.*Executable unittests src\/lib.rs (\(.*\))/\1/p')
cp "$tests" target/release/percept-lib-tests
../shared/gpu/prepare.sh
