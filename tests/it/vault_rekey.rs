//! `rigger vault rekey` of a directory (vaulted files and inline `!vault`
//! values, all or nothing, finished after a kill -9) and `rigger vault diff`
//! (textconv and git's external diff), checked with ansible-core's own
//! `ansible-vault`/`ansible` and with git.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{rigger_bin, rigger_cmd};

use crate::vault::{ansible, ok, vault};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Every file under `dir` (relative path, bytes), sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn go(root: &Path, d: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                go(root, &p, out);
            } else {
                out.push((p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out);
    out.sort();
    out
}

/// The lines of a YAML text that are not an envelope's.
fn without_envelopes(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            let t = l.trim();
            !(t.starts_with("$ANSIBLE_VAULT") || (!t.is_empty() && t.chars().all(|c| c.is_ascii_hexdigit())))
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn rekey_of_a_directory_changes_every_vaulted_file_and_value_and_ansible_reads_them() {
    let Some(bin) = crate::differential::venv_bin() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(&d.join("pw"), "old-pass\n");
    write(&d.join("devpw"), "dev-pass\n");
    write(&d.join("newpw"), "new-pass\n");
    let repo = d.join("repo");
    // A vaulted group_vars file and a file with two inline values, made by ansible-vault.
    write(&repo.join("group_vars/all/vault.yml"), "db_password: s3cret\n");
    ansible(
        &bin,
        "ansible-vault",
        &repo,
        &["encrypt", "--vault-password-file", "../pw", "group_vars/all/vault.yml"],
    );
    let one = ansible(
        &bin,
        "ansible-vault",
        &repo,
        &[
            "encrypt_string",
            "--vault-password-file",
            "../pw",
            "first value",
            "--name",
            "secret1",
        ],
    );
    let two = ansible(
        &bin,
        "ansible-vault",
        &repo,
        &[
            "encrypt_string",
            "--vault-id",
            "dev@../devpw",
            "second value",
            "--name",
            "secret2",
        ],
    );
    let host_vars = format!(
        "# web1's settings\nuser: app\n{}\nport: 8080   # the app's port\n{}\nlist:\n  - a\n",
        one.trim_end(),
        two.trim_end()
    );
    write(&repo.join("host_vars/web1.yml"), &host_vars);
    // Left alone: a README quoting a vault value, a plain YAML file, a vaulted file under .git.
    write(
        &repo.join("README.md"),
        "Write secrets as\n\n    pw: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      zz\n",
    );
    write(&repo.join("plain.yml"), "a: 1\n");
    std::fs::create_dir_all(repo.join(".git")).unwrap();
    std::fs::copy(repo.join("group_vars/all/vault.yml"), repo.join(".git/stash.yml")).unwrap();
    let before = snapshot(&repo);

    let out = ok(vault(
        &repo,
        &[
            "rekey",
            "--vault-password-file",
            "../pw",
            "--vault-id",
            "dev@../devpw",
            "--new-vault-password-file",
            "../newpw",
            ".",
        ],
    ));
    let _ = out;
    // ansible-core reads the rekeyed file and both inline values with the new password alone.
    assert_eq!(
        ansible(
            &bin,
            "ansible-vault",
            &repo,
            &["view", "--vault-password-file", "../newpw", "group_vars/all/vault.yml"]
        ),
        "db_password: s3cret\n"
    );
    let shown = ansible(
        &bin,
        "ansible",
        &repo,
        &[
            "localhost",
            "-i",
            "localhost,",
            "-c",
            "local",
            "-m",
            "debug",
            "-a",
            "msg={{ secret1 }}|{{ secret2 }}",
            "-e",
            "@host_vars/web1.yml",
            "--vault-password-file",
            "../newpw",
        ],
    );
    assert!(shown.contains("\"msg\": \"first value|second value\""), "{shown}");
    // The old passwords open nothing any more.
    let (code, _, err) = vault(
        &repo,
        &["view", "--vault-password-file", "../pw", "group_vars/all/vault.yml"],
    );
    assert_ne!(code, 0, "{err}");
    // Only the envelopes changed: every other line of the YAML file is as it was.
    let after_text = std::fs::read_to_string(repo.join("host_vars/web1.yml")).unwrap();
    assert_ne!(after_text, host_vars);
    assert_eq!(without_envelopes(&after_text), without_envelopes(&host_vars));
    let after = snapshot(&repo);
    for (p, bytes) in &before {
        let now = after.iter().find(|(q, _)| q == p).map(|(_, b)| b);
        let changed = now != Some(bytes);
        let expected = p.starts_with("group_vars") || p.starts_with("host_vars");
        assert_eq!(changed, expected, "{}: changed {changed}", p.display());
    }
    assert_eq!(
        after.len(),
        before.len(),
        "no journal, backup or temporary file is left"
    );
}

#[test]
fn a_rekey_that_cannot_finish_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(&d.join("pw"), "old\n");
    write(&d.join("other"), "other\n");
    write(&d.join("newpw"), "new\n");
    let repo = d.join("repo");
    for i in 0..4 {
        write(&repo.join(format!("f{i}.yml")), &format!("n: {i}\n"));
    }
    ok(vault(
        &repo,
        &[
            "encrypt",
            "--vault-password-file",
            "../pw",
            "f0.yml",
            "f1.yml",
            "f2.yml",
        ],
    ));
    ok(vault(
        &repo,
        &["encrypt", "--vault-password-file", "../other", "f3.yml"],
    ));
    let before = snapshot(&repo);
    // f3 is under a password not given: nothing is rewritten, and the error names it.
    let (code, _, err) = vault(
        &repo,
        &[
            "rekey",
            "--vault-password-file",
            "../pw",
            "--new-vault-password-file",
            "../newpw",
            ".",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("f3.yml"), "{err}");
    assert_eq!(snapshot(&repo), before);

    // A file that cannot be replaced (immutable): the others are not changed either.
    ok(vault(
        &repo,
        &[
            "rekey",
            "--vault-password-file",
            "../other",
            "--new-vault-password-file",
            "../pw",
            "f3.yml",
        ],
    ));
    let before = snapshot(&repo);
    let immutable = repo.join("f2.yml");
    if !Command::new("chattr")
        .arg("+i")
        .arg(&immutable)
        .status()
        .is_ok_and(|s| s.success())
    {
        return; // no chattr on this file system: the first half stands
    }
    let r = vault(
        &repo,
        &[
            "rekey",
            "--vault-password-file",
            "../pw",
            "--new-vault-password-file",
            "../newpw",
            ".",
        ],
    );
    let _ = Command::new("chattr").arg("-i").arg(&immutable).status();
    assert_ne!(r.0, 0, "{}", r.2);
    assert!(r.2.contains("f2.yml") && r.2.contains("no file was changed"), "{}", r.2);
    assert_eq!(snapshot(&repo), before);
}

/// Which one password opens every file of `names` (`None`: neither
/// opens them all), and their plaintexts.
fn opened_by(repo: &Path, names: &[String]) -> Option<(&'static str, String)> {
    for (pw, which) in [("../pw", "old"), ("../newpw", "new")] {
        let mut args = vec!["view", "--vault-password-file", pw];
        args.extend(names.iter().map(String::as_str));
        let r = vault(repo, &args);
        if r.0 == 0 {
            return Some((which, r.1));
        }
    }
    None
}

#[test]
fn a_rekey_killed_part_way_is_finished_by_the_next_one() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(&d.join("pw"), "old\n");
    write(&d.join("newpw"), "new\n");
    let template = d.join("template");
    let names: Vec<String> = (0..40).map(|i| format!("f{i:02}.yml")).collect();
    for (i, n) in names.iter().enumerate() {
        write(&template.join(n), &format!("value: {i}\n"));
    }
    let mut args = vec!["encrypt", "--vault-password-file", "../pw"];
    args.extend(names.iter().map(String::as_str));
    ok(vault(&template, &args));
    let rekey_args = [
        "vault",
        "rekey",
        "--vault-password-file",
        "../pw",
        "--new-vault-password-file",
        "../newpw",
        ".",
    ];
    let fresh = |k: usize| {
        let repo = d.join(format!("repo{k}"));
        assert!(Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&repo)
            .status()
            .unwrap()
            .success());
        repo
    };
    // How long a whole rekey takes here, to kill the others part way through it.
    let repo = fresh(0);
    let start = Instant::now();
    assert!(Command::new(rigger_bin())
        .args(rekey_args)
        .current_dir(&repo)
        .status()
        .unwrap()
        .success());
    let whole = start.elapsed();
    let expected: String = (0..names.len()).map(|i| format!("value: {i}\n")).collect();
    let mut outcomes = Vec::new();
    // Most of a rekey is decrypting and encrypting, before anything is
    // written: killed then, the next rekey does the whole work. The commit
    // is short: the kills aimed at it wait for its journal (written before
    // the first new version, then again when all are written).
    enum When {
        After(u32),
        Journal(&'static str),
    }
    let plan = [
        When::After(30),
        When::After(60),
        When::Journal("preparing"),
        When::Journal("prepared"),
        When::Journal("preparing"),
        When::Journal("prepared"),
    ];
    for (k, when) in plan.into_iter().enumerate() {
        let repo = fresh(k + 1);
        let jpath = repo.join(".rigger-vault-rekey.journal");
        let mut child = Command::new(rigger_bin())
            .args(rekey_args)
            .current_dir(&repo)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let percent = match when {
            When::After(p) => {
                std::thread::sleep(whole * p / 100);
                format!("{p}%")
            }
            When::Journal(state) => {
                let deadline = Instant::now() + whole * 3;
                while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                    let text = std::fs::read_to_string(&jpath).unwrap_or_default();
                    if text.contains(&format!("\"{state}\"")) {
                        break;
                    }
                    std::thread::sleep(Duration::from_micros(200));
                }
                format!("journal {state}")
            }
        };
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let journal = repo.join(".rigger-vault-rekey.journal").exists();
        // The next rekey finishes (or undoes) an interrupted one, or does the whole rekey itself.
        let mut c = Command::new(rigger_bin());
        c.args(rekey_args).current_dir(&repo);
        let again = rigger_cmd(c, Duration::from_secs(120));
        let Some((which, plain)) = opened_by(&repo, &names) else {
            panic!(
                "kill at {percent} (journal {journal}, rerun exit {}: {}): no one password opens every file",
                again.0, again.2
            );
        };
        assert_eq!(plain, expected, "kill at {percent}: contents");
        let left: Vec<String> = std::fs::read_dir(&repo)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "kill at {percent}: files left behind: {left:?}");
        outcomes.push(format!("{percent}: journal={journal} rerun={} -> {which}", again.0));
    }
    // At least one kill found the journal: the recovery itself was exercised.
    assert!(outcomes.iter().any(|o| o.contains("journal=true")), "{outcomes:?}");
    // Shown with --nocapture: which paths the kills hit.
    eprintln!("rekey kill -9 outcomes (whole rekey {whole:?}): {outcomes:?}");
}

#[test]
fn vault_diff_shows_plaintext_changes_to_git_without_writing_them() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    write(&d.join("pw"), "pw\n");
    let repo = d.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", d)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "t@example.invalid"]);
    git(&["config", "user.name", "t"]);
    let conv = format!(
        "{} vault diff --vault-password-file {}",
        rigger_bin().display(),
        d.join("pw").display()
    );
    git(&["config", "diff.vault.textconv", &conv]);
    write(&repo.join(".gitattributes"), "*.yml diff=vault\n");
    write(&repo.join("secrets.yml"), "db: first-password\n");
    ok(vault(
        &repo,
        &["encrypt", "--vault-password-file", "../pw", "secrets.yml"],
    ));
    let enc = ok(vault(
        &repo,
        &[
            "encrypt_string",
            "--vault-password-file",
            "../pw",
            "--name",
            "token",
            "tok-1",
        ],
    ));
    write(&repo.join("vars.yml"), &format!("user: app\n{enc}"));
    git(&["add", "."]);
    git(&["commit", "-qm", "one"]);
    write(&repo.join("secrets.yml"), "db: second-password\n");
    ok(vault(
        &repo,
        &["encrypt", "--vault-password-file", "../pw", "secrets.yml"],
    ));
    let enc = ok(vault(
        &repo,
        &[
            "encrypt_string",
            "--vault-password-file",
            "../pw",
            "--name",
            "token",
            "tok-2",
        ],
    ));
    write(&repo.join("vars.yml"), &format!("user: app\n{enc}"));
    let diff = git(&["diff"]);
    assert!(diff.contains("-db: first-password\n+db: second-password\n"), "{diff}");
    assert!(
        diff.contains("-  tok-1\n+  tok-2\n") || diff.contains("-          tok-1\n+          tok-2\n"),
        "{diff}"
    );
    assert!(!diff.contains("$ANSIBLE_VAULT"), "{diff}");
    // The two-file form exits 1 on a difference, as diff(1); nothing decrypted is left on disk.
    git(&["show", "HEAD:secrets.yml"]);
    std::fs::write(d.join("old.yml"), git(&["show", "HEAD:secrets.yml"])).unwrap();
    let r = vault(
        &repo,
        &["diff", "--vault-password-file", "../pw", "../old.yml", "secrets.yml"],
    );
    assert_eq!(r.0, 1, "{}", r.2);
    assert!(
        r.1.contains("-db: first-password") && r.1.contains("+db: second-password"),
        "{}",
        r.1
    );
    let plain_on_disk = snapshot(d)
        .into_iter()
        .filter(|(p, _)| !p.starts_with("repo/.git"))
        .any(|(_, b)| String::from_utf8_lossy(&b).contains("second-password"));
    assert!(!plain_on_disk, "a decrypted copy was written");
    // git's external-diff form: labelled a/ b/, exit 0.
    let r = vault(
        &repo,
        &[
            "diff",
            "--vault-password-file",
            "../pw",
            "secrets.yml",
            "../old.yml",
            "0",
            "100644",
            "secrets.yml",
            "0",
            "100644",
        ],
    );
    assert_eq!(r.0, 0, "{}", r.2);
    assert!(
        r.1.contains("--- a/secrets.yml") && r.1.contains("+++ b/secrets.yml"),
        "{}",
        r.1
    );
}
