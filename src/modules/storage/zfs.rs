//! `zfs` (datasets, volumes, snapshots with properties) and `zpool` (pools
//! from vdevs, with health/capacity facts). Work with OpenZFS and zfs-fuse.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::tools::{RunCommands, StorageHost};
use crate::modules::args::de_string_list;
use crate::modules::host::text::{commands_diff, text_diff};
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};
use crate::shell::sh_quote_words;
use crate::size::parse_size;

const ZFS_HINT: &str = "zfsutils-linux (or zfs-fuse)";

/// A property value as ZFS spells it: booleans are `on`/`off`.
fn prop_value(v: &Value) -> String {
    match v {
        Value::Bool(true) => "on".into(),
        Value::Bool(false) => "off".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn de_props<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let v = Value::deserialize(d)?;
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => Ok(m.iter().map(|(k, v)| (k.clone(), prop_value(v))).collect()),
        other => Err(serde::de::Error::custom(format!(
            "expected a dict of properties, got {other}"
        ))),
    }
}

/// Whether a wanted property value is what ZFS reports. `have` comes from
/// `zfs get -p` (sizes in bytes, `none` quotas as `0`).
pub fn same_value(want: &str, have: &str) -> bool {
    if want == have || want.eq_ignore_ascii_case(have) {
        return true;
    }
    if want.eq_ignore_ascii_case("none") {
        return matches!(have, "0" | "-" | "none");
    }
    match (parse_size(want).ok(), have.parse::<u64>()) {
        (Some(w), Ok(h)) => w == h,
        _ => false,
    }
}

/// (property, value) pairs from `zfs get -H -o property,value,source` output.
fn parse_get(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

/// `cmd`, retried for up to 5 s while it fails with "is busy": zfs-fuse
/// unmounts asynchronously, so destroying a pool or dataset right after one
/// of its children was destroyed is briefly refused.
fn retry_busy(cmd: &str) -> String {
    if !cmd.contains(" destroy ") {
        return cmd.to_string();
    }
    format!(
        "n=0; until out=$({cmd} 2>&1); do case $out in *'is busy'*) n=$((n+1)); \
         [ $n -ge 20 ] && {{ echo \"$out\" >&2; exit 1; }}; sleep 0.25;; \
         *) echo \"$out\" >&2; exit 1;; esac; done"
    )
}

fn is_missing(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("does not exist") || s.contains("no such pool") || s.contains("not found")
}

// ---------------------------------------------------------------------------
// zfs

const ZFS_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "name",
        OptKind::Str,
        "Dataset (`pool/fs`), volume or snapshot (`pool/fs@snap`) name.",
    )
    .required(),
    OptionDoc::new("state", OptKind::Str, "Whether it should exist.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new(
        "extra_zfs_properties",
        OptKind::Dict,
        "Properties to set (`compression: lz4`, `quota: 1G`, `mountpoint: /srv/x`); booleans become \
`on`/`off`. A `volsize` makes a new dataset a volume (`zfs create -V`). Existing values are compared \
with `zfs get -p`, so `1G` equals `1073741824`.",
    ),
    OptionDoc::new("origin", OptKind::Str, "Create as a clone of this snapshot."),
    OptionDoc::new(
        "recursive",
        OptKind::Bool,
        "With `state: absent`, destroy children and snapshots too (`zfs destroy -r`).",
    )
    .default("false"),
];

static ZFS_DOC: ModuleDoc = ModuleDoc {
    name: "zfs",
    aliases: &["community.general.zfs"],
    short: "Manage ZFS datasets, volumes and snapshots",
    description: "Creates, changes the properties of, and destroys ZFS file systems, volumes and \
snapshots (a name with `@`). One `zfs get` reads existence and the wanted properties; only properties \
that differ are set (`zfs set`, one round trip).",
    free_form: false,
    options: ZFS_OPTIONS,
    examples: "- zfs:\n    name: tank/data\n    extra_zfs_properties: { compression: lz4, quota: 2G }\n\
- zfs: { name: tank/data@nightly, state: present }\n- zfs: { name: tank/old, state: absent, recursive: true }\n",
    returns: &[
        ReturnDoc {
            name: "name / state",
            description: "the dataset and whether it exists after the task",
        },
        ReturnDoc {
            name: "properties",
            description: "the wanted properties' values after the task",
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
struct ZfsParams {
    name: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default, deserialize_with = "de_props")]
    extra_zfs_properties: BTreeMap<String, String>,
    #[serde(default)]
    origin: Option<String>,
    #[serde(default)]
    recursive: bool,
}

/// The commands that bring a dataset to the wanted state, given its current
/// properties (`None`: it does not exist).
fn zfs_plan(p: &ZfsParams, current: Option<&BTreeMap<String, String>>) -> Vec<String> {
    let absent = p.state.as_deref() == Some("absent");
    match (current, absent) {
        (None, true) => vec![],
        (Some(_), true) => {
            let mut c = vec!["zfs", "destroy"];
            if p.recursive {
                c.push("-r");
            }
            c.push(&p.name);
            vec![sh_quote_words(&c)]
        }
        (None, false) => {
            let mut c: Vec<String> = vec!["zfs".into()];
            let volsize = p.extra_zfs_properties.get("volsize");
            if p.name.contains('@') {
                c.push("snapshot".into());
            } else if p.origin.is_some() {
                c.push("clone".into());
            } else {
                c.extend(["create".into(), "-p".into()]);
                if let Some(v) = volsize {
                    c.extend(["-V".into(), v.clone()]);
                }
            }
            for (k, v) in &p.extra_zfs_properties {
                if k != "volsize" || p.name.contains('@') || p.origin.is_some() {
                    c.extend(["-o".into(), format!("{k}={v}")]);
                }
            }
            if let Some(o) = &p.origin {
                c.push(o.clone());
            }
            c.push(p.name.clone());
            vec![sh_quote_words(&c)]
        }
        (Some(have), false) => p
            .extra_zfs_properties
            .iter()
            .filter(|(k, v)| !have.get(*k).is_some_and(|h| same_value(v, h)))
            .map(|(k, v)| sh_quote_words(["zfs", "set", &format!("{k}={v}"), &p.name]))
            .collect(),
    }
}

fn props_text(exists: bool, props: &BTreeMap<String, String>) -> String {
    if !exists {
        return "state: absent\n".into();
    }
    let mut s = "state: present\n".to_string();
    for (k, v) in props {
        s.push_str(&format!("{k}: {v}\n"));
    }
    s
}

pub struct ZfsModule;

#[async_trait]
impl Module for ZfsModule {
    fn doc(&self) -> &'static ModuleDoc {
        &ZFS_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: ZfsParams = parse_params(&ZFS_DOC, args)?;
        let host = StorageHost::new(ctx, "zfs", ZFS_HINT);
        let mut props: Vec<&str> = vec!["type"];
        props.extend(p.extra_zfs_properties.keys().map(String::as_str));
        let query = sh_quote_words([
            "zfs",
            "get",
            "-H",
            "-p",
            "-o",
            "property,value",
            &props.join(","),
            &p.name,
        ]);
        let out = host.try_run(&query).await?;
        let current = if out.status == 0 {
            Some(parse_get(&out.stdout_str()))
        } else if is_missing(&out.stderr_str()) {
            None
        } else {
            return Err(host.fail(&query, &out));
        };
        let cmds = zfs_plan(&p, current.as_ref());
        let absent = p.state.as_deref() == Some("absent");
        let mut before = current.clone().unwrap_or_default();
        before.remove("type");
        before.retain(|k, _| p.extra_zfs_properties.contains_key(k));
        let after = if absent {
            BTreeMap::new()
        } else {
            let mut a = before.clone();
            a.extend(p.extra_zfs_properties.clone());
            a
        };
        let mut outcome = ModuleOutcome::ok();
        if !cmds.is_empty() {
            outcome = outcome.with_diff(text_diff(
                &format!("zfs {}", p.name),
                &props_text(current.is_some(), &before),
                &props_text(!absent, &after),
            ));
        }
        let outcome = outcome
            .with("name", p.name.clone())
            .with("state", if absent { "absent" } else { "present" })
            .with("properties", json!(after))
            .with("commands", json!(cmds));
        if cmds.is_empty() {
            return Ok(Plan::Done(outcome));
        }
        Ok(Plan::change(
            outcome,
            host.commands(cmds.iter().map(|c| retry_busy(c)).collect()),
        ))
    }
}

// ---------------------------------------------------------------------------
// zpool

const ZPOOL_OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("name", OptKind::Str, "Pool name.").required(),
    OptionDoc::new("state", OptKind::Str, "Whether the pool should exist.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new(
        "vdevs",
        OptKind::List,
        "Devices (or files) to create the pool from, in `zpool create` order: words like `mirror`, \
`raidz`, `log`, `cache` group the devices after them. Used only to create a pool; an existing pool's \
layout is never changed.",
    ),
    OptionDoc::new(
        "properties",
        OptKind::Dict,
        "Pool properties (`zpool create -o`, `zpool set` when they differ): `autoexpand`, `ashift`, ...",
    ),
    OptionDoc::new(
        "filesystem_properties",
        OptKind::Dict,
        "Properties of the pool's root file system at creation (`zpool create -O`), e.g. `mountpoint`, \
`compression`. Manage them later with the `zfs` module.",
    ),
    OptionDoc::new("force", OptKind::Bool, "`zpool create -f` / `zpool destroy -f`.").default("false"),
];

static ZPOOL_DOC: ModuleDoc = ModuleDoc {
    name: "zpool",
    aliases: &["community.general.zpool"],
    short: "Manage ZFS pools",
    description: "Creates a pool from vdevs (block devices or files), sets pool properties, destroys \
it, and returns its health, size and capacity (`zpool list`).",
    free_form: false,
    options: ZPOOL_OPTIONS,
    examples: "- zpool:\n    name: tank\n    vdevs: [mirror, /dev/sdb, /dev/sdc]\n    \
filesystem_properties: { mountpoint: /srv/tank }\n  register: pool\n- debug: { var: pool.health }\n",
    returns: &[
        ReturnDoc {
            name: "health / size / allocated / free / capacity",
            description: "`zpool list` of the pool after the task (absent: not returned)",
        },
        ReturnDoc {
            name: "state",
            description: "`present` or `absent`",
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
struct ZpoolParams {
    name: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default, deserialize_with = "de_string_list")]
    vdevs: Vec<String>,
    #[serde(default, deserialize_with = "de_props")]
    properties: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "de_props")]
    filesystem_properties: BTreeMap<String, String>,
    #[serde(default)]
    force: bool,
}

const POOL_FACTS: [&str; 6] = ["name", "size", "allocated", "free", "capacity", "health"];

/// Facts from one line of `zpool list -H -o name,size,allocated,free,capacity,health`.
fn parse_pool_list(out: &str) -> Option<Map<String, Value>> {
    let line = out.lines().next()?;
    let f: Vec<&str> = line.split('\t').collect();
    (f.len() == POOL_FACTS.len()).then(|| {
        POOL_FACTS
            .iter()
            .zip(f)
            .map(|(k, v)| (k.to_string(), Value::String(v.trim().to_string())))
            .collect()
    })
}

/// (property, value) from `zpool get` (zfs-fuse has no `-H`: skip the header).
fn parse_zpool_get(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && f[1] != "PROPERTY").then(|| (f[1].to_string(), f[2].to_string()))
        })
        .collect()
}

fn zpool_plan(p: &ZpoolParams, exists: bool, have: &BTreeMap<String, String>) -> Result<Vec<String>, ModuleError> {
    let absent = p.state.as_deref() == Some("absent");
    let force = |c: &mut Vec<String>| {
        if p.force {
            c.push("-f".into());
        }
    };
    Ok(match (exists, absent) {
        (false, true) => vec![],
        (true, true) => {
            let mut c = vec!["zpool".to_string(), "destroy".into()];
            force(&mut c);
            c.push(p.name.clone());
            vec![sh_quote_words(&c)]
        }
        (false, false) => {
            if p.vdevs.is_empty() {
                return Err(ModuleError::Args(format!(
                    "zpool: pool `{}` does not exist and no `vdevs` are given to create it from",
                    p.name
                )));
            }
            let mut c = vec!["zpool".to_string(), "create".into()];
            force(&mut c);
            for (k, v) in &p.properties {
                c.extend(["-o".into(), format!("{k}={v}")]);
            }
            for (k, v) in &p.filesystem_properties {
                c.extend(["-O".into(), format!("{k}={v}")]);
            }
            c.push(p.name.clone());
            c.extend(p.vdevs.iter().cloned());
            vec![sh_quote_words(&c)]
        }
        (true, false) => p
            .properties
            .iter()
            .filter(|(k, v)| !have.get(*k).is_some_and(|h| same_value(v, h) || h == *v))
            .map(|(k, v)| sh_quote_words(["zpool", "set", &format!("{k}={v}"), &p.name]))
            .collect(),
    })
}

pub struct ZpoolModule;

impl ZpoolModule {
    async fn facts(host: &StorageHost<'_>, name: &str) -> Result<Option<Map<String, Value>>, ModuleError> {
        let cmd = sh_quote_words(["zpool", "list", "-H", "-o", &POOL_FACTS.join(","), name]);
        let out = host.try_run(&cmd).await?;
        if out.status != 0 {
            if is_missing(&out.stderr_str()) {
                return Ok(None);
            }
            return Err(host.fail(&cmd, &out));
        }
        let stdout = out.stdout_str();
        parse_pool_list(&stdout)
            .map(Some)
            .ok_or_else(|| ModuleError::Failed(format!("zpool: unexpected `{cmd}` output: {}", stdout.trim())))
    }
}

#[async_trait]
impl Module for ZpoolModule {
    fn doc(&self) -> &'static ModuleDoc {
        &ZPOOL_DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: ZpoolParams = parse_params(&ZPOOL_DOC, args)?;
        let host = StorageHost::new(ctx, "zpool", ZFS_HINT);
        let facts = Self::facts(&host, &p.name).await?;
        let have = if facts.is_some() && !p.properties.is_empty() {
            let keys: Vec<&str> = p.properties.keys().map(String::as_str).collect();
            parse_zpool_get(
                &host
                    .run(&sh_quote_words(["zpool", "get", &keys.join(","), &p.name]))
                    .await?,
            )
        } else {
            BTreeMap::new()
        };
        let cmds = zpool_plan(&p, facts.is_some(), &have)?;
        let absent = p.state.as_deref() == Some("absent");
        let mut outcome = ModuleOutcome::ok();
        if !cmds.is_empty() {
            outcome = outcome.with_diff(commands_diff(&format!("zpool {}", p.name), &cmds));
        }
        // Check mode reports the pool as it is now, even one to destroy; a
        // real run reports it as the commands left it (see `UpdatePool`).
        let done = cmds.is_empty();
        if let Some(f) = facts.filter(|_| !absent || !done) {
            outcome.ret.extend(f);
        }
        let outcome = outcome
            .with("state", if absent { "absent" } else { "present" })
            .with("commands", json!(cmds));
        if done {
            return Ok(Plan::Done(outcome));
        }
        Ok(Plan::change(
            outcome,
            UpdatePool {
                name: p.name,
                absent,
                commands: host.commands(cmds.iter().map(|c| retry_busy(c)).collect()),
            },
        ))
    }
}

/// Run a pool's commands, then report its facts as they left it.
struct UpdatePool {
    name: String,
    absent: bool,
    commands: RunCommands,
}

#[async_trait]
impl Change for UpdatePool {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let mut planned = Box::new(self.commands).apply(ctx, planned).await?;
        let host = StorageHost::new(ctx, "zpool", ZFS_HINT);
        let facts = ZpoolModule::facts(&host, &self.name).await?;
        let mut ret = Map::new();
        if let Some(f) = facts.filter(|_| !self.absent) {
            ret.extend(f);
        }
        for (k, v) in std::mem::take(&mut planned.ret) {
            if !POOL_FACTS.contains(&k.as_str()) {
                ret.insert(k, v);
            }
        }
        planned.ret = ret;
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zfs(v: Value) -> ZfsParams {
        let Value::Object(m) = v else {
            panic!("arguments are a map")
        };
        parse_params(&ZFS_DOC, m).unwrap()
    }

    #[test]
    fn zfs_plans() {
        let p = zfs(json!({"name": "tank/a", "extra_zfs_properties": {"compression": true, "quota": "1G"}}));
        assert_eq!(
            zfs_plan(&p, None),
            vec!["zfs create -p -o compression=on -o quota=1G tank/a"]
        );
        let have: BTreeMap<String, String> = [("compression", "on"), ("quota", "1073741824")]
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert!(zfs_plan(&p, Some(&have)).is_empty());
        let p = zfs(json!({"name": "tank/a", "extra_zfs_properties": {"compression": "off", "quota": "2G"}}));
        assert_eq!(
            zfs_plan(&p, Some(&have)),
            vec!["zfs set compression=off tank/a", "zfs set quota=2G tank/a"]
        );
        let p = zfs(json!({"name": "tank/a@s1"}));
        assert_eq!(zfs_plan(&p, None), vec!["zfs snapshot tank/a@s1"]);
        let p = zfs(json!({"name": "tank/v", "extra_zfs_properties": {"volsize": "1G"}}));
        assert_eq!(zfs_plan(&p, None), vec!["zfs create -p -V 1G tank/v"]);
        let p = zfs(json!({"name": "tank/c", "origin": "tank/a@s1"}));
        assert_eq!(zfs_plan(&p, None), vec!["zfs clone tank/a@s1 tank/c"]);
        let p = zfs(json!({"name": "tank/a", "state": "absent", "recursive": "yes"}));
        assert_eq!(zfs_plan(&p, Some(&have)), vec!["zfs destroy -r tank/a"]);
        assert!(zfs_plan(&p, None).is_empty());
        assert!(serde_json::from_value::<ZfsParams>(json!({"name": "x", "bogus": 1})).is_err());
        assert!(same_value("none", "0") && same_value("10M", "10485760") && !same_value("lz4", "on"));
    }

    #[test]
    fn zpool_parsing_and_plans() {
        let f = parse_pool_list("probe\t123M\t432K\t123M\t0%\tONLINE\n").unwrap();
        assert_eq!(f["health"], "ONLINE");
        assert_eq!(f["capacity"], "0%");
        assert!(parse_pool_list("garbage\n").is_none());
        let g = parse_zpool_get("NAME   PROPERTY     VALUE   SOURCE\nprobe  autoexpand   off     default\n");
        assert_eq!(g.get("autoexpand").map(String::as_str), Some("off"));
        let p: ZpoolParams = serde_json::from_value(json!({
            "name": "tank", "vdevs": ["mirror", "/a b", "/c"],
            "properties": {"autoexpand": true}, "filesystem_properties": {"mountpoint": "/srv/t"}
        }))
        .unwrap();
        assert_eq!(
            zpool_plan(&p, false, &BTreeMap::new()).unwrap(),
            vec!["zpool create -o autoexpand=on -O mountpoint=/srv/t tank mirror '/a b' /c"]
        );
        assert_eq!(zpool_plan(&p, true, &g).unwrap(), vec!["zpool set autoexpand=on tank"]);
        let p: ZpoolParams = serde_json::from_value(json!({"name": "tank"})).unwrap();
        assert!(zpool_plan(&p, false, &BTreeMap::new()).is_err());
    }
}
