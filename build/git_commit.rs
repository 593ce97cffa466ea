// The git commit a build was made from, for `rigger --version`. Shared by
// build.rs and a unit test (src/version.rs includes this file).

/// The commit of the checkout at `dir` (12 hex digits), or `None` when `dir`
/// is not the top of a git work tree (a release tarball, or a tarball
/// unpacked inside some other repository) or git is missing. A packager
/// may name the commit in `RIGGER_BUILD_COMMIT` (it wins).
pub fn git_commit(dir: &std::path::Path) -> Option<String> {
    if let Some(c) = std::env::var("RIGGER_BUILD_COMMIT").ok().filter(|c| !c.trim().is_empty()) {
        return Some(c.trim().to_string());
    }
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !s.is_empty()).then_some(s)
    };
    // A tarball unpacked inside another repository must not report that
    // repository's commit.
    let top = std::fs::canonicalize(git(&["rev-parse", "--show-toplevel"])?).ok()?;
    if std::fs::canonicalize(dir).ok()? != top {
        return None;
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}

/// The files whose change means another commit is checked out: HEAD and
/// the branch it names (loose or packed).
pub fn git_watch_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let path_of = |name: &str| -> Option<std::path::PathBuf> {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["rev-parse", "--git-path", name])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !s.is_empty()).then(|| dir.join(s))
    };
    let mut out = Vec::new();
    for name in ["HEAD", "packed-refs"] {
        out.extend(path_of(name));
    }
    let branch = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["symbolic-ref", "-q", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok());
    if let Some(b) = branch {
        out.extend(path_of(b.trim()));
    }
    out
}
