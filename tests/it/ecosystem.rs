//! Issue #23: how rigger fits an operator's machine: `--version` with the
//! commit, completions and man pages from the clap definitions, settings
//! from rigger.toml / the environment / ansible.cfg with their origins,
//! `rigger init`, and the Debian package.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{rigger, rigger_bin, rigger_cmd, TestHosts};

/// Every variable a setting reads, so that the caller's environment does
/// not leak into a test.
const SETTING_VARS: &[&str] = &[
    "RIGGER_CONFIG",
    "ANSIBLE_CONFIG",
    "RIGGER_INVENTORY",
    "ANSIBLE_INVENTORY",
    "RIGGER_FORKS",
    "ANSIBLE_FORKS",
    "RIGGER_REMOTE_USER",
    "ANSIBLE_REMOTE_USER",
    "RIGGER_PRIVATE_KEY_FILE",
    "ANSIBLE_PRIVATE_KEY_FILE",
    "RIGGER_HOST_KEY_CHECKING",
    "ANSIBLE_HOST_KEY_CHECKING",
    "RIGGER_ROLES_PATH",
    "ANSIBLE_ROLES_PATH",
    "RIGGER_COLLECTIONS_PATH",
    "ANSIBLE_COLLECTIONS_PATH",
    "ANSIBLE_COLLECTIONS_PATHS",
    "RIGGER_VAULT_PASSWORD_FILE",
    "ANSIBLE_VAULT_PASSWORD_FILE",
    "RIGGER_TIMEOUT",
    "ANSIBLE_TIMEOUT",
    "RIGGER_KNOWN_HOSTS",
    "XDG_CONFIG_HOME",
];

/// rigger in `dir`, with `home` as HOME, no setting variables but `env`.
fn rigger_in(dir: &Path, home: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(rigger_bin());
    cmd.args(args).current_dir(dir).env("HOME", home);
    for v in SETTING_VARS {
        cmd.env_remove(v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    rigger_cmd(cmd, Duration::from_secs(120))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("eco-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
}

#[test]
fn version_names_the_git_commit() {
    let (code, out, err) = rigger(&["--version"]);
    assert_eq!(code, 0, "{err}");
    let git = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let expected = match git {
        Some(c) => format!("rigger {} (commit {c})\n", env!("CARGO_PKG_VERSION")),
        // A tarball without .git.
        None => format!("rigger {} (unknown commit)\n", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(out, expected);
}

#[test]
fn bash_completion_from_the_clap_definitions_completes_commands_and_flags() {
    let work = tempdir();
    let (code, script, err) = rigger(&["completions", "bash"]);
    assert_eq!(code, 0, "{err}");
    let file = work.path().join("rigger.bash");
    fs::write(&file, &script).unwrap();
    // Load it in a real bash and ask it what it completes.
    let complete = |words: &str, cword: usize| -> String {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {}; complete -p rigger; COMP_WORDS=({words}); COMP_CWORD={cword}; COMP_LINE='{words}'; COMP_POINT=${{#COMP_LINE}}; _rigger rigger \"${{COMP_WORDS[$COMP_CWORD]}}\" \"${{COMP_WORDS[$COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                file.display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = complete("rigger co", 1);
    assert!(
        top.contains("-F _rigger") && top.trim_end().lines().next().unwrap_or_default().ends_with(" rigger"),
        "{top}"
    );
    let words: Vec<&str> = top.lines().skip(1).collect();
    assert!(words.contains(&"completions") && words.contains(&"config"), "{top}");
    let flags = complete("rigger run --for", 2);
    assert!(flags.lines().any(|l| l == "--forks"), "{flags}");

    for shell in ["zsh", "fish"] {
        let (code, script, err) = rigger(&["completions", shell]);
        assert_eq!(code, 0, "{err}");
        assert!(
            script.contains("rigger") && script.contains("completions"),
            "{shell}: {script}"
        );
    }
    let (code, _, err) = rigger(&["completions", "tcsh"]);
    assert_eq!(code, 5, "{err}");
}

#[test]
fn man_pages_from_the_clap_definitions_render_with_man() {
    let work = tempdir();
    let (code, page, err) = rigger(&["man"]);
    assert_eq!(code, 0, "{err}");
    let file = work.path().join("rigger.1");
    fs::write(&file, &page).unwrap();
    let render = |f: &Path| -> String {
        let out = Command::new("man")
            .arg("-l")
            .arg(f)
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let text = render(&file);
    for want in [
        "NAME",
        "SYNOPSIS",
        "Ansible",
        "completions",
        "config",
        "init",
        env!("CARGO_PKG_VERSION"),
    ] {
        assert!(text.contains(want), "`{want}` not in:\n{text}");
    }
    let dir = work.path().join("man1");
    let (code, _, err) = rigger(&["man", "--dir", &dir.display().to_string()]);
    assert_eq!(code, 0, "{err}");
    let run = render(&dir.join("rigger-run.1"));
    assert!(run.contains("--forks") && run.contains("--syntax-check"), "{run}");
    assert!(dir.join("rigger-config-dump.1").is_file() || dir.join("rigger-config.1").is_file());
}

fn dump(dir: &Path, home: &Path, env: &[(&str, &str)]) -> Value {
    let (code, out, err) = rigger_in(dir, home, env, &["config", "dump", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn setting<'a>(d: &'a Value, key: &str) -> (&'a Value, &'a str) {
    let s = &d["settings"][key];
    (&s["value"], s["origin"].as_str().unwrap_or_default())
}

fn graph(dir: &Path, home: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let mut a = vec!["inventory", "--graph"];
    a.extend_from_slice(args);
    let (code, out, err) = rigger_in(dir, home, env, &a);
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// The precedence of every layer, each value with its origin: the command
/// line, then the environment (RIGGER_* over ANSIBLE_*), rigger.toml,
/// ansible.cfg, the default; relative paths from the file that names them.
#[test]
fn settings_precedence_and_origins() {
    let work = tempdir();
    let p = work.path().join("project");
    let home = work.path().join("home");
    fs::create_dir_all(&p).unwrap();
    fs::create_dir_all(&home).unwrap();
    for name in ["cfg", "toml", "env", "cli"] {
        fs::write(p.join(format!("{name}_hosts")), format!("[g]\n{name}host\n")).unwrap();
    }
    let pd = fs::canonicalize(&p).unwrap();
    let at = |f: &str| pd.join(f).display().to_string();

    // Nothing configured: the defaults.
    let d = dump(&p, &home, &[]);
    assert_eq!(setting(&d, "forks"), (&Value::from(50), "default"));
    assert_eq!(setting(&d, "host_key_checking"), (&Value::from("strict"), "default"));
    assert_eq!(setting(&d, "timeout"), (&Value::from(10), "default"));
    assert_eq!(setting(&d, "remote_user"), (&Value::Null, "default"));
    assert_eq!(d["rigger_toml"], Value::Null);

    // An Ansible project's ansible.cfg.
    fs::write(
        p.join("ansible.cfg"),
        "[defaults]\n# an Ansible project\ninventory = cfg_hosts\nforks = 7\nremote_user = cfguser\nhost_key_checking = False\n\
         timeout = 33\nroles_path = cfgroles:/opt/roles\nprivate_key_file = keys/id\nvault_password_file = ~/vp\n\
         collections_path = colls\n",
    )
    .unwrap();
    fs::write(home.join("vp"), "vault password\n").unwrap();
    let cfg = |line: u32| format!("{}:{line}", at("ansible.cfg"));
    let d = dump(&p, &home, &[]);
    assert_eq!(d["ansible_cfg"], Value::from(at("ansible.cfg")));
    assert_eq!(
        setting(&d, "inventory"),
        (&Value::from(vec![at("cfg_hosts")]), cfg(3).as_str())
    );
    assert_eq!(setting(&d, "forks"), (&Value::from(7), cfg(4).as_str()));
    assert_eq!(setting(&d, "remote_user"), (&Value::from("cfguser"), cfg(5).as_str()));
    assert_eq!(setting(&d, "host_key_checking"), (&Value::from("off"), cfg(6).as_str()));
    assert_eq!(setting(&d, "timeout"), (&Value::from(33), cfg(7).as_str()));
    assert_eq!(
        setting(&d, "roles_path"),
        (
            &Value::from(vec![at("cfgroles"), "/opt/roles".to_string()]),
            cfg(8).as_str()
        )
    );
    assert_eq!(
        setting(&d, "private_key_file"),
        (&Value::from(at("keys/id")), cfg(9).as_str())
    );
    let vp = home.join("vp").display().to_string();
    assert_eq!(setting(&d, "vault_password_file"), (&Value::from(vp), cfg(10).as_str()));
    assert_eq!(
        setting(&d, "collections_path"),
        (&Value::from(vec![at("colls")]), cfg(11).as_str())
    );
    assert!(graph(&p, &home, &[], &[]).contains("cfghost"));

    // rigger.toml over ansible.cfg, key by key.
    fs::write(
        p.join("rigger.toml"),
        "[defaults]\nforks = 8\ninventory = \"toml_hosts\"\nhost_key_checking = \"accept-new\"\n",
    )
    .unwrap();
    let toml = |line: u32| format!("{}:{line}", at("rigger.toml"));
    let d = dump(&p, &home, &[]);
    assert_eq!(d["rigger_toml"], Value::from(at("rigger.toml")));
    assert_eq!(setting(&d, "forks"), (&Value::from(8), toml(2).as_str()));
    assert_eq!(
        setting(&d, "inventory"),
        (&Value::from(vec![at("toml_hosts")]), toml(3).as_str())
    );
    assert_eq!(
        setting(&d, "host_key_checking"),
        (&Value::from("accept-new"), toml(4).as_str())
    );
    assert_eq!(setting(&d, "remote_user"), (&Value::from("cfguser"), cfg(5).as_str()));
    let g = graph(&p, &home, &[], &[]);
    assert!(g.contains("tomlhost") && !g.contains("cfghost"), "{g}");

    // The environment over rigger.toml; RIGGER_* over ANSIBLE_*.
    let env = [
        ("ANSIBLE_FORKS", "11"),
        ("RIGGER_FORKS", "9"),
        ("ANSIBLE_INVENTORY", "env_hosts"),
        ("ANSIBLE_TIMEOUT", "44"),
    ];
    let d = dump(&p, &home, &env);
    assert_eq!(setting(&d, "forks"), (&Value::from(9), "env RIGGER_FORKS"));
    assert_eq!(setting(&d, "timeout"), (&Value::from(44), "env ANSIBLE_TIMEOUT"));
    assert_eq!(
        setting(&d, "inventory"),
        (&Value::from(vec!["env_hosts"]), "env ANSIBLE_INVENTORY")
    );
    let g = graph(&p, &home, &env, &[]);
    assert!(g.contains("envhost") && !g.contains("tomlhost"), "{g}");

    // The command line over everything.
    let g = graph(&p, &home, &env, &["-i", "cli_hosts"]);
    assert!(g.contains("clihost") && !g.contains("envhost"), "{g}");

    // The text dump names each origin too, and is TOML.
    let (code, out, err) = rigger_in(&p, &home, &env, &["config", "dump"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("forks = 9  # env RIGGER_FORKS"), "{out}");
    assert!(out.contains("timeout = 44  # env ANSIBLE_TIMEOUT"), "{out}");
    assert!(
        out.contains(&format!("remote_user = \"cfguser\"  # {}", cfg(5))),
        "{out}"
    );
    assert!(
        out.contains("precedence: command line > RIGGER_*/ANSIBLE_* environment > rigger.toml > ansible.cfg > default")
    );

    // ~/.config/rigger/rigger.toml when the directory has none.
    fs::remove_file(p.join("rigger.toml")).unwrap();
    fs::create_dir_all(home.join(".config/rigger")).unwrap();
    fs::write(home.join(".config/rigger/rigger.toml"), "[defaults]\nforks = 12\n").unwrap();
    let d = dump(&p, &home, &[]);
    let user_toml = fs::canonicalize(home.join(".config/rigger/rigger.toml")).unwrap();
    assert_eq!(
        setting(&d, "forks"),
        (&Value::from(12), format!("{}:2", user_toml.display()).as_str())
    );
}

/// A typo or a wrong type in rigger.toml, a bad ansible.cfg or environment
/// value: an error naming where, before anything runs.
#[test]
fn bad_settings_are_located_errors() {
    let work = tempdir();
    let p = work.path();
    let home = p.join("home");
    fs::create_dir_all(&home).unwrap();
    fs::write(p.join("site.yml"), "- hosts: all\n  gather_facts: false\n  tasks: []\n").unwrap();
    let toml = fs::canonicalize(p).unwrap().join("rigger.toml");
    let run = |env: &[(&str, &str)]| rigger_in(p, &home, env, &["run", "site.yml", "-i", "localhost,"]);

    fs::write(&toml, "[defaults]\nforks = 5\nforsk = 3\n").unwrap();
    let (code, _, err) = run(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{}:3:1", toml.display())) && err.contains("forsk"),
        "{err}"
    );

    fs::write(&toml, "[defualts]\nforks = 5\n").unwrap();
    let (code, _, err) = run(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{}:1:", toml.display())) && err.contains("defualts"),
        "{err}"
    );

    fs::write(&toml, "[defaults]\n\nforks = \"many\"\n").unwrap();
    let (code, _, err) = run(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "{}:3:1: forks: expected a whole number of at least 1",
            toml.display()
        )),
        "{err}"
    );
    let (code, _, err) = rigger_in(p, &home, &[], &["config", "dump"]);
    assert_eq!(code, 1, "{err}");

    fs::remove_file(&toml).unwrap();
    fs::write(p.join("ansible.cfg"), "[defaults]\nhost_key_checking = maybe\n").unwrap();
    let (code, _, err) = run(&[]);
    assert_eq!(code, 1, "{err}");
    let cfg = fs::canonicalize(p.join("ansible.cfg")).unwrap();
    assert!(
        err.contains(&format!(
            "{}:2:1: host_key_checking: unknown host key checking `maybe`",
            cfg.display()
        )),
        "{err}"
    );
    fs::remove_file(p.join("ansible.cfg")).unwrap();
    let (code, _, err) = run(&[("RIGGER_TIMEOUT", "0")]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("RIGGER_TIMEOUT: expected a whole number of at least 1"),
        "{err}"
    );
    let (code, out, err) = run(&[]);
    assert_eq!(code, 0, "{out}{err}");
}

/// An Ansible project runs unchanged: its ansible.cfg names the inventory,
/// the remote user, the key, host key checking and the roles path; the
/// inventory names only addresses.
#[test]
fn an_ansible_project_runs_with_its_ansible_cfg() {
    let hosts = TestHosts::new(1);
    let work = tempdir();
    let p = work.path().join("proj");
    let home = work.path().join("home");
    fs::create_dir_all(p.join("keys")).unwrap();
    fs::create_dir_all(p.join("playbooks")).unwrap();
    fs::create_dir_all(p.join("shared-roles/hello/tasks")).unwrap();
    fs::create_dir_all(&home).unwrap();
    fs::copy(hosts.client_key(), p.join("keys/id")).unwrap();
    fs::write(
        p.join("ansible.cfg"),
        "[defaults]\ninventory = hosts.ini\nremote_user = root\nprivate_key_file = keys/id\nhost_key_checking = False\nroles_path = shared-roles\ntimeout = 15\n",
    )
    .unwrap();
    fs::write(
        p.join("hosts.ini"),
        format!(
            "[app]\nweb1 ansible_host={} ansible_port={}\n",
            hosts.addr(0),
            hosts.port(0)
        ),
    )
    .unwrap();
    fs::write(
        p.join("playbooks/site.yml"),
        "- hosts: app\n  gather_facts: false\n  roles: [hello]\n",
    )
    .unwrap();
    fs::write(
        p.join("shared-roles/hello/tasks/main.yml"),
        "- name: who\n  command: id -un\n  register: who\n- debug:\n    msg: \"user={{ who.stdout }}\"\n",
    )
    .unwrap();
    let (code, out, err) = rigger_in(&p, &home, &[], &["run", "playbooks/site.yml"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("user=root"), "{out}");
    assert!(out.contains("web1") && out.contains("failed=0"), "{out}");
}

/// `rigger init` lays out a project that checks, runs against a real host
/// once a host is added, and is never written over.
#[test]
fn init_scaffolds_a_project_that_runs() {
    let hosts = TestHosts::new(1);
    let work = tempdir();
    let home = work.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let p = work.path().join("site");
    let ps = p.display().to_string();
    let (code, out, err) = rigger_in(work.path(), &home, &[], &["init", &ps]);
    assert_eq!(code, 0, "{out}{err}");
    for f in [
        "rigger.toml",
        "inventory/hosts.ini",
        "inventory/group_vars/all.yml",
        "playbooks/site.yml",
        "roles/common/tasks/main.yml",
        ".gitignore",
        "watch.yml",
    ] {
        assert!(p.join(f).is_file(), "{f} missing; {out}");
    }
    for d in ["inventory/host_vars", "roles", "modules"] {
        assert!(p.join(d).is_dir(), "{d} missing");
    }

    // Never written over: one existing file stops it before it writes any.
    fs::write(p.join("watch.yml"), "mine\n").unwrap();
    fs::remove_file(p.join(".gitignore")).unwrap();
    let (code, _, err) = rigger_in(work.path(), &home, &[], &["init", &ps]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains(&p.join("watch.yml").display().to_string()), "{err}");
    assert_eq!(fs::read_to_string(p.join("watch.yml")).unwrap(), "mine\n");
    assert!(!p.join(".gitignore").exists());
    fs::remove_file(p.join("watch.yml")).unwrap();
    // In the current directory.
    let (code, _, err) = rigger_in(&p, &home, &[], &["init"]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("rigger.toml"), "{err}");

    let here = |args: &[&str]| rigger_in(&p, &home, &[], args);
    let (code, out, err) = here(&["run", "playbooks/site.yml", "--syntax-check"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = here(&["config", "dump", "--json"]);
    assert_eq!(code, 0, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    let pc = fs::canonicalize(&p).unwrap();
    assert_eq!(
        setting(&d, "inventory").0,
        &Value::from(vec![pc.join("inventory/hosts.ini").display().to_string()])
    );

    // The scaffold's watch configuration is valid as written.
    let second = work.path().join("second");
    let (code, out, err) = rigger_in(work.path(), &home, &[], &["init", &second.display().to_string()]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = rigger_in(&second, &home, &[], &["watch", "-c", "watch.yml", "--check-config"]);
    assert_eq!(code, 0, "{out}{err}");

    // A real host in the scaffold's inventory: the site playbook runs,
    // with the role from roles/ and the greeting from group_vars/all.yml.
    let inv = p.join("inventory/hosts.ini");
    let text = fs::read_to_string(&inv).unwrap().replace(
        "[web]\n",
        &format!(
            "[web]\nweb1 ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={}\n",
            hosts.addr(0),
            hosts.port(0),
            hosts.client_key().display()
        ),
    );
    fs::write(&inv, text).unwrap();
    let kh = hosts.known_hosts().display().to_string();
    let (code, out, err) = here(&["run", "playbooks/site.yml", "--known-hosts", &kh]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Managed by rigger on web1"), "{out}");
    assert!(out.contains("ok=2"), "{out}");
}

/// scripts/deb.sh builds the Debian package (stripped by cargo-deb);
/// installed into a throwaway root by dpkg its rigger runs, its man page
/// renders and its bash completion loads. Slow with a build, so only when
/// RIGGER_TEST_DEB says how: `1` builds the dist profile (fat LTO, ~17 min
/// on 2 cores); a profile name (`quick`: .ci/run after the quickstart)
/// packages that profile's binary, which must be built already.
#[test]
fn debian_package_installs_and_runs() {
    let how = std::env::var("RIGGER_TEST_DEB").unwrap_or_default();
    if how.is_empty() || how == "0" {
        eprintln!("skipped: set RIGGER_TEST_DEB=1 (dist build) or =PROFILE (its built binary) to test the .deb");
        return;
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut pack = Command::new("bash");
    pack.arg(manifest.join("scripts/deb.sh")).current_dir(&manifest);
    if how != "1" {
        pack.args(["--profile", &how, "--no-build"]);
    }
    let t = std::time::Instant::now();
    let out = pack.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let deb = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(deb.is_file(), "{stdout}");
    eprintln!(
        "deb: scripts/deb.sh made {} in {:.1}s",
        deb.display(),
        t.elapsed().as_secs_f64()
    );
    let t = std::time::Instant::now();

    // No maintainer scripts: installing runs nothing as root but dpkg's unpacking.
    let work = tempdir();
    let control = work.path().join("control");
    let ex = Command::new("dpkg-deb")
        .arg("-e")
        .arg(&deb)
        .arg(&control)
        .output()
        .unwrap();
    assert!(ex.status.success(), "{}", String::from_utf8_lossy(&ex.stderr));
    let mut members: Vec<String> = fs::read_dir(&control)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    members.sort();
    assert!(members.contains(&"control".to_string()), "{members:?}");
    for script in ["preinst", "postinst", "prerm", "postrm", "config"] {
        assert!(!members.contains(&script.to_string()), "{script} in {members:?}");
    }

    let info = Command::new("dpkg-deb").arg("-I").arg(&deb).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("Package: rigger"), "{info}");

    // Install into a throwaway root with dpkg itself.
    let root = work.path().join("root");
    for d in ["var/lib/dpkg/updates", "var/lib/dpkg/info", "var/lib/dpkg/triggers"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    let inst = Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args([
            "--force-not-root",
            "--force-depends",
            "--force-script-chrootless",
            "--log=/dev/null",
            "-i",
        ])
        .arg(&deb)
        .output()
        .unwrap();
    assert!(
        inst.status.success(),
        "{}{}",
        String::from_utf8_lossy(&inst.stdout),
        String::from_utf8_lossy(&inst.stderr)
    );
    let bin = root.join("usr/bin/rigger");
    let v = Command::new(&bin).arg("--version").output().unwrap();
    assert!(v.status.success());
    assert!(String::from_utf8_lossy(&v.stdout).starts_with(&format!("rigger {}", env!("CARGO_PKG_VERSION"))));
    // Stripped: no symbol table.
    let nm = Command::new("nm").arg(&bin).output().unwrap();
    assert!(
        String::from_utf8_lossy(&nm.stderr).contains("no symbols"),
        "{}",
        String::from_utf8_lossy(&nm.stderr)
    );
    assert!(
        String::from_utf8_lossy(&v.stdout).contains("commit"),
        "{}",
        String::from_utf8_lossy(&v.stdout)
    );
    eprintln!("deb: dpkg --root installed it in {:.1}s", t.elapsed().as_secs_f64());
    let t = std::time::Instant::now();
    let page = root.join("usr/share/man/man1/rigger.1.gz");
    let man = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    assert!(man.status.success());
    assert!(String::from_utf8_lossy(&man.stdout).contains("SYNOPSIS"));
    assert!(root.join("usr/share/man/man1/rigger-run.1.gz").is_file());
    assert!(root.join("usr/share/bash-completion/completions/rigger").is_file());
    assert!(root.join("usr/share/zsh/vendor-completions/_rigger").is_file());
    assert!(root.join("usr/share/fish/vendor_completions.d/rigger.fish").is_file());
    let status = fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap();
    assert!(
        status.contains("Package: rigger\nStatus: install ok installed"),
        "{status}"
    );

    // The bash completion loads in bash, registers for `rigger` and completes
    // a subcommand (bash-completion calls the function the same way).
    let completion = root.join("usr/share/bash-completion/completions/rigger");
    let script = r#"source "$1" || exit 1
complete -p rigger || exit 1
fn=$(complete -p rigger | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
COMP_WORDS=(rigger qui); COMP_CWORD=1; COMP_LINE="rigger qui"; COMP_POINT=${#COMP_LINE}
"$fn" rigger qui rigger
printf 'reply: %s\n' "${COMPREPLY[@]}""#;
    let bash = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", script, "bash"])
        .arg(&completion)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&bash.stdout);
    assert!(bash.status.success(), "{said}{}", String::from_utf8_lossy(&bash.stderr));
    assert!(
        said.starts_with("complete ") && said.contains(" -F _rigger rigger\n"),
        "{said}"
    );
    assert!(said.contains("reply: quickstart\n"), "{said}");
    eprintln!(
        "deb: --version, man -l, completions checked in {:.1}s",
        t.elapsed().as_secs_f64()
    );
}

/// An apt whose every lock lives under `dir` (a throwaway dpkg database, lists
/// and cache; no sources): the locks a package manager elsewhere would hold,
/// without touching the machine's.
fn throwaway_apt_options(dir: &Path) -> Vec<String> {
    for d in [
        "dpkg/updates",
        "dpkg/info",
        "lists/partial",
        "cache/archives/partial",
        "sources.list.d",
        "log",
    ] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::write(dir.join("dpkg/status"), "").unwrap();
    let p = |rel: &str| dir.join(rel).display().to_string();
    [
        format!("Dir::State::status={}", p("dpkg/status")),
        format!("Dir::State::Lists={}", p("lists")),
        format!("Dir::State::extended_states={}", p("extended_states")),
        format!("Dir::Cache={}", p("cache")),
        format!("Dir::Log={}", p("log")),
        "Dir::Etc::sourcelist=/dev/null".to_string(),
        format!("Dir::Etc::sourceparts={}", p("sources.list.d")),
    ]
    .into_iter()
    .flat_map(|o| ["-o".to_string(), o])
    .collect()
}

/// Holds an fcntl write lock on `path` (as apt and dpkg take theirs; flock(1)
/// would not block them) until the returned guard drops.
struct HeldLock {
    _file: fs::File,
}

impl HeldLock {
    fn take(path: &Path) -> HeldLock {
        use std::os::fd::AsRawFd as _;
        let file = fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
        // SAFETY: lockf on a file descriptor we own; no memory is shared.
        let rc = unsafe { libc::lockf(file.as_raw_fd(), libc::F_TLOCK, 0) };
        assert_eq!(rc, 0, "lock {}: {}", path.display(), std::io::Error::last_os_error());
        HeldLock { _file: file }
    }
}

/// scripts/apt-get.sh (what every setup script installs through) waits for
/// another package manager's dpkg frontend lock and apt lists lock, where a
/// plain apt-get fails at once; it gives up after RIGGER_APT_LOCK_TIMEOUT.
#[test]
fn apt_waits_for_the_package_manager_locks() {
    let work = tempdir();
    let opts = throwaway_apt_options(work.path());
    let wrapper = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/apt-get.sh");
    let hold = Duration::from_secs(5);
    for (lock, command) in [("dpkg/lock-frontend", "install"), ("lists/lock", "update")] {
        let lock = work.path().join(lock);
        // apt creates its lock files on first use.
        let first = Command::new("apt-get")
            .args(&opts)
            .args([command, "-y"])
            .output()
            .unwrap();
        assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
        assert!(lock.is_file(), "{}", lock.display());

        let held = HeldLock::take(&lock);
        // Plain apt-get: fails at once (what test-deps.sh ran before).
        let plain = Command::new("apt-get")
            .args(&opts)
            .args([command, "-y"])
            .output()
            .unwrap();
        let plain_err = String::from_utf8_lossy(&plain.stderr);
        assert!(
            !plain.status.success() && plain_err.contains("Could not get lock"),
            "{plain_err}"
        );
        // Gives up when its time is up.
        let t = std::time::Instant::now();
        let short = Command::new(&wrapper)
            .env("RIGGER_APT_LOCK_TIMEOUT", "1")
            .args(&opts)
            .args([command, "-y"])
            .output()
            .unwrap();
        let short_err = String::from_utf8_lossy(&short.stderr);
        assert!(!short.status.success(), "{short_err}");
        assert!(short_err.contains("lock"), "{short_err}");
        assert!(t.elapsed() < hold, "{:?}", t.elapsed());

        // The wrapper waits until the lock is released, then does the job.
        let t = std::time::Instant::now();
        let release = std::thread::spawn(move || {
            std::thread::sleep(hold);
            drop(held);
        });
        let waited = Command::new(&wrapper)
            .args(&opts)
            .args([command, "-y"])
            .output()
            .unwrap();
        let elapsed = t.elapsed();
        release.join().unwrap();
        let err = String::from_utf8_lossy(&waited.stderr);
        assert!(waited.status.success(), "{command}: {err}");
        assert!(
            elapsed >= hold - Duration::from_millis(200),
            "{command} did not wait: {elapsed:?}"
        );
        if command == "update" {
            assert!(err.contains("waiting for another package manager"), "{err}");
        }
    }
}

/// scripts/quickstart.sh without a terminal: says first when the SSH part
/// will be skipped and why (here: not root), builds the quick profile with a
/// "building... Ns" line while cargo works, and shows cargo's messages when
/// the build fails. cargo and the built rigger are stand-ins (the real build
/// is CI's quickstart phase).
#[test]
fn quickstart_shows_progress_and_says_why_it_skips_ssh() {
    use std::os::unix::fs::PermissionsExt as _;
    // The script runs as nobody: its directory and a copy of the script lie
    // where nobody can reach them, in the harness's own directory (a
    // clone in $HOME has its checkout and target/ under /root, 0700).
    let work = tempfile::Builder::new()
        .prefix("eco-quickstart-")
        .tempdir_in(crate::support::hosts::hosts_base())
        .unwrap();
    let dir = work.path();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    let script = dir.join("repo/scripts/quickstart.sh");
    fs::create_dir_all(script.parent().unwrap()).unwrap();
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/quickstart.sh"),
        &script,
    )
    .unwrap();
    for d in [dir.join("repo"), dir.join("repo/scripts")] {
        fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let exe = |path: &Path, text: &str| {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
    };
    exe(
        &dir.join("target/quick/rigger"),
        "#!/bin/sh\necho \"stand-in rigger $*\"\n",
    );
    let run = |cargo: &str| {
        exe(&dir.join("bin/cargo"), cargo);
        let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", dir.join("bin").display());
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "env", "-i"])
            .arg(format!("PATH={path}"))
            .arg(format!("CARGO_TARGET_DIR={}", dir.join("target").display()))
            .arg(format!("QUICKSTART_DIR={}", dir.join("qs").display()))
            .arg("QUICKSTART_PROGRESS_SECS=1")
            .arg("bash")
            .arg(&script);
        rigger_cmd(cmd, Duration::from_secs(60))
    };

    let (code, out, err) = run("#!/bin/sh\nsleep 3\necho \"stand-in cargo $*\" >&2\n");
    let all = format!("{out}{err}");
    assert_eq!(code, 0, "{all}");
    let skip = all
        .find("note: the SSH part will be skipped (no: the SSH test hosts need root")
        .unwrap_or_else(|| panic!("{all}"));
    let building = all
        .find("building... ")
        .unwrap_or_else(|| panic!("no progress line: {all}"));
    assert!(skip < building, "{all}");
    assert!(
        all.contains("stand-in cargo build --profile quick --locked --bin rigger --quiet"),
        "{all}"
    );
    assert!(all.contains("== built "), "{all}");
    assert!(all.contains("stand-in rigger quickstart --dest"), "{all}");
    assert!(all.contains("== skipped the SSH part"), "{all}");

    let (code, out, err) = run("#!/bin/sh\necho 'error[E0425]: stand-in failure' >&2\nexit 101\n");
    let all = format!("{out}{err}");
    assert_eq!(code, 1, "{all}");
    assert!(
        all.contains("stand-in failure") && all.contains("error: the build failed"),
        "{all}"
    );
    assert!(!all.contains("stand-in rigger"), "{all}");
}
