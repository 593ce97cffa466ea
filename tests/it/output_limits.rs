//! Bounded command output (#18): a command printing far more than
//! `--max-output` keeps the head of each stream, says so in its registered
//! result and in a warning, and rigger's memory stays bounded; a user
//! module printing more JSON than that fails instead of being parsed.
//!
//! The real rigger binary against a real sshd test host.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::adhoc::RIGGER_ENV;
use crate::support::{rigger_bin, rigger_cmd, TestHosts};

/// Besides [`RIGGER_ENV`], variables that change what these tests see.
const MORE_ENV: &[&str] = &["ANSIBLE_LIBRARY", "RIGGER_LIBRARY", "RIGGER_PIPELINING"];

const MIB: u64 = 1024 * 1024;

/// What a rigger run printed, and its peak resident memory.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    /// VmHWM of the rigger process, from `/usr/bin/time -v`.
    peak_rss_kib: u64,
}

/// `rigger run -i INV --known-hosts KH PLAYBOOK ARGS...` under `/usr/bin/time -v`
/// with a clean `HOME` and environment, plus `env`.
fn run_playbook(hosts: &TestHosts, playbook: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let home = tempfile::tempdir().expect("temp HOME");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v")
        .arg(rigger_bin())
        .args(["run", "-i"])
        .arg(hosts.inventory())
        .arg("--known-hosts")
        .arg(hosts.known_hosts())
        .arg(playbook)
        .args(args)
        .env("HOME", home.path());
    for var in RIGGER_ENV.iter().chain(MORE_ENV) {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let shown = format!("{cmd:?}");
    let (code, stdout, stderr) = rigger_cmd(cmd, Duration::from_secs(300));
    assert!(
        !stderr.contains("panicked") && code != 250,
        "rigger panicked: {shown}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}"
    );
    let peak_rss_kib = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time in:\n{stderr}"));
    Run {
        code,
        stdout,
        stderr,
        peak_rss_kib,
    }
}

impl Run {
    /// The JSON event lines of `--output json`.
    fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    /// The result of `task` on `host` (`--output json`).
    #[track_caller]
    fn result(&self, host: &str, task: &str) -> serde_json::Map<String, Value> {
        self.events()
            .into_iter()
            .find(|e| e["event"] == "host_result" && e["host"] == host && e["task"] == task)
            .and_then(|e| e["result"].as_object().cloned())
            .unwrap_or_else(|| panic!("no result of `{task}` on {host} in:\n{}\n{}", self.stdout, self.stderr))
    }

    /// The messages of the warning events (`--output json`).
    fn warnings(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter(|e| e["event"] == "warning")
            .filter_map(|e| e["message"].as_str().map(str::to_string))
            .collect()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

/// 200 MiB on stdout and 3 MB on stderr with `--max-output 1M`: the
/// registered result keeps exactly the first MiB of each stream, states the
/// cut and the bytes dropped, the run warns about it, and rigger's peak
/// memory stays far below the output's size.
///
/// The bound: rigger's own peak on such a run is about 20 MiB; what the cap
/// adds is a few copies of the kept 2 MiB (the collected bytes, the result's
/// strings and `stdout_lines`, the registered variable, the JSON event),
/// well under 100 MiB. Before the cap the collected stdout alone grew to
/// 256 MiB of buffer (then was copied into strings and lines): gigabytes.
#[test]
fn output_over_the_limit_is_cut_stated_and_memory_stays_bounded() {
    let hosts = TestHosts::new(1);
    let host = hosts.name(0).to_string();
    // 30-byte lines: the first MiB ends inside a line (1048576 = 34952*30 + 16).
    let flood = "yes rigger-output-line-0123456789 | head -c 209715200; head -c 3000000 /dev/zero | tr '\\0' e >&2";
    let playbook = write(
        hosts.dir(),
        "flood.yml",
        &format!(
            "- hosts: all\n  gather_facts: false\n  tasks:\n\
             \x20   - name: flood\n      shell: |\n        {flood}\n      register: big\n\
             \x20   - name: registered\n      debug:\n        msg: \"{{{{ [big.stdout | length, big.stdout_truncated, \
             big.stdout_dropped_bytes, big.stdout_lines | length, big.stderr | length, big.stderr_truncated, \
             big.stderr_dropped_bytes] | join(' ') }}}}\"\n"
        ),
    );
    let run = run_playbook(&hosts, &playbook, &["--output", "json", "--max-output", "1M"], &[]);
    let peak_mib = run.peak_rss_kib / 1024;
    eprintln!("rigger's peak RSS: {peak_mib} MiB");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    let r = run.result(&host, "flood");
    let stdout = r["stdout"].as_str().expect("stdout");
    assert_eq!(stdout.len() as u64, MIB);
    assert!(stdout.starts_with("rigger-output-line-0123456789\nrigger-output-line-"));
    assert!(
        stdout.ends_with("9\nrigger-output-li"),
        "the cut is where the MiB ends, inside a line"
    );
    assert_eq!(r["stdout_truncated"], true);
    assert_eq!(r["stdout_dropped_bytes"].as_u64(), Some(209_715_200 - MIB));
    assert_eq!(r["stdout_lines"].as_array().map(Vec::len), Some(34_953));
    assert_eq!(r["stderr"].as_str().map(str::len), Some(MIB as usize));
    assert_eq!(r["stderr_truncated"], true);
    assert_eq!(r["stderr_dropped_bytes"].as_u64(), Some(3_000_000 - MIB));
    assert_eq!(r["rc"], 0);

    // The registered variable has the same.
    let msg = run.result(&host, "registered")["msg"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        msg,
        format!("{MIB} True {} 34953 {MIB} True {}", 209_715_200 - MIB, 3_000_000 - MIB)
    );

    // Visible: one warning per cut stream, naming host, task and the setting.
    let warnings = run.warnings();
    let cut: Vec<&String> = warnings.iter().filter(|w| w.contains(" was cut ")).collect();
    assert_eq!(cut.len(), 2, "{warnings:?}");
    assert!(
        cut[0].starts_with(&format!(
            "{host}: flood: stdout was cut to its first {MIB} bytes; {} more",
            209_715_200 - MIB
        )),
        "{}",
        cut[0]
    );
    assert!(
        cut[1].starts_with(&format!("{host}: flood: stderr was cut")),
        "{}",
        cut[1]
    );
    assert!(cut[0].contains("--max-output or RIGGER_MAX_OUTPUT"), "{}", cut[0]);

    assert!(
        peak_mib < 100,
        "rigger's peak RSS was {peak_mib} MiB for 200 MiB of output with a 1 MiB cap"
    );
}

/// The default text output prints the warning; the limit comes from
/// `RIGGER_MAX_OUTPUT` as well, and `script` and `raw` are cut the same way.
/// A bad size is a usage error (exit 5).
#[test]
fn text_output_warns_and_every_user_command_module_is_cut() {
    let hosts = TestHosts::new(1);
    let host = hosts.name(0).to_string();
    let files = hosts.dir().join("files");
    std::fs::create_dir_all(&files).unwrap();
    write(&files, "flood.sh", "#!/bin/sh\nhead -c 300000 /dev/zero | tr '\\0' s\n");
    let playbook = write(
        hosts.dir(),
        "modules.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - name: by script\n      script: flood.sh\n      register: s\n\
         \x20   - name: by raw\n      raw: head -c 300000 /dev/zero | tr '\\0' r\n      register: r\n\
         \x20   - name: with become\n      shell: head -c 300000 /dev/zero | tr '\\0' b\n      become: true\n      register: b\n\
         \x20   - name: small\n      command: echo fits\n      register: c\n\
         \x20   - debug:\n        msg: \"{{ [s.stdout | length, s.stdout_dropped_bytes, r.stdout | length, \
         r.stdout_dropped_bytes, b.stdout | length, b.stdout_dropped_bytes, c.stdout, c.stdout_truncated | default('none')] \
         | join(' ') }}\"\n",
    );
    let run = run_playbook(&hosts, &playbook, &[], &[("RIGGER_MAX_OUTPUT", "100K")]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // With become, sudo's success marker is not counted as output.
    for task in ["by script", "by raw", "with become"] {
        let line = format!("[WARNING]: {host}: {task}: stdout was cut to its first 102400 bytes; 197600 more bytes");
        assert!(run.stderr.contains(&line), "no `{line}` in:\n{}", run.stderr);
    }
    // Warnings go to stderr, as Ansible's.
    assert_eq!(run.stderr.matches("[WARNING]").count(), 3, "{}", run.stderr);
    assert!(!run.stdout.contains("[WARNING]"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("\"msg\": \"102400 197600 102400 197600 102400 197600 fits none\""),
        "{}",
        run.stdout
    );

    // adhoc --json: stdout stays one JSON object per host; the warning goes to stderr.
    let out = crate::adhoc::adhoc(
        &hosts,
        "all",
        &["--json", "-m", "shell", "-a", "head -c 300000 /dev/zero"],
    )
    .env("RIGGER_MAX_OUTPUT", "100K")
    .run();
    let by_host = out.expect_code(0).json_by_host();
    assert_eq!(by_host[&host]["result"]["stdout_dropped_bytes"], 197_600);
    assert!(
        out.stderr.contains(&format!(
            "[WARNING]: {host}: shell head -c 300000 /dev/zero: stdout was cut"
        )),
        "{}",
        out.stderr
    );

    for bad in ["0", "lots", "-1M"] {
        let run = run_playbook(&hosts, &playbook, &[&format!("--max-output={bad}")], &[]);
        assert_eq!(run.code, 5, "--max-output {bad}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("--max-output"), "{}", run.stderr);
    }
}

/// A user module printing more than the limit on stdout (a 3 MB "JSON"
/// document) fails with the reason; it is not parsed. Through the
/// persistent shell and on a channel of its own. Within the limit, it works.
#[test]
fn user_module_printing_too_much_json_is_refused() {
    let hosts = TestHosts::new(1);
    let host = hosts.name(0).to_string();
    let library = hosts.dir().join("library");
    std::fs::create_dir_all(&library).unwrap();
    // A valid JSON object of about 3 MB: would be parsed whole if read.
    write(
        &library,
        "chatty",
        "#!/bin/sh\nprintf '{\"changed\": false, \"pad\": \"'\nhead -c 3000000 /dev/zero | tr '\\0' p\nprintf '\"}\\n'\n",
    );
    write(
        &library,
        "quiet",
        "#!/bin/sh\nprintf '{\"changed\": false, \"said\": \"little\"}\\n'\n",
    );
    let playbook = write(
        hosts.dir(),
        "chatty.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n\
         \x20   - name: quiet\n      quiet:\n\
         \x20   - name: chatty\n      chatty:\n      ignore_errors: true\n\
         \x20   - name: chatty with become\n      chatty:\n      become: true\n",
    );
    for pipelining in ["1", "0"] {
        let run = run_playbook(
            &hosts,
            &playbook,
            &["--output", "json"],
            &[("RIGGER_PIPELINING", pipelining), ("RIGGER_MAX_OUTPUT", "1M")],
        );
        assert_eq!(run.code, 2, "pipelining={pipelining}\n{}\n{}", run.stdout, run.stderr);
        assert_eq!(run.result(&host, "quiet")["said"], "little");
        for task in ["chatty", "chatty with become"] {
            let r = run.result(&host, task);
            assert_eq!(r["failed"], true, "{task}: {r:?}");
            let msg = r["msg"].as_str().unwrap_or_default();
            assert!(
                msg.starts_with(
                    "MODULE FAILURE: chatty: the command printed more than 1048576 bytes (1.0 MiB) on stdout"
                ),
                "{task}, pipelining={pipelining}: {msg}"
            );
            assert!(msg.contains("--max-output or RIGGER_MAX_OUTPUT"), "{msg}");
            assert!(r.get("pad").is_none(), "the output was parsed: {:?}", r.keys());
        }
        assert!(run.peak_rss_kib / 1024 < 100, "peak RSS {} KiB", run.peak_rss_kib);
    }
}
