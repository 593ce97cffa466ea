//! Guarded actions of `rigger watch` rules: real `rigger watch` processes
//! run playbooks (child `rigger run`s) on real sshd test hosts, each host
//! with its own `/srv` where the test sets the metric and reads what the
//! action did; notifications go to a real webhook receiver and SMTP server
//! on loopback.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::support::{rigger, HostOpts, TestHosts};
use crate::watch::{free_port, get, unqp, wait_for, Receiver, Smtp, Watch};

struct Setup {
    hosts: TestHosts,
    work: tempfile::TempDir,
    hook: Receiver,
    cfg: PathBuf,
}

/// `n` hosts with their own `/srv`; the metric `load` is `/srv/load` (0
/// when absent); `rules` are the rules' YAML; `playbooks` (name, text) are
/// written beside the configuration; `extra_receiver` is added YAML.
fn setup(n: usize, command: &str, rules: &str, playbooks: &[(&str, &str)], email: Option<u16>) -> Setup {
    let hosts = TestHosts::with_opts(n, HostOpts { isolated_root: true });
    let work = tempfile::tempdir().unwrap();
    let hook = Receiver::start();
    for (name, text) in playbooks {
        std::fs::write(work.path().join(name), text).unwrap();
    }
    let email = match email {
        Some(port) => format!(
            "    email: {{to: [oncall@example.com], from: rigger@example.com, smarthost: '127.0.0.1:{port}', tls: none}}\n"
        ),
        None => String::new(),
    };
    let cfg = work.path().join("watch.yml");
    std::fs::write(
        &cfg,
        format!(
            r#"interval: 500ms
host_down_after: 20s
custom_metrics:
  - name: load
    command: {command:?}
rules:
{rules}route:
  receiver: ops
  group_by: [alertname, host]
  group_wait: 0s
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: ops
    webhook: {{url: '{}'}}
{email}"#,
            hook.url()
        ),
    )
    .unwrap();
    Setup { hosts, work, hook, cfg }
}

const LOAD: &str = "cat /srv/load 2>/dev/null || echo 0";

impl Setup {
    fn args(&self, listen: Option<u16>) -> Vec<String> {
        let mut a = vec![
            "-c".to_string(),
            self.cfg.display().to_string(),
            "-i".into(),
            self.hosts.inventory().display().to_string(),
            "--known-hosts".into(),
            self.hosts.known_hosts().display().to_string(),
        ];
        if let Some(p) = listen {
            a.extend(["--listen".to_string(), format!("127.0.0.1:{p}")]);
        }
        a
    }

    fn watch(&self, listen: Option<u16>) -> Watch {
        let args = self.args(listen);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let w = Watch::start(&argv);
        for i in 0..self.hosts.len() {
            w.wait_log(&format!("{}: connected", self.hosts.name(i)), Duration::from_secs(20));
        }
        w
    }

    /// Host `i`'s `/srv/NAME`.
    fn srv(&self, i: usize, name: &str) -> PathBuf {
        self.hosts.root_dir(i).unwrap().join(name)
    }

    fn set_load(&self, i: usize, v: u32) {
        std::fs::write(self.srv(i, "load"), format!("{v}\n")).unwrap();
    }

    /// `rigger watch action ...`.
    fn action(&self, args: &[&str]) -> (i32, String, String) {
        let mut a = vec!["watch", "-c", self.cfg.to_str().unwrap(), "action"];
        a.extend_from_slice(args);
        rigger(&a)
    }

    fn all_actions(&self) -> Vec<Value> {
        let (code, out, err) = self.action(&["list", "--all", "--json"]);
        assert_eq!(code, 0, "{out}{err}");
        serde_json::from_str::<Value>(&out).unwrap().as_array().unwrap().clone()
    }

    /// The action records the webhook received.
    fn hooked_actions(&self) -> Vec<Value> {
        self.hook
            .hooks()
            .iter()
            .flat_map(|h| h.json["actions"].as_array().cloned().unwrap_or_default())
            .collect()
    }

    fn wait_hooked(&self, what: &str, f: impl Fn(&Value) -> bool) -> Value {
        wait_for(Duration::from_secs(40), what, || self.hooked_actions().iter().any(&f));
        self.hooked_actions().into_iter().find(|a| f(a)).unwrap()
    }
}

fn lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map(|s| s.lines().count()).unwrap_or(0)
}

#[test]
fn action_runs_on_the_alert_host_only_with_labels_as_unsafe_text_and_is_reported() {
    // A label from the host holding a template: the playbook must get the text.
    let command = r#"printf 'load{tag="{{ 7 * 6 }}"} %s\n' "$(cat /srv/load 2>/dev/null || echo 0)""#;
    let s = setup(
        2,
        command,
        "  - alert: HighLoad\n    metric: load\n    threshold: '> 5'\n    action: {playbook: fix.yml, cooldown: 0s}\n",
        &[(
            "fix.yml",
            r#"- hosts: all
  gather_facts: false
  tasks:
    - copy:
        dest: /srv/acted
        content: "{{ watch_alert.labels.tag }}|{{ watch_alert.value }}|{{ watch_alert.status }}|{{ inventory_hostname }}\n"
    - copy: {dest: /srv/load, content: "0\n"}
"#,
        )],
        None,
    );
    s.set_load(0, 0);
    s.set_load(1, 0);
    let listen = free_port();
    let mut w = s.watch(Some(listen));
    s.set_load(0, 9);
    let rec = s.wait_hooked("the action's notice", |a| a["state"] == "succeeded");
    let acted = std::fs::read_to_string(s.srv(0, "acted")).unwrap();
    assert_eq!(acted, "{{ 7 * 6 }}|9.0|firing|host1\n", "the label is not rendered");
    assert!(!s.srv(1, "acted").exists(), "the run is limited to the alert's host");
    assert_eq!(rec["host"], "host1");
    assert_eq!(rec["rule"], "HighLoad");
    assert_eq!(rec["trigger"], "firing");
    assert_eq!(rec["changed"], 2);
    assert_eq!(rec["recap"]["host1"]["changed"], 2);
    assert!(rec["recap"].get("host2").is_none(), "{rec}");
    assert!(rec["playbook"].as_str().unwrap().ends_with("fix.yml"));
    // The notice is about the alert: its labels travel with it.
    let hook = s
        .hook
        .hooks()
        .into_iter()
        .find(|h| h.json["actions"].is_array())
        .unwrap();
    assert_eq!(hook.json["alerts"][0]["labels"]["alertname"], "HighLoad");
    assert_eq!(hook.json["alerts"][0]["labels"]["tag"], "{{ 7 * 6 }}");
    // The action fixed the load: the alert resolves.
    wait_for(Duration::from_secs(20), "the alert to resolve", || {
        !s.hook.matching("HighLoad", "resolved").is_empty()
    });
    // Recorded in the state file, shown by the CLI and the status endpoint.
    let all = s.all_actions();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["state"], "succeeded");
    let api: Value = serde_json::from_str(&get(listen, "/api/actions")).unwrap();
    assert_eq!(api["actions"][0]["id"], all[0]["id"]);
    w.stop();
    w.wait_log("action #1 (", Duration::from_secs(1));
}

#[test]
fn on_resolve_runs_the_action_again_when_the_alert_resolves_and_only_then() {
    let pb = "- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: echo '{{ watch_alert.trigger }}|{{ watch_alert.status }}|{{ watch_alert.value }}' >> /srv/events\n";
    let s = setup(
        1,
        LOAD,
        "  - alert: Scale\n    metric: load\n    threshold: '> 5'\n    action: {playbook: scale.yml, on_resolve: true, cooldown: 0s, loop_window: 0s}\n  \
         - alert: Fire\n    metric: load\n    threshold: '> 5'\n    action: {playbook: fire.yml, cooldown: 0s, loop_window: 0s}\n",
        &[("scale.yml", pb), ("fire.yml", &pb.replace("/srv/events", "/srv/fire-events"))],
        None,
    );
    s.set_load(0, 0);
    let mut w = s.watch(None);
    s.set_load(0, 9);
    let fired = s.wait_hooked("the firing run", |a| {
        a["rule"] == "Scale" && a["trigger"] == "firing" && a["state"] == "succeeded"
    });
    assert_eq!(fired["host"], "host1");
    s.set_load(0, 1);
    let resolved = s.wait_hooked("the run on resolve", |a| {
        a["rule"] == "Scale" && a["trigger"] == "resolved" && a["state"] == "succeeded"
    });
    assert_ne!(resolved["id"], fired["id"]);
    // The Fire rule's run on firing is done; its alert resolved too.
    s.wait_hooked("the Fire rule's run", |a| {
        a["rule"] == "Fire" && a["state"] == "succeeded"
    });
    wait_for(Duration::from_secs(20), "both alerts to resolve", || {
        !s.hook.matching("Fire", "resolved").is_empty() && !s.hook.matching("Scale", "resolved").is_empty()
    });
    std::thread::sleep(Duration::from_millis(1500));
    w.stop();
    let log = w.log();
    // The playbook saw which transition ran it; the value is the metric's
    // at that transition (9 above the threshold, 1 back under it).
    let events = std::fs::read_to_string(s.srv(0, "events")).unwrap_or_default();
    assert_eq!(events, "firing|firing|9.0\nresolved|resolved|1.0\n", "{log}");
    // Without on_resolve the rule runs once, on firing only.
    let fire_events = std::fs::read_to_string(s.srv(0, "fire-events")).unwrap_or_default();
    assert_eq!(fire_events, "firing|firing|9.0\n", "{log}");
    let all = s.all_actions();
    let triggers = |rule: &str| -> Vec<String> {
        all.iter()
            .filter(|a| a["rule"] == rule)
            .map(|a| format!("{}:{}", a["trigger"].as_str().unwrap(), a["state"].as_str().unwrap()))
            .collect()
    };
    assert_eq!(triggers("Scale"), ["firing:succeeded", "resolved:succeeded"], "{all:?}");
    assert_eq!(triggers("Fire"), ["firing:succeeded"], "{all:?}");
}

#[test]
fn cooldown_and_circuit_breaker_bound_the_runs_of_a_flapping_metric() {
    let pb = |rule: &str| {
        format!("- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: echo run >> /srv/runs-{rule}\n")
    };
    let s = setup(
        1,
        LOAD,
        "  - alert: Cool\n    metric: load\n    threshold: '> 5'\n    action: {playbook: cool.yml, cooldown: 1h, loop_window: 0s}\n  \
         - alert: Break\n    metric: load\n    threshold: '> 5'\n    action: {playbook: break.yml, cooldown: 0s, max_runs: 2, window: 1h, loop_window: 0s}\n",
        &[("cool.yml", &pb("Cool")), ("break.yml", &pb("Break"))],
        None,
    );
    s.set_load(0, 0);
    let mut w = s.watch(None);
    // Four flaps: each one fires both rules again.
    for flap in 1..=4 {
        s.set_load(0, 9);
        wait_for(
            Duration::from_secs(20),
            &format!("the Break alert to fire (flap {flap})"),
            || s.all_actions().iter().filter(|a| a["rule"] == "Break").count() >= flap,
        );
        // Let the runs that are allowed finish before the next flap.
        wait_for(Duration::from_secs(30), "no action running", || {
            s.all_actions()
                .iter()
                .all(|a| a["state"] != "running" && a["state"] != "queued")
        });
        s.set_load(0, 0);
        std::thread::sleep(Duration::from_millis(1500));
    }
    let breaker = s.wait_hooked("the circuit breaker's notice", |a| {
        a["reason"].as_str().unwrap_or("").starts_with("circuit breaker open")
    });
    w.stop();
    let log = w.log();
    assert_eq!(lines(&s.srv(0, "runs-Cool")), 1, "cooldown: one run\n{log}");
    assert_eq!(lines(&s.srv(0, "runs-Break")), 2, "max_runs: 2\n{log}");
    assert_eq!(breaker["rule"], "Break");
    assert_eq!(breaker["state"], "skipped");
    let all = s.all_actions();
    let state_of = |rule: &str| -> Vec<String> {
        all.iter()
            .filter(|a| a["rule"] == rule)
            .map(|a| a["state"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        state_of("Cool"),
        ["succeeded", "skipped", "skipped", "skipped"],
        "{all:?}"
    );
    assert_eq!(
        state_of("Break"),
        ["succeeded", "succeeded", "skipped", "skipped"],
        "{all:?}"
    );
    assert!(log.contains("cooldown: the last action of this rule on host1"), "{log}");
    let breaker_notices = s
        .hooked_actions()
        .iter()
        .filter(|a| a["reason"].as_str().unwrap_or("").starts_with("circuit breaker"))
        .count();
    assert_eq!(breaker_notices, 1, "the open breaker is said once");
}

#[test]
fn loop_guard_stops_an_action_whose_own_change_fires_the_rule_again() {
    // The load is low for 3 s after /srv/kick was touched, then high again:
    // the action's own change brings the alert back.
    let command =
        "if [ -e /srv/kick ] && [ $(( $(date +%s) - $(stat -c %Y /srv/kick) )) -lt 3 ]; then echo 0; else echo 9; fi";
    let s = setup(
        1,
        command,
        "  - alert: Kick\n    metric: load\n    threshold: '> 5'\n    action: {playbook: kick.yml, cooldown: 0s, loop_window: 1m}\n",
        &[(
            "kick.yml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - file: {path: /srv/kick, state: touch}\n    - shell: echo run >> /srv/runs\n",
        )],
        None,
    );
    let mut w = s.watch(None);
    let stopped = s.wait_hooked("the loop guard's notice", |a| {
        a["reason"].as_str().unwrap_or("").starts_with("loop guard")
    });
    // The alert fires again after every kick window; no second run.
    std::thread::sleep(Duration::from_secs(4));
    w.stop();
    let log = w.log();
    assert_eq!(lines(&s.srv(0, "runs")), 1, "{log}");
    assert_eq!(stopped["state"], "skipped");
    assert!(
        stopped["reason"]
            .as_str()
            .unwrap()
            .contains("after action #1 changed the host"),
        "{stopped}"
    );
    assert!(
        log.contains("(Firing -> Resolved)"),
        "the action resolved it once\n{log}"
    );
}

#[test]
fn dry_run_changes_nothing_and_the_mail_shows_the_diff() {
    let smtp_port = free_port();
    let s = setup(
        1,
        LOAD,
        "  - alert: Drift\n    metric: load\n    threshold: '> 5'\n    action: {playbook: fix.yml, dry_run: true}\n",
        &[(
            "fix.yml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - copy: {dest: /srv/app.conf, content: \"mode=fixed\\n\"}\n",
        )],
        Some(smtp_port),
    );
    let smtp = Smtp::start(smtp_port, &s.work.path().join("mail"));
    std::fs::write(s.srv(0, "app.conf"), "mode=broken\n").unwrap();
    s.set_load(0, 9);
    let mut w = s.watch(None);
    let rec = s.wait_hooked("the dry run's notice", |a| a["state"] == "succeeded");
    assert_eq!(rec["dryRun"], true);
    assert_eq!(rec["changed"], 1);
    let diff = rec["diff"].as_str().unwrap();
    assert!(diff.contains("-mode=broken") && diff.contains("+mode=fixed"), "{diff}");
    assert_eq!(
        std::fs::read_to_string(s.srv(0, "app.conf")).unwrap(),
        "mode=broken\n",
        "check mode changes nothing"
    );
    wait_for(Duration::from_secs(20), "the action mail", || {
        smtp.messages().iter().any(|m| m.contains("[ACTION #1 SUCCEEDED]"))
    });
    w.stop();
    let mail = unqp(
        &smtp
            .messages()
            .into_iter()
            .find(|m| m.contains("[ACTION #1 SUCCEEDED]"))
            .unwrap(),
    );
    assert!(mail.contains("Subject: [ACTION #1 SUCCEEDED] Drift host1"), "{mail}");
    assert!(
        mail.contains("in check mode on host1, firing): succeeded, 1 would change"),
        "{mail}"
    );
    assert!(mail.contains("+mode=fixed"), "{mail}");
    assert!(
        mail.contains("recap: host1 ok=") && mail.contains(" changed=1 unreachable=0 failed=0"),
        "{mail}"
    );
}

#[test]
fn approval_survives_kill_9_runs_once_and_a_run_cut_by_kill_9_is_reported_not_repeated() {
    let s = setup(
        1,
        LOAD,
        "  - alert: Gate\n    metric: load\n    threshold: '> 5'\n    action: {playbook: slow.yml, approval: true, approval_expires: 1h}\n  \
         - alert: Lapse\n    metric: load\n    threshold: '> 5'\n    action: {playbook: slow.yml, approval: true, approval_expires: 1s}\n",
        &[(
            "slow.yml",
            "- hosts: all\n  gather_facts: false\n  tasks:\n    - shell: echo {{ watch_alert.rule }} >> /srv/runs; sleep 4\n",
        )],
        None,
    );
    s.set_load(0, 9);
    let listen = free_port();
    let mut w = s.watch(Some(listen));
    let pending = s.wait_hooked("the approval request", |a| {
        a["rule"] == "Gate" && a["state"] == "awaiting_approval"
    });
    let id = pending["id"].as_i64().unwrap();
    let api: Value = serde_json::from_str(&get(listen, "/api/actions")).unwrap();
    assert!(
        api["actions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id && a["state"] == "awaiting_approval"),
        "{api}"
    );
    // The other rule's request expires, and says so.
    s.wait_hooked("the expired request", |a| {
        a["rule"] == "Lapse" && a["state"] == "expired"
    });
    w.kill9();
    assert_eq!(lines(&s.srv(0, "runs")), 0, "nothing runs before approval");

    // Restarted, the request is still there: approve it.
    let mut w = s.watch(None);
    let (code, out, err) = s.action(&["approve", &id.to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("action {id} approved")), "{out}");
    let (code, _, err) = s.action(&["approve", &id.to_string()]);
    assert_eq!(code, 1, "a second approval is refused");
    assert!(err.contains("not awaiting approval"), "{err}");
    w.wait_log(&format!("action #{id} started"), Duration::from_secs(10));
    wait_for(Duration::from_secs(20), "the run to start on the host", || {
        lines(&s.srv(0, "runs")) == 1
    });
    // Killed while the playbook runs.
    w.kill9();
    let mut w = s.watch(None);
    let cut = s.wait_hooked("the interrupted notice", |a| {
        a["id"] == id && a["state"] == "interrupted"
    });
    assert!(cut["reason"].as_str().unwrap().contains("not run again"), "{cut}");
    // Long after the orphaned run would have ended: it ran once, and only it.
    std::thread::sleep(Duration::from_secs(6));
    w.stop();
    assert_eq!(
        std::fs::read_to_string(s.srv(0, "runs")).unwrap(),
        "Gate\n",
        "{}",
        w.log()
    );
    let mut states: Vec<(String, String)> = s
        .all_actions()
        .iter()
        .map(|a| (a["rule"].as_str().unwrap().into(), a["state"].as_str().unwrap().into()))
        .collect();
    states.sort();
    assert_eq!(
        states,
        [
            ("Gate".into(), "interrupted".into()),
            ("Lapse".into(), "expired".into())
        ]
    );
}
