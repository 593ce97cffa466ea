//! `git` checkouts over file:// and ssh://.

use super::{expect, run, write};
use crate::support::TestHosts;
use std::fs;
use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@x")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@x")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn git_checkouts_over_file_and_ssh() {
    let hosts = TestHosts::new(1);
    let dir = tempfile::tempdir_in(hosts.dir()).unwrap();
    let work = dir.path().join("work");
    fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    fs::write(work.join("a"), "1\n").unwrap();
    git(&work, &["add", "a"]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "v1"]);
    let v1 = git(&work, &["rev-parse", "HEAD"]);
    fs::write(work.join("a"), "2\n").unwrap();
    git(&work, &["commit", "-q", "-am", "two"]);
    let main = git(&work, &["rev-parse", "HEAD"]);
    let bare = dir.path().join("repo.git");
    git(
        dir.path(),
        &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()],
    );

    let dest = dir.path().join("co");
    let dest_ssh = dir.path().join("co-ssh");
    let pb = dir.path().join("git.yml");
    write(
        &pb,
        &format!(
            r#"- hosts: all
  gather_facts: false
  tasks:
    - git:
        repo: file://{bare}
        dest: {dest}
        version: "{{{{ ver }}}}"
      register: g
    - copy:
        content: "{{{{ g.before }}}} {{{{ g.after }}}}"
        dest: {dir}/result
      when: g is changed and not ansible_check_mode
    - git:
        repo: ssh://root@{addr}:{port}{bare}
        dest: {dest_ssh}
        version: "{{{{ ver }}}}"
        key_file: {key}
        accept_hostkey: yes
        depth: 1
"#,
            bare = bare.display(),
            dest = dest.display(),
            dest_ssh = dest_ssh.display(),
            dir = dir.path().display(),
            addr = hosts.addr(0),
            port = hosts.port(0),
            key = hosts.client_key().display(),
        ),
    );
    expect(&run(&hosts, &pb, &["-e", "ver=v1"]), "host1", 3, "clone at v1");
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), v1);
    assert_eq!(git(&dest_ssh, &["rev-parse", "HEAD"]), v1);
    let first = fs::read_to_string(dir.path().join("result")).unwrap();
    assert!(
        first == format!("None {v1}") || first == format!(" {v1}"),
        "before/after of a clone: {first}"
    );
    expect(&run(&hosts, &pb, &["-e", "ver=v1"]), "host1", 0, "same version");
    expect(
        &run(&hosts, &pb, &["-e", "ver=main", "--check"]),
        "host1",
        2,
        "check: move to main",
    );
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), v1);
    expect(&run(&hosts, &pb, &["-e", "ver=main"]), "host1", 3, "move to main");
    assert_eq!(git(&dest, &["rev-parse", "HEAD"]), main);
    assert_eq!(git(&dest_ssh, &["rev-parse", "HEAD"]), main);
    assert_eq!(
        fs::read_to_string(dir.path().join("result")).unwrap(),
        format!("{v1} {main}")
    );
    // Local modifications stop the update unless force.
    fs::write(dest.join("a"), "local\n").unwrap();
    let (code, out, _) = run(&hosts, &pb, &["-e", "ver=v1"]);
    assert_ne!(code, 0);
    assert!(out.contains("Local modifications exist"), "{out}");
}
