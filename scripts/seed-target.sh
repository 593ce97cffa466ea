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

# Crate and target names of the packages that are not from a registry: the
# workspace's own (with their targets: lib, bins, test binaries) from
# `cargo metadata --no-deps`, and the other path packages (the vendored
# russh) from Cargo.lock, where a package without a `source` is local. Not a
# full `cargo metadata`: it needs every platform's dependencies downloaded
# (android_system_properties, ...), which a new machine that built for Linux
# only has not, and --offline then fails.
mapfile -t local_names < <(
    {
        cargo metadata --format-version 1 --offline --no-deps 2>/dev/null | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    print(p["name"])
    for t in p["targets"]:
        print(t["name"])
'
        python3 -c '
import tomllib
with open("Cargo.lock", "rb") as f:
    lock = tomllib.load(f)
for p in lock["package"]:
    if "source" not in p:
        print(p["name"])
'
    } | python3 -c '
import sys
for n in sorted({l.strip() for l in sys.stdin if l.strip()}):
    print(n.replace("-", "_"))
    print(n)
'
)
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
