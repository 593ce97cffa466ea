//! `lvg` (volume groups: pvcreate/vgcreate/vgextend/vgreduce/vgremove) and
//! `lvol` (logical volumes: lvcreate/lvextend/lvreduce/lvremove).
//!
//! Creating or resizing a logical volume needs the kernel's device-mapper;
//! where it is missing (containers, some CI kernels) `lvol` says so instead of
//! passing on LVM's "Failure to communicate with kernel device-mapper driver".

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::tools::StorageHost;
use crate::connection::sh_quote;
use crate::modules::args::de_string_list;
use crate::modules::host::text::commands_diff;
use crate::modules::{
    parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};
use crate::shell::{quoted_args, sh_quote_words};
use crate::size::parse_size;

/// Quiets LVM's "File descriptor N leaked" warnings (the SSH session's fds).
const LVM_ENV: &str = "LVM_SUPPRESS_FD_WARNINGS=1";

// ---------------------------------------------------------------------------
// lvg

const LVG_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("vg", OptKind::Str, "Volume group name.").required(),
    OptionDoc::new(
        "pvs",
        OptKind::List,
        "Physical volumes (block devices): made PVs when they are not yet (`pvcreate`), added with \
`vgextend`; PVs of the group not listed are removed with `vgreduce`. Required to create the group.",
    ),
    OptionDoc::new(
        "pesize",
        OptKind::Str,
        "Extent size for a new group (`vgcreate -s`), e.g. `4M`.",
    )
    .default("4M"),
    OptionDoc::new("state", OptKind::Str, "Whether the group should exist.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Remove a group that still holds logical volumes; `pvcreate -f` over other signatures.",
    )
    .default("false"),
];

static LVG_DOC: ModuleDoc = ModuleDoc {
    name: "lvg",
    aliases: &["community.general.lvg"],
    short: "Manage LVM volume groups",
    description: "Creates, extends, reduces and removes a volume group. One query (`pvs` with the \
canonical paths of the wanted devices) decides which of pvcreate/vgcreate/vgextend/vgreduce/vgremove run.",
    free_form: false,
    options: LVG_OPTIONS,
    examples: "- lvg:\n    vg: data\n    pvs: [/dev/sdb, /dev/sdc]\n- lvg: { vg: old, state: absent, force: true }\n",
    returns: &[
        ReturnDoc {
            name: "pvs",
            description: "the group's physical volumes after the task",
        },
        ReturnDoc {
            name: "commands",
            description: "the commands run (or, in check mode, that would run)",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LvgParams {
    vg: String,
    #[serde(default, deserialize_with = "de_string_list")]
    pvs: Vec<String>,
    #[serde(default)]
    pesize: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    force: bool,
}

/// What the host says: canonical paths of the wanted devices, every PV with
/// its group (`""` when in none), and the groups with their LV counts.
#[derive(Debug, Default)]
struct LvmState {
    wanted: Vec<String>,
    pvs: Vec<(String, String)>,
    vgs: Vec<(String, u64)>,
}

fn parse_lvm_state(out: &str) -> LvmState {
    let mut st = LvmState::default();
    let mut section = 0;
    for l in out.lines() {
        let t = l.trim();
        if t == "--pvs--" {
            section = 1;
            continue;
        }
        if t == "--vgs--" {
            section = 2;
            continue;
        }
        if t.is_empty() {
            continue;
        }
        match section {
            0 => st.wanted.push(t.to_string()),
            1 => {
                let (a, b) = t.split_once('|').unwrap_or((t, ""));
                st.pvs.push((a.trim().to_string(), b.trim().to_string()));
            }
            _ => {
                let (a, b) = t.split_once('|').unwrap_or((t, "0"));
                st.vgs.push((a.trim().to_string(), b.trim().parse().unwrap_or(0)));
            }
        }
    }
    st
}

fn lvg_plan(p: &LvgParams, st: &LvmState) -> Result<Vec<String>, String> {
    let exists = st.vgs.iter().find(|(n, _)| *n == p.vg);
    let lvm = |words: Vec<&str>| format!("{LVM_ENV} {}", sh_quote_words(&words));
    if p.state.as_deref() == Some("absent") {
        return match exists {
            None => Ok(vec![]),
            Some((_, lvs)) if *lvs > 0 && !p.force => Err(format!(
                "volume group {} holds {lvs} logical volume(s); set `force: true` to remove it with them",
                p.vg
            )),
            Some(_) => Ok(vec![lvm(if p.force {
                vec!["vgremove", "-f", "-y", &p.vg]
            } else {
                vec!["vgremove", "-y", &p.vg]
            })]),
        };
    }
    let mut cmds = Vec::new();
    let in_vg = |d: &str| st.pvs.iter().find(|(pv, _)| pv == d).map(|(_, vg)| vg.as_str());
    let mut add = Vec::new();
    for d in &st.wanted {
        match in_vg(d) {
            Some(vg) if vg == p.vg => {}
            Some(vg) if !vg.is_empty() => return Err(format!("{d} already belongs to volume group {vg}")),
            Some(_) => add.push(d.as_str()),
            None => {
                let mut c = vec!["pvcreate", "-y"];
                if p.force {
                    c.push("-f");
                }
                c.push(d);
                cmds.push(lvm(c));
                add.push(d.as_str());
            }
        }
    }
    if exists.is_none() {
        if st.wanted.is_empty() {
            return Err(format!(
                "volume group {} does not exist and no `pvs` are given to create it",
                p.vg
            ));
        }
        let pesize = p.pesize.as_deref().unwrap_or("4M");
        let mut c = vec!["vgcreate", "-s", pesize, &p.vg];
        c.extend(add.iter().copied());
        cmds.push(lvm(c));
        return Ok(cmds);
    }
    if !add.is_empty() {
        let mut c = vec!["vgextend", &p.vg];
        c.extend(add.iter().copied());
        cmds.push(lvm(c));
    }
    if !st.wanted.is_empty() {
        let extra: Vec<&str> = st
            .pvs
            .iter()
            .filter(|(pv, vg)| *vg == p.vg && !st.wanted.contains(pv))
            .map(|(pv, _)| pv.as_str())
            .collect();
        if !extra.is_empty() {
            let mut c = vec!["vgreduce", &p.vg];
            c.extend(extra);
            cmds.push(lvm(c));
        }
    }
    Ok(cmds)
}

pub struct LvgModule;

#[async_trait]
impl Module for LvgModule {
    fn doc(&self) -> &'static ModuleDoc {
        &LVG_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: LvgParams = parse_params(&LVG_DOC, args)?;
        let host = StorageHost::new(ctx, "lvg", "lvm2");
        let mut q = String::new();
        for d in &p.pvs {
            q.push_str(&format!(
                "if [ -e {d} ]; then readlink -f {d}; else echo 'lvg: no such device: '{d} >&2; exit 3; fi; ",
                d = sh_quote(d)
            ));
        }
        q.push_str(&format!(
            "echo --pvs--; {LVM_ENV} pvs --noheadings --separator '|' -o pv_name,vg_name || exit; \
             echo --vgs--; {LVM_ENV} vgs --noheadings --separator '|' -o vg_name,lv_count"
        ));
        let st = parse_lvm_state(&host.run(&q).await?);
        let cmds = lvg_plan(&p, &st).map_err(|e| ModuleError::Failed(format!("lvg: {e}")))?;
        let mut outcome = ModuleOutcome::ok();
        if !cmds.is_empty() {
            outcome = outcome.with_diff(commands_diff(&format!("volume group {}", p.vg), &cmds));
        }
        let pvs: Vec<&String> = if p.state.as_deref() == Some("absent") {
            vec![]
        } else if p.pvs.is_empty() {
            st.pvs.iter().filter(|(_, vg)| *vg == p.vg).map(|(pv, _)| pv).collect()
        } else {
            st.wanted.iter().collect()
        };
        let outcome = outcome.with("pvs", json!(pvs)).with("commands", json!(cmds));
        Ok(match cmds.is_empty() {
            true => Plan::Done(outcome),
            false => Plan::change(outcome, host.commands(cmds)),
        })
    }
}

// ---------------------------------------------------------------------------
// lvol

const LVOL_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("vg", OptKind::Str, "Volume group.").required(),
    OptionDoc::new("lv", OptKind::Str, "Logical volume name.").required(),
    OptionDoc::new(
        "size",
        OptKind::Str,
        "Size: `512M`, `10G` (binary units; `lvcreate -L`) or extents/percentages `100%FREE`, `50%VG` \
(`lvcreate -l`, used only at creation). Required to create.",
    ),
    OptionDoc::new("state", OptKind::Str, "Whether the volume should exist.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new("force", OptKind::Bool, "Allow shrinking and removing (data loss).").default("false"),
    OptionDoc::new(
        "resizefs",
        OptKind::Bool,
        "Resize the file system with the volume (`-r`).",
    )
    .default("false"),
    OptionDoc::new(
        "opts",
        OptKind::Str,
        "Extra `lvcreate` options (`--type raid1 -m 1`), split into words like a shell does; each word is \
passed quoted.",
    ),
];

static LVOL_DOC: ModuleDoc = ModuleDoc {
    name: "lvol",
    aliases: &["community.general.lvol"],
    short: "Manage LVM logical volumes",
    description: "Creates, grows, shrinks (with `force`) and removes a logical volume. Sizes are compared \
in bytes after rounding up to the group's extent size. Creating and resizing need the kernel's \
device-mapper (listed in `/proc/misc`); without it the task fails with that reason before running LVM.",
    free_form: false,
    options: LVOL_OPTIONS,
    examples: "- lvol: { vg: data, lv: vm1, size: 20G }\n- lvol: { vg: data, lv: scratch, size: 100%FREE }\n\
- lvol: { vg: data, lv: old, state: absent, force: true }\n",
    returns: &[
        ReturnDoc {
            name: "size",
            description: "the volume's size in bytes before the task (absent: not returned)",
        },
        ReturnDoc {
            name: "commands",
            description: "the commands run (or, in check mode, that would run)",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LvolParams {
    vg: String,
    lv: String,
    #[serde(default)]
    size: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    resizefs: bool,
    #[serde(default)]
    opts: Option<String>,
}

/// What `lvs`/`vgs` say about the volume and its group.
#[derive(Debug, Default, PartialEq)]
struct LvState {
    /// The volume's size in bytes, `None` when it does not exist.
    size: Option<u64>,
    extent: u64,
    dm: bool,
}

/// The commands for the volume, and whether they need device-mapper.
fn lvol_plan(p: &LvolParams, st: &LvState) -> Result<(Vec<String>, bool), String> {
    let path = format!("{}/{}", p.vg, p.lv);
    let lvm = |s: String| format!("{LVM_ENV} {s}");
    if p.state.as_deref() == Some("absent") {
        return match st.size {
            None => Ok((vec![], false)),
            Some(_) if !p.force => Err(format!("removing {path} destroys its data: set `force: true`")),
            Some(_) => Ok((vec![lvm(sh_quote_words(["lvremove", "-f", &path]))], false)),
        };
    }
    let size = p.size.as_deref();
    let relative = size.is_some_and(|s| s.contains('%'));
    // Options are words for lvcreate, never shell code.
    let opts = match p.opts.as_deref() {
        Some(o) => quoted_args(o).ok_or_else(|| format!("unbalanced quotes in opts `{o}`"))?,
        None => String::new(),
    };
    match (st.size, size) {
        (None, None) => Err(format!("{path} does not exist: `size` is required to create it")),
        (None, Some(s)) => {
            let flag = if relative { "-l" } else { "-L" };
            Ok((
                vec![lvm(format!(
                    "{}{opts} {}",
                    sh_quote_words(["lvcreate", "-y", "-n", &p.lv, flag, s]),
                    sh_quote(&p.vg)
                ))],
                true,
            ))
        }
        (Some(_), None) => Ok((vec![], false)),
        (Some(_), Some(_)) if relative => Ok((vec![], false)),
        (Some(have), Some(s)) => {
            let want = parse_size(s).map_err(|_| format!("invalid size `{s}` (use e.g. 512M, 10G, 100%FREE)"))?;
            let ext = st.extent.max(1);
            let want = want.div_ceil(ext) * ext;
            let r = if p.resizefs { vec!["-r"] } else { vec![] };
            if want > have {
                let mut c = vec!["lvextend"];
                c.extend(&r);
                c.extend(["-L", s, &path]);
                Ok((vec![lvm(sh_quote_words(&c))], true))
            } else if want < have {
                if !p.force {
                    return Err(format!(
                        "{path} is {have} bytes; shrinking it to {want} may destroy data: set `force: true`"
                    ));
                }
                let mut c = vec!["lvreduce", "-f"];
                c.extend(&r);
                c.extend(["-L", s, &path]);
                Ok((vec![lvm(sh_quote_words(&c))], true))
            } else {
                Ok((vec![], false))
            }
        }
    }
}

pub struct LvolModule;

#[async_trait]
impl Module for LvolModule {
    fn doc(&self) -> &'static ModuleDoc {
        &LVOL_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: LvolParams = parse_params(&LVOL_DOC, args)?;
        let host = StorageHost::new(ctx, "lvol", "lvm2");
        let vg = sh_quote(&p.vg);
        let q = format!(
            "if grep -qw device-mapper /proc/misc 2>/dev/null; then echo dm=yes; else echo dm=no; fi; \
             {LVM_ENV} vgs --noheadings --units b --nosuffix -o vg_extent_size {vg} | sed 's/^ */extent=/' || exit; \
             {LVM_ENV} lvs --noheadings --units b --nosuffix --separator '|' -o lv_name,lv_size {vg}"
        );
        let out = host.run(&q).await?;
        let mut st = LvState::default();
        for l in out.lines().map(str::trim) {
            if let Some(v) = l.strip_prefix("dm=") {
                st.dm = v == "yes";
            } else if let Some(v) = l.strip_prefix("extent=") {
                st.extent = v.trim().parse().unwrap_or(0);
            } else if let Some((name, size)) = l.split_once('|') {
                if name.trim() == p.lv {
                    st.size = size.trim().parse().ok();
                }
            }
        }
        let (cmds, needs_dm) = lvol_plan(&p, &st).map_err(|e| ModuleError::Failed(format!("lvol: {e}")))?;
        if needs_dm && !st.dm {
            return Err(ModuleError::Failed(format!(
                "lvol: device-mapper is not available on {} (no `device-mapper` in /proc/misc: the dm_mod \
kernel module is not loaded and cannot be here), so LVM cannot create or resize {}/{}; would run: {}",
                ctx.host,
                p.vg,
                p.lv,
                cmds.join("; ")
            )));
        }
        let mut outcome = ModuleOutcome::ok();
        if !cmds.is_empty() {
            outcome = outcome.with_diff(commands_diff(&format!("logical volume {}/{}", p.vg, p.lv), &cmds));
        }
        if let Some(s) = st.size {
            outcome = outcome.with("size", s);
        }
        let outcome = outcome.with("commands", json!(cmds));
        Ok(match cmds.is_empty() {
            true => Plan::Done(outcome),
            false => Plan::change(outcome, host.commands(cmds)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lvg(v: Value) -> LvgParams {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn lvg_plans() {
        let st = parse_lvm_state(
            "/dev/loop0\n/dev/loop1\n--pvs--\n  /dev/loop0|data\n  /dev/loop1|\n  /dev/loop5|data\n  /dev/loop7|other\n\
--vgs--\n  data|2\n  other|0\n",
        );
        assert_eq!(st.wanted, vec!["/dev/loop0", "/dev/loop1"]);
        let p = lvg(json!({"vg": "data", "pvs": ["/dev/loop0", "/dev/loop1"]}));
        assert_eq!(
            lvg_plan(&p, &st).unwrap(),
            vec![
                "LVM_SUPPRESS_FD_WARNINGS=1 vgextend data /dev/loop1",
                "LVM_SUPPRESS_FD_WARNINGS=1 vgreduce data /dev/loop5"
            ]
        );
        let p = lvg(json!({"vg": "data", "state": "absent"}));
        assert!(lvg_plan(&p, &st).is_err(), "LVs inside, no force");
        let p = lvg(json!({"vg": "other", "state": "absent"}));
        assert_eq!(
            lvg_plan(&p, &st).unwrap(),
            vec!["LVM_SUPPRESS_FD_WARNINGS=1 vgremove -y other"]
        );
        let st = parse_lvm_state("/dev/loop3\n--pvs--\n--vgs--\n");
        let p = lvg(json!({"vg": "new", "pvs": "/dev/loop3", "pesize": "8M"}));
        assert_eq!(
            lvg_plan(&p, &st).unwrap(),
            vec![
                "LVM_SUPPRESS_FD_WARNINGS=1 pvcreate -y /dev/loop3",
                "LVM_SUPPRESS_FD_WARNINGS=1 vgcreate -s 8M new /dev/loop3"
            ]
        );
        let st = parse_lvm_state("/dev/loop7\n--pvs--\n/dev/loop7|other\n--vgs--\nother|0\n");
        assert!(lvg_plan(&p, &st).is_err(), "PV of another group");
    }

    #[test]
    fn lvol_plans() {
        let p: LvolParams = serde_json::from_value(json!({"vg": "data", "lv": "vm1", "size": "10M"})).unwrap();
        let none = LvState {
            size: None,
            extent: 4 << 20,
            dm: false,
        };
        assert_eq!(
            lvol_plan(&p, &none).unwrap(),
            (
                vec!["LVM_SUPPRESS_FD_WARNINGS=1 lvcreate -y -n vm1 -L 10M data".to_string()],
                true
            )
        );
        // 10M rounds up to 12M with 4M extents: already there.
        let at12 = LvState {
            size: Some(12 << 20),
            ..none
        };
        assert_eq!(lvol_plan(&p, &at12).unwrap(), (vec![], false));
        let p: LvolParams =
            serde_json::from_value(json!({"vg": "data", "lv": "vm1", "size": "1G", "resizefs": true})).unwrap();
        assert_eq!(
            lvol_plan(&p, &at12).unwrap().0,
            vec!["LVM_SUPPRESS_FD_WARNINGS=1 lvextend -r -L 1G data/vm1"]
        );
        let p: LvolParams = serde_json::from_value(json!({"vg": "data", "lv": "vm1", "size": "4M"})).unwrap();
        assert!(lvol_plan(&p, &at12).is_err(), "shrink needs force");
        let p: LvolParams =
            serde_json::from_value(json!({"vg": "d", "lv": "x", "size": "100%FREE", "opts": "--type linear"})).unwrap();
        assert_eq!(
            lvol_plan(&p, &LvState::default()).unwrap().0,
            vec!["LVM_SUPPRESS_FD_WARNINGS=1 lvcreate -y -n x -l 100%FREE --type linear d"]
        );
        let p: LvolParams = serde_json::from_value(
            json!({"vg": "d", "lv": "x", "size": "1G", "opts": "--addtag 'a b' $(touch /tmp/x);"}),
        )
        .unwrap();
        assert_eq!(
            lvol_plan(&p, &LvState::default()).unwrap().0,
            vec!["LVM_SUPPRESS_FD_WARNINGS=1 lvcreate -y -n x -L 1G --addtag 'a b' '$(touch' '/tmp/x);' d"]
        );
        let p: LvolParams = serde_json::from_value(json!({"vg": "d", "lv": "x", "state": "absent"})).unwrap();
        assert!(lvol_plan(&p, &at12).is_err());
        assert_eq!(lvol_plan(&p, &LvState::default()).unwrap(), (vec![], false));
    }
}
