#!/usr/bin/env bash
# Run each fuzz target for a fixed time with fresh random seeds (see fuzz/README.md).
#
#   fuzz/run.sh [SECONDS] [TARGET...]      default: 60 seconds, every target
#
# A failing input is written to fuzz/corpus/<target>/crash-<hash>, which the normal test suite
# then replays (fuzz::corpus_replays). Extra cargo flags (e.g. --release) go in FUZZ_CARGO_FLAGS.
set -euo pipefail

ALL=(pack_preamble pack_header sealed index tree snapshot config key_file lock)

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]]; then
    echo "usage: fuzz/run.sh [SECONDS] [TARGET...]; targets: ${ALL[*]}" >&2
    exit 2
fi
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=("${ALL[@]}")
fi
for t in "${targets[@]}"; do
    if [[ " ${ALL[*]} " != *" $t "* ]]; then
        echo "unknown target $t; targets: ${ALL[*]}" >&2
        exit 2
    fi
done

cd "$(dirname "$0")/.."
read -r -a flags <<< "${FUZZ_CARGO_FLAGS:-}"
cargo test "${flags[@]}" --test it --no-run --quiet

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
failed=()
started=$SECONDS
for t in "${targets[@]}"; do
    if SITEVAULT_FUZZ_SECONDS="$secs" SITEVAULT_FUZZ_TARGET="$t" \
        cargo test "${flags[@]}" --quiet --test it -- --exact "fuzz::$t" --nocapture \
        --test-threads 1 >"$log" 2>&1; then
        grep '^fuzz ' "$log" || true
    else
        grep -E '^fuzz |written to' "$log" || tail -n 40 "$log"
        failed+=("$t")
    fi
done

# The corpus, including any crash just written, must replay cleanly.
if ! cargo test "${flags[@]}" --quiet --test it -- --exact fuzz::corpus_replays >"$log" 2>&1; then
    tail -n 40 "$log"
    failed+=(corpus_replays)
fi

echo "fuzz/run.sh: ${#targets[@]} targets, $((SECONDS - started)) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}; new inputs are in fuzz/corpus/<target>/crash-*" >&2
    exit 1
fi
