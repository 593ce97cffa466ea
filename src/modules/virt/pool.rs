//! `virt_pool` (alias `community.libvirt.virt_pool`): libvirt storage pools.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::virsh::{is_subset, xml_diff, Virsh, VirshSteps, URI_OPTION};
use super::xml::{Elem, XmlNode};
use crate::connection::sh_quote;
use crate::modules::args::de_string_list;
use crate::modules::{
    parse_params, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Pool name."),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`present`: defined. `active`: defined, built and started. `inactive`: defined, stopped. \
`absent`/`undefined`: stopped and undefined (data kept). `deleted`: its storage deleted (`pool-delete`) and undefined.",
    )
    .choices(&["present", "active", "inactive", "absent", "undefined", "deleted"])
    .default("present"),
    OptionDoc::new(
        "command",
        OptKind::Str,
        "community.libvirt.virt_pool compatibility: `define`, `build`, `create`/`start`, `stop`/`destroy`, \
`delete` (its storage; the definition stays), `undefine`, `refresh`, and the read-only `status`, `get_xml`, `list_pools`, `facts` \
(sets `ansible_libvirt_pools`) and `info` (returns `pools`).",
    )
    .choices(&[
        "facts",
        "info",
        "define",
        "build",
        "create",
        "start",
        "stop",
        "destroy",
        "delete",
        "undefine",
        "refresh",
        "status",
        "get_xml",
        "list_pools",
    ]),
    OptionDoc::new(
        "xml",
        OptKind::Str,
        "A full pool XML, instead of the structured options.",
    ),
    OptionDoc::new("type", OptKind::Str, "Pool type.")
        .choices(&["dir", "netfs", "logical", "iscsi"])
        .default("dir"),
    OptionDoc::new(
        "path",
        OptKind::Path,
        "Target path (the directory, mount point or /dev/VG).",
    ),
    OptionDoc::new("source_host", OptKind::Str, "netfs/iscsi: the server."),
    OptionDoc::new(
        "source_path",
        OptKind::Str,
        "netfs: the exported directory; iscsi: the target IQN.",
    ),
    OptionDoc::new(
        "source_format",
        OptKind::Str,
        "netfs: `nfs` (default) / `glusterfs` / `cifs`.",
    ),
    OptionDoc::new("source_name", OptKind::Str, "logical: the volume group name."),
    OptionDoc::new(
        "source_devices",
        OptKind::List,
        "logical: physical volumes (device paths).",
    ),
    OptionDoc::new("autostart", OptKind::Bool, "Start the pool when libvirtd starts."),
    OptionDoc::new(
        "build",
        OptKind::Bool,
        "Run `pool-build` before the first start (creates a dir pool's directory, a netfs mount point, \
a logical pool's VG). Default: true for `dir` and `netfs`.",
    ),
    OptionDoc::new(
        "refresh",
        OptKind::Bool,
        "Rescan the pool's volumes (never reports a change).",
    )
    .default("false"),
    OptionDoc::new(
        "mode",
        OptKind::Str,
        "community.libvirt compatibility; accepted and ignored.",
    ),
    URI_OPTION,
];

static DOC: ModuleDoc = ModuleDoc {
    name: "virt_pool",
    aliases: &["community.libvirt.virt_pool"],
    short: "Manage libvirt storage pools",
    description: "Defines `dir`, `netfs`, `logical` and `iscsi` pools from structured options (or XML), \
builds, starts, autostarts, refreshes, stops, deletes and undefines them. An existing pool is redefined \
only when the wanted definition is not already contained in `virsh pool-dumpxml --inactive` (its UUID kept).",
    free_form: false,
    options: OPTIONS,
    examples:
        "- virt_pool:\n    name: vms\n    type: dir\n    path: /srv/vms\n    state: active\n    autostart: true\n",
    returns: &[
        ReturnDoc {
            name: "state",
            description: "`running`, `inactive` or `absent` after the task",
        },
        ReturnDoc {
            name: "status / get_xml / list_pools",
            description: "results of the read-only commands",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
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
    #[serde(default, rename = "type")]
    pool_type: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    source_host: Option<String>,
    #[serde(default)]
    source_path: Option<String>,
    #[serde(default)]
    source_format: Option<String>,
    #[serde(default)]
    source_name: Option<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    source_devices: Vec<String>,
    #[serde(default)]
    autostart: Option<bool>,
    #[serde(default)]
    build: Option<bool>,
    #[serde(default)]
    refresh: Option<bool>,
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    uri: Option<String>,
}

/// The pool XML the structured options describe (`None` when they describe nothing).
fn wanted_xml(name: &str, p: &Params) -> Result<Option<Elem>, ModuleError> {
    if let Some(x) = &p.xml {
        return Elem::parse(x)
            .map(Some)
            .map_err(|e| ModuleError::Args(format!("virt_pool: xml: {e}")));
    }
    let Some(path) = &p.path else { return Ok(None) };
    let ty = p.pool_type.clone().unwrap_or_else(|| "dir".into());
    let mut source = Elem::new("source");
    match ty.as_str() {
        "dir" => {}
        "netfs" => {
            let (Some(h), Some(d)) = (&p.source_host, &p.source_path) else {
                return Err(ModuleError::Args(
                    "virt_pool: a netfs pool needs `source_host` and `source_path`".into(),
                ));
            };
            source.push(Elem::new("host").with_attr("name", h.clone()));
            source.push(Elem::new("dir").with_attr("path", d.clone()));
            source.push(Elem::new("format").with_attr("type", p.source_format.clone().unwrap_or("nfs".into())));
        }
        "logical" => {
            for d in &p.source_devices {
                source.push(Elem::new("device").with_attr("path", d.clone()));
            }
            source.push(Elem::new("name").with_text(p.source_name.clone().unwrap_or_else(|| name.to_string())));
            source.push(Elem::new("format").with_attr("type", "lvm2"));
        }
        "iscsi" => {
            let (Some(h), Some(iqn)) = (&p.source_host, &p.source_path) else {
                return Err(ModuleError::Args(
                    "virt_pool: an iscsi pool needs `source_host` and `source_path` (the target IQN)".into(),
                ));
            };
            source.push(Elem::new("host").with_attr("name", h.clone()));
            source.push(Elem::new("device").with_attr("path", iqn.clone()));
        }
        other => return Err(ModuleError::Args(format!("virt_pool: unsupported type `{other}`"))),
    }
    let mut pool = Elem::new("pool")
        .with_attr("type", ty)
        .with_child(Elem::new("name").with_text(name));
    if !source.children.is_empty() {
        pool.push(source);
    }
    pool.push(Elem::new("target").with_child(Elem::new("path").with_text(path.clone())));
    Ok(Some(pool))
}

/// (active, autostart) from `virsh pool-info`, or `None` when undefined.
async fn pool_status(virsh: &Virsh<'_>, name: &str) -> Result<Option<(bool, bool)>, ModuleError> {
    let out = virsh.try_run(&["pool-info", name]).await?;
    if !out.ok {
        if super::virsh::is_not_found(&out.stderr) {
            return Ok(None);
        }
        return Err(virsh.fail(&["pool-info", name], &out.stderr));
    }
    let field = |k: &str| {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
            .unwrap_or_default()
    };
    Ok(Some((field("State:") == "running", field("Autostart:") == "yes")))
}

/// `virt_pool`'s `facts`/`info`: per pool the fields community.libvirt.virt_pool
/// reports (sizes in bytes, as strings).
async fn pools_info(virsh: &Virsh<'_>) -> Result<Value, ModuleError> {
    let names: Vec<String> = virsh
        .run(&["pool-list", "--all", "--name"])
        .await?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let mut all = Map::new();
    for name in names {
        let info = virsh.run(&["pool-info", "--bytes", &name]).await?;
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        let status = field("State:");
        let active = status == "running";
        let mut e = Map::new();
        e.insert("status".into(), json!(status));
        for (key, label) in [
            ("size_total", "Capacity:"),
            ("size_used", "Allocation:"),
            ("size_available", "Available:"),
        ] {
            let v = field(label);
            e.insert(key.into(), json!(if v.is_empty() { "0".to_string() } else { v }));
        }
        e.insert("autostart".into(), json!(field("Autostart:")));
        e.insert("persistent".into(), json!(field("Persistent:")));
        e.insert("state".into(), json!(if active { "active" } else { "inactive" }));
        e.insert("uuid".into(), json!(field("UUID:")));
        if active {
            let vols: Vec<String> = virsh
                .run(&["vol-list", &name])
                .await?
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .map(String::from)
                .collect();
            e.insert("volume_count".into(), json!(vols.len()));
            e.insert("volumes".into(), json!(vols));
        } else {
            e.insert("volume_count".into(), json!(-1));
        }
        if let Some(x) = virsh.xml(&["pool-dumpxml", &name]).await? {
            if let Some(t) = x.attr("type") {
                e.insert("type".into(), json!(t));
            }
            if let Some(p) = x.path("target/path") {
                e.insert("path".into(), json!(p.text()));
            }
            if let Some(h) = x.path("source/host").and_then(|h| h.attr("name")) {
                e.insert("host".into(), json!(h));
            }
            if let Some(d) = x.path("source/dir").and_then(|d| d.attr("path")) {
                e.insert("source_path".into(), json!(d));
            }
            if let Some(f) = x.path("source/format").and_then(|f| f.attr("type")) {
                e.insert("format".into(), json!(f));
            }
            let devices: Vec<&str> = x
                .child("source")
                .map(|s| s.elems_named("device").filter_map(|d| d.attr("path")).collect())
                .unwrap_or_default();
            if !devices.is_empty() {
                e.insert("devices".into(), json!(devices));
            }
        }
        all.insert(name, Value::Object(e));
    }
    Ok(Value::Object(all))
}

/// A pool definition without the sizes libvirt reports (`capacity`,
/// `allocation`, `available`): they are state, not configuration (libvirt
/// ignores them on define), so they do not make a definition differ.
fn without_sizes(x: &Elem) -> Elem {
    let mut x = x.clone();
    for k in ["capacity", "allocation", "available"] {
        x.remove_children(k);
    }
    x
}

/// The target path of a pool: from its current definition, else the wanted one.
fn pool_target(before: &Option<Elem>, want_path: &Option<String>) -> Option<String> {
    before
        .as_ref()
        .and_then(|b| b.path("target/path"))
        .map(Elem::text)
        .or_else(|| want_path.clone())
        .filter(|p| !p.is_empty())
}

async fn dir_exists(ctx: &ModuleCtx<'_>, path: &str) -> Result<bool, ModuleError> {
    Ok(ctx.run(&format!("test -d {}", sh_quote(path))).await?.status == 0)
}

/// `command: delete` (community.libvirt.virt_pool): delete the pool's storage
/// (`pool-delete`), keeping its definition. A dir/netfs pool whose target
/// directory is gone has nothing left to delete.
async fn delete_storage(ctx: &ModuleCtx<'_>, virsh: &Virsh<'_>, name: &str) -> Result<Plan, ModuleError> {
    let Some(def) = virsh.xml(&["pool-dumpxml", "--inactive", name]).await? else {
        return Err(ModuleError::Failed(format!(
            "virt_pool: pool `{name}` is not defined on {}",
            ctx.host
        )));
    };
    let gone = match (def.attr("type"), pool_target(&Some(def.clone()), &None)) {
        (Some("dir" | "netfs"), Some(path)) => !dir_exists(ctx, &path).await?,
        _ => false,
    };
    if gone {
        return Ok(Plan::Done(ModuleOutcome::ok()));
    }
    let mut steps = VirshSteps::new(virsh);
    steps.run(&["pool-delete", name]);
    let mut out = ModuleOutcome::ok().with_diff(Diff {
        before_header: format!("pool {name}"),
        after_header: format!("pool {name}"),
        before: "storage: present\n".into(),
        after: "storage: deleted\n".into(),
    });
    out.changed = true;
    Ok(steps.plan(out))
}

pub struct VirtPoolModule;

#[async_trait]
impl Module for VirtPoolModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let mut p: Params = parse_params(&DOC, args)?;
        let _ = &p.mode;
        let virsh = Virsh::new(ctx, p.uri.as_deref(), "virt_pool");
        if p.command.as_deref() == Some("list_pools") {
            let out = virsh.run(&["pool-list", "--all", "--name"]).await?;
            let names: Vec<&str> = out.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            return Ok(Plan::Done(ModuleOutcome::ok().with("list_pools", json!(names))));
        }
        if let Some(cmd @ ("facts" | "info")) = p.command.as_deref() {
            let pools = pools_info(&virsh).await?;
            return Ok(Plan::Done(if cmd == "facts" {
                ModuleOutcome::ok().with("ansible_facts", json!({ "ansible_libvirt_pools": pools }))
            } else {
                ModuleOutcome::ok().with("pools", pools)
            }));
        }
        let name = p
            .name
            .clone()
            .or_else(|| p.xml.as_deref().and_then(|x| Elem::parse(x).ok()?.child_text("name")))
            .ok_or_else(|| ModuleError::Args("virt_pool: `name` is required".into()))?;
        let mut force_build = false;
        match p.command.as_deref() {
            None => {}
            Some("status") => {
                let st = match pool_status(&virsh, &name).await? {
                    Some((true, _)) => "running",
                    Some((false, _)) => "inactive",
                    None => "absent",
                };
                return Ok(Plan::Done(ModuleOutcome::ok().with("status", st)));
            }
            Some("get_xml") => {
                return Ok(Plan::Done(
                    ModuleOutcome::ok().with("get_xml", virsh.run(&["pool-dumpxml", &name]).await?),
                ))
            }
            Some("define") => p.state = Some("present".into()),
            Some("build") => {
                p.state = Some("present".into());
                force_build = true;
            }
            Some("create" | "start") => p.state = Some("active".into()),
            Some("stop" | "destroy") => p.state = Some("inactive".into()),
            Some("delete") => return delete_storage(ctx, &virsh, &name).await,
            Some("undefine") => p.state = Some("absent".into()),
            Some("refresh") => p.refresh = Some(true),
            Some(other) => return Err(ModuleError::Args(format!("virt_pool: unknown command `{other}`"))),
        }
        let state = p.state.clone().unwrap_or_else(|| "present".into());
        let status = pool_status(&virsh, &name).await?;
        let mut out = ModuleOutcome::ok();
        let mut steps = VirshSteps::new(&virsh);
        let st_name = |s: Option<(bool, bool)>| match s {
            Some((true, _)) => "running",
            Some((false, _)) => "inactive",
            None => "absent",
        };

        if matches!(state.as_str(), "absent" | "undefined" | "deleted") {
            let Some((active, _)) = status else {
                return Ok(Plan::Done(out.with("state", "absent")));
            };
            out.changed = true;
            out = out.with_diff(Diff {
                before_header: format!("pool {name}"),
                after_header: format!("pool {name}"),
                before: format!("state: {}\n", st_name(status)),
                after: format!(
                    "state: absent{}\n",
                    if state == "deleted" { " (storage deleted)" } else { "" }
                ),
            });
            if active {
                steps.run(&["pool-destroy", &name]);
            }
            if state == "deleted" {
                steps.run(&["pool-delete", &name]);
            }
            steps.run(&["pool-undefine", &name]);
            return Ok(steps.plan(out.with("state", "absent")));
        }

        // Definition.
        let want = wanted_xml(&name, &p)?;
        let want_path = want.as_ref().and_then(|w| w.path("target/path")).map(Elem::text);
        if let Some(w) = &want {
            if w.child_text("name").as_deref() != Some(name.as_str()) {
                return Err(ModuleError::Args(format!(
                    "virt_pool: the xml's <name> is not `{name}`"
                )));
            }
        }
        let before = if status.is_some() {
            virsh.xml(&["pool-dumpxml", "--inactive", &name]).await?
        } else {
            None
        };
        let mut defined = status.is_some();
        if let Some(w) = want {
            let redefine = match &before {
                Some(b) => !is_subset(&without_sizes(&w), b),
                None => true,
            };
            if redefine {
                let mut new = w;
                if let Some(u) = before.as_ref().and_then(|b| b.child("uuid")) {
                    if new.child("uuid").is_none() {
                        new.children.insert(1, XmlNode::Elem(u.clone()));
                    }
                }
                out.changed = true;
                out = out.with_diff(xml_diff(
                    &format!("pool {name}"),
                    before.as_ref().map(Elem::to_xml).as_deref(),
                    Some(&new.to_xml()),
                ));
                if status.is_some_and(|s| s.0) {
                    out = out.with("restart_required", true).with_msg(format!(
                        "pool `{name}` is running: its new definition applies after a stop and start"
                    ));
                }
                steps.xml(&["pool-define"], new.to_xml());
                defined = true;
            }
        } else if status.is_none() {
            return Err(ModuleError::Failed(format!(
                "virt_pool: pool `{name}` is not defined on {}; give `path` (and `type`) or `xml`",
                ctx.host
            )));
        }
        let _ = defined;

        let pool_type = before
            .as_ref()
            .and_then(|b| b.attr("type").map(String::from))
            .or(p.pool_type.clone())
            .unwrap_or_else(|| "dir".into());
        let active = status.is_some_and(|s| s.0);
        let want_build = force_build || p.build.unwrap_or(matches!(pool_type.as_str(), "dir" | "netfs"));
        let mut now_active = active;
        match state.as_str() {
            "active" if !active => {
                out.changed = true;
                now_active = true;
                out = out.with_diff(Diff {
                    before_header: format!("pool {name}"),
                    after_header: format!("pool {name}"),
                    before: format!("state: {}\n", st_name(status)),
                    after: "state: running\n".into(),
                });
                if want_build {
                    steps.run(&["pool-build", &name]);
                }
                steps.run(&["pool-start", &name]);
            }
            "inactive" if active => {
                out.changed = true;
                now_active = false;
                steps.run(&["pool-destroy", &name]);
            }
            "present" if force_build => {
                // A dir/netfs pool is built when its target directory exists:
                // building it again changes nothing.
                let built = match (pool_type.as_str(), pool_target(&before, &want_path)) {
                    ("dir" | "netfs", Some(path)) => dir_exists(ctx, &path).await?,
                    _ => false,
                };
                if !built {
                    out.changed = true;
                    steps.run(&["pool-build", &name]);
                }
            }
            _ => {}
        }
        if let Some(want) = p.autostart {
            let have = status.is_some_and(|s| s.1);
            if have != want {
                out.changed = true;
                let mut a = vec!["pool-autostart", name.as_str()];
                if !want {
                    a.push("--disable");
                }
                steps.run(&a);
            }
        }
        // A refresh changes nothing the task reports (see VirshSteps::plan).
        if p.refresh.unwrap_or(false) && now_active {
            steps.run(&["pool-refresh", &name]);
        }
        Ok(steps.plan(out.with("state", if now_active { "running" } else { "inactive" })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Params {
        let Value::Object(m) = v else { panic!() };
        parse_params(&DOC, m).unwrap()
    }

    #[test]
    fn structured_pools_to_xml() {
        let x = wanted_xml("vms", &params(json!({"name": "vms", "path": "/srv/vms"})))
            .unwrap()
            .unwrap();
        assert_eq!(
            x.to_xml(),
            "<pool type='dir'>\n  <name>vms</name>\n  <target>\n    <path>/srv/vms</path>\n  </target>\n</pool>\n"
        );
        let n = wanted_xml(
            "n",
            &params(json!({"name": "n", "type": "netfs", "path": "/mnt/n", "source_host": "127.0.0.1", "source_path": "/export"})),
        )
        .unwrap()
        .unwrap();
        assert_eq!(n.path("source/dir").and_then(|d| d.attr("path")), Some("/export"));
        assert_eq!(n.path("source/format").and_then(|d| d.attr("type")), Some("nfs"));
        assert!(wanted_xml(
            "n",
            &params(json!({"name": "n", "type": "iscsi", "path": "/dev/disk/by-path"}))
        )
        .is_err());
        // A defined pool with libvirt's additions still contains the wanted definition.
        let have = Elem::parse(
            "<pool type='dir'><name>vms</name><uuid>u</uuid><capacity unit='bytes'>0</capacity>\
             <source></source><target><path>/srv/vms</path><permissions><mode>0755</mode></permissions></target></pool>",
        )
        .unwrap();
        assert!(is_subset(&x, &have));
    }
}
