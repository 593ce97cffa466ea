//! Links the release binary with its hot functions together (see
//! scripts/symbol-order.sh, which writes link/hot-symbols.txt).

use std::env;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=RIGGER_NO_SYMBOL_ORDER");
    println!("cargo:rerun-if-env-changed=CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER");
    let release = env::var("PROFILE").as_deref() == Ok("release");
    // rustc links this target with lld (the default since Rust 1.90), which
    // knows --symbol-ordering-file; other targets keep their linker's order.
    let lld_target = env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu") && rustc_minor() >= 90;
    let off = env::var_os("RIGGER_NO_SYMBOL_ORDER").is_some_and(|v| !v.is_empty() && v != "0");
    // A linker chosen by the user (another ld, a wrapper) may not know the
    // option: leave the order to it.
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = ["fuse-ld", "linker", "link-self-contained"]
        .iter()
        .any(|f| flags.contains(f))
        || env::var_os("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER").is_some();
    let off = off || own_linker;
    let list = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link/hot-symbols.txt");
    if release && lld_target && !off && list.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        // Names from an older build that no longer exist are expected.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// The minor version of the compiler cargo uses (0 when unknown).
fn rustc_minor() -> u32 {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc).arg("--version").output();
    let text = out
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    text.split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}
