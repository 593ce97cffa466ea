//! Collection: one long-running shell loop per host, over one SSH channel,
//! prints a block of raw `/proc` and tool output every interval; the
//! controller parses it into samples. Counters (CPU, disk I/O, network) are
//! turned into rates here, from consecutive blocks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::config::{Labels, WatchConfig};
use crate::connection::{sh_quote, ConnError, ProcEvent};
use crate::exec::conn_pool::ConnPool;

/// One value of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

/// What a host collector reports to the controller.
#[derive(Debug)]
pub enum HostEvent {
    Samples { host: String, samples: Vec<Sample> },
    Connected { host: String },
    Lost { host: String, reason: String },
}

/// The remote loop. `count` = 0 loops forever; otherwise that many rounds.
pub fn remote_script(cfg: &WatchConfig, count: u32) -> String {
    let secs = cfg.interval.as_secs_f64();
    let mut s = String::from("export LC_ALL=C; n=0; while :; do echo '@@ begin'; ");
    s.push_str("echo '@@ stat'; head -1 /proc/stat; ");
    s.push_str("echo '@@ loadavg'; cat /proc/loadavg; ");
    s.push_str("echo '@@ meminfo'; cat /proc/meminfo; ");
    s.push_str("echo '@@ df'; timeout 5 df -P -k -l 2>/dev/null; ");
    s.push_str("echo '@@ dfi'; timeout 5 df -P -i -l 2>/dev/null; ");
    s.push_str("echo '@@ diskstats'; cat /proc/diskstats; ");
    s.push_str("echo '@@ netdev'; cat /proc/net/dev; ");
    s.push_str("echo '@@ procs'; ls /proc | grep -c '^[0-9]'; ");
    // Built-in storage services: reported only where their binary exists.
    s.push_str(
        "echo '@@ storage'; for p in ganesha.nfsd rpc.nfsd tgtd iscsid rpcbind; do \
         if command -v $p >/dev/null 2>&1; then if pgrep -x $p >/dev/null 2>&1; then echo \"$p 1\"; else echo \"$p 0\"; fi; fi; done; ",
    );
    for svc in &cfg.services {
        let q = sh_quote(svc);
        s.push_str(&format!(
            "echo '@@ svc {svc}'; if [ -d /run/systemd/system ]; then systemctl is-active {q} 2>/dev/null; \
             elif pgrep -x {q} >/dev/null 2>&1; then echo active; else echo inactive; fi; "
        ));
    }
    s.push_str(
        "if command -v virsh >/dev/null 2>&1; then echo '@@ virsh'; timeout 5 virsh -r domstats 2>/dev/null; \
         echo '@@ pools'; timeout 5 virsh -r pool-list --details 2>/dev/null; fi; ",
    );
    s.push_str(
        "if command -v zpool >/dev/null 2>&1; then echo '@@ zpool'; timeout 5 zpool list -Hp -o name,size,alloc,health 2>/dev/null; fi; ",
    );
    for c in &cfg.custom {
        s.push_str(&format!(
            "echo '@@ custom {}'; ( {} ) 2>/dev/null </dev/null; ",
            c.name, c.command
        ));
    }
    s.push_str("echo '@@ end'; n=$((n+1)); ");
    if count > 0 {
        s.push_str(&format!("[ $n -ge {count} ] && break; "));
    }
    s.push_str(&format!("sleep {secs}; done"));
    s
}

/// Raw counters from the previous block, for rates.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    at: f64,
    cpu: Option<Vec<u64>>,
    disk: HashMap<String, (u64, u64)>,
    net: HashMap<String, [u64; 4]>,
}

fn lab(host: &str, extra: &[(&str, &str)]) -> Labels {
    let mut l = Labels::new();
    l.insert("host".into(), host.into());
    for (k, v) in extra {
        l.insert((*k).into(), (*v).into());
    }
    l
}

/// Parse one block (between `@@ begin` and `@@ end`) into samples.
pub fn parse_block(host: &str, block: &str, now: f64, prev: &mut Counters) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut push = |name: &str, labels: Labels, value: f64| {
        if value.is_finite() {
            out.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
    };
    let mut sections: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in block.lines() {
        if let Some(h) = line.strip_prefix("@@ ") {
            sections.push((h.trim(), Vec::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push(line);
        }
    }
    let dt = if prev.at > 0.0 { now - prev.at } else { 0.0 };
    let mut next = Counters {
        at: now,
        ..Default::default()
    };
    let h = host;
    for (head, body) in &sections {
        let (kind, arg) = head.split_once(' ').unwrap_or((head, ""));
        match kind {
            "stat" => {
                let Some(line) = body.first() else { continue };
                let nums: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
                if nums.len() >= 8 {
                    if let Some(old) = &prev.cpu {
                        let d: Vec<f64> = nums.iter().zip(old).map(|(a, b)| a.saturating_sub(*b) as f64).collect();
                        let total: f64 = d.iter().take(8).sum();
                        if total > 0.0 {
                            // user+nice, system+irq+softirq, idle, iowait, steal
                            push("cpu_user_pct", lab(h, &[]), 100.0 * (d[0] + d[1]) / total);
                            push("cpu_system_pct", lab(h, &[]), 100.0 * (d[2] + d[5] + d[6]) / total);
                            push("cpu_idle_pct", lab(h, &[]), 100.0 * d[3] / total);
                            push("cpu_iowait_pct", lab(h, &[]), 100.0 * d[4] / total);
                            push("cpu_steal_pct", lab(h, &[]), 100.0 * d[7] / total);
                        }
                    }
                    next.cpu = Some(nums);
                }
            }
            "loadavg" => {
                let f: Vec<f64> = body
                    .first()
                    .map(|l| l.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect())
                    .unwrap_or_default();
                for (name, v) in ["load1", "load5", "load15"].into_iter().zip(f) {
                    push(name, lab(h, &[]), v);
                }
            }
            "meminfo" => {
                let mut m = HashMap::new();
                for l in body {
                    let mut it = l.split_whitespace();
                    if let (Some(k), Some(v)) = (it.next(), it.next().and_then(|v| v.parse::<f64>().ok())) {
                        m.insert(k.trim_end_matches(':'), v * 1024.0);
                    }
                }
                if let (Some(&total), Some(&avail)) = (m.get("MemTotal"), m.get("MemAvailable")) {
                    push("mem_total_bytes", lab(h, &[]), total);
                    push("mem_available_bytes", lab(h, &[]), avail);
                    if total > 0.0 {
                        push("mem_used_pct", lab(h, &[]), 100.0 * (total - avail) / total);
                    }
                }
                if let (Some(&total), Some(&free)) = (m.get("SwapTotal"), m.get("SwapFree")) {
                    push("swap_total_bytes", lab(h, &[]), total);
                    push("swap_used_bytes", lab(h, &[]), total - free);
                    push(
                        "swap_used_pct",
                        lab(h, &[]),
                        if total > 0.0 {
                            100.0 * (total - free) / total
                        } else {
                            0.0
                        },
                    );
                }
            }
            "df" | "dfi" => {
                for l in body.iter().skip(1) {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    if f.len() < 6 {
                        continue;
                    }
                    let mount = f[5..].join(" ");
                    let (Ok(size), Ok(used), Ok(avail)) =
                        (f[1].parse::<f64>(), f[2].parse::<f64>(), f[3].parse::<f64>())
                    else {
                        continue;
                    };
                    if size <= 0.0 {
                        continue;
                    }
                    let labels = lab(h, &[("mount", mount.as_str()), ("device", f[0])]);
                    // As df's Use%: used / (used + available), reserved blocks excluded.
                    let pct = if used + avail > 0.0 {
                        100.0 * used / (used + avail)
                    } else {
                        0.0
                    };
                    if kind == "df" {
                        push("disk_size_bytes", labels.clone(), size * 1024.0);
                        push("disk_free_bytes", labels.clone(), avail * 1024.0);
                        push("disk_used_pct", labels, pct);
                    } else {
                        push("disk_inodes_used_pct", labels, pct);
                    }
                }
            }
            "diskstats" => {
                for l in body {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    if f.len() < 10 || f[2].starts_with("loop") || f[2].starts_with("ram") {
                        continue;
                    }
                    let (Ok(rd), Ok(wr)) = (f[5].parse::<u64>(), f[9].parse::<u64>()) else {
                        continue;
                    };
                    if let (Some((prd, pwr)), true) = (prev.disk.get(f[2]), dt > 0.0) {
                        let labels = lab(h, &[("device", f[2])]);
                        push(
                            "disk_read_bytes_per_s",
                            labels.clone(),
                            rd.saturating_sub(*prd) as f64 * 512.0 / dt,
                        );
                        push(
                            "disk_write_bytes_per_s",
                            labels,
                            wr.saturating_sub(*pwr) as f64 * 512.0 / dt,
                        );
                    }
                    next.disk.insert(f[2].to_string(), (rd, wr));
                }
            }
            "netdev" => {
                for l in body.iter().skip(2) {
                    let Some((iface, rest)) = l.split_once(':') else {
                        continue;
                    };
                    let iface = iface.trim();
                    let f: Vec<u64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
                    if f.len() < 11 {
                        continue;
                    }
                    let now_c = [f[0], f[2], f[8], f[10]];
                    let labels = lab(h, &[("interface", iface)]);
                    push("net_rx_errors_total", labels.clone(), f[2] as f64);
                    push("net_tx_errors_total", labels.clone(), f[10] as f64);
                    if let (Some(p), true) = (prev.net.get(iface), dt > 0.0) {
                        let r = |i: usize| now_c[i].saturating_sub(p[i]) as f64 / dt;
                        push("net_rx_bytes_per_s", labels.clone(), r(0));
                        push("net_rx_errors_per_s", labels.clone(), r(1));
                        push("net_tx_bytes_per_s", labels.clone(), r(2));
                        push("net_tx_errors_per_s", labels, r(3));
                    }
                    next.net.insert(iface.to_string(), now_c);
                }
            }
            "procs" => {
                if let Some(v) = body.first().and_then(|l| l.trim().parse::<f64>().ok()) {
                    push("processes", lab(h, &[]), v);
                }
            }
            "storage" => {
                for l in body {
                    if let Some((name, v)) = l.split_once(' ') {
                        if let Ok(v) = v.trim().parse::<f64>() {
                            push("service_up", lab(h, &[("service", name)]), v);
                        }
                    }
                }
            }
            "svc" => {
                let state = body.first().map(|s| s.trim()).unwrap_or("unknown");
                push(
                    "service_up",
                    lab(h, &[("service", arg)]),
                    f64::from(u8::from(state == "active")),
                );
            }
            "virsh" => parse_domstats(h, body, &mut push),
            "pools" => parse_pools(h, body, &mut push),
            "zpool" => {
                for l in body {
                    let f: Vec<&str> = l.split('\t').collect();
                    if f.len() < 4 {
                        continue;
                    }
                    let labels = lab(h, &[("pool", f[0])]);
                    push(
                        "zfs_pool_healthy",
                        labels.clone(),
                        f64::from(u8::from(f[3].trim() == "ONLINE")),
                    );
                    if let (Ok(size), Ok(alloc)) = (f[1].parse::<f64>(), f[2].parse::<f64>()) {
                        push("zfs_pool_size_bytes", labels.clone(), size);
                        if size > 0.0 {
                            push("zfs_pool_used_pct", labels, 100.0 * alloc / size);
                        }
                    }
                }
            }
            "custom" => {
                for s in parse_exposition(body.iter().copied(), arg) {
                    let mut labels = s.labels;
                    labels.insert("host".into(), h.into());
                    push(&s.name, labels, s.value);
                }
            }
            _ => {}
        }
    }
    *prev = next;
    out
}

/// `virsh domstats` output: `Domain: 'name'` then `  key=value` lines.
fn parse_domstats(h: &str, body: &[&str], push: &mut impl FnMut(&str, Labels, f64)) {
    let mut dom = String::new();
    for l in body {
        if let Some(rest) = l.strip_prefix("Domain:") {
            dom = rest.trim().trim_matches('\'').to_string();
            continue;
        }
        let Some((k, v)) = l.trim().split_once('=') else {
            continue;
        };
        let Ok(v) = v.parse::<f64>() else { continue };
        let labels = lab(h, &[("domain", dom.as_str())]);
        match k {
            "state.state" => push("libvirt_domain_state", labels, v),
            "cpu.time" => push("libvirt_domain_cpu_seconds_total", labels, v / 1e9),
            "balloon.current" => push("libvirt_domain_memory_bytes", labels, v * 1024.0),
            "balloon.rss" => push("libvirt_domain_rss_bytes", labels, v * 1024.0),
            _ => {
                // block.N.rd.bytes / net.N.rx.bytes: summed per domain would need
                // the names; keep them per index.
                let parts: Vec<&str> = k.split('.').collect();
                if parts.len() == 4 && (parts[0] == "block" || parts[0] == "net") && parts[3] == "bytes" {
                    let mut l2 = labels;
                    l2.insert("index".into(), parts[1].into());
                    push(&format!("libvirt_domain_{}_{}_bytes_total", parts[0], parts[2]), l2, v);
                }
            }
        }
    }
}

/// `virsh pool-list --details`: Name State Autostart Persistent Capacity Allocation Available.
fn parse_pools(h: &str, body: &[&str], push: &mut impl FnMut(&str, Labels, f64)) {
    for l in body.iter().skip(2) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 10 {
            continue;
        }
        let bytes = |n: &str, unit: &str| -> Option<f64> {
            let mult = match unit {
                "B" | "bytes" => 1.0,
                "KiB" => 1024.0,
                "MiB" => 1024.0f64.powi(2),
                "GiB" => 1024.0f64.powi(3),
                "TiB" => 1024.0f64.powi(4),
                _ => return None,
            };
            n.parse::<f64>().ok().map(|x| x * mult)
        };
        let (Some(cap), Some(alloc)) = (bytes(f[4], f[5]), bytes(f[6], f[7])) else {
            continue;
        };
        let labels = lab(h, &[("pool", f[0])]);
        push("libvirt_pool_capacity_bytes", labels.clone(), cap);
        push("libvirt_pool_allocation_bytes", labels.clone(), alloc);
        if cap > 0.0 {
            push("libvirt_pool_used_pct", labels, 100.0 * alloc / cap);
        }
    }
}

/// Prometheus text exposition (`name{a="b"} 1.5 [ts]`) or `name value` lines.
/// A bare number line is the metric named `default`.
pub fn parse_exposition<'a>(lines: impl Iterator<Item = &'a str>, default: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Ok(v) = parse_value(line) {
            out.push(Sample {
                name: default.to_string(),
                labels: Labels::new(),
                value: v,
            });
            continue;
        }
        let (name, labels, rest) = match line.find('{') {
            Some(b) => {
                // `}` before `{` is not a label set (and would be a bad slice).
                let Some(e) = line.rfind('}').filter(|&e| e > b) else {
                    continue;
                };
                (&line[..b], parse_labels(&line[b + 1..e]), &line[e + 1..])
            }
            None => match line.split_once(char::is_whitespace) {
                Some((n, r)) => (n, Some(Labels::new()), r),
                None => continue,
            },
        };
        let name = name.trim();
        let Some(labels) = labels else { continue };
        let Some(value) = rest.split_whitespace().next().and_then(|v| parse_value(v).ok()) else {
            continue;
        };
        if super::config::valid_metric_name(name) {
            out.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
    }
    out
}

fn parse_value(s: &str) -> Result<f64, ()> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|_| ()),
    }
}

fn parse_labels(s: &str) -> Option<Labels> {
    let mut out = Labels::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (k, r) = rest.split_once('=')?;
        let r = r.trim_start().strip_prefix('"')?;
        let mut val = String::new();
        let mut chars = r.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => val.push('\n'),
                    Some((_, c2)) => val.push(c2),
                    None => return None,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c => val.push(c),
            }
        }
        let end = end?;
        out.insert(k.trim().to_string(), val);
        rest = r[end + 1..].trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Keep one host's remote loop running: connect, stream, parse; on any
/// failure report it, back off (1 s doubling up to 30 s) and reconnect.
pub async fn run_host(
    host: String,
    vars: Map<String, Value>,
    pool: Arc<ConnPool>,
    cfg: Arc<WatchConfig>,
    tx: mpsc::Sender<HostEvent>,
    rounds: u32,
) {
    let mut backoff = Duration::from_secs(1);
    let mut counters = Counters::default();
    loop {
        let started = tokio::time::Instant::now();
        let result = stream_once(&host, &vars, &pool, &cfg, &tx, rounds, &mut counters).await;
        pool.reset(&host);
        if rounds > 0 {
            if let Err(e) = result {
                let _ = tx
                    .send(HostEvent::Lost {
                        host: host.clone(),
                        reason: e.to_string(),
                    })
                    .await;
            }
            return;
        }
        let reason = match result {
            Ok(()) => "the collector loop ended".to_string(),
            Err(e) => e.to_string(),
        };
        if tx
            .send(HostEvent::Lost {
                host: host.clone(),
                reason,
            })
            .await
            .is_err()
        {
            return;
        }
        // A connection that streamed for a while starts over at the short backoff.
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

async fn stream_once(
    host: &str,
    vars: &Map<String, Value>,
    pool: &ConnPool,
    cfg: &WatchConfig,
    tx: &mpsc::Sender<HostEvent>,
    rounds: u32,
    counters: &mut Counters,
) -> Result<(), ConnError> {
    let conn = pool.get(host, vars).await?;
    let mut proc = conn.spawn(&remote_script(cfg, rounds), false).await?;
    proc.close_stdin().await?;
    let _ = tx.send(HostEvent::Connected { host: host.into() }).await;
    // A remote loop that stops printing (hung mount, frozen host behind a live
    // TCP connection) counts as lost after a few intervals.
    let stall = cfg.interval * 3 + Duration::from_secs(10);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let ev = tokio::time::timeout(stall, proc.next_event())
            .await
            .map_err(|_| ConnError::Dropped(format!("no samples for {}s", stall.as_secs())))??;
        match ev {
            Some(ProcEvent::Stdout(d)) => {
                buf.extend_from_slice(&d);
                while let Some(end) = find(&buf, b"@@ end\n") {
                    let block: Vec<u8> = buf.drain(..end + 7).collect();
                    let text = String::from_utf8_lossy(&block);
                    let start = text.rfind("@@ begin\n").unwrap_or(0);
                    let samples = parse_block(host, &text[start..], now_secs(), counters);
                    if tx
                        .send(HostEvent::Samples {
                            host: host.into(),
                            samples,
                        })
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                if buf.len() > 4 << 20 {
                    return Err(ConnError::Io("collector output without block end (over 4 MiB)".into()));
                }
            }
            Some(ProcEvent::Stderr(_)) => {}
            Some(ProcEvent::Exit(code)) if rounds > 0 && code == 0 => return Ok(()),
            Some(ProcEvent::Exit(code)) => {
                return Err(ConnError::Dropped(format!(
                    "the collector loop exited with status {code}"
                )))
            }
            None => return Ok(()),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_formats() {
        let text = "# HELP x\nqueue_depth{queue=\"a b\",kind=\"x\\\"y\"} 12 1700000000\nplain 3.5\n42\nbad line here\n";
        let s = parse_exposition(text.lines(), "mycmd");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].name, "queue_depth");
        assert_eq!(s[0].labels["queue"], "a b");
        assert_eq!(s[0].labels["kind"], "x\"y");
        assert_eq!(s[0].value, 12.0);
        assert_eq!((s[1].name.as_str(), s[1].value), ("plain", 3.5));
        assert_eq!((s[2].name.as_str(), s[2].value), ("mycmd", 42.0));
    }

    #[test]
    fn block_rates_and_disk() {
        let b1 = "@@ begin\n@@ stat\ncpu  100 0 100 800 0 0 0 0 0 0\n@@ df\nFilesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs 1000 250 750 25% /srv/fill\n@@ netdev\nInter-|\n face |\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n@@ procs\n57\n@@ end\n";
        let mut c = Counters::default();
        let s1 = parse_block("h1", b1, 100.0, &mut c);
        assert!(
            !s1.iter().any(|s| s.name == "cpu_user_pct"),
            "no rate on the first block"
        );
        let disk = s1.iter().find(|s| s.name == "disk_used_pct").unwrap();
        assert_eq!(disk.value, 25.0);
        assert_eq!(disk.labels["mount"], "/srv/fill");
        assert_eq!(disk.labels["host"], "h1");
        let b2 = b1
            .replace("cpu  100 0 100 800", "cpu  150 0 150 900")
            .replace("eth0: 1000", "eth0: 3000");
        let s2 = parse_block("h1", &b2, 102.0, &mut c);
        let get = |n: &str| s2.iter().find(|s| s.name == n).map(|s| s.value);
        assert_eq!(get("cpu_user_pct"), Some(25.0));
        assert_eq!(get("cpu_system_pct"), Some(25.0));
        assert_eq!(get("net_rx_bytes_per_s"), Some(1000.0));
        assert_eq!(get("processes"), Some(57.0));
    }

    #[test]
    fn hostile_output_is_skipped_not_a_panic() {
        // Whatever a remote command prints, the collector keeps going.
        let lines = [
            "} x {",
            "m} 1 {",
            "a{b=\"c\"",
            "{",
            "}",
            "é{é=\"é\"} 1",
            "n{k=} 2",
            "@@ stat",
        ];
        let s = parse_exposition(lines.iter().copied(), "d");
        assert!(s.is_empty(), "{:?}", s.iter().map(|s| &s.name).collect::<Vec<_>>());
        let mut c = Counters::default();
        for block in [
            "@@ stat\ncpu 1 2 3 4 5 6 7 8\n@@ df\nx\n/dev/x a b c d\n@@ netdev\n\n\n e: 1 2\n@@ zpool\np\t1\n@@ end\n",
            "@@ stat\ncpu 9 9 9 9 9 9 9 9 9 9 9\n@@ diskstats\n 1 2 sda x\n@@ pools\na\nb\nc d e f g h i j k l\n@@ end\n",
        ] {
            parse_block("h", block, 1.0, &mut c);
        }
    }
}
