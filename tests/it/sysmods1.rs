//! System modules (apt, service/systemd/sysvinit, user, group, authorized_key)
//! through `rigger run`, against overlay-root test hosts: every package,
//! service and account change happens inside the host's overlays and
//! vanishes with it; the machine itself is never changed.

use std::path::Path;

use crate::support::{build_deb, rigger, sysv_init_script, TestHosts};

/// Runs `playbook` (YAML text) against the fleet with extra args; returns (code, stdout+stderr).
fn play(hosts: &TestHosts, name: &str, playbook: &str, extra: &[&str]) -> (i32, String) {
    let path = hosts.dir().join(format!("{name}.yml"));
    std::fs::write(&path, playbook).unwrap();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let pb = path.display().to_string();
    let mut args = vec!["run", "-i", &inv, "--known-hosts", &kh, &pb];
    args.extend_from_slice(extra);
    let (code, out, err) = rigger(&args);
    (code, format!("{out}\n{err}"))
}

/// The `changed=N` count of the recap line for host1.
fn changed(out: &str) -> usize {
    let line = out
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with("host1") && l.contains("changed="))
        .unwrap_or_else(|| panic!("no recap line in:\n{out}"));
    let v = line
        .split("changed=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    v.parse().unwrap()
}

fn ssh_out(hosts: &TestHosts, cmd: &str) -> String {
    let o = hosts.ssh(0, cmd);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(code: i32, out: &str) {
    assert_eq!(code, 0, "rigger failed:\n{out}");
}

const HEAD: &str = "- hosts: host1\n  gather_facts: no\n  tasks:\n";

#[test]
fn apt_installs_and_removes_in_an_overlay_root() {
    let hosts = TestHosts::with_overlay_root(1);
    assert!(
        !Path::new("/usr/share/doc/rigger-demo").exists() && !Path::new("/usr/bin/hello").exists(),
        "the machine must not have the test packages"
    );
    // (1) apply: a real package from the mirror (cache refresh only when older than a day) and a local .deb.
    let deb = build_deb(hosts.dir(), "rigger-demo", "1.0");
    let pb = format!(
        "{HEAD}    - apt:\n        name: hello\n        update_cache: yes\n        cache_valid_time: 86400\n        install_recommends: no\n\
         \x20   - apt:\n        deb: {}\n",
        deb.display()
    );
    let (code, out) = play(&hosts, "apt1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 2, "{out}");
    assert!(ssh_out(&hosts, "dpkg-query -W -f='${db:Status-Abbrev}' hello").starts_with("ii"));
    assert_eq!(ssh_out(&hosts, "cat /usr/share/rigger-demo/version"), "1.0");
    assert!(ssh_out(&hosts, "/usr/bin/hello").contains("Hello, world!"));
    assert!(!Path::new("/usr/bin/hello").exists(), "installed on the machine itself");

    // (2) re-apply: nothing to do.
    let (code, out) = play(&hosts, "apt1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // (3) check + diff of removal predicts exactly, then the real run does it.
    let pb2 = format!(
        "{HEAD}    - apt:\n        name: [hello, rigger-demo, sl]\n        state: absent\n        purge: yes\n"
    );
    let (code, out) = play(&hosts, "apt2", &pb2, &["--check", "--diff"]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("hello: 2.10"), "diff shows the installed version:\n{out}");
    assert!(out.contains("rigger-demo: 1.0"), "{out}");
    assert!(!out.contains("sl: "), "sl is not installed, so not in the diff:\n{out}");
    assert!(
        ssh_out(&hosts, "dpkg-query -W -f='${db:Status-Abbrev}' hello").starts_with("ii"),
        "check mode changed nothing"
    );
    let (code, out) = play(&hosts, "apt2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(
        ssh_out(
            &hosts,
            "dpkg-query -W -f='${db:Status-Abbrev}' hello rigger-demo 2>/dev/null"
        )
        .trim()
        .is_empty()
            || !ssh_out(
                &hosts,
                "dpkg-query -W -f='${db:Status-Abbrev}\\n' hello rigger-demo 2>/dev/null"
            )
            .contains("ii")
    );
    let (code, out) = play(&hosts, "apt2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // A real `apt-get update` against the mirror: check mode predicts it, the real run reports what it did.
    let pb_upd = format!(
        "{HEAD}    - apt:\n        update_cache: yes\n      register: r\n\
         \x20   - assert:\n        that: [r.cache_updated == r.changed, r.cache_update_time > 0]\n"
    );
    let (code, out) = play(&hosts, "apt-upd", &pb_upd, &["--check"]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "check mode predicts the update:\n{out}");
    let (code, out) = play(&hosts, "apt-upd", &pb_upd, &[]);
    ok(code, &out);

    // A package that does not exist fails with apt's message.
    let (code, out) = play(
        &hosts,
        "apt3",
        &format!("{HEAD}    - apt: name=rigger-no-such-package\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("No package matching 'rigger-no-such-package' is available"),
        "{out}"
    );

    // (4) bad argument: located error before any host is touched.
    let (code, out) = play(
        &hosts,
        "apt4",
        &format!("{HEAD}    - apt:\n        name: hello\n        stat: present\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("apt4.yml:6:9") && out.contains("unsupported parameter `stat`"),
        "{out}"
    );
}

#[test]
fn sysvinit_service_starts_enables_and_stops() {
    let hosts = TestHosts::with_overlay_root(1);
    std::fs::write(hosts.dir().join("rigger-demo"), sysv_init_script("rigger-demo")).unwrap();
    let pb = format!(
        "{HEAD}    - copy:\n        src: {}\n        dest: /etc/init.d/rigger-demo\n        mode: '0755'\n\
         \x20   - service:\n        name: rigger-demo\n        state: started\n        enabled: yes\n      register: svc\n\
         \x20   - assert:\n        that: [svc.service_mgr == 'sysvinit', svc.state == 'started']\n",
        hosts.dir().join("rigger-demo").display()
    );
    let (code, out) = play(&hosts, "svc1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 2, "{out}");
    assert_eq!(
        ssh_out(&hosts, "/etc/init.d/rigger-demo status && echo running").trim(),
        "running"
    );
    assert!(
        ssh_out(&hosts, "ls /etc/rc2.d").contains("S01rigger-demo"),
        "enabled via update-rc.d"
    );
    assert!(!Path::new("/etc/init.d/rigger-demo").exists());

    let (code, out) = play(&hosts, "svc1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // Check mode predicts stop + disable; nothing runs; the real run does exactly that.
    let calls_before = ssh_out(&hosts, "cat /tmp/rigger-demo.calls");
    let pb2 =
        format!("{HEAD}    - sysvinit:\n        name: rigger-demo\n        state: stopped\n        enabled: no\n");
    let (code, out) = play(&hosts, "svc2", &pb2, &["--check", "--diff"]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(
        out.contains("state: started") && out.contains("state: stopped"),
        "{out}"
    );
    let calls_after = ssh_out(&hosts, "cat /tmp/rigger-demo.calls");
    assert_eq!(
        calls_before.lines().filter(|l| *l != "status").collect::<Vec<_>>(),
        calls_after.lines().filter(|l| *l != "status").collect::<Vec<_>>(),
        "check mode only queried"
    );
    let (code, out) = play(&hosts, "svc2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "{out}");
    assert_eq!(
        ssh_out(&hosts, "/etc/init.d/rigger-demo status || echo stopped").trim(),
        "stopped"
    );
    assert!(ssh_out(&hosts, "ls /etc/rc2.d").contains("K01rigger-demo"), "disabled");
    let (code, out) = play(&hosts, "svc2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // restarted always acts.
    let (code, out) = play(
        &hosts,
        "svc3",
        &format!("{HEAD}    - service: name=rigger-demo state=restarted\n"),
        &[],
    );
    ok(code, &out);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(ssh_out(&hosts, "tail -n 3 /tmp/rigger-demo.calls").contains("restart"));

    let (code, out) = play(
        &hosts,
        "svc4",
        &format!("{HEAD}    - service: name=rigger-nope state=started\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("Could not find the requested service rigger-nope"),
        "{out}"
    );

    let (code, out) = play(
        &hosts,
        "svc5",
        &format!("{HEAD}    - service:\n        name: x\n        state: running\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(out.contains("svc5.yml:6:16") && out.contains("running"), "{out}");
}

/// A fake `systemctl` that keeps unit state in files and logs every call.
const FAKE_SYSTEMCTL: &str = r#"#!/bin/sh
D=/srv/fake-systemd; mkdir -p $D; echo "$*" >> $D/calls
cmd=$1; shift
case "$cmd" in
  show) u=$1
    if [ ! -e $D/$u.unit ]; then printf 'LoadState=not-found\nActiveState=inactive\nUnitFileState=\n'; exit 0; fi
    if [ -e $D/$u.masked ]; then printf 'LoadState=masked\nActiveState=inactive\nUnitFileState=masked\n'; exit 0; fi
    a=inactive; [ -e $D/$u.active ] && a=active; e=disabled; [ -e $D/$u.enabled ] && e=enabled
    printf 'LoadState=loaded\nActiveState=%s\nUnitFileState=%s\n' $a $e ;;
  start|restart|reload) [ -e $D/$1.masked ] && exit 1; touch $D/$1.active ;;
  stop) rm -f $D/$1.active ;;
  enable) touch $D/$1.enabled ;;
  disable) rm -f $D/$1.enabled ;;
  mask) touch $D/$1.masked; rm -f $D/$1.active ;;
  unmask) rm -f $D/$1.masked ;;
  daemon-reload) ;;
  *) exit 2 ;;
esac
"#;

#[test]
fn systemd_logic_against_a_fake_systemctl() {
    let hosts = TestHosts::with_overlay_root(1);
    let srv = hosts.root_dir(0).unwrap();
    std::fs::create_dir_all(srv.join("fakebin")).unwrap();
    std::fs::create_dir_all(srv.join("fake-systemd")).unwrap();
    std::fs::write(srv.join("fake-systemd/web.unit"), "").unwrap();
    let sc = srv.join("fakebin/systemctl");
    std::fs::write(&sc, FAKE_SYSTEMCTL).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&sc, std::fs::Permissions::from_mode(0o755)).unwrap();
    let env = "  environment:\n    PATH: /srv/fakebin:/usr/sbin:/usr/bin:/sbin:/bin\n";
    let head = format!("- hosts: host1\n  gather_facts: no\n{env}  tasks:\n");
    let pb = format!("{head}    - systemd:\n        name: web\n        state: started\n        enabled: yes\n        daemon_reload: yes\n");
    let (code, out) = play(&hosts, "sd1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "{out}");
    let calls = std::fs::read_to_string(srv.join("fake-systemd/calls")).unwrap();
    let acts: Vec<&str> = calls.lines().filter(|l| !l.starts_with("show")).collect();
    assert_eq!(acts, vec!["daemon-reload", "enable web", "start web"], "{calls}");
    let (code, out) = play(&hosts, "sd1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // Check mode: mask predicted, nothing but queries run.
    std::fs::write(srv.join("fake-systemd/calls"), "").unwrap();
    let pb2 = format!("{head}    - service:\n        name: web\n        use: systemd\n        enabled: no\n    - systemd:\n        name: web\n        masked: yes\n");
    let (code, out) = play(&hosts, "sd2", &pb2, &["--check", "--diff"]);
    ok(code, &out);
    assert_eq!(changed(&out), 2, "{out}");
    assert!(out.contains("masked: true"), "{out}");
    let calls = std::fs::read_to_string(srv.join("fake-systemd/calls")).unwrap();
    assert!(calls.lines().all(|l| l.starts_with("show")), "{calls}");
    let (code, out) = play(&hosts, "sd2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 2, "{out}");
    let calls = std::fs::read_to_string(srv.join("fake-systemd/calls")).unwrap();
    let acts: Vec<&str> = calls.lines().filter(|l| !l.starts_with("show")).collect();
    assert_eq!(acts, vec!["disable web", "mask web"], "{calls}");
    assert!(srv.join("fake-systemd/web.masked").exists());
    let (code, out) = play(&hosts, "sd2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    let (code, out) = play(
        &hosts,
        "sd3",
        &format!("{HEAD}    - systemd:\n        name: web\n        masked: maybe\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(out.contains("sd3.yml:6:17"), "{out}");
}

#[test]
fn users_groups_and_authorized_keys() {
    let hosts = TestHosts::with_overlay_root(1);
    let key_a = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHk9bqgf8JbvD8sS4GJbW9RHlR7n0pM0m2fX4dJ0qKQa alice@laptop";
    let key_b = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBv7l0Yq6Hc8n1m2Q0h2y5tQmVxZk3oP9a7b8c9d0e1f bob@desk";
    let pb = format!(
        "{HEAD}    - group:\n        name: rigdev\n        gid: 3500\n\
         \x20   - user:\n        name: rigalice\n        uid: 3501\n        groups: [rigdev]\n        shell: /bin/sh\n        comment: Alice Rig\n        generate_ssh_key: yes\n        ssh_key_type: ed25519\n      register: u\n\
         \x20   - assert:\n        that: [u.uid == 3501, \"u.ssh_public_key.startswith('ssh-ed25519 ')\", u.home == '/home/rigalice']\n\
         \x20   - authorized_key:\n        user: rigalice\n        key: \"{key_a}\\n{key_b}\"\n"
    );
    let (code, out) = play(&hosts, "u1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 3, "{out}");
    assert_eq!(ssh_out(&hosts, "getent group rigdev").trim(), "rigdev:x:3500:rigalice");
    assert_eq!(
        ssh_out(&hosts, "getent passwd rigalice").trim(),
        "rigalice:x:3501:3501:Alice Rig:/home/rigalice:/bin/sh"
    );
    assert_eq!(
        ssh_out(
            &hosts,
            "stat -c '%a %U' /home/rigalice/.ssh /home/rigalice/.ssh/authorized_keys /home/rigalice/.ssh/id_ed25519"
        ),
        "700 rigalice\n600 rigalice\n600 rigalice\n"
    );
    assert_eq!(
        ssh_out(&hosts, "cat /home/rigalice/.ssh/authorized_keys"),
        format!("{key_a}\n{key_b}\n")
    );
    let machine = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(!machine.contains("rigalice"), "the machine's /etc/passwd was changed");

    let (code, out) = play(&hosts, "u1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // Check + diff: new shell, no supplementary groups, exclusive key with options, group gid change.
    let pb2 = format!(
        "{HEAD}    - group:\n        name: rigdev\n        gid: 3600\n\
         \x20   - user:\n        name: rigalice\n        shell: /bin/bash\n        groups: []\n        password_lock: yes\n\
         \x20   - authorized_key:\n        user: rigalice\n        key: \"{key_b}\"\n        key_options: no-pty\n        exclusive: yes\n"
    );
    let (code, out) = play(&hosts, "u2", &pb2, &["--check", "--diff"]);
    ok(code, &out);
    assert_eq!(changed(&out), 3, "{out}");
    assert!(out.contains("shell: /bin/bash") && out.contains("gid: 3600"), "{out}");
    assert!(out.contains(&format!("no-pty {key_b}")), "{out}");
    assert_eq!(
        ssh_out(&hosts, "getent passwd rigalice | cut -d: -f7").trim(),
        "/bin/sh",
        "check mode changed nothing"
    );
    let (code, out) = play(&hosts, "u2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 3, "{out}");
    assert_eq!(
        ssh_out(&hosts, "getent passwd rigalice | cut -d: -f7").trim(),
        "/bin/bash"
    );
    assert_eq!(ssh_out(&hosts, "getent group rigdev").trim(), "rigdev:x:3600:");
    assert!(ssh_out(&hosts, "getent shadow rigalice | cut -d: -f2").starts_with('!'));
    assert_eq!(
        ssh_out(&hosts, "cat /home/rigalice/.ssh/authorized_keys"),
        format!("no-pty {key_b}\n")
    );
    let (code, out) = play(&hosts, "u2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // Removal.
    let pb3 = format!(
        "{HEAD}    - user:\n        name: rigalice\n        state: absent\n        remove: yes\n\
         \x20   - group:\n        name: rigdev\n        state: absent\n"
    );
    let (code, out) = play(&hosts, "u3", &pb3, &["--check"]);
    ok(code, &out);
    assert_eq!(changed(&out), 2, "{out}");
    let (code, out) = play(&hosts, "u3", &pb3, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 2, "{out}");
    assert!(ssh_out(&hosts, "getent passwd rigalice; ls -d /home/rigalice 2>/dev/null").is_empty());
    let (code, out) = play(&hosts, "u3", &pb3, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // Bad arguments: located errors.
    let (code, out) = play(
        &hosts,
        "u4",
        &format!("{HEAD}    - user:\n        name: x\n        shel: /bin/sh\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("u4.yml:6:9") && out.contains("did you mean `shell`"),
        "{out}"
    );
    let (code, out) = play(
        &hosts,
        "u5",
        &format!("{HEAD}    - authorized_key:\n        user: root\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("u5.yml:4") && out.contains("missing required parameter `key`"),
        "{out}"
    );
    let (code, out) = play(
        &hosts,
        "u6",
        &format!("{HEAD}    - user:\n        name: rigbob\n        group: rig-no-group\n"),
        &[],
    );
    assert_ne!(code, 0);
    assert!(out.contains("Group rig-no-group does not exist"), "{out}");
}
