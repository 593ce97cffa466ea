//! Links the release binary with its hot functions together (see
//! scripts/symbol-order.sh, which writes link/hot-symbols.txt), and with
//! packed relative relocations where the linker and C library take them.

#![allow(clippy::disallowed_macros)] // tests and build scripts print with std's macros

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

include!("build/git_commit.rs");

fn main() {
    // `rigger --version`: the commit this was built from ("unknown commit"
    // outside a git checkout, e.g. from a release tarball).
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    println!("cargo:rerun-if-env-changed=RIGGER_BUILD_COMMIT");
    println!("cargo:rerun-if-changed=build/git_commit.rs");
    for f in git_watch_files(&manifest) {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let commit = git_commit(&manifest).map_or_else(|| "unknown commit".into(), |c| format!("commit {c}"));
    println!("cargo:rustc-env=RIGGER_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=link/hot-symbols.txt");
    for var in [
        "RIGGER_NO_SYMBOL_ORDER",
        "RIGGER_NO_RELR",
        "RUSTC_LINKER",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    // PROFILE is "release" for every profile that inherits from it (`dist`).
    let release = env::var("PROFILE").as_deref() == Ok("release");
    if !release {
        return;
    }
    let set = |var: &str| env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0");
    // A position-independent binary's pointers in data are fixed up by the
    // loader at every start from a table of relative relocations (~470 KB
    // here, read whole, and its pages count in the process's memory). Packed
    // (DT_RELR) the table is a few KB. It needs glibc 2.36 where the binary
    // runs: the probe program must link and run on this machine, and
    // `RIGGER_NO_RELR=1` builds for older systems.
    let native = env::var("HOST").ok() == env::var("TARGET").ok();
    if !set("RIGGER_NO_RELR") && native && probe(&["-Clink-arg=-Wl,-z,pack-relative-relocs"], true) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let list = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("link/hot-symbols.txt");
    if set("RIGGER_NO_SYMBOL_ORDER") || !list.is_file() {
        return;
    }
    // Only a linker that knows the option gets it: lld (rustc's default on
    // x86_64 Linux since 1.90) does; GNU ld (a distribution's rustc, an
    // older one, or a linker the user chose) refuses it.
    let order = [
        "-Clink-arg=-Wl,--symbol-ordering-file=/dev/null",
        "-Clink-arg=-Wl,--no-warn-symbol-ordering",
    ];
    if !probe(&order, false) {
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

/// Links a small program for the target with the same compiler, flags and
/// linker as the build and `args`: true if that works (and, with `run`,
/// the program runs and prints what it should).
fn probe(args: &[&str], run: bool) -> bool {
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let src = out.join("link_probe.rs");
    // A pointer in data: a relative relocation for the loader.
    let prog = "static S: &str = \"ok\";\nstatic P: &&str = &S;\nfn main() { println!(\"{}\", P); }\n";
    if std::fs::write(&src, prog).is_err() {
        return false;
    }
    let bin = out.join("link_probe");
    let _ = std::fs::remove_file(&bin);
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let mut cmd = Command::new(rustc);
    cmd.arg("--crate-name=link_probe")
        .arg("--crate-type=bin")
        .arg("--edition=2021")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .args(args);
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
    let linked = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !linked || !run {
        return linked;
    }
    Command::new(&bin)
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout == b"ok\n")
}
