//! The playbook engine end to end: real playbooks through the rigger binary
//! against real sshd test hosts. Hosts share the machine's file system (unless
//! isolated), so tasks record what they did into files under the test's
//! `out/` directory, which the test then reads.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{rigger_bin, rigger_cmd, HostOpts, TestHosts};

/// A fleet plus a scratch directory holding playbooks and `out/`.
pub struct Lab {
    pub hosts: TestHosts,
    pub dir: tempfile::TempDir,
}

impl Lab {
    pub fn new(n: usize) -> Lab {
        Lab::with(TestHosts::new(n))
    }

    pub fn isolated(n: usize) -> Lab {
        Lab::with(TestHosts::with_opts(n, HostOpts { isolated_root: true }))
    }

    fn with(hosts: TestHosts) -> Lab {
        // Where the hosts see it at the same path: the harness's own
        // directory (target/tmp, or its fallback when the checkout lies
        // under a directory the hosts mount over, e.g. a clone in /tmp).
        let dir = tempfile::Builder::new()
            .prefix("engine-")
            .tempdir_in(crate::support::hosts::hosts_base())
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("out")).expect("out dir");
        Lab { hosts, dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The directory tasks write into (`@OUT@` in written files).
    pub fn out(&self) -> String {
        self.path("out").display().to_string()
    }

    /// Write a file (creating parents); `@OUT@` becomes [`Lab::out`].
    pub fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, text.replace("@OUT@", &self.out())).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// Lines of `out/<name>`.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.read(&format!("out/{name}")).lines().map(str::to_string).collect()
    }

    pub fn cmd(&self, pb: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(rigger_bin());
        cmd.arg("run")
            .arg(self.path(pb))
            .arg("-i")
            .arg(self.hosts.inventory())
            .arg("--known-hosts")
            .arg(self.hosts.known_hosts())
            .args(args)
            .current_dir(self.dir.path());
        cmd
    }

    /// `rigger run PB -i <fleet> ARGS` → (code, stdout, stderr).
    pub fn run(&self, pb: &str, args: &[&str]) -> (i32, String, String) {
        rigger_cmd(self.cmd(pb, args), Duration::from_secs(120))
    }

    /// Like [`Lab::run`] with `--output json`: every stdout line must be a JSON event.
    pub fn run_json(&self, pb: &str, args: &[&str]) -> (i32, Vec<Value>, String) {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let (code, out, err) = self.run(pb, &all);
        (code, parse_events(&out), err)
    }
}

pub fn parse_events(out: &str) -> Vec<Value> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}\n{out}")))
        .collect()
}

/// host_result events of one task (by name).
pub fn results<'a>(events: &'a [Value], task: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "host_result" && e["task"] == task)
        .collect()
}

/// (host, task) of every host_result in output order.
pub fn result_order(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["event"] == "host_result")
        .map(|e| {
            (
                e["host"].as_str().unwrap_or_default().to_string(),
                e["task"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn recap(events: &[Value]) -> &Value {
    let r = events
        .iter()
        .rev()
        .find(|e| e["event"] == "recap")
        .expect("a recap event");
    &r["hosts"]
}

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn handlers_notify_listen_flush_and_failure() {
    let lab = Lab::new(2);
    lab.write(
        "handlers.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  handlers:
    - name: restart app
      shell: echo "restart {{ inventory_hostname }}" >> @OUT@/h-{{ inventory_hostname }}
    - name: reload
      listen: web changed
      shell: echo "listen {{ inventory_hostname }}" >> @OUT@/h-{{ inventory_hostname }}
    - name: never notified
      shell: echo never >> @OUT@/h-{{ inventory_hostname }}
  tasks:
    - shell: echo "t1" >> @OUT@/h-{{ inventory_hostname }}
      notify: restart app
    - shell: echo "t2" >> @OUT@/h-{{ inventory_hostname }}
      notify: [restart app, web changed]
    - name: flush now
      meta: flush_handlers
    - shell: echo "t3" >> @OUT@/h-{{ inventory_hostname }}
      notify: restart app
    - name: unchanged task does not notify
      command: "true"
      changed_when: false
      notify: reload
    - shell: echo "t4" >> @OUT@/h-{{ inventory_hostname }}
"#,
    );
    let (code, out, err) = lab.run("handlers.yml", &[]);
    assert_ok(code, &out, &err);
    for h in ["host1", "host2"] {
        // Notified twice, run once at the flush; a second notification runs it again at the end.
        assert_eq!(
            lab.lines(&format!("h-{h}")),
            vec![
                "t1".to_string(),
                "t2".into(),
                format!("restart {h}"),
                format!("listen {h}"),
                "t3".into(),
                "t4".into(),
                format!("restart {h}"),
            ],
            "{out}"
        );
    }
    assert!(out.contains("RUNNING HANDLER [restart app]"), "{out}");

    // A failed host does not run its handlers, unless forced.
    lab.write(
        "fail.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  handlers:
    - name: h
      shell: echo "handler" >> @OUT@/f-{{ inventory_hostname }}
  tasks:
    - shell: echo "changed" >> @OUT@/f-{{ inventory_hostname }}
      notify: h
    - fail: msg=boom
      when: inventory_hostname == 'host1'
"#,
    );
    let (code, out, _) = lab.run("fail.yml", &[]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(lab.lines("f-host1"), vec!["changed"], "{out}");
    assert_eq!(lab.lines("f-host2"), vec!["changed", "handler"], "{out}");

    std::fs::remove_file(lab.path("out/f-host1")).unwrap();
    std::fs::remove_file(lab.path("out/f-host2")).unwrap();
    let (code, out, _) = lab.run("fail.yml", &["--force-handlers"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(lab.lines("f-host1"), vec!["changed", "handler"], "{out}");

    // force_handlers as a play keyword.
    std::fs::remove_file(lab.path("out/f-host1")).unwrap();
    let text = lab
        .read("fail.yml")
        .replacen("gather_facts: false", "gather_facts: false\n  force_handlers: true", 1);
    std::fs::write(lab.path("fail2.yml"), text).unwrap();
    let (code, out, _) = lab.run("fail2.yml", &[]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(lab.lines("f-host1"), vec!["changed", "handler"], "{out}");
}

#[test]
fn block_rescue_always_order_and_recap() {
    let lab = Lab::new(1);
    lab.write(
        "blocks.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    log: "@OUT@/order"
  tasks:
    - block:
        - shell: echo block1 >> {{ log }}
        - block:
            - shell: echo inner-block >> {{ log }}
            - command: /bin/false
            - shell: echo not-reached >> {{ log }}
          always:
            - shell: echo inner-always >> {{ log }}
        - shell: echo not-reached-2 >> {{ log }}
      rescue:
        - shell: echo "rescue {{ ansible_failed_task.name | default('?') }}" >> {{ log }}
      always:
        - shell: echo always >> {{ log }}
    - shell: echo after >> {{ log }}
    - block:
        - shell: echo b2 >> {{ log }}
      rescue:
        - shell: echo rescue-not-run >> {{ log }}
      always:
        - shell: echo always2 >> {{ log }}
"#,
    );
    let (code, events, err) = lab.run_json("blocks.yml", &[]);
    let order = lab.lines("order");
    assert_eq!(
        order,
        vec![
            "block1",
            "inner-block",
            "inner-always",
            // ansible_failed_task is defined in rescue; an unnamed task's name is "" (as in Ansible).
            "rescue ",
            "always",
            "after",
            "b2",
            "always2"
        ],
        "{err}"
    );
    // A rescued failure is not a failed host.
    assert_eq!(code, 0, "{events:?}");
    let r = &recap(&events)["host1"];
    assert_eq!(r["rescued"], 1, "{r}");
    assert_eq!(r["failed"], 0, "{r}");

    // Failure in rescue: always still runs, host fails.
    lab.write(
        "rescue_fails.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - block:
        - command: /bin/false
      rescue:
        - fail: msg=again
      always:
        - shell: echo always-after-rescue-failed >> @OUT@/order2
    - shell: echo never >> @OUT@/order2
"#,
    );
    let (code, events, _) = lab.run_json("rescue_fails.yml", &[]);
    assert_eq!(code, 2);
    assert_eq!(lab.lines("order2"), vec!["always-after-rescue-failed"]);
    assert_eq!(recap(&events)["host1"]["failed"], 1);
}

/// The play-wide lists are shared between hosts (built once, not copied per
/// host): they must still follow the play as it goes: a failed host leaves
/// `ansible_play_hosts`/`play_hosts` (not `ansible_play_hosts_all`), and
/// `add_host`/`group_by` change `groups` for the tasks after them, in
/// templates and in variables that are templates themselves. Magic names
/// win over a play variable of the same name, as before.
#[test]
fn play_host_lists_and_groups_follow_failures_and_inventory_changes() {
    let lab = Lab::new(3);
    lab.write(
        "magic.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    everyone: "{{ groups['testhosts'] | join(',') }}"
    play_hosts: not-this
  tasks:
    - shell: echo "before {{ inventory_hostname }} {{ ansible_play_hosts | join(',') }} {{ play_hosts | join(',') }} {{ everyone }}" >> @OUT@/lists
    - fail: {msg: planned}
      when: inventory_hostname == 'host2'
    - shell: echo "failed {{ inventory_hostname }} {{ play_hosts | join(',') }} {{ ansible_play_batch | join(',') }}" >> @OUT@/lists
    - group_by: {key: "kind_{{ 'a' if inventory_hostname == 'host1' else 'b' }}"}
    - add_host: {name: extra1, groups: [added], ansible_host: 127.0.0.1}
      run_once: true
    - shell: echo "after {{ inventory_hostname }} {{ ansible_play_hosts | join(',') }} {{ ansible_play_hosts_all | join(',') }} {{ groups['kind_b'] | join(',') }} {{ groups['added'] | join(',') }} {{ everyone }}" >> @OUT@/lists
"#,
    );
    let (code, _, err) = lab.run_json("magic.yml", &[]);
    assert_eq!(code, 2, "{err}");
    let mut lines = lab.lines("lists");
    lines.sort();
    assert_eq!(
        lines,
        vec![
            "after host1 host1,host3 host1,host2,host3 host3 extra1 host1,host2,host3",
            "after host3 host1,host3 host1,host2,host3 host3 extra1 host1,host2,host3",
            "before host1 host1,host2,host3 host1,host2,host3 host1,host2,host3",
            "before host2 host1,host2,host3 host1,host2,host3 host1,host2,host3",
            "before host3 host1,host2,host3 host1,host2,host3 host1,host2,host3",
            "failed host1 host1,host3 host1,host3",
            "failed host3 host1,host3 host1,host3",
        ]
    );
}

#[test]
fn serial_batches_numbers_percentages_lists() {
    let lab = Lab::new(5);
    lab.write(
        "serial.yml",
        r#"
- name: list
  hosts: testhosts
  gather_facts: false
  serial: [1, "40%", 2]
  tasks:
    - name: a
      shell: echo "{{ ansible_play_batch | join(',') }}" >> @OUT@/batches
      run_once: true
    - name: b
      command: "true"
- name: number
  hosts: testhosts
  gather_facts: false
  serial: 3
  tasks:
    - name: c
      shell: echo "{{ ansible_play_batch | join(',') }}" >> @OUT@/batches
      run_once: true
    - name: d
      shell: echo "{{ inventory_hostname }} {{ play_hosts | join(',') }} {{ ansible_play_hosts | join(',') }}" >> @OUT@/play_hosts
"#,
    );
    let (code, events, err) = lab.run_json("serial.yml", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        lab.lines("batches"),
        vec![
            "host1",
            "host2,host3",
            "host4,host5",
            "host1,host2,host3",
            "host4,host5"
        ]
    );
    // `play_hosts` is the batch (Ansible's old name of ansible_play_batch);
    // `ansible_play_hosts` the whole play.
    let mut ph = lab.lines("play_hosts");
    ph.sort();
    let all = "host1,host2,host3,host4,host5";
    assert_eq!(
        ph,
        vec![
            format!("host1 host1,host2,host3 {all}"),
            format!("host2 host1,host2,host3 {all}"),
            format!("host3 host1,host2,host3 {all}"),
            format!("host4 host4,host5 {all}"),
            format!("host5 host4,host5 {all}"),
        ]
    );
    // Batches run one after the other: every result of batch 1 precedes batch 2's.
    let order: Vec<(String, String)> = result_order(&events)
        .into_iter()
        .filter(|(_, t)| t == "a" || t == "b")
        .collect();
    let pos = |h: &str, t: &str| order.iter().position(|(hh, tt)| hh == h && tt == t).unwrap();
    assert!(pos("host1", "b") < pos("host2", "b"));
    assert!(pos("host3", "b") < pos("host4", "b"));
    assert!(events.iter().filter(|e| e["event"] == "play_start").count() >= 2);
}

#[test]
fn strategy_free_and_run_once() {
    let lab = Lab::new(3);
    lab.write(
        "free.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  strategy: free
  tasks:
    - name: slow on host1
      command: sleep 2
      when: inventory_hostname == 'host1'
    - name: second
      command: "true"
    - name: once
      shell: echo "{{ inventory_hostname }}" >> @OUT@/once; echo ran
      run_once: true
      register: once_r
    - name: show
      copy:
        content: "{{ once_r.stdout }}"
        dest: "@OUT@/once-{{ inventory_hostname }}"
"#,
    );
    let (code, events, err) = lab.run_json("free.yml", &[]);
    assert_eq!(code, 0, "{err}");
    let order = result_order(&events);
    let pos = |h: &str, t: &str| order.iter().position(|(hh, tt)| hh == h && tt == t).unwrap();
    // host2 did not wait for host1's slow task.
    assert!(pos("host2", "second") < pos("host1", "slow on host1"), "{order:?}");
    // run_once ran once, and every host has the registered result.
    assert_eq!(lab.lines("once").len(), 1, "{order:?}");
    for h in ["host1", "host2", "host3"] {
        assert_eq!(lab.read(&format!("out/once-{h}")), "ran");
    }
}

#[test]
fn any_errors_fatal_and_max_fail_percentage() {
    let lab = Lab::new(3);
    let pb = |kw: &str| {
        format!(
            r#"
- hosts: testhosts
  gather_facts: false
  {kw}
  tasks:
    - fail: msg=boom
      when: inventory_hostname == 'host1'
    - shell: echo "{{{{ inventory_hostname }}}}" >> @OUT@/after-{}
- hosts: testhosts
  gather_facts: false
  tasks:
    - shell: echo "{{{{ inventory_hostname }}}}" >> @OUT@/play2-{}
"#,
            kw.replace([':', ' '], ""),
            kw.replace([':', ' '], "")
        )
    };
    for (kw, continues) in [
        ("any_errors_fatal: true", false),
        ("max_fail_percentage: 30", false),
        ("max_fail_percentage: 50", true),
        ("any_errors_fatal: false", true),
    ] {
        let name = kw.replace([':', ' '], "");
        lab.write(&format!("{name}.yml"), &pb(kw));
        let (code, out, _) = lab.run(&format!("{name}.yml"), &[]);
        assert_eq!(code, 2, "{kw}: {out}");
        let mut after = lab.lines(&format!("after-{name}"));
        after.sort();
        let mut play2 = lab.lines(&format!("play2-{name}"));
        play2.sort();
        if continues {
            assert_eq!(after, vec!["host2", "host3"], "{kw}: {out}");
            assert_eq!(play2, vec!["host2", "host3"], "{kw}: {out}");
        } else {
            assert!(after.is_empty(), "{kw}: {out}");
            assert!(play2.is_empty(), "{kw}: {out}");
        }
    }
}

#[test]
fn delegate_to_and_run_once_register_on_all_hosts() {
    let lab = Lab::isolated(2);
    lab.write(
        "delegate.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - name: on host2
      command: hostname
      delegate_to: host2
      register: d2
    - name: on the controller
      command: hostname
      delegate_to: localhost
      register: dl
    - name: local_action
      local_action: command hostname
      register: la
    - name: once
      command: hostname
      run_once: true
      register: once
    - copy:
        dest: /srv/result
        content: "{{ [inventory_hostname, d2.stdout, dl.stdout, la.stdout, once.stdout] | join(' ') }}"
"#,
    );
    let (code, events, err) = lab.run_json("delegate.yml", &[]);
    assert_eq!(code, 0, "{err}");
    let me = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap();
    let me = me.trim();
    for i in 0..2 {
        let got = std::fs::read_to_string(lab.hosts.root_dir(i).unwrap().join("result")).unwrap();
        assert_eq!(got, format!("host{} host2 {me} {me} host1", i + 1));
    }
    let d = results(&events, "on host2");
    assert!(d.iter().all(|e| e["delegated_to"] == "host2"), "{d:?}");
    assert_eq!(results(&events, "once").len(), 1);
}

#[test]
fn loops_register_until_changed_failed_when_ignore() {
    let lab = Lab::new(1);
    lab.write("files/a.conf", "a");
    lab.write("files/b.conf", "b");
    lab.write("files/c.txt", "c");
    lab.write(
        "loops.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    users: {alice: 1, bob: 2}
  tasks:
    - command: echo {{ item }}
      loop: [x, y]
      register: lr
    - debug: msg={{ item }}
      with_items: [[1, 2], 3]
      register: wi
    - debug: msg="{{ item.key }}={{ item.value }}"
      with_dict: "{{ users }}"
      register: wd
    - debug: msg={{ item | basename }}
      with_fileglob: ["*.conf"]
      register: wf
    - debug: msg={{ item }}
      with_sequence: start=2 end=6 stride=2 format=n%02d
      register: ws
    - debug: msg="{{ idx }} {{ thing.n }} {{ ansible_loop.first }} {{ ansible_loop.last }} {{ ansible_loop.length }}"
      loop: [{n: a, secret: s1}, {n: b, secret: s2}]
      loop_control: {loop_var: thing, index_var: idx, label: "{{ thing.n }}", extended: true, pause: 0.3}
      register: lc
    - shell: n=$(cat @OUT@/count 2>/dev/null || echo 0); echo $((n+1)) > @OUT@/count; cat @OUT@/count
      register: u
      until: u.stdout | int >= 3
      retries: 5
      delay: 0
    - command: echo hi
      register: cw
      changed_when: "'hi' in cw.stdout and false"
      failed_when: cw.rc != 0
    - command: /bin/false
      register: ff
      failed_when: false
    - command: /bin/false
      ignore_errors: true
    - copy:
        dest: "@OUT@/loops.json"
        content: "{{ {'lr': lr.results | map(attribute='stdout') | list,
                      'wi': wi.results | map(attribute='msg') | list,
                      'wd': wd.results | map(attribute='msg') | list,
                      'wf': wf.results | map(attribute='msg') | sort,
                      'ws': ws.results | map(attribute='msg') | list,
                      'lc': lc.results | map(attribute='msg') | list,
                      'lcvar': lc.results[0].ansible_loop_var,
                      'u': u.attempts, 'cw': cw.changed, 'ff': ff.failed | default(false), 'ffrc': ff.rc} | to_json }}"
"#,
    );
    let start = std::time::Instant::now();
    let (code, events, err) = lab.run_json("loops.yml", &[]);
    assert_eq!(code, 0, "{err}\n{events:#?}");
    assert!(
        start.elapsed() >= Duration::from_millis(300),
        "loop_control.pause waits between items"
    );
    let got: Value = serde_json::from_str(&lab.read("out/loops.json")).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "lr": ["x", "y"], "wi": [1, 2, 3], "wd": ["alice=1", "bob=2"],
            "wf": ["a.conf", "b.conf"], "ws": ["n02", "n04", "n06"],
            "lc": ["0 a True False 2", "1 b False True 2"], "lcvar": "thing",
            "u": 3, "cw": false, "ff": false, "ffrc": 1
        })
    );
    // The label, not the whole item, is shown.
    let lc: Vec<&Value> = results(&events, "debug")
        .into_iter()
        .filter(|e| e["item"] == "a")
        .collect();
    assert_eq!(lc.len(), 1);
    let r = &recap(&events)["host1"];
    assert_eq!(r["ignored"], 1, "{r}");
    assert_eq!(r["failed"], 0, "{r}");
}

/// What `changed_when`/`failed_when` see: the result's keys below the
/// variables, the register name above them, the magic variables and
/// `hostvars` as everywhere.
#[test]
fn changed_when_sees_result_keys_below_vars_and_register_above() {
    let lab = Lab::new(1);
    lab.write(
        "prec.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    stdout: from a variable
    out: a variable named like the register
  tasks:
    - command: echo hi
      register: out
      changed_when: "rc == 0 and stdout == 'from a variable' and out.stdout == 'hi' and inventory_hostname == 'host1'"
      failed_when: "groups['testhosts'] | length != 1 or hostvars['host1'] is not defined"
    - command: echo hi
      register: second
      changed_when: "stdout == 'hi'"
    - copy:
        dest: "@OUT@/prec.json"
        content: "{{ {'out': out.changed, 'second': second.changed, 'stdout': stdout} | to_json }}"
"#,
    );
    let (code, events, err) = lab.run_json("prec.yml", &[]);
    assert_eq!(code, 0, "{err}\n{events:#?}");
    let got: Value = serde_json::from_str(&lab.read("out/prec.json")).unwrap();
    assert_eq!(
        got,
        serde_json::json!({"out": true, "second": false, "stdout": "from a variable"})
    );
}

#[test]
fn ignore_unreachable_and_exit_code_4() {
    let lab = Lab::new(1);
    let down = crate::support::down_host();
    let inv = format!(
        "[testhosts]\n{}\n{}\n",
        std::fs::read_to_string(lab.hosts.inventory())
            .unwrap()
            .lines()
            .nth(1)
            .unwrap(),
        down.inventory_line("gone", lab.hosts.client_key())
    );
    lab.write("inv.ini", &inv);
    lab.write(
        "unreach.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - command: "true"
      ignore_unreachable: true
    - shell: echo "{{ inventory_hostname }}" >> @OUT@/after
"#,
    );
    let mut cmd2 = Command::new(rigger_bin());
    cmd2.args(["run", "--output", "json", "-T", "3"])
        .arg(lab.path("unreach.yml"))
        .arg("-i")
        .arg(lab.path("inv.ini"))
        .arg("--known-hosts")
        .arg(lab.hosts.known_hosts());
    let (code, out, err) = rigger_cmd(cmd2, Duration::from_secs(60));
    let events = parse_events(&out);
    // ignore_unreachable lets "gone" continue to the next task (where it is unreachable again).
    assert_eq!(code, 4, "{out}\n{err}");
    assert_eq!(lab.lines("after"), vec!["host1"]);
    let r = recap(&events);
    assert_eq!(r["gone"]["unreachable"], 1, "{r}");
    assert_eq!(r["gone"]["ignored"], 1, "{r}");
    assert_eq!(r["host1"]["failed"], 0);
}

#[test]
fn tags_and_listings() {
    let lab = Lab::new(2);
    lab.write(
        "tags.yml",
        r#"
- name: tagged play
  hosts: testhosts
  gather_facts: false
  tags: [play]
  tasks:
    - name: t-always
      shell: echo always >> @OUT@/tags
      run_once: true
      tags: [always]
    - name: t-never
      shell: echo never >> @OUT@/tags
      run_once: true
      tags: [never, debug]
    - name: t-web
      shell: echo web >> @OUT@/tags
      run_once: true
      tags: web
    - name: t-db
      shell: echo db >> @OUT@/tags
      run_once: true
      tags: [db]
    - block:
        - name: t-in-block
          shell: echo blk >> @OUT@/tags
          run_once: true
      tags: [blk]
"#,
    );
    let run = |args: &[&str]| -> Vec<String> {
        let _ = std::fs::remove_file(lab.path("out/tags"));
        let (code, out, err) = lab.run("tags.yml", args);
        assert_ok(code, &out, &err);
        lab.lines("tags")
    };
    assert_eq!(run(&[]), vec!["always", "web", "db", "blk"]);
    assert_eq!(run(&["--tags", "web"]), vec!["always", "web"]);
    assert_eq!(run(&["--tags", "debug,blk"]), vec!["always", "never", "blk"]);
    assert_eq!(run(&["--skip-tags", "web,always"]), vec!["db", "blk"]);
    // Play tags are inherited, so `--tags play` also selects the `never` task (as in Ansible).
    assert_eq!(
        run(&["--tags", "play", "--skip-tags", "db"]),
        vec!["always", "never", "web", "blk"]
    );
    assert_eq!(run(&["--start-at-task", "t-db"]), vec!["db", "blk"]);

    let (code, out, _) = lab.run("tags.yml", &["--list-tags"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("TASK TAGS: [always, blk, db, debug, never, play, web]"),
        "{out}"
    );
    let (code, out, _) = lab.run("tags.yml", &["--list-tasks"]);
    assert_eq!(code, 0);
    for t in ["t-always", "t-never", "t-web", "t-db", "t-in-block"] {
        assert!(out.contains(t), "{out}");
    }
    let (code, out, _) = lab.run("tags.yml", &["--list-hosts", "--limit", "host2"]);
    assert_eq!(code, 0);
    assert!(out.contains("hosts (1):\n      host2\n"), "{out}");
    let (code, out, _) = lab.run("tags.yml", &["--syntax-check"]);
    assert_eq!(code, 0);
    assert!(out.contains("playbook: "), "{out}");
    // Listing and --syntax-check run nothing: the file is still the last run's.
    assert_eq!(lab.lines("tags"), vec!["db", "blk"]);
}

#[test]
fn check_and_diff_modes() {
    let lab = Lab::new(1);
    lab.write("out/existing.conf", "line one\nline two\n");
    lab.write(
        "check.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - copy:
        dest: "@OUT@/existing.conf"
        content: "line one\nline 2\n"
    - copy:
        dest: "@OUT@/new.conf"
        content: "fresh\n"
    - command: touch @OUT@/touched
    - name: forced run in check mode
      command: touch @OUT@/forced
      check_mode: false
"#,
    );
    let (code, out, err) = lab.run("check.yml", &["--check", "--diff"]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/existing.conf"), "line one\nline two\n");
    assert!(!lab.path("out/new.conf").exists());
    assert!(!lab.path("out/touched").exists());
    assert!(lab.path("out/forced").exists(), "check_mode: false runs for real");
    assert!(out.contains("-line two") && out.contains("+line 2"), "{out}");
    assert!(out.contains("+fresh"), "{out}");

    // For real, with diff.
    let (code, out, err) = lab.run("check.yml", &["--diff"]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/existing.conf"), "line one\nline 2\n");
    assert!(out.contains("+line 2"), "{out}");
    // Idempotent second run: no diff.
    let (_, out, _) = lab.run("check.yml", &["--diff"]);
    assert!(!out.contains("+line 2"), "{out}");
}

#[test]
fn includes_imports_roles_and_handlers() {
    let lab = Lab::new(2);
    lab.write(
        "site.yml",
        r#"
- import_playbook: inner.yml
  vars:
    from_import: imp
- import_playbook: skipped.yml
  when: false
- hosts: testhosts
  gather_facts: false
  roles:
    - role: common
      greeting: hello
  tasks:
    - import_tasks: tasks/static.yml
      vars:
        word: static
    - include_tasks: tasks/dynamic.yml
      loop: [d1, d2]
    - import_role:
        name: svc
    - include_role:
        name: svc
        tasks_from: other
    - include_role:
        name: withhandler
"#,
    );
    lab.write(
        "inner.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - shell: echo 'inner {{ from_import }}' >> @OUT@/log-{{ inventory_hostname }}\n",
    );
    lab.write(
        "skipped.yml",
        "- hosts: testhosts\n  tasks:\n    - shell: echo 'skipped play ran' >> @OUT@/log-{{ inventory_hostname }}\n",
    );
    lab.write(
        "tasks/static.yml",
        "- shell: echo '{{ word }}' >> @OUT@/log-{{ inventory_hostname }}\n",
    );
    lab.write(
        "tasks/dynamic.yml",
        "- shell: echo 'dyn {{ item }}' >> @OUT@/log-{{ inventory_hostname }}\n",
    );
    lab.write(
        "roles/base/tasks/main.yml",
        "- shell: echo 'base dep' >> @OUT@/log-{{ inventory_hostname }}\n",
    );
    lab.write("roles/common/meta/main.yml", "dependencies:\n  - base\n");
    lab.write("roles/common/defaults/main.yml", "greeting: default\nport: 80\n");
    lab.write("roles/common/vars/main.yml", "suffix: '!'\n");
    lab.write("roles/common/files/static.txt", "from files\n");
    lab.write("roles/common/templates/t.j2", "{{ greeting }} {{ port }}{{ suffix }}\n");
    lab.write(
        "roles/common/tasks/main.yml",
        r#"
- template: {src: t.j2, dest: "@OUT@/t-{{ inventory_hostname }}"}
  notify: common handler
- copy: {src: static.txt, dest: "@OUT@/f-{{ inventory_hostname }}"}
"#,
    );
    lab.write(
        "roles/common/handlers/main.yml",
        "- name: common handler\n  shell: echo 'common handler' >> @OUT@/log-{{ inventory_hostname }}\n",
    );
    lab.write(
        "roles/svc/tasks/main.yml",
        "- shell: echo 'svc main' >> @OUT@/log-{{ inventory_hostname }}\n  notify: svc handler\n",
    );
    lab.write(
        "roles/svc/tasks/other.yml",
        "- shell: echo 'svc other' >> @OUT@/log-{{ inventory_hostname }}\n",
    );
    lab.write(
        "roles/svc/handlers/main.yml",
        "- name: svc handler\n  shell: echo 'svc handler' >> @OUT@/log-{{ inventory_hostname }}\n",
    );
    lab.write(
        "roles/withhandler/tasks/main.yml",
        "- shell: echo 'wh main' >> @OUT@/log-{{ inventory_hostname }}\n  notify: wh handler\n",
    );
    lab.write(
        "roles/withhandler/handlers/main.yml",
        "- name: wh handler\n  shell: echo 'wh handler' >> @OUT@/log-{{ inventory_hostname }}\n",
    );
    let (code, out, err) = lab.run("site.yml", &[]);
    assert_ok(code, &out, &err);
    for h in ["host1", "host2"] {
        assert_eq!(
            lab.lines(&format!("log-{h}")),
            // Roles and tasks are one section: handlers run after both, in
            // definition order (roles:, handlers:, imported then included roles).
            vec![
                "inner imp",
                "base dep",
                "static",
                "dyn d1",
                "dyn d2",
                "svc main",
                "svc other",
                "wh main",
                "common handler",
                "svc handler",
                "wh handler",
            ],
            "{out}"
        );
        assert_eq!(lab.read(&format!("out/t-{h}")), "hello 80!\n");
        assert_eq!(lab.read(&format!("out/f-{h}")), "from files\n");
    }
}

#[test]
fn variable_precedence_every_level() {
    // Level i sets p{i}..p{N}; the highest level that sets p{i} is level i, so
    // p{i} == name of level i proves level i beats every level below it.
    const LEVELS: &[&str] = &[
        "role_defaults",
        "inv_file_all",
        "inv_file_child",
        "inv_dir_group_vars_all",
        "pb_dir_group_vars_all",
        "inv_dir_group_vars_child",
        "pb_dir_group_vars_child",
        "inv_file_host",
        "inv_dir_host_vars",
        "pb_dir_host_vars",
        "play_vars",
        "vars_files",
        "role_vars",
        "block_vars",
        "task_vars",
        "include_vars",
        "set_fact",
        "role_params",
        "include_params",
        "extra_vars",
    ];
    let n = LEVELS.len();
    let level = |name: &str| LEVELS.iter().position(|l| *l == name).unwrap();
    let yaml_vars =
        |name: &str, indent: &str| -> String { (level(name)..n).map(|i| format!("{indent}p{i}: {name}\n")).collect() };
    let ini_vars = |name: &str| -> String { (level(name)..n).map(|i| format!("p{i}={name}\n")).collect() };
    let inline = |name: &str| -> String { (level(name)..n).map(|i| format!(" p{i}={name}")).collect() };

    let lab = Lab::new(1);
    let line = std::fs::read_to_string(lab.hosts.inventory())
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .to_string();
    lab.write(
        "inv/hosts.ini",
        &format!(
            "[web]\n{line}{} ansible_system=inv_host\n\n[all:vars]\n{}\n[web:vars]\n{}",
            inline("inv_file_host"),
            ini_vars("inv_file_all"),
            ini_vars("inv_file_child")
        ),
    );
    lab.write("inv/group_vars/all.yml", &yaml_vars("inv_dir_group_vars_all", ""));
    lab.write("inv/group_vars/web.yml", &yaml_vars("inv_dir_group_vars_child", ""));
    lab.write("inv/host_vars/host1.yml", &yaml_vars("inv_dir_host_vars", ""));
    lab.write("pb/group_vars/all.yml", &yaml_vars("pb_dir_group_vars_all", ""));
    lab.write("pb/group_vars/web.yml", &yaml_vars("pb_dir_group_vars_child", ""));
    lab.write("pb/host_vars/host1.yml", &yaml_vars("pb_dir_host_vars", ""));
    lab.write("pb/vf.yml", &yaml_vars("vars_files", ""));
    lab.write("pb/iv.yml", &yaml_vars("include_vars", ""));
    lab.write("pb/roles/prec/defaults/main.yml", &yaml_vars("role_defaults", ""));
    lab.write("pb/roles/prec/vars/main.yml", &yaml_vars("role_vars", ""));
    let all_p: String = (0..n).map(|i| format!("'p{i}': p{i}, ")).collect();
    lab.write(
        "pb/roles/prec/tasks/main.yml",
        &format!(
            r#"
- include_vars: "{{{{ playbook_dir }}}}/iv.yml"
- set_fact:
{}
- include_tasks: inner.yml
  vars:
{}
"#,
            yaml_vars("set_fact", "    "),
            yaml_vars("include_params", "    ")
        ),
    );
    lab.write(
        "pb/roles/prec/tasks/inner.yml",
        &format!(
            r#"
- block:
    - copy:
        dest: "@OUT@/prec.json"
        content: "{{{{ {{ {all_p} 'sys': ansible_system, 'mach': ansible_machine, 'hn': ansible_hostname, 'dist': ansible_facts.distribution }} | to_json }}}}"
      vars:
{}
  vars:
{}
"#,
            yaml_vars("task_vars", "        "),
            yaml_vars("block_vars", "    ")
        ),
    );
    lab.write(
        "pb/prec.yml",
        &format!(
            r#"
- hosts: web
  gather_facts: true
  vars:
    ansible_machine: play_beats_facts
{}
  vars_files: [vf.yml]
  roles:
    - role: prec
{}
"#,
            yaml_vars("play_vars", "    "),
            yaml_vars("role_params", "      ")
        ),
    );
    let extra_file = lab.path("extra.json");
    std::fs::write(&extra_file, format!("{{\"p{}\": \"extra_vars\"}}", n - 1)).unwrap();
    let mut cmd = Command::new(rigger_bin());
    cmd.arg("run")
        .arg(lab.path("pb/prec.yml"))
        .arg("-i")
        .arg(lab.path("inv/hosts.ini"))
        .arg("--known-hosts")
        .arg(lab.hosts.known_hosts())
        .args(["-e", &format!("p{}=kv_loses_to_later_json", n - 1)])
        .args(["-e", &format!("{{\"p{}\": \"json_loses_to_later_file\"}}", n - 1)])
        .arg("-e")
        .arg(format!("@{}", extra_file.display()));
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/prec.json")).unwrap_or_else(|e| panic!("{e}: {out}"));
    for (i, name) in LEVELS.iter().enumerate() {
        assert_eq!(got[format!("p{i}")], *name, "p{i} should come from {name}: {got}");
    }
    // Facts beat inventory variables; play vars beat facts.
    assert_eq!(got["sys"], "Linux");
    assert_eq!(got["mach"], "play_beats_facts");
    assert!(got["hn"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(got["dist"].as_str().is_some_and(|s| !s.is_empty()));

    // Each -e form works alone, key=value and JSON too.
    let mut cmd = Command::new(rigger_bin());
    cmd.arg("run")
        .arg(lab.path("pb/prec.yml"))
        .arg("-i")
        .arg(lab.path("inv/hosts.ini"))
        .arg("--known-hosts")
        .arg(lab.hosts.known_hosts())
        .args(["-e", &format!("{{\"p{}\": [1, 2]}}", n - 2)])
        .args(["-e", &format!("p{}=kv", n - 1)]);
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/prec.json")).unwrap();
    assert_eq!(got[format!("p{}", n - 1)], "kv");
    assert_eq!(got[format!("p{}", n - 2)], serde_json::json!([1, 2]));
}

#[test]
fn misc_keywords_facts_environment_no_log_meta_add_host() {
    let lab = Lab::new(2);
    lab.write(
        "misc.yml",
        r#"
- hosts: testhosts
  gather_facts: true
  environment:
    PLAY_ENV: play
  tasks:
    - shell: echo "$PLAY_ENV $TASK_ENV" > @OUT@/env-{{ inventory_hostname }}
      environment:
        TASK_ENV: "{{ inventory_hostname }}"
    - name: secret task
      command: echo supersecret-{{ inventory_hostname }}
      no_log: true
      register: s
    - name: secret loop
      debug: msg="{{ item }}"
      loop: [loopsecret]
      no_log: true
    - set_fact:
        derived: "{{ ansible_facts.distribution }}-{{ ansible_hostname }}"
    - copy: {dest: "@OUT@/facts-{{ inventory_hostname }}", content: "{{ derived }}"}
    - meta: clear_facts
    - copy:
        dest: "@OUT@/cleared-{{ inventory_hostname }}"
        content: "{{ ansible_facts.distribution | default('none') }}"
    - group_by: {key: "kind_{{ 'first' if inventory_hostname == 'host1' else 'second' }}"}
    - add_host: {name: extra1, groups: [added], ansible_host: 127.0.0.1, marker: from_add_host}
      run_once: true
    - meta: end_host
      when: inventory_hostname == 'host2'
    - shell: echo "{{ inventory_hostname }}" >> @OUT@/not-ended
- hosts: kind_first
  gather_facts: false
  tasks:
    - shell: echo "{{ inventory_hostname }} {{ groups['added'] | join(',') }} {{ hostvars['extra1'].marker }}" >> @OUT@/later
- hosts: testhosts
  gather_facts: false
  tasks:
    - shell: echo "{{ inventory_hostname }}" >> @OUT@/endplay
    - meta: end_play
    - shell: echo never >> @OUT@/endplay
"#,
    );
    for fmt in ["text", "json"] {
        for f in ["not-ended", "later", "endplay"] {
            let _ = std::fs::remove_file(lab.path(&format!("out/{f}")));
        }
        let (code, out, err) = lab.run("misc.yml", &["--output", fmt, "-v"]);
        assert_ok(code, &out, &err);
        assert!(!out.contains("supersecret") && !err.contains("supersecret"), "{out}");
        assert!(!out.contains("loopsecret") && !err.contains("loopsecret"), "{out}");
        if fmt == "json" {
            parse_events(&out);
        }
        assert_eq!(lab.read("out/env-host1"), "play host1\n");
        assert_eq!(lab.read("out/env-host2"), "play host2\n");
        let f = lab.read("out/facts-host1");
        assert!(f.contains('-') && !f.starts_with('-'), "{f}");
        assert_eq!(lab.read("out/cleared-host1"), "none");
        assert_eq!(lab.lines("not-ended"), vec!["host1"]);
        assert_eq!(lab.lines("later"), vec!["host1 extra1 from_add_host"]);
        let mut ep = lab.lines("endplay");
        ep.sort();
        assert_eq!(ep, vec!["host1", "host2"]);
    }
}

#[test]
fn json_output_events_and_text_snapshot() {
    let lab = Lab::new(2);
    lab.write(
        "snap.yml",
        r#"
- name: Snapshot play
  hosts: testhosts
  gather_facts: false
  tasks:
    - name: say
      debug: msg="hello {{ inventory_hostname }}"
    - name: change
      command: "true"
    - name: skip me
      command: "true"
      when: false
    - name: fail on host2
      fail: msg=nope
      when: inventory_hostname == 'host2'
    - name: after
      debug: msg=after
"#,
    );
    let (code, out, _) = lab.run("snap.yml", &["--forks", "1"]);
    assert_eq!(code, 2);
    // Hosts may finish in any order inside a task; sort the lines of each result group.
    let expected = "
PLAY [Snapshot play] ***********************************************************

TASK [say] *********************************************************************
ok: [host1] => {
    \"msg\": \"hello host1\"
}
ok: [host2] => {
    \"msg\": \"hello host2\"
}

TASK [change] ******************************************************************
changed: [host1]
changed: [host2]

TASK [skip me] *****************************************************************
skipping: [host1]
skipping: [host2]

TASK [fail on host2] ***********************************************************
skipping: [host1]
[ERROR]: Task failed: Action failed: nope
Origin: @PB@:13:7

11       command: \"true\"
12       when: false
13     - name: fail on host2
         ^ column 7

fatal: [host2]: FAILED! => {\"changed\": false, \"msg\": \"nope\", \"failed\": true}

TASK [after] *******************************************************************
ok: [host1] => {
    \"msg\": \"after\"
}

PLAY RECAP *********************************************************************
host1                      : ok=3    changed=1    unreachable=0    failed=0    skipped=2    rescued=0    ignored=0   
host2                      : ok=2    changed=1    unreachable=0    failed=1    skipped=1    rescued=0    ignored=0   
";
    // ansible-core 2.19 prints the error and its origin before a failed result.
    let expected = expected.replace("@PB@", &lab.path("snap.yml").display().to_string());
    assert_eq!(normalize(&out), normalize(&expected), "\n--- got ---\n{out}");

    let (code, events, _) = lab.run_json("snap.yml", &[]);
    assert_eq!(code, 2);
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "playbook_start");
    assert_eq!(kinds[1], "play_start");
    assert_eq!(*kinds.last().unwrap(), "recap");
    assert_eq!(kinds.iter().filter(|k| **k == "task_start").count(), 5);
    assert_eq!(kinds.iter().filter(|k| **k == "host_result").count(), 9);
    let fail = results(&events, "fail on host2");
    let h2 = fail.iter().find(|e| e["host"] == "host2").unwrap();
    assert_eq!(h2["status"], "failed");
    assert_eq!(h2["result"]["msg"], "nope");
    let change = results(&events, "change");
    assert!(change
        .iter()
        .all(|e| e["status"] == "changed" && e["result"]["changed"] == true));
    assert_eq!(recap(&events)["host1"]["skipped"], 2);
    let play = events.iter().find(|e| e["event"] == "play_start").unwrap();
    assert_eq!(play["play"], "Snapshot play");
    assert_eq!(play["hosts"], serde_json::json!(["host1", "host2"]));
}

/// Sort runs of consecutive `ok:`/`changed:`/... host lines (with their pretty
/// bodies) so that the order in which hosts finish does not matter.
fn normalize(text: &str) -> Vec<String> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut out = Vec::new();
    let flush = |groups: &mut Vec<Vec<String>>, out: &mut Vec<String>| {
        groups.sort();
        for g in groups.drain(..) {
            out.extend(g);
        }
    };
    for line in text.lines() {
        let is_host = ["ok: [", "changed: [", "skipping: [", "fatal: [", "failed: ["]
            .iter()
            .any(|p| line.starts_with(p));
        if is_host {
            groups.push(vec![line.to_string()]);
        } else if !groups.is_empty() && (line.starts_with(' ') || line == "}") {
            groups.last_mut().unwrap().push(line.to_string());
        } else {
            flush(&mut groups, &mut out);
            out.push(line.to_string());
        }
    }
    flush(&mut groups, &mut out);
    out
}

#[test]
fn vars_prompt_needs_a_default_without_a_tty() {
    let lab = Lab::new(1);
    lab.write(
        "prompt.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars_prompt:
    - name: with_default
      prompt: Colour?
      default: blue
  tasks:
    - copy: {dest: "@OUT@/prompt", content: "{{ with_default }}"}
- hosts: testhosts
  gather_facts: false
  vars_prompt:
    - name: needed
      prompt: Password?
      private: true
  tasks:
    - copy: {dest: "@OUT@/needed", content: "{{ needed }}"}
"#,
    );
    let (code, out, err) = lab.run("prompt.yml", &[]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("prompt.yml:13:") && err.contains("needed"), "{err}");
    assert!(err.contains("-e needed="), "{err}");
    // Checked before anything runs.
    assert!(!lab.path("out/prompt").exists(), "{out}");
    let (code, out, err) = lab.run("prompt.yml", &["-e", "needed=given"]);
    assert_ok(code, &out, &err);
    assert_eq!(lab.read("out/prompt"), "blue");
    assert_eq!(lab.read("out/needed"), "given");
}

#[test]
fn sigint_finishes_running_tasks_prints_recap_and_exits_99() {
    let lab = Lab::new(1);
    lab.write(
        "slow.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - shell: sleep 2; echo done > @OUT@/first
    - shell: echo second > @OUT@/second
"#,
    );
    use std::io::Read;
    let mut cmd = lab.cmd("slow.yml", &[]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "rigger did not stop after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    // Ansible's ExitCode.KEYBOARD_INTERRUPT (ansible-core's errors/__init__.py).
    assert_eq!(status.code(), Some(99), "{out}");
    assert_eq!(lab.read("out/first"), "done\n", "the running task finished");
    assert!(!lab.path("out/second").exists(), "no new task started");
    assert!(out.contains("PLAY RECAP"), "{out}");

    // Second Ctrl-C: abort at once, without waiting for the task.
    let _ = std::fs::remove_file(lab.path("out/first"));
    lab.write(
        "slower.yml",
        "- hosts: testhosts\n  gather_facts: false\n  tasks:\n    - shell: sleep 5; echo done > @OUT@/first\n",
    );
    let mut cmd = lab.cmd("slower.yml", &[]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "second SIGINT must abort at once"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(99));
    assert!(!lab.path("out/first").exists());
}

#[test]
fn example_site_playbook_runs_against_test_hosts() {
    let lab = Lab::isolated(2);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The example inventory's hosts, pointed at the test hosts.
    let mut inv = std::fs::read_to_string(root.join("inventory/hosts.ini")).unwrap();
    for i in 0..2 {
        let name = format!("host{}", i + 1);
        let conn = format!(
            "{name} ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={}",
            lab.hosts.addr(i),
            lab.hosts.port(i),
            lab.hosts.client_key().display()
        );
        inv = inv
            .lines()
            .map(|l| {
                if l.split_whitespace().next() == Some(name.as_str()) {
                    conn.clone()
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    let inv_dir = lab.path("inventory");
    copy_dir(&root.join("inventory"), &inv_dir);
    std::fs::write(inv_dir.join("hosts.ini"), inv).unwrap();
    let run = || {
        let mut cmd = Command::new(rigger_bin());
        cmd.arg("run")
            .arg(root.join("playbooks/site.yml"))
            .arg("-i")
            .arg(inv_dir.join("hosts.ini"))
            .arg("--known-hosts")
            .arg(lab.hosts.known_hosts());
        rigger_cmd(cmd, Duration::from_secs(120))
    };
    let (code, out, err) = run();
    assert_ok(code, &out, &err);
    assert!(out.contains("changed=") && out.contains("PLAY RECAP"), "{out}");
    for i in 0..2 {
        let conf = std::fs::read_to_string(
            lab.hosts
                .tmp_dir(i)
                .unwrap()
                .join(format!("rigger-demo/host{}/app/app.conf", i + 1)),
        )
        .unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert!(conf.contains(&format!("host = host{}", i + 1)), "{conf}");
    }
    // Idempotent.
    let (code, out, err) = run();
    assert_ok(code, &out, &err);
    assert!(out.contains("changed=0") && !out.contains("changed=1"), "{out}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// A shell task that leaves a process writing to its output in the
/// background cannot put that output into a later task's result: user
/// commands run on a channel of their own, not in the persistent shell
/// (rigger waits for the output to close, as Ansible does).
#[test]
fn background_output_of_a_command_stays_out_of_later_tasks() {
    let lab = Lab::new(1);
    lab.write(
        "bg.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - name: leaves a writer behind
      shell: (sleep 1; echo late) &
      register: first
    - name: file state in between
      file: {path: "@OUT@", state: directory}
    - name: next
      command: echo next
      register: second
    - name: record
      copy:
        content: "{{ first.stdout }}|{{ second.stdout }}"
        dest: "@OUT@/seen"
"#,
    );
    let (code, _events, err) = lab.run_json("bg.yml", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(lab.read("out/seen"), "late|next");
}

/// What playbooks written for ansible-core rely on: a play sees the defaults
/// and vars of its `roles:` and `import_role`s (not of a plain
/// `include_role`, unless `public: true`), and none of them with
/// `ANSIBLE_PRIVATE_ROLE_VARS=true`; `rescue` sees `ansible_failed_task` and
/// `ansible_failed_result`; a relative `with_fileglob` searches the role's
/// `files/`, then the playbook's.
#[test]
fn role_exports_rescue_variables_and_fileglob_search_paths() {
    let lab = Lab::new(1);
    lab.write(
        "roles/exported/defaults/main.yml",
        "ex_default: d\nshadowed: role-default\n",
    );
    lab.write("roles/exported/vars/main.yml", "ex_var: v\nover_play: role-var\n");
    lab.write("roles/exported/files/in-role.conf", "x\n");
    lab.write(
        "roles/exported/tasks/main.yml",
        "- shell: echo \"role-glob {{ item | basename }} {{ item is abs }}\" >> @OUT@/log\n  with_fileglob: ['*.conf']\n",
    );
    lab.write("roles/imported/defaults/main.yml", "imp_default: i\n");
    lab.write("roles/imported/tasks/main.yml", "- debug: msg=imported\n");
    lab.write("roles/dyn/defaults/main.yml", "dyn_default: y\n");
    lab.write("roles/dyn/vars/main.yml", "dyn_var: z\n");
    lab.write("roles/dyn/tasks/main.yml", "- debug: msg=dyn\n");
    lab.write("files/in-play.txt", "p\n");
    lab.write(
        "pb.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    log: "@OUT@/log"
    over_play: play
    shadowed: play
  roles:
    - exported
  tasks:
    - shell: echo "vars {{ ex_default | default('-') }} {{ ex_var | default('-') }} {{ over_play }} {{ shadowed }} {{ imp_default | default('-') }}" >> {{ log }}
    - import_role: {name: imported}
    - include_role: {name: dyn}
    - shell: echo "private {{ dyn_default | default('-') }} {{ dyn_var | default('-') }}" >> {{ log }}
    - include_role: {name: dyn, public: true}
    - shell: echo "public {{ dyn_default | default('-') }} {{ dyn_var | default('-') }}" >> {{ log }}
    - block:
        - name: the failing one
          command: /bin/false
          args: {chdir: /tmp}
      rescue:
        - shell: echo "rescue {{ ansible_failed_task.name }} {{ ansible_failed_task.action }} {{ ansible_failed_task.args.chdir }} rc={{ ansible_failed_result.rc }}" >> {{ log }}
    - shell: echo "play-glob {{ item | basename }} {{ item is abs }}" >> {{ log }}
      with_fileglob: ['*.txt']
"#,
    );
    let (code, out, err) = lab.run("pb.yml", &[]);
    assert_ok(code, &out, &err);
    assert_eq!(
        lab.lines("log"),
        vec![
            "role-glob in-role.conf True",
            // Role vars beat play vars; play vars beat role defaults; the
            // imported role is the play's from the start, as in Ansible.
            "vars d v role-var play i",
            "private - -",
            "public y z",
            "rescue the failing one command /tmp rc=1",
            "play-glob in-play.txt True",
        ]
    );
    std::fs::remove_file(lab.path("out/log")).unwrap();
    let mut cmd = lab.cmd("pb.yml", &[]);
    cmd.env("ANSIBLE_PRIVATE_ROLE_VARS", "true");
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    assert_ok(code, &out, &err);
    // An explicit `public: true` still wins over the setting.
    assert_eq!(
        lab.lines("log")[1..4],
        ["vars - - play play -", "private - -", "public y z"]
    );
}

/// An undefined variable names itself, the task, and where the expression is
/// (the argument's own line and column), as Ansible 2.19 does; in a template
/// file, the file and line, and the type of an object missing an attribute.
#[test]
fn undefined_variables_are_named_with_task_and_location() {
    let lab = Lab::new(1);
    lab.write("templates/t.j2", "first line\nvalue={{ conf.missing }}\n");
    lab.write(
        "pb.yml",
        r#"- hosts: testhosts
  gather_facts: false
  vars:
    conf: {present: 1}
  tasks:
    - name: an undefined variable
      debug:
        msg: "x {{ nosuch }}"
      ignore_errors: true
    - name: a missing attribute
      debug: {msg: "{{ conf.absent }}"}
      ignore_errors: true
    - name: in a template file
      template: {src: t.j2, dest: "@OUT@/t.txt"}
      ignore_errors: true
"#,
    );
    let (code, events, err) = lab.run_json("pb.yml", &[]);
    assert_eq!(code, 0, "{err}");
    let msg = |task: &str| {
        results(&events, task)
            .first()
            .map(|r| r["result"]["msg"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    let pb = lab.path("pb.yml").display().to_string();
    let m = msg("an undefined variable");
    assert!(
        m.contains(":8:14: task `an undefined variable`, argument `msg`:") && m.ends_with("'nosuch' is undefined"),
        "{m}"
    );
    assert!(m.contains("pb.yml"), "{m} (in {pb})");
    let m = msg("a missing attribute");
    assert!(
        m.contains(":11:20: task `a missing attribute`, argument `msg`:")
            && m.ends_with("object of type 'dict' has no attribute 'absent'"),
        "{m}"
    );
    let m = msg("in a template file");
    assert!(
        m.contains("templates/t.j2:2:") && m.ends_with("object of type 'dict' has no attribute 'missing'"),
        "{m}"
    );
}
