//! `vmware_guest` (alias `community.vmware.vmware_guest`): virtual machines
//! on vCenter/ESXi, created from scratch or cloned from a template, their
//! CPU, memory, disks and network adapters reconfigured in place, their power
//! state set, or removed.
//!
//! The query reads the VM and compares each requested field with it; the
//! differing fields are the `--diff` and the result's `changes`. The change
//! creates (or clones) the VM if needed, re-reads it, reconfigures what
//! differs in one `ReconfigVM_Task`, then sets the power state.

use std::collections::HashMap;
use std::fmt::Write as _;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::client::{Session, VmwareError};
use super::conn::{self, failed, vmware_options};
use super::customize::{self, Customization, NicIp};
use super::inventory::{self, Datacenter, Vm, VmSelector, NIC_TYPES, SCSI_CONTROLLERS};
use super::power::{self, PowerAction};
use super::soap::{MoRef, Xml};
use crate::modules::args::{de_opt_bool, de_opt_int, de_opt_string, de_string_list};
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

const STATES: &[&str] = &[
    "present",
    "absent",
    "poweredon",
    "powered-on",
    "poweredoff",
    "powered-off",
    "restarted",
    "suspended",
    "shutdownguest",
    "rebootguest",
];

const OWN_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "The VM's name (required unless `uuid` is given)."),
    OptionDoc::new(
        "name_match",
        OptKind::Str,
        "Which VM to use when several have the name.",
    )
    .choices(&["first", "last"])
    .default("first"),
    OptionDoc::new(
        "uuid",
        OptKind::Str,
        "The VM's BIOS UUID (or instance UUID with `use_instance_uuid`).",
    ),
    OptionDoc::new("use_instance_uuid", OptKind::Bool, "`uuid` is the instance UUID.").default("false"),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`present` (exists, power untouched), `absent`, `poweredon`, `poweredoff`, `restarted`, `suspended`, \
`shutdownguest`, `rebootguest` (the last two through VMware Tools).",
    )
    .choices(STATES)
    .default("present"),
    OptionDoc::new(
        "template",
        OptKind::Str,
        "Create the VM as a clone of this template (or VM) of the datacenter.",
    )
    .aliases(&["template_src"]),
    OptionDoc::new("datacenter", OptKind::Str, "The datacenter.").default("ha-datacenter"),
    OptionDoc::new(
        "folder",
        OptKind::Str,
        "The VM folder to create in (`/DC0/vm/sub`, `sub`); default the datacenter's VM folder.",
    ),
    OptionDoc::new("cluster", OptKind::Str, "Create in this cluster's root resource pool."),
    OptionDoc::new(
        "esxi_hostname",
        OptKind::Str,
        "Create on this host (its resource pool).",
    ),
    OptionDoc::new("resource_pool", OptKind::Str, "Create in this resource pool."),
    OptionDoc::new(
        "datastore",
        OptKind::Str,
        "The datastore of a new VM (default: the first disk's `datastore`; a clone keeps its template's).",
    ),
    OptionDoc::new(
        "guest_id",
        OptKind::Str,
        "The guest OS identifier (`otherLinux64Guest`, `debian11_64Guest`); required to create from scratch.",
    ),
    OptionDoc::new(
        "hardware",
        OptKind::Dict,
        "`num_cpus`, `num_cpu_cores_per_socket`, `memory_mb` (a new VM from scratch: 1 CPU, 512 MB unless given).",
    ),
    OptionDoc::new(
        "disk",
        OptKind::List,
        "Disks in order: each `size_gb` (or `size_mb`, `size_kb`, `size_tb`, `size: 10gb`), `type` \
(thin, thick, eagerzeroedthick) and `datastore`. A disk is grown, never shrunk; missing disks are added \
on the first SCSI controller; disks beyond the list are left alone.",
    ),
    OptionDoc::new(
        "networks",
        OptKind::List,
        "Network adapters in order: each `name` (the network), `device_type` (vmxnet3, e1000, e1000e, ...; \
a different type replaces the adapter), `mac`, `start_connected`, `connected`; for the guest customization of \
a new VM: `ip` and `netmask` (or `type: dhcp`, the default), `gateway`, `domain`, `dns_servers`.",
    ),
    OptionDoc::new(
        "customization",
        OptKind::Dict,
        "Guest customization of a new VM (Linux guests, through VMware Tools at its first boot): `hostname` \
(default: the VM's name), `domain`, `dns_servers`, `dns_suffix`, `timezone`, `hwclockutc`. Applied when the \
task creates the VM, with the IP settings of `networks`; an existing VM is not customized again (a warning \
says so). See docs/vmware.md.",
    ),
    OptionDoc::new("annotation", OptKind::Str, "The VM's notes.").aliases(&["notes"]),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Remove a powered-on VM (`state: absent`) by powering it off first.",
    )
    .default("false"),
];

const OPTIONS: &[OptionDoc] = vmware_options!(conn::CONNECTION, OWN_OPTIONS);

static DOC: ModuleDoc = ModuleDoc {
    name: "vmware_guest",
    aliases: &["community.vmware.vmware_guest"],
    short: "Create, reconfigure, power and remove VMware vSphere virtual machines",
    description: "Manages a virtual machine on vCenter or ESXi through the vSphere API (SOAP over HTTPS), \
from the controller. Creates it from scratch or as a clone of `template`, compares its guest OS, CPU, \
memory, disks, network adapters and notes with the request and reconfigures what differs in place \
(`--diff` shows the differing fields), sets its power state, or removes it. The connection options are \
community.vmware's; certificates are checked against the platform's roots, a `ca_file` or a pinned \
`thumbprint`, and only `validate_certs: false` turns the check off. See docs/vmware.md.",
    free_form: false,
    options: OPTIONS,
    examples: "- name: A VM from scratch\n  community.vmware.vmware_guest:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n    ca_file: /etc/ssl/vcenter-ca.pem\n    datacenter: DC0\n    cluster: DC0_C0\n    name: web1\n    guest_id: otherLinux64Guest\n    datastore: LocalDS_0\n    hardware: { num_cpus: 2, memory_mb: 2048 }\n    disk: [{ size_gb: 20, type: thin }]\n    networks: [{ name: VM Network, device_type: vmxnet3 }]\n    state: poweredon\n  delegate_to: localhost\n- name: A clone of a template\n  vmware_guest:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n    thumbprint: \"{{ vcenter_thumbprint }}\"\n    datacenter: DC0\n    cluster: DC0_C0\n    name: web2\n    template: debian-12\n    hardware: { memory_mb: 4096 }\n    state: poweredon\n",
    returns: &[
        ReturnDoc {
            name: "instance",
            description: "the VM's facts after the task (hw_name, hw_power_status, hw_processor_count, hw_memtotal_mb, hw_guest_id, hw_product_uuid, instance_uuid, hw_eth0..., disks, snapshots, moid); in check mode the VM as it is",
        },
        ReturnDoc {
            name: "changes",
            description: "the fields that differ (or would): `hardware.memory_mb`, `disk[0].size_kb`, `networks[1].name`, `power_state`, ...",
        },
    ],
    controller_only: true,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default, deserialize_with = "de_opt_string")]
    name: Option<String>,
    #[serde(default)]
    name_match: Option<String>,
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    use_instance_uuid: Option<bool>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    datacenter: Option<String>,
    #[serde(default)]
    folder: Option<String>,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    esxi_hostname: Option<String>,
    #[serde(default)]
    resource_pool: Option<String>,
    #[serde(default)]
    datastore: Option<String>,
    #[serde(default)]
    guest_id: Option<String>,
    #[serde(default)]
    hardware: Option<Hardware>,
    #[serde(default)]
    disk: Option<Vec<DiskSpec>>,
    #[serde(default)]
    networks: Option<Vec<NetSpec>>,
    #[serde(default)]
    customization: Option<Customization>,
    #[serde(default, deserialize_with = "de_opt_string")]
    annotation: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    force: Option<bool>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct Hardware {
    #[serde(default, deserialize_with = "de_opt_int")]
    num_cpus: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_int")]
    num_cpu_cores_per_socket: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_int")]
    memory_mb: Option<i64>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct DiskSpec {
    #[serde(default, deserialize_with = "de_opt_string")]
    size: Option<String>,
    #[serde(default, deserialize_with = "de_opt_int")]
    size_kb: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_int")]
    size_mb: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_int")]
    size_gb: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_int")]
    size_tb: Option<i64>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    datastore: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct NetSpec {
    #[serde(default, deserialize_with = "de_opt_string")]
    name: Option<String>,
    #[serde(default)]
    device_type: Option<String>,
    #[serde(default)]
    mac: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    start_connected: Option<bool>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    connected: Option<bool>,
    #[serde(default, deserialize_with = "de_opt_string")]
    ip: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    netmask: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    gateway: Option<String>,
    #[serde(default, rename = "type")]
    ip_type: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    domain: Option<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    dns_servers: Vec<String>,
}

/// A disk as requested.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WantDisk {
    pub size_kb: i64,
    /// `thin`, `thick` or `eagerzeroedthick` (for new disks).
    pub kind: Option<String>,
    pub datastore: Option<String>,
}

/// A network adapter as requested.
#[derive(Debug, Clone, PartialEq)]
struct WantNic {
    network: String,
    /// vSphere's type name (`VirtualVmxnet3`).
    kind: Option<String>,
    mac: Option<String>,
    start_connected: Option<bool>,
    connected: Option<bool>,
}

/// The VM's configuration as requested (only what the task names).
#[derive(Debug, Clone, Default)]
struct Want {
    guest_id: Option<String>,
    annotation: Option<String>,
    num_cpus: Option<i64>,
    cores_per_socket: Option<i64>,
    memory_mb: Option<i64>,
    disks: Vec<WantDisk>,
    nics: Vec<WantNic>,
}

/// `10gb`, `512 MB`, `1tb` -> KiB.
pub(crate) fn size_text_kb(s: &str) -> Option<i64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num.parse().ok()?;
    let mult = match unit.trim() {
        "kb" | "k" => 1,
        "mb" | "m" => 1024,
        "gb" | "g" | "" => 1024 * 1024,
        "tb" | "t" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// The one size a disk entry gives (`size_kb`, `size_mb`, `size_gb`,
/// `size_tb` or `size: 10gb`), in KiB; None when it gives none.
pub(crate) fn requested_size_kb(
    module: &str,
    i: usize,
    size: Option<&str>,
    [kb, mb, gb, tb]: [Option<i64>; 4],
) -> Result<Option<i64>, ModuleError> {
    let given = [
        kb,
        mb.and_then(|v| v.checked_mul(1024)),
        gb.and_then(|v| v.checked_mul(1024 * 1024)),
        tb.and_then(|v| v.checked_mul(1024 * 1024 * 1024)),
    ];
    let from_text = match size {
        Some(s) => Some(
            size_text_kb(s)
                .ok_or_else(|| ModuleError::Args(format!("{module}: disk[{i}].size `{s}` is not a size like 10gb")))?,
        ),
        None => None,
    };
    let sizes: Vec<i64> = given.into_iter().flatten().chain(from_text).collect();
    match sizes.as_slice() {
        [] => Ok(None),
        [one] if *one > 0 => Ok(Some(*one)),
        [_] => Err(ModuleError::Args(format!(
            "{module}: disk[{i}]: the size must be positive"
        ))),
        _ => Err(ModuleError::Args(format!(
            "{module}: disk[{i}]: give one size, not several"
        ))),
    }
}

fn want_disk(i: usize, d: &DiskSpec) -> Result<WantDisk, ModuleError> {
    let size_kb = requested_size_kb(
        "vmware_guest",
        i,
        d.size.as_deref(),
        [d.size_kb, d.size_mb, d.size_gb, d.size_tb],
    )?
    .ok_or_else(|| {
        ModuleError::Args(format!(
            "vmware_guest: disk[{i}] needs a size (size_gb, size_mb, size_kb, size_tb or size)"
        ))
    })?;
    if let Some(k) = &d.kind {
        if !["thin", "thick", "eagerzeroedthick"].contains(&k.as_str()) {
            return Err(ModuleError::Args(format!(
                "vmware_guest: disk[{i}].type must be one of: thin, thick, eagerzeroedthick; got {k}"
            )));
        }
    }
    Ok(WantDisk {
        size_kb,
        kind: d.kind.clone(),
        datastore: d.datastore.clone(),
    })
}

fn want_nic(i: usize, n: &NetSpec) -> Result<WantNic, ModuleError> {
    let network = n
        .name
        .clone()
        .ok_or_else(|| ModuleError::Args(format!("vmware_guest: networks[{i}] needs a name (the network)")))?;
    let kind = match &n.device_type {
        Some(t) => Some(
            NIC_TYPES
                .iter()
                .find(|(name, _)| name == t)
                .map(|(_, k)| k.to_string())
                .ok_or_else(|| {
                    ModuleError::Args(format!(
                        "vmware_guest: networks[{i}].device_type must be one of: {}; got {t}",
                        NIC_TYPES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ))
                })?,
        ),
        None => None,
    };
    Ok(WantNic {
        network,
        kind,
        mac: n.mac.as_ref().map(|m| m.to_ascii_lowercase()),
        start_connected: n.start_connected,
        connected: n.connected,
    })
}

/// One differing field: its name and its values before and after.
#[derive(Debug, Clone, PartialEq)]
struct Field {
    key: String,
    before: String,
    after: String,
}

fn field(out: &mut Vec<Field>, key: impl Into<String>, before: impl ToString, after: impl ToString) {
    let (before, after) = (before.to_string(), after.to_string());
    if before != after {
        out.push(Field {
            key: key.into(),
            before,
            after,
        });
    }
}

/// The fields of `vm` that differ from `want`.
fn differences(vm: &Vm, want: &Want) -> Result<Vec<Field>, ModuleError> {
    let mut out = Vec::new();
    if let Some(g) = &want.guest_id {
        field(&mut out, "guest_id", &vm.guest_id, g);
    }
    if let Some(a) = &want.annotation {
        field(&mut out, "annotation", &vm.annotation, a);
    }
    if let Some(n) = want.num_cpus {
        field(&mut out, "hardware.num_cpus", vm.num_cpus, n);
    }
    if let Some(n) = want.cores_per_socket {
        field(&mut out, "hardware.num_cpu_cores_per_socket", vm.cores_per_socket, n);
    }
    if let Some(n) = want.memory_mb {
        field(&mut out, "hardware.memory_mb", vm.memory_mb, n);
    }
    for (i, d) in want.disks.iter().enumerate() {
        match vm.disks.get(i) {
            Some(have) if have.capacity_kb > d.size_kb => {
                return Err(ModuleError::Failed(format!(
                    "vmware_guest: disk[{i}] of `{}` has {} KiB; shrinking it to {} KiB is not supported",
                    vm.name, have.capacity_kb, d.size_kb
                )))
            }
            Some(have) => field(&mut out, format!("disk[{i}].size_kb"), have.capacity_kb, d.size_kb),
            None => field(&mut out, format!("disk[{i}].size_kb"), "absent", d.size_kb),
        }
    }
    for (i, n) in want.nics.iter().enumerate() {
        match vm.nics.get(i) {
            Some(have) => {
                field(&mut out, format!("networks[{i}].name"), &have.network, &n.network);
                if let Some(k) = &n.kind {
                    field(
                        &mut out,
                        format!("networks[{i}].device_type"),
                        inventory::nic_type_name(&have.kind),
                        inventory::nic_type_name(k),
                    );
                }
                if let Some(m) = &n.mac {
                    field(&mut out, format!("networks[{i}].mac"), have.mac.to_ascii_lowercase(), m);
                }
                if let Some(c) = n.start_connected {
                    field(
                        &mut out,
                        format!("networks[{i}].start_connected"),
                        have.start_connected,
                        c,
                    );
                }
                if let Some(c) = n.connected {
                    field(&mut out, format!("networks[{i}].connected"), have.connected, c);
                }
            }
            None => field(&mut out, format!("networks[{i}].name"), "absent", &n.network),
        }
    }
    Ok(out)
}

/// The requested configuration as `key: value` lines (the `after` of a creation).
fn want_lines(want: &Want, template: Option<&str>) -> Vec<(String, String)> {
    let mut l = Vec::new();
    if let Some(t) = template {
        l.push(("template".into(), t.to_string()));
    }
    if let Some(g) = &want.guest_id {
        l.push(("guest_id".into(), g.clone()));
    }
    if let Some(a) = &want.annotation {
        l.push(("annotation".into(), a.clone()));
    }
    if let Some(n) = want.num_cpus {
        l.push(("hardware.num_cpus".into(), n.to_string()));
    }
    if let Some(n) = want.cores_per_socket {
        l.push(("hardware.num_cpu_cores_per_socket".into(), n.to_string()));
    }
    if let Some(n) = want.memory_mb {
        l.push(("hardware.memory_mb".into(), n.to_string()));
    }
    for (i, d) in want.disks.iter().enumerate() {
        l.push((format!("disk[{i}].size_kb"), d.size_kb.to_string()));
    }
    for (i, n) in want.nics.iter().enumerate() {
        l.push((format!("networks[{i}].name"), n.network.clone()));
        if let Some(k) = &n.kind {
            l.push((format!("networks[{i}].device_type"), inventory::nic_type_name(k)));
        }
    }
    l
}

fn lines(l: &[(String, String)]) -> String {
    l.iter().fold(String::new(), |mut s, (k, v)| {
        let _ = writeln!(s, "{k}: {v}");
        s
    })
}

/// Where a new VM goes.
struct Placement {
    folder: MoRef,
    pool: MoRef,
    host: Option<MoRef>,
    datastore: Option<(String, MoRef)>,
}

async fn placement(s: &mut Session, dc: &Datacenter, p: &Params, want: &Want) -> Result<Placement, VmwareError> {
    let folder = inventory::vm_folder(s, dc, p.folder.as_deref()).await?;
    let mut host = None;
    let pool = if let Some(rp) = &p.resource_pool {
        inventory::one(s, &dc.host_folder, "ResourcePool", rp, "resource pool").await?
    } else if let Some(c) = &p.cluster {
        let cl = inventory::one(s, &dc.host_folder, "ClusterComputeResource", c, "cluster").await?;
        let props = s.props(&cl, &["resourcePool"]).await?;
        props
            .get("resourcePool")
            .and_then(|n| n.as_moref())
            .ok_or_else(|| VmwareError::NotFound(format!("cluster `{c}` has no resource pool")))?
    } else if let Some(h) = &p.esxi_hostname {
        let hs = inventory::one(s, &dc.host_folder, "HostSystem", h, "ESXi host").await?;
        let parent = s
            .props(&hs, &["parent"])
            .await?
            .get("parent")
            .and_then(|n| n.as_moref())
            .ok_or_else(|| VmwareError::NotFound(format!("ESXi host `{h}` has no parent")))?;
        host = Some(hs);
        s.props(&parent, &["resourcePool"])
            .await?
            .get("resourcePool")
            .and_then(|n| n.as_moref())
            .ok_or_else(|| VmwareError::NotFound(format!("ESXi host `{h}` has no resource pool")))?
    } else {
        return Err(VmwareError::NotFound(
            "vmware_guest: give cluster, esxi_hostname or resource_pool to create a VM".into(),
        ));
    };
    let ds_name = p
        .datastore
        .clone()
        .or_else(|| want.disks.first().and_then(|d| d.datastore.clone()));
    let datastore = match ds_name {
        Some(n) => {
            let r = inventory::one(s, &dc.datastore_folder, "Datastore", &n, "datastore").await?;
            Some((n, r))
        }
        None if p.template.is_none() => {
            return Err(VmwareError::NotFound(
                "vmware_guest: give datastore (or disk[0].datastore) to create a VM from scratch".into(),
            ))
        }
        None => None,
    };
    Ok(Placement {
        folder,
        pool,
        host,
        datastore,
    })
}

/// The networks a request names, by name, checked to exist.
async fn networks(s: &mut Session, dc: &Datacenter, want: &Want) -> Result<HashMap<String, MoRef>, VmwareError> {
    let mut out = HashMap::new();
    if want.nics.is_empty() {
        return Ok(out);
    }
    let all = s.list(&dc.network_folder, "Network", &["name"]).await?;
    for n in &want.nics {
        let found = all
            .iter()
            .find(|(_, p)| p.get("name").is_some_and(|v| v.text == n.network))
            .map(|(r, _)| r.clone());
        match found {
            Some(r) if r.kind == "Network" => {
                out.insert(n.network.clone(), r);
            }
            Some(r) => {
                return Err(VmwareError::NotFound(format!(
                    "network `{}` is a {} (distributed port groups are not supported yet; use a standard port group)",
                    n.network, r.kind
                )))
            }
            None => {
                return Err(VmwareError::NotFound(format!(
                    "network `{}` not found in datacenter `{}`",
                    n.network, dc.name
                )))
            }
        }
    }
    Ok(out)
}

/// The `deviceInfo` of an edited device (vSphere keeps its label).
pub(crate) fn device_info(x: &mut Xml, label: &str) {
    x.open("deviceInfo")
        .text("label", label)
        .text("summary", "")
        .close("deviceInfo");
}

pub(crate) fn disk_backing(x: &mut Xml, file: &str, datastore: Option<&MoRef>, kind: Option<&str>, mode: &str) {
    x.open_typed("backing", "VirtualDiskFlatVer2BackingInfo")
        .text("fileName", file);
    if let Some(ds) = datastore {
        x.moref("datastore", ds);
    }
    x.text("diskMode", mode);
    match kind {
        Some("thin") => {
            x.val("thinProvisioned", true);
        }
        Some("thick") => {
            x.val("thinProvisioned", false);
        }
        Some("eagerzeroedthick") => {
            x.val("thinProvisioned", false).val("eagerlyScrub", true);
        }
        _ => {}
    }
    x.close("backing");
}

/// One adapter; `keep` is what an edited adapter keeps (its address type
/// and MAC unless the task gives a `mac`, and its label).
#[allow(clippy::too_many_arguments)]
fn nic_device(
    x: &mut Xml,
    key: i64,
    kind: &str,
    network: &str,
    net: &MoRef,
    n: &WantNic,
    start_connected: bool,
    keep: Option<(&str, &str, &str)>,
) {
    x.open_typed("device", kind).val("key", key);
    if let Some((_, _, label)) = keep {
        device_info(x, label);
    }
    x.open_typed("backing", "VirtualEthernetCardNetworkBackingInfo")
        .text("deviceName", network)
        .moref("network", net)
        .close("backing");
    x.open("connectable")
        .val("startConnected", n.start_connected.unwrap_or(start_connected))
        .val("allowGuestControl", true)
        .val("connected", n.connected.unwrap_or(false))
        .close("connectable");
    match (&n.mac, keep) {
        (Some(m), _) => {
            x.text("addressType", "manual").text("macAddress", m);
        }
        (None, Some((kind, mac, _))) if !mac.is_empty() => {
            x.text("addressType", kind).text("macAddress", mac);
        }
        (None, _) => {
            x.text("addressType", "generated");
        }
    }
    x.close("device");
}

/// The device changes that make `vm`'s disks and adapters what `want` asks
/// (keys below 0 are new devices).
fn device_changes(
    x: &mut Xml,
    vm: Option<&Vm>,
    want: &Want,
    nets: &HashMap<String, MoRef>,
    datastore: Option<&(String, MoRef)>,
) -> Result<bool, ModuleError> {
    let mut any = false;
    let mut next_key = -100;
    let mut new_key = || {
        next_key -= 1;
        next_key
    };
    let (disks, nics, controllers) = match vm {
        Some(v) => (v.disks.as_slice(), v.nics.as_slice(), v.controllers.as_slice()),
        None => (&[][..], &[][..], &[][..]),
    };
    // Disks: grow the existing ones, add the missing ones.
    let missing = want.disks.len().saturating_sub(disks.len());
    let (controller_key, mut used): (i64, Vec<i64>) = match controllers.first() {
        Some(c) => (
            c.key,
            disks
                .iter()
                .filter(|d| d.controller_key == c.key)
                .map(|d| d.unit)
                .collect(),
        ),
        None if missing > 0 => {
            let key = new_key();
            x.open("deviceChange").text("operation", "add");
            x.open_typed("device", SCSI_CONTROLLERS[0])
                .val("key", key)
                .val("busNumber", 0)
                .text("sharedBus", "noSharing")
                .close("device");
            x.close("deviceChange");
            any = true;
            (key, Vec::new())
        }
        None => (0, Vec::new()),
    };
    for (i, d) in want.disks.iter().enumerate() {
        match disks.get(i) {
            Some(have) if have.capacity_kb < d.size_kb => {
                x.open("deviceChange").text("operation", "edit");
                x.open_typed("device", "VirtualDisk").val("key", have.key);
                device_info(x, &have.label);
                disk_backing(x, &have.file, None, have.kind(), &have.disk_mode);
                x.val("controllerKey", have.controller_key)
                    .val("unitNumber", have.unit)
                    .val("capacityInKB", d.size_kb)
                    .val("capacityInBytes", d.size_kb * 1024)
                    .close("device");
                x.close("deviceChange");
                any = true;
            }
            Some(_) => {}
            None => {
                let unit = (0..16).find(|u| *u != 7 && !used.contains(u)).ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "vmware_guest: no free unit for disk[{i}] on the SCSI controller"
                    ))
                })?;
                used.push(unit);
                // The disk's datastore, else the VM's (`[ds] dir/vm.vmx`):
                // `[ds]` alone lets vSphere name the file.
                let ds_file = d
                    .datastore
                    .clone()
                    .or_else(|| datastore.map(|(n, _)| n.clone()))
                    .map(|n| format!("[{n}]"))
                    .or_else(|| {
                        let path = &vm?.vm_path;
                        let end = path.find(']')?;
                        path.starts_with('[').then(|| path[..=end].to_string())
                    })
                    .unwrap_or_default();
                x.open("deviceChange")
                    .text("operation", "add")
                    .text("fileOperation", "create");
                x.open_typed("device", "VirtualDisk").val("key", new_key());
                disk_backing(
                    x,
                    &ds_file,
                    None,
                    Some(d.kind.as_deref().unwrap_or("thin")),
                    "persistent",
                );
                x.val("controllerKey", controller_key)
                    .val("unitNumber", unit)
                    .val("capacityInKB", d.size_kb)
                    .val("capacityInBytes", d.size_kb * 1024)
                    .close("device");
                x.close("deviceChange");
                any = true;
            }
        }
    }
    // Adapters: edit the ones whose network, MAC or connection differ,
    // replace the ones of another type, add the missing ones.
    for (i, n) in want.nics.iter().enumerate() {
        let net = nets
            .get(&n.network)
            .ok_or_else(|| ModuleError::Failed(format!("vmware_guest: network `{}` not resolved", n.network)))?;
        match nics.get(i) {
            Some(have) => {
                let kind_differs = n.kind.as_ref().is_some_and(|k| *k != have.kind);
                let differs = have.network != n.network
                    || n.mac.as_ref().is_some_and(|m| *m != have.mac.to_ascii_lowercase())
                    || n.start_connected.is_some_and(|c| c != have.start_connected)
                    || n.connected.is_some_and(|c| c != have.connected);
                if kind_differs {
                    x.open("deviceChange").text("operation", "remove");
                    x.open_typed("device", &have.kind).val("key", have.key).close("device");
                    x.close("deviceChange");
                    x.open("deviceChange").text("operation", "add");
                    let kind = n.kind.clone().unwrap_or_else(|| have.kind.clone());
                    nic_device(x, new_key(), &kind, &n.network, net, n, have.start_connected, None);
                    x.close("deviceChange");
                    any = true;
                } else if differs {
                    let mut edited = n.clone();
                    if edited.connected.is_none() {
                        edited.connected = Some(have.connected);
                    }
                    x.open("deviceChange").text("operation", "edit");
                    let address = Some((have.address_type.as_str(), have.mac.as_str(), have.label.as_str()));
                    nic_device(
                        x,
                        have.key,
                        &have.kind,
                        &n.network,
                        net,
                        &edited,
                        have.start_connected,
                        address,
                    );
                    x.close("deviceChange");
                    any = true;
                }
            }
            None => {
                x.open("deviceChange").text("operation", "add");
                let kind = n.kind.clone().unwrap_or_else(|| "VirtualVmxnet3".into());
                nic_device(x, new_key(), &kind, &n.network, net, n, true, None);
                x.close("deviceChange");
                any = true;
            }
        }
    }
    Ok(any)
}

/// A `VirtualMachineConfigSpec` body for `ReconfigVM_Task` (None: nothing differs).
fn reconfig_spec(
    vm: &Vm,
    want: &Want,
    nets: &HashMap<String, MoRef>,
    datastore: Option<&(String, MoRef)>,
) -> Result<Option<String>, ModuleError> {
    let mut x = Xml::new();
    x.open("spec");
    let mut any = false;
    if let Some(g) = want.guest_id.as_ref().filter(|g| **g != vm.guest_id) {
        x.text("guestId", g);
        any = true;
    }
    if let Some(a) = want.annotation.as_ref().filter(|a| **a != vm.annotation) {
        x.text("annotation", a);
        any = true;
    }
    if let Some(n) = want.num_cpus.filter(|n| *n != vm.num_cpus) {
        x.val("numCPUs", n);
        any = true;
    }
    if let Some(n) = want.cores_per_socket.filter(|n| *n != vm.cores_per_socket) {
        x.val("numCoresPerSocket", n);
        any = true;
    }
    if let Some(n) = want.memory_mb.filter(|n| *n != vm.memory_mb) {
        x.val("memoryMB", n);
        any = true;
    }
    any |= device_changes(&mut x, Some(vm), want, nets, datastore)?;
    x.close("spec");
    Ok(any.then(|| x.into_string()))
}

/// What the task asks of the VM's power.
fn power_target(state: &str) -> Option<PowerAction> {
    match state {
        "poweredon" | "powered-on" => Some(PowerAction::On),
        "poweredoff" | "powered-off" => Some(PowerAction::Off),
        "restarted" => Some(PowerAction::Restart),
        "suspended" => Some(PowerAction::Suspend),
        "shutdownguest" => Some(PowerAction::ShutdownGuest),
        "rebootguest" => Some(PowerAction::RebootGuest),
        _ => None,
    }
}

struct Request {
    dc_name: String,
    name: Option<String>,
    uuid: Option<String>,
    use_instance_uuid: bool,
    name_match: String,
    state: String,
    want: Want,
    params: Params,
    /// The guest customization of a new VM, when the task asks for one.
    customize: Option<(Customization, Vec<NicIp>)>,
}

impl Request {
    fn selector(&self) -> VmSelector<'_> {
        VmSelector {
            name: self.name.as_deref(),
            uuid: self.uuid.as_deref(),
            moid: None,
            use_instance_uuid: self.use_instance_uuid,
            name_match: &self.name_match,
        }
    }
}

fn request(p: Params) -> Result<Request, ModuleError> {
    let nic_ips: Vec<NicIp> = p
        .networks
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, n)| {
            customize::nic_ip(
                i,
                n.ip.clone(),
                n.netmask.clone(),
                n.gateway.clone(),
                n.ip_type.clone(),
                n.domain.clone(),
                n.dns_servers.clone(),
            )
        })
        .collect::<Result<_, _>>()?;
    let customize = if p.customization.is_some() || nic_ips.iter().any(NicIp::given) {
        let c = p.customization.clone().unwrap_or_default();
        customize::check(&c)?;
        Some((c, nic_ips))
    } else {
        None
    };
    if p.name.is_none() && p.uuid.is_none() {
        return Err(ModuleError::Args("vmware_guest: give name or uuid".into()));
    }
    let hw = p.hardware.clone().unwrap_or_default();
    let want = Want {
        guest_id: p.guest_id.clone(),
        annotation: p.annotation.clone(),
        num_cpus: hw.num_cpus,
        cores_per_socket: hw.num_cpu_cores_per_socket,
        memory_mb: hw.memory_mb,
        disks: p
            .disk
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, d)| want_disk(i, d))
            .collect::<Result<_, _>>()?,
        nics: p
            .networks
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, n)| want_nic(i, n))
            .collect::<Result<_, _>>()?,
    };
    for (k, v) in [
        ("num_cpus", want.num_cpus),
        ("memory_mb", want.memory_mb),
        ("num_cpu_cores_per_socket", want.cores_per_socket),
    ] {
        if v.is_some_and(|v| v < 1) {
            return Err(ModuleError::Args(format!(
                "vmware_guest: hardware.{k} must be at least 1"
            )));
        }
    }
    Ok(Request {
        dc_name: p.datacenter.clone().unwrap_or_else(|| "ha-datacenter".into()),
        name: p.name.clone(),
        uuid: p.uuid.clone(),
        use_instance_uuid: p.use_instance_uuid.unwrap_or(false),
        name_match: p.name_match.clone().unwrap_or_else(|| "first".into()),
        state: p.state.clone().unwrap_or_else(|| "present".into()),
        want,
        params: p,
        customize,
    })
}

pub struct VmwareGuestModule;

/// What the query decided.
enum Planned {
    Create {
        template: Option<MoRef>,
        placement: Box<Placement>,
        nets: HashMap<String, MoRef>,
    },
    Update {
        vm: MoRef,
        nets: HashMap<String, MoRef>,
    },
    Remove {
        vm: MoRef,
        power_off: bool,
    },
}

struct GuestChange {
    ep: super::client::Endpoint,
    req: Request,
    planned: Planned,
    power: Option<PowerAction>,
}

#[async_trait]
impl Module for VmwareGuestModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let (ep, args) = conn::split(&DOC, args)?;
        let p: Params = parse_params(&DOC, args)?;
        let req = request(p)?;
        let ep2 = ep.clone();
        conn::with_session(&ep, move |s| Box::pin(async move { plan(s, ep2, req).await })).await
    }
}

async fn plan(s: &mut Session, ep: super::client::Endpoint, req: Request) -> Result<Plan, ModuleError> {
    let dc = inventory::datacenter(s, &req.dc_name).await.map_err(failed)?;
    let vm = inventory::find_vm(s, &dc, &req.selector()).await.map_err(failed)?;
    let label = req.name.clone().or_else(|| req.uuid.clone()).unwrap_or_default();
    if req.state == "absent" {
        let Some(vm) = vm else {
            return Ok(Plan::Done(
                ModuleOutcome::ok()
                    .with("instance", json!({}))
                    .with("changes", json!([])),
            ));
        };
        let on = vm.power == "poweredOn";
        if on && !req.params.force.unwrap_or(false) {
            return Err(ModuleError::Failed(format!(
                "vmware_guest: `{}` is powered on: set force: true to power it off and remove it",
                vm.name
            )));
        }
        let out = ModuleOutcome::ok()
            .with("instance", inventory::facts(&vm))
            .with("changes", json!(["state"]))
            .with_diff(Diff {
                before_header: label.clone(),
                after_header: label,
                before: "state: present\n".into(),
                after: "state: absent\n".into(),
            });
        let planned = Planned::Remove {
            vm: vm.moref.clone(),
            power_off: on,
        };
        return Ok(Plan::change(
            out,
            GuestChange {
                ep,
                req,
                planned,
                power: None,
            },
        ));
    }
    let power = power_target(&req.state);
    match vm {
        None => {
            if req.name.is_none() {
                return Err(ModuleError::Failed(format!(
                    "vmware_guest: no VM has uuid `{label}`, and a new VM needs a name"
                )));
            }
            let template = match &req.params.template {
                Some(t) => {
                    let sel = VmSelector {
                        name: Some(t),
                        uuid: None,
                        moid: None,
                        use_instance_uuid: false,
                        name_match: "first",
                    };
                    let tv = inventory::find_vm(s, &dc, &sel).await.map_err(failed)?.ok_or_else(|| {
                        ModuleError::Failed(format!(
                            "vmware_guest: template `{t}` not found in datacenter `{}`",
                            dc.name
                        ))
                    })?;
                    Some(tv.moref)
                }
                None => {
                    if req.want.guest_id.is_none() {
                        return Err(ModuleError::Failed(
                            "vmware_guest: guest_id is required to create a VM from scratch (or give template)".into(),
                        ));
                    }
                    None
                }
            };
            let placement = placement(s, &dc, &req.params, &req.want).await.map_err(failed)?;
            let nets = networks(s, &dc, &req.want).await.map_err(failed)?;
            let mut after = want_lines(&req.want, req.params.template.as_deref());
            if let Some((c, nics)) = &req.customize {
                after.extend(customize::diff_lines(c, nics, req.name.as_deref().unwrap_or_default()));
            }
            after.insert(0, ("state".into(), "present".into()));
            if let Some(pw) = power {
                after.push(("power_state".into(), pw.resulting_state().into()));
            }
            let out = ModuleOutcome::ok()
                .with("instance", json!({}))
                .with("changes", json!(["state"]))
                .with_diff(Diff {
                    before_header: label.clone(),
                    after_header: label,
                    before: "state: absent\n".into(),
                    after: lines(&after),
                });
            Ok(Plan::change(
                out,
                GuestChange {
                    ep,
                    req,
                    planned: Planned::Create {
                        template,
                        placement: Box::new(placement),
                        nets,
                    },
                    power,
                },
            ))
        }
        Some(vm) => {
            let mut fields = differences(&vm, &req.want)?;
            if vm.template && (!fields.is_empty() || power.is_some()) {
                return Err(ModuleError::Failed(format!(
                    "vmware_guest: `{}` is a template: it cannot be reconfigured or powered",
                    vm.name
                )));
            }
            let power = power.filter(|p| p.needed(&vm.power));
            if let Some(pw) = power {
                fields.push(Field {
                    key: "power_state".into(),
                    before: vm.power.clone(),
                    after: pw.resulting_state().into(),
                });
            }
            let mut out = ModuleOutcome::ok().with("instance", inventory::facts(&vm)).with(
                "changes",
                json!(fields.iter().map(|f| f.key.clone()).collect::<Vec<_>>()),
            );
            if req.customize.is_some() {
                out = out.with(
                    "warnings",
                    json!([format!(
                        "`{}` exists: guest customization (customization, networks[].ip) applies only when \
                         the task creates the VM, so it was not applied",
                        vm.name
                    )]),
                );
            }
            if fields.is_empty() {
                return Ok(Plan::Done(out));
            }
            let nets = networks(s, &dc, &req.want).await.map_err(failed)?;
            let before: Vec<(String, String)> = fields.iter().map(|f| (f.key.clone(), f.before.clone())).collect();
            let after: Vec<(String, String)> = fields.iter().map(|f| (f.key.clone(), f.after.clone())).collect();
            let out = out.with_diff(Diff {
                before_header: vm.name.clone(),
                after_header: vm.name.clone(),
                before: lines(&before),
                after: lines(&after),
            });
            Ok(Plan::change(
                out,
                GuestChange {
                    ep,
                    req,
                    planned: Planned::Update {
                        vm: vm.moref.clone(),
                        nets,
                    },
                    power,
                },
            ))
        }
    }
}

/// `CreateVM_Task`'s body for a VM from scratch.
fn create_body(req: &Request, pl: &Placement, nets: &HashMap<String, MoRef>) -> Result<String, ModuleError> {
    let w = &req.want;
    let mut x = Xml::new();
    x.open("config").text("name", req.name.as_deref().unwrap_or_default());
    x.text("guestId", w.guest_id.as_deref().unwrap_or("otherGuest64"));
    if let Some(a) = &w.annotation {
        x.text("annotation", a);
    }
    let ds = pl.datastore.as_ref().map(|(n, _)| format!("[{n}]")).unwrap_or_default();
    x.open("files").text("vmPathName", &ds).close("files");
    x.val("numCPUs", w.num_cpus.unwrap_or(1));
    if let Some(c) = w.cores_per_socket {
        x.val("numCoresPerSocket", c);
    }
    x.val("memoryMB", w.memory_mb.unwrap_or(512));
    device_changes(&mut x, None, w, nets, pl.datastore.as_ref())?;
    x.close("config");
    x.moref("pool", &pl.pool);
    if let Some(h) = &pl.host {
        x.moref("host", h);
    }
    Ok(x.into_string())
}

fn clone_body(req: &Request, pl: &Placement) -> String {
    let mut x = Xml::new();
    x.moref("folder", &pl.folder)
        .text("name", req.name.as_deref().unwrap_or_default());
    x.open("spec").open("location");
    if let Some((_, ds)) = &pl.datastore {
        x.moref("datastore", ds);
    }
    x.moref("pool", &pl.pool);
    if let Some(h) = &pl.host {
        x.moref("host", h);
    }
    x.close("location")
        .val("template", false)
        .val("powerOn", false)
        .close("spec");
    x.into_string()
}

#[async_trait]
impl Change for GuestChange {
    async fn apply(
        self: Box<Self>,
        _ctx: &ModuleCtx<'_>,
        planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let GuestChange {
            ep,
            req,
            planned: what,
            power,
        } = *self;
        conn::with_session(&ep, move |s| {
            Box::pin(async move {
                let vm = match what {
                    Planned::Remove { vm, power_off } => {
                        if power_off {
                            power::act(s, &vm, PowerAction::Off).await.map_err(failed)?;
                        }
                        s.run_task("Destroy_Task", &vm, "", "removing the VM")
                            .await
                            .map_err(failed)?;
                        return Ok(planned.with("instance", json!({})));
                    }
                    Planned::Create {
                        template,
                        placement,
                        nets,
                    } => {
                        let result = match &template {
                            Some(t) => s
                                .run_task("CloneVM_Task", t, &clone_body(&req, &placement), "cloning the template")
                                .await
                                .map_err(failed)?,
                            None => s
                                .run_task(
                                    "CreateVM_Task",
                                    &placement.folder,
                                    &create_body(&req, &placement, &nets)?,
                                    "creating the VM",
                                )
                                .await
                                .map_err(failed)?,
                        };
                        let vm = result.and_then(|r| r.as_moref()).ok_or_else(|| {
                            ModuleError::Failed("vmware_guest: the creation task returned no VM".into())
                        })?;
                        if template.is_some() {
                            reconfigure(s, &vm, &req.want, &nets, placement.datastore.as_ref()).await?;
                        }
                        if let Some((c, nics)) = &req.customize {
                            // Still powered off: the guest applies it at its first boot.
                            let now = inventory::read_vm(s, &vm).await.map_err(failed)?;
                            let spec = customize::spec_body(c, nics, now.nics.len(), &now.name);
                            s.run_task("CustomizeVM_Task", &vm, &spec, "customizing the guest")
                                .await
                                .map_err(failed)?;
                        }
                        vm
                    }
                    Planned::Update { vm, nets } => {
                        reconfigure(s, &vm, &req.want, &nets, None).await?;
                        vm
                    }
                };
                if let Some(pw) = power {
                    let cur = inventory::read_vm(s, &vm).await.map_err(failed)?;
                    if pw.needed(&cur.power) {
                        power::act(s, &vm, pw).await.map_err(failed)?;
                    }
                }
                let now = inventory::read_vm(s, &vm).await.map_err(failed)?;
                Ok(planned.with("instance", inventory::facts(&now)))
            })
        })
        .await
    }
}

async fn reconfigure(
    s: &mut Session,
    vm: &MoRef,
    want: &Want,
    nets: &HashMap<String, MoRef>,
    datastore: Option<&(String, MoRef)>,
) -> Result<(), ModuleError> {
    let cur = inventory::read_vm(s, vm).await.map_err(failed)?;
    if let Some(spec) = reconfig_spec(&cur, want, nets, datastore)? {
        s.run_task("ReconfigVM_Task", vm, &spec, "reconfiguring the VM")
            .await
            .map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size_text_kb("10gb"), Some(10 * 1024 * 1024));
        assert_eq!(size_text_kb("512 MB"), Some(512 * 1024));
        assert_eq!(size_text_kb("3"), Some(3 * 1024 * 1024));
        assert_eq!(size_text_kb("1xb"), None);
    }
}
