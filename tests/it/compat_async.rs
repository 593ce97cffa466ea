//! Ansible's `async:`/`poll:` task keywords and `async_status`: jobs that
//! run detached on the host (surviving the run), their job files in
//! `async_dir` in Ansible's format, the poll loop and its time limit, the
//! job's own time limit, loops of jobs, become, and the actions that refuse
//! `async`. Real playbooks, the real binary, a real sshd test host.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::engine::Lab;

fn assert_ok(code: i32, out: &str, err: &str) {
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
}

#[test]
fn async_jobs_run_detached_poll_and_report_as_ansible_does() {
    let lab = Lab::new(1);
    lab.write(
        "library/junkping.sh",
        "#!/bin/sh\n# WANT_JSON\necho junk_before_module_output\necho '{\"changed\": false, \"source\": \"user\"}'\necho junk_after_module_output\n",
    );
    lab.write(
        "async.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  become: true
  vars:
    ansible_async_dir: "@OUT@/jobs"
  tasks:
    - name: poll until done
      command: echo polled
      async: 10
      poll: 1
      register: polled
    - name: a job left running
      shell: sleep 2; echo late; echo oops >&2; exit 3
      async: 20
      poll: 0
      register: left
    - name: its job file while it runs
      slurp:
        src: "{{ left.results_file }}"
      register: running_file
    - async_status:
        jid: "{{ left.ansible_job_id }}"
      register: running
    - async_status:
        jid: "{{ left.ansible_job_id }}"
      register: waited
      until: waited is finished
      retries: 20
      delay: 1
      ignore_errors: true
    - async_status:
        jid: "{{ left.ansible_job_id }}"
        mode: cleanup
      register: cleaned
    - name: the job's time limit kills it
      shell: sleep 10; touch @OUT@/not-killed
      async: 1
      poll: 0
      register: killed
    - async_status:
        jid: "{{ killed.ansible_job_id }}"
      register: killed_status
      until: killed_status is finished
      retries: 20
      delay: 1
      ignore_errors: true
    - name: polling gives up after async seconds
      command: sleep 6
      async: 2
      poll: 1
      register: gave_up
      ignore_errors: true
    - name: a loop of jobs
      command: echo {{ item }}
      async: 20
      poll: 0
      loop: [one, two, three]
      register: jobs
    - async_status:
        jid: "{{ item.ansible_job_id }}"
      loop: "{{ jobs.results }}"
      register: job_results
      until: job_results is finished
      retries: 20
      delay: 1
    - name: not a module
      script: /bin/true
      async: 5
      register: script_async
      ignore_errors: true
    - name: a user module with junk around its JSON
      junkping:
      async: 10
      poll: 1
      register: junk
    - copy:
        dest: "@OUT@/async.json"
        content: "{{ {'polled': [polled.finished, polled.started, polled.stdout, polled.rc, polled.ansible_job_id is match('j\\d+\\.\\d+'),
                                  polled.results_file is search('/jobs/')],
                      'left': [left.started, left.finished, left.changed, left.results_file is search('/jobs/')],
                      'running_file': running_file.content | b64decode | from_json,
                      'running': [running is finished, running is started],
                      'waited': [waited is finished, waited is failed, waited.rc, waited.stdout_lines, waited.stderr, waited.msg],
                      'cleaned': [cleaned.erased == left.results_file],
                      'killed': [killed_status.msg, killed_status is failed],
                      'gave_up': [gave_up is failed, gave_up.msg],
                      'jobs': job_results.results | map(attribute='stdout') | list,
                      'script': [script_async is failed, script_async.msg],
                      'junk': [junk.source, junk.finished]} | to_json }}"
    - name: outlives the run
      shell: sleep 2; echo done > @OUT@/outlived
      async: 20
      poll: 0
"#,
    );
    let (code, out, err) = lab.run("async.yml", &[]);
    assert_ok(code, &out, &err);
    assert!(
        err.contains("Module invocation had junk after the JSON data: junk_after_module_output"),
        "warnings go to stderr: {err}"
    );
    let got: Value = serde_json::from_str(&lab.read("out/async.json")).unwrap();
    assert_eq!(
        got["polled"],
        serde_json::json!([true, true, "polled", 0, true, true]),
        "{got}"
    );
    assert_eq!(got["left"], serde_json::json!([true, false, true, true]), "{got}");
    assert_eq!(got["running_file"]["started"], 1, "{got}");
    assert_eq!(got["running_file"]["finished"], 0, "{got}");
    assert_eq!(got["running"], serde_json::json!([false, true]), "{got}");
    assert_eq!(
        got["waited"],
        serde_json::json!([true, true, 3, ["late"], "oops", "non-zero return code"]),
        "{got}"
    );
    assert_eq!(got["cleaned"], serde_json::json!([true]), "{got}");
    assert_eq!(got["killed"], serde_json::json!(["Timeout exceeded", true]), "{got}");
    // The controller stops polling after `async` seconds as the job's own
    // limit kills it: either message, as with Ansible's supervisor.
    assert_eq!(got["gave_up"][0], true, "{got}");
    let gave_up = got["gave_up"][1].as_str().unwrap();
    assert!(
        gave_up == "async task did not complete within the requested time - 2s" || gave_up == "Timeout exceeded",
        "{got}"
    );
    assert_eq!(got["jobs"], serde_json::json!(["one", "two", "three"]), "{got}");
    assert_eq!(
        got["script"],
        serde_json::json!([true, "This action (script) does not support async."]),
        "{got}"
    );
    assert_eq!(got["junk"], serde_json::json!(["user", true]), "{got}");
    // The job file of the polled task was removed; the cleaned one too.
    let jobs: Vec<String> = std::fs::read_dir(lab.path("out/jobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!jobs.iter().any(|j| got["polled"].to_string().contains(j.as_str())));
    // The last job outlives rigger's run (and its connection).
    let deadline = Instant::now() + Duration::from_secs(15);
    while lab.read("out/outlived").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(lab.read("out/outlived"), "done\n");
    // The killed job's process group died with it.
    std::thread::sleep(Duration::from_secs(1));
    assert!(!lab.path("out/not-killed").exists());
}

#[test]
fn poll_zero_is_refused_where_the_change_runs_from_the_controller() {
    let lab = Lab::new(1);
    lab.write(
        "refused.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - file:
        path: "@OUT@/made"
        state: directory
      async: 10
      poll: 0
      register: r
      ignore_errors: true
    - name: with poll the change is made within the limit
      file:
        path: "@OUT@/made"
        state: directory
      async: 10
      poll: 1
      register: p
    - copy:
        dest: "@OUT@/r.json"
        content: "{{ {'r': [r is failed, r.msg], 'p': [p is changed, p.finished]} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("refused.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/r.json")).unwrap();
    assert_eq!(got["r"][0], true, "{got}");
    let msg = got["r"][1].as_str().unwrap();
    assert!(msg.contains("refused.yml:") && msg.contains("`poll: 0`"), "{msg}");
    assert_eq!(got["p"], serde_json::json!([true, true]), "{got}");
}

/// What the targets that stopped at `async` (script, test_core, wait_for)
/// need besides it: `script`'s guards skip the task, a literal `when:`
/// reports its boolean as `false_condition`, and `wait_for` gives Python's
/// match groups of `search_regex` and sleeps `delay` then `timeout`.
#[test]
fn script_guards_skip_and_wait_for_reports_match_groups() {
    let lab = Lab::new(1);
    lab.write("files/touch.sh", "#!/bin/sh\ntouch \"$1\"\n");
    lab.write(
        "misc.yml",
        r#"
- hosts: testhosts
  gather_facts: false
  tasks:
    - script: touch.sh @OUT@/made
      args:
        creates: "@OUT@/made"
      register: first
    - script: touch.sh @OUT@/made
      args:
        creates: "@OUT@/made"
      register: second
    - script: touch.sh @OUT@/made
      args:
        removes: "@OUT@/nothere"
      register: third
    - script: touch.sh @OUT@/in-check
      check_mode: true
      register: checked
    - debug: msg=never
      when: false
      register: literal
    - shell: sleep 1; echo "completed data 123" > @OUT@/keyword
      async: 10
      poll: 0
    - wait_for:
        path: "@OUT@/keyword"
        search_regex: completed (?P<foo>\w+) ([0-9]+)
        timeout: 10
      register: found
    - wait_for:
        timeout: 1
        delay: 1
      register: slept
    - copy:
        dest: "@OUT@/misc.json"
        content: "{{ {'script': [first is changed, second is skipped, second.msg, third is skipped, third.msg],
                      'literal': literal.false_condition,
                      'checked': [checked is skipped, checked is changed, checked.msg],
                      'groups': [found.match_groups, found.match_groupdict],
                      'slept': slept.elapsed >= 2} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("misc.yml", &[]);
    assert_ok(code, &out, &err);
    let got: Value = serde_json::from_str(&lab.read("out/misc.json")).unwrap();
    let out_dir = lab.out();
    assert_eq!(
        got["script"],
        serde_json::json!([
            true,
            true,
            format!("{out_dir}/made exists, matching creates option"),
            true,
            format!("{out_dir}/nothere does not exist, matching removes option")
        ]),
        "{got}"
    );
    assert_eq!(got["literal"], Value::Bool(false), "{got}");
    assert_eq!(
        got["checked"],
        serde_json::json!([true, false, "Check mode is not supported for this task."]),
        "{got}"
    );
    assert!(!lab.path("out/in-check").exists());
    assert_eq!(
        got["groups"],
        serde_json::json!([["data", "123"], {"foo": "data"}]),
        "{got}"
    );
    assert_eq!(got["slept"], Value::Bool(true), "{got}");
}
