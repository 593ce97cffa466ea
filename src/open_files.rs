//! The open-files limit of a controller that holds a connection to every
//! host. A run keeps each host's SSH connection for the whole play, and
//! `rigger watch` one per host for as long as it runs; the usual soft limit
//! (1,024, also systemd's default for services) stops either near a
//! thousand hosts with "Too many open files" on every further connection.
//! Both raise the soft limit as far as their hosts need (no further: the
//! programs a run starts inherit it, and most are better off with the limit
//! they expect), say so when even the hard limit is too low, and `watch`
//! gives the runs it starts the limit it was started with.

use std::sync::OnceLock;

/// The soft limit this process started with, once [`raise_for`] changed it.
static ORIGINAL_SOFT: OnceLock<libc::rlim_t> = OnceLock::new();

/// Descriptors a controller needs besides its hosts' sockets: the state
/// database, the HTTP listener and its clients, logs, notification
/// connections.
const BESIDES_HOSTS: u64 = 64;

/// What [`raise_for`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raised {
    /// The soft limit was enough already.
    Enough { soft: u64 },
    /// Raised from `from` to `to`, what the hosts need.
    To { from: u64, to: u64 },
    /// The hard limit is below what `hosts` need: raised to it, and the
    /// message says what to change.
    Short { to: u64, needed: u64, message: String },
}

/// Raise the soft open-files limit so that `hosts` connections fit, up to
/// the hard limit.
pub fn raise_for(hosts: usize) -> std::io::Result<Raised> {
    let needed = hosts as u64 + BESIDES_HOSTS;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let (soft, hard) = (lim.rlim_cur, lim.rlim_max);
    if soft >= needed {
        return Ok(Raised::Enough { soft });
    }
    let target = needed.min(hard);
    let new = libc::rlimit {
        rlim_cur: target,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &new) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let _ = ORIGINAL_SOFT.set(lim.rlim_cur);
    if target < needed {
        return Ok(Raised::Short {
            to: target,
            needed,
            message: format!(
                "the open-files limit allows {target} descriptors and {hosts} hosts need about {needed}: \
                 hosts past the limit will fail to connect (\"Too many open files\"); raise the hard limit \
                 (`LimitNOFILE=` of a systemd unit, `nofile` in /etc/security/limits.conf, `ulimit -Hn`)"
            ),
        });
    }
    Ok(Raised::To { from: soft, to: target })
}

/// [`raise_for`], its problems said as warnings (a run goes on: hosts
/// past the limit then fail to connect, each with its error).
pub fn raise_or_warn(hosts: usize) {
    match raise_for(hosts) {
        Ok(Raised::Short { message, .. }) => crate::stdio::warn(&message),
        Ok(_) => {}
        Err(e) => crate::stdio::warn(&format!("cannot read or raise the open-files limit: {e}")),
    }
}

/// Give a program this process starts the soft limit the process started
/// with (a daemon or script it starts should not see a changed limit).
pub fn restore_in_child(cmd: &mut tokio::process::Command) {
    let Some(&soft) = ORIGINAL_SOFT.get() else {
        return;
    };
    // SAFETY: the closure runs in the child between fork and exec and calls
    // only getrlimit/setrlimit, which are async-signal-safe; it allocates
    // nothing.
    unsafe {
        cmd.pre_exec(move || {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                lim.rlim_cur = soft;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> (u64, u64) {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        (lim.rlim_cur, lim.rlim_max)
    }

    fn set(soft: u64, hard: u64) {
        let lim = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }

    /// One test (the limits and the remembered original are the process's):
    /// a low soft limit is raised to what the hosts need, a program started
    /// afterwards gets the original back, and a hard limit below what the
    /// hosts need is reported with what to change.
    #[tokio::test]
    async fn the_soft_limit_is_raised_for_the_hosts_and_restored_for_children() {
        let (_, hard) = limits();
        assert!(
            hard >= 2048,
            "this test needs a hard open-files limit of 2048 (it is {hard})"
        );
        set(32, 2048);
        assert_eq!(raise_for(10).unwrap(), Raised::To { from: 32, to: 74 });
        assert_eq!(limits(), (74, 2048));
        assert_eq!(raise_for(5).unwrap(), Raised::Enough { soft: 74 });
        assert_eq!(raise_for(1000).unwrap(), Raised::To { from: 74, to: 1064 });
        assert_eq!(limits(), (1064, 2048));

        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.args(["-c", "ulimit -Sn; ulimit -Hn"]);
        restore_in_child(&mut cmd);
        let out = cmd.output().await.unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "32\n2048\n");

        set(100, 600);
        match raise_for(1000).unwrap() {
            Raised::Short { to, needed, message } => {
                assert_eq!((to, needed), (600, 1064));
                assert!(
                    message.contains("allows 600 descriptors and 1000 hosts need about 1064"),
                    "{message}"
                );
                assert!(message.contains("LimitNOFILE="), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(limits(), (600, 600));
        // The original is the first one.
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.args(["-c", "ulimit -Sn"]);
        restore_in_child(&mut cmd);
        assert_eq!(String::from_utf8_lossy(&cmd.output().await.unwrap().stdout), "32\n");
    }
}
