//! Links the release binary with its hot functions together (see
//! scripts/symbol-order.sh, which writes link/hot-symbols.txt).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    for var in [
        "RIGGER_NO_SYMBOL_ORDER",
        "RUSTC_LINKER",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let release = env::var("PROFILE").as_deref() == Ok("release");
    let off = env::var_os("RIGGER_NO_SYMBOL_ORDER").is_some_and(|v| !v.is_empty() && v != "0");
    let list = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link/hot-symbols.txt");
    if !release || off || !list.is_file() {
        return;
    }
    // Only a linker that knows the option gets it: lld (rustc's default on
    // x86_64 Linux since 1.90) does; GNU ld (a distribution's rustc, an
    // older one, or a linker the user chose) refuses it.
    if !linker_orders_symbols() {
        println!(
            "cargo:warning=the linker does not take --symbol-ordering-file: release binary linked without the hot-symbol order"
        );
        return;
    }
    println!(
        "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
        list.display()
    );
    // Names from an older build that no longer exist are expected.
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}

/// Links an empty program for the target with the same compiler, flags and
/// linker as the build and the two ordering options: true if that works.
fn linker_orders_symbols() -> bool {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let src = out.join("order_probe.rs");
    if std::fs::write(&src, "fn main() {}\n").is_err() {
        return false;
    }
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.arg("--crate-name=order_probe")
        .arg("--crate-type=bin")
        .arg("--edition=2021")
        .arg("-o")
        .arg(out.join("order_probe"))
        .arg(&src)
        .arg("-Clink-arg=-Wl,--symbol-ordering-file=/dev/null")
        .arg("-Clink-arg=-Wl,--no-warn-symbol-ordering");
    if let Ok(target) = env::var("TARGET") {
        cmd.arg("--target").arg(target);
    }
    // The build's own flags (-C linker=, -C link-arg=-fuse-ld=…).
    if let Ok(flags) = env::var("CARGO_ENCODED_RUSTFLAGS") {
        cmd.args(flags.split('\x1f').filter(|f| !f.is_empty()));
    }
    // A linker set for the target in cargo's config or environment.
    if let Some(linker) = env::var_os("RUSTC_LINKER") {
        cmd.arg("-C").arg({
            let mut a = std::ffi::OsString::from("linker=");
            a.push(linker);
            a
        });
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
