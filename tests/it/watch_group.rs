//! `rigger watch` instances in a group (docs/watch.md "Several
//! instances"): three real `rigger watch` processes share 30 sshd test
//! hosts through leases in one real PostgreSQL server; one is killed with
//! SIGKILL while its alerts wait for their `for:`; the others take its
//! hosts within the lease period, continue the alerts' timers and deliver
//! each alert once to a real SMTP server; the killed instance comes back
//! and gets its share again, without a mail sent twice.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::state::testpg;
use crate::support::TestHosts;
use crate::watch::{free_port, get, wait_for, Smtp, Watch};

const LEASE: f64 = 3.0;

/// The hosts an instance watches (its `/health`), or None when it does
/// not answer.
fn watched(port: u16) -> Option<BTreeSet<String>> {
    let h: Value = serde_json::from_str(&get_opt(port, "/health")?).ok()?;
    Some(h["hosts"].as_object()?.keys().cloned().collect())
}

fn get_opt(port: u16, path: &str) -> Option<String> {
    std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    Some(get(port, path))
}

/// The hosts of `ports` when each host is watched by exactly one of them
/// and all `n` are; else None.
fn partition(ports: &[u16], n: usize) -> Option<Vec<BTreeSet<String>>> {
    let sets: Vec<BTreeSet<String>> = ports.iter().map(|p| watched(*p)).collect::<Option<_>>()?;
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<&String> = sets.iter().flatten().collect();
    (total == n && union.len() == n).then_some(sets)
}

/// `host -> (state, activeSince)` of the `Flag` alerts an instance holds.
fn flag_alerts(port: u16) -> BTreeMap<String, (String, String)> {
    let Some(body) = get_opt(port, "/alerts") else {
        return BTreeMap::new();
    };
    let alerts: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    alerts
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == "Flag")
        .map(|a| {
            (
                a["labels"]["host"].as_str().unwrap_or_default().to_string(),
                (
                    a["state"].as_str().unwrap_or_default().to_string(),
                    a["activeSince"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

/// How many `[FIRING…] Flag HOST` mails arrived, per host.
fn mails_per_host(smtp: &Smtp) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in smtp.messages() {
        let Some(subject) = m
            .lines()
            .take_while(|l| !l.trim().is_empty())
            .find_map(|l| l.strip_prefix("Subject: "))
        else {
            continue;
        };
        if !subject.starts_with("[FIRING:1] Flag ") {
            *out.entry(format!("other: {subject}")).or_insert(0) += 1;
            continue;
        }
        let host = subject["[FIRING:1] Flag ".len()..]
            .split_whitespace()
            .next()
            .unwrap_or_default();
        *out.entry(host.to_string()).or_insert(0) += 1;
    }
    out
}

#[test]
fn three_instances_share_hosts_take_over_a_killed_one_and_deliver_once() {
    const N: usize = 30;
    let hosts = TestHosts::new(N);
    let pg = testpg::TestPg::start();
    let url = pg.create_db("wgroup");
    let work = tempfile::tempdir().unwrap();
    let smtp_port = free_port();
    let smtp = Smtp::start(smtp_port, &work.path().join("mail"));
    let flag = work.path().join("flag");
    std::fs::write(&flag, "0\n").unwrap();
    let cfg = work.path().join("watch.yml");
    std::fs::write(
        &cfg,
        format!(
            r#"interval: 1s
host_down_after: 10s
state: {url}
group: {{name: test, lease: {LEASE}s}}
custom_metrics:
  - name: flag
    command: cat {flag}
rules:
  - alert: Flag
    metric: flag
    threshold: "> 5"
    for: 6s
route:
  receiver: ops
  group_by: [alertname, host]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: ops
    email:
      to: [ops@example.com]
      from: rigger@example.com
      smarthost: 127.0.0.1:{smtp_port}
"#,
            flag = flag.display()
        ),
    )
    .unwrap();
    let start = |port: u16| {
        let args = [
            "-c".to_string(),
            cfg.display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "-i".into(),
            hosts.inventory().display().to_string(),
            "--known-hosts".into(),
            hosts.known_hosts().display().to_string(),
        ];
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        Watch::start(&argv)
    };
    let ports = [free_port(), free_port(), free_port()];
    let mut a = start(ports[0]);
    let b = start(ports[1]);
    let c = start(ports[2]);

    // Every host watched by exactly one instance, each instance a share,
    // and B's view of the group (as of its last renewal) agrees. While the
    // instances join one by one the shares move: wait until two readings
    // in a row are the same and B's /health says so too.
    let counted = |health: &Value| -> i64 {
        health["group"]["instances"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["hosts"].as_i64().unwrap_or(0))
            .sum()
    };
    let mut shares: Vec<BTreeSet<String>> = Vec::new();
    let mut last: Option<Vec<BTreeSet<String>>> = None;
    wait_for(
        Duration::from_secs(30),
        "the three to share the 30 hosts, settled and as B's /health says",
        || {
            let Some(s) = partition(&ports, N).filter(|s| s.iter().all(|x| !x.is_empty())) else {
                last = None;
                return false;
            };
            let h: Value = serde_json::from_str(&get(ports[1], "/health")).unwrap();
            let agrees = counted(&h) == N as i64
                && h["group"]["instances"].as_array().map(Vec::len) == Some(3)
                && h["group"]["owned"] == s[1].len();
            let settled = last.as_ref() == Some(&s);
            last = Some(s.clone());
            if agrees && settled {
                shares = s;
            }
            agrees && settled
        },
    );
    let health: Value = serde_json::from_str(&get(ports[1], "/health")).unwrap();
    let group = &health["group"];
    assert_eq!(group["name"], "test", "{health}");
    assert_eq!(group["leaseSeconds"], LEASE, "{health}");
    assert_eq!(group["owned"], shares[1].len(), "{health}");

    // The condition starts on every host: each instance holds its hosts'
    // alerts pending (for: 6s). A is killed while its alerts are pending.
    std::fs::write(&flag, "9\n").unwrap();
    let a_hosts = shares[0].clone();
    wait_for(Duration::from_secs(10), "A's alerts to be pending", || {
        let al = flag_alerts(ports[0]);
        a_hosts.iter().all(|h| al.get(h).is_some_and(|(s, _)| s == "pending"))
    });
    let pending_on_a = flag_alerts(ports[0]);
    assert!(pending_on_a.values().all(|(s, _)| s == "pending"), "{pending_on_a:?}");
    assert!(smtp.messages().is_empty(), "nothing fired yet");
    a.kill9();
    let killed = Instant::now();

    // Every host watched again within the lease period.
    let survivors = [ports[1], ports[2]];
    wait_for(Duration::from_secs(10), "B and C to watch all 30 hosts", || {
        partition(&survivors, N).is_some()
    });
    let took = killed.elapsed().as_secs_f64();
    // The polling of this test adds up to ~0.2 s.
    assert!(
        took <= LEASE + 0.5,
        "hosts taken over after {took:.1}s (lease {LEASE}s)"
    );
    eprintln!("takeover after {took:.2}s (lease {LEASE}s)");

    // A's pending alerts go on at the new owners from when they started.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mailed: BTreeSet<String> = mails_per_host(&smtp)
            .into_keys()
            .filter(|k| !k.starts_with("other: "))
            .collect();
        if mailed.len() >= N {
            break;
        }
        if Instant::now() > deadline {
            let missing: Vec<&str> = (0..N).map(|i| hosts.name(i)).filter(|h| !mailed.contains(*h)).collect();
            panic!(
                "no mail in 20 s for {missing:?}\nalerts on B: {:?}\nalerts on C: {:?}\nA:\n{}\nB:\n{}\nC:\n{}",
                flag_alerts(ports[1]),
                flag_alerts(ports[2]),
                a.log(),
                b.log(),
                c.log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut continued = BTreeMap::new();
    for p in survivors {
        continued.extend(flag_alerts(p));
    }
    for (h, (_, since)) in &pending_on_a {
        let (state, since2) = &continued[h];
        assert_eq!(
            (state.as_str(), since2),
            ("firing", since),
            "{h}: for: timer restarted\nA:\n{}\nB:\n{}\nC:\n{}",
            a.log(),
            b.log(),
            c.log()
        );
    }
    // Exactly once each, also a while later.
    std::thread::sleep(Duration::from_secs(2));
    let mails = mails_per_host(&smtp);
    let logs = || format!("B:\n{}\nC:\n{}", b.log(), c.log());
    assert_eq!(mails.len(), N, "{mails:?}\n{}", logs());
    assert!(
        mails.values().all(|n| *n == 1),
        "a mail sent twice: {mails:?}\n{}",
        logs()
    );

    // A comes back (a new instance id): ownership is rebalanced to it.
    let rejoin = Instant::now();
    let a2 = start(ports[0]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !partition(&ports, N).is_some_and(|s| s.iter().all(|x| !x.is_empty())) {
        if Instant::now() > deadline {
            let views: Vec<String> = ports
                .iter()
                .map(|p| get_opt(*p, "/health").unwrap_or_default())
                .collect();
            panic!(
                "A did not get a share again in 30s:\n{}\nA:\n{}\nB:\n{}\nC:\n{}",
                views.join("\n"),
                a2.log(),
                b.log(),
                c.log()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("A rejoined after {:.2}s", rejoin.elapsed().as_secs_f64());
    let shares = partition(&ports, N).unwrap();
    // Its alerts come with its hosts, still firing, not notified again.
    wait_for(Duration::from_secs(10), "A to hold its hosts' alerts", || {
        let al = flag_alerts(ports[0]);
        shares[0].iter().all(|h| al.get(h).is_some_and(|(s, _)| s == "firing"))
    });
    std::thread::sleep(Duration::from_secs(2));
    let mails = mails_per_host(&smtp);
    assert!(
        mails.len() == N && mails.values().all(|n| *n == 1),
        "a mail sent again after the rebalance: {mails:?}\nA:\n{}\nB:\n{}\nC:\n{}",
        a2.log(),
        b.log(),
        c.log()
    );
    for w in [&a2, &b, &c] {
        assert!(!w.log().contains(testpg::PASSWORD));
    }
    drop((a2, b, c));
}

#[test]
fn a_group_needs_postgresql() {
    let work = tempfile::tempdir().unwrap();
    let cfg = work.path().join("watch.yml");
    std::fs::write(
        &cfg,
        "group: {name: test}\nreceivers:\n  - name: ops\n    webhook: {url: 'http://127.0.0.1:9/x'}\n",
    )
    .unwrap();
    let inv = work.path().join("hosts");
    std::fs::write(&inv, "h1 ansible_host=127.0.0.1\n").unwrap();
    let c = cfg.display().to_string();
    let (code, out, err) = crate::support::rigger(&["watch", "-c", &c, "-i", &inv.display().to_string()]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(err.contains("watch.yml:1:"), "located: {err}");
    assert!(err.contains("through a PostgreSQL state"), "{err}");
    // `--check-config` accepts it (the state is the instance's business).
    let (code, _, err) = crate::support::rigger(&["watch", "-c", &c, "--check-config"]);
    assert_eq!(code, 0, "{err}");
}
