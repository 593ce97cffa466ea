//! `virt_domain` (aliases `virt`, `community.libvirt.virt`): libvirt domains.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::virsh::{changed_paths, is_subset, xml_diff, Virsh, VirshSteps, URI_OPTION};
use super::xml::Elem;
use crate::modules::args::{de_opt_int, de_opt_string, de_string_list};
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

const STATES: &[&str] = &[
    "present",
    "defined",
    "running",
    "shutdown",
    "paused",
    "destroyed",
    "undefined",
    "absent",
];
const COMMANDS: &[&str] = &[
    "define", "create", "start", "stop", "shutdown", "destroy", "undefine", "pause", "unpause", "status", "get_xml",
    "list_vms",
];

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Domain name.").aliases(&["guest"]),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`present`/`defined`: defined (not started). `running`, `paused`: started (resumed). \
`shutdown`: ACPI shutdown, waiting `shutdown_timeout` seconds, then `virsh destroy` when `force`. \
`destroyed`: powered off. `undefined`/`absent`: removed (its volumes too with `remove_volumes`).",
    )
    .choices(STATES),
    OptionDoc::new(
        "command",
        OptKind::Str,
        "community.libvirt.virt compatibility: `define` (with `xml`), `create`/`start`, `shutdown`/`stop`, \
`destroy`, `undefine`, `pause`, `unpause`, and the read-only `status`, `get_xml`, `list_vms`.",
    )
    .choices(COMMANDS),
    OptionDoc::new(
        "xml",
        OptKind::Str,
        "A full domain XML (e.g. from `lookup('template', ...)`); instead of the structured options. \
An existing domain is redefined only when the XML is not already contained in its definition; \
its UUID and MAC addresses are kept.",
    ),
    OptionDoc::new("vcpus", OptKind::Int, "Number of virtual CPUs."),
    OptionDoc::new(
        "memory",
        OptKind::Str,
        "Memory: an integer in MiB, or a size with unit (`512M`, `2G`).",
    ),
    OptionDoc::new(
        "machine",
        OptKind::Str,
        "Machine type (`pc`, `q35`, or a versioned name).",
    )
    .default("pc"),
    OptionDoc::new("cpu_mode", OptKind::Str, "CPU mode; by default libvirt's default CPU.").choices(&[
        "host-passthrough",
        "host-model",
        "maximum",
        "custom",
    ]),
    OptionDoc::new(
        "firmware",
        OptKind::Str,
        "Firmware. `uefi` sets `<os firmware='efi'>`: libvirt picks an OVMF build (without secure boot on \
`pc`) and creates the domain's NVRAM file from its template; needs OVMF on the hypervisor (Debian/Ubuntu: \
`ovmf`, RHEL: `edk2-ovmf`). `state: absent` removes the NVRAM file too.",
    )
    .choices(&["bios", "uefi"])
    .default("bios"),
    OptionDoc::new(
        "domain_type",
        OptKind::Str,
        "`kvm`, `qemu` (TCG emulation), or `auto`: `kvm` when the hypervisor's capabilities offer it and its KVM \
can run ordinary guests (kvm_intel/kvm_amd; not kvm_pvm, not without VT-x/AMD-V), else `qemu`. `kvm` on a host \
where KVM cannot run guests is an error that says why.",
    )
    .choices(&["auto", "kvm", "qemu"])
    .default("auto"),
    OptionDoc::new(
        "disks",
        OptKind::List,
        "Disks, in order: dicts with `volume` + `pool` or `path`, `format` (from the volume when omitted), \
`bus` (virtio), `cache`, `boot_order`, `target` (vda, vdb... by default). Disks not listed are removed \
from the definition.",
    ),
    OptionDoc::new(
        "cdroms",
        OptKind::List,
        "CD-ROMs: dicts with `path`, `bus` (ide for `pc`, sata for `q35`), `boot_order`, `target`.",
    ),
    OptionDoc::new(
        "nics",
        OptKind::List,
        "Network interfaces: dicts with `network` or `bridge`, `model` (virtio), `mac`. An interface \
keeps the MAC libvirt gave it on later runs.",
    ),
    OptionDoc::new("graphics", OptKind::Str, "Graphics console.").choices(&["none", "vnc"]),
    OptionDoc::new(
        "serial_log",
        OptKind::Path,
        "Send the serial console to this file on the hypervisor.",
    ),
    OptionDoc::new(
        "kernel",
        OptKind::Path,
        "Direct kernel boot: kernel image path on the hypervisor. An empty string removes \
direct kernel boot from the definition (as do empty `initrd` and `cmdline` for theirs).",
    ),
    OptionDoc::new("initrd", OptKind::Path, "Direct kernel boot: initrd path."),
    OptionDoc::new("cmdline", OptKind::Str, "Direct kernel boot: kernel command line."),
    OptionDoc::new("autostart", OptKind::Bool, "Start the domain when libvirtd starts."),
    OptionDoc::new(
        "shutdown_timeout",
        OptKind::Int,
        "Seconds to wait for an ACPI shutdown (state `shutdown`).",
    )
    .default("120"),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "`shutdown`: power off when the guest ignores ACPI within the timeout. `undefine`/`absent`: \
remove all of the domain's metadata too (managed save, snapshot and checkpoint metadata, NVRAM), \
as `flags: [managed_save, snapshots_metadata, nvram, checkpoints_metadata]`.",
    )
    .default("false"),
    OptionDoc::new(
        "flags",
        OptKind::List,
        "`undefine`/`absent`: what else to remove (community.libvirt.virt's flags): `managed_save`, \
`snapshots_metadata`, `nvram`, `keep_nvram`, `checkpoints_metadata`, `delete_volumes`. Without flags, the \
domain's NVRAM file is removed when it has one.",
    ),
    OptionDoc::new(
        "remove_volumes",
        OptKind::Bool,
        "`absent`: also delete the storage volumes of its disks.",
    )
    .default("false"),
    URI_OPTION,
];

static DOC: ModuleDoc = ModuleDoc {
    name: "virt_domain",
    aliases: &["virt", "community.libvirt.virt"],
    short: "Manage libvirt domains (virtual machines)",
    description: "Defines a domain from structured options or an XML document, and drives it to a state, by \
running `virsh` on the hypervisor host over SSH. An existing definition is edited in place \
(`virsh dumpxml --inactive`, change only the elements the options control, `virsh define`), so MAC \
addresses, PCI addresses and device order stay as they are; `--diff` shows the normalized XML before \
and after, `changes` lists the changed elements, and `restart_required` says when a running domain \
needs a restart to pick the change up.",
    free_form: false,
    options: OPTIONS,
    examples: "- virt_domain:\n    name: web1\n    vcpus: 2\n    memory: 1G\n    disks:\n      - { pool: default, volume: web1.qcow2 }\n    cdroms:\n      - { path: /var/lib/libvirt/images/web1-seed.iso }\n    nics:\n      - { network: lab }\n    serial_log: /var/log/libvirt/qemu/web1-console.log\n    state: running\n\n- virt:\n    name: web1\n    command: destroy\n",
    returns: &[
        ReturnDoc {
            name: "state",
            description: "the domain's state after the task (`running`, `shut off`, `paused`, `absent`)",
        },
        ReturnDoc {
            name: "changes",
            description: "elements of the definition that changed, e.g. `domain/vcpu[1]`",
        },
        ReturnDoc {
            name: "restart_required",
            description: "true when the definition changed while the domain runs",
        },
        ReturnDoc {
            name: "domain_type",
            description: "`kvm` or `qemu` for a newly defined domain",
        },
        ReturnDoc {
            name: "status / get_xml / list_vms",
            description: "results of the read-only commands",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    xml: Option<String>,
    #[serde(default)]
    vcpus: Option<i64>,
    #[serde(default)]
    memory: Option<String>,
    #[serde(default)]
    machine: Option<String>,
    #[serde(default)]
    cpu_mode: Option<String>,
    #[serde(default)]
    firmware: Option<String>,
    #[serde(default)]
    domain_type: Option<String>,
    #[serde(default)]
    disks: Option<Vec<DiskSpec>>,
    #[serde(default)]
    cdroms: Option<Vec<DiskSpec>>,
    #[serde(default)]
    nics: Option<Vec<NicSpec>>,
    #[serde(default)]
    graphics: Option<String>,
    #[serde(default)]
    serial_log: Option<String>,
    #[serde(default)]
    kernel: Option<String>,
    #[serde(default)]
    initrd: Option<String>,
    #[serde(default)]
    cmdline: Option<String>,
    #[serde(default)]
    autostart: Option<bool>,
    #[serde(default)]
    shutdown_timeout: Option<i64>,
    #[serde(default)]
    force: Option<bool>,
    #[serde(default)]
    remove_volumes: Option<bool>,
    #[serde(default, deserialize_with = "de_string_list")]
    flags: Vec<String>,
    #[serde(default)]
    uri: Option<String>,
}

#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct DiskSpec {
    #[serde(default, deserialize_with = "de_opt_string")]
    volume: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    pool: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    path: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    format: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    bus: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    cache: Option<String>,
    #[serde(default, deserialize_with = "de_opt_int")]
    boot_order: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_string")]
    target: Option<String>,
}

#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct NicSpec {
    #[serde(default, deserialize_with = "de_opt_string")]
    network: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    bridge: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    model: Option<String>,
    #[serde(default, deserialize_with = "de_opt_string")]
    mac: Option<String>,
}

impl Params {
    fn has_structure(&self) -> bool {
        self.vcpus.is_some()
            || self.memory.is_some()
            || self.disks.is_some()
            || self.cdroms.is_some()
            || self.nics.is_some()
            || self.kernel.is_some()
            || self.graphics.is_some()
            || self.serial_log.is_some()
            || self.cpu_mode.is_some()
    }
}

pub struct VirtDomainModule;

#[async_trait]
impl Module for VirtDomainModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let mut p: Params = parse_params(&DOC, args)?;
        let virsh = Virsh::new(ctx, p.uri.as_deref(), "virt_domain");
        if p.name.as_deref().is_none_or(str::is_empty) {
            // As community.libvirt.virt: `command: define` takes the name from the XML.
            p.name = p.xml.as_deref().and_then(|x| Elem::parse(x).ok()?.child_text("name"));
        }
        if let Some(cmd) = p.command.clone() {
            match cmd.as_str() {
                "list_vms" => {
                    // `state` filters the list, as community.libvirt.virt's list_vms does.
                    let filter = match p.state.as_deref() {
                        None => "--all",
                        Some("running") => "--state-running",
                        Some("paused") => "--state-paused",
                        Some("shutdown" | "destroyed") => "--state-shutoff",
                        Some(other) => {
                            return Err(ModuleError::Args(format!(
                                "virt_domain: list_vms: `state: {other}` is not a state to list by \
(running, paused, shutdown)"
                            )))
                        }
                    };
                    let out = virsh.run(&["list", filter, "--name"]).await?;
                    let names: Vec<&str> = out.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
                    return Ok(Plan::Done(ModuleOutcome::ok().with("list_vms", json!(names))));
                }
                "status" | "get_xml" => {
                    let name = required_name(&p)?;
                    if cmd == "status" {
                        let st = domstate(&virsh, &name).await?.unwrap_or_else(|| "absent".into());
                        return Ok(Plan::Done(ModuleOutcome::ok().with("status", st)));
                    }
                    let xml = virsh.run(&["dumpxml", &name]).await?;
                    return Ok(Plan::Done(ModuleOutcome::ok().with("get_xml", xml)));
                }
                "define" => p.state = Some("present".into()),
                "create" | "start" | "unpause" => p.state = Some("running".into()),
                "shutdown" | "stop" => p.state = Some("shutdown".into()),
                "destroy" => p.state = Some("destroyed".into()),
                "undefine" => p.state = Some("absent".into()),
                "pause" => p.state = Some("paused".into()),
                other => return Err(ModuleError::Args(format!("virt_domain: unknown command `{other}`"))),
            }
        }
        let name = required_name(&p)?;
        let state = p.state.clone().unwrap_or_else(|| "present".into());
        let mut out = ModuleOutcome::ok();
        let mut steps = VirshSteps::new(&virsh);
        let current = domstate(&virsh, &name).await?;

        if state == "absent" || state == "undefined" {
            let Some(cur) = current else {
                return Ok(Plan::Done(out.with("state", "absent")));
            };
            out.changed = true;
            out = out.with_diff(state_diff(&cur, "absent"));
            if is_active(&cur) {
                steps.run(&["destroy", &name]);
            }
            let change = DomainChange {
                name,
                steps,
                then: Then::Undefine {
                    flags: undefine_flags(&p)?,
                },
            };
            return Ok(Plan::change(out.with("state", "absent"), change));
        }

        // The definition.
        let wants_definition = p.xml.is_some() || p.has_structure();
        let mut defined_now = current.is_some();
        let mut restart_required = false;
        if wants_definition {
            let before = if current.is_some() {
                virsh.xml(&["dumpxml", "--inactive", &name]).await?
            } else {
                None
            };
            let after = match (&before, &p.xml) {
                (_, Some(text)) => {
                    let want = Elem::parse(text).map_err(|e| ModuleError::Args(format!("virt_domain: xml: {e}")))?;
                    if want.child_text("name").as_deref() != Some(name.as_str()) {
                        return Err(ModuleError::Args(format!(
                            "virt_domain: the xml's <name> is {:?}, not `{name}`",
                            want.child_text("name")
                        )));
                    }
                    match &before {
                        Some(have) if is_subset(&want, have) => None,
                        Some(have) => {
                            // Not literally contained: compare libvirt's own
                            // normalised form of the request (units, machine
                            // aliases, defaults) with the definition.
                            let norm = normalised(&virsh, &want, have, &name).await?;
                            (!is_subset(&norm, have)).then_some(norm)
                        }
                        None => Some(want),
                    }
                }
                (Some(have), None) => {
                    let mut edited = have.clone();
                    apply_params(&virsh, &p, &mut edited, false).await?;
                    (edited != *have).then_some(edited)
                }
                (None, None) => {
                    let dtype = resolve_domain_type(&virsh, p.domain_type.as_deref()).await?;
                    out = out.with("domain_type", dtype.clone());
                    let mut fresh = skeleton(&name, &dtype, &p);
                    apply_params(&virsh, &p, &mut fresh, true).await?;
                    Some(fresh)
                }
            };
            if let Some(new) = after {
                out.changed = true;
                let changes = match &before {
                    Some(b) => changed_paths(b, &new),
                    None => vec!["domain (defined)".to_string()],
                };
                restart_required = current.as_deref().is_some_and(is_active);
                out = out.with("changes", json!(changes)).with_diff(xml_diff(
                    &format!("domain {name}"),
                    before.as_ref().map(|b| b.to_xml()).as_deref(),
                    Some(&new.to_xml()),
                ));
                steps.xml(&["define"], new.to_xml());
                defined_now = true;
            }
        } else if current.is_none() && state != "destroyed" {
            return Err(ModuleError::Failed(format!(
                "virt_domain: domain `{name}` is not defined on {}; give its options (vcpus, memory, disks...) or `xml`",
                ctx.host
            )));
        }
        if current.is_none() && !defined_now {
            return Ok(Plan::Done(out.with("state", "absent")));
        }

        // Autostart.
        if let Some(want) = p.autostart {
            let have = if current.is_some() {
                autostart_of(&virsh, &name).await?
            } else {
                false
            };
            if have != want {
                out.changed = true;
                out = out.with_diff(Diff {
                    before_header: format!("domain {name} autostart"),
                    after_header: format!("domain {name} autostart"),
                    before: format!("autostart: {have}\n"),
                    after: format!("autostart: {want}\n"),
                });
                let mut a = vec!["autostart", name.as_str()];
                if !want {
                    a.push("--disable");
                }
                steps.run(&a);
            }
        }

        // The run state.
        let cur = current.clone().unwrap_or_else(|| "shut off".into());
        let target = match state.as_str() {
            "running" => "running",
            "paused" => "paused",
            "shutdown" | "destroyed" => "shut off",
            _ => cur.as_str(),
        }
        .to_string();
        let mut final_state = cur.clone();
        let mut then = Then::Nothing;
        if target != cur && (target != "shut off" || is_active(&cur)) {
            out.changed = true;
            out = out.with_diff(state_diff(&cur, &target));
            final_state = target.clone();
            let mut shut_down = None;
            match (state.as_str(), cur.as_str()) {
                ("running", "paused") => steps.run(&["resume", &name]),
                ("running", _) => steps.run(&["start", &name]),
                ("paused", "running") => steps.run(&["suspend", &name]),
                ("paused", _) => steps.run(&["start", "--paused", &name]),
                ("destroyed", _) => steps.run(&["destroy", &name]),
                ("shutdown", _) => {
                    shut_down = Some(ShutDown {
                        timeout: p.shutdown_timeout,
                        force: p.force.unwrap_or(false),
                    })
                }
                _ => {}
            }
            then = Then::RunState {
                target: final_state.clone(),
                shut_down,
                restart_required,
            };
        }
        if restart_required {
            out = out.with_msg(restart_msg(&name));
        }
        let out = out
            .with("state", final_state)
            .with("restart_required", restart_required);
        if !out.changed {
            return Ok(Plan::Done(out));
        }
        Ok(Plan::change(out, DomainChange { name, steps, then }))
    }
}

fn restart_msg(name: &str) -> String {
    format!("the definition of `{name}` changed while it runs: restart it (shutdown + start) to apply")
}

/// A domain's change: the planned virsh commands (define, autostart, the run
/// state), then what only the change can do.
struct DomainChange {
    name: String,
    steps: VirshSteps,
    then: Then,
}

/// The last part of a domain's change.
enum Then {
    Nothing,
    /// `undefine` (after `destroy`), with `--nvram` when its inactive
    /// definition has one, read after the destroy.
    Undefine {
        flags: UndefineFlags,
    },
    /// The run state changes to `target`: after an ACPI shutdown the state
    /// is whatever the guest reached; a restart is required only when it
    /// ends up running.
    RunState {
        target: String,
        shut_down: Option<ShutDown>,
        restart_required: bool,
    },
}

/// ACPI shutdown options.
struct ShutDown {
    timeout: Option<i64>,
    force: bool,
}

#[async_trait]
impl Change for DomainChange {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let DomainChange { name, steps, then } = *self;
        steps.run_all(ctx).await?;
        let virsh = Virsh::new(ctx, Some(&steps.uri), "virt_domain");
        match then {
            Then::Nothing => Ok(planned),
            Then::Undefine { flags } => {
                let xml = virsh.xml(&["dumpxml", "--inactive", &name]).await?;
                let mut args = vec!["undefine", name.as_str()];
                args.extend(flags.virsh.iter().copied());
                if !flags.nvram_given && xml.as_ref().and_then(|x| x.path("os/nvram")).is_some() {
                    args.push("--nvram");
                }
                virsh.run(&args).await?;
                Ok(planned)
            }
            Then::RunState {
                target,
                shut_down,
                restart_required,
            } => {
                let final_state = match shut_down {
                    Some(s) => shutdown(&virsh, &name, s.timeout, s.force).await?,
                    None => target,
                };
                let restart_required = restart_required && final_state == "running";
                let mut out = planned;
                out.msg = restart_required.then(|| restart_msg(&name));
                Ok(out
                    .with("state", final_state)
                    .with("restart_required", restart_required))
            }
        }
    }
}

/// The `virsh undefine` flags of an `undefine`/`absent` task.
struct UndefineFlags {
    virsh: Vec<&'static str>,
    /// `nvram` or `keep_nvram` was asked for: no automatic `--nvram`.
    nvram_given: bool,
}

fn undefine_flags(p: &Params) -> Result<UndefineFlags, ModuleError> {
    let mut names: Vec<&str> = p.flags.iter().map(|f| f.trim()).filter(|f| !f.is_empty()).collect();
    if p.command.as_deref() == Some("undefine") && p.force.unwrap_or(false) {
        names.extend(["managed_save", "snapshots_metadata", "nvram", "checkpoints_metadata"]);
    }
    if p.remove_volumes.unwrap_or(false) {
        names.push("delete_volumes");
    }
    let mut virsh: Vec<&'static str> = Vec::new();
    for n in &names {
        let flag = match *n {
            "managed_save" => "--managed-save",
            "snapshots_metadata" => "--snapshots-metadata",
            "nvram" => "--nvram",
            "keep_nvram" => "--keep-nvram",
            "checkpoints_metadata" => "--checkpoints-metadata",
            "delete_volumes" => "--remove-all-storage",
            other => {
                return Err(ModuleError::Args(format!(
                    "virt_domain: unknown undefine flag `{other}` (managed_save, snapshots_metadata, nvram, \
keep_nvram, checkpoints_metadata, delete_volumes)"
                )))
            }
        };
        if !virsh.contains(&flag) {
            virsh.push(flag);
        }
    }
    if virsh.contains(&"--nvram") && virsh.contains(&"--keep-nvram") {
        return Err(ModuleError::Args(
            "virt_domain: flags `nvram` and `keep_nvram` exclude each other".into(),
        ));
    }
    let nvram_given = virsh.iter().any(|f| *f == "--nvram" || *f == "--keep-nvram");
    Ok(UndefineFlags { virsh, nvram_given })
}

fn required_name(p: &Params) -> Result<String, ModuleError> {
    p.name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ModuleError::Args("virt_domain: `name` is required".into()))
}

fn is_active(state: &str) -> bool {
    !matches!(state, "shut off" | "crashed")
}

fn state_diff(before: &str, after: &str) -> Diff {
    Diff {
        before_header: "state".into(),
        after_header: "state".into(),
        before: format!("state: {before}\n"),
        after: format!("state: {after}\n"),
    }
}

/// `virsh domstate`, or `None` when the domain does not exist.
async fn domstate(virsh: &Virsh<'_>, name: &str) -> Result<Option<String>, ModuleError> {
    let out = virsh.try_run(&["domstate", name]).await?;
    if out.ok {
        return Ok(Some(out.stdout.trim().to_string()));
    }
    if super::virsh::is_not_found(&out.stderr) {
        return Ok(None);
    }
    Err(virsh.fail(&["domstate", name], &out.stderr))
}

async fn autostart_of(virsh: &Virsh<'_>, name: &str) -> Result<bool, ModuleError> {
    let info = virsh.run(&["dominfo", name]).await?;
    Ok(info
        .lines()
        .any(|l| l.starts_with("Autostart:") && l.trim_end().ends_with("enable")))
}

/// ACPI shutdown, poll, then destroy when `force`.
async fn shutdown(virsh: &Virsh<'_>, name: &str, timeout: Option<i64>, force: bool) -> Result<String, ModuleError> {
    virsh.run(&["shutdown", name]).await?;
    let timeout = Duration::from_secs(timeout.unwrap_or(120).max(0) as u64);
    let deadline = Instant::now() + timeout;
    loop {
        let st = domstate(virsh, name).await?.unwrap_or_else(|| "absent".into());
        if !is_active(&st) || st == "absent" {
            return Ok(st);
        }
        if Instant::now() >= deadline {
            if force {
                virsh.run(&["destroy", name]).await?;
                return Ok("shut off".into());
            }
            return Err(ModuleError::Failed(format!(
                "virt_domain: `{name}` did not shut down within {}s of the ACPI request (still {st}); \
                 set `force: true` to power it off after the timeout",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `kvm` when asked for or (auto) when the host's capabilities list it and
/// its KVM can run ordinary guests; else `qemu` (TCG).
async fn resolve_domain_type(virsh: &Virsh<'_>, want: Option<&str>) -> Result<String, ModuleError> {
    let want = want.unwrap_or("auto");
    if want == "qemu" {
        return Ok("qemu".into());
    }
    let caps = virsh.xml(&["capabilities"]).await?.unwrap_or_default();
    let offered = caps
        .elems_named("guest")
        .flat_map(|g| g.elems_named("arch"))
        .flat_map(|a| a.elems_named("domain"))
        .any(|d| d.attr("type") == Some("kvm"));
    // libvirt lists kvm whenever /dev/kvm opens; whether guests can really
    // run is a property of the host's KVM, probed on the host itself when
    // libvirt runs there (a remote URI's capabilities are taken as they are).
    let unusable = if offered && is_local_uri(&virsh.uri) {
        kvm_unusable(&virsh.ctx.run(KVM_PROBE).await?.stdout_str())
    } else if offered {
        None
    } else {
        Some("libvirt's capabilities offer no kvm domain type".to_string())
    };
    match (want, unusable) {
        (_, None) => Ok("kvm".into()),
        ("kvm", Some(why)) => Err(ModuleError::Failed(format!(
            "virt_domain: `domain_type: kvm` but KVM cannot run guests on {}: {why}; \
             use `domain_type: qemu` (TCG emulation) or `auto`",
            virsh.ctx.host
        ))),
        _ => Ok("qemu".into()),
    }
}

fn is_local_uri(uri: &str) -> bool {
    uri.starts_with("qemu:///") || !uri.contains("://")
}

/// Lists the host's KVM modules and the CPU's virtualisation flags.
const KVM_PROBE: &str = "if [ -e /dev/kvm ]; then echo 'KVM|dev'; fi\n\
for m in /sys/module/kvm_*; do [ -d \"$m\" ] && echo \"KVM|mod|${m##*/}\"; done\n\
grep -m1 -o -w -E 'vmx|svm' /proc/cpuinfo 2>/dev/null | sed 's/^/KVM|cpu|/'\n\
exit 0\n";

/// Why the host's KVM cannot run ordinary (unmodified) guests, from
/// [`KVM_PROBE`]'s output; `None` when it can.
fn kvm_unusable(probe: &str) -> Option<String> {
    let lines: Vec<&str> = probe.lines().filter_map(|l| l.strip_prefix("KVM|")).collect();
    let has = |l: &str| lines.contains(&l);
    if !has("dev") {
        return Some("the host has no /dev/kvm".into());
    }
    if has("mod|kvm_intel") || has("mod|kvm_amd") {
        return None;
    }
    if has("mod|kvm_pvm") {
        return Some(
            "its KVM is kvm_pvm (pagetable-based virtualisation, nested in a VM without VT-x/AMD-V), \
             which runs only PVM-enabled guest kernels"
                .into(),
        );
    }
    if !has("cpu|vmx") && !has("cpu|svm") {
        return Some("the CPU offers neither VT-x (vmx) nor AMD-V (svm)".into());
    }
    None
}

/// A new domain's fixed parts; [`apply_params`] fills in the rest.
fn skeleton(name: &str, dtype: &str, p: &Params) -> Elem {
    let machine = p.machine.clone().unwrap_or_else(|| "pc".into());
    let mut os = Elem::new("os");
    if p.firmware.as_deref() == Some("uefi") {
        os.set_attr("firmware", "efi");
    }
    os.push(
        Elem::new("type")
            .with_attr("arch", "x86_64")
            .with_attr("machine", machine)
            .with_text("hvm"),
    );
    Elem::new("domain")
        .with_attr("type", dtype)
        .with_child(Elem::new("name").with_text(name))
        .with_child(Elem::new("memory").with_attr("unit", "KiB").with_text("524288"))
        .with_child(Elem::new("currentMemory").with_attr("unit", "KiB").with_text("524288"))
        .with_child(Elem::new("vcpu").with_text("1"))
        .with_child(os)
        .with_child(Elem::new("features").with_child(Elem::new("acpi")))
        .with_child(Elem::new("on_poweroff").with_text("destroy"))
        .with_child(Elem::new("on_reboot").with_text("restart"))
        .with_child(Elem::new("on_crash").with_text("destroy"))
        .with_child(Elem::new("devices"))
}

fn memory_kib(s: &str) -> Result<u64, ModuleError> {
    if let Ok(mib) = s.trim().parse::<u64>() {
        return Ok(mib * 1024);
    }
    crate::size::parse_size(s)
        .map(|b| b / 1024)
        .map_err(|e| ModuleError::Args(format!("virt_domain: memory: {e}")))
}

fn machine_matches(want: &str, have: &str) -> bool {
    want == have || (want == "pc" && have.starts_with("pc-i440fx-")) || (want == "q35" && have.starts_with("pc-q35-"))
}

/// Edit `dom` so it says what the options say; elements the options do not
/// control are left alone.
async fn apply_params(virsh: &Virsh<'_>, p: &Params, dom: &mut Elem, fresh: bool) -> Result<(), ModuleError> {
    if let Some(t) = p.domain_type.as_deref().filter(|t| *t != "auto") {
        if dom.attr("type") != Some(t) {
            let t = resolve_domain_type(virsh, Some(t)).await?;
            dom.set_attr("type", t);
        }
    }
    if let Some(v) = p.vcpus {
        if dom.child_text("vcpu") != Some(v.to_string()) {
            dom.child_or_add("vcpu").set_text(v.to_string());
        }
    }
    if let Some(m) = &p.memory {
        let kib = memory_kib(m)?.to_string();
        for el in ["memory", "currentMemory"] {
            let e = dom.child_or_add(el);
            if e.text() != kib || e.attr("unit") != Some("KiB") {
                e.set_attr("unit", "KiB");
                e.set_text(kib.clone());
            }
        }
    }
    {
        let os = dom.child_or_add("os");
        if let Some(m) = &p.machine {
            let ty = os.child_or_add("type");
            if !machine_matches(m, ty.attr("machine").unwrap_or_default()) {
                ty.set_attr("machine", m.clone());
            }
        }
        match p.firmware.as_deref() {
            Some("uefi") if os.attr("firmware") != Some("efi") => os.set_attr("firmware", "efi"),
            Some("bios") if os.attr("firmware").is_some() => os.remove_attr("firmware"),
            _ => {}
        }
        for (key, val) in [("kernel", &p.kernel), ("initrd", &p.initrd), ("cmdline", &p.cmdline)] {
            match val.as_deref() {
                // Empty: no direct kernel boot (e.g. boot the installed disk after an install).
                Some("") => os.remove_children(key),
                Some(v) if os.child_text(key).as_deref() != Some(v) => os.child_or_add(key).set_text(v),
                _ => {}
            }
        }
    }
    if let Some(mode) = &p.cpu_mode {
        if dom.child("cpu").and_then(|c| c.attr("mode")) != Some(mode.as_str()) {
            dom.remove_children("cpu");
            // libvirt wants <cpu> after <features>; it reorders on define anyway.
            dom.push(Elem::new("cpu").with_attr("mode", mode.clone()));
        }
    }
    let machine_q35 = dom
        .path("os/type")
        .and_then(|t| t.attr("machine"))
        .is_some_and(|m| m.contains("q35"));
    let devices = dom.child_or_add("devices");
    if p.disks.is_some() || p.cdroms.is_some() {
        let mut wanted = Vec::new();
        let mut used: Vec<String> = Vec::new();
        for (spec, cdrom) in p
            .disks
            .iter()
            .flatten()
            .map(|d| (d, false))
            .chain(p.cdroms.iter().flatten().map(|d| (d, true)))
        {
            let mut spec = spec.clone();
            if spec.format.is_none() {
                spec.format = Some(disk_format(virsh, &spec, cdrom).await?);
            }
            let bus = spec.bus.clone().unwrap_or_else(|| {
                if !cdrom {
                    "virtio".into()
                } else if machine_q35 {
                    "sata".into()
                } else {
                    "ide".into()
                }
            });
            let target = match &spec.target {
                Some(t) => t.clone(),
                None => next_target(&bus, &used, devices, p, cdrom),
            };
            used.push(target.clone());
            wanted.push(disk_elem(&spec, cdrom, &bus, &target)?);
        }
        // Update matching disks in place, drop unlisted ones, append new ones.
        let keep: Vec<String> = wanted
            .iter()
            .filter_map(|w| w.path("target").and_then(|t| t.attr("dev")).map(String::from))
            .collect();
        devices.children.retain(|c| match c {
            super::xml::XmlNode::Elem(e) if e.name == "disk" => e
                .child("target")
                .and_then(|t| t.attr("dev"))
                .is_some_and(|d| keep.iter().any(|k| k == d)),
            _ => true,
        });
        for w in wanted {
            let dev = w
                .path("target")
                .and_then(|t| t.attr("dev"))
                .unwrap_or_default()
                .to_string();
            let existing = devices
                .elems_mut()
                .find(|e| e.name == "disk" && e.child("target").and_then(|t| t.attr("dev")) == Some(dev.as_str()));
            match existing {
                Some(e) => merge_disk(e, &w),
                None => devices.push(w),
            }
        }
    }
    if let Some(nics) = &p.nics {
        let mut existing_count = devices.elems_named("interface").count();
        for (idx, nic) in nics.iter().enumerate() {
            let want = nic_elem(nic)?;
            let by_mac = nic.mac.as_ref().and_then(|m| {
                devices.elems().position(|e| {
                    e.name == "interface" && e.child("mac").and_then(|x| x.attr("address")) == Some(m.as_str())
                })
            });
            let slot = match by_mac {
                Some(_) => by_mac,
                None if idx < existing_count => Some(nth_position(devices, "interface", idx)),
                None => None,
            };
            match slot {
                Some(pos) => {
                    if let super::xml::XmlNode::Elem(e) = &mut devices.children[pos] {
                        merge_nic(e, &want);
                    }
                }
                None => {
                    devices.push(want);
                    existing_count += 1;
                }
            }
        }
        // Interfaces beyond the list are removed.
        let mut seen = 0usize;
        devices.children.retain(|c| match c {
            super::xml::XmlNode::Elem(e) if e.name == "interface" => {
                seen += 1;
                seen <= nics.len()
            }
            _ => true,
        });
    }
    match p.graphics.as_deref() {
        Some("none") => {
            devices.remove_children("graphics");
        }
        Some("vnc") => {
            let ok = devices.elems_named("graphics").count() == 1
                && devices.child("graphics").and_then(|g| g.attr("type")) == Some("vnc");
            if !ok {
                devices.remove_children("graphics");
                devices.push(
                    Elem::new("graphics")
                        .with_attr("type", "vnc")
                        .with_attr("autoport", "yes"),
                );
            }
        }
        _ => {}
    }
    if let Some(log) = &p.serial_log {
        let ok = devices.child("serial").is_some_and(|s| {
            s.attr("type") == Some("file") && s.child("source").and_then(|x| x.attr("path")) == Some(log.as_str())
        });
        if !ok {
            devices.remove_children("serial");
            devices.remove_children("console");
            devices.push(
                Elem::new("serial")
                    .with_attr("type", "file")
                    .with_child(Elem::new("source").with_attr("path", log.clone()))
                    .with_child(Elem::new("target").with_attr("port", "0")),
            );
        }
    }
    // Per-device boot order and <os><boot dev=.../> exclude each other; libvirt
    // adds the latter to a definition without the former (e.g. after direct kernel boot).
    let device_boot = devices.elems().any(|e| e.child("boot").is_some());
    if fresh && p.graphics.is_none() {
        // No display by default on a new domain: a head-less server.
        devices.remove_children("graphics");
    }
    if device_boot {
        if let Some(os) = dom.child_mut("os") {
            if os.child("boot").is_some() {
                os.remove_children("boot");
            }
        }
    }
    Ok(())
}

fn nth_position(devices: &Elem, name: &str, n: usize) -> usize {
    devices
        .children
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c, super::xml::XmlNode::Elem(e) if e.name == name))
        .nth(n)
        .map(|(i, _)| i)
        .unwrap_or(0)
}

/// The first free target name for a bus: vda.., sda.., hda...
fn next_target(bus: &str, used: &[String], devices: &Elem, p: &Params, cdrom: bool) -> String {
    let prefix = match bus {
        "virtio" => "vd",
        "ide" => "hd",
        _ => "sd",
    };
    // Targets other listed devices ask for explicitly are not free either.
    let explicit: Vec<String> = p
        .disks
        .iter()
        .flatten()
        .chain(p.cdroms.iter().flatten())
        .filter_map(|d| d.target.clone())
        .collect();
    let _ = (devices, cdrom);
    for c in b'a'..=b'z' {
        let t = format!("{prefix}{}", c as char);
        if !used.contains(&t) && !explicit.contains(&t) {
            return t;
        }
    }
    format!("{prefix}z")
}

async fn disk_format(virsh: &Virsh<'_>, spec: &DiskSpec, cdrom: bool) -> Result<String, ModuleError> {
    if cdrom {
        return Ok("raw".into());
    }
    if let (Some(v), Some(pool)) = (&spec.volume, &spec.pool) {
        if let Some(x) = virsh.xml(&["vol-dumpxml", "--pool", pool, v]).await? {
            if let Some(f) = x.path("target/format").and_then(|f| f.attr("type")) {
                return Ok(f.to_string());
            }
        }
        return Ok("qcow2".into());
    }
    Ok(match &spec.path {
        Some(p) if p.ends_with(".qcow2") => "qcow2".into(),
        _ => "raw".into(),
    })
}

fn disk_elem(spec: &DiskSpec, cdrom: bool, bus: &str, target: &str) -> Result<Elem, ModuleError> {
    let mut driver = Elem::new("driver")
        .with_attr("name", "qemu")
        .with_attr("type", spec.format.clone().unwrap_or_else(|| "raw".into()));
    if let Some(c) = &spec.cache {
        driver.set_attr("cache", c.clone());
    }
    let (dtype, source) = match (&spec.volume, &spec.pool, &spec.path) {
        (Some(v), Some(pool), None) => (
            "volume",
            Elem::new("source")
                .with_attr("pool", pool.clone())
                .with_attr("volume", v.clone()),
        ),
        (None, None, Some(path)) => ("file", Elem::new("source").with_attr("file", path.clone())),
        _ => {
            return Err(ModuleError::Args(
                "virt_domain: each disk needs either `volume` + `pool`, or `path`".into(),
            ))
        }
    };
    let mut e = Elem::new("disk")
        .with_attr("type", dtype)
        .with_attr("device", if cdrom { "cdrom" } else { "disk" })
        .with_child(driver)
        .with_child(source)
        .with_child(Elem::new("target").with_attr("dev", target).with_attr("bus", bus));
    if cdrom {
        e.push(Elem::new("readonly"));
    }
    if let Some(o) = spec.boot_order {
        e.push(Elem::new("boot").with_attr("order", o.to_string()));
    }
    Ok(e)
}

/// Make an existing `<disk>` say what `want` says, touching only what differs.
fn merge_disk(have: &mut Elem, want: &Elem) {
    for k in ["type", "device"] {
        if let Some(v) = want.attr(k) {
            if have.attr(k) != Some(v) {
                have.set_attr(k, v);
            }
        }
    }
    for child in ["driver", "target"] {
        if let Some(w) = want.child(child) {
            let h = have.child_or_add(child);
            for (k, v) in &w.attrs {
                if h.attr(k) != Some(v.as_str()) {
                    h.set_attr(k, v.clone());
                }
            }
            if child == "driver" && w.attr("cache").is_none() {
                h.remove_attr("cache");
            }
        }
    }
    if let Some(w) = want.child("source") {
        let same = w
            .attrs
            .iter()
            .all(|(k, v)| have.child("source").and_then(|s| s.attr(k)) == Some(v));
        if !same || have.child("source").is_none() {
            let pos = have
                .children
                .iter()
                .position(|c| matches!(c, super::xml::XmlNode::Elem(e) if e.name == "source"));
            match pos {
                Some(i) => have.children[i] = super::xml::XmlNode::Elem(w.clone()),
                None => have.push(w.clone()),
            }
        }
    }
    let want_boot = want.child("boot").and_then(|b| b.attr("order"));
    let have_boot = have.child("boot").and_then(|b| b.attr("order"));
    if want_boot != have_boot {
        match want_boot {
            Some(o) => have.child_or_add("boot").set_attr("order", o),
            None => have.remove_children("boot"),
        }
    }
}

fn nic_elem(nic: &NicSpec) -> Result<Elem, ModuleError> {
    let (ty, source) = match (&nic.network, &nic.bridge) {
        (Some(n), None) => ("network", Elem::new("source").with_attr("network", n.clone())),
        (None, Some(b)) => ("bridge", Elem::new("source").with_attr("bridge", b.clone())),
        _ => {
            return Err(ModuleError::Args(
                "virt_domain: each nic needs exactly one of `network` or `bridge`".into(),
            ))
        }
    };
    let mut e = Elem::new("interface").with_attr("type", ty);
    if let Some(m) = &nic.mac {
        e.push(Elem::new("mac").with_attr("address", m.to_ascii_lowercase()));
    }
    e.push(source);
    e.push(Elem::new("model").with_attr("type", nic.model.clone().unwrap_or_else(|| "virtio".into())));
    Ok(e)
}

/// Make an existing `<interface>` say what `want` says; its MAC stays unless one is given.
fn merge_nic(have: &mut Elem, want: &Elem) {
    if have.attr("type") != want.attr("type") {
        if let Some(t) = want.attr("type") {
            have.set_attr("type", t);
        }
    }
    for child in ["source", "model", "mac"] {
        if let Some(w) = want.child(child) {
            let differs = have.child(child).map(|h| h.attrs != w.attrs).unwrap_or(true);
            if differs {
                match have
                    .children
                    .iter()
                    .position(|c| matches!(c, super::xml::XmlNode::Elem(e) if e.name == child))
                {
                    Some(i) => have.children[i] = super::xml::XmlNode::Elem(w.clone()),
                    None => have.push(w.clone()),
                }
            }
        }
    }
}

/// libvirt's own normalised form of a requested domain XML, for comparing it
/// with an existing definition: memory units, machine aliases (`q35` ->
/// `pc-q35-10.0`), MAC case, the controllers and addresses libvirt adds.
/// libvirt has no call that normalises without defining, so the request is
/// defined under a unique scratch name (without its UUID), read back and
/// undefined again (in check mode too: nothing of it remains). The result
/// carries the existing domain's name, UUID and the MACs the request left
/// to libvirt, so it can be compared with `have` and defined as is.
async fn normalised(virsh: &Virsh<'_>, want: &Elem, have: &Elem, name: &str) -> Result<Elem, ModuleError> {
    let scratch = format!("{name}-rigger-probe-{:016x}", rand::random::<u64>());
    let mut probe = want.clone();
    probe.remove_children("uuid");
    if let Some(n) = probe.child_mut("name") {
        n.set_text(scratch.clone());
    }
    virsh.run_xml(&["define"], &probe.to_xml()).await?;
    let read = virsh.run(&["dumpxml", "--inactive", &scratch]).await;
    // --keep-nvram: a scratch domain never ran, and an nvram path given in
    // the request may be the real domain's file.
    let undefined = virsh.run(&["undefine", "--keep-nvram", &scratch]).await;
    let text = read?;
    undefined?;
    let mut norm = Elem::parse(&text.replace(&scratch, name))
        .map_err(|e| ModuleError::Failed(format!("virt_domain: {e} (from virsh dumpxml {scratch})")))?;
    norm.remove_children("uuid");
    // MACs libvirt made up for the scratch copy are not part of the request.
    let want_has_mac: Vec<bool> = want
        .path("devices")
        .map(|d| d.elems_named("interface").map(|i| i.child("mac").is_some()).collect())
        .unwrap_or_default();
    if let Some(devs) = norm.child_mut("devices") {
        for (i, iface) in devs.elems_mut().filter(|e| e.name == "interface").enumerate() {
            if !want_has_mac.get(i).copied().unwrap_or(false) {
                iface.remove_children("mac");
            }
        }
    }
    Ok(keep_identity(norm, have))
}

/// A user XML for an existing domain keeps the domain's UUID and NIC MACs.
fn keep_identity(mut want: Elem, have: &Elem) -> Elem {
    if want.child("uuid").is_none() {
        if let Some(u) = have.child("uuid") {
            want.children.insert(0, super::xml::XmlNode::Elem(u.clone()));
        }
    }
    let macs: Vec<Elem> = have
        .path("devices")
        .map(|d| {
            d.elems_named("interface")
                .filter_map(|i| i.child("mac").cloned())
                .collect()
        })
        .unwrap_or_default();
    if let Some(devs) = want.child_mut("devices") {
        for (i, iface) in devs.elems_mut().filter(|e| e.name == "interface").enumerate() {
            if iface.child("mac").is_none() {
                if let Some(m) = macs.get(i) {
                    iface.children.insert(0, super::xml::XmlNode::Elem(m.clone()));
                }
            }
        }
    }
    want
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Params {
        let Value::Object(m) = v else { panic!() };
        parse_params(&DOC, m).unwrap()
    }

    #[test]
    fn kvm_is_used_only_where_it_runs_ordinary_guests() {
        // Hardware KVM (Intel, AMD): used.
        assert_eq!(kvm_unusable("KVM|dev\nKVM|mod|kvm_intel\nKVM|cpu|vmx\n"), None);
        assert_eq!(kvm_unusable("KVM|dev\nKVM|mod|kvm_amd\nKVM|cpu|svm\n"), None);
        // KVM built in without a module directory, CPU flags present: used.
        assert_eq!(kvm_unusable("KVM|dev\nKVM|cpu|vmx\n"), None);
        // This CI machine: a Firecracker VM whose /dev/kvm is kvm_pvm, no vmx.
        let why = kvm_unusable("KVM|dev\nKVM|mod|kvm_pvm\n").unwrap();
        assert!(why.contains("kvm_pvm"), "{why}");
        // No device, or no hardware support.
        assert!(kvm_unusable("").unwrap().contains("no /dev/kvm"));
        assert!(kvm_unusable("KVM|dev\n").unwrap().contains("neither VT-x"));
        // Noise from the shell is ignored.
        assert_eq!(kvm_unusable("motd\nKVM|dev\nKVM|mod|kvm_amd\n"), None);
    }

    #[test]
    fn kvm_probe_reads_this_machine() {
        // The probe script runs under sh and reports what it sees, whatever the host.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(KVM_PROBE)
            .output()
            .unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.contains("KVM|dev"),
            std::path::Path::new("/dev/kvm").exists(),
            "{text}"
        );
        let intel = std::path::Path::new("/sys/module/kvm_intel").is_dir();
        assert_eq!(text.contains("KVM|mod|kvm_intel"), intel, "{text}");
    }

    #[test]
    fn disk_merge_touches_only_what_differs() {
        let have_xml = "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>\
            <source pool='p' volume='a.qcow2'/><target dev='vda' bus='virtio'/>\
            <address type='pci' slot='0x04'/></disk>";
        let mut have = Elem::parse(have_xml).unwrap();
        let spec = DiskSpec {
            volume: Some("a.qcow2".into()),
            pool: Some("p".into()),
            format: Some("qcow2".into()),
            ..Default::default()
        };
        let want = disk_elem(&spec, false, "virtio", "vda").unwrap();
        let orig = have.clone();
        merge_disk(&mut have, &want);
        assert_eq!(have, orig, "same disk: no change");
        let spec2 = DiskSpec {
            cache: Some("none".into()),
            boot_order: Some(1),
            ..spec
        };
        merge_disk(&mut have, &disk_elem(&spec2, false, "virtio", "vda").unwrap());
        assert_eq!(have.path("driver").unwrap().attr("cache"), Some("none"));
        assert_eq!(have.path("boot").unwrap().attr("order"), Some("1"));
        assert!(have.path("address").is_some(), "libvirt's address kept");
    }

    #[test]
    fn subset_and_identity() {
        let have = Elem::parse(
            "<domain type='qemu'><name>a</name><uuid>u1</uuid><memory unit='KiB'>1024</memory>\
             <devices><interface type='network'><mac address='52:54:00:01:02:03'/><source network='n'/></interface></devices></domain>",
        )
        .unwrap();
        let want = Elem::parse("<domain type='qemu'><name>a</name><devices><interface type='network'><source network='n'/></interface></devices></domain>").unwrap();
        assert!(is_subset(&want, &have));
        let want2 = Elem::parse("<domain type='qemu'><name>a</name><memory unit='KiB'>2048</memory><devices><interface type='network'><source network='n'/></interface></devices></domain>").unwrap();
        assert!(!is_subset(&want2, &have));
        let kept = keep_identity(want2, &have);
        assert_eq!(kept.child_text("uuid").as_deref(), Some("u1"));
        assert_eq!(
            kept.path("devices/interface/mac").and_then(|m| m.attr("address")),
            Some("52:54:00:01:02:03")
        );
    }

    #[test]
    fn params_parse_and_memory_units() {
        let p = params(json!({"name": "a", "memory": "1G", "vcpus": "2", "nics": [{"network": "default"}]}));
        assert_eq!(memory_kib(p.memory.as_deref().unwrap()).unwrap(), 1024 * 1024);
        assert_eq!(memory_kib("512").unwrap(), 512 * 1024);
        assert!(p.has_structure());
        let Value::Object(m) = json!({"name": "a", "disks": [{"volum": "x"}]}) else {
            panic!()
        };
        assert!(parse_params::<Params>(&DOC, m).is_err());
        assert!(machine_matches("pc", "pc-i440fx-10.0"));
        assert!(!machine_matches("q35", "pc-i440fx-10.0"));
        assert!(nic_elem(&NicSpec::default()).is_err());
    }
}
