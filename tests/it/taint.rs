//! Vault taint: a vaulted password (a `group_vars` file made with `rigger
//! vault encrypt`) played through templates (with filters that transform
//! it), `set_fact`, a registered result the host computed from it and
//! failing tasks, without any `no_log`, is found on the target and nowhere
//! else: not in text output at -vvvv with --diff, JSON events, `rigger
//! check`'s report, log and history database, the audit log, or stderr.

use std::fs;

use serde_json::Value;

use crate::support::{rigger, TestHosts};
use crate::vault::{ok, vault};

const PASSWORD: &str = "Vau1t-Secr3t-Pw";

/// The password and what the run computes from it.
fn forbidden() -> Vec<String> {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let upper = PASSWORD.to_uppercase();
    let reversed: String = PASSWORD.chars().rev().collect();
    vec![PASSWORD.to_string(), b64(PASSWORD), b64(&upper), reversed, upper]
}

const PLAYBOOK: &str = r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: write the password to the target
      copy:
        content: "password={{ db_password }}\nencoded={{ db_password | b64encode }}\n"
        dest: "@DIR@/out/{{ inventory_hostname }}.conf"
    - name: derive facts from it
      set_fact:
        shouted: "{{ db_password | upper }}"
        encoded: "{{ db_password | upper | b64encode }}"
        plain_fact: "not-a-secret"
    - name: the host computes from it
      shell: "printf %s '{{ db_password }}' | rev"
      register: reversed
      changed_when: false
      check_mode: false
    - name: show the registered result
      debug: var=reversed
    - name: show the facts
      debug:
        msg: "{{ shouted }} / {{ encoded }} / {{ plain_fact }}"
    - name: show the password itself
      debug: var=db_password
    - name: a failing command line that holds a derived value
      command: /bin/false "{{ encoded }}"
      ignore_errors: true
    - name: a failing task whose message holds one
      fail:
        msg: "cannot use {{ reversed.stdout }}"
      ignore_errors: true
"#;

fn assert_clean(what: &str, text: &str) {
    for secret in forbidden() {
        assert!(!text.contains(&secret), "{what} shows `{secret}`:\n{text}");
    }
}

#[test]
fn a_vaulted_password_and_what_is_computed_from_it_are_found_only_on_the_target() {
    let hosts = TestHosts::new(1);
    let dir = tempfile::Builder::new()
        .prefix("taint-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let d = dir.path();
    fs::create_dir_all(d.join("out")).unwrap();
    fs::create_dir_all(d.join("group_vars")).unwrap();
    fs::write(d.join("pw"), "vault-pass\n").unwrap();
    fs::write(d.join("group_vars/all.yml"), format!("db_password: \"{PASSWORD}\"\n")).unwrap();
    ok(vault(
        d,
        &["encrypt", "--vault-password-file", "pw", "group_vars/all.yml"],
    ));
    let vaulted = fs::read_to_string(d.join("group_vars/all.yml")).unwrap();
    assert!(vaulted.starts_with("$ANSIBLE_VAULT;1.1;AES256"), "{vaulted}");
    let pb = d.join("site.yml");
    fs::write(&pb, PLAYBOOK.replace("@DIR@", &d.display().to_string())).unwrap();
    let (pb, inv, kh) = (
        pb.display().to_string(),
        hosts.inventory().display().to_string(),
        hosts.known_hosts().display().to_string(),
    );
    let pwfile = d.join("pw").display().to_string();
    let audit = d.join("audit.log").display().to_string();
    let db = d.join("check.db").display().to_string();
    let log = d.join("check.log").display().to_string();
    let base = [
        "-i",
        &inv,
        "--known-hosts",
        &kh,
        "--vault-password-file",
        &pwfile,
        "--audit-log",
        &audit,
    ];
    let target = d.join(format!("out/{}.conf", hosts.name(0)));

    // 1. rigger check: report (JSON), log file, history database.
    let mut args = vec![
        "check",
        &pb,
        "--db",
        &db,
        "--log-file",
        &log,
        "--format",
        "json",
        "-vvvv",
    ];
    args.extend(base);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 2, "drift expected\n{out}\n{err}");
    assert_clean("the check report", &out);
    assert_clean("check's stderr", &err);
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let tasks = report["hosts"][0]["tasks"].as_array().expect("tasks").clone();
    let written = tasks
        .iter()
        .find(|t| t["task"] == "write the password to the target")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(written["status"], "drifted", "{report}");
    // The diff is reported, masked.
    assert!(
        written["diff"]
            .to_string()
            .contains("password=********\\nencoded=********"),
        "{report}"
    );
    assert!(!target.exists(), "check mode wrote the target");
    let log_text = fs::read_to_string(&log).unwrap();
    assert!(
        log_text.contains("********"),
        "the masked output is logged:\n{log_text}"
    );
    assert_clean("the check log file", &log_text);
    let db_bytes = fs::read(&db).unwrap();
    assert_clean("the check database", &String::from_utf8_lossy(&db_bytes));

    // 2. rigger run, text at -vvvv with --diff.
    // `--show-secrets` without a terminal is refused, visibly.
    let mut args = vec!["run", &pb, "-vvvv", "--diff", "--show-secrets"];
    args.extend(base);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_clean("rigger run -vvvv --diff", &out);
    assert_clean("rigger run's stderr", &err);
    assert!(err.contains("--show-secrets is ignored"), "{err}");
    // Masked, not dropped: each derived value shows as the mask.
    assert!(out.contains("\"db_password\": \"********\""), "{out}");
    assert!(out.contains("******** / ******** / not-a-secret"), "{out}");
    assert!(out.contains("+password=********"), "the diff, masked:\n{out}");
    assert!(out.contains("cannot use ********"), "{out}");
    assert!(out.contains("/bin/false ********"), "{out}");
    // The target holds the real values.
    let on_target = fs::read_to_string(&target).unwrap();
    assert!(on_target.contains(&format!("password={PASSWORD}\n")), "{on_target}");
    fs::remove_file(&target).unwrap();

    // 3. rigger run --output json: every event.
    let mut args = vec!["run", &pb, "--output", "json", "--diff"];
    args.extend(base);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_clean("JSON events", &out);
    assert_clean("stderr of the JSON run", &err);
    let results = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "host_result")
        .count();
    assert!(results >= 8, "{out}");
    assert!(fs::read_to_string(&target).unwrap().contains(PASSWORD));

    // 4. On a terminal, `--show-secrets` shows debug output as it is; the
    // audit log of that run stays masked.
    let cmd = format!(
        "{} run {pb} -i {inv} --known-hosts {kh} --vault-password-file {pwfile} --audit-log {audit} --show-secrets",
        crate::support::rigger_bin().display()
    );
    let tty = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .unwrap();
    let tty_out = String::from_utf8_lossy(&tty.stdout);
    assert!(tty.status.success(), "{tty_out}");
    assert!(
        tty_out.contains(&format!("\"db_password\": \"{PASSWORD}\"")),
        "{tty_out}"
    );

    // 5. The audit log of all four commands.
    let audit_text = fs::read_to_string(&audit).unwrap();
    assert!(audit_text.lines().count() > 10, "{audit_text}");
    assert_clean("the audit log", &audit_text);

    // Without the vault password the data is not readable at all (the
    // test would pass for the wrong reason if the file were plain).
    let (code, out, err) = rigger(&["run", &pb, "-i", &inv, "--known-hosts", &kh]);
    assert_ne!(code, 0, "{out}\n{err}");
}

/// Vault values from every place an inventory holds them: vaulted
/// `group_vars`/`host_vars` files beside an INI and a YAML inventory, a
/// `!vault` value inside a YAML inventory, and an INI inventory encrypted
/// whole (an INI file cannot hold a `!vault` value). Each reaches the
/// target and is masked at -vvvv with --diff, in JSON events and in
/// `rigger check`'s report.
#[test]
fn vault_values_of_ini_and_yaml_inventories_are_masked() {
    let hosts = TestHosts::new(1);
    let dir = tempfile::Builder::new()
        .prefix("taint-inv-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let d = dir.path();
    let secrets = [
        ("ini_group", "IniGroup-Vau1t-Secret"),
        ("ini_host", "IniHost-Vau1t-Secret"),
        ("ini_whole", "IniWhole-Vau1t-Secret"),
        ("yaml_group", "YamlGroup-Vau1t-Secret"),
        ("yaml_inline", "YamlInline-Vau1t-Secret"),
    ];
    let clean = |what: &str, text: &str| {
        for (_, s) in secrets {
            assert!(!text.contains(s), "{what} shows `{s}`:\n{text}");
        }
    };
    fs::write(d.join("pw"), "inventory-pass\n").unwrap();
    let encrypt = |file: &str| {
        ok(vault(d, &["encrypt", "--vault-password-file", "pw", file]));
        let text = fs::read_to_string(d.join(file)).unwrap();
        assert!(text.starts_with("$ANSIBLE_VAULT;1.1;AES256"), "{file}: {text}");
    };
    let host_line = fs::read_to_string(hosts.inventory())
        .unwrap()
        .lines()
        .find(|l| l.starts_with("host1 "))
        .unwrap()
        .to_string();
    // An INI inventory with vaulted group_vars and host_vars beside it.
    for sub in ["ini/group_vars", "ini/host_vars", "whole", "yaml/group_vars", "out"] {
        fs::create_dir_all(d.join(sub)).unwrap();
    }
    fs::write(d.join("ini/hosts"), format!("[web]\n{host_line}\n")).unwrap();
    fs::write(
        d.join("ini/group_vars/web.yml"),
        format!("ini_group: {}\n", secrets[0].1),
    )
    .unwrap();
    fs::write(
        d.join("ini/host_vars/host1.yml"),
        format!("ini_host: {}\n", secrets[1].1),
    )
    .unwrap();
    encrypt("ini/group_vars/web.yml");
    encrypt("ini/host_vars/host1.yml");
    // An INI inventory encrypted whole.
    fs::write(
        d.join("whole/hosts"),
        format!("{host_line}\n[all:vars]\nini_whole={}\n", secrets[2].1),
    )
    .unwrap();
    encrypt("whole/hosts");
    // A YAML inventory with a `!vault` value and vaulted group_vars.
    let inline = ok(vault(
        d,
        &[
            "encrypt_string",
            "--vault-password-file",
            "pw",
            "--name",
            "x",
            secrets[4].1,
        ],
    ));
    let inline: Vec<String> = inline
        .lines()
        .skip(1)
        .map(|l| format!("            {}", l.trim()))
        .collect();
    let yaml_host: String = host_line
        .split_whitespace()
        .skip(1)
        .map(|p| p.split_once('=').unwrap())
        .map(|(k, v)| format!("          {k}: {v}\n"))
        .collect();
    fs::write(
        d.join("yaml/hosts.yml"),
        format!(
            "all:\n  children:\n    db:\n      hosts:\n        host1:\n{yaml_host}      vars:\n        yaml_inline: !vault |\n{}\n",
            inline.join("\n")
        ),
    )
    .unwrap();
    fs::write(
        d.join("yaml/group_vars/db.yml"),
        format!("yaml_group: {}\n", secrets[3].1),
    )
    .unwrap();
    encrypt("yaml/group_vars/db.yml");

    let pb = d.join("site.yml");
    let all = secrets
        .iter()
        .map(|(v, _)| format!("{{{{ {v} }}}}"))
        .collect::<Vec<_>>()
        .join("\n");
    fs::write(
        &pb,
        format!(
            r#"
- hosts: all
  gather_facts: false
  tasks:
    - name: write them to the target
      copy:
        content: "{all}\n"
        dest: "{out}/{{{{ inventory_hostname }}}}.conf"
    - name: show them
      debug:
        msg: "{}"
    - name: show one as a variable
      debug: var=yaml_inline
"#,
            secrets
                .iter()
                .map(|(v, _)| format!("{{{{ {v} }}}}"))
                .collect::<Vec<_>>()
                .join(" "),
            all = all.replace('\n', "\\n"),
            out = d.join("out").display()
        ),
    )
    .unwrap();
    let p = |s: &str| d.join(s).display().to_string();
    let (pb, kh, pwfile) = (p("site.yml"), hosts.known_hosts().display().to_string(), p("pw"));
    let (ini, whole, yaml) = (p("ini/hosts"), p("whole/hosts"), p("yaml/hosts.yml"));
    let base = [
        "-i",
        &ini,
        "-i",
        &whole,
        "-i",
        &yaml,
        "--known-hosts",
        &kh,
        "--vault-password-file",
        &pwfile,
    ];
    let target = d.join("out/host1.conf");

    let mut args = vec!["check", &pb, "--format", "json", "-vvvv"];
    args.extend(base);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 2, "drift expected\n{out}\n{err}");
    clean("the check report", &out);
    clean("check's stderr", &err);
    assert!(
        out.contains("********\\n********\\n********\\n********\\n********"),
        "{out}"
    );

    let mut args = vec!["run", &pb, "-vvvv", "--diff"];
    args.extend(base);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    clean("rigger run -vvvv --diff", &out);
    clean("rigger run's stderr", &err);
    assert!(
        out.contains("\"msg\": \"******** ******** ******** ******** ********\""),
        "{out}"
    );
    assert!(out.contains("\"yaml_inline\": \"********\""), "{out}");
    assert!(out.contains("+********"), "the diff, masked:\n{out}");
    let want: String = secrets.iter().map(|(_, s)| format!("{s}\n")).collect();
    assert_eq!(fs::read_to_string(&target).unwrap(), want);
    fs::remove_file(&target).unwrap();

    let mut args = vec!["run", &pb, "--output", "json", "--diff"];
    args.extend(base);
    let (code, out, err) = rigger(&args);
    assert_eq!(code, 0, "{out}\n{err}");
    clean("JSON events", &out);
    clean("stderr of the JSON run", &err);
    assert!(out.contains("******** ******** ******** ******** ********"), "{out}");
    assert_eq!(fs::read_to_string(&target).unwrap(), want);
}
