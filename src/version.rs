//! What `rigger --version` prints: the package version and the git commit
//! the binary was built from (build.rs; "unknown commit" when it was built
//! outside a git checkout, e.g. from a release tarball).

/// `0.1.0 (commit 0123456789ab)` or `0.1.0 (unknown commit)`.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("RIGGER_GIT_COMMIT"), ")");

#[cfg(test)]
mod tests {
    #![allow(dead_code)] // build.rs's other helper
    include!("../build/git_commit.rs");

    #[test]
    fn no_commit_outside_a_checkout_or_in_a_tarball_inside_another_repository() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(git_commit(dir.path()), None);
        // A tarball unpacked in a subdirectory of some repository.
        let ok = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        assert!(ok(&["init", "-q"]));
        assert!(ok(&[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x"
        ]));
        let sub = dir.path().join("rigger-0.1.0");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(git_commit(&sub), None);
        let top = git_commit(dir.path()).expect("the repository's own commit");
        assert_eq!(top.len(), 12, "{top}");
    }
}
