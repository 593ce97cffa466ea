#!/usr/bin/env bash
# Builds the Debian package of rigger: the `dist` build (fat LTO, stripped),
# its man pages and bash/zsh/fish completions generated from the binary
# itself (so they match its options), packed by cargo-deb
# (`cargo install cargo-deb --locked` once). Prints the .deb's path last.
#
#   scripts/deb.sh            # -> target/debian/rigger_VERSION-1_ARCH.deb
#   sudo dpkg -i target/debian/rigger_*.deb
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo deb --version >/dev/null 2>&1; then
    echo "deb.sh: cargo-deb is missing: cargo install cargo-deb --locked" >&2
    exit 1
fi
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

echo "deb.sh: building the dist profile (fat LTO; minutes)" >&2
cargo build --profile dist --locked >&2
bin=$target/dist/rigger

# cargo-deb reads them from here (Cargo.toml [package.metadata.deb] assets).
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --dir "$assets/man"
"$bin" completions bash >"$assets/completions/rigger.bash"
"$bin" completions zsh >"$assets/completions/_rigger"
"$bin" completions fish >"$assets/completions/rigger.fish"

rm -f "$target"/debian/rigger_*.deb
cargo deb --profile dist --no-build --locked >&2
ls -t "$target"/debian/rigger_*.deb | head -n 1
