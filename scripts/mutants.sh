#!/usr/bin/env bash
# Mutation testing with cargo-mutants: injects small bugs (an operator swapped, a function
# returning a default) into the named files and reruns the tests of their package; a mutant
# the tests still pass is "missed". Results go to mutants.out/ (caught.txt, missed.txt,
# timeout.txt, unviable.txt).
#
# Needs cargo-mutants (cargo install cargo-mutants --locked). Too slow for CI. Measured here
# (2 cores): with the vae crate's tests alone (WORKSPACE=false) a mutant takes ~16 s
# (engine/adam.rs and eval.rs, 116 mutants, 31 minutes with the first build); with the whole
# workspace's tests (the default, since the run-folder code is tested from the binary too)
# about a minute, so the default files' ~500 mutants take most of a working day.
#
# Usage: [WORKSPACE=false] scripts/mutants.sh [FILE...] [-- CARGO-MUTANTS OPTIONS...]
#        (default files: the engine's objectives, evaluation and the run-folder code; e.g.
#        `-- --iterate` retests only what the last run did not catch, `-- -F check` only the
#        functions whose name matches)
set -euo pipefail
cd "$(dirname "$0")/.."
files=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do files+=("$1"); shift; done
[ $# -gt 0 ] && shift
[ ${#files[@]} -gt 0 ] || files=(
    crates/vae/src/engine/adam.rs
    crates/vae/src/engine/loss.rs
    crates/vae/src/engine/gaussian.rs
    crates/vae/src/eval.rs
    crates/vae/src/checkpoint.rs
    crates/vae/src/run/mod.rs
    crates/vae/src/run/new.rs
    crates/vae/src/files.rs
)
args=()
for f in "${files[@]}"; do args+=(--file "$f"); done
# The run-folder code is tested from the binary too (crates/vae-cli/tests/hostile.rs).
exec cargo mutants --test-workspace="${WORKSPACE:-true}" "${args[@]}" "$@"
