#!/usr/bin/env bash
# Builds one fuzz target with libFuzzer and AddressSanitizer and runs it for SECONDS on a scratch copy
# of its seed corpus and its regression inputs (so the committed files are never changed). Crashes,
# leaks, timeouts and out-of-memory inputs are saved under fuzz-artifacts/TARGET/ and make this script
# fail; replay one with a normal build: `.build/debug/TARGET FILE`. At the end it prints libFuzzer's
# final stats (stat::number_of_executed_units is the exec count).
#
#   tools/fuzz.sh FuzzNPY 180
#   tools/fuzz.sh FuzzParams 60 -max_len=8192      # extra arguments go to libFuzzer, after the defaults
#
# TARGET is a SwiftPM product (Sources/TARGET/main.swift); its seeds live in
# Tests/Fuzz/corpus/NAME/, NAME being TARGET without "Fuzz", lower-cased (FuzzNPY -> npy), inputs that
# once broke it in Tests/Fixtures/fuzz/NAME/ (replayed by the unit tests), and an optional libFuzzer
# dictionary in Tests/Fuzz/NAME.dict. Inputs may grow to 1 MB (-max_len), so the loaders see files
# beyond the 4 KB libFuzzer would otherwise stop at, and FuzzGraph recipes of deep chains and long texts.
# KILN_FUZZ_SCRATCH overrides the build folder (default .build-fuzz); KILN_FUZZ_KEEP=1 keeps the
# grown corpus instead of deleting it.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: tools/fuzz.sh TARGET SECONDS [libFuzzer options...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2

root=$(cd "$(dirname "$0")/.." && pwd)
name=$(printf '%s' "${target#Fuzz}" | tr '[:upper:]' '[:lower:]')
seeds="$root/Tests/Fuzz/corpus/$name"
if [ ! -d "$seeds" ]; then
    echo "tools/fuzz.sh: no seed corpus for $target at $seeds" >&2
    exit 2
fi
scratch=${KILN_FUZZ_SCRATCH:-$root/.build-fuzz}

# -parse-as-library: libFuzzer's driver, not top-level code, is the program's entry point.
# -DKILN_FUZZ selects the libFuzzer entry points in the target's main.swift.
# Extern: main.swift declares libFuzzer's LLVMFuzzerRunDriver with @_extern(c).
(cd "$root" && swift build -c debug --scratch-path "$scratch" --product "$target" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -DKILN_FUZZ \
    -Xswiftc -enable-experimental-feature -Xswiftc Extern)

work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-fuzz-$name.XXXXXX")
if [ "${KILN_FUZZ_KEEP:-0}" = 1 ]; then
    echo "tools/fuzz.sh: the grown corpus stays in $work"
else
    trap 'rm -rf "$work"' EXIT
fi
cp "$seeds"/* "$work/"
if [ -d "$root/Tests/Fixtures/fuzz/$name" ]; then cp "$root/Tests/Fixtures/fuzz/$name"/* "$work/"; fi
artifacts="$root/fuzz-artifacts/$target"
mkdir -p "$artifacts"

# FuzzGraph's largest recipes (60,000 nodes, read twice and inferred) take 6 s in a debug build and
# over 10 s under AddressSanitizer: that is their size, not a hang, so its timeout is longer.
timeout=10
if [ "$target" = FuzzGraph ]; then timeout=30; fi

dict=()
if [ -f "$root/Tests/Fuzz/$name.dict" ]; then dict=(-dict="$root/Tests/Fuzz/$name.dict"); fi

# A small memory budget: arrays sized by a fuzzed input must be refused with an error well below
# libFuzzer's -rss_limit_mb, never allocated (FuzzGraph binds large graphs under it).
export KILN_MEMORY_LIMIT=${KILN_MEMORY_LIMIT:-256M}

"$scratch/debug/$target" "$work" -max_total_time="$seconds" -artifact_prefix="$artifacts/" \
    -max_len=1048576 -timeout="$timeout" -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" "$@"
