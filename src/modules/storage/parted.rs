//! `parted`: partition table and partitions of a disk or image file, read
//! with `parted -s -m DEV unit B print` and changed with one `parted -s` call.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::tools::StorageHost;
use crate::modules::args::de_string_list;
use crate::modules::host::text::commands_diff;
use crate::modules::{
    parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};
use crate::shell::sh_quote_words;

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("device", OptKind::Path, "The disk (or image file).").required(),
    OptionDoc::new(
        "label",
        OptKind::Str,
        "Partition table type. A disk without one gets it (`mklabel`); a disk with another one is \
relabeled only when it has no partitions or with `force`. Default: keep the current one, `msdos` for a \
blank disk.",
    )
    .choices(&[
        "msdos", "gpt", "loop", "aix", "amiga", "bsd", "dvh", "mac", "pc98", "sun",
    ]),
    OptionDoc::new(
        "number",
        OptKind::Int,
        "The partition number to create, change or remove.",
    ),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`present`: the partition exists (created with `part_start`..`part_end`; existing partitions are \
never moved or resized). `absent`: removed. `info`: only read.",
    )
    .choices(&["present", "absent", "info"])
    .default("info"),
    OptionDoc::new("part_start", OptKind::Str, "Start, in any parted unit (`1MiB`, `0%`).").default("0%"),
    OptionDoc::new("part_end", OptKind::Str, "End (`100%`, `-1s`, `512MiB`).").default("100%"),
    OptionDoc::new("part_type", OptKind::Str, "msdos partition type.")
        .choices(&["primary", "extended", "logical"])
        .default("primary"),
    OptionDoc::new("name", OptKind::Str, "gpt partition name."),
    OptionDoc::new(
        "flags",
        OptKind::List,
        "Flags that must be on (`boot`, `lvm`, `esp`, ...); other flags are turned off.",
    ),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Allow replacing a partition table that has partitions.",
    )
    .default("false"),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "parted",
    aliases: &["community.general.parted"],
    short: "Manage disk partitions with parted",
    description: "Creates a partition table, creates and removes partitions and sets their names and flags, \
reading the disk once with `parted -s -m` and changing it with a single `parted -s` command line.",
    free_form: false,
    options: OPTIONS,
    examples: "- parted:\n    device: /dev/sdb\n    label: gpt\n    number: 1\n    state: present\n    \
part_end: 50%\n    name: data\n    flags: [lvm]\n",
    returns: &[
        ReturnDoc {
            name: "disk",
            description: "`dev`, `size` (bytes), `table`, `logical_block`, `physical_block`, before the task",
        },
        ReturnDoc {
            name: "partitions",
            description: "list of `num`, `begin`, `end`, `size` (bytes), `fstype`, `name`, `flags`, before the task",
        },
        ReturnDoc {
            name: "script",
            description: "the parted commands run (or that would run)",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    device: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    number: Option<i64>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    part_start: Option<String>,
    #[serde(default)]
    part_end: Option<String>,
    #[serde(default)]
    part_type: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    flags: Vec<String>,
    #[serde(default)]
    force: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Disk {
    pub dev: String,
    pub size: u64,
    /// `unknown` when there is no partition table.
    pub table: String,
    pub logical_block: u64,
    pub physical_block: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Partition {
    pub num: u32,
    pub begin: u64,
    pub end: u64,
    pub size: u64,
    pub fstype: String,
    pub name: String,
    pub flags: Vec<String>,
}

fn bytes(s: &str) -> u64 {
    s.trim_end_matches('B').parse().unwrap_or(0)
}

/// Parses `parted -s -m DEV unit B print`.
pub fn parse_print(out: &str) -> Option<(Disk, Vec<Partition>)> {
    let mut lines = out.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut disk = None;
    for l in lines.by_ref() {
        if l == "BYT;" {
            continue;
        }
        let f: Vec<&str> = l.trim_end_matches(';').split(':').collect();
        if f.len() >= 6 {
            disk = Some(Disk {
                dev: f[0].to_string(),
                size: bytes(f[1]),
                table: f[5].to_string(),
                logical_block: f[3].parse().unwrap_or(0),
                physical_block: f[4].parse().unwrap_or(0),
            });
            break;
        }
    }
    let disk = disk?;
    let parts = lines
        .filter_map(|l| {
            let f: Vec<&str> = l.trim_end_matches(';').splitn(7, ':').collect();
            if f.len() < 7 {
                return None;
            }
            Some(Partition {
                num: f[0].parse().ok()?,
                begin: bytes(f[1]),
                end: bytes(f[2]),
                size: bytes(f[3]),
                fstype: f[4].to_string(),
                name: f[5].to_string(),
                flags: f[6]
                    .split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(String::from)
                    .collect(),
            })
        })
        .collect();
    Some((disk, parts))
}

/// The parted script (words after `parted -s -a optimal DEV --`).
fn plan(p: &Params, disk: &Disk, parts: &[Partition]) -> Result<Vec<String>, String> {
    let state = p.state.as_deref().unwrap_or("info");
    let mut script: Vec<String> = Vec::new();
    if state == "info" {
        return Ok(script);
    }
    let blank = disk.table == "unknown" || disk.table.is_empty();
    let table = match (&p.label, blank) {
        (Some(l), false) if *l != disk.table => {
            if !parts.is_empty() && !p.force {
                return Err(format!(
                    "{} has a {} partition table with {} partition(s); set `force: true` to replace it with {l}",
                    p.device,
                    disk.table,
                    parts.len()
                ));
            }
            script.extend(["mklabel".into(), l.clone()]);
            l.clone()
        }
        (l, true) if state == "present" => {
            let l = l.clone().unwrap_or_else(|| "msdos".into());
            script.extend(["mklabel".into(), l.clone()]);
            l
        }
        _ => disk.table.clone(),
    };
    let relabeled = !script.is_empty();
    let Some(num) = p.number else {
        return Ok(script);
    };
    let num = u32::try_from(num).map_err(|_| format!("invalid partition number {num}"))?;
    let existing = if relabeled {
        None
    } else {
        parts.iter().find(|x| x.num == num)
    };
    let n = num.to_string();
    if state == "absent" {
        if existing.is_some() {
            script.extend(["rm".into(), n]);
        }
        return Ok(script);
    }
    let mut flags_on: Vec<&String> = p.flags.iter().collect();
    match existing {
        None => {
            let next = if relabeled {
                1
            } else {
                parts.iter().map(|x| x.num).max().unwrap_or(0) + 1
            };
            if table == "msdos" && num != next && p.part_type.as_deref() != Some("logical") {
                return Err(format!(
                    "parted numbers new partitions itself: the next one on {} is {next}, not {num}",
                    p.device
                ));
            }
            let kind = if table == "gpt" {
                p.name.clone().unwrap_or_else(|| "primary".into())
            } else {
                p.part_type.clone().unwrap_or_else(|| "primary".into())
            };
            script.extend([
                "mkpart".into(),
                kind,
                p.part_start.clone().unwrap_or_else(|| "0%".into()),
                p.part_end.clone().unwrap_or_else(|| "100%".into()),
            ]);
        }
        Some(x) => {
            if let Some(name) = &p.name {
                if table == "gpt" && *name != x.name {
                    script.extend(["name".into(), n.clone(), name.clone()]);
                }
            }
            // On gpt, parted reports `boot` and `esp` together for one flag.
            let alias = |f: &str| match f {
                "boot" => Some("esp"),
                "esp" => Some("boot"),
                _ => None,
            };
            for f in &x.flags {
                let wanted_alias = alias(f).is_some_and(|a| p.flags.iter().any(|w| w == a));
                if !p.flags.contains(f) && !wanted_alias {
                    script.extend(["set".into(), n.clone(), f.clone(), "off".into()]);
                }
            }
            flags_on.retain(|f| !x.flags.contains(f));
        }
    }
    for f in flags_on {
        script.extend(["set".into(), n.clone(), f.clone(), "on".into()]);
    }
    Ok(script)
}

fn to_json(disk: &Disk, parts: &[Partition]) -> (Value, Value) {
    (
        json!({"dev": disk.dev, "size": disk.size, "table": disk.table,
               "logical_block": disk.logical_block, "physical_block": disk.physical_block}),
        Value::Array(
            parts
                .iter()
                .map(|x| {
                    json!({"num": x.num, "begin": x.begin, "end": x.end, "size": x.size,
                           "fstype": x.fstype, "name": x.name, "flags": x.flags})
                })
                .collect(),
        ),
    )
}

pub struct PartedModule;

#[async_trait]
impl Module for PartedModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let host = StorageHost::new(ctx, "parted", "parted");
        let q = sh_quote_words(["parted", "-s", "-m", &p.device, "unit", "B", "print"]);
        // A blank disk makes parted exit 1 ("unrecognised disk label") after printing the disk line.
        let out = host.try_run(&q).await?;
        let parsed = parse_print(&out.stdout_str());
        let Some((disk, parts)) = parsed else {
            return Err(host.fail(&q, &out));
        };
        let script = plan(&p, &disk, &parts).map_err(|e| ModuleError::Failed(format!("parted: {e}")))?;
        let mut outcome = ModuleOutcome::ok();
        let mut cmds = Vec::new();
        if !script.is_empty() {
            let mut words = vec!["parted".to_string(), "-s".into(), "-a".into(), "optimal".into()];
            words.push(p.device.clone());
            words.push("--".into());
            words.extend(script.iter().cloned());
            let cmd = sh_quote_words(&words);
            outcome = outcome.with_diff(commands_diff(&p.device, std::slice::from_ref(&cmd)));
            cmds.push(cmd);
        }
        let (d, ps) = to_json(&disk, &parts);
        let outcome = outcome
            .with("disk", d)
            .with("partitions", ps)
            .with("script", script.join(" "));
        Ok(match cmds.is_empty() {
            true => Plan::Done(outcome),
            false => Plan::change(outcome, host.commands(cmds)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Params {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_machine_output() {
        let (d, p) = parse_print(
            "BYT;\n/var/tmp/pt.img:67108864B:file:512:512:msdos::;\n1:1048576B:10485759B:9437184B:::boot;\n\
2:10485760B:20971519B:10485760B:ext4::;\n",
        )
        .unwrap();
        assert_eq!(d.size, 64 << 20);
        assert_eq!(d.table, "msdos");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].flags, vec!["boot"]);
        assert_eq!(p[1].fstype, "ext4");
        assert_eq!(p[1].size, 10 << 20);
        let (d, p) = parse_print("BYT;\n/dev/loop0:1048576B:loopback:512:512:unknown::;\n").unwrap();
        assert_eq!(d.table, "unknown");
        assert!(p.is_empty());
        assert!(parse_print("Error: Could not stat device /nope").is_none());
    }

    #[test]
    fn scripts() {
        let blank = Disk {
            table: "unknown".into(),
            ..Default::default()
        };
        let p = params(json!({"device": "/d", "label": "gpt", "number": 1, "state": "present",
                              "part_start": "1MiB", "part_end": "50%", "name": "data", "flags": ["lvm"]}));
        assert_eq!(
            plan(&p, &blank, &[]).unwrap().join(" "),
            "mklabel gpt mkpart data 1MiB 50% set 1 lvm on"
        );
        let gpt = Disk {
            table: "gpt".into(),
            ..Default::default()
        };
        let part = Partition {
            num: 1,
            begin: 1 << 20,
            end: 10 << 20,
            size: 9 << 20,
            fstype: String::new(),
            name: "data".into(),
            flags: vec!["lvm".into()],
        };
        assert!(
            plan(&p, &gpt, std::slice::from_ref(&part)).unwrap().is_empty(),
            "idempotent"
        );
        let p2 = params(json!({"device": "/d", "number": 1, "state": "present", "name": "x", "flags": ["boot"]}));
        assert_eq!(
            plan(&p2, &gpt, std::slice::from_ref(&part)).unwrap().join(" "),
            "name 1 x set 1 lvm off set 1 boot on"
        );
        let esp = Partition {
            flags: vec!["boot".into(), "esp".into()],
            ..part.clone()
        };
        let p_boot = params(json!({"device": "/d", "number": 1, "state": "present", "flags": ["boot"]}));
        assert!(
            plan(&p_boot, &gpt, &[esp]).unwrap().is_empty(),
            "boot and esp are one gpt flag"
        );
        let p3 = params(json!({"device": "/d", "label": "msdos", "state": "present"}));
        assert!(
            plan(&p3, &gpt, std::slice::from_ref(&part)).is_err(),
            "relabel needs force"
        );
        let p4 = params(json!({"device": "/d", "number": 1, "state": "absent"}));
        assert_eq!(plan(&p4, &gpt, std::slice::from_ref(&part)).unwrap(), vec!["rm", "1"]);
        assert!(plan(&p4, &gpt, &[]).unwrap().is_empty());
        let p5 = params(json!({"device": "/d", "number": 3, "state": "present"}));
        let msdos = Disk {
            table: "msdos".into(),
            ..Default::default()
        };
        assert!(plan(&p5, &msdos, &[part]).is_err(), "msdos numbering");
    }
}
