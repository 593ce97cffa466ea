//! Storage host modules against real storage daemons of this machine, reached
//! by rigger only over SSH (a plain sshd test host on loopback): nfs-ganesha
//! (read back with libnfs-utils), tgt (read back with libiscsi-bin),
//! zfs-fuse, LVM on loop devices, parted and mkfs on image files.
//!
//! Every daemon is started by the test in the foreground as its child and
//! stopped by PID (PID 1 here does not reap orphans). Needs
//! `scripts/storage-setup.sh` (run by scripts/test-deps.sh).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{rigger, TestHosts};

/// A daemon run in the foreground as our child; SIGTERM (then SIGKILL) and
/// reaped on drop.
struct Daemon {
    name: &'static str,
    child: Child,
}

impl Daemon {
    fn start(name: &'static str, argv: &[&str], log: &Path) -> Daemon {
        let log_file = std::fs::File::create(log).unwrap();
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name} ({argv:?}): {e}; run scripts/storage-setup.sh first"));
        Daemon { name, child }
    }

    fn assert_running(&mut self, log: &Path) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!(
                "{} exited ({st}):\n{}",
                self.name,
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) on our own child's PID.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it is true (panics with `what` after `secs`).
fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a command on this machine: (success, stdout + stderr).
fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("run sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn work_dir(tag: &str) -> PathBuf {
    let dir = PathBuf::from(format!("/var/tmp/rigger-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct RemoveDir(PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a playbook on host1; returns (exit code, stdout, stderr).
fn play(hosts: &TestHosts, name: &str, yaml: &str, extra: &[&str]) -> (i32, String, String) {
    let pb = hosts.dir().join(name);
    std::fs::write(&pb, yaml).unwrap();
    let inv = hosts.inventory().display().to_string();
    let kh = hosts.known_hosts().display().to_string();
    let pbs = pb.display().to_string();
    let mut args = vec!["run", "-i", &inv, "--known-hosts", &kh, &pbs];
    args.extend_from_slice(extra);
    rigger(&args)
}

fn ok_run(hosts: &TestHosts, name: &str, yaml: &str, extra: &[&str]) -> String {
    let (code, out, err) = play(hosts, name, yaml, extra);
    assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
    out
}

/// `changed=N` of host1's recap line.
fn changed(stdout: &str) -> u32 {
    stdout
        .lines()
        .filter(|l| l.starts_with("host1 "))
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("changed=")?.parse().ok())
        })
        .unwrap_or_else(|| panic!("no recap for host1 in:\n{stdout}"))
}

/// Runs `yaml` with `vars`: once (expecting `n` changes), again (none), and
/// returns the first run's output.
fn converge(hosts: &TestHosts, name: &str, yaml: &str, vars: &str, n: u32) -> String {
    let out = ok_run(hosts, name, yaml, &["-e", vars]);
    assert_eq!(changed(&out), n, "first run of {name}:\n{out}");
    let again = ok_run(hosts, name, yaml, &["-e", vars]);
    assert_eq!(changed(&again), 0, "second run of {name} is idempotent:\n{again}");
    out
}

// ---------------------------------------------------------------------------

const NFS: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - nfs_export:
        backend: ganesha
        dest: "{{ dir }}/ganesha.conf"
        pid_file: "{{ dir }}/ganesha.pid"
        export_id: 77
        path: "{{ dir }}/share"
        pseudo: /share
        clients: ["127.0.0.1({{ opts | default('rw,no_root_squash,sync') }})"]
        state: "{{ state | default('present') }}"
      register: ex
    - nfs_export:
        dest: "{{ dir }}/exports"
        reload: false
        path: "{{ dir }}/share"
        clients: { "10.0.0.0/24": "rw,no_subtree_check", "*": ro }
        state: "{{ state | default('present') }}"
    - debug: { var: ex }
"#;

const GANESHA_BASE: &str = "# base configuration (kept by rigger)\n\
NFS_CORE_PARAM { Protocols = 3, 4; Bind_addr = 127.0.0.1; }\nNFSV4 { Graceless = true; }\n";

#[test]
fn nfs_ganesha_export_is_served_changed_and_removed() {
    let dir = work_dir("nfs");
    let _rm = RemoveDir(dir.clone());
    std::fs::create_dir_all(dir.join("share")).unwrap();
    std::fs::write(dir.join("share/hello.txt"), "served by ganesha\n").unwrap();
    let conf = dir.join("ganesha.conf");
    std::fs::write(&conf, GANESHA_BASE).unwrap();
    std::fs::write(dir.join("exports"), "/srv/other *(ro)\n").unwrap();

    let rpc_log = dir.join("rpcbind.log");
    let mut rpcbind = Daemon::start("rpcbind", &["rpcbind", "-w", "-f"], &rpc_log);
    wait_until("rpcbind", 10, || sh("rpcinfo -p 127.0.0.1").0);
    rpcbind.assert_running(&rpc_log);
    // ganesha runs inside the test host's PID namespace (started over ssh, in
    // the foreground under setsid): the module signals it by the PID in its
    // pid file, which only means something there. The host's teardown kills
    // and reaps it with the namespace.
    let hosts = TestHosts::new(1);
    let gn_log = dir.join("ganesha.log");
    let pid_file = dir.join("ganesha.pid");
    let start = format!(
        "setsid -f ganesha.nfsd -F -f {} -L {} -p {} -N NIV_EVENT >{}/ganesha.out 2>&1 </dev/null",
        conf.display(),
        gn_log.display(),
        pid_file.display(),
        dir.display()
    );
    let started = hosts.ssh(0, &start);
    assert!(started.status.success(), "start ganesha: {started:?}");
    wait_until("ganesha serving NFS", 30, || {
        std::fs::read_to_string(&gn_log).is_ok_and(|l| l.contains("NFS SERVER INITIALIZED"))
    });
    let ganesha_alive = || {
        hosts
            .ssh(0, &format!("kill -0 $(cat {})", pid_file.display()))
            .status
            .success()
    };
    let url = format!("nfs://127.0.0.1{}/share", dir.display());
    let (ok, msg) = sh(&format!("nfs-ls {url}"));
    assert!(!ok, "nothing exported yet: {msg}");

    let vars = format!("{{\"dir\": \"{}\"}}", dir.display());
    let out = converge(&hosts, "nfs.yml", NFS, &vars, 2);
    assert!(out.contains("\"reloaded\": true"), "{out}");
    let (ok, text) = sh(&format!("nfs-cat {url}/hello.txt"));
    assert!(ok && text.contains("served by ganesha"), "read back over NFSv3: {text}");
    let (ok, list) = sh("nfs-ls 'nfs://127.0.0.1/share?version=4'");
    assert!(ok && list.contains("hello.txt"), "NFSv4 pseudo path: {list}");
    let conf_text = std::fs::read_to_string(&conf).unwrap();
    assert!(conf_text.starts_with(GANESHA_BASE), "base kept:\n{conf_text}");
    assert!(
        conf_text.contains("CLIENT { Clients = 127.0.0.1; Access_Type = RW; Squash = No_Root_Squash; }"),
        "{conf_text}"
    );
    let exports = std::fs::read_to_string(dir.join("exports")).unwrap();
    assert_eq!(
        exports,
        format!(
            "/srv/other *(ro)\n{}/share 10.0.0.0/24(rw,no_subtree_check) *(ro)\n",
            dir.display()
        )
    );

    // Check mode predicts a client option change and touches nothing.
    let vars_ro = format!("{{\"dir\": \"{}\", \"opts\": \"ro\"}}", dir.display());
    let out = ok_run(&hosts, "nfs.yml", NFS, &["-e", &vars_ro, "--check", "--diff"]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(
        out.contains("+\tCLIENT { Clients = 127.0.0.1; Access_Type = RO; }"),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(&conf).unwrap(),
        conf_text,
        "check mode wrote nothing"
    );
    let out = ok_run(&hosts, "nfs.yml", NFS, &["-e", &vars_ro]);
    assert_eq!(changed(&out), 1, "{out}");
    let (ok, text) = sh(&format!("nfs-cat {url}/hello.txt"));
    assert!(
        ok && text.contains("served by ganesha"),
        "still served read-only: {text}"
    );

    // Revert: both exports removed, ganesha stops serving it.
    let vars_absent = format!("{{\"dir\": \"{}\", \"state\": \"absent\"}}", dir.display());
    converge(&hosts, "nfs.yml", NFS, &vars_absent, 2);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), GANESHA_BASE);
    assert_eq!(
        std::fs::read_to_string(dir.join("exports")).unwrap(),
        "/srv/other *(ro)\n"
    );
    let (ok, msg) = sh(&format!("nfs-ls {url}"));
    assert!(!ok, "export gone after SIGHUP: {msg}");
    assert!(ganesha_alive(), "ganesha survived the reloads");
    let stop = hosts.ssh(0, &format!("kill $(cat {})", pid_file.display()));
    assert!(stop.status.success(), "stop ganesha: {stop:?}");
}

// ---------------------------------------------------------------------------

const ISCSI: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - iscsi_target:
        iqn: "{{ iqn }}"
        control_port: "{{ port }}"
        config_dir: "{{ dir }}/conf.d"
        luns: "{{ luns | default([dir ~ '/lun1.img']) }}"
        initiators: [127.0.0.1, "{{ initiator }}"]
        chap_user: rigger
        chap_password: s3cretpassw0rd
        state: "{{ state | default('present') }}"
      register: t
    - debug: { var: t }
"#;

#[test]
fn tgt_target_with_lun_acl_and_chap_is_served_changed_and_removed() {
    let dir = work_dir("tgt");
    let _rm = RemoveDir(dir.clone());
    for f in ["lun1.img", "lun2.img"] {
        let file = std::fs::File::create(dir.join(f)).unwrap();
        file.set_len(16 << 20).unwrap();
    }
    let pid = std::process::id();
    let control = (pid % 5000 + 1000).to_string();
    let portal_port = 13260 + pid % 1000;
    let portal = format!("127.0.0.1:{portal_port}");
    let log = dir.join("tgtd.log");
    let mut tgtd = Daemon::start(
        "tgtd",
        &["tgtd", "-f", "-C", &control, "--iscsi", &format!("portal={portal}")],
        &log,
    );
    wait_until("tgtd", 10, || {
        sh(&format!("tgtadm -C {control} --lld iscsi --mode target --op show")).0
    });
    tgtd.assert_running(&log);
    // Targets must be gone before tgtd stops: removed by the playbook, and here on failure.
    struct DeleteTargets(String);
    impl Drop for DeleteTargets {
        fn drop(&mut self) {
            for tid in 1..=4 {
                sh(&format!(
                    "tgtadm -C {} --lld iscsi --mode target --op delete --force --tid {tid}",
                    self.0
                ));
            }
        }
    }
    let _delete = DeleteTargets(control.clone());

    let iqn = format!("iqn.2024-01.test.rigger:it{pid}");
    let initiator = "iqn.2024-01.test.rigger:initiator";
    let hosts = TestHosts::new(1);
    let vars = format!(
        "{{\"dir\": \"{}\", \"iqn\": \"{iqn}\", \"port\": {control}, \"initiator\": \"{initiator}\"}}",
        dir.display()
    );
    let out = converge(&hosts, "iscsi.yml", ISCSI, &vars, 1);
    assert!(out.contains("\"tid\": 1"), "{out}");
    assert!(!out.contains("s3cretpassw0rd"), "password masked in output:\n{out}");
    let conf = dir.join(format!("conf.d/{}.conf", iqn.replace(':', "_")));
    let conf_text = std::fs::read_to_string(&conf).unwrap();
    assert!(conf_text.contains("incominguser rigger s3cretpassw0rd"), "{conf_text}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&conf).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);

    // Read back as an initiator: CHAP required, the LUN answers an inquiry.
    let base = format!("iscsi://rigger%s3cretpassw0rd@{portal}");
    let (ok, ls) = sh(&format!("iscsi-ls -s -i {initiator} {base}"));
    assert!(ok && ls.contains(&iqn) && ls.contains("Lun:1"), "{ls}");
    assert!(ls.contains("Size:15M") || ls.contains("Size:16M"), "16 MiB LUN: {ls}");
    let (ok, inq) = sh(&format!("iscsi-inq -i {initiator} {base}/{iqn}/1"));
    assert!(ok && inq.contains("DIRECT_ACCESS"), "{inq}");
    let (ok, msg) = sh(&format!("iscsi-inq -i {initiator} iscsi://{portal}/{iqn}/1"));
    assert!(!ok, "no login without CHAP: {msg}");

    // Check mode predicts a second LUN; then apply it.
    let luns = format!("[\"{0}/lun1.img\", \"{0}/lun2.img\"]", dir.display());
    let vars2 = vars.replacen('{', &format!("{{\"luns\": {luns}, "), 1);
    let out = ok_run(&hosts, "iscsi.yml", ISCSI, &["-e", &vars2, "--check"]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("--lun 2 -b"), "planned command: {out}");
    let (_, ls) = sh(&format!("iscsi-ls -s -i {initiator} {base}"));
    assert!(!ls.contains("Lun:2"), "check mode added nothing: {ls}");
    converge(&hosts, "iscsi.yml", ISCSI, &vars2, 1);
    let (_, ls) = sh(&format!("iscsi-ls -s -i {initiator} {base}"));
    assert!(ls.contains("Lun:2"), "{ls}");

    // Revert: the target and its file are gone.
    let vars_absent = vars.replacen('{', "{\"state\": \"absent\", ", 1);
    converge(&hosts, "iscsi.yml", ISCSI, &vars_absent, 1);
    assert!(!conf.exists());
    let (_, ls) = sh(&format!("iscsi-ls -s -i {initiator} {base}"));
    assert!(!ls.contains(&iqn), "{ls}");
    tgtd.assert_running(&log);
}

// ---------------------------------------------------------------------------

const ZFS: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - zpool:
        name: "{{ pool }}"
        vdevs: ["{{ dir }}/vdev1.img"]
        filesystem_properties: { mountpoint: "{{ dir }}/mnt" }
      register: zp
    - zfs:
        name: "{{ pool }}/data"
        extra_zfs_properties: { compression: "{{ compression | default(true) }}", quota: "{{ quota | default('32M') }}" }
    - zfs: { name: "{{ pool }}/data@first" }
    - debug: { var: zp }
"#;

const ZFS_REVERT: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - zfs: { name: "{{ pool }}/data@first", state: absent }
    - zfs: { name: "{{ pool }}/data", state: absent }
    - zpool: { name: "{{ pool }}", state: absent }
"#;

#[test]
fn zfs_fuse_pool_datasets_and_snapshots_are_created_changed_and_removed() {
    let dir = work_dir("zfs");
    let _rm = RemoveDir(dir.clone());
    let file = std::fs::File::create(dir.join("vdev1.img")).unwrap();
    file.set_len(128 << 20).unwrap();
    let log = dir.join("zfs-fuse.log");
    let mut zfsd = Daemon::start("zfs-fuse", &["zfs-fuse", "--no-daemon", "--no-kstat-mount"], &log);
    wait_until("zfs-fuse", 15, || sh("zpool list").0);
    zfsd.assert_running(&log);
    let pool = format!("rit{}", std::process::id());
    struct DestroyPool(String);
    impl Drop for DestroyPool {
        fn drop(&mut self) {
            sh(&format!("zpool destroy -f {}", self.0));
        }
    }
    let _destroy = DestroyPool(pool.clone());

    let hosts = TestHosts::new(1);
    let vars = format!("{{\"dir\": \"{}\", \"pool\": \"{pool}\"}}", dir.display());
    let out = converge(&hosts, "zfs.yml", ZFS, &vars, 3);
    assert!(out.contains("\"health\": \"ONLINE\""), "pool facts:\n{out}");
    assert!(out.contains("\"capacity\": "), "{out}");
    let (_, got) = sh(&format!("zfs get -H -o value compression,quota,mountpoint {pool}/data"));
    assert_eq!(
        got.lines().collect::<Vec<_>>(),
        vec!["on", "32M", &format!("{}/mnt/data", dir.display())]
    );
    let (_, snaps) = sh("zfs list -H -t snapshot -o name");
    assert!(snaps.contains(&format!("{pool}/data@first")), "{snaps}");

    // Check mode predicts a property change and leaves it.
    let vars2 = vars.replacen('{', "{\"quota\": \"64M\", \"compression\": false, ", 1);
    let out = ok_run(&hosts, "zfs.yml", ZFS, &["-e", &vars2, "--check", "--diff"]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("-quota: 33554432") && out.contains("+quota: 64M"), "{out}");
    let (_, got) = sh(&format!("zfs get -H -o value quota {pool}/data"));
    assert_eq!(got.trim(), "32M");
    converge(&hosts, "zfs.yml", ZFS, &vars2, 1);
    let (_, got) = sh(&format!("zfs get -H -o value compression,quota {pool}/data"));
    assert_eq!(got.lines().collect::<Vec<_>>(), vec!["off", "64M"]);

    // Revert everything.
    let out = ok_run(&hosts, "revert.yml", ZFS_REVERT, &["-e", &vars, "--check"]);
    assert_eq!(changed(&out), 3, "{out}");
    converge(&hosts, "revert.yml", ZFS_REVERT, &vars, 3);
    let (ok, msg) = sh(&format!("zpool list {pool}"));
    assert!(!ok, "pool destroyed: {msg}");
    zfsd.assert_running(&log);
}

// ---------------------------------------------------------------------------

const DISKS: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - parted:
        device: "{{ dir }}/disk.img"
        label: gpt
        number: 1
        state: present
        part_start: 1MiB
        part_end: 16MiB
        name: data
        flags: "{{ flags | default(['lvm']) }}"
      register: pt
    - filesystem: { dev: "{{ dir }}/fs.img", fstype: ext4, opts: -L riggerfs }
    - filesystem: { dev: "{{ dir }}/fat.img", fstype: vfat }
    - lvg: { vg: "{{ vg }}", pvs: "{{ pvs }}" }
    - debug: { var: pt }
"#;

const DISKS_REVERT: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - parted: { device: "{{ dir }}/disk.img", number: 1, state: absent }
    - filesystem: { dev: "{{ dir }}/fs.img", state: absent }
    - filesystem: { dev: "{{ dir }}/fat.img", state: absent }
    - lvg: { vg: "{{ vg }}", state: absent }
"#;

const LVOL: &str = r#"
- hosts: host1
  gather_facts: false
  tasks:
    - lvol: { vg: "{{ vg }}", lv: data, size: 8M }
"#;

#[test]
fn parted_filesystem_and_lvm_on_image_files_and_loop_devices() {
    let dir = work_dir("disks");
    let _rm = RemoveDir(dir.clone());
    for (f, size) in [
        ("disk.img", 32 << 20),
        ("fs.img", 16 << 20),
        ("fat.img", 16 << 20),
        ("pv1.img", 32 << 20),
        ("pv2.img", 32 << 20),
    ] {
        std::fs::File::create(dir.join(f)).unwrap().set_len(size).unwrap();
    }
    struct Loops(Vec<String>, String);
    impl Drop for Loops {
        fn drop(&mut self) {
            sh(&format!(
                "LVM_SUPPRESS_FD_WARNINGS=1 vgremove -f -y {} >/dev/null 2>&1",
                self.1
            ));
            for l in &self.0 {
                sh(&format!("losetup -d {l}"));
            }
        }
    }
    let vg = format!("rit{}", std::process::id());
    let mut loops = Loops(vec![], vg.clone());
    for f in ["pv1.img", "pv2.img"] {
        let (ok, dev) = sh(&format!("losetup -f --show {}", dir.join(f).display()));
        assert!(ok, "losetup: {dev}");
        loops.0.push(dev.trim().to_string());
    }

    let hosts = TestHosts::new(1);
    let vars = format!(
        "{{\"dir\": \"{}\", \"vg\": \"{vg}\", \"pvs\": [\"{}\"]}}",
        dir.display(),
        loops.0[0]
    );
    let out = converge(&hosts, "disks.yml", DISKS, &vars, 4);
    assert!(
        out.contains("\"table\": \"unknown\""),
        "first run saw a blank disk:\n{out}"
    );
    let (_, print) = sh(&format!("parted -s -m {}/disk.img unit MiB print", dir.display()));
    assert!(
        print.contains(":gpt:") && print.contains("1:1.00MiB:16.0MiB:15.0MiB::data:lvm;"),
        "{print}"
    );
    let (_, label) = sh(&format!("blkid -o value -s LABEL -s TYPE {}/fs.img", dir.display()));
    assert_eq!(label.lines().collect::<Vec<_>>(), vec!["riggerfs", "ext4"]);
    let (_, ty) = sh(&format!("blkid -o value -s TYPE {}/fat.img", dir.display()));
    assert_eq!(ty.trim(), "vfat");
    let (_, pvs) = sh(&format!(
        "LVM_SUPPRESS_FD_WARNINGS=1 pvs --noheadings -o pv_name -S vg_name={vg}"
    ));
    assert_eq!(pvs.trim(), loops.0[0]);

    // Check mode predicts: flag change, second PV (vgextend + vgreduce of the first).
    let vars2 = format!(
        "{{\"dir\": \"{}\", \"vg\": \"{vg}\", \"pvs\": [\"{}\"], \"flags\": [\"boot\"]}}",
        dir.display(),
        loops.0[1]
    );
    let out = ok_run(&hosts, "disks.yml", DISKS, &["-e", &vars2, "--check", "--diff"]);
    assert_eq!(changed(&out), 2, "{out}");
    assert!(out.contains("set 1 lvm off set 1 boot on"), "{out}");
    assert!(out.contains(&format!("vgreduce {vg} {}", loops.0[0])), "{out}");
    converge(&hosts, "disks.yml", DISKS, &vars2, 2);
    let (_, pvs) = sh(&format!(
        "LVM_SUPPRESS_FD_WARNINGS=1 pvs --noheadings -o pv_name -S vg_name={vg}"
    ));
    assert_eq!(pvs.trim(), loops.0[1]);

    // A file system of another type is kept unless forced.
    let (code, out, _) = play(
        &hosts,
        "other.yml",
        "- hosts: host1\n  gather_facts: false\n  tasks:\n    - filesystem: { dev: \"{{ dir }}/fat.img\", fstype: ext2 }\n",
        &["-e", &vars],
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("already holds a vfat file system; set `force: true`"),
        "{out}"
    );

    // lvol: no device-mapper here; the error says so (when it is missing).
    let (code, out, _) = play(&hosts, "lvol.yml", LVOL, &["-e", &vars]);
    if std::fs::read_to_string("/proc/misc").is_ok_and(|m| m.contains("device-mapper")) {
        assert_eq!(code, 0, "{out}");
    } else {
        assert_ne!(code, 0, "{out}");
        assert!(out.contains("device-mapper is not available"), "{out}");
        assert!(out.contains(&format!("lvcreate -y -n data -L 8M {vg}")), "{out}");
    }

    // Revert.
    converge(&hosts, "revert.yml", DISKS_REVERT, &vars, 4);
    let (_, print) = sh(&format!("parted -s -m {}/disk.img unit MiB print", dir.display()));
    assert!(print.contains(":gpt:") && !print.contains("\n1:"), "{print}");
    let (ok, _) = sh(&format!("blkid -c /dev/null {}/fs.img", dir.display()));
    assert!(!ok, "fs.img wiped");
    let (ok, _) = sh(&format!("LVM_SUPPRESS_FD_WARNINGS=1 vgs {vg}"));
    assert!(!ok, "volume group removed");
}
