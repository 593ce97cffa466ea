#!/usr/bin/env bash
# Regenerate link/hot-symbols.txt: the functions a release rigger executes for
# its everyday work (workload W of bench/ cold and warm on ten loopback hosts,
# a `rigger check` of it, a run with fact gathering), recorded by callgrind.
#
# build.rs gives this list to the linker (lld --symbol-ordering-file) when it
# links the release binary: the listed functions are placed next to each other
# instead of spread over the 16 MB of machine code. The kernel maps the pages
# of a binary around each page a process touches (fault-around, 64 KiB), so
# with the hot code together a run maps ~3 MB of code instead of ~11 MB:
# lower peak RSS, fewer page faults. Names that no longer exist after a code
# change are ignored (the functions are then just placed as before); rerun
# this script after large changes. `RIGGER_NO_SYMBOL_ORDER=1 cargo build
# --release` links without the list.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
root=$PWD
command -v valgrind >/dev/null || { echo "error: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
RIGGER_NO_SYMBOL_ORDER=1 cargo build --release
bin=$root/target/release/rigger
# shellcheck source=scripts/testhosts.sh
source scripts/testhosts.sh
dir=$(mktemp -d)
trap 'testhosts_stop; rm -rf "$dir"' EXIT
testhosts_start 10 "$dir" >/dev/null
/usr/bin/python3 bench/bench.py inventories --hosts-dir "$dir" >/dev/null
inv=$dir/bench/inventory.ini
cat >"$dir/facts.yml" <<'YML'
- hosts: bench
  gather_facts: true
  tasks:
    - debug:
        msg: "{{ ansible_hostname }} {{ ansible_default_ipv4.address | default('') }}"
YML
n=0
cg() {
    n=$((n + 1))
    (cd bench/workload && HOME=$dir/home valgrind -q --tool=callgrind --demangle=no \
        --callgrind-out-file="$dir/cg.$n" "$bin" "$@" >/dev/null 2>&1) || true
}
cg run -i "$inv" --known-hosts "$dir/known_hosts" site.yml
cg run -i "$inv" --known-hosts "$dir/known_hosts" site.yml
cg check -i "$inv" --known-hosts "$dir/known_hosts" --db "$dir/h.db" site.yml
cg run -i "$inv" --known-hosts "$dir/known_hosts" "$dir/facts.yml"
# Every function named in the profiles that is a code symbol of the binary,
# in groups: first what `rigger run` of W executes (cold and warm), then
# what `rigger check` adds, then fact gathering. A plain run then maps only
# its own group's pages, not pages it shares with functions of the others.
nm --defined-only "$bin" | awk '$2 ~ /^[tTwW]$/ {print $3}' | sort -u >"$dir/syms"
ran() { grep -ohE '^c?fn=\([0-9]+\) .*' "$@" | sed -E 's/^c?fn=\([0-9]+\) //' | sort -u; }
: >"$dir/seen"
: >link/hot-symbols.txt
for group in "$dir/cg.1 $dir/cg.2" "$dir/cg.3" "$dir/cg.4"; do
    # shellcheck disable=SC2086 # the group is a list of files
    ran $group | comm -12 "$dir/syms" - | comm -23 - "$dir/seen" >"$dir/new"
    cat "$dir/new" >>link/hot-symbols.txt
    sort -u "$dir/seen" "$dir/new" -o "$dir/seen"
done
echo "link/hot-symbols.txt: $(wc -l <link/hot-symbols.txt) functions from $n profiles"
