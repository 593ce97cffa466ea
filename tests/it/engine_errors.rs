//! Located errors (file:line:col, snippet, hint) before any host is contacted,
//! exit codes, and a deterministic fuzz of the playbook loader and templating.

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::{rigger_bin, rigger_cmd};

/// A listener that records whether anything connected: the "host" of every
/// error case, so the test proves no connection was attempted.
struct Tripwire {
    addr: std::net::SocketAddr,
    hit: Arc<AtomicBool>,
}

impl Tripwire {
    fn new() -> Tripwire {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let hit = Arc::new(AtomicBool::new(false));
        let h = hit.clone();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                h.store(true, Ordering::SeqCst);
                drop(s);
            }
        });
        Tripwire { addr, hit }
    }
}

fn run_in(dir: &Path, inv: &str, pb: &str, extra: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(rigger_bin());
    cmd.arg("run")
        .arg(dir.join(pb))
        .arg("-i")
        .arg(dir.join(inv))
        .args(extra);
    rigger_cmd(cmd, Duration::from_secs(60))
}

#[test]
fn located_errors_before_any_connection() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let d = dir.path();
    let wire = Tripwire::new();
    std::fs::write(
        d.join("hosts.ini"),
        format!(
            "[all]\ntarget ansible_host={} ansible_port={} ansible_user=root\n",
            wire.addr.ip(),
            wire.addr.port()
        ),
    )
    .unwrap();
    let head = "- hosts: all\n  gather_facts: true\n  tasks:\n";
    // (playbook tasks, line:col, message part, hint part)
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "    - command: echo\n      whenn: true\n",
            "5:7",
            "unknown task keyword `whenn`",
            "did you mean `when`",
        ),
        (
            "    - copyy: {src: a, dest: b}\n",
            "4:7",
            "unknown module `copyy`",
            "did you mean `copy`",
        ),
        ("    - copy: {src: a}\n", "4:", "dest", ""),
        ("    - file: {path: /x, state: sideways}\n", "4:", "state", ""),
        (
            "    - lineinfile: {path: /x, line: y, create: [1]}\n",
            "4:",
            "create",
            "",
        ),
        (
            "    - debug: {msg: [a, b}\n    - command: echo\n",
            "4:25",
            "invalid YAML",
            "",
        ),
        (
            "    - debug:\n        msg: a\n       bad: x\n",
            "6:8",
            "invalid YAML",
            "",
        ),
    ];
    for (i, (tasks, at, msg, hint)) in cases.iter().enumerate() {
        let name = format!("bad{i}.yml");
        std::fs::write(d.join(&name), format!("{head}{tasks}")).unwrap();
        for extra in [&[][..], &["--syntax-check"][..]] {
            let (code, out, err) = run_in(d, "hosts.ini", &name, extra);
            // Ansible's exit codes: a file that cannot be parsed (YAML, an
            // action that resolves to no module) is PARSER_ERROR, 4; a bad
            // argument is a plain error, 1.
            let parse_error = *msg == "invalid YAML" || msg.starts_with("unknown module");
            assert_eq!(code, if parse_error { 4 } else { 1 }, "case {i}: {out}\n{err}");
            assert!(err.contains(&format!("{name}:{at}")), "case {i}: location {at}:\n{err}");
            assert!(err.contains(msg), "case {i}: {msg}:\n{err}");
            assert!(err.contains(hint), "case {i}: {hint}:\n{err}");
            // The snippet: the line number gutter and a caret.
            assert!(err.contains(" | ") && err.contains('^'), "case {i}: snippet:\n{err}");
            assert!(!out.contains("PLAY ["), "case {i}: nothing ran:\n{out}");
        }
    }
    // A bad inventory line: an error at its location by rigger's default;
    // with Ansible's default settings (both *_UNPARSED_* false) a warning
    // there, the source skipped as ansible-playbook skips it.
    std::fs::write(d.join("badinv.ini"), "[web\nhost1\n").unwrap();
    std::fs::write(d.join("ok.yml"), format!("{head}    - command: echo\n")).unwrap();
    // rigger's default: an error at its location, nothing runs.
    let (code, out, err) = run_in(d, "badinv.ini", "ok.yml", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("badinv.ini:1:"), "{err}");
    assert!(!out.contains("PLAY ["), "{out}");
    // Ansible's default settings: a warning at its location.
    let mut cmd = Command::new(rigger_bin());
    cmd.arg("run")
        .arg(d.join("ok.yml"))
        .arg("-i")
        .arg(d.join("badinv.ini"))
        .env("ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_FAILED", "false");
    let (_, _, err) = rigger_cmd(cmd, Duration::from_secs(60));
    assert!(err.contains("[WARNING]: ") && err.contains("badinv.ini:1:"), "{err}");
    // Play-level when that is not a condition.
    std::fs::write(d.join("pw.yml"), "- import_playbook: ok.yml\n  when: {a: 1}\n").unwrap();
    let (code, _, err) = run_in(d, "hosts.ini", "pw.yml", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("pw.yml:2:"), "{err}");
    // Bad options and a missing playbook.
    let (code, _, _) = run_in(d, "hosts.ini", "ok.yml", &["--forks", "many"]);
    assert_eq!(code, 5);
    let (code, _, err) = run_in(d, "hosts.ini", "missing.yml", &[]);
    assert_eq!(code, 5, "{err}");
    assert!(
        !wire.hit.load(Ordering::SeqCst),
        "a host was contacted before the errors were reported"
    );
}

#[test]
fn undefined_variable_names_task_and_variable() {
    let hosts = crate::support::TestHosts::new(1);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("undef.yml"),
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - name: use it\n      debug:\n        msg: \"{{ not_defined_anywhere }}\"\n",
    )
    .unwrap();
    let mut cmd = Command::new(rigger_bin());
    cmd.arg("run")
        .arg(d.join("undef.yml"))
        .arg("-i")
        .arg(hosts.inventory())
        .arg("--known-hosts")
        .arg(hosts.known_hosts());
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(60));
    assert_eq!(code, 2, "{out}\n{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("TASK [use it]"), "{all}");
    assert!(all.contains("not_defined_anywhere"), "{all}");
    assert!(all.contains("undef.yml:4:") || all.contains("undef.yml:6:"), "{all}");
    assert!(!all.contains("internal error"), "{all}");
}

/// A tiny deterministic PRNG (xorshift) so the fuzz cases are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const YAML_BITS: &[&str] = &[
    "- hosts: all\n",
    "  tasks:\n",
    "    - ",
    "command: echo\n",
    "block:\n",
    "rescue:\n",
    "  - ",
    "name: x\n",
    "loop: [1, 2]\n",
    "when: \"{{\"\n",
    "{",
    "}",
    "[",
    "]",
    ": ",
    "\"",
    "'",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!str ",
    "\t",
    "  ",
    "\n",
    "- import_playbook: self.yml\n",
    "include_tasks: x.yml\n",
    "roles: [r]\n",
    "vars: {a: 1}\n",
    "serial: [\"10%\", 0]\n",
    "- ",
    "? ",
    "|\n",
    ">-\n",
    "%YAML 1.2\n---\n",
    "...\n",
    "\u{feff}",
    "é",
    "\0",
    "with_sequence: start=5 end=1\n",
    "loop_control: {pause: x}\n",
    "tags: [always]\n",
    "notify: ",
    "handlers:\n",
];

const TEMPLATE_BITS: &[&str] = &[
    "{{",
    "}}",
    "{%",
    "%}",
    "{#",
    "#}",
    "x",
    " | ",
    "default(",
    ")",
    "(",
    "[",
    "]",
    "'",
    "\"",
    "1",
    "0",
    "/",
    "*",
    "**",
    "range(99999999)",
    "lookup('file', '/nonexistent')",
    "regex_replace('(', 'x')",
    "int",
    "from_json",
    "b64decode",
    "hash('nope')",
    "ternary",
    "if ",
    " else ",
    "for x in ",
    "endfor",
    "endif",
    "loop.index",
    ".",
    "\u{1F600}",
    "\\",
    "~",
    "%",
    "-",
    "9999999999999999999999",
    "to_nice_yaml(indent=-1)",
    "indent(-5)",
];

#[test]
fn fuzz_playbook_loader_and_templates_never_panic() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let ctx = rigger::playbook::LoadCtx::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let path = dir.path().join("self.yml");
    for case in 0..400 {
        let mut text = String::new();
        for _ in 0..(rng.next() % 40) {
            text.push_str(rng.pick(YAML_BITS));
        }
        std::fs::write(&path, &text).unwrap();
        let r = std::panic::catch_unwind(|| rigger::playbook::load_playbook(&path, &ctx));
        assert!(r.is_ok(), "case {case}: load_playbook panicked on:\n{text}");
        if let Ok(Err(e)) = r {
            // Errors are located in the file (or marked synthetic) and render without panicking.
            let _ = e.render();
        }
    }
    let templar = rigger::template::Templar::new();
    let vars = minijinja::Value::from(minijinja::value::Serde(serde_json::json!({"x": [1, 2], "s": "text"})));
    let loc = rigger::yaml::Loc::synthetic("fuzz");
    for case in 0..1500 {
        let mut text = String::new();
        for _ in 0..(rng.next() % 12) {
            text.push_str(rng.pick(TEMPLATE_BITS));
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = templar.render_str(&text, &vars, &loc);
            let _ = templar.eval_bool(&text, &vars, &loc);
        }));
        assert!(r.is_ok(), "case {case}: templating panicked on {text:?}");
    }
    // Garbled bytes too.
    let mut bytes = Vec::new();
    for _ in 0..200 {
        bytes.clear();
        for _ in 0..(rng.next() % 300) {
            bytes.push((rng.next() & 0xff) as u8);
        }
        std::fs::write(&path, &bytes).unwrap();
        let r = std::panic::catch_unwind(|| rigger::playbook::load_playbook(&path, &ctx));
        assert!(r.is_ok(), "load_playbook panicked on bytes {bytes:?}");
    }
}
