//! Task and play keywords that ansible-core's own integration targets use:
//! a templated `strategy:` and `host_pinned`, `module_defaults:` and the
//! `timeout:` task keyword. Real playbooks, the real binary, real sshd test
//! hosts.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn strategy_is_templated_from_extra_vars_and_host_pinned_runs_like_free() {
    let lab = Lab::new(2);
    lab.write(
        "strategy.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  strategy: "{{ test_strategy | default('linear') }}"
  tasks:
    - shell: echo "{{ inventory_hostname }}" >> "@OUT@/ran"
"#,
    );
    for strategy in ["linear", "free", "host_pinned", "ansible.builtin.host_pinned"] {
        let _ = std::fs::remove_file(lab.path("out/ran"));
        let (code, out, err) = lab.run("strategy.yml", &["-e", &format!("test_strategy={strategy}")]);
        assert_ok(code, &out, &err);
        assert_eq!(lab.lines("ran").len(), 2, "{strategy}: every host runs the task");
    }
    // The default of the template, without the extra var.
    let (code, out, err) = lab.run("strategy.yml", &[]);
    assert_ok(code, &out, &err);

    // A strategy rigger does not have fails at load, where it is written.
    let (code, _out, err) = lab.run("strategy.yml", &["-e", "test_strategy=debug"]);
    assert_ne!(code, 0);
    assert!(
        err.contains("strategy.yml:4:13") && err.contains("unsupported strategy `debug`"),
        "{err}"
    );
}

#[test]
fn module_defaults_merge_from_play_block_and_task_and_task_args_win() {
    let lab = Lab::new(1);
    std::fs::create_dir_all(lab.path("out/sub")).unwrap();
    lab.write(
        "md.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  vars:
    where: "@OUT@"
  module_defaults:
    command:
      chdir: "{{ where }}"
    ansible.builtin.file:
      state: directory
  tasks:
    - command: pwd
      register: play_level
    - block:
        - command: pwd
          register: block_level
        # A task's own argument wins over the defaults.
        - command:
            cmd: pwd
            chdir: /
          register: task_arg
        # A later mapping replaces the earlier entry for the module as a whole.
        - ansible.builtin.command: pwd
          module_defaults:
            ansible.legacy.command: {}
          register: emptied
      module_defaults:
        ansible.builtin.command:
          chdir: "{{ where }}/sub"
    # A required argument may come from the defaults only.
    - file:
      module_defaults:
        file:
          path: "{{ where }}/made"
          state: directory
    - file:
        path: "{{ where }}/made2"
    - copy:
        dest: "@OUT@/md.json"
        content: "{{ [play_level.stdout, block_level.stdout, task_arg.stdout, emptied.stdout != where ~ '/sub'] | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("md.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/md.json")).unwrap();
    let o = lab.out();
    assert_eq!(got, serde_json::json!([o, format!("{o}/sub"), "/", true]));
    assert!(lab.path("out/made").is_dir());
    assert!(lab.path("out/made2").is_dir());

    // Action groups come from collections: refused where they are written.
    lab.write(
        "group.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  module_defaults:
    group/aws:
      region: x
  tasks:
    - command: "true"
"#,
    );
    let (code, _out, err) = lab.run("group.yml", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("group.yml:5:5") && err.contains("module_defaults group `aws` is not supported"),
        "{err}"
    );
}

#[test]
fn timeout_stops_and_fails_the_task_with_ansibles_result() {
    let lab = Lab::new(1);
    lab.write(
        "timeout.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - command: sleep 20
      timeout: 1
      register: timed
      ignore_errors: true
    - command: sleep 1
      timeout: -1
      register: invalid
      ignore_errors: true
    - block:
        - command: sleep 1
          register: unlimited
      timeout: 0
    - copy:
        dest: "@OUT@/timeout.json"
        content: "{{ {'timed': [timed is failed, timed is timedout, timed.timedout.period, timed.msg],
                      'invalid': [invalid is failed, invalid is timedout, invalid.msg],
                      'unlimited': [unlimited is failed, unlimited is timedout]} | to_json }}"
"#,
    );
    let started = Instant::now();
    let (code, out, err) = lab.run("timeout.yml", &[]);
    assert_ok(code, &out, &err);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the sleep was stopped after 1 s"
    );
    let got: Value = serde_json::from_str(&lab.read("out/timeout.json")).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "timed": [true, true, 1, "Timed out after 1 second(s)."],
            "invalid": [true, false, "Task failed: Timeout -1 is invalid, it must be between 0 and 100000000."],
            "unlimited": [false, false],
        })
    );
}

#[test]
fn loop_control_extended_items_and_break_when() {
    let lab = Lab::new(1);
    lab.write(
        "inner.yml",
        r#"
- shell: echo "{{ item }} {{ ansible_loop.index }} {{ ansible_loop.allitems | join(',') }}" >> "@OUT@/included"
"#,
    );
    lab.write(
        "lc.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - debug:
        msg: "{{ [ansible_loop.previtem | default('-'), ansible_loop.nextitem | default('-'), ansible_loop.allitems is defined] }}"
      loop: [a, b, c]
      loop_control:
        extended: true
        extended_allitems: false
      register: ext
    - command: echo {{ item }}
      loop: [1, 2, 3, 4]
      loop_control:
        break_when:
          - item >= 2
          - broken.stdout == '2'
      register: broken
    - include_tasks: inner.yml
      loop: [x, y, z]
      loop_control:
        extended: true
        break_when: item == 'y'
    - copy:
        dest: "@OUT@/lc.json"
        content: "{{ {'ext': ext.results | map(attribute='msg') | list,
                      'broken': broken.results | map(attribute='stdout') | list} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("lc.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/lc.json")).unwrap();
    assert_eq!(
        got,
        serde_json::json!({
            "ext": [["-", "b", false], ["a", "c", false], ["b", "-", false]],
            "broken": ["1", "2"],
        })
    );
    assert_eq!(lab.lines("included"), ["x 1 x,y,z", "y 2 x,y,z"]);
}

#[test]
fn play_order_is_templated_and_orders_the_hosts() {
    let lab = Lab::new(3);
    lab.write(
        "order.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  serial: 1
  order: "{{ myorder | default('inventory') }}"
  tasks:
    - shell: echo "{{ inventory_hostname }}" >> "@OUT@/{{ myorder | default('inventory') }}"
"#,
    );
    let mut seen = Vec::new();
    for order in ["inventory", "reverse_inventory", "sorted", "reverse_sorted", "shuffle"] {
        let (code, out, err) = lab.run("order.yml", &["-e", &format!("myorder={order}")]);
        assert_ok(code, &out, &err);
        seen.push(lab.lines(order));
    }
    let inventory = seen[0].clone();
    assert_eq!(inventory.len(), 3);
    let mut reversed = inventory.clone();
    reversed.reverse();
    assert_eq!(seen[1], reversed);
    let mut sorted = inventory.clone();
    sorted.sort();
    assert_eq!(seen[2], sorted);
    sorted.reverse();
    assert_eq!(seen[3], sorted);
    let mut shuffled = seen[4].clone();
    shuffled.sort();
    assert_eq!(shuffled, seen[2], "shuffle runs every host once");

    let (code, _out, err) = lab.run("order.yml", &["-e", "myorder=backwards"]);
    assert_ne!(code, 0);
    assert!(err.contains("order.yml:5:10") && err.contains("backwards"), "{err}");
}

#[test]
fn include_apply_and_block_notify_reach_the_included_and_inner_tasks() {
    let lab = Lab::new(1);
    lab.write(
        "change.yml",
        r#"
- command: "true"
- command: "true"
  notify: own
"#,
    );
    lab.write(
        "apply.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - include_tasks:
        file: change.yml
        apply:
          notify: from_apply
          tags: [applied]
    - block:
        - command: "true"
      notify: from_block
  handlers:
    - name: from_apply
      shell: echo from_apply >> "@OUT@/handlers"
    - name: own
      shell: echo own >> "@OUT@/handlers"
    - name: from_block
      shell: echo from_block >> "@OUT@/handlers"
"#,
    );
    let (code, out, err) = lab.run("apply.yml", &[]);
    assert_ok(code, &out, &err);
    let mut ran = lab.lines("handlers");
    ran.sort();
    assert_eq!(ran, ["from_apply", "from_block", "own"]);

    // An import takes its keywords directly: `apply` there is refused.
    lab.write(
        "import.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - import_role:
        name: x
        apply:
          tags: [a]
"#,
    );
    let (code, _out, err) = lab.run("import.yml", &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("import.yml:7:9") && err.contains("Invalid options for import_role: apply"),
        "{err}"
    );
}
