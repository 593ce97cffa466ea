#!/usr/bin/env bash
# Builds the Debian package of rigger: the `dist` build (fat LTO, stripped),
# its man pages and bash/zsh/fish completions generated from the binary
# itself (so they match its options), packed by cargo-deb
# (`cargo install cargo-deb --locked` once) from the metadata in Cargo.toml
# ([package.metadata.deb], the one description of the package). Prints the
# .deb's path last.
#
#   scripts/deb.sh                             # -> target/debian/rigger_VERSION-1_ARCH.deb
#   scripts/deb.sh --profile quick --no-build  # package the binary the quickstart built (CI)
#   sudo dpkg -i target/debian/rigger_*.deb
#
# --profile NAME packages the build of that Cargo profile (default dist);
# --no-build packages the binary already built for it instead of building,
# and fails if there is none. cargo-deb strips the binary either way.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=dist
build=yes
while (($#)); do
    case $1 in
        --profile) profile=${2:?--profile needs a name}; shift 2 ;;
        --no-build) build=no; shift ;;
        *) echo "deb.sh: unknown argument $1 (--profile NAME, --no-build)" >&2; exit 2 ;;
    esac
done

if ! cargo deb --version >/dev/null 2>&1; then
    echo "deb.sh: cargo-deb is missing: cargo install cargo-deb --locked" >&2
    exit 1
fi
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
case $profile in
    dev | test) bin=$target/debug/rigger ;;
    *) bin=$target/$profile/rigger ;;
esac

if [[ $build == yes ]]; then
    echo "deb.sh: building the $profile profile (minutes; dist is fat LTO)" >&2
    cargo build --profile "$profile" --locked --bin rigger >&2
elif [[ ! -x $bin ]]; then
    echo "deb.sh: $bin is not built (cargo build --profile $profile), and --no-build was given" >&2
    exit 1
fi

# cargo-deb reads them from here (Cargo.toml [package.metadata.deb] assets).
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" man --dir "$assets/man"
"$bin" completions bash >"$assets/completions/rigger.bash"
"$bin" completions zsh >"$assets/completions/_rigger"
"$bin" completions fish >"$assets/completions/rigger.fish"

rm -f "$target"/debian/rigger_*.deb
cargo deb --profile "$profile" --no-build --strip --locked >&2
ls -t "$target"/debian/rigger_*.deb | head -n 1
