//! `virt_volume`: storage volumes in a libvirt pool.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::virsh::{Virsh, URI_OPTION};
use super::xml::Elem;
use crate::connection::sh_quote;
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};
use crate::size::parse_size;

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Volume name, e.g. `web1.qcow2`.").required(),
    OptionDoc::new("pool", OptKind::Str, "The storage pool.").required(),
    OptionDoc::new("state", OptKind::Str, "Whether the volume exists.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new(
        "size",
        OptKind::Str,
        "Capacity (`10G`, `512M`, bytes). Grows an existing volume; shrinking needs `force`. \
Defaults to the size of the backing/cloned/uploaded image.",
    ),
    OptionDoc::new("format", OptKind::Str, "Image format.")
        .choices(&["qcow2", "raw"])
        .default("qcow2"),
    OptionDoc::new(
        "backing",
        OptKind::Str,
        "Linked clone: a volume of the same pool, or a path, used as the qcow2 backing file.",
    ),
    OptionDoc::new(
        "clone_from",
        OptKind::Str,
        "Full copy of this volume of the same pool (`virsh vol-clone`).",
    ),
    OptionDoc::new(
        "upload",
        OptKind::Path,
        "A file on the hypervisor whose bytes become the new volume's content (`virsh vol-upload`).",
    ),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Allow shrinking (data past the new end is lost).",
    )
    .default("false"),
    URI_OPTION,
];

static DOC: ModuleDoc = ModuleDoc {
    name: "virt_volume",
    aliases: &[],
    short: "Manage libvirt storage volumes",
    description: "Creates qcow2/raw volumes in a pool: empty with a size, as a linked clone over a backing \
file, as a full copy of another volume, or from an uploaded image; grows (or with `force` shrinks) \
them; deletes them. Idempotent by comparing the volume's capacity, format and backing file \
(`virsh vol-dumpxml`).",
    free_form: false,
    options: OPTIONS,
    examples:
        "- virt_volume:\n    pool: default\n    name: web1.qcow2\n    backing: debian-12-base.qcow2\n    size: 20G\n",
    returns: &[
        ReturnDoc {
            name: "path",
            description: "the volume's path on the hypervisor",
        },
        ReturnDoc {
            name: "capacity",
            description: "capacity in bytes after the task",
        },
        ReturnDoc {
            name: "format",
            description: "image format",
        },
        ReturnDoc {
            name: "backing",
            description: "backing file path, if any",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    pool: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    backing: Option<String>,
    #[serde(default)]
    clone_from: Option<String>,
    #[serde(default)]
    upload: Option<String>,
    #[serde(default)]
    force: Option<bool>,
    #[serde(default)]
    uri: Option<String>,
}

/// What `vol-dumpxml` says about a volume.
#[derive(Debug, Clone, PartialEq)]
pub struct VolInfo {
    pub path: String,
    pub capacity: u64,
    pub allocation: u64,
    pub format: String,
    pub backing: Option<String>,
}

pub fn vol_info(x: &Elem) -> VolInfo {
    let num = |p: &str| x.path(p).map(|e| e.text()).and_then(|t| t.parse().ok()).unwrap_or(0);
    VolInfo {
        path: x.path("target/path").map(Elem::text).unwrap_or_default(),
        capacity: num("capacity"),
        allocation: num("allocation"),
        format: x
            .path("target/format")
            .and_then(|f| f.attr("type"))
            .unwrap_or("raw")
            .to_string(),
        backing: x.path("backingStore/path").map(Elem::text).filter(|s| !s.is_empty()),
    }
}

pub async fn query_volume(virsh: &Virsh<'_>, pool: &str, name: &str) -> Result<Option<VolInfo>, ModuleError> {
    Ok(virsh
        .xml(&["vol-dumpxml", "--pool", pool, name])
        .await?
        .map(|x| vol_info(&x)))
}

fn round512(n: u64) -> u64 {
    n.div_ceil(512) * 512
}

pub struct VirtVolumeModule;

#[async_trait]
impl Module for VirtVolumeModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let virsh = Virsh::new(ctx, p.uri.as_deref(), "virt_volume");
        let state = p.state.as_deref().unwrap_or("present");
        let current = query_volume(&virsh, &p.pool, &p.name).await?;
        let header = format!("volume {}/{}", p.pool, p.name);
        let describe = |v: &VolInfo| {
            format!(
                "capacity: {}\nformat: {}\nbacking: {}\n",
                v.capacity,
                v.format,
                v.backing.as_deref().unwrap_or("")
            )
        };
        let diff = |before: String, after: String| Diff {
            before_header: header.clone(),
            after_header: header.clone(),
            before,
            after,
        };

        if state == "absent" {
            let Some(cur) = current else {
                return Ok(Plan::Done(ModuleOutcome::ok()));
            };
            let delete = VolumeChange {
                uri: virsh.uri.clone(),
                pool: p.pool.clone(),
                name: p.name.clone(),
                step: Step::Delete,
            };
            return Ok(Plan::change(
                ModuleOutcome::ok().with_diff(diff(describe(&cur), String::new())),
                delete,
            ));
        }

        let want_size = p
            .size
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(|e| ModuleError::Args(format!("virt_volume: size: {e}")))?;
        let format = p.format.clone().unwrap_or_else(|| "qcow2".into());
        let sources = [p.backing.is_some(), p.clone_from.is_some(), p.upload.is_some()];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(ModuleError::Args(
                "virt_volume: give at most one of `backing`, `clone_from`, `upload`".into(),
            ));
        }
        let backing = match &p.backing {
            Some(b) => Some(resolve_backing(&virsh, &p.pool, b).await?),
            None => None,
        };

        let Some(cur) = current else {
            // Create.
            let size = match (want_size, &backing, &p.clone_from, &p.upload) {
                (Some(s), ..) => Some(s),
                (None, Some(b), _, _) => Some(b.capacity),
                (None, None, Some(_), _) => None,
                (None, None, None, Some(f)) => Some(file_size(ctx, f).await?),
                (None, None, None, None) => {
                    return Err(ModuleError::Args(format!(
                        "virt_volume: `size` is required to create {}/{}",
                        p.pool, p.name
                    )))
                }
            };
            if backing.is_some() && format != "qcow2" {
                return Err(ModuleError::Args(
                    "virt_volume: a volume with a backing file must be qcow2".into(),
                ));
            }
            let after = VolInfo {
                path: String::new(),
                capacity: size.unwrap_or(0),
                allocation: 0,
                format: format.clone(),
                backing: backing.as_ref().map(|b| b.path.clone()),
            };
            let out = ModuleOutcome::ok().with_diff(diff(String::new(), describe(&after)));
            let create = match &p.clone_from {
                Some(src) => Create::Clone { src: src.clone() },
                None => {
                    let mut x = Elem::new("volume")
                        .with_child(Elem::new("name").with_text(p.name.clone()))
                        .with_child(
                            Elem::new("capacity")
                                .with_attr("unit", "bytes")
                                .with_text(size.unwrap_or(0).to_string()),
                        )
                        .with_child(
                            Elem::new("target").with_child(Elem::new("format").with_attr("type", format.clone())),
                        );
                    if let Some(b) = &backing {
                        x.push(
                            Elem::new("backingStore")
                                .with_child(Elem::new("path").with_text(b.path.clone()))
                                .with_child(Elem::new("format").with_attr("type", b.format.clone())),
                        );
                    }
                    Create::New {
                        xml: x.to_xml(),
                        upload: p.upload.clone(),
                    }
                }
            };
            let create = VolumeChange {
                uri: virsh.uri.clone(),
                pool: p.pool.clone(),
                name: p.name.clone(),
                step: Step::Create { create, want_size },
            };
            // Check mode reports no volume facts: only the creation learns them.
            return Ok(Plan::change(out, create));
        };

        // Exists: check format and backing, then size.
        if p.format.is_some() && cur.format != format {
            return Err(ModuleError::Failed(format!(
                "virt_volume: {}/{} is {}, not {format}; rigger does not convert volumes \
                 (delete it with state=absent first, or convert with qemu-img)",
                p.pool, p.name, cur.format
            )));
        }
        if let Some(b) = &backing {
            if cur.backing.as_deref() != Some(b.path.as_str()) {
                return Err(ModuleError::Failed(format!(
                    "virt_volume: {}/{} has backing file {:?}, not {}; delete it (state=absent) to re-create it",
                    p.pool, p.name, cur.backing, b.path
                )));
            }
        }
        let mut out = ModuleOutcome::ok();
        let mut resize = None;
        let mut after = cur.clone();
        if let Some(s) = want_size {
            let s = round512(s);
            if s != cur.capacity {
                let shrink = s < cur.capacity;
                if shrink && !p.force.unwrap_or(false) {
                    return Err(ModuleError::Failed(format!(
                        "virt_volume: {}/{} is {} bytes; shrinking it to {s} loses data: set `force: true`",
                        p.pool, p.name, cur.capacity
                    )));
                }
                after.capacity = s;
                out = out.with_diff(diff(describe(&cur), describe(&after)));
                resize = Some(VolumeChange {
                    uri: virsh.uri.clone(),
                    pool: p.pool.clone(),
                    name: p.name.clone(),
                    step: Step::Resize { size: s, shrink },
                });
            }
        }
        let out = ret(out, &after);
        Ok(match resize {
            Some(r) => Plan::change(out, r),
            None => Plan::Done(out),
        })
    }
}

/// What a volume's change does.
enum Step {
    /// `vol-delete`.
    Delete,
    /// Create it, then report it as created.
    Create { create: Create, want_size: Option<u64> },
    /// `vol-resize` (to a size rounded to 512 bytes).
    Resize { size: u64, shrink: bool },
}

/// How a new volume is made.
enum Create {
    /// `vol-clone` of a volume of the same pool (grown to `size` afterwards).
    Clone { src: String },
    /// `vol-create` from this XML, then `vol-upload` of a file.
    New { xml: String, upload: Option<String> },
}

/// One volume's change, with virsh on the task's host.
struct VolumeChange {
    uri: String,
    pool: String,
    name: String,
    step: Step,
}

#[async_trait]
impl Change for VolumeChange {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let virsh = Virsh::new(ctx, Some(&self.uri), "virt_volume");
        let (pool, name) = (self.pool.as_str(), self.name.as_str());
        match self.step {
            Step::Delete => {
                virsh.run(&["vol-delete", "--pool", pool, name]).await?;
                Ok(planned)
            }
            Step::Resize { size, shrink } => {
                let size = size.to_string();
                let mut a = vec!["vol-resize", "--pool", pool, name, &size];
                if shrink {
                    a.push("--shrink");
                }
                virsh.run(&a).await?;
                Ok(planned)
            }
            Step::Create { create, want_size } => {
                let cloned = matches!(create, Create::Clone { .. });
                match &create {
                    Create::Clone { src } => {
                        virsh.run(&["vol-clone", "--pool", pool, src, name]).await?;
                    }
                    Create::New { xml, upload } => {
                        virsh.run_xml(&["vol-create", pool], xml).await?;
                        if let Some(f) = upload {
                            virsh.run(&["vol-upload", "--pool", pool, name, f]).await?;
                        }
                    }
                }
                let mut info = query_volume(&virsh, pool, name).await?.ok_or_else(|| {
                    ModuleError::Failed(format!("virt_volume: {pool}/{name} is missing after creation"))
                })?;
                if let Some(s) = want_size {
                    if cloned && round512(s) > info.capacity {
                        virsh.run(&["vol-resize", "--pool", pool, name, &s.to_string()]).await?;
                        info.capacity = s;
                    }
                }
                Ok(ret(planned, &info))
            }
        }
    }
}

fn ret(out: ModuleOutcome, v: &VolInfo) -> ModuleOutcome {
    out.with("path", v.path.clone())
        .with("capacity", v.capacity)
        .with("format", v.format.clone())
        .with("backing", v.backing.clone().map(Value::from).unwrap_or(Value::Null))
}

/// A backing volume name (same pool) or path, with its capacity and format.
async fn resolve_backing(virsh: &Virsh<'_>, pool: &str, b: &str) -> Result<VolInfo, ModuleError> {
    let found = if b.starts_with('/') {
        virsh
            .xml(&["vol-dumpxml", b])
            .await
            .ok()
            .flatten()
            .map(|x| vol_info(&x))
    } else {
        query_volume(virsh, pool, b).await?
    };
    if let Some(v) = found {
        return Ok(v);
    }
    if !b.starts_with('/') {
        return Err(ModuleError::Failed(format!(
            "virt_volume: backing volume `{b}` not found in pool `{pool}`"
        )));
    }
    // A file outside any pool: ask qemu-img.
    let out = virsh
        .ctx
        .run(&format!("qemu-img info --output=json -U {}", sh_quote(b)))
        .await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "virt_volume: backing file {b}: {}",
            out.stderr_str().trim()
        )));
    }
    let j: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| ModuleError::Failed(format!("virt_volume: qemu-img info {b}: {e}")))?;
    Ok(VolInfo {
        path: b.to_string(),
        capacity: j["virtual-size"].as_u64().unwrap_or(0),
        allocation: 0,
        format: j["format"].as_str().unwrap_or("raw").to_string(),
        backing: None,
    })
}

async fn file_size(ctx: &ModuleCtx<'_>, f: &str) -> Result<u64, ModuleError> {
    let out = ctx.run(&format!("stat -L -c %s -- {}", sh_quote(f))).await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "virt_volume: upload: {f}: {}",
            out.stderr_str().trim()
        )));
    }
    out.stdout_str()
        .trim()
        .parse()
        .map_err(|_| ModuleError::Failed(format!("virt_volume: cannot read the size of {f}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vol_info_from_virsh_xml() {
        let x = Elem::parse(
            "<volume type='file'><name>a.qcow2</name><capacity unit='bytes'>1073741824</capacity>\
             <allocation unit='bytes'>196608</allocation><target><path>/p/a.qcow2</path><format type='qcow2'/></target>\
             <backingStore><path>/p/base.qcow2</path><format type='qcow2'/></backingStore></volume>",
        )
        .unwrap();
        let v = vol_info(&x);
        assert_eq!(v.capacity, 1 << 30);
        assert_eq!(v.format, "qcow2");
        assert_eq!(v.backing.as_deref(), Some("/p/base.qcow2"));
        assert_eq!(round512(1000), 1024);
    }
}
