#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after another, FUZZ_SECONDS each (default 600), and
# fails on the first crash, panic or timeout. Names as arguments run only those targets:
#   scripts/fuzz.sh caller_jwt expiry
#   FUZZ_SECONDS=60 scripts/fuzz.sh
# Not part of CI: a run takes FUZZ_SECONDS times the number of targets, plus the build.
# cargo-fuzz needs nightly compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
# Findings land in fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/<target>/; a
# dictionary in fuzz/dict/<target>.dict is passed when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-600}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

for target in "${targets[@]}"; do
    echo "== $target: ${seconds} s" >&2
    dict=()
    if [ -f "fuzz/dict/$target.dict" ]; then
        dict=("-dict=$PWD/fuzz/dict/$target.dict")
    fi
    nice -n 19 cargo fuzz run "$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}"
done
echo "fuzzing: ${#targets[@]} target(s), ${seconds} s each, no finding" >&2
