#!/usr/bin/env bash
# The device check for a session that is lent a GPU: every benchmark family at full size and
# PyTorch's baselines, in one call, within about nine minutes. Prepare it here first:
#   bash scripts/gpu-prepare.sh
# then call the device tool with carry [".gpu"], timeout_s 600 and the command
#   bash scripts/gpu-check.sh
# It writes at most eight files to $OUT (the tool's limit): run.log (adapter, the kernel tests'
# failures and summaries, progress with each finished case's record as a `record <family>: {...}` line, which is
# what is left of a run its time limit stopped, the per-kernel profiles of the cases that
# matter, each open target MET, MISSED or MISSING by scripts/gpu-targets.py, and the tuned
# kernel variants), JSON records per family (one line per run below, each a JSON array, or
# empty where the run failed; pcr and deq share pcr-deq.json), the DeepPCR heat map, and
# torch.txt (PyTorch from the same call).
set -u
out="${OUT:-/tmp/percept-gpu}"
mkdir -p "$out"
begin=$(date +%s)
elapsed() { echo $(( $(date +%s) - begin )); }
# Every step's time limit is cut to what is left before this deadline (seconds from the start),
# except the last two (the targets and the tuned variants, 25 s at most together, so 595 s in
# all), which keeps the whole check inside the device tool's 600 s; a benchmark run with less
# than 15 s left (a profile, 20 s) is skipped and says so in run.log.
deadline=${PERCEPT_CHECK_DEADLINE:-570}
limit() {
    local left=$(( deadline - $(elapsed) ))
    left=$(( left < $1 ? left : $1 ))
    # `timeout 0` would mean no limit at all.
    echo $(( left < 1 ? 1 : left ))
}

timeout 20 bash .gpu/on-device.sh .gpu/percept info >> "$out/run.log" 2>&1
# Kernel tests on the GPU, each "file [filter]|seconds": a race that lavapipe's lockstep lanes
# hide shows here. Passing tests' lines are dropped.
export PERCEPT_EXPECT_SPLIT_F16=1
kernel_tests() {
    local tests seconds
    for tests in "$@"; do
        IFS='|' read -r tests seconds <<< "$tests"
        set -- $tests
        echo "== tests: $tests" >> "$out/run.log"
        timeout "$(limit "$seconds")" bash .gpu/on-device.sh ".gpu/percept-$1-tests" ${2:+"$2"} 2>&1 |
            grep -vE '^test .* \.\.\. ok$|^running [0-9]+ tests?$|^$' >> "$out/run.log"
        echo "tests $tests: exit ${PIPESTATUS[0]}" >> "$out/run.log"
    done
}
# The tensor-core kernels (which CI's lavapipe cannot run; on this GPU a refusal is a failure)
# and the matmuls the benchmarks stand on, first.
kernel_tests "lib coop|30" "ops|40"
# PyTorch first: its numbers are the bar every family is compared with.
{
    timeout "$(limit 60)" python3 .gpu/torch_anchor.py
    timeout "$(limit 60)" python3 .gpu/torch_anchor_graphs.py
} > "$out/torch.txt" 2>&1
# Each run: family, the --case filter (the split-precision cases run on their own, so that a
# failure there loses no f32 record), its output file, and its time limit in seconds. The
# families whose targets are open come first (DEQ, DeepPCR and the tridiagonal solve, FFT), then
# the other kernel test files, then the matmul and training-step records of the resolved issues; the limits add up to more than
# the deadline allows, so on a slow run the last ones are cut short or skipped, and the profiles
# after them run only in what is left.
runs=(
    "deq|precision: F32|pcr-deq.json|75"
    "deq|precision: SplitF16|pcr-deq.json|45"
    "deeppcr||deeppcr.json|75"
    "pcr||pcr-deq.json|60"
    "fft||fft.json|110"
    "tests"
    "matmul|precision: SplitF16|matmul.json|60"
    "matmul|precision: F32|matmul.json|75"
    "mlp-step||mlp-step.json|60"
)
for run in "${runs[@]}"; do
    # The other kernel test files, once the open targets' records are in.
    if [ "$run" = tests ]; then
        kernel_tests "fft|30" "pcr|20" "deeppcr|15" "deq|15"
        continue
    fi
    IFS='|' read -r family filter file seconds <<< "$run"
    seconds=$(limit "$seconds")
    if [ "$seconds" -lt 15 ]; then
        echo "bench $family $filter: skipped, ${seconds} s left" >> "$out/run.log"
        echo >> "$out/$file"
        continue
    fi
    extra=()
    [ "$family" = deeppcr ] && extra=(--heatmap "$out/deeppcr.svg")
    [ -n "$filter" ] && extra+=(--case "$filter")
    start=$(date +%s)
    timeout "$seconds" bash .gpu/on-device.sh .gpu/percept bench "$family" --json "${extra[@]}" \
        2>> "$out/run.log" | tr -d '\n' >> "$out/$file"
    status=${PIPESTATUS[0]}
    echo >> "$out/$file"
    echo "bench $family $filter: exit $status after $(( $(date +%s) - start )) s" >> "$out/run.log"
done
# Where the time goes in the cases the open targets name, as far as the time left allows (the
# profiles' own timings are slowed by the profiler and are not for the record).
profile() {
    local left
    left=$(limit 60)
    if [ "$left" -lt 20 ]; then
        echo "profile $*: skipped, ${left} s left" >> "$out/run.log"
        return
    fi
    echo "== profile: bench $* (${left} s)" >> "$out/run.log"
    timeout "$left" bash .gpu/on-device.sh .gpu/percept bench "$@" --profile >> "$out/run.log" 2>&1
    echo "profile $*: exit $?" >> "$out/run.log"
}
profile deeppcr --case "layers: 1024, width: 16,"
profile deq
profile pcr
profile fft --case "n: 4096"
profile fft --case "n: 1024,"
profile matmul --case "m: 1024,"
# The open issues' targets, MET, MISSED or MISSING, from the records above (under a second).
echo "== targets" >> "$out/run.log"
timeout 5 python3 scripts/gpu-targets.py "$out" >> "$out/run.log" 2>&1
# The kernel variants (matmul kernels, tridiagonal and scan methods, FFT blocks) tuned per shape
# bucket.
timeout 20 bash .gpu/on-device.sh .gpu/percept info >> "$out/run.log" 2>&1
echo "done after $(elapsed) s" >> "$out/run.log"
