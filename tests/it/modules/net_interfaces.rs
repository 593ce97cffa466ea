//! `network_interface` against a real host whose network is a namespace of
//! its own: the test makes a "controller" netns and a "host" netns joined by
//! a veth pair (192.0.2.1 ↔ 192.0.2.10, TEST-NET-1, only inside those
//! namespaces), runs sshd in the host netns (with a private /etc overlay and
//! /run) and the rigger binary in the controller netns. Bridges, addresses
//! and routes are then changed for real without touching the machine's own
//! network. The kernel here cannot create VLAN or bond devices: their files
//! are checked by content and their live apply must fail clearly.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::support::{procs, rigger_bin, rigger_cmd};

const HOST_IP: &str = "192.0.2.10";

/// A controller netns + a host netns with sshd; dropping it removes both.
struct NetnsHost {
    ctl: String,
    host: String,
    dir: tempfile::TempDir,
    sshd: Option<Child>,
}

fn sh(cmd: &str) -> (bool, String) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().expect("run sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn must(cmd: &str) -> String {
    let (ok, out) = sh(cmd);
    assert!(ok, "`{cmd}` failed: {out}");
    out
}

impl NetnsHost {
    fn new() -> NetnsHost {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let ctl = format!("rgnc{pid}x{n}");
        let host = format!("rgnh{pid}x{n}");
        procs::become_subreaper();
        let dir = tempfile::Builder::new()
            .prefix("netns-host-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .expect("temp dir");
        let mut me = NetnsHost {
            ctl,
            host,
            dir,
            sshd: None,
        };
        let (c, h) = (&me.ctl, &me.host);
        must(&format!("ip netns add {c} && ip netns add {h}"));
        must(&format!(
            "ip link add c0 netns {c} type veth peer name eth0 netns {h} && \
             ip -n {c} addr add 192.0.2.1/24 dev c0 && ip -n {h} addr add {HOST_IP}/24 dev eth0 && \
             ip -n {c} link set c0 up && ip -n {h} link set eth0 up && \
             ip -n {c} link set lo up && ip -n {h} link set lo up && \
             ip -n {h} link add p0 type veth peer name p1 && ip -n {h} link set p1 up"
        ));
        let d = me.dir.path().to_path_buf();
        for sub in ["etc-upper", "etc-work", "home"] {
            fs::create_dir_all(d.join(sub)).unwrap();
        }
        must(&format!(
            "ssh-keygen -q -t ed25519 -N '' -f {0}/client && ssh-keygen -q -t ed25519 -N '' -f {0}/hostkey",
            d.display()
        ));
        let hostkey = fs::read_to_string(d.join("hostkey.pub")).unwrap();
        let hostkey: Vec<&str> = hostkey.split_whitespace().take(2).collect();
        let hostkey = hostkey.join(" ");
        fs::write(
            d.join("authorized_keys"),
            fs::read_to_string(d.join("client.pub")).unwrap(),
        )
        .unwrap();
        fs::write(
            d.join("known_hosts"),
            format!("{HOST_IP} {hostkey}\n[{HOST_IP}]:22 {hostkey}\n"),
        )
        .unwrap();
        fs::write(
            d.join("sshd_config"),
            format!(
                "ListenAddress {HOST_IP}:22\nHostKey {0}/hostkey\nPidFile none\nUsePAM no\nStrictModes no\n\
                 PermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 AuthorizedKeysFile {0}/authorized_keys\nSetEnv HOME={0}/home\nMaxSessions 50\nLogLevel ERROR\n\
                 Subsystem sftp internal-sftp\n",
                d.display()
            ),
        )
        .unwrap();
        fs::write(
            d.join("inventory.ini"),
            format!(
                "[net]\nnethost ansible_host={HOST_IP} ansible_port=22 ansible_user=root \
                 ansible_ssh_private_key_file={}/client\n",
                d.display()
            ),
        )
        .unwrap();
        let log = fs::File::create(d.join("sshd.log")).unwrap();
        // Private /etc (overlay) and /run: the host's config files and rollback state stay in the test dir.
        let child = Command::new("ip")
            .args(["netns", "exec", &me.host, "unshare", "--pid", "--fork", "--kill-child", "--mount"])
            .args(["--propagation", "private", "--", "/bin/sh", "-c"])
            .arg(
                "set -e; mount -t overlay overlay -o \"lowerdir=/etc,upperdir=$1/etc-upper,workdir=$1/etc-work\" /etc; \
                 mount -t tmpfs tmpfs /run; mkdir -p /run/sshd; exec /usr/sbin/sshd -D -e -f \"$1/sshd_config\"",
            )
            .arg("sh")
            .arg(&d)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        me.sshd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while !sh(&format!("ss -N {} -ltn | grep -q '{HOST_IP}:22 '", me.host)).0 {
            assert!(
                Instant::now() < deadline,
                "sshd in {} did not start: {}",
                me.host,
                fs::read_to_string(d.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        me
    }

    /// Runs a playbook from the controller netns.
    fn play(&self, name: &str, yaml: &str, extra: &[&str]) -> (i32, String, String) {
        let pb = self.dir.path().join(name);
        fs::write(&pb, yaml).unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ctl])
            .arg(rigger_bin())
            .arg("run")
            .arg("-i")
            .arg(self.dir.path().join("inventory.ini"))
            .arg("--known-hosts")
            .arg(self.dir.path().join("known_hosts"))
            .arg(&pb)
            .args(extra);
        rigger_cmd(cmd, Duration::from_secs(120))
    }

    fn ok(&self, name: &str, yaml: &str, extra: &[&str]) -> String {
        let (code, out, err) = self.play(name, yaml, extra);
        assert_eq!(code, 0, "rigger failed\n--- stdout ---\n{out}\n--- stderr ---\n{err}");
        out
    }

    /// `ip ARGS` inside the host netns.
    fn ip(&self, args: &str) -> String {
        must(&format!("ip -n {} {args}", self.host))
    }

    /// A file the host wrote under /etc (its overlay's upper dir).
    fn etc(&self, rel: &str) -> Option<String> {
        fs::read_to_string(self.dir.path().join("etc-upper").join(rel)).ok()
    }

    fn etc_path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("etc-upper").join(rel)
    }
}

impl Drop for NetnsHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.sshd.take() {
            let inner = procs::children_of(child.id());
            procs::kill9(&inner);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- sshd log ---\n{}",
                fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
            );
        }
        let _ = sh(&format!("ip netns del {}; ip netns del {}", self.ctl, self.host));
    }
}

fn changed(stdout: &str) -> u32 {
    stdout
        .lines()
        .filter(|l| l.starts_with("nethost "))
        .find_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("changed=")?.parse().ok())
        })
        .unwrap_or_else(|| panic!("no recap for nethost in:\n{stdout}"))
}

fn has(path: &Path) -> bool {
    path.exists()
}

const BRIDGE: &str = r#"
- hosts: net
  gather_facts: false
  tasks:
    - network_interface:
        name: br0
        type: bridge
        ports: [p0]
        addresses: [192.0.2.20/24, "2001:db8::20/64"]
        routes: ["198.51.100.0/24 via 192.0.2.1"]
        mtu: 1400
        backend: ifupdown
        rollback_timeout: 30
"#;

#[test]
fn bridge_with_addresses_and_routes_live_and_persistent() {
    let h = NetnsHost::new();
    // Check mode reports the change and touches nothing.
    let out = h.ok("bridge.yml", BRIDGE, &["--check", "--diff"]);
    assert_eq!(changed(&out), 1, "{out}");
    assert!(out.contains("+    bridge_ports p0"), "diff shows the file:\n{out}");
    assert!(
        out.contains("+  address 192.0.2.20/24"),
        "diff shows the live state:\n{out}"
    );
    assert!(!h.ip("link").contains("br0"));
    assert!(!has(&h.etc_path("network/interfaces.d/br0")));

    let out = h.ok("bridge.yml", BRIDGE, &[]);
    assert_eq!(changed(&out), 1, "{out}");
    let link = h.ip("-d link show dev br0");
    assert!(
        link.contains("mtu 1400") && link.contains("bridge") && link.contains("UP"),
        "{link}"
    );
    assert!(h.ip("link show dev p0").contains("master br0"));
    let addrs = h.ip("addr show dev br0");
    assert!(
        addrs.contains("192.0.2.20/24") && addrs.contains("2001:db8::20/64"),
        "{addrs}"
    );
    assert!(h.ip("route show dev br0").contains("198.51.100.0/24 via 192.0.2.1"));
    let file = h.etc("network/interfaces.d/br0").expect("ifupdown file written");
    assert!(
        file.contains("iface br0 inet static\n    bridge_ports p0\n    mtu 1400\n    address 192.0.2.20/24\n"),
        "{file}"
    );
    assert!(
        file.contains("up ip route add 198.51.100.0/24 via 192.0.2.1 dev br0"),
        "{file}"
    );
    // The guard state was cleaned up after the confirmation.
    assert!(!h.ip("link").contains("nonexistent"));

    // Idempotent, also in check mode.
    assert_eq!(changed(&h.ok("bridge.yml", BRIDGE, &[])), 0);
    assert_eq!(changed(&h.ok("bridge.yml", BRIDGE, &["--check"])), 0);

    // A change of one fact: only that changes.
    let moved = BRIDGE.replace("192.0.2.20/24", "192.0.2.21/24");
    assert_eq!(changed(&h.ok("moved.yml", &moved, &[])), 1);
    let addrs = h.ip("addr show dev br0");
    assert!(
        addrs.contains("192.0.2.21/24") && !addrs.contains("192.0.2.20/"),
        "{addrs}"
    );

    // Absent: device and file go, twice is a no-op.
    let absent = "- hosts: net\n  gather_facts: false\n  tasks:\n    - network_interface: { name: br0, type: bridge, state: absent, backend: ifupdown }\n";
    assert_eq!(changed(&h.ok("absent.yml", absent, &[])), 1);
    assert!(!h.ip("link").contains("br0"));
    assert!(!has(&h.etc_path("network/interfaces.d/br0")));
    assert_eq!(changed(&h.ok("absent.yml", absent, &[])), 0);
}

#[test]
fn vlan_and_bond_configuration_files_and_clear_live_failure() {
    let h = NetnsHost::new();
    let persist = r#"
- hosts: net
  gather_facts: false
  tasks:
    - network_interface: { name: eth0.10, type: vlan, vlan_id: 10, vlan_link: eth0, addresses: [198.18.10.2/24], apply: persist, backend: netplan }
    - network_interface: { name: bond0, type: bond, bond_mode: active-backup, ports: [p0, p1], addresses: [198.18.20.2/24], gateway: 198.18.20.1, apply: persist, backend: networkmanager }
    - network_interface: { name: eth0.20, type: vlan, vlan_id: 20, vlan_link: eth0, apply: persist, backend: ifupdown }
"#;
    let out = h.ok("persist.yml", persist, &[]);
    assert_eq!(changed(&out), 3, "{out}");
    let np = h.etc("netplan/60-rigger-eth0.10.yaml").expect("netplan file");
    assert!(
        np.contains("  vlans:\n    eth0.10:\n      id: 10\n      link: eth0\n      addresses: [\"198.18.10.2/24\"]\n"),
        "{np}"
    );
    let nm = h
        .etc("NetworkManager/system-connections/rigger-bond0.nmconnection")
        .expect("NM keyfile");
    assert!(
        nm.contains("type=bond\ninterface-name=bond0\n") && nm.contains("[bond]\nmode=active-backup\n"),
        "{nm}"
    );
    assert!(nm.contains("address1=198.18.20.2/24\ngateway=198.18.20.1\n"), "{nm}");
    let port = h
        .etc("NetworkManager/system-connections/rigger-bond0-port-p1.nmconnection")
        .expect("NM port keyfile");
    assert!(port.contains("master=bond0\nslave-type=bond\n"), "{port}");
    let mode = fs::metadata(h.etc_path("NetworkManager/system-connections/rigger-bond0.nmconnection")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
    let ifu = h.etc("network/interfaces.d/eth0.20").expect("ifupdown file");
    assert!(
        ifu.contains("iface eth0.20 inet manual\n    vlan-raw-device eth0\n"),
        "{ifu}"
    );
    assert!(!h.ip("link").contains("bond0"), "persist only: no device");
    assert_eq!(changed(&h.ok("persist.yml", persist, &[])), 0);

    // Dropping a port removes its keyfile.
    let fewer = persist.replace("ports: [p0, p1]", "ports: [p0]");
    assert_eq!(changed(&h.ok("fewer.yml", &fewer, &[])), 1);
    assert!(!has(&h.etc_path(
        "NetworkManager/system-connections/rigger-bond0-port-p1.nmconnection"
    )));

    // Live: the kernel cannot make a VLAN; the task fails saying why and leaves nothing behind.
    let live = "- hosts: net\n  gather_facts: false\n  tasks:\n    - network_interface: { name: eth0.30, type: vlan, vlan_id: 30, vlan_link: eth0, addresses: [198.18.30.2/24], backend: ifupdown, rollback_timeout: 20 }\n";
    let (code, out, err) = h.play("vlan-live.yml", live, &[]);
    assert_ne!(code, 0, "{out}{err}");
    let all = format!("{out}{err}");
    assert!(all.contains("cannot create vlan interfaces"), "{all}");
    assert!(all.contains("previous configuration was restored"), "{all}");
    assert!(
        !has(&h.etc_path("network/interfaces.d/eth0.30")),
        "the file written before the live step was rolled back"
    );
}

#[test]
fn change_that_cuts_the_ssh_path_is_rolled_back() {
    let h = NetnsHost::new();
    // Moving the host's only address away from the one sshd listens on cuts rigger off.
    let cut = r#"
- hosts: net
  gather_facts: false
  tasks:
    - network_interface: { name: eth0, addresses: [192.0.2.11/24], apply: live, rollback_timeout: 4 }
      register: r
    - debug: { msg: "not reached" }
"#;
    let started = Instant::now();
    let (code, out, err) = h.play("cut.yml", cut, &[]);
    let took = started.elapsed();
    let all = format!("{out}{err}");
    assert_ne!(code, 0, "{all}");
    assert!(all.contains("lost the connection"), "{all}");
    assert!(all.contains("restored its previous network configuration"), "{all}");
    assert!(!all.contains("not reached"), "{all}");
    assert!(
        took >= Duration::from_secs(4),
        "the guard fires after the timeout ({took:?})"
    );
    let addrs = h.ip("addr show dev eth0");
    assert!(
        addrs.contains("192.0.2.10/24") && !addrs.contains("192.0.2.11"),
        "{addrs}"
    );

    // The host is usable again, and a harmless change is confirmed (not rolled back).
    let harmless = "- hosts: net\n  gather_facts: false\n  tasks:\n    - network_interface: { name: eth0, addresses: [192.0.2.10/24, 192.0.2.12/24], apply: live, rollback_timeout: 20 }\n";
    let out = h.ok("harmless.yml", harmless, &[]);
    assert_eq!(changed(&out), 1, "{out}");
    std::thread::sleep(Duration::from_secs(1));
    assert!(h.ip("addr show dev eth0").contains("192.0.2.12/24"));
}
