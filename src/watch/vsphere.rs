//! vSphere metrics: one collector per `vsphere:` endpoint of the watch
//! configuration keeps a session to vCenter/ESXi (one kept TLS connection)
//! and reads, every interval, the datastores' capacity and free space, the
//! ESXi hosts' and the VMs' CPU and memory use through the property
//! collector. Its samples carry `host` = the endpoint's name, so rules,
//! `host_down` and silences treat it like a watched host.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::collect::{HostEvent, Samples};
use super::config::{VsphereTarget, WatchConfig};
use crate::modules::vmware::client::{Endpoint, Session, VmwareError};
use crate::modules::vmware::inventory;
use crate::modules::vmware::soap::{MoRef, Node};

/// Keep one endpoint's collection running: log in, sample every interval;
/// on a failure report the endpoint lost, back off (1 s doubling up to
/// 30 s) and log in again. `rounds` > 0: that many samples, then stop.
pub async fn run_endpoint(t: VsphereTarget, cfg: Arc<WatchConfig>, tx: mpsc::Sender<HostEvent>, rounds: u32) {
    let ep = Endpoint {
        host: t.hostname.clone(),
        port: t.port,
        username: t.username.clone(),
        password: t.password.clone(),
        trust: t.trust.clone(),
    };
    let mut backoff = Duration::from_secs(1);
    loop {
        let started = tokio::time::Instant::now();
        let result = stream_once(&t, &ep, &cfg, &tx, rounds).await;
        if rounds > 0 {
            if let Err(e) = result {
                let _ = tx
                    .send(HostEvent::Lost {
                        host: t.name.clone(),
                        reason: e.to_string(),
                    })
                    .await;
            }
            return;
        }
        let reason = match result {
            Ok(()) => return,
            Err(e) => e.to_string(),
        };
        if tx
            .send(HostEvent::Lost {
                host: t.name.clone(),
                reason,
            })
            .await
            .is_err()
        {
            return;
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// One session: sample until a call fails (Err) or the receiver is gone (Ok).
async fn stream_once(
    t: &VsphereTarget,
    ep: &Endpoint,
    cfg: &WatchConfig,
    tx: &mpsc::Sender<HostEvent>,
    rounds: u32,
) -> Result<(), VmwareError> {
    let mut s = Session::login(ep).await?;
    let _ = tx.send(HostEvent::Connected { host: t.name.clone() }).await;
    let container = match &t.datacenter {
        Some(dc) => inventory::datacenter(&mut s, dc).await?.moref,
        None => s.content.root_folder.clone(),
    };
    let mut done = 0u32;
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let samples = sample(&mut s, &container, &t.name).await?;
        if tx
            .send(HostEvent::Samples {
                host: t.name.clone(),
                samples,
            })
            .await
            .is_err()
        {
            let _ = s.logout().await;
            return Ok(());
        }
        done += 1;
        if rounds > 0 && done >= rounds {
            // The samples are delivered; a failed logout ends with the session.
            let _ = s.logout().await;
            return Ok(());
        }
    }
}

fn int(n: Option<&Node>, path: &str) -> Option<f64> {
    n.and_then(|n| n.int(path)).map(|v| v as f64)
}

/// One round of samples of everything under `container`, labelled `host`.
async fn sample(s: &mut Session, container: &MoRef, host: &str) -> Result<Samples, VmwareError> {
    let mut out = Samples::default();
    for (_, p) in s.list(container, "Datastore", &["summary"]).await? {
        let sum = p.get("summary");
        let Some(name) = sum.and_then(|n| n.get("name")) else {
            continue;
        };
        let (Some(cap), Some(free)) = (int(sum, "capacity"), int(sum, "freeSpace")) else {
            continue;
        };
        let l = [("host", host), ("datastore", name)];
        out.push("vsphere_datastore_capacity_bytes", &l, cap);
        out.push("vsphere_datastore_free_bytes", &l, free);
        if cap > 0.0 {
            out.push("vsphere_datastore_used_pct", &l, 100.0 * (cap - free) / cap);
        }
    }
    for (_, p) in s
        .list(
            container,
            "HostSystem",
            &["name", "summary.quickStats", "summary.hardware"],
        )
        .await?
    {
        let Some(name) = p.get("name").map(|n| n.text.clone()) else {
            continue;
        };
        let l = [("host", host), ("esxi_host", name.as_str())];
        let qs = p.get("summary.quickStats");
        let hw = p.get("summary.hardware");
        if let Some(cpu) = int(qs, "overallCpuUsage") {
            out.push("vsphere_host_cpu_usage_mhz", &l, cpu);
            if let (Some(mhz), Some(cores)) = (int(hw, "cpuMhz"), int(hw, "numCpuCores")) {
                if mhz * cores > 0.0 {
                    out.push("vsphere_host_cpu_used_pct", &l, 100.0 * cpu / (mhz * cores));
                }
            }
        }
        if let Some(mem_mb) = int(qs, "overallMemoryUsage") {
            let used = mem_mb * 1024.0 * 1024.0;
            out.push("vsphere_host_memory_usage_bytes", &l, used);
            if let Some(size) = int(hw, "memorySize").filter(|s| *s > 0.0) {
                out.push("vsphere_host_memory_used_pct", &l, 100.0 * used / size);
            }
        }
    }
    for (_, p) in s
        .list(
            container,
            "VirtualMachine",
            &["name", "summary.quickStats", "runtime.powerState", "config.template"],
        )
        .await?
    {
        if p.get("config.template").is_some_and(|n| n.text == "true") {
            continue;
        }
        let Some(name) = p.get("name").map(|n| n.text.clone()) else {
            continue;
        };
        let l = [("host", host), ("vm", name.as_str())];
        let on = p.get("runtime.powerState").is_some_and(|n| n.text == "poweredOn");
        out.push("vsphere_vm_powered_on", &l, if on { 1.0 } else { 0.0 });
        let qs = p.get("summary.quickStats");
        if let Some(cpu) = int(qs, "overallCpuUsage") {
            out.push("vsphere_vm_cpu_usage_mhz", &l, cpu);
        }
        if let Some(mem_mb) = int(qs, "guestMemoryUsage") {
            out.push("vsphere_vm_memory_usage_bytes", &l, mem_mb * 1024.0 * 1024.0);
        }
    }
    Ok(out)
}
