//! `service`, `sysvinit`, `systemd_service`.

use super::{changed, host1_out, ok, play, HEAD};
use crate::support::TestHosts;
use std::path::Path;

use crate::support::sysv_init_script;

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
        host1_out(&hosts, "/etc/init.d/rigger-demo status && echo running").trim(),
        "running"
    );
    assert!(
        host1_out(&hosts, "ls /etc/rc2.d").contains("S01rigger-demo"),
        "enabled via update-rc.d"
    );
    assert!(!Path::new("/etc/init.d/rigger-demo").exists());

    let (code, out) = play(&hosts, "svc1", &pb, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 0, "{out}");

    // Check mode predicts stop + disable; nothing runs; the real run does exactly that.
    let calls_before = host1_out(&hosts, "cat /tmp/rigger-demo.calls");
    let pb2 =
        format!("{HEAD}    - sysvinit:\n        name: rigger-demo\n        state: stopped\n        enabled: no\n");
    let (code, out) = play(&hosts, "svc2", &pb2, &["--check", "--diff"]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(
        out.contains("state: started") && out.contains("state: stopped"),
        "{out}"
    );
    let calls_after = host1_out(&hosts, "cat /tmp/rigger-demo.calls");
    assert_eq!(
        calls_before.lines().filter(|l| *l != "status").collect::<Vec<_>>(),
        calls_after.lines().filter(|l| *l != "status").collect::<Vec<_>>(),
        "check mode only queried"
    );
    let (code, out) = play(&hosts, "svc2", &pb2, &[]);
    ok(code, &out);
    assert_eq!(changed(&out), 1, "{out}");
    assert_eq!(
        host1_out(&hosts, "/etc/init.d/rigger-demo status || echo stopped").trim(),
        "stopped"
    );
    assert!(
        host1_out(&hosts, "ls /etc/rc2.d").contains("K01rigger-demo"),
        "disabled"
    );
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
    assert!(host1_out(&hosts, "tail -n 3 /tmp/rigger-demo.calls").contains("restart"));

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
