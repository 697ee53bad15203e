#!/usr/bin/env bash
# Builds the libFuzzer harnesses (release, -sanitize=fuzzer,address) and runs them.
#
#   Fuzz/run.sh                          # build, then run every harness for 60 s each
#   Fuzz/run.sh server-session 600       # build, then run one harness for 600 s
#   Fuzz/run.sh all 300 -jobs=1          # extra arguments go to libFuzzer
#   FUZZ_SKIP_BUILD=1 Fuzz/run.sh ...    # run what was built last
#
# Harnesses: frame-decoder request-decoders json-parsers token-verifier persistence server-session.
# Each runs on its own growing corpus in Fuzz/.corpus/<harness> (not checked in) seeded from
# Fuzz/Corpus/<harness> (checked in); crashes go to Fuzz/.crashes/<harness>/, logs to Fuzz/.logs/.
# Replay a crash with: Fuzz/.build-fuzz/release/<Target> <crash-file>
# Swift builds on this machine take /tmp/learnstore-swift.lock, so two never run at once.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A targets=(
    [frame-decoder]=FuzzFrameDecoder
    [request-decoders]=FuzzRequestDecoders
    [json-parsers]=FuzzJSONParsers
    [token-verifier]=FuzzTokenVerifier
    [persistence]=FuzzPersistence
    [server-session]=FuzzServerSession
)
order=(frame-decoder request-decoders json-parsers token-verifier persistence server-session)

which=${1:-all}
seconds=${2:-60}
shift $(( $# > 2 ? 2 : $# ))
if [[ $which == all ]]; then
    selected=("${order[@]}")
elif [[ -n ${targets[$which]:-} ]]; then
    selected=("$which")
else
    echo "unknown harness '$which'; one of: all ${order[*]}" >&2
    exit 64
fi

scratch=Fuzz/.build-fuzz
if [[ -z ${FUZZ_SKIP_BUILD:-} ]]; then
    # -parse-as-library: the harnesses have no top-level code; libFuzzer supplies main().
    flock /tmp/learnstore-swift.lock swift build -c release --package-path Fuzz --scratch-path "$scratch" \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
fi
bin="$scratch/$(uname -m)-unknown-linux-gnu/release"

# Swift's crash backtracer would run before AddressSanitizer's report and trip over its own stack.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}

mkdir -p Fuzz/.logs
for name in "${selected[@]}"; do
    target=${targets[$name]}
    mkdir -p "Fuzz/.corpus/$name" "Fuzz/.crashes/$name"
    log="Fuzz/.logs/$name-$(date -u +%Y%m%dT%H%M%SZ).log"
    echo "== $name ($target), ${seconds} s, log $log"
    status=0
    started=$(date +%s)
    "$bin/$target" "Fuzz/.corpus/$name" "Fuzz/Corpus/$name" \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=25 -max_len=8192 \
        -artifact_prefix="Fuzz/.crashes/$name/" "$@" >"$log" 2>&1 || status=$?
    executions=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    per_second=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    coverage=$(grep -E '^#[0-9]+' "$log" | grep -o 'cov: [0-9]* ft: [0-9]*' | tail -1)
    echo "   executions ${executions:-?} in $(( $(date +%s) - started )) s (${per_second:-?}/s), ${coverage:-no coverage line}, exit status $status"
    if (( status != 0 )); then
        grep -m1 -E 'ERROR: libFuzzer|ERROR: AddressSanitizer|Fatal error|fuzz invariant' "$log" || true
        ls -t "Fuzz/.crashes/$name/" | head -3 | sed "s|^|   artifact: Fuzz/.crashes/$name/|"
    fi
done
