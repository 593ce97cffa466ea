//! Real OpenSSH test hosts on loopback addresses.
//!
//! Each host is one `sshd -D -e` child process listening on its own
//! `127.B.C.D:PORT`, with its own ed25519 host key. All hosts of a
//! [`TestHosts`] accept one generated client key for `root`, and the fleet
//! comes with a `known_hosts` file and an Ansible INI inventory.
//!
//! Every sshd runs as PID 1 of its own PID namespace
//! (`unshare --pid --fork --kill-child`). This is what makes cleanup
//! complete on a machine whose PID 1 does not reap orphans: killing the
//! namespace's sshd makes the kernel kill and reap every process of that
//! host (sessions, commands, anything a command left in the background),
//! and `unshare`, our direct child, reaps sshd; we then `wait()` `unshare`.
//!
//! # Isolated hosts ([`HostOpts::isolated_root`])
//! The sshd additionally gets its own mount and UTS namespaces (private
//! mount propagation, so nothing leaks to the machine):
//! - `/srv` is a bind mount of the host's `srv/` directory (see
//!   [`TestHosts::root_dir`]), so `/srv/rigger-test/...` is host-private and
//!   readable from the test through that directory;
//! - `/tmp` is a bind mount of the host's `tmp/` directory;
//! - `/etc` is an overlay: reads see the machine's `/etc`, writes land in the
//!   host's `etc-upper/` directory;
//! - `/proc` is remounted, so `ps` inside the host sees only that host;
//! - the hostname is the host's inventory name (`host1`, `host2`, ...).
//!
//! Not isolated: the network (hosts share the machine's loopback), users and
//! uids, `/usr`, `/var`, `/root`, `/home`, `/dev`, `/sys`, installed packages.
//! Every host (isolated or not) has `HOME` set to its own empty directory.
//!
//! # Overlay-root hosts ([`TestHosts::with_overlay_root`])
//! Everything an isolated host has, plus overlays on `/usr`, `/var`, `/root`,
//! `/home` and `/opt` (upper dirs in the host's directory). Package managers,
//! `useradd`, init scripts can then change the whole system as seen by the
//! host, and every change vanishes with it: the machine is never touched.

use std::fmt::Write as _;
use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::procs;

/// How long a host may take to start listening before the harness gives up.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How many fresh addresses to try when one turns out to be taken.
const BIND_ATTEMPTS: usize = 8;
const SSHD: &str = "/usr/sbin/sshd";
/// Directories that overlay-root hosts see as overlays (besides `/etc`).
const OVERLAID: &[&str] = &["/usr", "/var", "/root", "/home", "/opt"];
/// Every directory that some kind of host mounts over: isolated hosts
/// `/tmp`, `/srv`, `/etc` and `/proc`, overlay-root hosts also [`OVERLAID`].
/// A host's own files (keys, sshd_config, HOME, upper dirs) must lie outside
/// all of them, or the host would not see them at the path the test uses.
const MOUNTED_OVER: &[&str] = &[
    "/tmp", "/srv", "/etc", "/proc", "/usr", "/var", "/root", "/home", "/opt",
];
/// Where the hosts' files go when the target directory is under one of
/// [`MOUNTED_OVER`] (a clone in `$HOME` or `/tmp`): runtime state of root's
/// processes, which no host mounts over.
const FALLBACK_BASE: &str = "/run/rigger-tests";

/// True if `path` is `/`-absolute and under (or is) a directory some host mounts over.
fn mounted_over(path: &Path) -> bool {
    MOUNTED_OVER.iter().any(|d| path.starts_with(d))
}

/// The directory that holds every fleet's directory: the test target's
/// scratch directory (`CARGO_TARGET_TMPDIR`, resolved through symlinks)
/// when no host mounts over it, else [`FALLBACK_BASE`]. Chosen here so the
/// tests run from any checkout without settings.
pub fn hosts_base() -> PathBuf {
    hosts_base_for(Path::new(env!("CARGO_TARGET_TMPDIR")))
}

/// [`hosts_base`] for a target scratch directory `target`.
pub fn hosts_base_for(target: &Path) -> PathBuf {
    let target = fs::canonicalize(target).unwrap_or_else(|_| target.to_path_buf());
    if !mounted_over(&target) {
        return target;
    }
    let base = PathBuf::from(FALLBACK_BASE);
    fs::create_dir_all(&base).unwrap_or_else(|e| panic!("test harness: cannot create {}: {e}", base.display()));
    // Traversable, not listable: sshd reads a host's authorized_keys as the
    // user who logs in (test users besides root), through this directory.
    set_mode(&base, 0o711);
    let base = fs::canonicalize(&base).unwrap_or(base);
    assert!(
        !mounted_over(&base),
        "test harness: {} resolves to {}, which test hosts mount over",
        FALLBACK_BASE,
        base.display()
    );
    base
}

/// Per-host options.
#[derive(Debug, Clone, Copy, Default)]
pub struct HostOpts {
    /// Give the host private `/srv`, `/tmp`, `/etc` (overlay), `/proc` and hostname.
    pub isolated_root: bool,
}

/// An address and port where nothing listens: a host that is down.
#[derive(Debug, Clone, Copy)]
pub struct DownHost {
    pub addr: Ipv4Addr,
    pub port: u16,
}

impl DownHost {
    /// An inventory line for this host, under `name`, with the given client key.
    pub fn inventory_line(&self, name: &str, client_key: &Path) -> String {
        inventory_line(name, self.addr, self.port, client_key)
    }
}

/// Returns an address/port on loopback where nothing listens (connections are refused).
pub fn down_host() -> DownHost {
    for _ in 0..100 {
        let (addr, port) = next_candidate();
        if is_free(addr, port) {
            return DownHost { addr, port };
        }
    }
    panic!("test harness: found no free loopback address/port for a down host");
}

/// A fleet of running sshd test hosts; dropping it kills them all and removes their files.
pub struct TestHosts {
    hosts: Vec<Host>,
    client_key: PathBuf,
    known_hosts: PathBuf,
    inventory: PathBuf,
    // Declared last so it is removed after the hosts are stopped (Drop stops them first anyway).
    dir: tempfile::TempDir,
}

struct Host {
    name: String,
    addr: Ipv4Addr,
    port: u16,
    dir: PathBuf,
    opts: HostOpts,
    /// Overlays on /usr, /var, /root, /home and /opt too (implies `isolated_root`).
    overlay_root: bool,
    /// The public host key line: `ssh-ed25519 AAAA...`.
    host_key: String,
    /// The `unshare` process whose child is the sshd (PID 1 of the host's PID namespace).
    process: Option<Child>,
}

enum Readiness {
    Ready,
    Starting,
    /// The sshd exited because its address was taken: pick another one.
    AddressTaken,
}

impl TestHosts {
    /// Starts `n` plain hosts (shared file system).
    pub fn new(n: usize) -> TestHosts {
        TestHosts::with_opts(n, HostOpts::default())
    }

    /// Starts `n` hosts, all with `opts`.
    pub fn with_opts(n: usize, opts: HostOpts) -> TestHosts {
        TestHosts::with_each(&vec![opts; n])
    }

    /// Starts one host per entry of `opts`, each with its own options.
    pub fn with_each(opts: &[HostOpts]) -> TestHosts {
        TestHosts::launch(opts, false)
    }

    /// Starts `n` isolated hosts whose whole system (`/etc`, `/usr`, `/var`,
    /// `/root`, `/home`, `/opt`) is an overlay over the machine's: packages,
    /// users and services can be changed on them without touching the machine.
    pub fn with_overlay_root(n: usize) -> TestHosts {
        TestHosts::launch(&vec![HostOpts { isolated_root: true }; n], true)
    }

    fn launch(opts: &[HostOpts], overlay_root: bool) -> TestHosts {
        ensure_privsep_dir();
        // If an unshare process ever dies before its sshd, the sshd becomes ours to reap.
        procs::become_subreaper();
        let base = hosts_base();
        let dir = tempfile::Builder::new()
            .prefix("testhosts-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("test harness: cannot create a temp dir in {}: {e}", base.display()));
        let root = dir.path().to_path_buf();
        // hosts_base() chose it so; a host would not find its own files otherwise.
        assert!(
            !mounted_over(&root),
            "test harness: {} is under one of {MOUNTED_OVER:?}, which test hosts mount over",
            root.display()
        );

        // Keys: one client key for the fleet plus one host key per host, generated in parallel.
        let client_key = root.join("client_ed25519");
        let mut hosts = Vec::with_capacity(opts.len());
        let mut keygens = vec![spawn_keygen(&client_key, "rigger-test-client")];
        for (i, opt) in opts.iter().enumerate() {
            let name = format!("host{}", i + 1);
            let hdir = root.join(&name);
            for sub in ["home", "srv", "tmp", "etc-upper", "etc-work"] {
                create_dir(&hdir.join(sub));
            }
            if overlay_root {
                for d in OVERLAID {
                    let name = d.trim_start_matches('/');
                    create_dir(&hdir.join(format!("{name}-upper")));
                    create_dir(&hdir.join(format!("{name}-work")));
                }
            }
            // Isolated /tmp must behave like /tmp: world-writable and sticky.
            set_mode(&hdir.join("tmp"), 0o1777);
            keygens.push(spawn_keygen(&hdir.join("ssh_host_ed25519_key"), &name));
            hosts.push(Host {
                name,
                addr: Ipv4Addr::LOCALHOST,
                port: 0,
                dir: hdir,
                opts: *opt,
                overlay_root,
                host_key: String::new(),
                process: None,
            });
        }
        for (mut keygen, what) in keygens
            .into_iter()
            .zip(std::iter::once("client").chain(std::iter::repeat("host")))
        {
            let status = keygen
                .wait()
                .unwrap_or_else(|e| panic!("test harness: ssh-keygen ({what} key): {e}"));
            assert!(
                status.success(),
                "test harness: ssh-keygen ({what} key) failed: {status}"
            );
        }
        let client_pub = read_pub(&client_key.with_extension("pub"));
        let authorized_keys = root.join("authorized_keys");
        write(&authorized_keys, &format!("{client_pub}\n"));
        for host in &mut hosts {
            host.host_key = read_pub(&host.dir.join("ssh_host_ed25519_key.pub"));
        }

        let mut fleet = TestHosts {
            hosts,
            known_hosts: root.join("known_hosts"),
            inventory: root.join("inventory.ini"),
            client_key,
            dir,
        };
        fleet.launch_all();
        fleet.write_known_hosts();
        fleet.write_inventory();
        fleet
    }

    /// Number of hosts.
    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Inventory name of host `i` (0-based index): `host{i+1}`.
    pub fn name(&self, i: usize) -> &str {
        &self.hosts[i].name
    }

    pub fn addr(&self, i: usize) -> Ipv4Addr {
        self.hosts[i].addr
    }

    pub fn port(&self, i: usize) -> u16 {
        self.hosts[i].port
    }

    /// Host `i`'s public host key as `ssh-ed25519 AAAA...` (no comment).
    pub fn host_key(&self, i: usize) -> &str {
        &self.hosts[i].host_key
    }

    /// The client private key that every host accepts for `root`.
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// A known_hosts file with a `[addr]:port` entry for every host.
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// An INI inventory: `hostN ansible_host=... ansible_port=... ansible_user=root
    /// ansible_ssh_private_key_file=...`, one line per host, in group `[testhosts]`.
    pub fn inventory(&self) -> &Path {
        &self.inventory
    }

    /// The fleet's temp directory (removed on drop).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The machine-side directory that host `i` sees as `/srv` (only when isolated).
    pub fn root_dir(&self, i: usize) -> Option<PathBuf> {
        let host = &self.hosts[i];
        host.opts.isolated_root.then(|| host.dir.join("srv"))
    }

    /// The machine-side directory that host `i` sees as `/tmp` (only when isolated).
    pub fn tmp_dir(&self, i: usize) -> Option<PathBuf> {
        let host = &self.hosts[i];
        host.opts.isolated_root.then(|| host.dir.join("tmp"))
    }

    /// The directory that is `HOME` for sessions on host `i`.
    pub fn home_dir(&self, i: usize) -> PathBuf {
        self.hosts[i].dir.join("home")
    }

    /// Host `i`'s sshd log (stderr, LogLevel ERROR).
    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.hosts[i].dir.join("sshd.log")).unwrap_or_default()
    }

    /// The PID of host `i`'s listening sshd, if it is running.
    pub fn sshd_pid(&self, i: usize) -> Option<u32> {
        let unshare = self.hosts[i].process.as_ref()?.id();
        procs::children_of(unshare).first().copied()
    }

    /// Every process that belongs to host `i` (unshare, sshd, sessions, commands).
    pub fn pids(&self, i: usize) -> Vec<u32> {
        self.hosts[i]
            .process
            .as_ref()
            .map(|p| procs::tree_of(p.id()))
            .unwrap_or_default()
    }

    /// Whether host `i` is running (stopped hosts refuse connections).
    pub fn is_running(&self, i: usize) -> bool {
        self.hosts[i].process.is_some()
    }

    /// Stops host `i` like a machine that goes down: every process of the host is
    /// killed, so open connections drop and new ones are refused.
    pub fn stop(&mut self, i: usize) {
        self.hosts[i].stop();
    }

    /// Starts host `i` again with the same address, port and host key.
    pub fn start(&mut self, i: usize) {
        if self.hosts[i].process.is_some() {
            return;
        }
        let host = &mut self.hosts[i];
        host.spawn();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match host.readiness() {
                Readiness::Ready => return,
                Readiness::Starting if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Readiness::Starting => {
                    host.stop();
                    panic!(
                        "test harness: {} did not start listening in {START_TIMEOUT:?}",
                        host.name
                    )
                }
                Readiness::AddressTaken => panic!(
                    "test harness: {} cannot restart: {}:{} is taken by another process",
                    host.name, host.addr, host.port
                ),
            }
        }
    }

    /// Kills the per-connection sshd processes of host `i`, and the commands they
    /// run, dropping every open connection mid-command, while the host keeps
    /// accepting new connections. Returns how many connections were killed.
    pub fn kill_sessions(&mut self, i: usize) -> usize {
        let Some(sshd) = self.sshd_pid(i) else {
            return 0;
        };
        let sessions = procs::children_of(sshd);
        // Whole trees, so no command keeps running after its connection is gone;
        // the host's sshd (its namespace's init) reaps all of them.
        let doomed: Vec<u32> = sessions.iter().flat_map(|&pid| procs::tree_of(pid)).collect();
        procs::kill9(&doomed);
        procs::wait_gone(&doomed, Duration::from_secs(5));
        sessions.len()
    }

    /// A `ssh` command (system OpenSSH client) to host `i` that checks the host key
    /// strictly against [`known_hosts`](Self::known_hosts). Append the remote command.
    pub fn ssh_command(&self, i: usize) -> Command {
        let host = &self.hosts[i];
        let mut cmd = Command::new("ssh");
        cmd.args([
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
        ])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", self.known_hosts.display()))
        .args(["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-i"])
        .arg(&self.client_key)
        .args(["-p", &host.port.to_string()])
        .arg(format!("root@{}", host.addr))
        .stdin(Stdio::null());
        cmd
    }

    /// Runs `command` on host `i` with the system ssh client.
    pub fn ssh(&self, i: usize, command: &str) -> Output {
        self.ssh_command(i)
            .arg(command)
            .output()
            .unwrap_or_else(|e| panic!("test harness: cannot run ssh: {e}"))
    }

    fn launch_all(&mut self) {
        for host in &mut self.hosts {
            host.pick_address();
            host.spawn();
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let mut attempts = vec![1; self.hosts.len()];
        let mut pending: Vec<usize> = (0..self.hosts.len()).collect();
        while !pending.is_empty() {
            let mut still = Vec::with_capacity(pending.len());
            for i in pending {
                let host = &mut self.hosts[i];
                match host.readiness() {
                    Readiness::Ready => {}
                    Readiness::Starting => still.push(i),
                    Readiness::AddressTaken if attempts[i] < BIND_ATTEMPTS => {
                        attempts[i] += 1;
                        host.pick_address();
                        host.spawn();
                        still.push(i);
                    }
                    Readiness::AddressTaken => {
                        panic!(
                            "test harness: {}: every address tried was taken:\n{}",
                            host.name,
                            host.log()
                        )
                    }
                }
            }
            pending = still;
            if pending.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let names: Vec<&str> = pending.iter().map(|&i| self.hosts[i].name.as_str()).collect();
                panic!("test harness: hosts {names:?} did not start listening in {START_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn write_known_hosts(&self) {
        let mut text = String::new();
        for host in &self.hosts {
            let _ = writeln!(text, "[{}]:{} {}", host.addr, host.port, host.host_key);
        }
        write(&self.known_hosts, &text);
    }

    fn write_inventory(&self) {
        let mut text = String::from("[testhosts]\n");
        for host in &self.hosts {
            text.push_str(&inventory_line(&host.name, host.addr, host.port, &self.client_key));
            text.push('\n');
        }
        write(&self.inventory, &text);
    }
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for host in &mut self.hosts {
            if panicking {
                let log = host.log();
                if !log.trim().is_empty() {
                    eprintln!("--- sshd log of {} ({}:{}) ---\n{log}", host.name, host.addr, host.port);
                }
            }
            host.stop();
        }
    }
}

impl Host {
    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }

    fn pick_address(&mut self) {
        for _ in 0..100 {
            let (addr, port) = next_candidate();
            if is_free(addr, port) {
                self.addr = addr;
                self.port = port;
                return;
            }
        }
        panic!("test harness: found no free loopback address/port for {}", self.name);
    }

    fn write_config(&self) -> PathBuf {
        let d = &self.dir;
        let authorized_keys = d.parent().map(|p| p.join("authorized_keys")).unwrap_or_default();
        let config = format!(
            "ListenAddress {addr}:{port}\n\
             HostKey {hostkey}\n\
             PidFile none\n\
             UsePAM no\n\
             StrictModes no\n\
             PermitRootLogin yes\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             AuthorizedKeysFile {authorized_keys}\n\
             SetEnv HOME={home}\n\
             MaxSessions 200\n\
             MaxStartups 200:30:400\n\
             LogLevel ERROR\n\
             PrintMotd no\n\
             Subsystem sftp internal-sftp\n",
            addr = self.addr,
            port = self.port,
            hostkey = d.join("ssh_host_ed25519_key").display(),
            authorized_keys = authorized_keys.display(),
            home = d.join("home").display(),
        );
        let path = d.join("sshd_config");
        write(&path, &config);
        path
    }

    fn spawn(&mut self) {
        let config = self.write_config();
        let log_path = self.dir.join("sshd.log");
        let log = fs::File::create(&log_path)
            .unwrap_or_else(|e| panic!("test harness: cannot create {}: {e}", log_path.display()));
        let mut cmd = Command::new("unshare");
        cmd.args(["--pid", "--fork", "--kill-child"]);
        if self.opts.isolated_root {
            // Paths go in as positional parameters, never spliced into the script.
            cmd.args([
                "--mount-proc",
                "--uts",
                "--propagation",
                "private",
                "--",
                "/bin/sh",
                "-c",
            ])
            .arg(
                "set -e\n\
                     mount -t overlay overlay -o \"lowerdir=/etc,upperdir=$1/etc-upper,workdir=$1/etc-work\" /etc\n\
                     mount --bind \"$1/srv\" /srv\n\
                     mount --bind \"$1/tmp\" /tmp\n\
                     hostname \"$2\"\n\
                     if [ \"$4\" = 1 ]; then for d in usr var root home opt; do \
                       mount -t overlay overlay -o \"lowerdir=/$d,upperdir=$1/$d-upper,workdir=$1/$d-work\" \"/$d\"; \
                     done; fi\n\
                     exec \"$3\" -D -e -f \"$1/sshd_config\"",
            )
            .arg("sh")
            .arg(&self.dir)
            .arg(&self.name)
            .arg(SSHD)
            .arg(if self.overlay_root { "1" } else { "0" });
        } else {
            cmd.args(["--", SSHD, "-D", "-e", "-f"]).arg(&config);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("test harness: cannot run unshare/sshd: {e}"));
        self.process = Some(child);
    }

    fn readiness(&mut self) -> Readiness {
        let Some(child) = self.process.as_mut() else {
            return Readiness::Starting;
        };
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                self.process = None;
                let log = self.log();
                if log.contains("Address already in use") || log.contains("Cannot bind any address") {
                    return Readiness::AddressTaken;
                }
                panic!(
                    "test harness: sshd of {} exited ({status}) before listening:\n{log}",
                    self.name
                );
            }
            Err(e) => panic!("test harness: waiting for sshd of {}: {e}", self.name),
        }
        // Listening is not enough: the socket must belong to *our* sshd, not to
        // another test process that happened to pick the same address.
        let Some(inode) = procs::listening_inode(self.addr, self.port) else {
            return Readiness::Starting;
        };
        let ours = procs::children_of(child.id())
            .iter()
            .any(|&pid| procs::holds_socket(pid, inode));
        if ours {
            Readiness::Ready
        } else {
            Readiness::Starting
        }
    }

    fn stop(&mut self) {
        let Some(mut child) = self.process.take() else {
            return;
        };
        // Kill the namespace's init (sshd) first: the kernel then kills and reaps every
        // process of the host, and unshare reaps sshd. Killing unshare first would
        // orphan sshd to PID 1, which never reaps it.
        let sshds = procs::children_of(child.id());
        procs::kill9(&sshds);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                // unshare had not forked yet, or did not exit: kill it (--kill-child takes the rest down).
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    procs::reap(&sshds, Duration::from_secs(5));
                    return;
                }
            }
        }
    }
}

/// The next candidate address and port for a host.
///
/// Each test process walks its own range of 127.B.C.D (derived from its PID,
/// B >= 2 so 127.0.x.x and Debian's 127.0.1.1 stay untouched) so that parallel
/// test binaries and parallel tests rarely even try the same address;
/// collisions that still happen are caught by the check of /proc/net/tcp and by the
/// socket-ownership check at start-up.
fn next_candidate() -> (Ipv4Addr, u16) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const HOSTS_PER_C: u64 = 254; // D in 1..=254
    const SPACE: u64 = 250 * 256 * HOSTS_PER_C; // B in 2..=251
    let n = u64::from(NEXT.fetch_add(1, Ordering::Relaxed));
    let lin = (u64::from(std::process::id()) * HOSTS_PER_C + n) % SPACE;
    let b = 2 + lin / (256 * HOSTS_PER_C);
    let c = (lin / HOSTS_PER_C) % 256;
    let d = 1 + lin % HOSTS_PER_C;
    // Vary the port too, in case someone listens on a wildcard address with one of them.
    let port = 2200 + (n % 100) as u16;
    (Ipv4Addr::new(127, b as u8, c as u8, d as u8), port)
}

fn is_free(addr: Ipv4Addr, port: u16) -> bool {
    !procs::port_taken(addr, port)
}

fn inventory_line(name: &str, addr: Ipv4Addr, port: u16, key: &Path) -> String {
    format!(
        "{name} ansible_host={addr} ansible_port={port} ansible_user=root ansible_ssh_private_key_file={}",
        key.display()
    )
}

/// sshd refuses to start without its privilege-separation directory, and
/// nothing creates /run/sshd here (no systemd, services blocked on install).
fn ensure_privsep_dir() {
    let dir = Path::new("/run/sshd");
    if !dir.is_dir() {
        create_dir(dir);
        set_mode(dir, 0o755);
    }
}

fn spawn_keygen(path: &Path, comment: &str) -> Child {
    Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("test harness: cannot run ssh-keygen: {e}"))
}

/// `type base64` of a .pub file, without its comment.
fn read_pub(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("test harness: {}: {e}", path.display()));
    text.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn create_dir(path: &Path) {
    fs::create_dir_all(path).unwrap_or_else(|e| panic!("test harness: cannot create {}: {e}", path.display()));
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("test harness: chmod {}: {e}", path.display()));
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("test harness: cannot write {}: {e}", path.display()));
}
