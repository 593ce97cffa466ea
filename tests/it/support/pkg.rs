//! Test packages and services for the system-module tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tiny `Architecture: all` .deb named `package`, built with dpkg-deb on
/// the controller in `dir` (the test hosts see the same path). It installs
/// `/usr/share/PACKAGE/version` holding `version` (no newline).
pub fn build_deb(dir: &Path, package: &str, version: &str) -> PathBuf {
    let root = dir.join(format!("pkg-{package}-{version}"));
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join(format!("usr/share/{package}"))).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: rigger <t@example.invalid>\n\
             Description: rigger test package\n"
        ),
    )
    .unwrap();
    std::fs::write(root.join(format!("usr/share/{package}/version")), version).unwrap();
    let deb = dir.join(format!("{package}_{version}_all.deb"));
    let out = Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("run dpkg-deb");
    assert!(
        out.status.success(),
        "dpkg-deb: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    deb
}

/// A SysV init script for a daemon called `name` (a `sleep` behind a pid
/// file in /tmp) that logs every call to `/tmp/NAME.calls`, so a test can
/// prove what rigger asked of it (check mode: only `status`).
pub fn sysv_init_script(name: &str) -> String {
    format!(
        r#"#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:
# Required-Stop:
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: rigger test daemon
### END INIT INFO
PIDFILE=/tmp/{name}.pid
LOG=/tmp/{name}.calls
running() {{ [ -f $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null; }}
echo "$1" >> $LOG
case "$1" in
  start) running || {{ setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > $PIDFILE; }} ;;
  stop) running && kill "$(cat $PIDFILE)"; rm -f $PIDFILE ;;
  restart) "$0" stop; "$0" start ;;
  reload) running ;;
  status) running ;;
  *) echo "usage: $0 start|stop|restart|status"; exit 3 ;;
esac
"#
    )
}
