//! Issue #23: `rigger lint` through the real binary on real files: each
//! rule found where it is (file:line:column) and silenced by `# noqa`,
//! the output formats (text, JSON, SARIF 2.1.0), the exit codes, the
//! configuration (.rigger-lint.toml, rigger.toml's [lint], --skip/--warn)
//! and the directory walk.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{rigger_bin, rigger_cmd};

/// A project directory to lint, with no settings from the caller's
/// environment (HOME is the directory itself).
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        Project {
            dir: tempfile::Builder::new()
                .prefix("lint-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, rel: &str, text: &str) -> &Project {
        let p = self.path().join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
        self
    }

    /// `rigger lint ARGS` in the project: (exit code, stdout, stderr).
    fn lint(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(rigger_bin());
        cmd.arg("lint")
            .args(args)
            .current_dir(self.path())
            .env("HOME", self.path());
        for v in [
            "RIGGER_CONFIG",
            "ANSIBLE_CONFIG",
            "RIGGER_ROLES_PATH",
            "ANSIBLE_ROLES_PATH",
            "XDG_CONFIG_HOME",
        ] {
            cmd.env_remove(v);
        }
        rigger_cmd(cmd, Duration::from_secs(60))
    }
}

/// The finding lines (`file:line:col: ID message`) of a text run.
fn findings(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// `rule` is reported once in `file` at `line:col` (exit 2), and nothing
/// else is; then, with `# noqa: rule` added to line `noqa_line`, nothing
/// is reported (exit 0).
fn reported_then_silenced(file: &str, text: &str, rule: &str, line: u32, col: u32, noqa_line: usize) {
    let p = Project::new();
    p.file(file, text);
    let (code, out, err) = p.lint(&[file]);
    let expected = format!("{file}:{line}:{col}: {rule} ");
    let found = findings(&out);
    assert!(
        found.len() == 1 && found[0].starts_with(&expected),
        "expected one `{expected}...`, got:\n{out}\n{err}"
    );
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("1 error, 0 warnings in 1 file"), "{err}");

    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[noqa_line - 1].push_str(&format!("  # noqa: {rule}"));
    let p = Project::new();
    p.file(file, &(lines.join("\n") + "\n"));
    let (code, out, err) = p.lint(&[file]);
    assert_eq!(findings(&out), Vec::<&str>::new(), "{err}");
    assert_eq!(code, 0, "{out}\n{err}");
}

const PLAY: &str = "- name: Test play\n  hosts: all\n  tasks:\n";

#[test]
fn deprecated_include_is_found_and_silenced() {
    let text = format!("{PLAY}    - name: Old include\n      include: other.yml\n");
    reported_then_silenced("site.yml", &text, "deprecated-include", 5, 7, 4);
}

#[test]
fn deprecated_sudo_is_found_and_silenced() {
    let text = "- name: Test play\n  hosts: all\n  sudo: true\n  tasks: []\n";
    reported_then_silenced("site.yml", text, "deprecated-sudo", 3, 3, 3);
}

#[test]
fn deprecated_always_run_is_found_and_silenced() {
    let text =
        format!("{PLAY}    - name: Always\n      ansible.builtin.debug:\n        msg: hi\n      always_run: true\n");
    reported_then_silenced("site.yml", &text, "deprecated-always-run", 7, 7, 7);
}

#[test]
fn deprecated_bare_vars_is_found_and_silenced() {
    let text = format!(
        "{PLAY}    - name: Loop\n      ansible.builtin.debug:\n        msg: \"{{{{ item }}}}\"\n      with_items: packages\n"
    );
    reported_then_silenced("site.yml", &text, "deprecated-bare-vars", 7, 19, 7);
}

#[test]
fn deprecated_local_action_is_found_and_silenced() {
    let text = format!(
        "{PLAY}    - name: Local\n      local_action:\n        module: ansible.builtin.debug\n        msg: hi\n"
    );
    // The noqa on the task's first line silences it too.
    reported_then_silenced("site.yml", &text, "deprecated-local-action", 5, 7, 4);
}

#[test]
fn command_instead_of_module_is_found_and_silenced() {
    let text = format!(
        "{PLAY}    - name: Restart\n      ansible.builtin.command: systemctl restart nginx\n    - name: Status is read-only\n      ansible.builtin.command: systemctl status nginx\n      changed_when: false\n"
    );
    reported_then_silenced("site.yml", &text, "command-instead-of-module", 5, 7, 5);
    let p = Project::new();
    p.file(
        "tasks.yml",
        "- name: Make a directory\n  ansible.builtin.shell: cd /srv && mkdir -p app\n- name: Clone\n  ansible.builtin.command:\n    argv: [/usr/bin/git, clone, https://example.invalid/r.git]\n",
    );
    let (code, out, _) = p.lint(&["tasks.yml"]);
    assert_eq!(code, 2);
    assert!(
        out.contains(
            "tasks.yml:2:3: command-instead-of-module `mkdir` in `shell`: use the file (state: directory) module"
        ),
        "{out}"
    );
    assert!(
        out.contains("tasks.yml:4:3: command-instead-of-module `git` in `command`: use the git module"),
        "{out}"
    );
}

#[test]
fn pipe_to_shell_is_found_and_silenced() {
    let text = format!(
        "{PLAY}    - name: Install the tool\n      ansible.builtin.shell: curl -fsSL https://get.example.invalid/install.sh | sh\n      become: true\n"
    );
    reported_then_silenced("site.yml", &text, "pipe-to-shell", 5, 7, 5);
    let p = Project::new();
    p.file("site.yml", &text);
    let (_, out, _) = p.lint(&["site.yml"]);
    assert!(out.contains("as root (become)"), "{out}");
}

#[test]
fn risky_file_permissions_is_found_and_silenced() {
    let text = format!(
        "{PLAY}    - name: Config\n      ansible.builtin.copy:\n        src: app.conf\n        dest: /etc/app.conf\n    - name: Gone\n      ansible.builtin.file:\n        path: /etc/old\n        state: absent\n    - name: Link\n      ansible.builtin.file:\n        src: /a\n        dest: /b\n        state: link\n"
    );
    reported_then_silenced("site.yml", &text, "risky-file-permissions", 5, 7, 4);
    let p = Project::new();
    p.file(
        "tasks.yml",
        "- name: Directory\n  ansible.builtin.file: path=/srv/app state=directory\n- name: Line, may create\n  ansible.builtin.lineinfile:\n    path: /etc/x\n    line: a\n    create: true\n",
    );
    let (_, out, _) = p.lint(&["tasks.yml"]);
    assert!(
        out.contains("tasks.yml:2:3: risky-file-permissions `file` with `state: directory` creates it"),
        "{out}"
    );
    assert!(
        out.contains("tasks.yml:4:3: risky-file-permissions `lineinfile` may create the file"),
        "{out}"
    );
}

#[test]
fn task_name_missing_is_found_and_silenced() {
    let text = format!("{PLAY}    - ansible.builtin.debug:\n        msg: hi\n");
    reported_then_silenced("site.yml", &text, "task-name-missing", 4, 7, 4);
}

#[test]
fn play_name_missing_is_found_and_silenced() {
    let text = "- hosts: all\n  tasks:\n    - name: Fine\n      ansible.builtin.debug:\n        msg: hi\n";
    reported_then_silenced("site.yml", text, "play-name-missing", 1, 3, 1);
}

#[test]
fn package_latest_is_found_and_silenced() {
    let text = format!(
        "{PLAY}    - name: Upgrade\n      ansible.builtin.dnf:\n        name: nginx\n        state: latest\n    - name: Upgrade only\n      ansible.builtin.yum:\n        name: nginx\n        state: latest\n        update_only: true\n"
    );
    reported_then_silenced("site.yml", &text, "package-latest", 7, 16, 7);
}

#[test]
fn plaintext_secret_is_found_and_silenced() {
    let text = "db_password: hunter2\napi_token: \"{{ lookup('env', 'API_TOKEN') }}\"\nsmtp_password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  61626364\npassword_file: /etc/app/pass\nadmin_hash: \"$6$salt$abcdefgh\"\n";
    reported_then_silenced("group_vars/all.yml", text, "plaintext-secret", 1, 1, 1);
    // In a play's vars, a module's arguments and a role's parameters too.
    let p = Project::new();
    p.file(
        "site.yml",
        "- name: Play\n  hosts: all\n  vars:\n    app:\n      secret_key: abc123\n  roles:\n    - role: db\n      mysql_root_password: toor\n  tasks:\n    - name: User\n      community.mysql.mysql_user:\n        name: app\n        password: s3cret\n",
    );
    p.file(
        "roles/db/tasks/main.yml",
        "- name: Fine\n  ansible.builtin.debug:\n    msg: hi\n",
    );
    let (code, out, _) = p.lint(&["site.yml"]);
    assert_eq!(code, 2);
    assert_eq!(
        findings(&out)
            .iter()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        vec!["site.yml:5:7:", "site.yml:8:7:", "site.yml:13:9:"],
        "{out}"
    );
}

#[test]
fn become_password_plaintext_is_found_and_silenced() {
    let text = "ansible_user: deploy\nansible_become_password: r00t\n";
    reported_then_silenced("host_vars/web1.yml", text, "become-password-plaintext", 2, 1, 2);
}

#[test]
fn ignore_errors_is_found_and_silenced_and_a_comment_is_a_reason() {
    let text = format!(
        "{PLAY}    - name: Try\n      ansible.builtin.command: /bin/false\n      changed_when: false\n      ignore_errors: true\n    - name: Explained above\n      ansible.builtin.command: /bin/false\n      changed_when: false\n      # the probe fails on hosts without the agent\n      ignore_errors: true\n    - name: Explained on the line\n      ansible.builtin.command: /bin/false\n      changed_when: false\n      ignore_errors: yes  # the agent may be missing\n    - name: Decided by a template\n      ansible.builtin.command: /bin/false\n      changed_when: false\n      ignore_errors: \"{{{{ ansible_check_mode }}}}\"\n"
    );
    reported_then_silenced("site.yml", &text, "ignore-errors", 7, 7, 7);
}

#[test]
fn partial_become_is_found_and_silenced_and_a_role_may_rely_on_the_play() {
    let text = format!(
        "{PLAY}    - name: As postgres\n      ansible.builtin.command: psql -c 'select 1'\n      changed_when: false\n      become_user: postgres\n    - name: Fine\n      become: true\n      become_user: postgres\n      ansible.builtin.command: psql -c 'select 1'\n      changed_when: false\n"
    );
    reported_then_silenced("site.yml", &text, "partial-become", 7, 7, 7);
    // A play's become_user used by the tasks that turn become on: fine.
    let p = Project::new();
    p.file(
        "site.yml",
        "- name: Play\n  hosts: all\n  become_user: postgres\n  tasks:\n    - name: As postgres\n      become: true\n      ansible.builtin.command: id\n      changed_when: false\n",
    );
    p.file(
        "roles/db/tasks/main.yml",
        "- name: As postgres\n  become_user: postgres\n  ansible.builtin.command: id\n  changed_when: false\n",
    );
    let (code, out, err) = p.lint(&[]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
}

#[test]
fn noqa_takes_ansible_lint_ids_and_a_bare_noqa_silences_everything() {
    let p = Project::new();
    p.file(
        "site.yml",
        "- name: Play\n  hosts: all\n  tasks:\n    - ansible.builtin.command: apt-get install -y nginx  # noqa: name[missing] command-instead-of-module\n    - ansible.builtin.shell: systemctl restart nginx # noqa\n    - ansible.builtin.command: yum install -y nginx  # noqa: name\n",
    );
    let (code, out, _) = p.lint(&["site.yml"]);
    assert_eq!(
        findings(&out),
        vec!["site.yml:6:7: command-instead-of-module `yum` in `command`: use the yum module"]
    );
    assert_eq!(code, 2);
}

#[test]
fn skip_ansible_lint_tag_silences_a_task() {
    let p = Project::new();
    p.file(
        "site.yml",
        "- name: Play\n  hosts: all\n  tasks:\n    - ansible.builtin.command: apt-get install -y nginx\n      tags: [skip_ansible_lint]\n",
    );
    let (code, out, _) = p.lint(&["site.yml"]);
    assert_eq!((code, out.as_str()), (0, ""));
}

/// A small project with one finding of each of two rules.
fn two_findings() -> Project {
    let p = Project::new();
    p.file(
        "site.yml",
        "- name: Play\n  hosts: all\n  tasks:\n    - ansible.builtin.apt:\n        name: nginx\n        state: latest\n",
    );
    p
}

#[test]
fn json_output_lists_findings_with_locations() {
    let p = two_findings();
    let (code, out, _) = p.lint(&["--format", "json", "site.yml"]);
    assert_eq!(code, 2);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["files"], 1);
    assert_eq!(doc["errors"], 2);
    assert_eq!(doc["warnings"], 0);
    let f = doc["findings"].as_array().unwrap();
    assert_eq!(f.len(), 2);
    assert_eq!(f[0]["rule"], "task-name-missing");
    assert_eq!(f[0]["ansible_lint"], "name[missing]");
    assert_eq!(
        (f[0]["file"].as_str(), f[0]["line"].as_u64(), f[0]["column"].as_u64()),
        (Some("site.yml"), Some(4), Some(7))
    );
    assert_eq!(f[1]["rule"], "package-latest");
    assert_eq!(f[1]["level"], "error");
    assert_eq!((f[1]["line"].as_u64(), f[1]["column"].as_u64()), (Some(6), Some(16)));
    assert!(f[1]["message"].as_str().unwrap().contains("state: latest"));
}

#[test]
fn sarif_output_is_a_sarif_2_1_0_log() {
    let p = two_findings();
    p.file(
        ".rigger-lint.toml",
        "warn = [\"package-latest\"]\nskip = [\"ignore-errors\"]\n",
    );
    let (code, out, _) = p.lint(&["--format", "sarif", "site.yml"]);
    // package-latest is a warning now, task-name-missing still an error.
    assert_eq!(code, 2);
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["version"], "2.1.0");
    assert!(doc["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &doc["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "rigger");
    let rules = driver["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 15);
    for r in rules {
        assert!(r["id"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(r["shortDescription"]["text"].as_str().is_some_and(|s| !s.is_empty()));
        assert!(r["fullDescription"]["text"].as_str().is_some_and(|s| !s.is_empty()));
    }
    let skipped = rules.iter().find(|r| r["id"] == "ignore-errors").unwrap();
    assert_eq!(skipped["defaultConfiguration"]["enabled"], false);
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for r in results {
        let index = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], r["ruleId"]);
        assert!(r["message"]["text"].as_str().is_some_and(|s| !s.is_empty()));
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], "site.yml");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(loc["region"]["startColumn"].as_u64().unwrap() >= 1);
    }
    assert_eq!(results[0]["ruleId"], "task-name-missing");
    assert_eq!(results[0]["level"], "error");
    assert_eq!(results[1]["ruleId"], "package-latest");
    assert_eq!(results[1]["level"], "warning");
    assert_eq!(results[1]["locations"][0]["physicalLocation"]["region"]["startLine"], 6);
    assert_eq!(
        results[1]["locations"][0]["physicalLocation"]["region"]["startColumn"],
        16
    );
    assert_eq!(run["invocations"][0]["executionSuccessful"], true);
    assert!(run["originalUriBaseIds"]["%SRCROOT%"]["uri"]
        .as_str()
        .unwrap()
        .starts_with("file:///"));
}

#[test]
fn exit_codes_clean_findings_warnings_and_unparsable() {
    let p = Project::new();
    p.file(
        "site.yml",
        "- name: Play\n  hosts: all\n  tasks:\n    - name: Hello\n      ansible.builtin.debug:\n        msg: hi\n",
    );
    let (code, out, err) = p.lint(&["site.yml"]);
    assert_eq!((code, out.as_str()), (0, ""), "{err}");
    assert!(err.contains("0 errors, 0 warnings in 1 file"), "{err}");

    let p = two_findings();
    assert_eq!(p.lint(&["site.yml"]).0, 2);
    // Warnings only: exit 0, still reported.
    let (code, out, _) = p.lint(&["--warn", "package-latest,name[missing]", "site.yml"]);
    assert_eq!(code, 0);
    assert_eq!(findings(&out).len(), 2);
    assert!(findings(&out).iter().all(|l| l.ends_with("(warning)")), "{out}");
    // rigger.toml's [lint] table, when there is no .rigger-lint.toml.
    p.file(
        "rigger.toml",
        "[lint]\nwarn = [\"package-latest\"]\nskip = [\"task-name-missing\"]\n",
    );
    let (code, out, _) = p.lint(&["site.yml"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(findings(&out).len(), 1, "{out}");

    // A file that does not parse: exit 1, located, and the others still linted.
    let p = two_findings();
    p.file("broken.yml", "- name: Broken\n  hosts: all\n  tasks: [\n");
    let (code, out, err) = p.lint(&[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("error: broken.yml:4:1: invalid YAML"), "{err}");
    assert_eq!(findings(&out).len(), 2, "{out}");

    // An unknown rule in the configuration: located.
    let p = two_findings();
    p.file(".rigger-lint.toml", "skip = [\"no-such-rule\"]\n");
    let (code, _, err) = p.lint(&["site.yml"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(".rigger-lint.toml:1:9: no lint rule `no-such-rule`"),
        "{err}"
    );
    // ... and on the command line, and a missing path: usage errors.
    let p = two_findings();
    assert_eq!(p.lint(&["--skip", "nope", "site.yml"]).0, 5);
    assert_eq!(p.lint(&["missing.yml"]).0, 5);
}

#[test]
fn a_directory_is_walked_for_playbooks_roles_and_vars() {
    let p = Project::new();
    p.file("playbooks/site.yml", "- name: Site\n  hosts: all\n  roles: [web]\n");
    p.file(
        "roles/web/tasks/main.yml",
        "- name: Install\n  ansible.builtin.apt:\n    name: nginx\n    state: latest\n- name: Extra\n  ansible.builtin.import_tasks: extra.yml\n",
    );
    p.file(
        "roles/web/tasks/extra.yml",
        "- ansible.builtin.debug:\n    msg: no name\n",
    );
    p.file(
        "roles/web/handlers/main.yml",
        "- name: Restart\n  ansible.builtin.shell: service nginx restart\n",
    );
    p.file("roles/web/defaults/main.yml", "web_admin_password: changeme\n");
    p.file(
        "roles/web/meta/main.yml",
        "galaxy_info:\n  author: me\ndependencies: []\n",
    );
    // Not Ansible content: a template, a CI file, a compose file.
    p.file("roles/web/templates/x.yml", "password: {{ pw }}\n");
    p.file(".github/workflows/ci.yml", "on: push\njobs: {}\n");
    p.file(
        "docker-compose.yml",
        "services:\n  db:\n    environment:\n      POSTGRES_PASSWORD: example\n",
    );
    p.file("inventory/group_vars/all/main.yml", "ansible_become_pass: toor\n");
    p.file(
        "inventory/hosts.yml",
        "all:\n  hosts:\n    web1:\n      ansible_password: letmein\n",
    );
    let (code, out, err) = p.lint(&["--format", "json"]);
    assert_eq!(code, 2, "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let got: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{}:{} {}",
                f["file"].as_str().unwrap(),
                f["line"],
                f["rule"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            "inventory/group_vars/all/main.yml:1 become-password-plaintext",
            "inventory/hosts.yml:4 plaintext-secret",
            "roles/web/defaults/main.yml:1 plaintext-secret",
            "roles/web/handlers/main.yml:2 command-instead-of-module",
            "roles/web/tasks/extra.yml:1 task-name-missing",
            "roles/web/tasks/main.yml:4 package-latest",
        ],
        "{out}"
    );
    // 7 files linted: not meta/, templates/, .github/ or docker-compose.yml.
    assert_eq!(doc["files"], 7, "{out}");

    // A playbook named alone brings its roles (found in roles/ above the
    // playbook's directory) and their imported files.
    let (_, out, _) = p.lint(&["playbooks/site.yml"]);
    let files: Vec<&str> = findings(&out).iter().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(
        files,
        vec![
            "roles/web/defaults/main.yml",
            "roles/web/handlers/main.yml",
            "roles/web/tasks/extra.yml",
            "roles/web/tasks/main.yml",
        ],
        "{out}"
    );
}

#[test]
fn list_rules_names_every_rule_and_its_ansible_lint_equivalent() {
    let p = Project::new();
    let (code, out, _) = p.lint(&["--list-rules"]);
    assert_eq!(code, 0);
    for (id, ansible) in [
        ("deprecated-include", "-"),
        ("deprecated-sudo", "-"),
        ("deprecated-always-run", "-"),
        ("deprecated-bare-vars", "deprecated-bare-vars"),
        ("deprecated-local-action", "deprecated-local-action"),
        ("command-instead-of-module", "command-instead-of-module"),
        ("pipe-to-shell", "-"),
        ("risky-file-permissions", "risky-file-permissions"),
        ("task-name-missing", "name[missing]"),
        ("play-name-missing", "name[play]"),
        ("package-latest", "package-latest"),
        ("plaintext-secret", "-"),
        ("become-password-plaintext", "-"),
        ("ignore-errors", "ignore-errors"),
        ("partial-become", "partial-become"),
    ] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} missing:\n{out}"));
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!((cols[1], cols[2]), ("error", ansible), "{line}");
    }
}
