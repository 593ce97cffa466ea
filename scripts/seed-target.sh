#!/usr/bin/env bash
# Copies the compiled crates.io dependencies of one checkout's debug build
# into another checkout's (empty) target directory, so that a second clone
# compiles only its own crates (rigger, the vendored russh, the test
# binaries) instead of every dependency from scratch. CI's clone phase uses
# it: the clone still builds and runs with its own target directory.
#
#   scripts/seed-target.sh FROM_TARGET TO_TARGET
#
# Only artifacts of registry packages are copied: cargo reuses them because
# their fingerprints do not depend on where the checkout is. Those of path
# packages would not be reused (their hashes include the checkout's path).
set -euo pipefail
cd "$(dirname "$0")/.."

from=${1:?usage: seed-target.sh FROM_TARGET TO_TARGET}/debug
to=${2:?usage: seed-target.sh FROM_TARGET TO_TARGET}/debug
if [[ ! -d $from/deps ]]; then
    echo "seed-target: $from/deps does not exist: nothing to copy" >&2
    exit 0
fi

# Crate and target names of the packages that are not from a registry.
mapfile -t local_names < <(cargo metadata --format-version 1 --offline 2>/dev/null | python3 -c '
import json, sys
m = json.load(sys.stdin)
names = set()
for p in m["packages"]:
    if p["source"] is None:
        names.add(p["name"])
        for t in p["targets"]:
            names.add(t["name"])
for n in sorted(names):
    print(n.replace("-", "_"))
    print(n)
')
if ((${#local_names[@]} == 0)); then
    echo "seed-target: cargo metadata failed: nothing copied" >&2
    exit 0
fi

# NAME-HASH or libNAME-HASH, with any extension (.rlib, .rmeta, .d, .so).
shopt -s extglob
local_artifact() {
    local n
    for n in "${local_names[@]}"; do
        [[ $1 == ?(lib)"$n"-+([0-9a-f])?(.*) ]] && return 0
    done
    return 1
}

mkdir -p "$to"
start=$SECONDS
copied=0
for sub in deps .fingerprint build; do
    [[ -d $from/$sub ]] || continue
    files=()
    for f in "$from/$sub"/*; do
        local_artifact "${f##*/}" || files+=("$f")
    done
    mkdir -p "$to/$sub"
    ((${#files[@]} == 0)) || cp -a -t "$to/$sub/" -- "${files[@]}"
    copied=$((copied + ${#files[@]}))
done
echo "seed-target: copied $copied dependency artifacts ($(du -sh "$to" | cut -f1)) into $to in $((SECONDS - start))s"
