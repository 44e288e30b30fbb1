#!/usr/bin/env bash
# Builds what scripts/gpu-check.sh runs on a lent GPU and fills the carry folder .gpu/: the
# release CLI; the library's unit tests and the kernel test files (ops, fft, pcr, deeppcr, deq)
# as target/release/percept-<name>-tests, stripped so that all fit the 64 MiB carry (the
# tensor-core tests cannot run here, and races show on a real GPU); and
# ../shared/gpu/prepare.sh's loader and PyTorch baselines.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
cargo build --release
kernels=(ops fft pcr deeppcr deq)
built=$(cargo test --release --lib "${kernels[@]/#/--test=}" --no-run 2>&1)
executable() { sed -n "s|.*Executable $1 (\(.*\))|\1|p" <<< "$built"; }
cp "$(executable 'unittests src/lib.rs')" target/release/percept-lib-tests
for name in "${kernels[@]}"; do
    cp "$(executable "tests/$name.rs")" "target/release/percept-$name-tests"
done
../shared/gpu/prepare.sh
strip .gpu/percept .gpu/percept-*-tests
du -sh .gpu
