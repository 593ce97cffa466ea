//! Executor and inventory features as ansible-core 2.19's integration
//! targets exercise them (set_fact, inventory_script): the `jsonfile` fact
//! cache across runs; an inventory script's stderr per the script plugin's
//! `always_show_stderr`. Real playbooks, the real binary, real sshd test
//! hosts.

use std::time::Duration;

use crate::engine::Lab;
use crate::support::rigger_cmd;

const CACHE_SET: &str = r#"
- hosts: host1
  gather_facts: true
  gather_subset: [min]
  tasks:
    - set_fact:
        ansible_foobar: from_set_fact_cacheable
        plain_cached: yes_cached
        cacheable: true
    - set_fact:
        not_cached: this_should_not_be_cached
    - set_fact: "cacheable=no also_not_cached=x"
"#;

const CACHE_READ: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - copy:
        dest: "@OUT@/{{ name }}.json"
        content: "{{ {'foobar': ansible_foobar | default('UNDEF'),
                      'facts_foobar': ansible_facts.foobar | default('UNDEF'),
                      'plain': plain_cached | default('UNDEF'),
                      'hostname': ansible_facts.hostname | default('UNDEF'),
                      'not_cached': not_cached | default('UNDEF'),
                      'also_not_cached': also_not_cached | default('UNDEF')} | to_json }}"
"#;

fn cache_run(lab: &Lab, pb: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let dir = lab.path("cache");
    let mut cmd = lab.cmd(pb, extra);
    cmd.env("ANSIBLE_CACHE_PLUGIN", "jsonfile")
        .env("ANSIBLE_CACHE_PLUGIN_CONNECTION", &dir)
        .env("ANSIBLE_CACHE_PLUGIN_PREFIX", "prefix_");
    for (k, v) in env {
        cmd.env(k, v);
    }
    rigger_cmd(cmd, Duration::from_secs(120))
}

/// set_fact_cached_1/2 and the `--flush-cache` run of ansible-core's
/// set_fact target: `cacheable: true` facts and gathered facts are written
/// to `{connection}/{prefix}{host}` under Ansible's names and read back by
/// the next run as facts (`ansible_foobar`, `ansible_facts.foobar`); plain
/// set_fact values are not; `--flush-cache` forgets them; an entry older
/// than ANSIBLE_CACHE_PLUGIN_TIMEOUT is not read.
#[test]
fn jsonfile_fact_cache_keeps_cacheable_and_gathered_facts_across_runs() {
    let lab = Lab::new(1);
    lab.write("set.yml", CACHE_SET);
    lab.write("read.yml", CACHE_READ);
    let (code, out, err) = cache_run(&lab, "set.yml", &[], &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let file = lab.path("cache/prefix_host1");
    let entry: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(entry["ansible_foobar"], "from_set_fact_cacheable", "{entry}");
    assert_eq!(entry["plain_cached"], "yes_cached", "{entry}");
    assert!(
        entry["ansible_hostname"].is_string(),
        "gathered facts are cached: {entry}"
    );
    assert!(
        entry.get("not_cached").is_none() && entry.get("also_not_cached").is_none(),
        "{entry}"
    );
    let names: Vec<String> = std::fs::read_dir(lab.path("cache"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["prefix_host1".to_string()], "no temporary file is left");

    let read = |name: &str, extra: &[&str], env: &[(&str, &str)]| -> serde_json::Value {
        let mut args = vec!["-e", name];
        args.extend_from_slice(extra);
        let (code, out, err) = cache_run(&lab, "read.yml", &args, env);
        assert_eq!(code, 0, "{out}\n{err}");
        let n = name.trim_start_matches("name=");
        serde_json::from_str(&lab.read(&format!("out/{n}.json"))).unwrap()
    };
    let got = read("name=second", &[], &[]);
    assert_eq!(got["foobar"], "from_set_fact_cacheable", "{got}");
    assert_eq!(got["facts_foobar"], "from_set_fact_cacheable", "{got}");
    assert_eq!(got["plain"], "yes_cached", "{got}");
    assert_ne!(got["hostname"], "UNDEF", "{got}");
    assert_eq!(got["not_cached"], "UNDEF", "{got}");
    assert_eq!(got["also_not_cached"], "UNDEF", "{got}");

    // Expired entries are not read (and not removed).
    std::thread::sleep(Duration::from_millis(2100));
    let got = read("name=expired", &[], &[("ANSIBLE_CACHE_PLUGIN_TIMEOUT", "1")]);
    assert_eq!(got["foobar"], "UNDEF", "{got}");
    // 0: never expires.
    let got = read("name=forever", &[], &[("ANSIBLE_CACHE_PLUGIN_TIMEOUT", "0")]);
    assert_eq!(got["foobar"], "from_set_fact_cacheable", "{got}");

    let got = read("name=flushed", &["--flush-cache"], &[]);
    assert_eq!(got["foobar"], "UNDEF", "{got}");
    assert_eq!(got["hostname"], "UNDEF", "{got}");
    assert!(!file.exists(), "--flush-cache removes the entry");
}

/// Without the fact cache (memory, the default), nothing outlives the run.
#[test]
fn memory_fact_cache_keeps_nothing_across_runs() {
    let lab = Lab::new(1);
    lab.write("set.yml", CACHE_SET);
    lab.write("read.yml", CACHE_READ);
    let (code, out, err) = lab.run("set.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = lab.run("read.yml", &["-e", "name=mem"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let got: serde_json::Value = serde_json::from_str(&lab.read("out/mem.json")).unwrap();
    assert_eq!(got["foobar"], "UNDEF", "{got}");
}

/// inventory_script's success cases: what a script prints on stderr while
/// its `--list` succeeds is shown as an `[ERROR]:` line, as the script
/// plugin's `always_show_stderr` (default true) does;
/// ANSIBLE_INVENTORY_PLUGIN_SCRIPT_STDERR=0 hides it; a failing script's
/// stderr is in its error either way.
#[test]
fn inventory_script_stderr_follows_always_show_stderr() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("invscript-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let script = dir.path().join("inv.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho 'this is stderr' >&2\n[ -n \"$FAIL\" ] && exit 3\n\
         echo '{\"g\": {\"hosts\": [\"h1\"]}, \"_meta\": {\"hostvars\": {}}}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = |env: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(crate::support::rigger_bin());
        cmd.args(["inventory", "-i"]).arg(&script).arg("--list");
        cmd.env_remove("ANSIBLE_INVENTORY_PLUGIN_SCRIPT_STDERR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        rigger_cmd(cmd, Duration::from_secs(60))
    };
    let (code, out, err) = run(&[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("\"h1\""), "{out}");
    assert!(err.contains("[ERROR]: this is stderr"), "shown by default: {err}");
    for off in ["0", "false", "no"] {
        let (code, out, err) = run(&[("ANSIBLE_INVENTORY_PLUGIN_SCRIPT_STDERR", off)]);
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(!err.contains("this is stderr"), "hidden with {off}: {err}");
    }
    let (code, _, err) = run(&[("ANSIBLE_INVENTORY_PLUGIN_SCRIPT_STDERR", "sometimes")]);
    assert_ne!(code, 0);
    assert!(err.contains("not a boolean"), "{err}");
    let (code, _, err) = run(&[("ANSIBLE_INVENTORY_PLUGIN_SCRIPT_STDERR", "0"), ("FAIL", "1")]);
    assert_ne!(code, 0);
    assert!(
        err.contains("this is stderr"),
        "a failure shows the script's stderr: {err}"
    );
}

/// json-serialization: `from_json` of a lone UTF-16 surrogate escape is
/// refused with Ansible's "Refusing to deserialize" message (its own line)
/// unless MODULE_STRICT_UTF8_RESPONSE is off, then it shows as `?`; a
/// surrogate pair is one character either way.
#[test]
fn from_json_refuses_lone_surrogates_unless_strict_utf8_is_off() {
    let lab = Lab::new(1);
    lab.write(
        "surrogate.yml",
        r#"
- hosts: host1
  gather_facts: false
  tasks:
    - copy:
        dest: "@OUT@/pair.txt"
        content: "{{ '\"\\ud83d\\ude00\"' | from_json }}"
    - debug:
        msg: "{{ '\"hi \\udc80 mom\"' | from_json }}"
"#,
    );
    let run = |strict: &str| {
        let mut cmd = lab.cmd("surrogate.yml", &[]);
        cmd.env("ANSIBLE_MODULE_STRICT_UTF8_RESPONSE", strict);
        rigger_cmd(cmd, Duration::from_secs(120))
    };
    let (code, out, err) = run("0");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("\"msg\": \"hi ? mom\""), "{out}");
    assert_eq!(lab.read("out/pair.txt"), "\u{1F600}");
    let (code, out, err) = run("1");
    assert_eq!(code, 2, "{out}\n{err}");
    let all = format!("{out}\n{err}");
    assert!(
        all.lines()
            .any(|l| l.starts_with("Refusing to deserialize an invalid UTF8 string value.")),
        "{all}"
    );
    assert!(all.contains("MODULE_STRICT_UTF8_RESPONSE"), "{all}");
}

/// conditionals (output_validation_tests.yml): a `when:` written `!unsafe`
/// loads (syntax-check passes) and fails the task when it is used, with
/// Ansible's "untrusted template or expression"; `ignore_errors` applies.
#[test]
fn unsafe_when_is_refused_at_use_not_at_load() {
    let lab = Lab::new(1);
    lab.write(
        "unsafe_when.yml",
        r#"
- hosts: host1
  gather_facts: false
  tasks:
    - name: never evaluated
      copy:
        dest: "@OUT@/ran"
        content: x
      when: !unsafe 1 == 1
      ignore_errors: true
      register: result
    - copy:
        dest: "@OUT@/result.json"
        content: "{{ {'failed': result is failed, 'msg': result.msg} | to_json }}"
"#,
    );
    let (code, out, err) = lab.run("unsafe_when.yml", &["--syntax-check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (code, out, err) = lab.run("unsafe_when.yml", &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!lab.path("out/ran").exists(), "{out}");
    let got: serde_json::Value = serde_json::from_str(&lab.read("out/result.json")).unwrap();
    assert_eq!(got["failed"], true, "{got}");
    let msg = got["msg"].as_str().unwrap();
    assert!(msg.contains("untrusted template or expression"), "{msg}");
    assert!(msg.contains("unsafe_when.yml:9:"), "where it is: {msg}");
}

/// adhoc's fact-cache part: `rigger adhoc HOST -m setup` fills the jsonfile
/// cache, a later ad-hoc command sees the facts, and `--flush-cache`
/// empties it.
#[test]
fn adhoc_fills_reads_and_flushes_the_jsonfile_fact_cache() {
    let lab = Lab::new(1);
    let adhoc = |args: &[&str]| {
        let mut cmd = std::process::Command::new(crate::support::rigger_bin());
        cmd.arg("adhoc")
            .arg("host1")
            .arg("-i")
            .arg(lab.hosts.inventory())
            .arg("--known-hosts")
            .arg(lab.hosts.known_hosts())
            .args(args)
            .env("ANSIBLE_CACHE_PLUGIN", "jsonfile")
            .env("ANSIBLE_CACHE_PLUGIN_CONNECTION", lab.path("cache"))
            .current_dir(lab.dir.path());
        let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
        assert_eq!(code, 0, "{args:?}\n{out}\n{err}");
        out
    };
    let out = adhoc(&[
        "-m",
        "assert",
        "-a",
        r#"{"that": "ansible_facts.hostname is not defined"}"#,
    ]);
    assert!(out.contains("SUCCESS"), "{out}");
    adhoc(&["-m", "setup"]);
    assert!(
        lab.path("cache/ansible_factshost1").exists(),
        "the default prefix is ansible_facts"
    );
    let out = adhoc(&["-m", "assert", "-a", r#"{"that": "ansible_facts.hostname is defined"}"#]);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = adhoc(&["--flush-cache", "-m", "debug", "-a", "msg={{ ansible_facts }}"]);
    assert!(out.contains("\"msg\": {}"), "{out}");
}
