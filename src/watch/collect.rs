//! Collection: one long-running shell loop per host, over one SSH channel,
//! prints a block of raw `/proc` and tool output every interval; the
//! controller parses it into samples. Counters (CPU, disk I/O, network) are
//! turned into rates here, from consecutive blocks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::config::{Exclude, Labels, WatchConfig};
use super::exposition::{self, parse_exposition, Sample};
use crate::connection::{sh_quote, ConnError, ProcEvent};
use crate::exec::conn_pool::ConnPool;

/// The samples of one block. Each series key (`name{label="value",...}`,
/// exactly as [`exposition::series_key`] writes it) is appended to one string, so a
/// block costs a couple of allocations rather than several per sample, and
/// the store finds the series by its key without building labels.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    keys: String,
    /// End offset of each key in `keys`, and the value.
    items: Vec<(u32, f64)>,
}

impl Samples {
    /// Add a sample; `labels` in any order (at most 8; more go through a map).
    pub fn push(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if !value.is_finite() {
            return;
        }
        let mut sorted = [("", ""); 8];
        if labels.len() > sorted.len() {
            let map: Labels = labels.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
            return self.push_labels(name, &map, value);
        }
        sorted[..labels.len()].copy_from_slice(labels);
        let sorted = &mut sorted[..labels.len()];
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        exposition::write_key(&mut self.keys, name, sorted.iter().copied());
        self.items.push((self.keys.len() as u32, value));
    }

    pub fn push_labels(&mut self, name: &str, labels: &Labels, value: f64) {
        if !value.is_finite() {
            return;
        }
        exposition::write_key(
            &mut self.keys,
            name,
            labels.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        self.items.push((self.keys.len() as u32, value));
    }

    /// (series key, value) pairs in the order they were pushed.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        let mut start = 0usize;
        self.items.iter().map(move |&(end, v)| {
            let k = self.keys.get(start..end as usize).unwrap_or("");
            start = end as usize;
            (k, v)
        })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The samples as name, labels and value (for tests and diagnostics).
    pub fn decode(&self) -> Vec<Sample> {
        self.iter()
            .filter_map(|(k, value)| {
                let (name, labels) = exposition::parse_key(k)?;
                Some(Sample { name, labels, value })
            })
            .collect()
    }
}

/// What a host collector reports to the controller.
#[derive(Debug)]
pub enum HostEvent {
    Samples {
        host: String,
        samples: Samples,
    },
    Connected {
        host: String,
    },
    Lost {
        host: String,
        reason: String,
    },
    /// What the host's blocks report as wrong now (see [`block_problems`]):
    /// sent with a connection's first block and whenever it changes.
    Problems {
        host: String,
        problems: Vec<String>,
    },
}

/// The remote loop. `count` = 0 loops forever; otherwise that many rounds.
pub fn remote_script(cfg: &WatchConfig, count: u32) -> String {
    let secs = cfg.interval.as_secs_f64();
    // `df -T` (file system types, for the exclusions) where df has it.
    // Each block is collected into a variable and written at once: one write,
    // so one SSH packet and one wake-up of the controller per host and
    // interval instead of one per section (20+).
    // `running NAME`: a process of that name runs (as `pgrep -x`: the
    // kernel's process name). The process table is read once a sample, by
    // the first question, not once a daemon (a `pgrep` each): a scan of
    // /proc is most of a sample's cost on a host with many processes.
    // `put FILE`: the file's lines through the shell's own `read`, not a
    // `cat` process: five /proc files a sample cost ~1 ms of the host's
    // CPU this way against ~5 ms as processes (measured with dash).
    let mut s = String::from(
        "export LC_ALL=C; n=0; T=; df -P -T -k / >/dev/null 2>&1 && T=-T; NL='\n'; running() { [ -n \"$R\" ] || R=$(echo; cat /proc/[0-9]*/comm 2>/dev/null; echo .); \
         case \"$R\" in *\"$NL$1$NL\"*) return 0;; esac; return 1; }; \
         put() { while IFS= read -r l; do printf '%s\\n' \"$l\"; done < \"$1\"; }; \
         while :; do b=$( R=; echo '@@ begin'; ",
    );
    s.push_str("echo '@@ stat'; IFS= read -r l </proc/stat; printf '%s\\n' \"$l\"; ");
    s.push_str("echo '@@ loadavg'; put /proc/loadavg; ");
    s.push_str("echo '@@ meminfo'; put /proc/meminfo; ");
    s.push_str("echo '@@ df'; timeout 5 df -P $T -k -l 2>/dev/null; ");
    s.push_str("echo '@@ dfi'; timeout 5 df -P $T -i -l 2>/dev/null; ");
    s.push_str("echo '@@ diskstats'; put /proc/diskstats; ");
    s.push_str("echo '@@ netdev'; put /proc/net/dev; ");
    s.push_str("echo '@@ procs'; set -- /proc/[0-9]*; echo $#; ");
    // Built-in storage services: reported only where their binary exists.
    s.push_str(
        "echo '@@ storage'; for p in ganesha.nfsd rpc.nfsd tgtd iscsid rpcbind; do \
         if command -v $p >/dev/null 2>&1; then if running $p; then echo \"$p 1\"; else echo \"$p 0\"; fi; fi; done; ",
    );
    for svc in &cfg.services {
        // Names are checked when the config loads; quoted all the same.
        let q = sh_quote(svc);
        let tag = sh_quote(&format!("@@ svc {svc}"));
        s.push_str(&format!(
            "printf '%s\\n' {tag}; if [ -d /run/systemd/system ]; then systemctl is-active {q} 2>/dev/null; \
             elif running {q}; then echo active; else echo inactive; fi; "
        ));
    }
    s.push_str(
        // One virsh (one connection to libvirt) for both: virsh's own
        // `echo` writes the section line, and a failed command does not
        // stop the ones after it. Two virsh processes cost the host ~34 ms
        // a sample, one ~20 ms.
        "if command -v virsh >/dev/null 2>&1; then echo '@@ virsh'; timeout 5 virsh -r 'domstats; echo \"@@ pools\"; pool-list --details' 2>/dev/null; fi; ",
    );
    s.push_str(
        "if command -v zpool >/dev/null 2>&1; then echo '@@ zpool'; timeout 5 zpool list -Hp -o name,size,alloc,health 2>/dev/null; fi; ",
    );
    if cfg.containers {
        // podman, else docker; every object of `inspect` and `stats` as JSON
        // on one line (a JSON string holds no raw newline).
        s.push_str(
            "CE=; if command -v podman >/dev/null 2>&1; then CE=podman; elif command -v docker >/dev/null 2>&1; then CE=docker; fi; \
             if [ -n \"$CE\" ]; then echo '@@ containers'; ids=$(timeout 5 $CE ps -aq 2>/dev/null); \
             if [ -n \"$ids\" ]; then timeout 5 $CE inspect $ids 2>/dev/null | tr -d '\\n'; echo; \
             echo '@@ cstats'; timeout 10 $CE stats --no-stream --format json $ids 2>/dev/null | tr -d '\\n'; echo; fi; \
             else echo '@@ problem containers'; fi; ",
        );
    }
    for c in &cfg.custom {
        // A failing command is reported (see `block_problems`); its
        // output so far still counts.
        s.push_str(&format!(
            "printf '%s\\n' {}; ( {} ) 2>/dev/null </dev/null || printf '%s %s\\n' {} \"$?\"; ",
            sh_quote(&format!("@@ custom {}", c.name)),
            c.command,
            sh_quote(&format!("@@ problem custom {}", c.name)),
        ));
    }
    s.push_str("echo '@@ end' ); printf '%s\\n' \"$b\"; n=$((n+1)); ");
    if count > 0 {
        s.push_str(&format!("[ $n -ge {count} ] && break; "));
    }
    s.push_str(&format!("sleep {secs}; done"));
    s
}

/// Raw counters from the previous blocks, for rates. Updated in place; an
/// entry not seen in a block (an interface that went away) is dropped.
#[derive(Debug, Default, Clone)]
pub struct Counters {
    at: f64,
    round: u32,
    cpu: Option<[u64; 8]>,
    disk: HashMap<String, ([u64; 2], u32)>,
    net: HashMap<String, ([u64; 4], u32)>,
}

/// The first `N` whitespace-separated fields of `line`, and the trimmed rest.
fn fields<const N: usize>(line: &str) -> Option<([&str; N], &str)> {
    let mut out = [""; N];
    let mut rest = line.trim_start();
    for slot in out.iter_mut() {
        if rest.is_empty() {
            return None;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        *slot = &rest[..end];
        rest = rest[end..].trim_start();
    }
    Some((out, rest.trim_end()))
}

/// What a block says went wrong on the host, as the watch log words it:
/// `containers: true` with neither podman nor docker there, a custom
/// metric's command that failed. Without these a rule on those metrics
/// would never fire, and nothing would say why. Only the lines the script
/// writes are read, for what `cfg` asks: the block is the host's text, and
/// nothing else of it reaches the log or /health this way.
pub fn block_problems(block: &str, cfg: &WatchConfig) -> Vec<String> {
    block
        .lines()
        .filter_map(|l| l.strip_prefix("@@ problem "))
        .filter_map(|p| match p.trim().split_once(' ') {
            None if p.trim() == "containers" && cfg.containers => Some(
                "containers: true, but neither podman nor docker is on the host's PATH: no container_* series"
                    .to_string(),
            ),
            Some(("custom", rest)) => {
                let (name, code) = rest.rsplit_once(' ')?;
                let code: i32 = code.parse().ok()?;
                let known = cfg.custom.iter().any(|c| c.name == name);
                known.then(|| format!("custom metric `{name}`: its command exited {code}"))
            }
            _ => None,
        })
        .collect()
}

/// The problems of `block` when they differ from `open` (the ones last
/// reported on this connection; `None` before its first block), which
/// then holds them.
fn changed_problems(block: &str, cfg: &WatchConfig, open: &mut Option<Vec<String>>) -> Option<Vec<String>> {
    let now = block_problems(block, cfg);
    if open.as_ref() == Some(&now) {
        return None;
    }
    *open = Some(now.clone());
    Some(now)
}

/// Parse one block (between `@@ begin` and `@@ end`) into samples.
pub fn parse_block(host: &str, block: &str, now: f64, prev: &mut Counters, exclude: &Exclude) -> Samples {
    let mut out = Samples::default();
    let lines: Vec<&str> = block.lines().collect();
    // (header, first body line, end) per section.
    let mut sections: Vec<(&str, usize, usize)> = Vec::with_capacity(16);
    for (i, line) in lines.iter().enumerate() {
        if let Some(h) = line.strip_prefix("@@ ") {
            if let Some(last) = sections.last_mut() {
                last.2 = i;
            }
            sections.push((h.trim(), i + 1, lines.len()));
        }
    }
    let dt = if prev.at > 0.0 { now - prev.at } else { 0.0 };
    prev.at = now;
    prev.round = prev.round.wrapping_add(1);
    let round = prev.round;
    let h = host;
    let mut cpu_seen = false;
    for &(head, from, to) in &sections {
        let body = &lines[from..to];
        let (kind, arg) = head.split_once(' ').unwrap_or((head, ""));
        match kind {
            "stat" => {
                let Some(line) = body.first() else { continue };
                let mut nums = [0u64; 8];
                let mut n = 0;
                for x in line.split_whitespace().skip(1).take(8) {
                    let Ok(v) = x.parse() else { break };
                    nums[n] = v;
                    n += 1;
                }
                if n == 8 {
                    if let Some(old) = &prev.cpu {
                        let mut d = [0f64; 8];
                        for i in 0..8 {
                            d[i] = nums[i].saturating_sub(old[i]) as f64;
                        }
                        let total: f64 = d.iter().sum();
                        if total > 0.0 {
                            // user+nice, system+irq+softirq, idle, iowait, steal
                            let l = [("host", h)];
                            out.push("cpu_user_pct", &l, 100.0 * (d[0] + d[1]) / total);
                            out.push("cpu_system_pct", &l, 100.0 * (d[2] + d[5] + d[6]) / total);
                            out.push("cpu_idle_pct", &l, 100.0 * d[3] / total);
                            out.push("cpu_iowait_pct", &l, 100.0 * d[4] / total);
                            out.push("cpu_steal_pct", &l, 100.0 * d[7] / total);
                        }
                    }
                    prev.cpu = Some(nums);
                    cpu_seen = true;
                }
            }
            "loadavg" => {
                if let Some(line) = body.first() {
                    let l = [("host", h)];
                    for (name, x) in ["load1", "load5", "load15"].into_iter().zip(line.split_whitespace()) {
                        if let Ok(v) = x.parse::<f64>() {
                            out.push(name, &l, v);
                        }
                    }
                }
            }
            "meminfo" => {
                let (mut total, mut avail, mut stotal, mut sfree) = (None, None, None, None);
                for l in body {
                    let Some((k, rest)) = l.split_once(':') else { continue };
                    let slot = match k {
                        "MemTotal" => &mut total,
                        "MemAvailable" => &mut avail,
                        "SwapTotal" => &mut stotal,
                        "SwapFree" => &mut sfree,
                        _ => continue,
                    };
                    *slot = rest
                        .split_whitespace()
                        .next()
                        .and_then(|v| v.parse::<f64>().ok())
                        .map(|v| v * 1024.0);
                }
                let l = [("host", h)];
                if let (Some(total), Some(avail)) = (total, avail) {
                    out.push("mem_total_bytes", &l, total);
                    out.push("mem_available_bytes", &l, avail);
                    if total > 0.0 {
                        out.push("mem_used_pct", &l, 100.0 * (total - avail) / total);
                    }
                }
                if let (Some(total), Some(free)) = (stotal, sfree) {
                    out.push("swap_total_bytes", &l, total);
                    out.push("swap_used_bytes", &l, total - free);
                    let pct = if total > 0.0 {
                        100.0 * (total - free) / total
                    } else {
                        0.0
                    };
                    out.push("swap_used_pct", &l, pct);
                }
            }
            "df" | "dfi" => {
                // `Filesystem [Type] Size Used Available Capacity Mounted on`.
                let typed = body
                    .first()
                    .and_then(|l| l.split_whitespace().nth(1))
                    .is_some_and(|c| c == "Type");
                for l in body.iter().skip(1) {
                    let (dev, fs_type, nums, mount) = if typed {
                        let Some(([dev, t, a, b, c, _], mount)) = fields::<6>(l) else {
                            continue;
                        };
                        (dev, Some(t), [a, b, c], mount)
                    } else {
                        let Some(([dev, a, b, c, _], mount)) = fields::<5>(l) else {
                            continue;
                        };
                        (dev, None, [a, b, c], mount)
                    };
                    if mount.is_empty() || exclude.file_system(fs_type, mount) {
                        continue;
                    }
                    let (Ok(size), Ok(used), Ok(avail)) =
                        (nums[0].parse::<f64>(), nums[1].parse::<f64>(), nums[2].parse::<f64>())
                    else {
                        continue;
                    };
                    if size <= 0.0 {
                        continue;
                    }
                    let labels = [("host", h), ("mount", mount), ("device", dev)];
                    // As df's Use%: used / (used + available), reserved blocks excluded.
                    let pct = if used + avail > 0.0 {
                        100.0 * used / (used + avail)
                    } else {
                        0.0
                    };
                    if kind == "df" {
                        out.push("disk_size_bytes", &labels, size * 1024.0);
                        out.push("disk_free_bytes", &labels, avail * 1024.0);
                        out.push("disk_used_pct", &labels, pct);
                    } else {
                        out.push("disk_inodes_used_pct", &labels, pct);
                    }
                }
            }
            "diskstats" => {
                for l in body {
                    // major minor name reads merged sectors_read ms writes merged sectors_written
                    let Some(([_, _, dev, _, _, rd, _, _, _, wr], _)) = fields::<10>(l) else {
                        continue;
                    };
                    if exclude.device(dev) {
                        continue;
                    }
                    let (Ok(rd), Ok(wr)) = (rd.parse::<u64>(), wr.parse::<u64>()) else {
                        continue;
                    };
                    let now_c = [rd, wr];
                    match prev.disk.get_mut(dev) {
                        Some((p, seen)) => {
                            if dt > 0.0 {
                                let labels = [("host", h), ("device", dev)];
                                let r = |i: usize| now_c[i].saturating_sub(p[i]) as f64 * 512.0 / dt;
                                out.push("disk_read_bytes_per_s", &labels, r(0));
                                out.push("disk_write_bytes_per_s", &labels, r(1));
                            }
                            *p = now_c;
                            *seen = round;
                        }
                        None => {
                            prev.disk.insert(dev.to_string(), (now_c, round));
                        }
                    }
                }
            }
            "netdev" => {
                for l in body.iter().skip(2) {
                    let Some((iface, rest)) = l.split_once(':') else {
                        continue;
                    };
                    let iface = iface.trim();
                    if exclude.interface(iface) {
                        continue;
                    }
                    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes packets errs ...
                    let Some(([rb, _, re, _, _, _, _, _, tb, _, te], _)) = fields::<11>(rest) else {
                        continue;
                    };
                    let (Ok(rb), Ok(re), Ok(tb), Ok(te)) = (rb.parse(), re.parse(), tb.parse(), te.parse()) else {
                        continue;
                    };
                    let now_c: [u64; 4] = [rb, re, tb, te];
                    let labels = [("host", h), ("interface", iface)];
                    out.push("net_rx_errors_total", &labels, re as f64);
                    out.push("net_tx_errors_total", &labels, te as f64);
                    match prev.net.get_mut(iface) {
                        Some((p, seen)) => {
                            if dt > 0.0 {
                                let r = |i: usize| now_c[i].saturating_sub(p[i]) as f64 / dt;
                                out.push("net_rx_bytes_per_s", &labels, r(0));
                                out.push("net_rx_errors_per_s", &labels, r(1));
                                out.push("net_tx_bytes_per_s", &labels, r(2));
                                out.push("net_tx_errors_per_s", &labels, r(3));
                            }
                            *p = now_c;
                            *seen = round;
                        }
                        None => {
                            prev.net.insert(iface.to_string(), (now_c, round));
                        }
                    }
                }
            }
            "procs" => {
                if let Some(v) = body.first().and_then(|l| l.trim().parse::<f64>().ok()) {
                    out.push("processes", &[("host", h)], v);
                }
            }
            "storage" => {
                for l in body {
                    if let Some((name, v)) = l.split_once(' ') {
                        if let Ok(v) = v.trim().parse::<f64>() {
                            out.push("service_up", &[("host", h), ("service", name)], v);
                        }
                    }
                }
            }
            "svc" => {
                let state = body.first().map(|s| s.trim()).unwrap_or("unknown");
                out.push(
                    "service_up",
                    &[("host", h), ("service", arg)],
                    f64::from(u8::from(state == "active")),
                );
            }
            "virsh" => parse_domstats(h, body, &mut out),
            "pools" => parse_pools(h, body, &mut out),
            "zpool" => {
                for l in body {
                    let mut f = l.split('\t');
                    let (Some(pool), Some(size), Some(alloc), Some(health)) = (f.next(), f.next(), f.next(), f.next())
                    else {
                        continue;
                    };
                    let labels = [("host", h), ("pool", pool)];
                    out.push(
                        "zfs_pool_healthy",
                        &labels,
                        f64::from(u8::from(health.trim() == "ONLINE")),
                    );
                    if let (Ok(size), Ok(alloc)) = (size.parse::<f64>(), alloc.parse::<f64>()) {
                        out.push("zfs_pool_size_bytes", &labels, size);
                        if size > 0.0 {
                            out.push("zfs_pool_used_pct", &labels, 100.0 * alloc / size);
                        }
                    }
                }
            }
            "containers" => parse_containers(h, body, &mut out),
            "cstats" => parse_container_stats(h, body, &mut out),
            "custom" => {
                for s in parse_exposition(body.iter().copied(), arg) {
                    let mut labels = s.labels;
                    labels.insert("host".into(), h.into());
                    out.push_labels(&s.name, &labels, s.value);
                }
            }
            _ => {}
        }
    }
    if !cpu_seen {
        prev.cpu = None;
    }
    prev.disk.retain(|_, (_, seen)| *seen == round);
    prev.net.retain(|_, (_, seen)| *seen == round);
    out
}

/// The JSON values in `body` (one array, or objects one after another as
/// docker prints them), flattened into one list of objects.
fn json_objects(body: &[&str]) -> Vec<Value> {
    let text = body.concat();
    let mut out = Vec::new();
    for v in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        match v {
            Ok(Value::Array(a)) => out.extend(a),
            Ok(v @ Value::Object(_)) => out.push(v),
            Ok(_) => {}
            // Cut output (a timeout): keep what parsed.
            Err(_) => break,
        }
    }
    out
}

/// `podman|docker inspect` of every container: up, health (only with a
/// health check) and restarts.
fn parse_containers(h: &str, body: &[&str], out: &mut Samples) {
    for c in json_objects(body) {
        let name = c
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim_start_matches('/');
        if name.is_empty() {
            continue;
        }
        let labels = [("host", h), ("container", name)];
        let running = c.pointer("/State/Running").and_then(Value::as_bool).unwrap_or(false);
        out.push("container_up", &labels, f64::from(u8::from(running)));
        let health = c
            .pointer("/State/Health/Status")
            .or_else(|| c.pointer("/State/Healthcheck/Status"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if running && !health.is_empty() {
            out.push("container_healthy", &labels, f64::from(u8::from(health == "healthy")));
        }
        if let Some(n) = c.get("RestartCount").and_then(Value::as_f64) {
            out.push("container_restarts_total", &labels, n);
        }
    }
}

/// `podman|docker stats --no-stream --format json`: CPU percent and memory
/// in use (podman's `name`/`cpu_percent`/`mem_usage`, docker's
/// `Name`/`CPUPerc`/`MemUsage`).
fn parse_container_stats(h: &str, body: &[&str], out: &mut Samples) {
    for c in json_objects(body) {
        let field = |a: &str, b: &str| c.get(a).or_else(|| c.get(b)).and_then(Value::as_str).unwrap_or("");
        let name = field("name", "Name").trim_start_matches('/');
        if name.is_empty() {
            continue;
        }
        let labels = [("host", h), ("container", name)];
        if let Ok(cpu) = field("cpu_percent", "CPUPerc")
            .trim()
            .trim_end_matches('%')
            .parse::<f64>()
        {
            out.push("container_cpu_pct", &labels, cpu);
        }
        let used = field("mem_usage", "MemUsage").split('/').next().unwrap_or("");
        if let Some(bytes) = engine_size(used) {
            out.push("container_memory_bytes", &labels, bytes);
        }
    }
}

/// A size as the engines print it: `1.5MB` (podman, SI), `12.3MiB`
/// (docker, binary), `512B`.
fn engine_size(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, unit) = s.split_at(split);
    let n: f64 = n.trim().parse().ok()?;
    let mult = match unit.trim() {
        "B" => 1.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0f64.powi(2),
        "GiB" => 1024.0f64.powi(3),
        "TiB" => 1024.0f64.powi(4),
        _ => return None,
    };
    Some(n * mult)
}

/// `virsh domstats` output: `Domain: 'name'` then `  key=value` lines.
fn parse_domstats(h: &str, body: &[&str], out: &mut Samples) {
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
        let labels = [("host", h), ("domain", dom.as_str())];
        match k {
            "state.state" => out.push("libvirt_domain_state", &labels, v),
            "cpu.time" => out.push("libvirt_domain_cpu_seconds_total", &labels, v / 1e9),
            "balloon.current" => out.push("libvirt_domain_memory_bytes", &labels, v * 1024.0),
            "balloon.rss" => out.push("libvirt_domain_rss_bytes", &labels, v * 1024.0),
            _ => {
                // block.N.rd.bytes / net.N.rx.bytes: summed per domain would need
                // the names; keep them per index.
                let parts: Vec<&str> = k.split('.').collect();
                if parts.len() == 4 && (parts[0] == "block" || parts[0] == "net") && parts[3] == "bytes" {
                    let name = format!("libvirt_domain_{}_{}_bytes_total", parts[0], parts[2]);
                    out.push(&name, &[("host", h), ("domain", dom.as_str()), ("index", parts[1])], v);
                }
            }
        }
    }
}

/// `virsh pool-list --details`: Name State Autostart Persistent Capacity Allocation Available.
fn parse_pools(h: &str, body: &[&str], out: &mut Samples) {
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
        let labels = [("host", h), ("pool", f[0])];
        out.push("libvirt_pool_capacity_bytes", &labels, cap);
        out.push("libvirt_pool_allocation_bytes", &labels, alloc);
        if cap > 0.0 {
            out.push("libvirt_pool_used_pct", &labels, 100.0 * alloc / cap);
        }
    }
}

pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// How many hosts' SSH connections a watch sets up at once. A watch that
/// starts (or a network that comes back) would otherwise begin every
/// host's key exchange in the same instant: 1,000 hosts whose handshakes
/// cannot all finish within the connection timeout (hosts that share CPUs,
/// a busy controller) time out, retry and pile up half-open sessions on the
/// hosts (sshd keeps each for its `LoginGraceTime`), and the fleet never
/// connects. Streaming, once connected, is not limited.
pub const CONNECTING_AT_ONCE: usize = 64;

/// Keep one host's remote loop running: connect, stream, parse; on any
/// failure report it, back off (1 s doubling up to 30 s) and reconnect.
pub async fn run_host(
    host: String,
    vars: Map<String, Value>,
    pool: Arc<ConnPool>,
    connecting: Arc<tokio::sync::Semaphore>,
    cfg: Arc<WatchConfig>,
    tx: mpsc::Sender<HostEvent>,
    rounds: u32,
) {
    let mut backoff = Duration::from_secs(1);
    let mut counters = Counters::default();
    loop {
        let started = tokio::time::Instant::now();
        let result = stream_once(&host, &vars, &pool, &connecting, &cfg, &tx, rounds, &mut counters).await;
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

#[allow(clippy::too_many_arguments)]
async fn stream_once(
    host: &str,
    vars: &Map<String, Value>,
    pool: &ConnPool,
    connecting: &tokio::sync::Semaphore,
    cfg: &WatchConfig,
    tx: &mpsc::Sender<HostEvent>,
    rounds: u32,
    counters: &mut Counters,
) -> Result<(), ConnError> {
    let (_conn, mut proc) = {
        // Never closed, so acquiring cannot fail; without a permit the
        // connection is still made (unlimited, as before the limit).
        let _permit = connecting.acquire().await.ok();
        let conn = pool.get(host, vars).await?;
        let proc = conn.spawn(&remote_script(cfg, rounds), false).await?;
        (conn, proc)
    };
    proc.close_stdin().await?;
    let _ = tx.send(HostEvent::Connected { host: host.into() }).await;
    // A remote loop that stops printing (hung mount, frozen host behind a live
    // TCP connection) counts as lost after a few intervals.
    let stall = cfg.interval * 3 + Duration::from_secs(10);
    let mut buf: Vec<u8> = Vec::new();
    // How far `buf` has been searched for the block end.
    let mut scanned = 0usize;
    // The host's problems last reported (see `block_problems`).
    let mut problems: Option<Vec<String>> = None;
    loop {
        let ev = tokio::time::timeout(stall, proc.next_event())
            .await
            .map_err(|_| ConnError::Dropped(format!("no samples for {}s", stall.as_secs())))??;
        match ev {
            Some(ProcEvent::Stdout(d)) => {
                buf.extend_from_slice(&d);
                const END: &[u8] = b"@@ end\n";
                loop {
                    let from = scanned.saturating_sub(END.len() - 1);
                    let Some(pos) = find(&buf[from..], END) else {
                        scanned = buf.len();
                        break;
                    };
                    let end = from + pos + END.len();
                    let (samples, changed) = {
                        let text = String::from_utf8_lossy(&buf[..end]);
                        let start = text.rfind("@@ begin\n").unwrap_or(0);
                        let changed = changed_problems(&text[start..], cfg, &mut problems);
                        (
                            parse_block(host, &text[start..], now_secs(), counters, &cfg.exclude),
                            changed,
                        )
                    };
                    if let Some(problems) = changed {
                        let _ = tx
                            .send(HostEvent::Problems {
                                host: host.into(),
                                problems,
                            })
                            .await;
                    }
                    buf.drain(..end);
                    scanned = 0;
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

    /// This machine's `tool`, from the directories a host's PATH has.
    fn machine_tool(tool: &str) -> Option<std::path::PathBuf> {
        ["/usr/bin", "/bin", "/usr/sbin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
    }

    /// A directory of links to this machine's `tools` (those it has), to be
    /// the PATH of a local run of the real script.
    fn tools_dir(tools: &[&str]) -> tempfile::TempDir {
        let bin = tempfile::tempdir().unwrap();
        for tool in tools {
            if let Some(path) = machine_tool(tool) {
                std::os::unix::fs::symlink(path, bin.path().join(tool)).unwrap();
            }
        }
        bin
    }

    /// The tools a host's sample uses.
    fn host_tools() -> tempfile::TempDir {
        tools_dir(&[
            "sh", "head", "cat", "df", "timeout", "ls", "grep", "pgrep", "tr", "sleep", "printf", "echo",
        ])
    }

    /// A configuration from its YAML text (as the file `/x/w.yml`).
    fn config(src: &str) -> WatchConfig {
        let n = crate::yaml::parse_one(src, "w.yml").unwrap();
        WatchConfig::from_node(&n, std::path::Path::new("/x/w.yml")).unwrap()
    }

    /// The real script, `rounds` rounds, run by a local shell with only
    /// `bin` on its PATH and `env` besides: what it prints.
    fn run_script(cfg: &WatchConfig, rounds: u32, bin: &std::path::Path, env: &[(&str, &str)]) -> String {
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(remote_script(cfg, rounds))
            .env_clear()
            .env("PATH", bin)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Daemons are found by their process name (as `pgrep -x` found them)
    /// in one read of the process table a sample: a storage daemon that
    /// runs is `1`; a service without systemd is `active` when a process
    /// of its name runs and `inactive` when none does.
    #[test]
    fn daemons_are_found_by_process_name_in_one_scan_of_the_process_table() {
        let cfg = config(
            "services: [rgwatch-svc, rgwatch-none]\nreceivers:\n  - name: h\n    webhook: {url: 'http://127.0.0.1:1/x'}\n",
        );
        let bin = host_tools();
        // Copies of `sleep` under a storage daemon's and a service's name:
        // their processes have those names.
        let sleep = machine_tool("sleep").unwrap();
        let mut children = Vec::new();
        for name in ["tgtd", "rgwatch-svc"] {
            let path = bin.path().join(name);
            std::fs::copy(&sleep, &path).unwrap();
            children.push(std::process::Command::new(&path).arg("30").spawn().unwrap());
        }
        let text = run_script(&cfg, 1, bin.path(), &[]);
        for mut c in children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let section = |name: &str| -> Vec<String> {
            let head = format!("@@ {name}\n");
            let at = text.find(&head).unwrap_or_else(|| panic!("no {name} section:\n{text}")) + head.len();
            text[at..]
                .lines()
                .take_while(|l| !l.starts_with("@@ "))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(section("storage"), ["tgtd 1"], "{text}");
        let procs: usize = section("procs")[0].parse().unwrap();
        assert!(procs > 2, "{text}");
        if !std::path::Path::new("/run/systemd/system").exists() {
            assert_eq!(section("svc rgwatch-svc"), ["active"], "{text}");
            assert_eq!(section("svc rgwatch-none"), ["inactive"], "{text}");
        }
    }

    /// The real script, run once by a local shell whose PATH has the tools a
    /// host has but neither podman nor docker: `containers: true` and a
    /// failing custom metric are both reported, a working one is not, and
    /// the working metric's series still arrive.
    #[test]
    fn a_missing_engine_and_a_failing_custom_metric_are_reported() {
        let cfg = config(
            "containers: true\ncustom_metrics:\n  - {name: broken, command: 'echo broken 1; exit 3'}\n  - {name: fine, command: 'echo fine 2'}\nreceivers:\n  - name: h\n    webhook: {url: 'http://127.0.0.1:1/x'}\n",
        );
        let bin = host_tools();
        let text = run_script(&cfg, 1, bin.path(), &[]);
        assert!(text.contains("@@ end"), "{text}");
        let problems = block_problems(&text, &cfg);
        assert_eq!(
            problems,
            [
                "containers: true, but neither podman nor docker is on the host's PATH: no container_* series",
                "custom metric `broken`: its command exited 3",
            ],
            "{text}"
        );
        let samples = parse_block("h1", &text, 1.0, &mut Counters::default(), &Exclude::default()).decode();
        assert!(samples.iter().any(|s| s.name == "fine" && s.value == 2.0), "{text}");
        assert!(samples.iter().any(|s| s.name == "broken" && s.value == 1.0), "{text}");
        // Reported with the first block, then only when they change.
        let mut open = None;
        assert_eq!(changed_problems(&text, &cfg, &mut open), Some(problems.clone()));
        assert_eq!(changed_problems(&text, &cfg, &mut open), None);
        assert_eq!(changed_problems("@@ begin\n@@ end\n", &cfg, &mut open), Some(vec![]));
        let mut fresh = None;
        assert_eq!(changed_problems("@@ begin\n@@ end\n", &cfg, &mut fresh), Some(vec![]));
        // Lines a host prints in that form for anything not configured, or
        // with text of its own, are not taken up.
        let forged = "@@ begin\n@@ problem custom other 3\n@@ problem custom broken x\n@@ problem \u{1b}[2J\n@@ end\n";
        assert!(block_problems(forged, &cfg).is_empty());
    }

    /// Two rounds of the real script with only a shell, `df`, `timeout`,
    /// `sleep` and `virsh` on its PATH (neither `cat` nor `head`): the /proc
    /// sections come through the shell's own `read` and give the CPU, load,
    /// memory and network series; one virsh (libvirt's test driver through
    /// `LIBVIRT_DEFAULT_URI`) gives both the domain and the pool series.
    #[test]
    fn a_sample_reads_proc_without_processes_and_asks_libvirt_once() {
        let cfg = config("interval: 200ms\nreceivers:\n  - name: h\n    webhook: {url: 'http://127.0.0.1:1/x'}\n");
        let bin = tools_dir(&["sh", "df", "timeout", "sleep"]);
        // virsh through a wrapper that counts its runs.
        let virsh = machine_tool("virsh");
        if let Some(path) = &virsh {
            use std::os::unix::fs::PermissionsExt;
            let wrapper = bin.path().join("virsh");
            let log = bin.path().join("virsh.runs");
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\necho run >> '{}'\nexec '{}' \"$@\"\n",
                    log.display(),
                    path.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        // CI installs libvirt's client (scripts/test-deps.sh); elsewhere a
        // machine without it tests the rest.
        assert!(
            virsh.is_some() || std::env::var_os("CI").is_none(),
            "virsh is not installed"
        );
        let text = run_script(&cfg, 2, bin.path(), &[("LIBVIRT_DEFAULT_URI", "test:///default")]);
        let blocks: Vec<&str> = text.split_inclusive("@@ end\n").collect();
        assert_eq!(blocks.len(), 2, "{text}");
        let (mut c, ex) = (Counters::default(), Exclude::default());
        parse_block("h1", blocks[0], 1.0, &mut c, &ex);
        let s = parse_block("h1", blocks[1], 1.2, &mut c, &ex).decode();
        let has = |name: &str, label: Option<(&str, &str)>| {
            s.iter()
                .any(|x| x.name == name && label.is_none_or(|(k, v)| x.labels.get(k).map(String::as_str) == Some(v)))
        };
        for name in [
            "cpu_idle_pct",
            "load1",
            "mem_used_pct",
            "processes",
            "disk_used_pct",
            "net_rx_bytes_per_s",
        ] {
            assert!(has(name, None), "no {name}:\n{text}");
        }
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
        let total = meminfo.lines().next().unwrap();
        assert!(text.contains(&format!("@@ meminfo\n{total}\n")), "{text}");
        if virsh.is_some() {
            assert!(has("libvirt_domain_state", Some(("domain", "test"))), "{text}");
            assert!(
                has("libvirt_pool_capacity_bytes", Some(("pool", "default-pool"))),
                "{text}"
            );
            let runs = std::fs::read_to_string(bin.path().join("virsh.runs")).unwrap();
            assert_eq!(runs.lines().count(), 2, "one virsh a round");
        }
    }

    #[test]
    fn block_rates_and_disk() {
        let b1 = "@@ begin\n@@ stat\ncpu  100 0 100 800 0 0 0 0 0 0\n@@ df\nFilesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs 1000 250 750 25% /srv/fill\n@@ netdev\nInter-|\n face |\n  eth0: 1000 10 0 0 0 0 0 0 2000 20 0 0 0 0 0 0\n@@ procs\n57\n@@ end\n";
        let mut c = Counters::default();
        let ex = Exclude::default();
        let s1 = parse_block("h1", b1, 100.0, &mut c, &ex).decode();
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
        let s2 = parse_block("h1", &b2, 102.0, &mut c, &ex).decode();
        let get = |n: &str| s2.iter().find(|s| s.name == n).map(|s| s.value);
        assert_eq!(get("cpu_user_pct"), Some(25.0));
        assert_eq!(get("cpu_system_pct"), Some(25.0));
        assert_eq!(get("net_rx_bytes_per_s"), Some(1000.0));
        assert_eq!(get("processes"), Some(57.0));
    }

    #[test]
    fn sample_keys_are_series_keys() {
        let mut s = Samples::default();
        s.push(
            "m",
            &[("mount", "/a \"b\"\\"), ("host", "h1"), ("device", "/dev/x")],
            1.5,
        );
        s.push("n", &[], f64::NAN);
        let mut l = Labels::new();
        l.insert("q".into(), "line\nbreak".into());
        s.push_labels("c", &l, 2.0);
        let keys: Vec<(&str, f64)> = s.iter().collect();
        let mut want = Labels::new();
        want.insert("host".into(), "h1".into());
        want.insert("mount".into(), "/a \"b\"\\".into());
        want.insert("device".into(), "/dev/x".into());
        assert_eq!(
            keys,
            vec![
                (exposition::series_key("m", &want).as_str(), 1.5),
                (exposition::series_key("c", &l).as_str(), 2.0)
            ]
        );
        let d = s.decode();
        assert_eq!((d[0].name.as_str(), &d[0].labels), ("m", &want));
        assert_eq!(d[1].labels, l);
    }

    #[test]
    fn default_exclusions_and_counters_of_vanished_interfaces() {
        let block = crate::watch::store::tests::typical_block(1);
        let mut c = Counters::default();
        let ex = Exclude::default();
        let series = |s: &Samples, name: &str, label: &str| -> Vec<String> {
            s.decode()
                .into_iter()
                .filter(|x| x.name == name)
                .filter_map(|x| x.labels.get(label).cloned())
                .collect()
        };
        parse_block("h", &block, 100.0, &mut c, &ex);
        let s = parse_block("h", &block.replace("eth1:", "eth9:"), 110.0, &mut c, &ex);
        // Pseudo file systems and the system's tmpfs mounts are left out; /tmp stays.
        assert_eq!(series(&s, "disk_used_pct", "mount"), ["/", "/var", "/srv/data", "/tmp"]);
        assert_eq!(series(&s, "disk_inodes_used_pct", "mount").len(), 4);
        // Whole disks, not partitions, loop devices or the cdrom.
        assert_eq!(series(&s, "disk_read_bytes_per_s", "device"), ["vda", "vdb"]);
        // Not lo, docker0 or veth*; eth9 is new (no rate yet), eth1's counters are gone.
        assert_eq!(series(&s, "net_rx_errors_total", "interface"), ["eth0", "eth9"]);
        assert_eq!(series(&s, "net_rx_bytes_per_s", "interface"), ["eth0"]);
        assert_eq!(
            c.net
                .keys()
                .map(String::as_str)
                .collect::<std::collections::BTreeSet<_>>(),
            ["eth0", "eth9"].into()
        );

        // Empty exclusions collect everything; untyped df output still parses.
        let none = Exclude {
            fs_types: vec![],
            mounts: None,
            interfaces: None,
            devices: None,
        };
        let mut c = Counters::default();
        let s = parse_block("h", &block, 100.0, &mut c, &none);
        assert_eq!(series(&s, "disk_used_pct", "mount").len(), 11);
        assert_eq!(series(&s, "net_rx_errors_total", "interface").len(), 7);
        let untyped = "@@ begin\n@@ df\nFilesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 100 40 60 40% /mnt/with space\n@@ end\n";
        let s = parse_block("h", untyped, 100.0, &mut Counters::default(), &ex).decode();
        let d = s.iter().find(|x| x.name == "disk_used_pct").unwrap();
        assert_eq!((d.labels["mount"].as_str(), d.value), ("/mnt/with space", 40.0));
    }

    #[test]
    fn containers_of_podman_and_docker() {
        let podman_inspect =
            r#"[{"Name":"web","State":{"Running":true,"Health":{"Status":"healthy"}},"RestartCount":2},
 {"Name":"sick","State":{"Running":true,"Health":{"Status":"unhealthy"}},"RestartCount":0},
 {"Name":"plain","State":{"Running":false,"Health":{"Status":""}},"RestartCount":0}]"#
                .replace('\n', "");
        let podman_stats = r#"[{"id":"1","name":"web","cpu_percent":"1.50%","mem_usage":"2.5MB / 25GB"}]"#;
        let docker_inspect = r#"{"Name":"/dk","State":{"Running":true},"RestartCount":1}"#;
        let docker_stats = r#"{"Name":"dk","CPUPerc":"0.25%","MemUsage":"1.5MiB / 1GiB"}{"Name":"x","CPUPerc":"--","MemUsage":"-- / --"}"#;
        let block = format!(
            "@@ begin\n@@ containers\n{podman_inspect}\n@@ cstats\n{podman_stats}\n@@ containers\n{docker_inspect}\n@@ cstats\n{docker_stats}\n@@ end\n"
        );
        let samples = parse_block("h", &block, 1.0, &mut Counters::default(), &Exclude::default());
        let got: std::collections::BTreeMap<String, f64> = samples.iter().map(|(k, v)| (k.to_string(), v)).collect();
        let v = |name: &str, c: &str| got.get(&format!("{name}{{container=\"{c}\",host=\"h\"}}")).copied();
        assert_eq!(v("container_up", "web"), Some(1.0), "{got:?}");
        assert_eq!(v("container_up", "plain"), Some(0.0));
        assert_eq!(v("container_healthy", "web"), Some(1.0));
        assert_eq!(v("container_healthy", "sick"), Some(0.0));
        assert_eq!(
            v("container_healthy", "plain"),
            None,
            "no check, not running: no series"
        );
        assert_eq!(v("container_restarts_total", "web"), Some(2.0));
        assert_eq!(v("container_cpu_pct", "web"), Some(1.5));
        assert_eq!(v("container_memory_bytes", "web"), Some(2.5e6));
        assert_eq!(v("container_up", "dk"), Some(1.0));
        assert_eq!(v("container_healthy", "dk"), None);
        assert_eq!(v("container_restarts_total", "dk"), Some(1.0));
        assert_eq!(v("container_cpu_pct", "dk"), Some(0.25));
        assert_eq!(v("container_memory_bytes", "dk"), Some(1.5 * 1024.0 * 1024.0));
        assert_eq!(v("container_cpu_pct", "x"), None, "`--` is no value");
        for name in got.keys() {
            let metric = name.split('{').next().unwrap();
            assert!(crate::watch::config::builtin_labels(metric).is_some(), "{metric}");
        }
        // A cut or hostile line is skipped, not a panic.
        let cut = "@@ begin\n@@ containers\n[{\"Name\":\"a\",\"State\":{\"Running\":tr\n@@ cstats\n}}}{{\n@@ end\n";
        assert!(parse_block("h", cut, 1.0, &mut Counters::default(), &Exclude::default()).is_empty());
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
            parse_block("h", block, 1.0, &mut c, &Exclude::default());
        }
    }
}
