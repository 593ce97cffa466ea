//! Output polish (#23): Ansible's colours on a terminal only (never with
//! `NO_COLOR`, never into a pipe unless forced), the progress line never cut
//! into by other output, `-vvv` showing the commands run on targets as
//! `<host> EXEC` lines with vault values and `no_log` arguments hidden, and
//! `--profile` (Ansible's profile_tasks) timing every task.
//!
//! The real rigger binary against real sshd test hosts; terminal runs under
//! a real pseudo-terminal (util-linux `script`).

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use regex::Regex;
use serde_json::Value;

use crate::adhoc::RIGGER_ENV;
use crate::support::{rigger_bin, rigger_cmd, TestHosts};
use crate::vault::{ok, vault};

/// Variables of the test's own environment that change colour or output.
const OUTPUT_ENV: &[&str] = &[
    "NO_COLOR",
    "ANSIBLE_NOCOLOR",
    "ANSIBLE_FORCE_COLOR",
    "ANSIBLE_CONFIG",
    "ANSIBLE_CALLBACKS_ENABLED",
    "ANSIBLE_CALLBACK_WHITELIST",
    "PROFILE_TASKS_SORT_ORDER",
    "PROFILE_TASKS_TASK_OUTPUT_LIMIT",
    "RIGGER_LOG",
    "RIGGER_DEBUG_ROUNDTRIPS",
    "TERM",
];

/// A project directory with `playbook` as site.yml.
fn project(playbook: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("polish-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    fs::write(dir.path().join("site.yml"), playbook).unwrap();
    dir
}

/// `program` in `dir`, with a clean environment plus `env`.
fn command(program: &Path, dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir).env("HOME", dir);
    for var in RIGGER_ENV.iter().chain(OUTPUT_ENV) {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// `run -i INV --known-hosts KH site.yml ARGS`.
fn run_args(hosts: &TestHosts, args: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "run".into(),
        "-i".into(),
        hosts.inventory().display().to_string(),
        "--known-hosts".into(),
        hosts.known_hosts().display().to_string(),
        "site.yml".into(),
    ];
    v.extend(args.iter().map(|s| s.to_string()));
    v
}

/// rigger with stdout and stderr to pipes: (code, stdout, stderr).
fn piped(hosts: &TestHosts, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = command(&rigger_bin(), dir, env);
    cmd.args(run_args(hosts, args));
    rigger_cmd(cmd, Duration::from_secs(180))
}

/// rigger on a pseudo-terminal (stdout and stderr both on it): the bytes
/// the terminal received.
fn on_pty(hosts: &TestHosts, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let quoted: Vec<String> = std::iter::once(rigger_bin().display().to_string())
        .chain(run_args(hosts, args))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    let mut cmd = command(Path::new("script"), dir, env);
    if !env.iter().any(|(k, _)| *k == "TERM") {
        cmd.env("TERM", "xterm");
    }
    cmd.args(["-qec", &quoted.join(" "), "/dev/null"]);
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(180));
    assert_eq!(
        code, 0,
        "rigger on a terminal failed\n--- terminal ---\n{out}\n--- stderr ---\n{err}"
    );
    out
}

/// SGR (colour) escape sequences.
fn colours(text: &str) -> usize {
    Regex::new(r"\x1b\[[0-9;]*m").unwrap().find_iter(text).count()
}

const COLOUR_PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: a change
      command: "true"
    - name: a message
      debug:
        msg: hello
    - name: a failure that is ignored
      command: "false"
      ignore_errors: true
"#;

#[test]
fn colours_on_a_terminal_only_and_never_with_no_color() {
    let hosts = TestHosts::new(2);
    let dir = project(COLOUR_PLAYBOOK);
    let d = dir.path();
    let h0 = hosts.name(0);

    // A terminal: Ansible's colours, each line closed on its own.
    let tty = on_pty(&hosts, d, &[], &[]);
    for (code, line) in [
        ("0;33", format!("changed: [{h0}]")),
        ("0;32", format!("ok: [{h0}] => {{")),
        ("0;31", format!("fatal: [{h0}]: FAILED!")),
        ("0;36", "...ignoring".to_string()),
    ] {
        let painted = format!("\x1b[{code}m{line}");
        assert!(tty.contains(&painted), "no `{painted:?}` on the terminal:\n{tty}");
    }
    // The recap: the host in its worst status's colour, counts that are not 0 in theirs.
    assert!(tty.contains(&format!("\x1b[0;33m{h0}\x1b[0m")), "{tty}");
    assert!(tty.contains("\x1b[0;33mchanged=1   \x1b[0m"), "{tty}");
    assert!(tty.contains(" failed=0    "), "{tty}");

    // NO_COLOR, whatever its value, even when Ansible's force is set too.
    for env in [
        vec![("NO_COLOR", "1")],
        vec![("NO_COLOR", "0")],
        vec![("NO_COLOR", "1"), ("ANSIBLE_FORCE_COLOR", "1")],
        vec![("ANSIBLE_NOCOLOR", "true")],
        vec![("TERM", "dumb")],
    ] {
        let out = on_pty(&hosts, d, &[], &env);
        assert!(out.contains(&format!("changed: [{h0}]")), "{env:?}: {out}");
        assert_eq!(colours(&out), 0, "colours on a terminal with {env:?}:\n{out:?}");
    }
    let out = on_pty(&hosts, d, &["--color", "never"], &[]);
    assert_eq!(colours(&out), 0, "--color never:\n{out:?}");
    // An empty NO_COLOR is not set (no-color.org).
    let out = on_pty(&hosts, d, &[], &[("NO_COLOR", "")]);
    assert!(colours(&out) > 0, "{out:?}");

    // A pipe: no escape sequence at all, on either stream.
    let (code, out, err) = piped(&hosts, d, &[], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains(&format!("changed: [{h0}]")), "{out}");
    assert!(!out.contains('\x1b') && !err.contains('\x1b'), "{out:?}\n{err:?}");
    // ... unless forced: Ansible's ANSIBLE_FORCE_COLOR, or --color always.
    for (args, env) in [
        (vec![], vec![("ANSIBLE_FORCE_COLOR", "1")]),
        (vec!["--color", "always"], vec![]),
        (vec!["--color=always"], vec![("NO_COLOR", "1")]),
    ] {
        let (code, out, _) = piped(&hosts, d, &args, &env);
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains(&format!("\x1b[0;33mchanged: [{h0}]\x1b[0m")),
            "{args:?} {env:?}:\n{out:?}"
        );
    }
    // ansible.cfg's force_color, found as Ansible finds it (./ansible.cfg).
    fs::write(d.join("ansible.cfg"), "[defaults]\nforce_color = True\n").unwrap();
    let (_, out, _) = piped(&hosts, d, &[], &[]);
    assert!(colours(&out) > 0, "ansible.cfg force_color:\n{out:?}");
    fs::write(d.join("ansible.cfg"), "[defaults]\nnocolor = 1\n").unwrap();
    let out = on_pty(&hosts, d, &[], &[]);
    assert_eq!(colours(&out), 0, "ansible.cfg nocolor:\n{out:?}");
}

/// What a terminal shows of `raw`, cut where the terminal moves to the
/// start of a line (`\n`, `\r`), without escape sequences: every piece
/// written between two such moves.
fn pieces(raw: &str) -> Vec<String> {
    let csi = Regex::new(r"\x1b\[[0-9;?]*[A-Za-z]").unwrap();
    csi.replace_all(raw, "")
        .split(['\n', '\r'])
        .map(|p| p.trim_end().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

#[test]
fn the_progress_line_never_shares_a_line_with_other_output() {
    let hosts = TestHosts::new(4);
    let tasks = ["sleep a little", "sleep a little more", "say something"];
    let dir = project(&format!(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: {}
      command: sleep 0.7
    - name: {}
      command: sleep 0.5
    - name: {}
      debug:
        msg: "a message"
"#,
        tasks[0], tasks[1], tasks[2]
    ));
    // RIGGER_DEBUG_ROUNDTRIPS=2 writes a line to stderr for every channel
    // opened on a host: lines from outside the renderer, while the
    // progress line is drawn.
    let raw = on_pty(&hosts, dir.path(), &[], &[("RIGGER_DEBUG_ROUNDTRIPS", "2")]);
    let bar = Regex::new(r"^\S \[\d+/\d+\](?: (.*))?$").unwrap();
    let fragment = Regex::new(r"[\u{2800}-\u{28FF}]|\[\d+/\d+\]").unwrap();
    let trace = Regex::new(r"^rigger-roundtrips: host=\S+ (channel=\d+ |channels=\d+ commands=\d+$)").unwrap();
    let result = Regex::new(r"^(changed|ok): \[[^\]]+\]").unwrap();
    let whole_result = Regex::new(r"^(changed: \[[^\]]+\]|ok: \[[^\]]+\] => \{)$").unwrap();
    let mut bars = 0;
    let mut traces = 0;
    let mut results = 0;
    for p in pieces(&raw) {
        if let Some(c) = bar.captures(&p) {
            // A whole progress line: the spinner, the count, a task's name.
            let msg = c.get(1).map_or("", |m| m.as_str());
            assert!(
                msg.is_empty() || tasks.contains(&msg),
                "a progress line with something else on it: {p:?}\n--- terminal ---\n{raw}"
            );
            bars += 1;
            continue;
        }
        assert!(
            !fragment.is_match(&p),
            "a line mixes the progress line with other output: {p:?}\n--- terminal ---\n{raw}"
        );
        if p.starts_with("rigger-roundtrips: ") {
            assert!(trace.is_match(&p), "{p:?}");
            traces += 1;
        }
        if result.is_match(&p) {
            assert!(
                whole_result.is_match(&p),
                "a task line with something else on it: {p:?}"
            );
            results += 1;
        }
    }
    assert!(bars > 0, "no progress line was drawn:\n{raw}");
    assert!(traces >= 8, "{traces} trace lines:\n{raw}");
    assert_eq!(results, 3 * hosts.len(), "{raw}");
}

const VAULT_PASSWORD: &str = "Vau1t-Exec-Pw-42";
const NO_LOG_ARG: &str = "no-log-argument-7731";

#[test]
fn vvv_shows_the_commands_run_with_secrets_hidden() {
    let hosts = TestHosts::new(1);
    let dir = project(&format!(
        r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: a vaulted value on a command line
      command: echo "{{{{ db_password }}}}"
      changed_when: false
    - name: a no_log task's arguments
      command: echo "{NO_LOG_ARG}"
      no_log: true
      changed_when: false
    - name: a plain command
      command: echo plain-marker-5
      changed_when: false
    - name: a vaulted value sent in a file
      copy:
        content: "{{{{ db_password }}}}\n"
        dest: "{{{{ playbook_dir }}}}/sent-{{{{ inventory_hostname }}}}"
"#
    ));
    let d = dir.path();
    fs::create_dir_all(d.join("group_vars")).unwrap();
    fs::write(d.join("pw"), "vault-pass\n").unwrap();
    fs::write(d.join("group_vars/all.yml"), format!("db_password: {VAULT_PASSWORD}\n")).unwrap();
    ok(vault(
        d,
        &["encrypt", "--vault-password-file", "pw", "group_vars/all.yml"],
    ));
    let host = hosts.name(0);
    let exec = format!("<{host}> EXEC ");
    let clean = |what: &str, text: &str| {
        for secret in [VAULT_PASSWORD, NO_LOG_ARG] {
            assert!(!text.contains(secret), "{what} shows `{secret}`:\n{text}");
        }
    };

    // -vvv: Ansible's level for the commands.
    let (code, out, err) = piped(&hosts, d, &["-vvv", "--vault-password-file", "pw"], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    clean("stdout at -vvv", &out);
    clean("stderr at -vvv", &err);
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with(&exec)).collect();
    let masked = Regex::new(r"echo '?\*{8}").unwrap();
    assert!(
        lines.iter().any(|l| l.contains("echo plain-marker-5")),
        "no EXEC line for the plain command:\n{out}"
    );
    assert!(
        lines.iter().any(|l| masked.is_match(l)),
        "no EXEC line with the vaulted value masked:\n{out}"
    );
    assert!(
        lines.iter().any(|l| l.ends_with("<hidden: no_log task>")),
        "no hidden EXEC line for the no_log task:\n{out}"
    );
    // The upload, as Ansible's `<host> PUT SOURCE TO DEST`.
    let put = format!("<{host}> PUT ");
    let sent = format!(" TO {}/sent-{host}", d.display());
    assert!(
        out.lines().any(|l| l.starts_with(&put) && l.contains(&sent)),
        "no PUT line for the copy:\n{out}"
    );
    assert!(fs::read_to_string(d.join(format!("sent-{host}")))
        .unwrap()
        .contains(VAULT_PASSWORD));
    // The lines come under their task's banner, before its result.
    let at = |want: &dyn Fn(&str) -> bool| out.lines().position(want).unwrap_or_else(|| panic!("{out}"));
    let banner = at(&|l| l.starts_with("TASK [a plain command]"));
    let line = at(&|l| l.starts_with(&exec) && l.contains("plain-marker-5"));
    assert!(banner < line, "{out}");
    assert!(
        out.lines().skip(line).any(|l| l.starts_with(&format!("ok: [{host}]"))),
        "the result comes after the command: {out}"
    );

    // JSON events carry them as `exec` events, masked the same.
    let (code, out, err) = piped(
        &hosts,
        d,
        &["-vvv", "--output", "json", "--vault-password-file", "pw"],
        &[],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    clean("JSON at -vvv", &out);
    let execs: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "exec")
        .collect();
    assert!(
        execs
            .iter()
            .any(|e| e["host"] == host && e["command"].as_str().is_some_and(|c| masked.is_match(c))),
        "{out}"
    );

    // Below -vvv: no EXEC lines.
    let (code, out, _) = piped(&hosts, d, &["-vv", "--vault-password-file", "pw"], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains(" EXEC "), "{out}");
}

/// The first task also pays for the connections: it is the longest, so
/// that cost cannot change the order.
const SLEEPS: [(&str, f64); 3] = [("long sleep", 2.0), ("short sleep", 0.2), ("middle sleep", 1.2)];

fn profile_playbook() -> String {
    let mut pb = String::from("- hosts: all\n  gather_facts: false\n  tasks:\n");
    for (name, secs) in SLEEPS {
        pb.push_str(&format!("    - name: {name}\n      command: sleep {secs}\n"));
    }
    pb
}

/// (name, seconds) of the `name ------ 1.23s` lines after `TASKS RECAP`.
fn recap_timings(out: &str) -> Vec<(String, f64)> {
    let line = Regex::new(r"^(.+?) -+ (\d+\.\d\d)s$").unwrap();
    out.split("TASKS RECAP")
        .nth(1)
        .unwrap_or_else(|| panic!("no TASKS RECAP:\n{out}"))
        .lines()
        .filter_map(|l| line.captures(l))
        .map(|c| (c[1].to_string(), c[2].parse().unwrap()))
        .collect()
}

#[test]
fn profile_times_every_task_slowest_first() {
    let hosts = TestHosts::new(2);
    let dir = project(&profile_playbook());
    let d = dir.path();
    let clock = Regex::new(
        r"^\w+ \d\d \w+ \d{4}  \d\d:\d\d:\d\d [+-]\d{4} \(\d+:\d\d:\d\d\.\d{3}\) +\d+:\d\d:\d\d\.\d{3} \*+ $",
    )
    .unwrap();
    let check = |out: &str, order: &[&str]| {
        let got = recap_timings(out);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        let mut want = order.to_vec();
        want.push("total");
        assert_eq!(names, want, "{out}");
        for (name, secs) in &got {
            let Some((_, slept)) = SLEEPS.iter().find(|(n, _)| n == name) else {
                continue;
            };
            // The time of the slowest host: at least its sleep, not much more.
            assert!(*secs >= *slept && *secs < slept + 3.0, "{name}: {secs}s\n{out}");
        }
        let total = got.last().unwrap().1;
        let sum: f64 = got[..got.len() - 1].iter().map(|(_, s)| s).sum();
        assert!(
            total >= sum - 0.02 && total < sum + 3.0,
            "total {total}s, tasks {sum}s\n{out}"
        );
    };

    // --profile: a clock line under every task banner, the summary after the recap.
    let (code, out, err) = piped(&hosts, d, &["--profile"], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    check(&out, &["long sleep", "middle sleep", "short sleep"]);
    let lines: Vec<&str> = out.lines().collect();
    for (name, _) in SLEEPS {
        let i = lines
            .iter()
            .position(|l| l.starts_with(&format!("TASK [{name}] ")))
            .unwrap_or_else(|| panic!("no banner for {name}:\n{out}"));
        assert!(
            clock.is_match(lines[i + 1]),
            "no clock line under {name}: {:?}",
            lines[i + 1]
        );
    }
    assert!(
        out.find("PLAY RECAP").unwrap() < out.find("TASKS RECAP").unwrap(),
        "{out}"
    );

    // As Ansible users turn it on: profile_tasks in ANSIBLE_CALLBACKS_ENABLED,
    // with its sort order option.
    let (code, out, _) = piped(
        &hosts,
        d,
        &[],
        &[
            (
                "ANSIBLE_CALLBACKS_ENABLED",
                "ansible.posix.timer, ansible.posix.profile_tasks",
            ),
            ("PROFILE_TASKS_SORT_ORDER", "ascending"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    check(&out, &["short sleep", "middle sleep", "long sleep"]);
    // ... or ansible.cfg's callbacks_enabled, with task_output_limit.
    fs::write(
        d.join("ansible.cfg"),
        "[defaults]\ncallbacks_enabled = profile_tasks\n[callback_profile_tasks]\ntask_output_limit = 2\n",
    )
    .unwrap();
    let (code, out, _) = piped(&hosts, d, &[], &[]);
    assert_eq!(code, 0, "{out}");
    check(&out, &["long sleep", "middle sleep"]);
    fs::remove_file(d.join("ansible.cfg")).unwrap();

    // JSON: a `profile` event after the recap, with the same fields.
    let (code, out, _) = piped(&hosts, d, &["--profile", "--output", "json"], &[]);
    assert_eq!(code, 0, "{out}");
    let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let last = events.last().unwrap();
    assert_eq!(last["event"], "profile", "{out}");
    assert_eq!(events[events.len() - 2]["event"], "recap", "{out}");
    let tasks = last["tasks"].as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t["task"].as_str().unwrap()).collect();
    assert_eq!(names, ["long sleep", "middle sleep", "short sleep"], "{out}");
    for t in tasks {
        let slept = SLEEPS.iter().find(|(n, _)| *n == t["task"]).unwrap().1;
        let secs = t["seconds"].as_f64().unwrap();
        assert!(secs >= slept && secs < slept + 3.0, "{t}");
        assert!(t["location"].as_str().unwrap().contains("site.yml:"), "{t}");
    }
    assert!(last["total"].as_f64().unwrap() >= 3.4, "{last}");

    // Off: nothing of it.
    let (code, out, _) = piped(&hosts, d, &[], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("TASKS RECAP") && !out.lines().any(|l| clock.is_match(l)),
        "{out}"
    );
}
