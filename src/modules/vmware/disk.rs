//! `vmware_guest_disk` (alias `community.vmware.vmware_guest_disk`): the
//! disks of an existing VM, each named by its SCSI controller and unit
//! number: added, grown, their mode changed, or removed.
//!
//! The query reads the VM and works out, disk by disk, what differs; the
//! change re-reads the VM, works it out again and sends one
//! `ReconfigVM_Task` with every device change.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::client::{Endpoint, Session};
use super::conn::{self, failed, vmware_options};
use super::guest::{device_info, disk_backing, requested_size_kb};
use super::inventory::{self, scsi_type_name, Vm, SCSI_TYPES};
use super::soap::{MoRef, Xml};
use super::target::{self, Target};
use crate::modules::args::{de_opt_bool, de_opt_int, de_opt_string};
use crate::modules::{
    Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OWN_OPTIONS: &[OptionDoc] = &[OptionDoc::new(
    "disk",
    OptKind::List,
    "The disks, each named by `controller_number` (the SCSI bus, 0-3, default 0; `scsi_controller` is the \
old name) and `unit_number` (0-15 but 7, required). `state`: `present` (default) or `absent`. A present disk \
takes a size (`size_gb`, `size_mb`, `size_kb`, `size_tb` or `size: 10gb`): a missing disk is created with it, \
a smaller one is grown, a larger one is an error (vSphere cannot shrink a disk). New disks take `type` (thin, \
thick (default), eagerzeroedthick), `datastore` (default: the VM's; `autoselect_datastore: true` picks the \
datastore of the datacenter with the most free space) and `disk_mode` (persistent (default), \
independent_persistent, independent_nonpersistent; an existing disk's mode is changed to it). \
`controller_type` (paravirtual, lsilogic, lsilogicsas, buslogic; `scsi_type` is the old name) is the type \
of a controller to add when the VM has none on that bus, and is checked against an existing one. An absent \
disk is detached and its file deleted unless `destroy: false`.",
)
.required()];

const OPTIONS: &[OptionDoc] = vmware_options!(conn::CONNECTION, target::TARGET, OWN_OPTIONS);

static DOC: ModuleDoc = ModuleDoc {
    name: "vmware_guest_disk",
    aliases: &["community.vmware.vmware_guest_disk"],
    short: "Add, grow and remove the disks of a VMware vSphere virtual machine",
    description: "Manages the disks of an existing VM by SCSI controller and unit number, through the vSphere \
API from the controller: adds missing disks (and the SCSI controller they need), grows smaller ones, changes \
their mode, removes disks with `state: absent`. Disks the list does not name are left alone. A shrink request \
fails the task. See docs/vmware.md.",
    free_form: false,
    options: OPTIONS,
    examples: "- name: A second and a third disk\n  community.vmware.vmware_guest_disk:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n    datacenter: DC0\n    name: web1\n    disk:\n      - size_gb: 10\n        type: thin\n        datastore: LocalDS_0\n        controller_type: paravirtual\n        controller_number: 1\n        unit_number: 0\n      - size_mb: 512\n        controller_number: 1\n        unit_number: 1\n        disk_mode: independent_persistent\n  delegate_to: localhost\n- name: Remove a disk and its file\n  community.vmware.vmware_guest_disk:\n    hostname: \"{{ vcenter }}\"\n    username: \"{{ vcenter_user }}\"\n    password: \"{{ vcenter_password }}\"\n    datacenter: DC0\n    name: web1\n    disk:\n      - controller_number: 1\n        unit_number: 1\n        state: absent\n  delegate_to: localhost\n",
    returns: &[
        ReturnDoc {
            name: "disk_data",
            description: "the VM's disks after the task, by index (`\"0\"`, `\"1\"`, ...): backing_datastore, backing_disk_mode, backing_eagerlyscrub, backing_filename, backing_thinprovisioned, capacity_in_bytes, capacity_in_kb, controller_bus_number, controller_key, controller_type, key, label, unit_number; in check mode the disks as they are",
        },
        ReturnDoc {
            name: "changes",
            description: "the fields that differ (or would): `scsi1:0.size_kb`, `scsi0:1.disk_mode`, ...",
        },
    ],
    controller_only: true,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    disk: Vec<DiskItem>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct DiskItem {
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
    #[serde(default, deserialize_with = "de_opt_string")]
    datastore: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    autoselect_datastore: Option<bool>,
    #[serde(default)]
    disk_mode: Option<String>,
    #[serde(default)]
    controller_type: Option<String>,
    #[serde(default)]
    scsi_type: Option<String>,
    #[serde(default, deserialize_with = "de_opt_int")]
    controller_number: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_int")]
    scsi_controller: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_int")]
    unit_number: Option<i64>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    destroy: Option<bool>,
}

const DISK_MODES: &[&str] = &["persistent", "independent_persistent", "independent_nonpersistent"];

/// One disk as the task asks for it.
#[derive(Debug, Clone)]
struct WantDisk {
    bus: i64,
    unit: i64,
    /// vSphere's controller type (`ParaVirtualSCSIController`), when given.
    controller: Option<&'static str>,
    present: bool,
    size_kb: Option<i64>,
    kind: String,
    datastore: Option<String>,
    autoselect: bool,
    disk_mode: Option<String>,
    destroy: bool,
}

fn want(items: &[DiskItem]) -> Result<Vec<WantDisk>, ModuleError> {
    let m = DOC.name;
    let arg = |msg: String| ModuleError::Args(format!("{m}: {msg}"));
    let mut out: Vec<WantDisk> = Vec::new();
    for (i, d) in items.iter().enumerate() {
        let bus = match (d.controller_number, d.scsi_controller) {
            (Some(a), Some(b)) if a != b => {
                return Err(arg(format!(
                    "disk[{i}]: controller_number {a} and scsi_controller {b} disagree"
                )))
            }
            (a, b) => a.or(b).unwrap_or(0),
        };
        if !(0..=3).contains(&bus) {
            return Err(arg(format!(
                "disk[{i}].controller_number must be 0-3 (a VM has at most 4 SCSI controllers); got {bus}"
            )));
        }
        let unit = d
            .unit_number
            .ok_or_else(|| arg(format!("disk[{i}] needs a unit_number")))?;
        if !(0..=15).contains(&unit) || unit == 7 {
            return Err(arg(format!(
                "disk[{i}].unit_number must be 0-15 but not 7 (the SCSI controller's own); got {unit}"
            )));
        }
        let controller = match (&d.controller_type, &d.scsi_type) {
            (Some(a), Some(b)) if a != b => {
                return Err(arg(format!(
                    "disk[{i}]: controller_type {a} and scsi_type {b} disagree"
                )))
            }
            (Some(t), _) | (None, Some(t)) => Some(
                SCSI_TYPES
                    .iter()
                    .find(|(n, _)| n == t)
                    .map(|(_, k)| *k)
                    .ok_or_else(|| {
                        arg(format!(
                            "disk[{i}].controller_type must be one of: {}; got {t} (SATA, NVMe and IDE controllers \
                             are not supported yet)",
                            SCSI_TYPES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                        ))
                    })?,
            ),
            (None, None) => None,
        };
        let present = match d.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            s => return Err(arg(format!("disk[{i}].state must be present or absent; got {s}"))),
        };
        let size_kb = requested_size_kb(m, i, d.size.as_deref(), [d.size_kb, d.size_mb, d.size_gb, d.size_tb])?;
        let kind = d.kind.clone().unwrap_or_else(|| "thick".into());
        if !["thin", "thick", "eagerzeroedthick"].contains(&kind.as_str()) {
            return Err(arg(format!(
                "disk[{i}].type must be one of: thin, thick, eagerzeroedthick; got {kind} (rdm and vpmemdisk \
                 are not supported yet)"
            )));
        }
        if let Some(mode) = &d.disk_mode {
            if !DISK_MODES.contains(&mode.as_str()) {
                return Err(arg(format!(
                    "disk[{i}].disk_mode must be one of: {}; got {mode}",
                    DISK_MODES.join(", ")
                )));
            }
        }
        if d.autoselect_datastore.unwrap_or(false) && d.datastore.is_some() {
            return Err(arg(format!(
                "disk[{i}]: give datastore or autoselect_datastore, not both"
            )));
        }
        if out.iter().any(|w| w.bus == bus && w.unit == unit) {
            return Err(arg(format!("disk[{i}]: SCSI {bus}:{unit} is named twice in the list")));
        }
        out.push(WantDisk {
            bus,
            unit,
            controller,
            present,
            size_kb,
            kind,
            datastore: d.datastore.clone(),
            autoselect: d.autoselect_datastore.unwrap_or(false),
            disk_mode: d.disk_mode.clone(),
            destroy: d.destroy.unwrap_or(true),
        });
    }
    Ok(out)
}

/// One differing field, `scsi1:0.size_kb: absent` -> `1048576`.
struct Field {
    key: String,
    before: String,
    after: String,
}

/// What the VM needs: the differing fields and the `ReconfigVM_Task` spec
/// (None when nothing differs). `datastores` are the datastore names to
/// create new disks on, by index into `want` (resolved by the caller).
fn work_out(
    vm: &Vm,
    want: &[WantDisk],
    datastores: &[Option<String>],
) -> Result<(Vec<Field>, Option<String>), ModuleError> {
    let m = DOC.name;
    let mut fields = Vec::new();
    let mut x = Xml::new();
    x.open("spec");
    let mut any = false;
    // Controllers added by this spec, by bus: (key, type).
    let mut added: Vec<(i64, i64, &str)> = Vec::new();
    let mut next_key = -100;
    for (i, w) in want.iter().enumerate() {
        let id = format!("scsi{}:{}", w.bus, w.unit);
        let existing = vm.controllers.iter().find(|c| c.bus == w.bus);
        if let (Some(c), Some(t)) = (existing, w.controller) {
            if c.kind != t {
                return Err(ModuleError::Failed(format!(
                    "{m}: disk[{i}]: SCSI controller {} of `{}` is {}, not {}",
                    w.bus,
                    vm.name,
                    scsi_type_name(&c.kind),
                    scsi_type_name(t)
                )));
            }
        }
        let disk = existing.and_then(|c| vm.disks.iter().find(|d| d.controller_key == c.key && d.unit == w.unit));
        match (disk, w.present) {
            (None, false) => {}
            (Some(d), false) => {
                fields.push(Field {
                    key: format!("{id}.state"),
                    before: "present".into(),
                    after: "absent".into(),
                });
                x.open("deviceChange").text("operation", "remove");
                if w.destroy {
                    x.text("fileOperation", "destroy");
                }
                x.open_typed("device", "VirtualDisk").val("key", d.key);
                device_info(&mut x, &d.label);
                disk_backing(&mut x, &d.file, None, d.kind(), &d.disk_mode);
                x.val("controllerKey", d.controller_key)
                    .val("unitNumber", d.unit)
                    .val("capacityInKB", d.capacity_kb)
                    .close("device")
                    .close("deviceChange");
                any = true;
            }
            (Some(d), true) => {
                let size = w.size_kb.unwrap_or(d.capacity_kb);
                if size < d.capacity_kb {
                    return Err(ModuleError::Failed(format!(
                        "{m}: disk[{i}] ({id}) of `{}` has {} KiB; shrinking it to {size} KiB is not supported \
                         (vSphere cannot reduce a disk)",
                        vm.name, d.capacity_kb
                    )));
                }
                let mode = w.disk_mode.clone().unwrap_or_else(|| d.disk_mode.clone());
                if size == d.capacity_kb && mode == d.disk_mode {
                    continue;
                }
                if size != d.capacity_kb {
                    fields.push(Field {
                        key: format!("{id}.size_kb"),
                        before: d.capacity_kb.to_string(),
                        after: size.to_string(),
                    });
                }
                if mode != d.disk_mode {
                    fields.push(Field {
                        key: format!("{id}.disk_mode"),
                        before: d.disk_mode.clone(),
                        after: mode.clone(),
                    });
                }
                x.open("deviceChange").text("operation", "edit");
                x.open_typed("device", "VirtualDisk").val("key", d.key);
                device_info(&mut x, &d.label);
                disk_backing(&mut x, &d.file, None, d.kind(), &mode);
                x.val("controllerKey", d.controller_key)
                    .val("unitNumber", d.unit)
                    .val("capacityInKB", size)
                    .val("capacityInBytes", size * 1024)
                    .close("device")
                    .close("deviceChange");
                any = true;
            }
            (None, true) => {
                let size = w.size_kb.ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "{m}: disk[{i}] ({id}) does not exist on `{}`: give a size to create it",
                        vm.name
                    ))
                })?;
                let controller_key = match (existing, added.iter().find(|(bus, _, _)| *bus == w.bus)) {
                    (Some(c), _) => c.key,
                    (None, Some((_, key, _))) => *key,
                    (None, None) => {
                        next_key -= 1;
                        let kind = w.controller.unwrap_or(SCSI_TYPES[0].1);
                        x.open("deviceChange").text("operation", "add");
                        x.open_typed("device", kind)
                            .val("key", next_key)
                            .val("busNumber", w.bus)
                            .text("sharedBus", "noSharing")
                            .close("device")
                            .close("deviceChange");
                        fields.push(Field {
                            key: format!("scsi{}.controller", w.bus),
                            before: "absent".into(),
                            after: scsi_type_name(kind),
                        });
                        added.push((w.bus, next_key, kind));
                        next_key
                    }
                };
                let ds = datastores.get(i).cloned().flatten().ok_or_else(|| {
                    ModuleError::Failed(format!(
                        "{m}: disk[{i}] ({id}): no datastore for the new disk (give datastore)"
                    ))
                })?;
                let mode = w.disk_mode.clone().unwrap_or_else(|| "persistent".into());
                fields.push(Field {
                    key: format!("{id}.size_kb"),
                    before: "absent".into(),
                    after: size.to_string(),
                });
                next_key -= 1;
                x.open("deviceChange")
                    .text("operation", "add")
                    .text("fileOperation", "create");
                x.open_typed("device", "VirtualDisk").val("key", next_key);
                disk_backing(&mut x, &format!("[{ds}]"), None, Some(&w.kind), &mode);
                x.val("controllerKey", controller_key)
                    .val("unitNumber", w.unit)
                    .val("capacityInKB", size)
                    .val("capacityInBytes", size * 1024)
                    .close("device")
                    .close("deviceChange");
                any = true;
            }
        }
    }
    x.close("spec");
    Ok((fields, any.then(|| x.into_string())))
}

/// The datastore each new disk goes on: its `datastore` (checked to exist),
/// the one with the most free space (`autoselect_datastore`), else the VM's.
async fn datastores(
    s: &mut Session,
    t: &Target,
    vm: &Vm,
    want: &[WantDisk],
) -> Result<Vec<Option<String>>, ModuleError> {
    let mut out = Vec::new();
    let mut all: Option<Vec<(String, i64)>> = None;
    for w in want {
        if !w.present {
            out.push(None);
            continue;
        }
        if all.is_none() && (w.datastore.is_some() || w.autoselect) {
            let dc = inventory::datacenter(s, t.datacenter.as_deref().unwrap_or("ha-datacenter"))
                .await
                .map_err(failed)?;
            let list = s
                .list(&dc.datastore_folder, "Datastore", &["name", "summary.freeSpace"])
                .await
                .map_err(failed)?;
            all = Some(
                list.into_iter()
                    .map(|(_, p)| {
                        (
                            p.get("name").map(|n| n.text.clone()).unwrap_or_default(),
                            p.get("summary.freeSpace")
                                .and_then(|n| n.text.trim().parse().ok())
                                .unwrap_or(0),
                        )
                    })
                    .collect(),
            );
        }
        let known = all.as_deref().unwrap_or(&[]);
        let ds = if let Some(n) = &w.datastore {
            if !known.iter().any(|(k, _)| k == n) {
                return Err(ModuleError::Failed(format!(
                    "{}: datastore `{n}` not found in datacenter `{}`",
                    DOC.name,
                    t.datacenter.as_deref().unwrap_or("ha-datacenter")
                )));
            }
            Some(n.clone())
        } else if w.autoselect {
            known.iter().max_by_key(|(_, free)| *free).map(|(n, _)| n.clone())
        } else {
            inventory::datastore_of(&vm.vm_path).map(str::to_string)
        };
        out.push(ds);
    }
    Ok(out)
}

/// Ansible's `disk_data`: the VM's disks by index.
fn disk_data(vm: &Vm) -> Value {
    let mut out = Map::new();
    for (i, d) in vm.disks.iter().enumerate() {
        let c = vm.controllers.iter().find(|c| c.key == d.controller_key);
        out.insert(
            i.to_string(),
            json!({
                "backing_datastore": inventory::datastore_of(&d.file).unwrap_or(""),
                "backing_disk_mode": d.disk_mode,
                "backing_eagerlyscrub": d.eagerly_scrub.unwrap_or(false),
                "backing_filename": d.file,
                "backing_thinprovisioned": d.thin.unwrap_or(false),
                "capacity_in_bytes": d.capacity_kb * 1024,
                "capacity_in_kb": d.capacity_kb,
                "controller_bus_number": c.map(|c| c.bus),
                "controller_key": d.controller_key,
                "controller_type": c.map(|c| scsi_type_name(&c.kind)),
                "key": d.key,
                "label": d.label,
                "unit_number": d.unit,
            }),
        );
    }
    Value::Object(out)
}

fn lines(fields: &[Field], after: bool) -> String {
    fields.iter().fold(String::new(), |mut s, f| {
        s.push_str(&f.key);
        s.push_str(": ");
        s.push_str(if after { &f.after } else { &f.before });
        s.push('\n');
        s
    })
}

pub struct VmwareGuestDiskModule;

struct DiskChange {
    ep: Endpoint,
    target: Target,
    vm: MoRef,
    want: Vec<WantDisk>,
}

#[async_trait]
impl Module for VmwareGuestDiskModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, _ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let (ep, mut args) = conn::split(&DOC, args)?;
        let t = Target::take(DOC.name, &mut args)?;
        let p: Params =
            serde_json::from_value(Value::Object(args)).map_err(|e| ModuleError::Args(format!("{}: {e}", DOC.name)))?;
        let want = want(&p.disk)?;
        let (t2, want2) = (t.clone(), want.clone());
        let (vm, fields) = conn::with_session(&ep, move |s| {
            Box::pin(async move {
                let vm = t2.get(DOC.name, s).await?;
                let ds = datastores(s, &t2, &vm, &want2).await?;
                let (fields, _) = work_out(&vm, &want2, &ds)?;
                Ok((vm, fields))
            })
        })
        .await?;
        let out = ModuleOutcome::ok().with("disk_data", disk_data(&vm)).with(
            "changes",
            json!(fields.iter().map(|f| f.key.clone()).collect::<Vec<_>>()),
        );
        if fields.is_empty() {
            return Ok(Plan::Done(out));
        }
        let out = out.with_diff(Diff {
            before_header: vm.name.clone(),
            after_header: vm.name.clone(),
            before: lines(&fields, false),
            after: lines(&fields, true),
        });
        Ok(Plan::change(
            out,
            DiskChange {
                ep,
                target: t,
                vm: vm.moref,
                want,
            },
        ))
    }
}

#[async_trait]
impl Change for DiskChange {
    async fn apply(
        self: Box<Self>,
        _ctx: &ModuleCtx<'_>,
        planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let DiskChange { ep, target, vm, want } = *self;
        conn::with_session(&ep, move |s| {
            Box::pin(async move {
                let cur = inventory::read_vm(s, &vm).await.map_err(failed)?;
                let ds = datastores(s, &target, &cur, &want).await?;
                if let (_, Some(spec)) = work_out(&cur, &want, &ds)? {
                    s.run_task("ReconfigVM_Task", &vm, &spec, "reconfiguring the VM's disks")
                        .await
                        .map_err(failed)?;
                }
                let now = inventory::read_vm(s, &vm).await.map_err(failed)?;
                Ok(planned.with("disk_data", disk_data(&now)))
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(v: Value) -> DiskItem {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn requests_are_checked() {
        let ok = want(&[item(
            json!({"size_gb": 1, "scsi_controller": 1, "unit_number": 2, "scsi_type": "lsilogic"}),
        )])
        .unwrap();
        assert_eq!((ok[0].bus, ok[0].unit), (1, 2));
        assert_eq!(ok[0].controller, Some("VirtualLsiLogicController"));
        assert_eq!(ok[0].size_kb, Some(1024 * 1024));
        let err = |v: Value| want(&[item(v)]).unwrap_err().to_string();
        assert!(err(json!({"size_gb": 1, "unit_number": 7})).contains("not 7"));
        assert!(err(json!({"size_gb": 1})).contains("needs a unit_number"));
        assert!(err(json!({"size_gb": 1, "unit_number": 1, "controller_number": 4})).contains("0-3"));
        assert!(err(json!({"size_gb": 1, "unit_number": 1, "controller_type": "nvme"})).contains("not supported yet"));
        assert!(err(json!({"size_gb": 1, "size_mb": 2, "unit_number": 1})).contains("one size"));
    }
}
