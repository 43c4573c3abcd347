#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) and runs each for a bounded time from its
# seed corpus in fuzz/corpus/<target>/. Fails if any target crashes, leaks, trips a sanitizer or
# breaks one of its checks; the input that did it is left in build/fuzz/artifacts/.
#
#   fuzz/run.sh [seconds-per-target] [target...]     (default 60 s, all targets)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
build=build/fuzz
jobs="${JOBS:-2}"
all=(request_parser_fuzz path_resolver_fuzz accept_encoding_fuzz cache_control_fuzz config_fuzz asgi_message_fuzz websocket_frames_fuzz)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGANTRY_FUZZ=ON \
    -DGANTRY_TESTS=OFF -DGANTRY_BENCH=OFF >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]}"

mkdir -p "$build/artifacts"
failed=()
for t in "${targets[@]}"; do
    name="${t%_fuzz}"
    seeds="fuzz/corpus/$name"
    work="$build/corpus/$name"   # new inputs found land here, never in the repo's seeds
    mkdir -p "$work"
    dict=()
    [ -f "fuzz/$name.dict" ] && dict=(-dict="fuzz/$name.dict")
    # fuzz/<name>.flags: the target's own libFuzzer flags, on one line.
    flags=()
    [ -f "fuzz/$name.flags" ] && read -ra flags < "fuzz/$name.flags"
    echo "== $t: ${seconds}s from $seeds"
    if ! ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1" UBSAN_OPTIONS="print_stacktrace=1" \
        "$build/fuzz/$t" "$work" "$seeds" "${dict[@]}" "${flags[@]}" -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -artifact_prefix="$build/artifacts/$name-" -print_final_stats=1 \
        2>"$build/$name.log"; then
        tail -n 60 "$build/$name.log"
        failed+=("$t")
    else
        grep -E "^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+ +DONE)" "$build/$name.log" || true
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs in $build/artifacts/)"
    exit 1
fi
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
