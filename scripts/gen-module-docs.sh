#!/usr/bin/env bash
# Regenerate the module reference, docs/modules/, from `rigger doc --markdown`
# (one page per built-in module and the index README.md). The `docs`
# integration test (tests/it/docs.rs) fails when the committed pages differ
# from what this writes. RIGGER=path/to/rigger uses that binary instead of
# building target/debug/rigger.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -z "${RIGGER:-}" ]]; then
    cargo build --quiet --bin rigger
    RIGGER=target/debug/rigger
fi
out=docs/modules
mkdir -p "$out"
rm -f "$out"/*.md
"$RIGGER" doc --markdown --list >"$out/README.md"
# The built-in modules are the first block of `rigger doc --list`, up to its
# first empty line (what follows lists the modules that run through Ansible).
"$RIGGER" doc --list | awk 'NF == 0 { exit } { print $1 }' | while read -r module; do
    "$RIGGER" doc --markdown "$module" >"$out/$module.md"
done
echo "wrote $(ls "$out" | wc -l) pages to $out/"
