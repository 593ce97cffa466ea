//! Process-tree helpers over /proc.
//!
//! This kernel has no `/proc/<pid>/task/<tid>/children`, so children are
//! found by scanning every `/proc/<pid>/stat` for its parent PID.

use std::fs;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

/// PIDs whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if parent_of(pid) == Some(parent) {
            children.push(pid);
        }
    }
    children.sort_unstable();
    children
}

/// `parent` and all its descendants, parent first.
pub fn tree_of(parent: u32) -> Vec<u32> {
    let mut tree = vec![parent];
    let mut i = 0;
    while i < tree.len() {
        let kids = children_of(tree[i]);
        tree.extend(kids);
        i += 1;
    }
    tree
}

/// The parent PID from `/proc/<pid>/stat` (None when the process is gone).
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: skip past the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    fields.next()?.parse().ok()
}

/// Whether `/proc/<pid>` exists at all (a zombie still counts as existing).
pub fn exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Sends SIGKILL to every PID in `pids`; processes that are already gone are not an error.
pub fn kill9(pids: &[u32]) {
    for &pid in pids {
        if let Ok(pid) = libc::pid_t::try_from(pid) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Makes this test process the reaper of orphans from its own descendants
/// (PR_SET_CHILD_SUBREAPER), once. PID 1 on this machine never reaps orphans,
/// so a grandchild whose parent was killed first would stay a zombie forever;
/// as our orphan, [`reap`] can collect it.
pub fn become_subreaper() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only sets a flag on this process.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    });
}

/// Reaps those of `pids` that became our (orphaned) children, waiting up to
/// `timeout` for all of them to be gone. Never pass a PID owned by a
/// `std::process::Child`: reaping it here would break that handle's `wait()`.
pub fn reap(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        for &pid in pids {
            if let Ok(pid) = libc::pid_t::try_from(pid) {
                let mut status = 0;
                // SAFETY: waitpid on one PID with WNOHANG; `status` is a valid out-pointer.
                unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            }
        }
        if pids.iter().all(|&p| !exists(p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until none of `pids` exist (reaped by their parent), up to `timeout`.
pub fn wait_gone(pids: &[u32], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pids.iter().all(|&p| !exists(p)) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The socket inode of a TCP socket in LISTEN state on `addr:port`, from /proc/net/tcp.
pub fn listening_inode(addr: Ipv4Addr, port: u16) -> Option<u64> {
    // The kernel prints the in-memory (network order) address as a native u32 in hex.
    let want = format!("{:08X}", u32::from_ne_bytes(addr.octets()));
    listeners("/proc/net/tcp")
        .into_iter()
        .find(|(a, p, _)| *a == want && *p == port)
        .map(|(_, _, inode)| inode)
}

/// Whether a TCP listener on this machine would keep `addr:port` from being
/// bound: one on exactly that address, or on the IPv4 or IPv6 wildcard.
///
/// Read from /proc rather than probed with a bind: a probing listener can be
/// inherited for a moment by any process another thread forks, and a client
/// that connects in that window gets accepted by a socket that should be gone.
pub fn port_taken(addr: Ipv4Addr, port: u16) -> bool {
    let exact = format!("{:08X}", u32::from_ne_bytes(addr.octets()));
    let v4 = listeners("/proc/net/tcp")
        .into_iter()
        .any(|(a, p, _)| p == port && (a == exact || a == "00000000"));
    let v6 = listeners("/proc/net/tcp6")
        .into_iter()
        .any(|(a, p, _)| p == port && a.bytes().all(|b| b == b'0'));
    v4 || v6
}

/// (hex address, port, inode) of every LISTEN socket in a /proc/net/tcp{,6} table.
fn listeners(table: &str) -> Vec<(String, u16, u64)> {
    let Ok(text) = fs::read_to_string(table) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() <= 9 || fields[3] != "0A" {
            continue;
        }
        let Some((addr, port)) = fields[1].split_once(':') else {
            continue;
        };
        if let (Ok(port), Ok(inode)) = (u16::from_str_radix(port, 16), fields[9].parse()) {
            found.push((addr.to_string(), port, inode));
        }
    }
    found
}

/// Whether `pid` holds the socket with inode `inode` among its open files.
pub fn holds_socket(pid: u32, inode: u64) -> bool {
    let want = format!("socket:[{inode}]");
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .any(|fd| fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == want.as_str()))
}

/// The soft and hard open-files limits ("1024 4096") in text holding a line
/// of /proc/PID/limits (the file itself, or a command's output of it).
pub fn max_open_files(limits: &str) -> Option<String> {
    let line = limits.lines().find(|l| l.contains("Max open files"))?;
    let at = line.find("Max open files")? + "Max open files".len();
    Some(line[at..].split_whitespace().take(2).collect::<Vec<_>>().join(" "))
}
