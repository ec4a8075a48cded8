# shellcheck shell=bash
# The binary a bench script measures; sourced, not run.
#
# bench_binary GIVEN prints GIVEN when it is set (another build, an older commit say, to compare in
# alternating runs), else builds this checkout's release binary and prints its path.
bench_binary() {
    if [ -n "${1:-}" ]; then
        printf '%s' "$1"
        return
    fi
    printf '%s\n' "building the release binary..." >&2
    cargo build --release --locked --bin access-tokens >&2
    printf '%s' target/release/access-tokens
}
