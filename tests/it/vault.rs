//! ansible-vault compatibility: `rigger vault` and ansible-core's
//! `ansible-vault` (from PyPI, scripts/ansible-venv.sh) read each other's
//! files and strings (1.1, 1.2 with vault ids); vaulted data reaches a real
//! sshd test host through every place a run reads it; a wrong password names
//! the data and the vault ids tried; `edit` keeps the plaintext in a 0600
//! temporary file that it removes.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::engine::Lab;
use crate::support::{rigger_bin, rigger_cmd};

pub(crate) fn vault(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(rigger_bin());
    c.arg("vault").args(args).current_dir(dir);
    rigger_cmd(c, Duration::from_secs(60))
}

pub(crate) fn ok(r: (i32, String, String)) -> String {
    assert_eq!(r.0, 0, "failed\n--- stdout ---\n{}\n--- stderr ---\n{}", r.1, r.2);
    r.1
}

/// An `ansible-vault`/`ansible` command of the venv, run in `dir`.
pub(crate) fn ansible(bin: &Path, tool: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin.join(tool))
        .args(args)
        .current_dir(dir)
        .env("ANSIBLE_LOCAL_TEMP", dir.join(".ansible-tmp"))
        .env("ANSIBLE_HOME", dir.join(".ansible-home"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed ({})\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn executable(dir: &Path, name: &str, text: &str) {
    write(dir, name, text);
    std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn ansible_vault_and_rigger_vault_read_each_others_files_and_strings() {
    let Some(bin) = crate::differential::venv_bin() else {
        return;
    };
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    write(d, "pw", "hunter2\n");
    write(d, "devpw", "dev-secret\n");
    // A client script, as Ansible runs one: it is given --vault-id LABEL.
    executable(
        d,
        "keys-client.sh",
        "#!/bin/sh\n[ \"$2\" = prod ] && echo prod-secret && exit 0\nexit 2\n",
    );

    // ansible-vault → rigger: 1.1 (no id), 1.2 (a vault id), a client script's id.
    write(d, "a.yml", "a: one\n");
    write(d, "b.yml", "b: two\n");
    write(d, "c.yml", "c: three\n");
    ansible(
        &bin,
        "ansible-vault",
        d,
        &["encrypt", "--vault-password-file", "pw", "a.yml"],
    );
    ansible(
        &bin,
        "ansible-vault",
        d,
        &["encrypt", "--vault-id", "dev@devpw", "b.yml"],
    );
    ansible(
        &bin,
        "ansible-vault",
        d,
        &["encrypt", "--vault-id", "prod@keys-client.sh", "c.yml"],
    );
    assert!(std::fs::read_to_string(d.join("a.yml"))
        .unwrap()
        .starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
    assert!(std::fs::read_to_string(d.join("b.yml"))
        .unwrap()
        .starts_with("$ANSIBLE_VAULT;1.2;AES256;dev\n"));
    assert_eq!(
        ok(vault(d, &["view", "--vault-password-file", "pw", "a.yml"])),
        "a: one\n"
    );
    // Several identities: each file is decrypted by its own.
    let ids = [
        "--vault-id",
        "dev@devpw",
        "--vault-id",
        "prod@keys-client.sh",
        "--vault-password-file",
        "pw",
    ];
    let mut args = vec!["view"];
    args.extend(ids);
    args.extend(["a.yml", "b.yml", "c.yml"]);
    assert_eq!(ok(vault(d, &args)), "a: one\nb: two\nc: three\n");
    ok(vault(d, &["decrypt", "--vault-id", "dev@devpw", "b.yml"]));
    assert_eq!(std::fs::read_to_string(d.join("b.yml")).unwrap(), "b: two\n");

    // rigger → ansible-vault: files in both formats.
    write(d, "r1.yml", "r1: plain\n");
    write(d, "r2.yml", "r2: labelled\n");
    ok(vault(d, &["encrypt", "--vault-password-file", "pw", "r1.yml"]));
    ok(vault(d, &["encrypt", "--vault-id", "dev@devpw", "r2.yml"]));
    assert!(std::fs::read_to_string(d.join("r2.yml"))
        .unwrap()
        .starts_with("$ANSIBLE_VAULT;1.2;AES256;dev\n"));
    assert_eq!(
        ansible(
            &bin,
            "ansible-vault",
            d,
            &["view", "--vault-password-file", "pw", "r1.yml"]
        ),
        "r1: plain\n"
    );
    assert_eq!(
        ansible(&bin, "ansible-vault", d, &["view", "--vault-id", "dev@devpw", "r2.yml"]),
        "r2: labelled\n"
    );
    // Standard input to standard output.
    let mut c = Command::new(rigger_bin());
    c.args([
        "vault",
        "encrypt",
        "--vault-password-file",
        "pw",
        "--output",
        "piped.yml",
    ])
    .current_dir(d);
    write(d, "plain.yml", "piped: yes\n");
    c.stdin(std::fs::File::open(d.join("plain.yml")).unwrap());
    assert!(c.status().unwrap().success());
    assert_eq!(
        ansible(
            &bin,
            "ansible-vault",
            d,
            &["view", "--vault-password-file", "pw", "piped.yml"]
        ),
        "piped: yes\n"
    );

    // encrypt_string both ways: the `!vault` values as vars files.
    let mine = ok(vault(
        d,
        &[
            "encrypt_string",
            "--vault-id",
            "dev@devpw",
            "--name",
            "from_rigger",
            "s3cr3t rigger",
        ],
    ));
    assert!(
        mine.starts_with("from_rigger: !vault |\n          $ANSIBLE_VAULT;1.2;AES256;dev\n"),
        "{mine}"
    );
    write(d, "mine.yml", &mine);
    let shown = ansible(
        &bin,
        "ansible",
        d,
        &[
            "localhost",
            "-c",
            "local",
            "-i",
            "localhost,",
            "-m",
            "debug",
            "-a",
            "var=from_rigger",
            "-e",
            "@mine.yml",
            "--vault-id",
            "dev@devpw",
        ],
    );
    assert!(shown.contains("\"from_rigger\": \"s3cr3t rigger\""), "{shown}");
    let theirs = ansible(
        &bin,
        "ansible-vault",
        d,
        &[
            "encrypt_string",
            "--vault-password-file",
            "pw",
            "--name",
            "from_ansible",
            "s3cr3t ansible",
        ],
    );
    write(d, "theirs.yml", &theirs);
    write(
        d,
        "show.yml",
        "- hosts: localhost\n  gather_facts: false\n  vars_files: [theirs.yml]\n  tasks:\n    - copy:\n        content: \"{{ from_ansible }}\"\n        dest: ./shown.txt\n",
    );
    let mut c = Command::new(rigger_bin());
    c.args([
        "run",
        "show.yml",
        "-i",
        "localhost,",
        "-c",
        "local",
        "--vault-password-file",
        "pw",
    ])
    .current_dir(d);
    let r = rigger_cmd(c, Duration::from_secs(60));
    assert_eq!(r.0, 0, "{}\n{}", r.1, r.2);
    assert_eq!(std::fs::read_to_string(d.join("shown.txt")).unwrap(), "s3cr3t ansible");
}

#[test]
fn vaulted_data_reaches_the_host_from_every_place_a_run_reads_it() {
    let lab = Lab::new(1);
    let dir = lab.dir.path();
    write(dir, "pw", "topsecret\n");
    write(dir, "devpw", "devsecret\n");
    let enc = |name: &str, text: &str, id: &[&str]| {
        write(dir, name, text);
        let mut args = vec!["encrypt"];
        args.extend(id);
        args.push(name);
        ok(vault(dir, &args));
        assert!(std::fs::read_to_string(dir.join(name))
            .unwrap()
            .starts_with("$ANSIBLE_VAULT;"));
    };
    let pw: &[&str] = &["--vault-password-file", "pw"];
    let dev: &[&str] = &["--vault-id", "dev@devpw"];
    std::fs::create_dir_all(dir.join("group_vars")).unwrap();
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    enc("group_vars/testhosts.yml", "from_group_vars: gv\n", pw);
    enc("vars_file.yml", "from_vars_files: vf\n", dev);
    enc("included.yml", "from_include_vars: iv\n", pw);
    enc("extra.yml", "from_extra: ev\n", dev);
    enc("files/secret.txt", "copied plaintext\n", pw);
    enc("templates/secret.j2", "rendered {{ from_vars_files }}\n", dev);
    enc("files/unvault.txt", "looked up\n", pw);
    let inline = ok(vault(
        dir,
        &[
            "encrypt_string",
            "--vault-id",
            "dev@devpw",
            "--name",
            "from_inline",
            "il",
        ],
    ));
    let inline = inline.replace('\n', "\n    ");
    lab.write(
        "site.yml",
        &format!(
            r#"
- hosts: testhosts
  gather_facts: false
  vars_files: [vars_file.yml]
  vars:
    {inline}
  tasks:
    - include_vars: included.yml
    - copy: {{src: secret.txt, dest: "@OUT@/copied.txt"}}
    - template: {{src: secret.j2, dest: "@OUT@/rendered.txt"}}
    - copy:
        dest: "@OUT@/values.txt"
        content: "{{{{ [from_group_vars, from_vars_files, from_inline, from_include_vars, from_extra,
                       lookup('unvault', 'unvault.txt'),
                       'x' | vault('k', vault_id='f') | unvault('k', vault_id='f')] | join(',') }}}}"
"#
        ),
    );
    let (code, out, err) = lab.run(
        "site.yml",
        &[
            "--vault-password-file",
            "pw",
            "--vault-id",
            "dev@devpw",
            "-e",
            "@extra.yml",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(lab.read("out/copied.txt"), "copied plaintext\n");
    assert_eq!(lab.read("out/rendered.txt"), "rendered vf\n");
    assert_eq!(lab.read("out/values.txt"), "gv,vf,il,iv,ev,looked up\n,x");
    // include_vars of a vaulted file hides its result (as Ansible's does), even at -v.
    let (code, out, err) = lab.run(
        "site.yml",
        &[
            "-v",
            "--vault-password-file",
            "pw",
            "--vault-id",
            "dev@devpw",
            "-e",
            "@extra.yml",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("output has been hidden") && !out.contains("from_include_vars"),
        "{out}"
    );

    // The same passwords from the environment and ansible.cfg.
    write(dir, "ansible.cfg", "[defaults]\nvault_identity_list = dev@devpw\n");
    let mut c = lab.cmd("site.yml", &["-e", "@extra.yml"]);
    c.env("ANSIBLE_VAULT_PASSWORD_FILE", dir.join("pw"));
    let (code, out, err) = rigger_cmd(c, Duration::from_secs(120));
    assert_eq!(code, 0, "{out}\n{err}");

    // A wrong password: which file, which vault ids were tried; never the ciphertext as the value.
    write(dir, "wrong", "nope\n");
    std::fs::remove_file(dir.join("ansible.cfg")).unwrap();
    let (code, out, err) = lab.run("site.yml", &["--vault-id", "dev@wrong", "--vault-password-file", "pw"]);
    assert_ne!(code, 0, "{out}\n{err}");
    let all = format!("{out}{err}");
    // The vaulted vars file fails as it is read (the play's inline value would
    // fail only where it is used): its file and both ids.
    assert!(
        all.contains("vars_file.yml:1:1") && all.contains("`dev`") && all.contains("`default`"),
        "{all}"
    );
    // No password at all: the inline value's file:line:col.
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ne!(code, 0, "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("no vault password was given"), "{all}");
}

#[test]
fn edit_keeps_the_plaintext_in_a_private_temporary_file_and_rekey_changes_the_password() {
    let d = tempfile::tempdir().unwrap();
    let d = d.path();
    let tmp = d.join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    write(d, "pw", "old\n");
    write(d, "newpw", "new\n");
    write(d, "s.yml", "a: 1\n");
    ok(vault(d, &["encrypt", "--vault-id", "dev@pw", "s.yml"]));
    // The "editor" records the mode and content it was given, then appends a line.
    executable(
        d,
        "editor.sh",
        &format!(
            "#!/bin/sh\nstat -c %a \"$1\" > {0}/mode\ncp \"$1\" {0}/seen\necho 'b: 2' >> \"$1\"\n",
            d.display()
        ),
    );
    let mut c = Command::new(rigger_bin());
    c.args(["vault", "edit", "--vault-id", "dev@pw", "s.yml"])
        .current_dir(d)
        .env("EDITOR", d.join("editor.sh"))
        .env("TMPDIR", &tmp);
    let r = rigger_cmd(c, Duration::from_secs(60));
    assert_eq!(r.0, 0, "{}\n{}", r.1, r.2);
    assert_eq!(std::fs::read_to_string(d.join("mode")).unwrap().trim(), "600");
    assert_eq!(std::fs::read_to_string(d.join("seen")).unwrap(), "a: 1\n");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "the plaintext's temporary file is removed"
    );
    let text = std::fs::read_to_string(d.join("s.yml")).unwrap();
    assert!(
        text.starts_with("$ANSIBLE_VAULT;1.2;AES256;dev\n"),
        "the file keeps its vault id: {text}"
    );
    assert_eq!(ok(vault(d, &["view", "--vault-id", "dev@pw", "s.yml"])), "a: 1\nb: 2\n");

    ok(vault(
        d,
        &[
            "rekey",
            "--vault-id",
            "dev@pw",
            "--new-vault-password-file",
            "newpw",
            "s.yml",
        ],
    ));
    assert_eq!(
        ok(vault(d, &["view", "--vault-password-file", "newpw", "s.yml"])),
        "a: 1\nb: 2\n"
    );
    let (code, _, err) = vault(d, &["view", "--vault-id", "dev@pw", "s.yml"]);
    assert_ne!(code, 0);
    assert!(err.contains("s.yml") && err.contains("`dev`"), "{err}");
}
