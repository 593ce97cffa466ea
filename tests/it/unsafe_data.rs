//! Data from a managed host is never template source on the controller.
//!
//! An unprivileged user of a managed host controls file names, file
//! contents, command output and some facts. Each of them, registered or
//! gathered, carries `{{ lookup('pipe', ...) }}` and `{% %}` payloads here,
//! and so do `!unsafe` variables: in `rigger run`, `rigger run --check` and
//! `rigger check`, no payload may run on the controller (each would create
//! a marker file in rigger's working directory), and the literal text must
//! come through.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{rigger_bin, rigger_cmd, HostOpts, TestHosts};

/// A payload that, rendered on the controller, creates `pwned-<tag>` in
/// rigger's working directory (no `/`: it is also a file name).
fn expr_payload(tag: &str) -> String {
    format!("{{{{ lookup('pipe', 'touch pwned-{tag}') }}}}")
}

/// The same through a statement.
fn stmt_payload(tag: &str) -> String {
    format!("{{% set x = lookup('pipe', 'touch pwned-{tag}') %}}")
}

const PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: true
  vars:
    # Source variables that use host data: rendering them must not render
    # the data again.
    via_stdout: "{{ out.stdout }}"
    via_slurp: "{{ slurped.content | b64decode }}"
    via_fact: "{{ ansible_hostname }}"
    # A file fetched from a host earlier, read by a lookup.
    via_lookup: "{{ lookup('file', 'fetched.txt') }}"
    lit_expr: !unsafe "@EXPR_UNSAFE@"
    lit_stmt: !unsafe "@STMT_UNSAFE@"
    report_file: from-play
  tasks:
    - name: command output
      shell: cat /srv/rigger-test/evil/content.txt
      register: out
      check_mode: false
      changed_when: false

    - name: file names
      find:
        paths: /srv/rigger-test/evil/names
      register: found

    - name: file content
      slurp:
        src: /srv/rigger-test/evil/content.txt
      register: slurped

    - name: facts returned by a module on the host
      evil_facts:
      check_mode: false

    - name: a JSON document on the host (its keys are data too)
      shell: cat /srv/rigger-test/evil/doc.json
      register: doc
      check_mode: false
      changed_when: false

    - name: a host added with host data
      add_host:
        name: added-host
        from_host: "{{ out.stdout }}"
        doc: "{{ doc.stdout | from_json }}"
      changed_when: false

    - name: a variable named by host data is shown only if it is a name
      debug:
        var: "{{ item }}"
      loop: "{{ found.files | map(attribute='path') | map('basename') | list }}"
      ignore_errors: true

    - name: conditionals held in a value are not evaluated (nor taken as true)
      assert:
        that: "{{ [out.stdout] }}"
      ignore_errors: true

    - name: a conditional with host data inside is refused, not evaluated
      assert:
        that: "'{{ item }}' != 'x'"
      loop: "{{ found.files | map(attribute='path') | map('basename') | list }}"
      ignore_errors: true

    - name: a fact set from host data
      set_fact:
        copied: "{{ out.stdout }}"

    - name: show everything
      debug:
        msg: "STDOUT=[{{ out.stdout }}] VIA=[{{ via_stdout }}] SLURP=[{{ via_slurp }}] FACT=[{{ via_fact }}] MODFACT=[{{ mod_fact }}] ADDED=[{{ hostvars['added-host'].from_host }}] DOCKEYS=[{{ hostvars['added-host'].doc.keys() | list | join(',') }}] REPORT=[{{ report_file }}] COPIED=[{{ copied }}] UNSAFE=[{{ lit_expr }}|{{ lit_stmt }}] GV=[{{ gv_unsafe }}] LOOKUP=[{{ via_lookup }}]"

    - name: every file name
      debug:
        msg: "NAME=[{{ item.path | basename }}]"
      loop: "{{ found.files }}"

    - name: every file name, through an include
      include_tasks: show_name.yml
      loop: "{{ found.files }}"
      loop_control:
        loop_var: entry

    - name: write what came through
      copy:
        dest: /srv/rigger-test/result.txt
        content: "{{ out.stdout }}\n{{ via_slurp }}\n{{ lit_expr }}\n{{ found.files | map(attribute='path') | map('basename') | sort | join('\n') }}\n"
"#;

/// A custom module (runs on the host) returning facts that carry payloads,
/// and claiming controller effects that only rigger's own modules have.
const EVIL_MODULE: &str = r#"#!/bin/sh
cat <<'EOF'
{"changed": false, "ansible_facts": {"mod_fact": "@EXPR_MOD@", "report_file": "from-module", "ansible_connection": "local"}, "_include_vars": true, "_meta": "end_play", "_delegated_to": "smuggled", "add_host": {"host_name": "smuggled", "groups": [], "host_vars": {}}}
EOF
"#;

/// A scratch project directory.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("unsafe-data-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

/// `rigger ARGS -i <fleet>` run in `dir` (where a rendered payload would
/// create its marker).
fn rigger_in(dir: &Path, hosts: &TestHosts, args: &[&str], timeout: Duration) -> (i32, String, String) {
    let mut cmd = Command::new(rigger_bin());
    cmd.args(args)
        .arg("-i")
        .arg(hosts.inventory())
        .arg("--known-hosts")
        .arg(hosts.known_hosts())
        .current_dir(dir);
    rigger_cmd(cmd, timeout)
}

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = scratch();
        let fill = |s: &str| {
            s.replace("@EXPR_UNSAFE@", &expr_payload("unsafe"))
                .replace("@STMT_UNSAFE@", &stmt_payload("unsafe-stmt"))
                .replace("@EXPR_MOD@", &expr_payload("modfact"))
        };
        let root = dir.path();
        std::fs::write(root.join("site.yml"), fill(PLAYBOOK)).expect("playbook");
        std::fs::write(root.join("fetched.txt"), expr_payload("lookup")).expect("fetched file");
        std::fs::write(
            root.join("show_name.yml"),
            "- debug:\n    msg: \"INCLUDED=[{{ entry.path | basename }}]\"\n",
        )
        .expect("included tasks");
        std::fs::create_dir_all(root.join("modules")).expect("modules dir");
        let module = root.join("modules/evil_facts");
        std::fs::write(&module, fill(EVIL_MODULE)).expect("module");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&module, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::create_dir_all(root.join("group_vars")).expect("group_vars");
        std::fs::write(
            root.join("group_vars/all.yml"),
            format!("gv_unsafe: !unsafe \"{}\"\n", expr_payload("groupvars")),
        )
        .expect("group_vars");
        Project { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Marker files some rendered payload created.
    fn pwned(&self) -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(self.path())
            .expect("read dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("pwned-"))
            .collect();
        found.sort();
        found
    }

    fn rigger(&self, hosts: &TestHosts, args: &[&str]) -> (i32, String, String) {
        rigger_in(self.path(), hosts, args, Duration::from_secs(180))
    }
}

/// Plants the attacker's data on host 0: file names and a file's content
/// with payloads, and a host name that is one (facts).
fn plant(hosts: &TestHosts) -> String {
    let root = hosts.root_dir(0).expect("isolated host");
    let evil = root.join("rigger-test/evil");
    std::fs::create_dir_all(evil.join("names")).expect("mkdir");
    for (i, name) in [expr_payload("find"), stmt_payload("find-stmt")].iter().enumerate() {
        std::fs::write(evil.join("names").join(name), format!("{i}\n")).expect("evil name");
    }
    let content = format!("{} {}", expr_payload("stdout"), stmt_payload("stdout-stmt"));
    let doc = serde_json::json!({ expr_payload("jsonkey"): 1 });
    std::fs::write(evil.join("doc.json"), doc.to_string()).expect("evil json");
    std::fs::write(evil.join("content.txt"), &content).expect("evil content");
    // The host's own UTS namespace: its name becomes ansible_hostname.
    // (hostname(1) refuses such a name; the kernel takes it.)
    let out = hosts.ssh(
        0,
        &format!("printf '%s' \"{}\" > /proc/sys/kernel/hostname", expr_payload("fact")),
    );
    assert!(
        out.status.success(),
        "hostname: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    content
}

#[test]
fn host_data_and_unsafe_values_are_never_rendered_on_the_controller() {
    let hosts = TestHosts::with_opts(1, HostOpts { isolated_root: true });
    let content = plant(&hosts);
    let p = Project::new();
    let root = hosts.root_dir(0).expect("isolated host");

    // rigger run --check: nothing may run; the literal text is shown.
    let (code, out, err) = p.rigger(&hosts, &["run", "site.yml", "--check"]);
    assert_eq!(
        p.pwned(),
        Vec::<String>::new(),
        "a payload ran in --check\n{out}\n{err}"
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert_literals(&out, &content);
    assert!(!root.join("rigger-test/result.txt").exists(), "--check wrote the file");

    // rigger run: the same, and the file on the host holds the literal text.
    let (code, out, err) = p.rigger(&hosts, &["run", "site.yml"]);
    assert_eq!(p.pwned(), Vec::<String>::new(), "a payload ran in run\n{out}\n{err}");
    assert_eq!(code, 0, "{out}\n{err}");
    assert_literals(&out, &content);
    let written = std::fs::read_to_string(root.join("rigger-test/result.txt")).expect("result file");
    let names = {
        let mut n = [expr_payload("find"), stmt_payload("find-stmt")];
        n.sort();
        n.join("\n")
    };
    assert_eq!(
        written,
        format!("{content}\n{content}\n{}\n{names}\n", expr_payload("unsafe")),
        "the literal text must reach the host"
    );

    // rigger check (the nightly drift check): change the file so the copy
    // drifts; the report's diff shows the literal text and nothing runs.
    std::fs::write(root.join("rigger-test/result.txt"), "old\n").expect("drift");
    let db = p.path().join("history.db").display().to_string();
    let (code, out, err) = p.rigger(&hosts, &["check", "site.yml", "--db", &db, "--format", "json"]);
    assert_eq!(
        p.pwned(),
        Vec::<String>::new(),
        "a payload ran in rigger check\n{out}\n{err}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}), exit {code}:\n{out}\n{err}"));
    let text = report.to_string();
    assert!(
        text.contains(
            &serde_json::to_string(&content)
                .expect("json")
                .trim_matches('"')
                .to_string()
        ),
        "the drift report shows the literal content:\n{out}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("rigger-test/result.txt")).expect("result"),
        "old\n",
        "rigger check changed the host"
    );
}

/// Every payload's literal text is in rigger's output.
#[track_caller]
fn assert_literals(out: &str, content: &str) {
    let json_text = |s: &str| serde_json::to_string(s).expect("json").trim_matches('"').to_string();
    for (what, text) in [
        ("STDOUT", format!("STDOUT=[{content}]")),
        ("VIA", format!("VIA=[{content}]")),
        ("SLURP", format!("SLURP=[{content}]")),
        ("FACT", format!("FACT=[{}]", expr_payload("fact"))),
        ("MODFACT", format!("MODFACT=[{}]", expr_payload("modfact"))),
        ("ADDED", format!("ADDED=[{content}]")),
        ("DOCKEYS", format!("DOCKEYS=[{}]", expr_payload("jsonkey"))),
        // Facts a module returns are below play variables, as in Ansible.
        ("REPORT", "REPORT=[from-play]".to_string()),
        ("debug var", "is not a variable name".to_string()),
        ("assert that", "has a template inside".to_string()),
        ("assert list", "not a boolean".to_string()),
        ("COPIED", format!("COPIED=[{content}]")),
        (
            "UNSAFE",
            format!("UNSAFE=[{}|{}]", expr_payload("unsafe"), stmt_payload("unsafe-stmt")),
        ),
        ("GV", format!("GV=[{}]", expr_payload("groupvars"))),
        ("LOOKUP", format!("LOOKUP=[{}]", expr_payload("lookup"))),
        ("NAME find", format!("NAME=[{}]", expr_payload("find"))),
        ("NAME find-stmt", format!("NAME=[{}]", stmt_payload("find-stmt"))),
        ("INCLUDED find", format!("INCLUDED=[{}]", expr_payload("find"))),
        (
            "INCLUDED find-stmt",
            format!("INCLUDED=[{}]", stmt_payload("find-stmt")),
        ),
    ] {
        assert!(
            out.contains(&json_text(&text)),
            "{what}: `{text}` not shown literally:\n{out}"
        );
    }
    assert!(
        !out.contains("smuggled"),
        "a custom module's result added a host:\n{out}"
    );
}

#[test]
fn self_referential_variables_are_a_located_error() {
    let hosts = TestHosts::new(1);
    let dir = scratch();
    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: all\n  gather_facts: false\n  vars:\n    a: \"{{ b }}\"\n    b: \"x{{ a }}\"\n    ok: \"{{ missing | default('fine') }}\"\n  tasks:\n    - debug: msg=\"{{ ok }}\"\n    - debug: msg=\"{{ a }}\"\n",
    )
    .expect("playbook");
    let (code, out, err) = rigger_in(dir.path(), &hosts, &["run", "site.yml"], Duration::from_secs(60));
    assert_eq!(code, 2, "a task failed: exit 2\n{out}\n{err}");
    assert!(
        out.contains("\"msg\": \"fine\""),
        "an unrelated variable still works:\n{out}"
    );
    assert!(
        out.contains("site.yml:9:14") && out.contains("recursive loop detected in template"),
        "the error names the task's location and the loop:\n{out}"
    );
    assert!(
        out.contains("variable `a`") && out.contains("variable `b`"),
        "the chain is named:\n{out}"
    );
    assert!(
        !out.contains("\"msg\": \"{{ b }}\"") && !out.contains("x{{ a }}\""),
        "no literal template text:\n{out}"
    );
}

/// Until vault is supported, a vaulted value, a vaulted vars file or source
/// file, and any other unknown YAML tag are located errors, never silently
/// the ciphertext (or the tagged text) as the value.
#[test]
fn vaulted_values_and_files_and_unknown_tags_fail_loudly() {
    let hosts = TestHosts::with_opts(1, HostOpts { isolated_root: true });
    let dir = scratch();
    let vaulted = "$ANSIBLE_VAULT;1.1;AES256\n61626364656630313233343536373839\n";
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write(
        "inline.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  vars:\n    db_password: !vault |\n      {}\n  tasks:\n    - debug: msg=hi\n    - debug: msg={{{{ db_password }}}}\n    - debug: msg=after\n",
            vaulted.trim_end().replace('\n', "\n      ")
        ),
    );
    write(
        "tag.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - debug:\n        msg: !secret 'x'\n",
    );
    write("secrets.yml", vaulted);
    write(
        "varsfile.yml",
        "- hosts: all\n  gather_facts: false\n  vars_files:\n    - secrets.yml\n  tasks:\n    - debug: msg=hi\n",
    );
    std::fs::create_dir_all(dir.path().join("files")).expect("files");
    write("files/app.key", vaulted);
    write(
        "copy.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: src=app.key dest=/srv/rigger-test/app.key\n      ignore_errors: true\n    - copy: src=app.key dest=/srv/rigger-test/app.key.vault decrypt=false\n",
    );
    let run = |args: &[&str]| rigger_in(dir.path(), &hosts, args, Duration::from_secs(60));
    // An inline value that cannot be decrypted fails where it is used (as
    // Ansible's), naming its place; it is never its ciphertext.
    let (code, out, err) = run(&["run", "inline.yml"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("inline.yml:4:18")
            && out.contains("Attempt to use undecryptable variable")
            && out.contains("ansible-vault")
            && !out.contains("6162636465"),
        "located, says why:\n{out}\n{err}"
    );
    assert!(
        out.contains("ok: [") && !out.contains("after"),
        "the first task ran, the last not:\n{out}"
    );
    for extra in [&["--syntax-check"][..], &[][..]] {
        let (code, out, err) = run(&[&["run", "tag.yml"][..], extra].concat());
        assert_ne!(code, 0, "{out}\n{err}");
        assert!(
            err.contains("tag.yml:5:14") && err.contains("unsupported YAML tag !secret"),
            "{out}\n{err}"
        );
    }
    let (code, out, err) = run(&["run", "varsfile.yml"]);
    assert_ne!(code, 0, "{out}\n{err}");
    assert!(
        format!("{out}{err}").contains("secrets.yml:1:1")
            && format!("{out}{err}").contains("encrypted with ansible-vault"),
        "{out}\n{err}"
    );
    let root = hosts.root_dir(0).expect("isolated");
    std::fs::create_dir_all(root.join("rigger-test")).expect("mkdir");
    let (code, out, err) = run(&["run", "copy.yml"]);
    assert_eq!(code, 0, "the first copy fails, ignored:\n{out}\n{err}");
    assert!(
        out.contains("encrypted with ansible-vault") && out.contains("ignored=1"),
        "{out}\n{err}"
    );
    let root = hosts.root_dir(0).expect("isolated");
    assert!(
        !root.join("rigger-test/app.key").exists(),
        "the ciphertext was installed"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("rigger-test/app.key.vault")).expect("decrypt=false copies"),
        vaulted
    );
}

/// A path a host names cannot make `fetch` write outside its `dest` on the
/// controller (Ansible's CVE-2019-3828): here into the project's
/// `group_vars/`, which the next run would read as template source.
#[test]
fn fetch_never_writes_outside_dest() {
    let hosts = TestHosts::with_opts(1, HostOpts { isolated_root: true });
    let dir = scratch();
    let root = hosts.root_dir(0).expect("isolated host");
    // On the host, `lnk/../../..` resolves through a symlink to the
    // attacker's own file; on the controller the same text climbs out of
    // `backups/host1/`.
    let deep = root.join("rigger-test/a/b/c/d/e/f/g/h/i/j");
    std::fs::create_dir_all(&deep).expect("deep dir");
    std::os::unix::fs::symlink("/srv/rigger-test/a/b/c/d/e/f/g/h/i/j", root.join("rigger-test/lnk")).expect("symlink");
    // Five levels up: from `j` on the host, from `backups/host1/srv/rigger-test/lnk`
    // (the project directory) on the controller.
    let evil = root.join("rigger-test/a/b/c/d/e/group_vars");
    std::fs::create_dir_all(&evil).expect("evil dir");
    let escape = "/srv/rigger-test/lnk/../../../../../group_vars/all.yml";
    std::fs::write(evil.join("all.yml"), format!("x: \"{}\"\n", expr_payload("fetched"))).expect("evil file");
    std::fs::write(root.join("rigger-test/list"), format!("{escape}\n")).expect("list");
    std::fs::write(
        dir.path().join("site.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: cat /srv/rigger-test/list\n      register: r\n    - fetch:\n        src: \"{{ item }}\"\n        dest: backups/\n      loop: \"{{ r.stdout_lines }}\"\n      ignore_errors: true\n",
    )
    .expect("playbook");
    let (code, out, err) = rigger_in(dir.path(), &hosts, &["run", "site.yml"], Duration::from_secs(60));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("would lead out of"), "the fetch is refused:\n{out}");
    assert!(
        !dir.path().join("group_vars").exists() && !dir.path().join("backups/group_vars").exists(),
        "fetch wrote outside backups/host1/"
    );
}
