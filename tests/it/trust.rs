//! What an operator trusts unattended (issue #21): name references that
//! point nowhere fail at load, an unreachable host says why (once), typed
//! connection variables are inventory errors, and `throttle:` limits how
//! many hosts run a task at once. Real binary, real sshd test hosts.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::engine::Lab;
use crate::support::{down_host, rigger_bin, rigger_cmd};

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// An INI inventory line for test host `i` under `name`.
fn inventory_line(lab: &Lab, i: usize, name: &str) -> String {
    format!(
        "{name} ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={}",
        lab.hosts.addr(i),
        lab.hosts.port(i),
        lab.hosts.client_key().display()
    )
}

/// `rigger run PB -i INV` in the lab.
fn run_inv(lab: &Lab, pb: &str, inv: &str, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(rigger_bin());
    cmd.arg("run")
        .arg(lab.path(pb))
        .arg("-i")
        .arg(lab.path(inv))
        .arg("--known-hosts")
        .arg(lab.hosts.known_hosts())
        .args(extra)
        .current_dir(lab.dir.path());
    rigger_cmd(cmd, Duration::from_secs(120))
}

/// `notify:` and every other name reference (roles, `include_role` and its
/// `*_from` files) is checked when the playbook is loaded, with a located
/// error and a "did you mean"; what only a template can say is checked when
/// the task runs, and fails that task loudly.
#[test]
fn name_references_are_checked_at_load_and_templated_ones_at_run_time() {
    let lab = Lab::new(1);
    lab.write(
        "roles/common/tasks/main.yml",
        "- name: common task\n  command: echo common\n  changed_when: true\n  notify: restart app\n",
    );
    lab.write(
        "roles/common/tasks/other.yml",
        "- name: other task\n  copy: {content: \"{{ flavour }}\\n\", dest: \"@OUT@/flavour\"}\n",
    );
    lab.write("roles/common/vars/other.yml", "flavour: from-vars-other\n");
    lab.write(
        "roles/common/handlers/main.yml",
        "- name: restart app\n  shell: echo restarted >> @OUT@/app-restarts\n",
    );
    let head = "- hosts: all\n  gather_facts: false\n";
    // (playbook, line:col of the error, message, hint)
    let load_errors: &[(&str, &str, &str, &str)] = &[
        (
            "  tasks:\n    - command: echo hi\n      notify: restart sshd\n  handlers:\n    - name: restart ssh\n      command: echo\n",
            "5:15",
            "The requested handler 'restart sshd' was not found in either the main handlers list nor in the listening handlers list",
            "did you mean 'restart ssh'?",
        ),
        (
            // A list entry; a handler's listen topic is a candidate too.
            "  tasks:\n    - command: echo hi\n      notify:\n        - web changed\n        - web chnged\n  handlers:\n    - name: reload\n      command: echo\n      listen: web changed\n",
            "7:11",
            "The requested handler 'web chnged' was not found",
            "did you mean 'web changed'?",
        ),
        (
            "  tasks:\n    - command: echo hi\n      notify: restart app\n",
            "5:15",
            "The requested handler 'restart app' was not found",
            "no handlers",
        ),
        (
            "  tasks:\n    - include_role:\n        name: comon\n",
            "4:7",
            "role `comon` not found",
            "did you mean `common`?",
        ),
        ("  roles:\n    - comon\n", "4:7", "role `comon` not found", "did you mean `common`?"),
        (
            "  tasks:\n    - include_role:\n        name: common\n        tasks_from: othre\n",
            "4:7",
            "role `common` has no tasks file `othre`",
            "did you mean `other`?",
        ),
        (
            "  tasks:\n    - import_role:\n        name: common\n        vars_from: nope\n",
            "5:9",
            "role `common` has no vars file `nope`",
            "",
        ),
        (
            "  tasks:\n    - command: echo\n  handlers:\n    - name: dyn\n      include_role:\n        name: comon\n",
            "6:7",
            "role `comon` not found",
            "did you mean `common`?",
        ),
        ("- import_playbook: missing.yml\n", "1:20", "import_playbook missing.yml", ""),
    ];
    for (i, (body, at, msg, hint)) in load_errors.iter().enumerate() {
        let name = format!("bad{i}.yml");
        let text = if body.starts_with("- import_playbook") {
            body.to_string()
        } else {
            format!("{head}{body}")
        };
        lab.write(&name, &text);
        for extra in [&[][..], &["--syntax-check"][..]] {
            let (code, out, err) = lab.run(&name, extra);
            assert_eq!(code, 1, "case {i} {extra:?}: exit\n{out}\n{err}");
            assert!(err.contains(&format!("{name}:{at}")), "case {i}: location {at}:\n{err}");
            assert!(err.contains(msg), "case {i}: {msg}:\n{err}");
            assert!(err.contains(hint), "case {i}: {hint}:\n{err}");
            assert!(!out.contains("TASK ["), "case {i}: nothing ran:\n{out}");
        }
    }

    // What resolves: handler names, listen topics, `role : name`, a role's
    // handlers, and vars_from; the handlers run.
    lab.write(
        "good.yml",
        &format!(
            "{head}  roles:\n    - common\n  tasks:\n    - include_role:\n        name: common\n        tasks_from: other\n        vars_from: other\n    - command: echo hi\n      changed_when: true\n      notify: [web changed, \"common : restart app\"]\n  handlers:\n    - name: reload web\n      shell: echo reloaded >> @OUT@/web-reloads\n      listen: web changed\n"
        ),
    );
    let (code, out, err) = lab.run("good.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(lab.lines("web-reloads"), ["reloaded"], "{out}");
    assert_eq!(lab.lines("app-restarts"), ["restarted"], "{out}");
    assert_eq!(lab.lines("flavour"), ["from-vars-other"], "{out}");

    // A templated notify and a role included by a templated name can only
    // be resolved at run time: a handler they name that exists runs; one
    // that does not fails that task, located, and the host's later tasks
    // do not run.
    lab.write(
        "runtime.yml",
        &format!(
            "{head}  vars:\n    which: common\n    target: restart app\n    missing: restart nothing\n  tasks:\n    - include_role:\n        name: \"{{{{ which }}}}\"\n    - command: echo a\n      changed_when: true\n      notify: \"{{{{ target }}}}\"\n    - name: notifies nothing that exists\n      command: echo b\n      changed_when: true\n      notify: \"{{{{ missing }}}}\"\n    - shell: touch @OUT@/after-the-failure\n"
        ),
    );
    let (code, out, err) = lab.run("runtime.yml", &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        out.contains("The requested handler 'restart nothing' was not found"),
        "{out}"
    );
    assert!(out.contains("runtime.yml:16:15"), "the notify entry's location:\n{out}");
    assert!(!lab.path("out/after-the-failure").exists(), "{out}");
    // The role's own notify (and the templated one) resolved: nothing ran
    // the handlers, since the host failed before the flush.
    assert!(out.contains("failed=1"), "{out}");
}

/// A dynamic include as a handler (`include_tasks`, `include_role`) is
/// notified by its name or a `listen` topic and, when it runs, loads and runs
/// its tasks then, as in Ansible: with its `vars:`, its condition, and the
/// handlers its tasks notify in turn. One that nothing notifies is never
/// loaded.
#[test]
fn includes_as_handlers_run_when_notified() {
    let lab = Lab::new(1);
    lab.write("roles/common/tasks/main.yml", "- command: echo main\n");
    lab.write(
        "roles/common/tasks/other.yml",
        "- name: other task\n  shell: echo \"{{ flavour }}\" >> @OUT@/role-handler\n",
    );
    lab.write("roles/common/vars/other.yml", "flavour: from-vars-other\n");
    lab.write(
        "handler-tasks.yml",
        "- shell: echo \"{{ who }}\" >> @OUT@/dyn\n  notify: chained\n- shell: echo second >> @OUT@/dyn\n",
    );
    lab.write(
        "pb.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: echo hi\n      changed_when: true\n      notify: [dyn, role topic, skipped one]\n    - shell: echo task >> @OUT@/order\n  handlers:\n    - name: dyn\n      include_tasks: handler-tasks.yml\n      vars:\n        who: included\n    - name: role handler\n      listen: role topic\n      include_role:\n        name: common\n        tasks_from: other\n        vars_from: other\n    - name: skipped one\n      include_tasks: handler-tasks.yml\n      when: false\n    - name: not notified\n      include_tasks: no-such-file.yml\n    - name: chained\n      shell: echo chained >> @OUT@/order\n",
    );
    let (code, out, err) = lab.run("pb.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(lab.lines("dyn"), ["included", "second"], "{out}");
    assert_eq!(lab.lines("role-handler"), ["from-vars-other"], "{out}");
    // Handlers run after the section's tasks; the one an included task
    // notified runs in the same flush.
    assert_eq!(lab.lines("order"), ["task", "chained"], "{out}");
    assert!(out.contains("RUNNING HANDLER [dyn]"), "{out}");
    // The included tasks run as handlers, and are shown as such.
    assert_eq!(count(&out, "RUNNING HANDLER [shell]"), 2, "{out}");
    assert!(out.contains("RUNNING HANDLER [common : other task]"), "{out}");
    assert!(
        !out.contains("no-such-file"),
        "an include nothing notified is not loaded:\n{out}"
    );

    // A notified include whose file does not exist fails that host, located.
    lab.write(
        "missing.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: echo hi\n      changed_when: true\n      notify: gone\n  handlers:\n    - name: gone\n      include_tasks: no-such-file.yml\n",
    );
    let (code, out, err) = lab.run("missing.yml", &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(out.contains("missing.yml:8:7"), "{out}");
    assert!(out.contains("no-such-file.yml"), "{out}");
}

/// An unreachable host whose first task is a loop: `run` says UNREACHABLE
/// once, with why, and `check` (text and JSON) reports why, not "All items
/// completed".
#[test]
fn an_unreachable_loop_reports_why_once_in_run_and_check() {
    let lab = Lab::new(1);
    let down = down_host();
    lab.write(
        "hosts.ini",
        &format!(
            "{}\n{}\n",
            inventory_line(&lab, 0, "up"),
            down.inventory_line("down", lab.hosts.client_key())
        ),
    );
    lab.write(
        "loop.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: first a loop\n      stat: {path: \"/{{ item }}\"}\n      loop: [etc, tmp]\n",
    );
    let inv = lab.path("hosts.ini").display().to_string();
    let kh = lab.hosts.known_hosts().display().to_string();
    let pb = lab.path("loop.yml").display().to_string();
    let run = |args: &[&str]| {
        let mut cmd = Command::new(rigger_bin());
        cmd.args(args).current_dir(lab.dir.path());
        rigger_cmd(cmd, Duration::from_secs(120))
    };
    // run, text
    let (code, out, err) = run(&["run", &pb, "-i", &inv, "--known-hosts", &kh]);
    assert_eq!(code, 4, "unreachable exit code:\n{out}\n{err}");
    assert_eq!(count(&out, "UNREACHABLE"), 1, "printed once:\n{out}");
    let line = out.lines().find(|l| l.contains("UNREACHABLE")).unwrap_or_default();
    assert!(line.contains("[down]"), "{line}");
    assert!(
        line.contains("cannot connect") || line.contains("refused"),
        "the reason:\n{line}"
    );
    assert!(!out.contains("All items completed"), "{out}");
    // run, JSON: one unreachable result for the host, with the reason.
    let (code, out, err) = run(&["run", &pb, "-i", &inv, "--known-hosts", &kh, "--output", "json"]);
    assert_eq!(code, 4, "{out}\n{err}");
    let events: Vec<Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let unreachable: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "host_result" && e["host"] == "down" && e["status"] == "unreachable")
        .collect();
    assert_eq!(unreachable.len(), 1, "{out}");
    let shown = unreachable[0].to_string();
    assert!(shown.contains("cannot connect") || shown.contains("refused"), "{shown}");
    assert!(!out.contains("All items completed"), "{out}");
    // check, text and JSON.
    let db = lab.path("check.db").display().to_string();
    let (code, out, err) = run(&["check", &pb, "-i", &inv, "--known-hosts", &kh, "--db", &db]);
    assert_eq!(code, 4, "{out}\n{err}");
    assert!(!out.contains("All items completed"), "{out}");
    assert!(out.contains("cannot connect") || out.contains("refused"), "{out}");
    let (code, out, err) = run(&[
        "check",
        &pb,
        "-i",
        &inv,
        "--known-hosts",
        &kh,
        "--db",
        &db,
        "--format",
        "json",
    ]);
    assert_eq!(code, 4, "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let host = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "down")
        .unwrap_or_else(|| panic!("{report}"))
        .to_string();
    assert!(host.contains("cannot connect") || host.contains("refused"), "{host}");
    assert!(!host.contains("All items completed"), "{host}");
}

/// A malformed typed connection variable is an inventory error at load,
/// located in the INI file, YAML inventory or host_vars/group_vars file;
/// a templated one is checked once rendered, as the task's located failure
/// (not UNREACHABLE).
#[test]
fn malformed_connection_variables_are_located_inventory_errors() {
    let lab = Lab::new(1);
    let line = inventory_line(&lab, 0, "host1");
    lab.write(
        "pb.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: touch\n      shell: touch @OUT@/ran-{{ inventory_hostname }}\n",
    );
    // (dir, files, inventory file, location, message)
    let cases: Vec<InventoryCase> = vec![
        (
            vec![(
                "inv1/hosts.ini".into(),
                line.replace("ansible_user=root", "ansible_user=root ansible_port=22x"),
            )],
            "inv1/hosts.ini",
            "hosts.ini:1:",
            "ansible_port must be a port number (1-65535), not `22x`",
        ),
        (
            vec![(
                "inv2/hosts.ini".into(),
                format!("{line}\n\n[all:vars]\nansible_ssh_timeout=ten\n"),
            )],
            "inv2/hosts.ini",
            "hosts.ini:4:",
            "ansible_ssh_timeout must be a whole number of seconds",
        ),
        (
            vec![
                ("inv3/hosts.ini".into(), line.clone()),
                (
                    "inv3/host_vars/host1.yml".into(),
                    "# conn\nansible_connection: sssh\n".into(),
                ),
            ],
            "inv3/hosts.ini",
            "host1.yml:2:21",
            "did you mean `ssh`?",
        ),
        (
            vec![
                ("inv4/hosts.ini".into(), line.clone()),
                ("inv4/group_vars/all.yml".into(), "ansible_become: maybe\n".into()),
            ],
            "inv4/hosts.ini",
            "all.yml:1:17",
            "ansible_become must be true or false, not `maybe`",
        ),
        (
            vec![(
                "inv5/hosts.yml".into(),
                format!(
                    "all:\n  hosts:\n    host1:\n      ansible_host: {}\n      ansible_port: 70000\n",
                    lab.hosts.addr(0)
                ),
            )],
            "inv5/hosts.yml",
            "hosts.yml:5:21",
            "ansible_port must be a port number",
        ),
    ];
    for (i, (files, inv, at, msg)) in cases.iter().enumerate() {
        for (rel, text) in files {
            lab.write(rel, text);
        }
        let (code, out, err) = run_inv(&lab, "pb.yml", inv, &[]);
        assert_eq!(code, 1, "case {i}: an inventory error\n{out}\n{err}");
        assert!(err.contains(at), "case {i}: location {at}:\n{err}");
        assert!(err.contains(msg), "case {i}: {msg}:\n{err}");
        assert!(!out.contains("UNREACHABLE"), "case {i}:\n{out}");
        assert!(!lab.path("out/ran-host1").exists(), "case {i}: nothing ran");
    }
    // A template is checked once rendered: a good one connects...
    let port = lab.hosts.port(0);
    lab.write(
        "inv6/hosts.ini",
        &line.replace(&format!("ansible_port={port}"), "ansible_port=\"{{ ssh_port }}\""),
    );
    lab.write("inv6/group_vars/all.yml", &format!("ssh_port: {port}\n"));
    let (code, out, err) = run_inv(&lab, "pb.yml", "inv6/hosts.ini", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(lab.path("out/ran-host1").exists(), "{out}");
    std::fs::remove_file(lab.path("out/ran-host1")).unwrap();
    // ...a bad one fails the task, located, and is not UNREACHABLE.
    lab.write("inv6/group_vars/all.yml", "ssh_port: twenty-two\n");
    let (code, out, err) = run_inv(&lab, "pb.yml", "inv6/hosts.ini", &[]);
    assert_eq!(code, 2, "a failed task:\n{out}\n{err}");
    assert!(!out.contains("UNREACHABLE"), "{out}");
    assert!(
        out.contains("ansible_port must be a port number (1-65535), not `twenty-two`"),
        "{out}"
    );
    assert!(out.contains("pb.yml:4:"), "the task's location:\n{out}");
    assert!(!lab.path("out/ran-host1").exists(), "{out}");
    // With fact gathering, the same check fails the gathering, not as UNREACHABLE.
    lab.write(
        "pbf.yml",
        "- hosts: all\n  tasks:\n    - shell: touch @OUT@/ran-{{ inventory_hostname }}\n",
    );
    let (code, out, err) = run_inv(&lab, "pbf.yml", "inv6/hosts.ini", &[]);
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(!out.contains("UNREACHABLE"), "{out}");
    assert!(out.contains("not `twenty-two`"), "{out}");
}

/// Inventory files to write, the inventory to use, the error's location and message.
type InventoryCase = (Vec<(String, String)>, &'static str, &'static str, &'static str);

/// Intervals `start end` (seconds) per line of each host's file.
fn intervals(lab: &Lab, file: &str, hosts: usize) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    for i in 0..hosts {
        let lines = lab.lines(&format!("{}-{file}", lab.hosts.name(i)));
        assert_eq!(lines.len(), 1, "{file} on {}: {lines:?}", lab.hosts.name(i));
        let mut parts = lines[0].split_whitespace().map(|x| x.parse::<f64>().unwrap());
        out.push((parts.next().unwrap(), parts.next().unwrap()));
    }
    out
}

/// The most intervals that overlap at one moment.
fn max_concurrent(iv: &[(f64, f64)]) -> usize {
    let mut points: Vec<(f64, i32)> = Vec::new();
    for (s, e) in iv {
        points.push((*s, 1));
        points.push((*e, -1));
    }
    // An end before a start at the same instant.
    points.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap().then(a.1.cmp(&b.1)));
    let (mut cur, mut max) = (0, 0);
    for (_, d) in points {
        cur += d;
        max = max.max(cur);
    }
    max as usize
}

/// `throttle:` on a task, a block, a role and as a template: at most that
/// many hosts run the task at the same time; without it, all hosts do.
#[test]
fn throttle_limits_how_many_hosts_run_a_task_at_once() {
    let n = 4;
    let lab = Lab::new(n);
    let rec = |file: &str| {
        format!(
            "shell: \"s=$(date +%s.%N); sleep 0.7; echo $s $(date +%s.%N) > @OUT@/{{{{ inventory_hostname }}}}-{file}\""
        )
    };
    lab.write("roles/slow/tasks/main.yml", &format!("- {}\n", rec("role")));
    lab.write(
        "throttle.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  vars:\n    lim: 2\n  roles:\n    - role: slow\n      throttle: 1\n  tasks:\n    - name: free\n      {}\n    - name: one at a time\n      {}\n      throttle: 1\n    - block:\n        - {}\n      throttle: 2\n    - name: templated\n      {}\n      throttle: \"{{{{ lim }}}}\"\n",
            rec("free"),
            rec("task1"),
            rec("block2"),
            rec("tmpl2")
        ),
    );
    let (code, out, err) = lab.run("throttle.yml", &["--forks", "10"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let free = max_concurrent(&intervals(&lab, "free", n));
    assert!(free >= 3, "without throttle the hosts overlap ({free}):\n{out}");
    assert_eq!(
        max_concurrent(&intervals(&lab, "task1", n)),
        1,
        "throttle: 1 on the task"
    );
    assert_eq!(
        max_concurrent(&intervals(&lab, "role", n)),
        1,
        "throttle: 1 on the role"
    );
    assert!(
        max_concurrent(&intervals(&lab, "block2", n)) <= 2,
        "throttle: 2 on the block"
    );
    assert!(max_concurrent(&intervals(&lab, "tmpl2", n)) <= 2, "templated throttle");
    // A value that is not a number of hosts is a located load error.
    lab.write(
        "bad.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: echo\n      throttle: many\n",
    );
    let (code, _, err) = lab.run("bad.yml", &["--syntax-check"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("bad.yml:5:17") && err.contains("throttle must be a whole number"),
        "{err}"
    );
}

/// A templated `become_method` is rendered with the task's variables; one
/// that renders to a method rigger does not have fails the task with its
/// location, instead of silently becoming with sudo.
#[test]
fn a_templated_become_method_is_rendered_and_an_unknown_one_fails_the_task() {
    let lab = Lab::new(1);
    lab.write(
        "become.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - name: known\n      command: id -u\n      become: true\n      become_method: \"{{ how }}\"\n      vars:\n        how: sudo\n      register: known\n    - name: unknown\n      command: id -u\n      become: true\n      become_method: \"{{ how }}\"\n      vars:\n        how: runas\n",
    );
    let (code, out, err) = lab.run("become.yml", &[]);
    assert_eq!(code, 2, "the unknown method fails the task\n{out}\n{err}");
    assert!(
        out.contains("become.yml:11:7") && out.contains("unsupported become method `runas`"),
        "the failure names the task's location and the method:\n{out}"
    );
    assert_eq!(count(&out, "changed: [host1]"), 1, "the sudo task ran:\n{out}");
}
