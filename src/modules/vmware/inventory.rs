//! The vSphere inventory as the modules see it: datacenters, folders,
//! placement (resource pool, host, datastore), networks, and virtual
//! machines read into a typed [`Vm`] (with the `instance` facts Ansible's
//! modules return).

use serde_json::{json, Map, Value};

use super::client::{Props, Session, VmwareError};
use super::soap::{MoRef, Node};

/// A datacenter and its top folders.
#[derive(Debug, Clone)]
pub struct Datacenter {
    pub name: String,
    pub moref: MoRef,
    pub vm_folder: MoRef,
    pub host_folder: MoRef,
    pub datastore_folder: MoRef,
    pub network_folder: MoRef,
}

fn prop_ref(p: &Props, name: &str) -> Option<MoRef> {
    p.get(name).and_then(Node::as_moref)
}

/// The datacenter named `name`; an unknown name lists the known ones.
pub async fn datacenter(s: &mut Session, name: &str) -> Result<Datacenter, VmwareError> {
    let root = s.content.root_folder.clone();
    let all = s
        .list(
            &root,
            "Datacenter",
            &["name", "vmFolder", "hostFolder", "datastoreFolder", "networkFolder"],
        )
        .await?;
    let mut names = Vec::new();
    for (moref, p) in all {
        let n = p.get("name").map(|n| n.text.clone()).unwrap_or_default();
        if n == name {
            let folder = |k: &str| {
                prop_ref(&p, k).ok_or_else(|| VmwareError::Protocol(format!("datacenter `{name}` has no {k}")))
            };
            return Ok(Datacenter {
                name: n.clone(),
                moref,
                vm_folder: folder("vmFolder")?,
                host_folder: folder("hostFolder")?,
                datastore_folder: folder("datastoreFolder")?,
                network_folder: folder("networkFolder")?,
            });
        }
        names.push(n);
    }
    names.sort();
    Err(VmwareError::NotFound(format!(
        "datacenter `{name}` not found on {} (datacenters there: {})",
        s.server(),
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )))
}

/// The one object of `kind` named `name` under `container`, said as `what`.
pub async fn one(s: &mut Session, container: &MoRef, kind: &str, name: &str, what: &str) -> Result<MoRef, VmwareError> {
    let mut found = s.find(container, kind, name).await?;
    match found.len() {
        0 => Err(VmwareError::NotFound(format!("{what} `{name}` not found"))),
        1 => Ok(found.remove(0)),
        n => Err(VmwareError::NotFound(format!(
            "{n} objects are named {what} `{name}`: the name is ambiguous"
        ))),
    }
}

/// The VM folder at `path` (`/DC0/vm/a/b`, `vm/a/b` or `a/b`, from the
/// datacenter's VM folder); None or `/` is the VM folder itself.
pub async fn vm_folder(s: &mut Session, dc: &Datacenter, path: Option<&str>) -> Result<MoRef, VmwareError> {
    let Some(path) = path else {
        return Ok(dc.vm_folder.clone());
    };
    let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.first() == Some(&dc.name.as_str()) {
        parts.remove(0);
    }
    if parts.first() == Some(&"vm") {
        parts.remove(0);
    }
    let mut cur = dc.vm_folder.clone();
    for part in parts {
        let p = s.props(&cur, &["childEntity"]).await?;
        let kids: Vec<MoRef> = p
            .get("childEntity")
            .map(|n| n.children.iter().filter_map(Node::as_moref).collect())
            .unwrap_or_default();
        let mut next = None;
        for k in kids.into_iter().filter(|k| k.kind == "Folder") {
            let n = s.props(&k, &["name"]).await?;
            if n.get("name").is_some_and(|n| n.text == part) {
                next = Some(k);
                break;
            }
        }
        cur = next.ok_or_else(|| VmwareError::NotFound(format!("folder `{path}` not found (no `{part}`)")))?;
    }
    Ok(cur)
}

/// One virtual disk.
#[derive(Debug, Clone, PartialEq)]
pub struct Disk {
    pub key: i64,
    pub controller_key: i64,
    pub unit: i64,
    pub capacity_kb: i64,
    pub file: String,
    pub label: String,
    pub thin: Option<bool>,
    pub eagerly_scrub: Option<bool>,
    pub disk_mode: String,
}

impl Disk {
    /// The provisioning type of the disk as `type` names it (kept when the
    /// disk is edited: a backing sent without it would reset it).
    pub fn kind(&self) -> Option<&'static str> {
        match (self.thin, self.eagerly_scrub) {
            (Some(true), _) => Some("thin"),
            (_, Some(true)) => Some("eagerzeroedthick"),
            (Some(false), _) => Some("thick"),
            _ => None,
        }
    }
}

/// One network adapter.
#[derive(Debug, Clone, PartialEq)]
pub struct Nic {
    pub key: i64,
    /// The adapter's type as vSphere names it (`VirtualVmxnet3`).
    pub kind: String,
    /// The network's name (standard port groups) or the port group key.
    pub network: String,
    pub mac: String,
    /// `generated`, `assigned` or `manual`.
    pub address_type: String,
    pub label: String,
    pub start_connected: bool,
    pub connected: bool,
}

/// One device controller (SCSI, IDE, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    pub key: i64,
    pub kind: String,
    pub bus: i64,
}

/// A snapshot of a VM, from its snapshot tree (depth-first).
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub moref: MoRef,
    pub name: String,
    pub description: String,
    pub id: i64,
    pub create_time: String,
    pub state: String,
}

/// A virtual machine as read from the property collector.
#[derive(Debug, Clone)]
pub struct Vm {
    pub moref: MoRef,
    pub name: String,
    pub template: bool,
    pub guest_id: String,
    pub num_cpus: i64,
    pub cores_per_socket: i64,
    pub memory_mb: i64,
    pub power: String,
    pub uuid: String,
    pub instance_uuid: String,
    pub annotation: String,
    pub vm_path: String,
    pub disks: Vec<Disk>,
    pub nics: Vec<Nic>,
    pub controllers: Vec<Controller>,
    pub snapshots: Vec<Snapshot>,
    pub current_snapshot: Option<MoRef>,
}

const VM_PATHS: &[&str] = &["name", "config", "runtime.powerState", "snapshot"];

/// SCSI controller types (the ones a new disk may go on).
pub const SCSI_CONTROLLERS: &[&str] = &[
    "ParaVirtualSCSIController",
    "VirtualLsiLogicController",
    "VirtualLsiLogicSASController",
    "VirtualBusLogicController",
];

/// SCSI controller types by community.vmware's `controller_type` names.
pub const SCSI_TYPES: &[(&str, &str)] = &[
    ("paravirtual", "ParaVirtualSCSIController"),
    ("lsilogic", "VirtualLsiLogicController"),
    ("lsilogicsas", "VirtualLsiLogicSASController"),
    ("buslogic", "VirtualBusLogicController"),
];

/// `ParaVirtualSCSIController` -> `paravirtual` (unknown types as vSphere names them).
pub fn scsi_type_name(kind: &str) -> String {
    SCSI_TYPES
        .iter()
        .find(|(_, k)| *k == kind)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| kind.to_string())
}

/// The datastore name of a file path (`[LocalDS_0] web1/web1.vmdk` -> `LocalDS_0`).
pub fn datastore_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('[')?;
    rest.find(']').map(|end| &rest[..end])
}

/// Network adapter types and the `device_type` names community.vmware uses.
pub const NIC_TYPES: &[(&str, &str)] = &[
    ("vmxnet3", "VirtualVmxnet3"),
    ("vmxnet2", "VirtualVmxnet2"),
    ("e1000", "VirtualE1000"),
    ("e1000e", "VirtualE1000e"),
    ("pcnet32", "VirtualPCNet32"),
    ("sriov", "VirtualSriovEthernetCard"),
];

/// `VirtualVmxnet3` -> `vmxnet3` (unknown types as vSphere names them).
pub fn nic_type_name(kind: &str) -> String {
    NIC_TYPES
        .iter()
        .find(|(_, k)| *k == kind)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| kind.to_string())
}

fn parse_vm(moref: MoRef, p: &Props) -> Option<Vm> {
    let config = p.get("config")?;
    let mut vm = Vm {
        moref,
        name: p.get("name").map(|n| n.text.clone()).unwrap_or_default(),
        template: config.bool("template").unwrap_or(false),
        guest_id: config.get("guestId").unwrap_or("").to_string(),
        num_cpus: config.int("hardware/numCPU").unwrap_or(0),
        cores_per_socket: config.int("hardware/numCoresPerSocket").unwrap_or(1),
        memory_mb: config.int("hardware/memoryMB").unwrap_or(0),
        power: p.get("runtime.powerState").map(|n| n.text.clone()).unwrap_or_default(),
        uuid: config.get("uuid").unwrap_or("").to_string(),
        instance_uuid: config.get("instanceUuid").unwrap_or("").to_string(),
        annotation: config.get("annotation").unwrap_or("").to_string(),
        vm_path: config.get("files/vmPathName").unwrap_or("").to_string(),
        disks: Vec::new(),
        nics: Vec::new(),
        controllers: Vec::new(),
        snapshots: Vec::new(),
        current_snapshot: None,
    };
    if let Some(hw) = config.child("hardware") {
        for d in hw.children_named("device") {
            let kind = d.xsi_type.clone().unwrap_or_default();
            let key = d.int("key").unwrap_or(0);
            if kind == "VirtualDisk" {
                let kb = d
                    .int("capacityInKB")
                    .or_else(|| d.int("capacityInBytes").map(|b| b / 1024))
                    .unwrap_or(0);
                vm.disks.push(Disk {
                    key,
                    controller_key: d.int("controllerKey").unwrap_or(0),
                    unit: d.int("unitNumber").unwrap_or(0),
                    capacity_kb: kb,
                    file: d.get("backing/fileName").unwrap_or("").to_string(),
                    label: d.get("deviceInfo/label").unwrap_or("").to_string(),
                    thin: d.bool("backing/thinProvisioned"),
                    eagerly_scrub: d.bool("backing/eagerlyScrub"),
                    disk_mode: d.get("backing/diskMode").unwrap_or("persistent").to_string(),
                });
            } else if d.child("macAddress").is_some() || NIC_TYPES.iter().any(|(_, k)| *k == kind) {
                let network = d
                    .get("backing/deviceName")
                    .or_else(|| d.get("backing/port/portgroupKey"))
                    .or_else(|| d.get("deviceInfo/summary"))
                    .unwrap_or("")
                    .to_string();
                vm.nics.push(Nic {
                    key,
                    kind,
                    network,
                    mac: d.get("macAddress").unwrap_or("").to_string(),
                    address_type: d.get("addressType").unwrap_or("generated").to_string(),
                    label: d.get("deviceInfo/label").unwrap_or("").to_string(),
                    start_connected: d.bool("connectable/startConnected").unwrap_or(true),
                    connected: d.bool("connectable/connected").unwrap_or(false),
                });
            } else if SCSI_CONTROLLERS.contains(&kind.as_str()) {
                vm.controllers.push(Controller {
                    key,
                    kind,
                    bus: d.int("busNumber").unwrap_or(0),
                });
            }
        }
    }
    // Disks in the order of their controller's bus, then unit.
    let bus_of = |ck: i64| {
        vm.controllers
            .iter()
            .find(|c| c.key == ck)
            .map(|c| c.bus)
            .unwrap_or(i64::MAX)
    };
    let mut disks = std::mem::take(&mut vm.disks);
    disks.sort_by_key(|d| (bus_of(d.controller_key), d.controller_key, d.unit));
    vm.disks = disks;
    vm.nics.sort_by_key(|n| n.key);
    if let Some(snap) = p.get("snapshot") {
        vm.current_snapshot = snap.child("currentSnapshot").and_then(Node::as_moref);
        fn walk(n: &Node, out: &mut Vec<Snapshot>) {
            for t in n
                .children
                .iter()
                .filter(|c| c.name == "rootSnapshotList" || c.name == "childSnapshotList")
            {
                if let Some(moref) = t.child("snapshot").and_then(Node::as_moref) {
                    out.push(Snapshot {
                        moref,
                        name: t.get("name").unwrap_or("").to_string(),
                        description: t.get("description").unwrap_or("").to_string(),
                        id: t.int("id").unwrap_or(0),
                        create_time: t.get("createTime").unwrap_or("").to_string(),
                        state: t.get("state").unwrap_or("").to_string(),
                    });
                }
                walk(t, out);
            }
        }
        walk(snap, &mut vm.snapshots);
    }
    Some(vm)
}

/// Read one VM.
pub async fn read_vm(s: &mut Session, moref: &MoRef) -> Result<Vm, VmwareError> {
    let p = s.props(moref, VM_PATHS).await?;
    parse_vm(moref.clone(), &p).ok_or_else(|| {
        VmwareError::Protocol(format!(
            "virtual machine {} has no configuration (inaccessible?)",
            moref.value
        ))
    })
}

/// How a VM is named in a task.
pub struct VmSelector<'a> {
    pub name: Option<&'a str>,
    pub uuid: Option<&'a str>,
    /// The managed object id (`vm-42`): the VM itself, wherever it is.
    pub moid: Option<&'a str>,
    pub use_instance_uuid: bool,
    /// `first` or `last` when several VMs have the name.
    pub name_match: &'a str,
}

/// The VM (or template) the selector names in the datacenter, if any.
pub async fn find_vm(s: &mut Session, dc: &Datacenter, sel: &VmSelector<'_>) -> Result<Option<Vm>, VmwareError> {
    if let Some(id) = sel.moid {
        let r = MoRef::new("VirtualMachine", id);
        let p = match s.props(&r, VM_PATHS).await {
            Ok(p) => p,
            Err(VmwareError::Soap(super::soap::SoapError::Fault { fault, .. })) if fault == "ManagedObjectNotFound" => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        return Ok(parse_vm(r, &p));
    }
    let all = s
        .list(
            &dc.vm_folder,
            "VirtualMachine",
            &["name", "config.uuid", "config.instanceUuid"],
        )
        .await?;
    let matches: Vec<&MoRef> = all
        .iter()
        .filter(|(_, p)| match (sel.uuid, sel.name) {
            (Some(u), _) => {
                let key = if sel.use_instance_uuid {
                    "config.instanceUuid"
                } else {
                    "config.uuid"
                };
                p.get(key).is_some_and(|n| n.text.eq_ignore_ascii_case(u))
            }
            (None, Some(name)) => p.get("name").is_some_and(|n| n.text == name),
            (None, None) => false,
        })
        .map(|(r, _)| r)
        .collect();
    let chosen = if sel.name_match == "last" {
        matches.last()
    } else {
        matches.first()
    };
    match chosen {
        Some(r) => Ok(Some(read_vm(s, r).await?)),
        None => Ok(None),
    }
}

/// Ansible's `instance` facts of a VM (community.vmware's gather_vm_facts
/// names), with rigger's `disks`, `snapshots` and `moid`.
pub fn facts(vm: &Vm) -> Value {
    let mut f = Map::new();
    f.insert("hw_name".into(), json!(vm.name));
    f.insert("hw_power_status".into(), json!(vm.power));
    f.insert("hw_guest_id".into(), json!(vm.guest_id));
    f.insert("hw_product_uuid".into(), json!(vm.uuid));
    f.insert("instance_uuid".into(), json!(vm.instance_uuid));
    f.insert("hw_processor_count".into(), json!(vm.num_cpus));
    f.insert("hw_cores_per_socket".into(), json!(vm.cores_per_socket));
    f.insert("hw_memtotal_mb".into(), json!(vm.memory_mb));
    f.insert("hw_is_template".into(), json!(vm.template));
    f.insert("annotation".into(), json!(vm.annotation));
    f.insert("moid".into(), json!(vm.moref.value));
    f.insert("vm_path".into(), json!(vm.vm_path));
    let mut ifaces = Vec::new();
    for (i, n) in vm.nics.iter().enumerate() {
        let key = format!("eth{i}");
        f.insert(
            format!("hw_{key}"),
            json!({
                "label": n.label,
                "macaddress": n.mac,
                "summary": n.network,
                "device_type": nic_type_name(&n.kind),
                "start_connected": n.start_connected,
            }),
        );
        ifaces.push(key);
    }
    f.insert("hw_interfaces".into(), json!(ifaces));
    f.insert(
        "disks".into(),
        Value::Array(
            vm.disks
                .iter()
                .map(|d| json!({"capacity_in_kb": d.capacity_kb, "filename": d.file, "unit_number": d.unit, "thin_provisioned": d.thin}))
                .collect(),
        ),
    );
    f.insert(
        "snapshots".into(),
        Value::Array(
            vm.snapshots
                .iter()
                .map(|s| json!({"name": s.name, "description": s.description, "id": s.id, "creation_time": s.create_time, "state": s.state}))
                .collect(),
        ),
    );
    f.insert(
        "current_snapshot".into(),
        match vm
            .current_snapshot
            .as_ref()
            .and_then(|c| vm.snapshots.iter().find(|s| &s.moref == c))
        {
            Some(s) => json!({"name": s.name, "description": s.description, "id": s.id}),
            None => Value::Null,
        },
    );
    Value::Object(f)
}
