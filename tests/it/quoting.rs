//! Shell injection through module arguments (issue #18, item 6).
//!
//! Table-driven over the module docs, not over a hand-picked list: every
//! module of rigger's registry that runs on the host, every option whose type
//! can carry a string (`str`, `path`, `raw`, `list`, `dict`), is run on a real
//! sshd test host with that option set to a payload that would create a
//! marker file `/tmp/PWNED-<n>` if any part of it ran as shell code. One
//! overlay-root host per payload (so packages, users, `/etc` changes vanish
//! with the host); each host runs the same playbook of one task per
//! (module, option) with `ignore_errors`, its payload coming from a host
//! variable, once for real and once with `--check`. A module may fail or
//! succeed; it must never run the payload.
//!
//! Besides the five payloads of the issue (`'`, `$(...)`, backticks, `;`, a
//! newline) the table has blank-free ones (`${IFS}`), one that closes a
//! surrounding pair of single quotes and one with a leading `-`: on the old
//! code only these found the `git` remote/refspec, `script` creates/removes
//! and `git` `--upload-pack` injections.
//!
//! What is not fed payloads is listed below with the reason, so the list is
//! visible and reviewed: options that are shell code by design (documented
//! as such in the module's option table) and modules that need a daemon or
//! a device these hosts do not have, or that would change the machine.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rigger::modules::{registry::registry, OptKind};
use serde_json::{json, Map, Value};

use crate::support::{rigger_bin, rigger_cmd, TestHosts};

/// The payloads, one per test host. `NNN` becomes the task's number, so a
/// marker names the (module, option) that ran it; the host names the payload.
const PAYLOADS: &[&str] = &[
    "'",
    "$(touch /tmp/PWNED-NNN)",
    "`touch /tmp/PWNED-NNN`",
    "; touch /tmp/PWNED-NNN",
    "\ntouch /tmp/PWNED-NNN",
    // Without blanks: gets through values where spaces are escaped (or
    // refused, as in git's remote and ref names).
    "$(touch${IFS}/tmp/PWNED-NNN)",
    ";touch${IFS}/tmp/PWNED-NNN;",
    // Closes a surrounding pair of single quotes, as in `'...{value}...'`.
    "'$(touch${IFS}/tmp/PWNED-NNN)'",
    // A leading dash: an option where a value was expected (git runs
    // `--upload-pack` through the shell).
    "--upload-pack=touch${IFS}/tmp/PWNED-NNN;:",
];

/// Modules not run here, and why.
const SKIPPED_MODULES: &[(&str, &str)] = &[
    (
        "reboot",
        "reboots the host (here: the test machine); its command options are shell code by design",
    ),
    (
        "network_interface",
        "changes the network of the machine: these test hosts share its network namespace",
    ),
    ("filesystem", "needs a block device (storage)"),
    ("parted", "needs a block device (storage)"),
    ("lvg", "needs a block device and LVM (storage)"),
    ("lvol", "needs an LVM volume group (storage)"),
    ("zfs", "needs the zfs-fuse daemon (storage)"),
    ("zpool", "needs the zfs-fuse daemon (storage)"),
    ("iscsi_target", "needs the tgtd daemon (storage)"),
    ("nfs_export", "needs nfs-ganesha and rpcbind (storage)"),
    ("virt_domain", "needs libvirtd"),
    ("virt_info", "needs libvirtd"),
    ("virt_network", "needs libvirtd"),
    ("virt_pool", "needs libvirtd"),
    ("virt_volume", "needs libvirtd"),
];

/// Options whose value is, by design, the command that runs (each says
/// "by design" in its module's doc).
const SHELL_BY_DESIGN: &[(&str, &str, &str)] = &[
    ("shell", "cmd", "the shell command line to run"),
    (
        "script",
        "executable",
        "the interpreter command (with its options) that runs the script",
    ),
    (
        "cron",
        "job",
        "the shell command cron runs (rigger only writes it into the crontab)",
    ),
    (
        "git",
        "ssh_opts",
        "put into GIT_SSH_COMMAND, which git runs through the shell",
    ),
    (
        "reboot",
        "test_command",
        "a command run as given (the module is skipped anyway)",
    ),
    (
        "reboot",
        "reboot_command",
        "a command run as given (the module is skipped anyway)",
    ),
    (
        "reboot",
        "boot_time_command",
        "a command run as given (the module is skipped anyway)",
    ),
    (
        "nfs_export",
        "reload_command",
        "a command run as given (the module is skipped anyway)",
    ),
];

/// How an option's value is built from the payload where the bare payload
/// would be refused before reaching the host (`P` is the payload).
const VALUE_FORMATS: &[(&str, &str, &str)] = &[
    // A command line by design (split into words, no shell): it runs the
    // program it names, so the payload comes after a harmless one and must
    // reach it as plain arguments. `validate` must also contain `%s`.
    ("command", "cmd", "true P"),
    ("*", "validate", "true P %s"),
    // The script's path comes first; the payload is an argument.
    ("script", "cmd", "SCRIPT P"),
];

/// Harmless valid values for each module's other options, so that the
/// payload gets as far into the module as it can (`SCRIPT`, `TEMPLATE` and
/// `LOCAL` are replaced by controller-side paths).
fn base_args(module: &str) -> Value {
    match module {
        "apt" | "dnf" | "yum" | "package" => json!({"name": "rigq-no-such-package"}),
        "archive" => json!({"path": ["/srv/rigq/arch-src"], "dest": "/srv/rigq/out.tgz"}),
        "assemble" => json!({"src": "/srv/rigq/frags", "dest": "/srv/rigq/assembled", "remote_src": true}),
        "authorized_key" => json!({"user": "rigq", "key": KEY, "path": "/srv/rigq/authorized_keys"}),
        "blockinfile" => json!({"path": "/srv/rigq/bif", "block": "x", "create": true}),
        "cloud_init_seed" => json!({"path": "/srv/rigq/seed.iso", "hostname": "rigq", "instance_id": "rigq-1"}),
        "command" => json!({"cmd": "true"}),
        "copy" => json!({"content": "x\n", "dest": "/srv/rigq/copied"}),
        "cron" => json!({"name": "rigq", "job": "true", "cron_file": "/srv/rigq/cronfile", "user": "root"}),
        "fetch" => json!({"src": "/srv/rigq/file", "dest": "LOCAL/fetched/"}),
        "file" => json!({"path": "/srv/rigq/touched", "state": "touch"}),
        "find" => json!({"paths": ["/srv/rigq/dir"]}),
        "get_url" => json!({"url": "http://127.0.0.1:9/x", "dest": "/srv/rigq/dl", "timeout": 2}),
        "git" => json!({"repo": "file:///srv/rigq/src", "dest": "/srv/rigq/checkout"}),
        "group" => json!({"name": "rigqgrp"}),
        "hostname" => json!({"name": "rigq-host"}),
        "known_hosts" => {
            json!({"name": "rigq.example", "key": format!("rigq.example {KEY}"), "path": "/srv/rigq/known_hosts"})
        }
        "lineinfile" => json!({"path": "/srv/rigq/lif", "line": "x", "create": true}),
        "modprobe" => json!({"name": "rigq_no_such_module"}),
        "mount" => {
            json!({"path": "/srv/rigq/mnt", "src": "tmpfs", "fstype": "tmpfs", "state": "mounted", "fstab": "/srv/rigq/fstab"})
        }
        "raw" => json!({"_raw_params": "true"}),
        "replace" => json!({"path": "/srv/rigq/file", "regexp": "a", "replace": "b"}),
        "script" => json!({"cmd": "SCRIPT"}),
        "service" | "sysvinit" | "systemd_service" => json!({"name": "rigq-svc", "state": "started"}),
        "shell" => json!({"cmd": "true"}),
        "slurp" => json!({"src": "/srv/rigq/file"}),
        "stat" => json!({"path": "/srv/rigq/file"}),
        "sysctl" => json!({"name": "kernel.domainname", "value": "rigq", "sysctl_file": "/srv/rigq/sysctl.conf"}),
        "tempfile" => json!({"path": "/srv/rigq/dir"}),
        "template" => json!({"src": "TEMPLATE", "dest": "/srv/rigq/templated"}),
        "unarchive" => json!({"src": "/srv/rigq/arch.tgz", "dest": "/srv/rigq/unarch", "remote_src": true}),
        "uri" => json!({"url": "http://127.0.0.1:9/", "timeout": 2}),
        "user" => json!({"name": "rigquser"}),
        "virt_install_media" => json!({"iso": "/srv/rigq/none.iso", "dest": "/srv/rigq/media"}),
        "wait_for" => json!({"path": "/srv/rigq/file", "timeout": 2}),
        _ => json!({}),
    }
}

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOCpk+vL+UySbXs/h/HZjs7IMwmnqVGfnsCGF5IFlDdV rigq";

/// What each host holds before the run: the files, repository, user and
/// init script the base arguments refer to.
const HOST_SETUP: &str = r#"set -e
mkdir -p /srv/rigq/dir /srv/rigq/frags /srv/rigq/arch-src /srv/rigq/unarch /srv/rigq/mnt
echo a > /srv/rigq/file; echo a > /srv/rigq/frags/1; echo x > /srv/rigq/arch-src/f
tar -czf /srv/rigq/arch.tgz -C /srv/rigq arch-src
git init -q /srv/rigq/src
git -C /srv/rigq/src -c user.name=t -c user.email=t@example.com commit -q --allow-empty -m init
git clone -q file:///srv/rigq/src /srv/rigq/checkout
printf '#!/bin/sh\ncase "$1" in status) exit 3;; *) exit 0;; esac\n' > /etc/init.d/rigq-svc
chmod 755 /etc/init.d/rigq-svc
id rigq >/dev/null 2>&1 || useradd -m rigq
rm -f /tmp/PWNED-*
"#;

/// One task of the playbook: which module and option it feeds.
struct Case {
    module: &'static str,
    option: &'static str,
}

fn is_shell_by_design(module: &str, option: &str) -> bool {
    SHELL_BY_DESIGN.iter().any(|(m, o, _)| *m == module && *o == option)
}

fn value_format(module: &str, option: &str) -> &'static str {
    VALUE_FORMATS
        .iter()
        .find(|(m, o, _)| (*m == module || *m == "*") && *o == option)
        .map(|(_, _, f)| *f)
        .unwrap_or("P")
}

/// Give every required option the base arguments lack a harmless value
/// from the doc (its first choice, or a value of its type).
fn fill_required(doc: &rigger::modules::ModuleDoc, args: &mut Value) {
    let Value::Object(map) = args else { return };
    for opt in doc.options.iter().filter(|o| o.required) {
        if map.contains_key(opt.name) || opt.aliases.iter().any(|a| map.contains_key(*a)) {
            continue;
        }
        let v = match (opt.choices.first(), opt.kind) {
            (Some(c), _) => json!(c),
            (None, OptKind::Path) => json!(format!("/srv/rigq/{}", opt.name)),
            (None, OptKind::List) => json!(["rigq"]),
            (None, OptKind::Bool) => json!(false),
            (None, OptKind::Int | OptKind::Float) => json!(1),
            (None, OptKind::Dict) => json!({}),
            (None, _) => json!("rigq"),
        };
        map.insert(opt.name.to_string(), v);
    }
}

/// Replace the controller-side placeholders in base arguments.
fn localize(v: &mut Value, local: &Path) {
    match v {
        Value::String(s) => {
            *s = s
                .replace("SCRIPT", &local.join("script.sh").display().to_string())
                .replace("TEMPLATE", &local.join("tpl.j2").display().to_string())
                .replace("LOCAL", &local.display().to_string());
        }
        Value::Array(a) => a.iter_mut().for_each(|x| localize(x, local)),
        Value::Object(m) => m.values_mut().for_each(|x| localize(x, local)),
        _ => {}
    }
}

/// The lists name real modules and options (so they cannot rot unseen), and
/// every option left out as shell code says so in its module's doc.
#[test]
fn skip_lists_name_real_modules_and_shell_options_are_documented() {
    let reg = registry();
    for (m, why) in SKIPPED_MODULES {
        assert!(reg.get(m).is_some(), "SKIPPED_MODULES names unknown module {m} ({why})");
    }
    for (m, o, why) in SHELL_BY_DESIGN {
        let doc = reg
            .get(m)
            .unwrap_or_else(|| panic!("SHELL_BY_DESIGN names unknown module {m}"))
            .doc();
        let opt = doc.options.iter().find(|x| x.name == *o);
        let opt = opt.unwrap_or_else(|| panic!("SHELL_BY_DESIGN names unknown option {m}.{o} ({why})"));
        assert!(
            opt.description.contains("by design"),
            "{m}.{o} is a command by design, but its doc does not say so: {}",
            opt.description
        );
    }
}

#[test]
fn no_module_option_runs_shell_code_from_its_value() {
    let reg = registry();
    let hosts = TestHosts::with_overlay_root(PAYLOADS.len());
    let local = hosts.dir().join("controller");
    fs::create_dir_all(local.join("fetched")).unwrap();
    fs::write(local.join("script.sh"), "#!/bin/sh\necho script ran\n").unwrap();
    fs::write(local.join("tpl.j2"), "hello {{ inventory_hostname }}\n").unwrap();
    for i in 0..hosts.len() {
        let out = hosts.ssh(i, HOST_SETUP);
        assert!(out.status.success(), "host setup failed on host {i}: {out:?}");
    }

    // The playbook: one task per (module, string option), in doc order.
    let mut cases = Vec::new();
    let mut tasks = vec![json!({"name": "first", "command": "touch /tmp/RIGQ-FIRST"})];
    let mut covered = Vec::new();
    for name in reg.names() {
        let Some(m) = reg.get(name) else { continue };
        let doc = m.doc();
        if doc.controller_only || SKIPPED_MODULES.iter().any(|(s, _)| s == name) {
            continue;
        }
        covered.push(*name);
        for opt in doc.options {
            let stringy = matches!(
                opt.kind,
                OptKind::Str | OptKind::Path | OptKind::Raw | OptKind::List | OptKind::Dict
            );
            if !stringy || is_shell_by_design(name, opt.name) {
                continue;
            }
            let n = cases.len();
            let fmt = value_format(name, opt.name);
            let mut args = base_args(name);
            fill_required(doc, &mut args);
            localize(&mut args, &local);
            let (pre, post) = fmt.split_once('P').unwrap_or(("", ""));
            let mut pre = Value::String(pre.to_string());
            localize(&mut pre, &local);
            let payload = format!(
                "{}{{{{ payloads[inventory_hostname] | replace('NNN', '{n}') }}}}{post}",
                pre.as_str().unwrap_or_default()
            );
            let value = match opt.kind {
                OptKind::List => json!([payload]),
                OptKind::Dict => json!({ "rigq": payload }),
                _ => json!(payload),
            };
            let Value::Object(map) = &mut args else { unreachable!() };
            map.insert(opt.name.to_string(), value);
            let mut task = Map::new();
            task.insert("name".into(), json!(format!("{n}: {name}.{}", opt.name)));
            task.insert((*name).to_string(), args);
            task.insert("ignore_errors".into(), json!(true));
            tasks.push(Value::Object(task));
            cases.push(Case {
                module: name,
                option: opt.name,
            });
        }
    }
    tasks.push(json!({"name": "last", "command": "touch /tmp/RIGQ-LAST"}));
    // Every module that can run on a host is fed payloads (all but the listed skips).
    assert!(covered.len() >= 40, "too few modules covered: {covered:?}");
    for must in [
        "git", "script", "command", "shell", "copy", "file", "user", "service", "cron", "uri",
    ] {
        assert!(covered.contains(&must), "{must} is not covered");
    }
    let task_count = tasks.len();

    let payloads: BTreeMap<String, &str> = (0..hosts.len())
        .map(|i| (hosts.name(i).to_string(), PAYLOADS[i]))
        .collect();
    let playbook = json!([{
        "hosts": "all",
        "gather_facts": false,
        "vars": { "payloads": payloads },
        "tasks": tasks,
    }]);
    let pb = hosts.dir().join("quoting.yml");
    fs::write(&pb, serde_json::to_string_pretty(&playbook).unwrap()).unwrap();

    // A real run, then a check-mode run (modules query with other scripts there).
    let mut logs = Vec::new();
    for mode in ["run", "check mode"] {
        let mut cmd = Command::new(rigger_bin());
        cmd.current_dir(&local)
            .arg("run")
            .arg("-i")
            .arg(hosts.inventory())
            .arg("--known-hosts")
            .arg(hosts.known_hosts())
            .arg(&pb);
        if mode == "check mode" {
            cmd.arg("--check");
        }
        let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(600));
        let all = format!("{out}\n{err}");
        // Every host got to the end, and none became unreachable: a payload
        // must not break the connection's shell either.
        let recaps: Vec<&str> = all.lines().filter(|l| l.contains("unreachable=")).collect();
        assert_eq!(
            recaps.len(),
            hosts.len(),
            "{mode}: a recap line per host (exit {code}):\n{all}"
        );
        for line in &recaps {
            assert!(
                line.contains("unreachable=0"),
                "{mode}: a host became unreachable:\n{line}\n{all}"
            );
        }
        if mode == "run" {
            for i in 0..hosts.len() {
                let tmp = hosts.tmp_dir(i).expect("overlay-root hosts have their own /tmp");
                for marker in ["RIGQ-FIRST", "RIGQ-LAST"] {
                    assert!(
                        tmp.join(marker).exists(),
                        "host {} did not run the task `{marker}` (rigger exit {code}):\n{all}",
                        hosts.name(i)
                    );
                }
            }
        }
        logs.push(format!("--- {mode}: exit {code}\n{all}"));
    }

    let mut ran = Vec::new();
    for (i, payload) in PAYLOADS.iter().enumerate() {
        let tmp = hosts.tmp_dir(i).expect("overlay-root hosts have their own /tmp");
        let Ok(entries) = fs::read_dir(&tmp) else { continue };
        for e in entries.flatten() {
            let f = e.file_name().to_string_lossy().into_owned();
            if let Some(n) = f.strip_prefix("PWNED-") {
                let case = n.parse::<usize>().ok().and_then(|n| cases.get(n));
                let what = case.map_or_else(|| format!("unknown task {n}"), |c| format!("{}.{}", c.module, c.option));
                ran.push(format!("{what} ran the payload {payload:?}"));
            }
        }
    }
    ran.sort();
    let logs = logs.join("\n");
    assert!(
        ran.is_empty(),
        "shell injection: {} module options ran their value as shell code:\n  {}\n({task_count} tasks)\n{}",
        ran.len(),
        ran.join("\n  "),
        logs.lines()
            .filter(|l| l.contains("PWNED") || l.starts_with("---") || l.contains("ok="))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The names of a task's `environment:` become shell syntax (`NAME=value;
/// export NAME`) in front of every command: a name that is not a shell
/// variable name is refused, never run.
#[test]
fn environment_names_are_never_run_as_shell_code() {
    let hosts = TestHosts::with_opts(1, crate::support::HostOpts { isolated_root: true });
    let playbook = json!([{
        "hosts": "all",
        "gather_facts": false,
        "tasks": [
            {
                "name": "bad name",
                "command": "true",
                "environment": { "X; touch /tmp/PWNED-ENV1 #": "1" },
                "ignore_errors": true,
            },
            {
                "name": "bad name, no blanks",
                "command": "true",
                "environment": { "X=$(touch${IFS}/tmp/PWNED-ENV2)": "1" },
                "ignore_errors": true,
            },
            {
                "name": "values are data",
                "shell": "printf '%s' \"$RIGQ_V\" > /tmp/RIGQ-ENV-VALUE",
                "environment": { "RIGQ_V": "'$(touch /tmp/PWNED-ENV3)'\n;`x`" },
            },
        ],
    }]);
    let pb = hosts.dir().join("env.yml");
    fs::write(&pb, serde_json::to_string_pretty(&playbook).unwrap()).unwrap();
    let mut cmd = Command::new(rigger_bin());
    cmd.arg("run")
        .arg("-i")
        .arg(hosts.inventory())
        .arg("--known-hosts")
        .arg(hosts.known_hosts())
        .arg(&pb);
    let (code, out, err) = rigger_cmd(cmd, Duration::from_secs(120));
    let all = format!("{out}\n{err}");
    let tmp = hosts.tmp_dir(0).expect("isolated hosts have their own /tmp");
    let pwned: Vec<String> = fs::read_dir(&tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|f| f.starts_with("PWNED-"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        pwned.is_empty(),
        "environment names ran as shell code: {pwned:?}\n{all}"
    );
    assert_eq!(code, 0, "{all}");
    // Both bad names fail the task with the reason (each failure is shown
    // twice: the `[ERROR]` summary and the result).
    for name in ["X; touch /tmp/PWNED-ENV1 #", "X=$(touch${IFS}/tmp/PWNED-ENV2)"] {
        assert!(
            all.contains(&format!(
                "environment variable name \"{name}\" is not valid: use letters, digits and `_`"
            )),
            "{name}: {all}"
        );
    }
    assert_eq!(
        fs::read_to_string(tmp.join("RIGQ-ENV-VALUE")).unwrap_or_default(),
        "'$(touch /tmp/PWNED-ENV3)'\n;`x`"
    );
}
