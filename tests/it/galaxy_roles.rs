//! What stopped popular public (Galaxy) roles under rigger (issue #20):
//! `{{ ansible_managed }}`, templated keywords, templated role names,
//! `with_first_found`, options of another OS's package backend, `validate:`
//! commands as Ansible runs them, and OpenSSH options given in
//! `ansible_ssh_common_args`. Each through the real binary against sshd
//! test hosts.

use std::process::Command;
use std::time::Duration;

use crate::engine::{parse_events, results, Lab};
use crate::support::{rigger_bin, rigger_cmd};

fn ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn ansible_managed_and_template_vars_in_templates() {
    let lab = Lab::new(1);
    lab.write(
        "roles/web/templates/site.conf.j2",
        "# {{ ansible_managed }}\npath={{ template_path | basename }} dest={{ template_destpath }} uid={{ template_uid }}\n",
    );
    lab.write(
        "roles/web/tasks/main.yml",
        "- template: src=site.conf.j2 dest=@OUT@/site.conf\n",
    );
    lab.write(
        "managed.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  roles: [web]
  tasks:
    - copy:
        content: "{{ lookup('template', 'roles/web/templates/site.conf.j2') }}"
        dest: "@OUT@/looked-up"
- hosts: testhosts
  gather_facts: false
  vars:
    ansible_managed: "set by the play"
  tasks:
    - template: src=roles/web/templates/site.conf.j2 dest=@OUT@/own.conf
"#,
    );
    let (code, out, err) = lab.run("managed.yml", &[]);
    ok(code, &out, &err);
    let out_dir = lab.out();
    assert_eq!(
        lab.read("out/site.conf"),
        format!("# Ansible managed\npath=site.conf.j2 dest={out_dir}/site.conf uid=root\n")
    );
    assert!(
        lab.read("out/looked-up").starts_with("# Ansible managed\n"),
        "{}",
        lab.read("out/looked-up")
    );
    assert!(lab.read("out/own.conf").starts_with("# set by the play\n"));

    // ansible.cfg's `[defaults] ansible_managed`, with Ansible's placeholders
    // and strftime directives (the template's modification time; `%%` is
    // configparser's escape of `%`).
    lab.write(
        "ansible.cfg",
        "[defaults]\nansible_managed = Managed: {file} by {uid} on {host} (%%Y)\n",
    );
    let (code, out, err) = lab.run("managed.yml", &[]);
    ok(code, &out, &err);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let year = std::process::Command::new("date").arg("+%Y").output().unwrap().stdout;
    let first = lab.read("out/site.conf");
    let first = first.lines().next().unwrap_or_default().to_string();
    assert!(first.starts_with("# Managed: "), "{first}");
    assert!(
        first.ends_with(&format!(
            "site.conf.j2 by root on {} ({})",
            host.trim(),
            String::from_utf8_lossy(&year).trim()
        )),
        "{first}"
    );

    // A setting that does not render fails the template task, naming the
    // setting, instead of being written into the file as it stands.
    lab.write("ansible.cfg", "[defaults]\nansible_managed = Managed {{ broken(\n");
    let (code, out, _) = lab.run("managed.yml", &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("ansible_managed setting"), "{out}");
    assert!(out.contains("does not render"), "{out}");
}

#[test]
fn templated_keywords_are_evaluated_per_host() {
    let lab = Lab::new(2);
    lab.write(
        "kw.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  become: "{{ use_become }}"
  vars:
    use_become: false
    hide: true
    dry: true
  tasks:
    - name: hidden
      debug: msg="the-secret-value"
      no_log: "{{ hide }}"
    - name: ignored on host1 only
      command: "false"
      ignore_errors: "{{ inventory_hostname == 'host1' }}"
      when: inventory_hostname == 'host1'
    - name: dry run
      copy: content=x dest=@OUT@/dry-{{ inventory_hostname }}
      check_mode: "{{ dry }}"
    - name: once
      shell: echo {{ inventory_hostname }} >> @OUT@/once
      run_once: "{{ 1 == 1 }}"
    - name: diff off
      copy: content=y dest=@OUT@/diff-{{ inventory_hostname }}
      diff: "{{ false }}"
    - block:
        - command: "false"
      ignore_errors: "{{ 'yes' }}"
    - name: skipped before its keywords are evaluated
      debug: msg=x
      no_log: "{{ not_defined_anywhere }}"
      when: false
"#,
    );
    let (code, out, err) = lab.run("kw.yml", &["--output", "json"]);
    ok(code, &out, &err);
    let ev = parse_events(&out);
    assert!(!out.contains("the-secret-value"), "{out}");
    assert_eq!(results(&ev, "hidden").len(), 2);
    let ign = results(&ev, "ignored on host1 only");
    assert!(
        ign.iter().any(|e| e["host"] == "host1" && e["ignored"] == true),
        "{ign:?}"
    );
    assert!(!lab.path("out/dry-host1").exists() && !lab.path("out/dry-host2").exists());
    assert_eq!(lab.lines("once").len(), 1, "{:?}", lab.lines("once"));
    assert!(lab.path("out/diff-host1").exists());

    // A template that gives no boolean fails the task, naming the keyword.
    lab.write(
        "bad.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - debug: msg=x\n      no_log: \"{{ 'perhaps' }}\"\n",
    );
    let (code, out, _) = lab.run("bad.yml", &[]);
    assert_ne!(code, 0);
    assert!(
        out.contains("no_log") && out.contains("perhaps") && out.contains("bad.yml:5:15"),
        "{out}"
    );

    // A literal that is not a boolean fails the task that carries it,
    // located, with Ansible 2.19's wording (its post-validation converts
    // keywords when the task runs; it was a load error before issue #20).
    lab.write(
        "literal.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - debug: msg=x\n      ignore_errors: perhaps\n",
    );
    let (code, out, err) = lab.run("literal.yml", &[]);
    assert_ne!(code, 0);
    let all = format!("{out}{err}");
    assert!(
        all.contains("literal.yml:5:22")
            && all.contains("ignore_errors")
            && all.contains("The value 'perhaps' could not be converted to 'bool'."),
        "{all}"
    );
}

#[test]
fn role_names_templated_from_variables() {
    let lab = Lab::new(1);
    for r in ["alpha", "beta", "gamma", "delta"] {
        lab.write(
            &format!("roles/{r}/tasks/main.yml"),
            "- shell: echo {{ role_name }} >> @OUT@/roles\n",
        );
    }
    lab.write(
        "roles.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    first_role: alpha
    chosen: "{{ first_role }}"
  roles:
    - "{{ chosen }}"
    - role: "{{ from_cli }}"
  tasks:
    - import_role: name={{ first_role }}
    - set_fact:
        late: gamma
    - include_role:
        name: "{{ late }}"
    - include_role: name="{{ 'del' ~ 'ta' }}"
"#,
    );
    let (code, out, err) = lab.run("roles.yml", &["-e", "from_cli=beta"]);
    ok(code, &out, &err);
    assert_eq!(lab.lines("roles"), ["alpha", "beta", "alpha", "gamma", "delta"]);

    // Not found: the rendered name and where it was looked for.
    lab.write(
        "missing.yml",
        "- hosts: testhosts\n  gather_facts: false\n  vars:\n    r: nosuchrole\n  tasks:\n    - include_role:\n        name: \"{{ r }}\"\n",
    );
    let (code, out, _) = lab.run("missing.yml", &[]);
    assert_ne!(code, 0);
    let roles_dir = lab.path("roles/nosuchrole").display().to_string();
    assert!(
        out.contains("role `nosuchrole` not found") && out.contains(&roles_dir),
        "{out}"
    );
    lab.write(
        "missing2.yml",
        "- hosts: testhosts\n  gather_facts: false\n  vars:\n    r: nosuchrole\n  roles: [\"{{ r }}\"]\n",
    );
    let (code, _, err) = lab.run("missing2.yml", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("role `nosuchrole` not found") && err.contains(&roles_dir),
        "{err}"
    );
}

#[test]
fn with_first_found_searches_like_ansible() {
    let lab = Lab::new(1);
    lab.write(
        "roles/app/templates/app-Debian.conf.j2",
        "debian {{ inventory_hostname }}\n",
    );
    lab.write("roles/app/templates/app-default.conf.j2", "default\n");
    lab.write("roles/app/files/extra-default.txt", "from files/\n");
    lab.write("roles/app/vars/Debian.yml", "os_var: from-debian\n");
    lab.write(
        "roles/app/tasks/main.yml",
        r#"
- template:
    src: "{{ item }}"
    dest: "@OUT@/app.conf"
  with_first_found:
    - app-{{ os }}.conf.j2
    - app-default.conf.j2
- copy:
    src: "{{ item }}"
    dest: "@OUT@/extra.txt"
  with_first_found:
    - files: ["extra-{{ os }}.txt", extra-default.txt]
- include_vars: "{{ item }}"
  with_first_found:
    - files: ["{{ os }}.yml", default.yml]
- shell: echo {{ os_var }} > @OUT@/os_var
- name: nothing found, skipped
  shell: echo should-not-run > @OUT@/never
  with_first_found:
    - files: [nope1, nope2]
      skip: true
- shell: echo "{{ lookup('first_found', ['nope'], errors='ignore') | default('none', true) }}" > @OUT@/ignored
- shell: >-
    echo "{{ lookup('first_found', {'files': ['b.txt', 'a.txt'], 'paths': [playbook_dir ~ '/data']}) | basename }}" > @OUT@/paths
"#,
    );
    lab.write("data/a.txt", "a\n");
    lab.write(
        "ff.yml",
        "- hosts: testhosts\n  gather_facts: false\n  vars:\n    os: Debian\n  roles: [app]\n",
    );
    let (code, out, err) = lab.run("ff.yml", &[]);
    ok(code, &out, &err);
    assert_eq!(lab.read("out/app.conf"), "debian host1\n");
    assert_eq!(lab.read("out/extra.txt"), "from files/\n");
    assert_eq!(lab.read("out/os_var"), "from-debian\n");
    assert!(!lab.path("out/never").exists());
    assert_eq!(lab.read("out/ignored"), "none\n");
    assert_eq!(lab.read("out/paths"), "a.txt\n");

    // Nothing found without skip: the task fails, naming what was tried.
    lab.write(
        "none.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - debug: var=item\n      with_first_found: [nope-a, nope-b]\n",
    );
    let (code, out, _) = lab.run("none.yml", &[]);
    assert_ne!(code, 0);
    assert!(out.contains("nope-a") && out.contains("nope-b"), "{out}");
}

#[test]
fn options_of_another_backend_load_and_are_checked_on_the_host() {
    let lab = Lab::new(1);
    lab.write(
        "pkg.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - name: RedHat only
      package: name=epel-release state=present enablerepo=epel disable_gpg_check=yes
      when: ansible_os_family | default('Debian') == 'RedHat'
    - name: systemd only
      service: name=foo masked=true daemon_reload=true
      when: false
    - shell: echo reached > @OUT@/reached
"#,
    );
    let (code, out, err) = lab.run("pkg.yml", &[]);
    ok(code, &out, &err);
    assert_eq!(lab.read("out/reached"), "reached\n");

    // Run on this (apt) host, the dnf option is refused there.
    lab.write(
        "pkg-run.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - package: name=rigq-none state=present enablerepo=epel\n",
    );
    let (code, out, _) = lab.run("pkg-run.yml", &[]);
    assert_ne!(code, 0);
    assert!(out.contains("enablerepo") && out.contains("apt"), "{out}");

    // A typo is still a located error at load.
    lab.write(
        "typo.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - package:\n        name: x\n        state: present\n        enablerepoo: epel\n",
    );
    let (code, _, err) = lab.run("typo.yml", &[]);
    assert_ne!(code, 0);
    assert!(err.contains("typo.yml:7:9") && err.contains("enablerepoo"), "{err}");
}

#[test]
fn validate_commands_run_as_ansible_runs_them() {
    let lab = Lab::new(1);
    lab.write("conf.json.j2", "{\"port\": {{ 80 }}}\n");
    lab.write(
        "validate.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    # The temp file keeps the destination's extension.
    - template:
        src: conf.json.j2
        dest: "@OUT@/conf.json"
        validate: /usr/bin/python3 -c "import sys, json; assert sys.argv[1].endswith('.json'); json.load(open(sys.argv[1]))" %s
    # `%%` is a `%` (Python's % formatting); the temp file has the final mode.
    - copy:
        content: "x\n"
        dest: "@OUT@/moded"
        mode: "0600"
        validate: sh -c 'test "$1" = 100% && test "$(stat -c %%a "$2")" = 600' sh 100%% %s
    # Environment variables and ~ are expanded in each word, as run_command does.
    - lineinfile:
        path: "@OUT@/moded"
        line: "y"
        validate: test -d $HOME -a -d ~ -a -s %s
"#,
    );
    let (code, out, err) = lab.run("validate.yml", &[]);
    ok(code, &out, &err);
    assert_eq!(lab.read("out/conf.json"), "{\"port\": 80}\n");
    assert_eq!(lab.read("out/moded"), "x\ny\n");
}

/// A fleet's inventory with `extra` on the host's line and no `--known-hosts`.
fn run_with_host_vars(lab: &Lab, extra: &str, port: bool) -> (i32, String, String) {
    let key = lab.hosts.client_key().display().to_string();
    let mut line = format!(
        "host1 ansible_host={} ansible_user=root ansible_ssh_private_key_file={key} {extra}",
        lab.hosts.addr(0)
    );
    if port {
        line.push_str(&format!(" ansible_port={}", lab.hosts.port(0)));
    }
    lab.write("inv.ini", &format!("[testhosts]\n{line}\n"));
    let mut cmd = Command::new(rigger_bin());
    cmd.arg("run")
        .arg(lab.path("ping.yml"))
        .arg("-i")
        .arg(lab.path("inv.ini"))
        .env("HOME", lab.path("home"))
        .current_dir(lab.dir.path());
    rigger_cmd(cmd, Duration::from_secs(60))
}

#[test]
fn ssh_options_given_the_ansible_way_are_honoured() {
    let lab = Lab::new(1);
    std::fs::create_dir_all(lab.path("home")).unwrap();
    lab.write(
        "ping.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - shell: echo hi > @OUT@/reached\n",
    );
    let kh = lab.hosts.known_hosts().display().to_string();

    // No known_hosts anywhere: the strict default refuses the host.
    let (code, out, err) = run_with_host_vars(&lab, "", true);
    assert_ne!(code, 0, "{out}{err}");
    assert!(!lab.path("out/reached").exists());

    // UserKnownHostsFile + StrictHostKeyChecking in ansible_ssh_common_args.
    let (code, out, err) = run_with_host_vars(
        &lab,
        &format!("ansible_ssh_common_args='-o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes'"),
        true,
    );
    ok(code, &out, &err);
    assert_eq!(lab.read("out/reached"), "hi\n");
    std::fs::remove_file(lab.path("out/reached")).unwrap();

    // A known_hosts without the host, strict: refused (the option is used).
    lab.write("empty_known_hosts", "");
    let empty = lab.path("empty_known_hosts").display().to_string();
    let (code, out, err) = run_with_host_vars(
        &lab,
        &format!("ansible_ssh_extra_args='-o UserKnownHostsFile={empty} -o StrictHostKeyChecking=yes'"),
        true,
    );
    assert_ne!(code, 0, "{out}{err}");
    assert!(!lab.path("out/reached").exists());

    // The common idiom: no checking at all; Port and User given as -o too;
    // an option rigger cannot apply is named in a warning.
    let (code, out, err) = run_with_host_vars(
        &lab,
        &format!(
            "ansible_ssh_common_args='-o UserKnownHostsFile=/dev/null -o StrictHostKeyChecking=no -o Port={} -o ForwardX11=yes -o ControlMaster=auto'",
            lab.hosts.port(0)
        ),
        false,
    );
    ok(code, &out, &err);
    assert_eq!(lab.read("out/reached"), "hi\n");
    assert!(err.contains("ForwardX11") && err.contains("[WARNING]"), "{err}");
    assert!(!err.contains("ControlMaster"), "{err}");
}

/// Ansible's `python` facts (in the `min` subset, so every gathering has
/// them): the version, executable and implementation of the interpreter
/// Ansible's `setup` runs under, `ansible_python_interpreter` when set.
/// geerlingguy.pip builds a path from `ansible_facts['python']['version']['minor']`.
#[test]
fn python_facts_describe_the_targets_interpreter() {
    let lab = Lab::new(1);
    lab.write(
        "py.yml",
        r#"
- hosts: testhosts
  tasks:
    - copy:
        dest: "@OUT@/default"
        content: "{{ ansible_facts['python']['version']['major'] }}.{{ ansible_facts.python.version.minor }}.{{ ansible_python.version.micro }} {{ ansible_python.version_info[3] }} {{ ansible_python.executable }} {{ ansible_python.type }} {{ ansible_python.has_sslcontext }}\n"
- hosts: testhosts
  vars:
    ansible_python_interpreter: /usr/bin/python3.11
  gather_facts: false
  tasks:
    - setup: {gather_subset: ['!all', 'python']}
    - copy:
        dest: "@OUT@/own"
        content: "{{ ansible_python.executable }} {{ ansible_python.version_info[:2] | join('.') }}\n"
"#,
    );
    let (code, out, err) = lab.run("py.yml", &[]);
    ok(code, &out, &err);
    let real = Command::new("/usr/bin/python3")
        .args([
            "-c",
            "import sys; v = sys.version_info; print(f'{v[0]}.{v[1]}.{v[2]} {v[3]}')",
        ])
        .output()
        .unwrap();
    let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
    assert_eq!(
        lab.read("out/default"),
        format!("{real} /usr/bin/python3 cpython True\n")
    );
    assert_eq!(lab.read("out/own"), "/usr/bin/python3.11 3.11\n");
}

/// Ansible escapes backslashes in the string constants of expressions
/// sourced from YAML: `regex_replace(..., "\1")` is a back-reference, not
/// the character U+0001 (geerlingguy.haproxy reads its version this way and
/// picks its config syntax from it). Conditionals and template files are
/// not escaped, as in Ansible.
#[test]
fn backslashes_in_yaml_expressions_stay_literal() {
    let lab = Lab::new(1);
    lab.write("t.j2", "{{ \"a\\tb\" }}|{{ v }}\n");
    lab.write(
        "bs.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - set_fact:
        v: '{{ "HAProxy version 2.6.12-1 2025" | regex_replace("^HA-?Proxy version (\d+(\.\d+)*).*$", "\1") }}'
        w: '{{ "x\ny" }}'
    - copy:
        dest: "@OUT@/args"
        content: '{{ v }} {{ v is version("1.4", "<=") }} {{ w | length }} {{ "\\" | length }}{{ "\n" }}'
    - copy:
        dest: "@OUT@/when"
        content: "tab\n"
      when: '"\t" | length == 1'
    - template: {src: t.j2, dest: "@OUT@/file"}
"#,
    );
    let (code, out, err) = lab.run("bs.yml", &[]);
    ok(code, &out, &err);
    // `"\\"` is two backslashes, `"\n"` a backslash and an n, as Ansible renders them.
    assert_eq!(lab.read("out/args"), "2.6.12 False 4 2\\n");
    assert_eq!(lab.read("out/when"), "tab\n");
    assert_eq!(lab.read("out/file"), "a\tb|2.6.12\n");
}

/// `import_tasks` takes the keywords its tasks inherit, as Ansible's does
/// (robertdebock's roles import with `run_once:`): `run_once` and `no_log`
/// apply to every imported task.
#[test]
fn import_tasks_passes_inherited_keywords_to_its_tasks() {
    let lab = Lab::new(2);
    lab.write(
        "once.yml",
        "- shell: echo {{ inventory_hostname }} >> @OUT@/once\n- debug:\n    msg: the-hidden-value\n",
    );
    lab.write(
        "pb.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - import_tasks: once.yml\n      run_once: true\n      no_log: true\n",
    );
    let (code, out, err) = lab.run("pb.yml", &[]);
    ok(code, &out, &err);
    assert_eq!(lab.lines("once").len(), 1, "{out}");
    assert!(!out.contains("the-hidden-value"), "{out}");
}
