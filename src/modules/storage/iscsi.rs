//! `iscsi_target`: an iSCSI target with LUNs, initiator ACLs and CHAP, on
//! tgt (`tgtadm` live + a persisted `/etc/tgt/conf.d/*.conf`) or LIO
//! (`targetcli` commands computed from its `saveconfig.json`).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::tools::StorageHost;
use crate::modules::args::de_string_list;
use crate::modules::host::text::commands_diff;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};
use crate::shell::{sh_quote, sh_quote_words};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "iqn",
        OptKind::Str,
        "The target's IQN (`iqn.2024-01.com.example:disk1`).",
    )
    .required(),
    OptionDoc::new("state", OptKind::Str, "Whether the target should exist.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new("backend", OptKind::Str, "The target implementation.")
        .choices(&["tgt", "lio"])
        .default("tgt"),
    OptionDoc::new(
        "luns",
        OptKind::List,
        "Backing stores: paths (files, block devices, zvols under /dev/zvol) or dicts `{path, lun, bstype}`. \
LUN numbers default to the position (tgt: from 1, LUN 0 is its controller; LIO: from 0). `bstype` \
(tgt: `rdwr`, `aio`, ...) defaults to the daemon's default. LUNs not listed are removed.",
    ),
    OptionDoc::new(
        "initiators",
        OptKind::List,
        "Initiator ACL: addresses or networks (`10.0.0.0/24`, `ALL`; tgt only) and initiator names \
(`iqn....`). Entries not listed are removed. LIO without initiators allows every initiator \
(`generate_node_acls=1`).",
    ),
    OptionDoc::new(
        "chap_user",
        OptKind::Str,
        "CHAP incoming user (initiators must log in with it).",
    ),
    OptionDoc::new(
        "chap_password",
        OptKind::Str,
        "CHAP incoming password (12-16 characters for most initiators). Neither tgt nor LIO shows it: \
it is set when the account is created (tgt) and written to the persisted configuration.",
    ),
    OptionDoc::new(
        "tid",
        OptKind::Int,
        "tgt: the target id for a new target (default: one more than the highest in use).",
    ),
    OptionDoc::new(
        "control_port",
        OptKind::Int,
        "tgt: the management port of the `tgtd` to talk to (`tgtadm -C`, `tgtd -C`).",
    )
    .default("0"),
    OptionDoc::new(
        "persist",
        OptKind::Bool,
        "tgt: also write `<config_dir>/<iqn>.conf` (read by `tgt-admin` at boot); LIO: `targetcli saveconfig`.",
    )
    .default("true"),
    OptionDoc::new("config_dir", OptKind::Path, "tgt: where the target's file goes.").default("/etc/tgt/conf.d"),
    OptionDoc::new(
        "saveconfig",
        OptKind::Path,
        "LIO: the saved configuration read to find the current state.",
    )
    .default("/etc/rtslib-fb-target/saveconfig.json"),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "iscsi_target",
    aliases: &[],
    short: "Manage iSCSI targets (tgt or LIO)",
    description: "Makes one iSCSI target match its parameters: LUNs backed by files, block devices or zvols, \
initiator ACLs and a CHAP incoming user. tgt: reads `tgtadm --op show` (targets and accounts, one round \
trip), runs only the `tgtadm` commands that differ, and keeps the persisted configuration file in step. LIO: \
reads `saveconfig.json` and runs the `targetcli` commands that differ. The commands are returned (and shown by \
`--diff`), so `--check` lists exactly what would run.",
    free_form: false,
    options: OPTIONS,
    examples:
        "- iscsi_target:\n    iqn: iqn.2024-01.com.example:vm-disks\n    luns:\n      - /srv/luns/vm1.img\n      \
- { path: /dev/zvol/tank/vm2, lun: 2 }\n    initiators: [10.0.0.0/24]\n    chap_user: vmhost\n    \
chap_password: \"{{ vault_chap }}\"\n",
    returns: &[
        ReturnDoc {
            name: "tid",
            description: "tgt: the target id",
        },
        ReturnDoc {
            name: "commands",
            description: "the tgtadm/targetcli commands run (or that would run); passwords are masked",
        },
        ReturnDoc {
            name: "config_file",
            description: "tgt: the persisted configuration file",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    iqn: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    luns: Value,
    #[serde(default, deserialize_with = "de_string_list")]
    initiators: Vec<String>,
    #[serde(default)]
    chap_user: Option<String>,
    #[serde(default)]
    chap_password: Option<String>,
    #[serde(default)]
    tid: Option<i64>,
    #[serde(default)]
    control_port: Option<i64>,
    #[serde(default = "yes")]
    persist: bool,
    #[serde(default)]
    config_dir: Option<String>,
    #[serde(default)]
    saveconfig: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq)]
pub struct Lun {
    pub lun: u32,
    pub path: String,
    pub bstype: Option<String>,
}

fn parse_luns(v: &Value, first: u32) -> Result<Vec<Lun>, String> {
    let items = match v {
        Value::Null => return Ok(vec![]),
        Value::Array(a) => a.clone(),
        Value::String(_) | Value::Object(_) => vec![v.clone()],
        other => return Err(format!("`luns` must be a list, got {other}")),
    };
    let mut out: Vec<Lun> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let default = first + i as u32;
        let lun = match item {
            Value::String(p) => Lun {
                lun: default,
                path: p.clone(),
                bstype: None,
            },
            Value::Object(m) => {
                if let Some(k) = m.keys().find(|k| !["path", "lun", "bstype"].contains(&k.as_str())) {
                    return Err(format!("lun {item}: unknown key `{k}` (use path, lun, bstype)"));
                }
                let path = m
                    .get("path")
                    .and_then(Value::as_str)
                    .ok_or_else(|| format!("lun {item}: needs `path`"))?;
                let lun = match m.get("lun") {
                    None | Some(Value::Null) => default,
                    Some(n) => n
                        .as_u64()
                        .or_else(|| n.as_str()?.parse().ok())
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| format!("lun {item}: `lun` must be a number"))?,
                };
                Lun {
                    lun,
                    path: path.to_string(),
                    bstype: m.get("bstype").and_then(Value::as_str).map(String::from),
                }
            }
            other => return Err(format!("lun {other}: expected a path or {{path, lun, bstype}}")),
        };
        if out.iter().any(|l| l.lun == lun.lun) {
            return Err(format!("LUN {} is given twice", lun.lun));
        }
        out.push(lun);
    }
    Ok(out)
}

fn is_initiator_name(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("iqn.") || l.starts_with("eui.") || l.starts_with("naa.")
}

// ---------------------------------------------------------------------------
// tgt

/// One target from `tgtadm --mode target --op show`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct TgtTarget {
    pub tid: i64,
    pub iqn: String,
    /// (lun, backing store path, backing store type), LUN 0 (controller) left out.
    pub luns: Vec<(u32, String, String)>,
    /// Incoming accounts bound to the target.
    pub accounts: Vec<String>,
    pub acls: Vec<String>,
}

/// Targets from `tgtadm --mode target --op show`.
pub fn parse_tgt_show(out: &str) -> Vec<TgtTarget> {
    let mut targets: Vec<TgtTarget> = Vec::new();
    let mut section = "";
    let mut lun: Option<u32> = None;
    for line in out.lines() {
        let t = line.trim();
        if let Some(rest) = line.strip_prefix("Target ") {
            if let Some((tid, iqn)) = rest.split_once(':') {
                targets.push(TgtTarget {
                    tid: tid.trim().parse().unwrap_or(0),
                    iqn: iqn.trim().to_string(),
                    ..Default::default()
                });
                section = "";
                continue;
            }
        }
        let Some(cur) = targets.last_mut() else { continue };
        match t {
            "LUN information:" => section = "lun",
            "Account information:" => section = "account",
            "ACL information:" => section = "acl",
            "System information:" | "I_T nexus information:" => section = "",
            _ => match section {
                "lun" => {
                    if let Some(n) = t.strip_prefix("LUN:") {
                        lun = n.trim().parse().ok();
                    } else if let (Some(p), Some(n)) = (t.strip_prefix("Backing store path:"), lun) {
                        if n != 0 {
                            cur.luns.push((n, p.trim().to_string(), String::new()));
                        }
                    } else if let Some(ty) = t.strip_prefix("Backing store type:") {
                        // The type line comes before the path line.
                        if let Some(n) = lun.filter(|n| *n != 0) {
                            cur.luns.push((n, String::new(), ty.trim().to_string()));
                        }
                    }
                }
                "account" if !t.is_empty() && !t.ends_with("(outgoing)") => cur.accounts.push(t.to_string()),
                "acl" if !t.is_empty() => cur.acls.push(t.to_string()),
                _ => {}
            },
        }
    }
    // Merge the (type) and (path) entries of each LUN.
    for tg in &mut targets {
        let mut merged: Vec<(u32, String, String)> = Vec::new();
        for (n, path, ty) in tg.luns.drain(..) {
            match merged.iter_mut().find(|m| m.0 == n) {
                Some(m) => {
                    if !path.is_empty() {
                        m.1 = path;
                    }
                    if !ty.is_empty() {
                        m.2 = ty;
                    }
                }
                None => merged.push((n, path, ty)),
            }
        }
        tg.luns = merged;
    }
    targets
}

/// Accounts from `tgtadm --mode account --op show`.
fn parse_tgt_accounts(out: &str) -> Vec<String> {
    out.lines()
        .skip_while(|l| !l.starts_with("Account list:"))
        .skip(1)
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

struct Tgtadm {
    port: i64,
}

impl Tgtadm {
    fn cmd(&self, args: &[&str]) -> String {
        let mut w = vec!["tgtadm".to_string()];
        if self.port != 0 {
            w.extend(["-C".into(), self.port.to_string()]);
        }
        w.extend(["--lld".into(), "iscsi".into()]);
        w.extend(args.iter().map(|s| s.to_string()));
        sh_quote_words(&w)
    }
}

/// The target id and the tgtadm commands that make the live state match
/// (passwords in clear: the caller masks its display copy).
fn tgt_plan(
    p: &Params,
    luns: &[Lun],
    cur: Option<&TgtTarget>,
    all_tids: &[i64],
    accounts: &[String],
) -> Result<(i64, Vec<String>), String> {
    let t = Tgtadm {
        port: p.control_port.unwrap_or(0),
    };
    let absent = p.state.as_deref() == Some("absent");
    if absent {
        return Ok(match cur {
            Some(c) => (
                c.tid,
                vec![t.cmd(&["--mode", "target", "--op", "delete", "--tid", &c.tid.to_string()])],
            ),
            None => (0, vec![]),
        });
    }
    let mut cmds = Vec::new();
    let tid = match (cur, p.tid) {
        (Some(c), Some(want)) if c.tid != want => {
            return Err(format!(
                "target {} exists with tid {}, not {want} (remove it first to renumber)",
                p.iqn, c.tid
            ))
        }
        (Some(c), _) => c.tid,
        (None, Some(want)) => {
            if all_tids.contains(&want) {
                return Err(format!("tid {want} is already used by another target"));
            }
            want
        }
        (None, None) => all_tids.iter().max().copied().unwrap_or(0) + 1,
    };
    let tid_s = tid.to_string();
    if cur.is_none() {
        cmds.push(t.cmd(&["--mode", "target", "--op", "new", "--tid", &tid_s, "-T", &p.iqn]));
    }
    let have_luns = cur.map(|c| c.luns.clone()).unwrap_or_default();
    for (n, path, _) in &have_luns {
        if !luns.iter().any(|l| l.lun == *n && &l.path == path) {
            cmds.push(t.cmd(&[
                "--mode",
                "logicalunit",
                "--op",
                "delete",
                "--tid",
                &tid_s,
                "--lun",
                &n.to_string(),
            ]));
        }
    }
    for l in luns {
        if l.lun == 0 {
            return Err("tgt: LUN 0 is the target's controller; number LUNs from 1".into());
        }
        let same = have_luns
            .iter()
            .any(|(n, path, ty)| *n == l.lun && *path == l.path && l.bstype.as_ref().is_none_or(|b| b == ty));
        if !same {
            let lun_s = l.lun.to_string();
            let mut a = vec!["--mode", "logicalunit", "--op", "new", "--tid", &tid_s, "--lun", &lun_s];
            a.extend(["-b", &l.path]);
            if let Some(b) = &l.bstype {
                a.extend(["-E", b]);
            }
            cmds.push(t.cmd(&a));
        }
    }
    let have_acls = cur.map(|c| c.acls.clone()).unwrap_or_default();
    let flag = |a: &str| if is_initiator_name(a) { "-Q" } else { "-I" };
    for a in have_acls.iter().filter(|a| !p.initiators.contains(a)) {
        cmds.push(t.cmd(&["--mode", "target", "--op", "unbind", "--tid", &tid_s, flag(a), a]));
    }
    for a in p.initiators.iter().filter(|a| !have_acls.contains(a)) {
        cmds.push(t.cmd(&["--mode", "target", "--op", "bind", "--tid", &tid_s, flag(a), a]));
    }
    let have_acc = cur.map(|c| c.accounts.clone()).unwrap_or_default();
    for a in have_acc.iter().filter(|a| Some(*a) != p.chap_user.as_ref()) {
        cmds.push(t.cmd(&["--mode", "account", "--op", "unbind", "--tid", &tid_s, "--user", a]));
    }
    if let Some(u) = &p.chap_user {
        if !accounts.contains(u) {
            let pw = p
                .chap_password
                .as_deref()
                .ok_or_else(|| format!("CHAP account `{u}` does not exist yet: `chap_password` is required"))?;
            cmds.push(t.cmd(&["--mode", "account", "--op", "new", "--user", u, "--password", pw]));
        }
        if !have_acc.contains(u) {
            cmds.push(t.cmd(&["--mode", "account", "--op", "bind", "--tid", &tid_s, "--user", u]));
        }
    }
    Ok((tid, cmds))
}

/// The persisted tgt-admin configuration of the target.
pub fn tgt_conf(iqn: &str, luns: &[Lun], initiators: &[String], chap: Option<(&str, &str)>) -> String {
    let mut s = format!("# Managed by rigger (iscsi_target)\n<target {iqn}>\n");
    for l in luns {
        s.push_str(&format!("    <backing-store {}>\n        lun {}\n", l.path, l.lun));
        if let Some(b) = &l.bstype {
            s.push_str(&format!("        bs-type {b}\n"));
        }
        s.push_str("    </backing-store>\n");
    }
    for a in initiators {
        let key = if is_initiator_name(a) {
            "initiator-name"
        } else {
            "initiator-address"
        };
        s.push_str(&format!("    {key} {a}\n"));
    }
    if let Some((u, pw)) = chap {
        s.push_str(&format!("    incominguser {u} {pw}\n"));
    }
    s.push_str("</target>\n");
    s
}

fn mask(cmds: &[String], secret: Option<&str>) -> Vec<String> {
    match secret.filter(|s| !s.is_empty()) {
        // The quoted form first: a secret with a quote in it is shown quoted.
        Some(s) => cmds
            .iter()
            .map(|c| c.replace(&sh_quote(s), "********").replace(s, "********"))
            .collect(),
        None => cmds.to_vec(),
    }
}

// ---------------------------------------------------------------------------
// LIO

/// The LIO backstore (plugin, name) for a LUN's path.
fn lio_backstore(iqn: &str, l: &Lun) -> (&'static str, String) {
    let plugin = if l.path.starts_with("/dev/") { "block" } else { "fileio" };
    let base: String = iqn
        .rsplit(':')
        .next()
        .unwrap_or(iqn)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    (plugin, format!("{base}_lun{}", l.lun))
}

/// The `targetcli` commands (one per line, arguments as targetcli takes them)
/// that bring LIO's saved configuration to the wanted state.
pub fn lio_plan(
    iqn: &str,
    state_absent: bool,
    luns: &[Lun],
    p_init: &[String],
    chap: Option<(&str, &str)>,
    saved: &Value,
) -> Result<Vec<String>, String> {
    if let Some(a) = p_init.iter().find(|a| !is_initiator_name(a)) {
        return Err(format!(
            "LIO ACLs name initiators (`iqn....`), not addresses like `{a}`"
        ));
    }
    let empty = vec![];
    let targets = saved.get("targets").and_then(Value::as_array).unwrap_or(&empty);
    let objects = saved.get("storage_objects").and_then(Value::as_array).unwrap_or(&empty);
    let target = targets
        .iter()
        .find(|t| t.get("wwn").and_then(Value::as_str) == Some(iqn));
    let tpg = target.and_then(|t| {
        t.get("tpgs")?
            .as_array()?
            .iter()
            .find(|g| g.get("tag").and_then(Value::as_u64) == Some(1))
    });
    let object_path = |name: &str| {
        objects
            .iter()
            .find(|o| o.get("name").and_then(Value::as_str) == Some(name))
            .and_then(|o| o.get("dev").and_then(Value::as_str))
            .map(String::from)
    };
    let mut cmds = Vec::new();
    let tpg_path = format!("/iscsi/{iqn}/tpg1");
    if state_absent {
        if target.is_some() {
            cmds.push(format!("/iscsi delete {iqn}"));
        }
        for l in luns {
            let (plugin, name) = lio_backstore(iqn, l);
            if object_path(&name).is_some() {
                cmds.push(format!("/backstores/{plugin} delete {name}"));
            }
        }
        return Ok(cmds);
    }
    if target.is_none() {
        cmds.push(format!("/iscsi create {iqn}"));
    }
    let have_luns: Vec<(u64, String)> = tpg
        .and_then(|g| g.get("luns")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|l| {
            Some((
                l.get("index")?.as_u64()?,
                l.get("storage_object")?.as_str()?.rsplit('/').next()?.to_string(),
            ))
        })
        .collect();
    for l in luns {
        let (plugin, name) = lio_backstore(iqn, l);
        match object_path(&name) {
            Some(dev) if dev == l.path => {}
            Some(_) => {
                cmds.push(format!("/backstores/{plugin} delete {name}"));
                cmds.push(lio_create(plugin, &name, &l.path));
            }
            None => cmds.push(lio_create(plugin, &name, &l.path)),
        }
        if !have_luns.iter().any(|(i, n)| *i == u64::from(l.lun) && *n == name) {
            cmds.push(format!(
                "{tpg_path}/luns create /backstores/{plugin}/{name} lun={}",
                l.lun
            ));
        }
    }
    for (i, _) in have_luns
        .iter()
        .filter(|(i, _)| !luns.iter().any(|l| u64::from(l.lun) == *i))
    {
        cmds.push(format!("{tpg_path}/luns delete lun{i}"));
    }
    let have_acls: Vec<String> = tpg
        .and_then(|g| g.get("node_acls")?.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a.get("node_wwn")?.as_str().map(String::from))
        .collect();
    for a in p_init.iter().filter(|a| !have_acls.contains(a)) {
        cmds.push(format!("{tpg_path}/acls create {a}"));
    }
    for a in have_acls.iter().filter(|a| !p_init.contains(a)) {
        cmds.push(format!("{tpg_path}/acls delete {a}"));
    }
    let attr = |k: &str| tpg.and_then(|g| g.get("attributes")?.get(k)?.as_u64()).unwrap_or(0);
    let open = p_init.is_empty();
    if open && attr("generate_node_acls") != 1 {
        cmds.push(format!(
            "{tpg_path} set attribute generate_node_acls=1 demo_mode_write_protect=0"
        ));
    }
    if let Some((u, pw)) = chap {
        let auth = format!("set auth userid={u} password={pw}");
        if open {
            let have = tpg.and_then(|g| g.get("chap_userid")?.as_str().map(String::from));
            if have.as_deref() != Some(u) {
                cmds.push(format!("{tpg_path} {auth}"));
            }
        } else {
            for a in p_init {
                let have = tpg
                    .and_then(|g| g.get("node_acls")?.as_array().cloned())
                    .unwrap_or_default()
                    .into_iter()
                    .find(|n| n.get("node_wwn").and_then(Value::as_str) == Some(a.as_str()))
                    .and_then(|n| n.get("chap_userid")?.as_str().map(String::from));
                if have.as_deref() != Some(u) {
                    cmds.push(format!("{tpg_path}/acls/{a} {auth}"));
                }
            }
        }
        if attr("authentication") != 1 {
            cmds.push(format!("{tpg_path} set attribute authentication=1"));
        }
    }
    Ok(cmds)
}

fn lio_create(plugin: &str, name: &str, path: &str) -> String {
    if plugin == "block" {
        format!("/backstores/block create name={name} dev={path}")
    } else {
        format!("/backstores/fileio create name={name} file_or_dev={path}")
    }
}

pub struct IscsiTargetModule;

#[async_trait]
impl Module for IscsiTargetModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let args_err = |m: String| ModuleError::Args(format!("iscsi_target: {m}"));
        let lio = match p.backend.as_deref() {
            None | Some("tgt") => false,
            Some("lio") => true,
            Some(o) => return Err(args_err(format!("unknown backend `{o}` (tgt or lio)"))),
        };
        let luns = parse_luns(&p.luns, if lio { 0 } else { 1 }).map_err(args_err)?;
        if p.chap_password.is_some() && p.chap_user.is_none() {
            return Err(args_err("`chap_password` needs `chap_user`".into()));
        }
        let absent = p.state.as_deref() == Some("absent");
        if lio {
            return run_lio(ctx, &p, &luns, absent).await;
        }
        let host = StorageHost::new(ctx, "iscsi_target", "tgt");
        let t = Tgtadm {
            port: p.control_port.unwrap_or(0),
        };
        let query = format!(
            "{} && echo '--rigger-accounts--' && {}",
            t.cmd(&["--mode", "target", "--op", "show"]),
            t.cmd(&["--mode", "account", "--op", "show"])
        );
        let out = host.try_run(&query).await?;
        if out.status != 0 {
            let mut e = host.fail(&query, &out).to_string();
            if out.stderr_str().contains("can't send the request") {
                e.push_str(" (is tgtd running with this control port?)");
            }
            return Err(ModuleError::Failed(e));
        }
        let stdout = out.stdout_str();
        let (targets_txt, accounts_txt) = stdout.split_once("--rigger-accounts--").unwrap_or((&stdout, ""));
        let targets = parse_tgt_show(targets_txt);
        let accounts = parse_tgt_accounts(accounts_txt);
        let cur = targets.iter().find(|t| t.iqn == p.iqn);
        let tids: Vec<i64> = targets.iter().map(|t| t.tid).collect();
        let (tid, mut cmds) = tgt_plan(&p, &luns, cur, &tids, &accounts).map_err(args_err)?;

        let dir = p.config_dir.clone().unwrap_or_else(|| "/etc/tgt/conf.d".into());
        let conf_path = format!("{dir}/{}.conf", p.iqn.replace([':', '/'], "_"));
        // The persisted file: Some(Some(text)) to write, Some(None) to remove.
        let mut conf_change: Option<Option<String>> = None;
        if p.persist {
            let have = host.read_file(&conf_path).await?;
            let chap = p.chap_user.as_deref().zip(p.chap_password.as_deref());
            let want = (!absent).then(|| tgt_conf(&p.iqn, &luns, &p.initiators, chap));
            if have != want {
                conf_change = Some(want);
            }
        }
        let mut shown_all = mask(&cmds, p.chap_password.as_deref());
        let live = std::mem::take(&mut cmds);
        match &conf_change {
            Some(Some(_)) => shown_all.push(format!("write {conf_path}")),
            Some(None) => shown_all.push(sh_quote_words(["rm", "-f", &conf_path])),
            None => {}
        }
        let changed = !shown_all.is_empty();
        let mut outcome = ModuleOutcome::ok();
        if changed {
            outcome = outcome.with_diff(commands_diff(&format!("iscsi target {}", p.iqn), &shown_all));
        }
        let steps: Vec<(String, String)> = live.into_iter().zip(shown_all.iter().cloned()).collect();
        let mut outcome = outcome.with("commands", json!(shown_all)).with("iqn", p.iqn.clone());
        if !absent {
            outcome = outcome.with("tid", tid);
        }
        if p.persist {
            outcome = outcome.with("config_file", conf_path.clone());
        }
        if !changed {
            return Ok(Plan::Done(outcome));
        }
        Ok(Plan::change(
            outcome,
            TargetChange {
                hint: "tgt",
                steps,
                conf: conf_change.map(|c| (conf_path, c)),
            },
        ))
    }
}

/// Run the target's commands in order (a failure names the command as
/// shown, with the CHAP password masked), then write or remove its
/// persisted configuration file.
struct TargetChange {
    hint: &'static str,
    /// (command to run, command as shown).
    steps: Vec<(String, String)>,
    /// The persisted file: (path, Some(text) to write, None to remove).
    conf: Option<(String, Option<String>)>,
}

#[async_trait]
impl Change for TargetChange {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let host = StorageHost::new(ctx, "iscsi_target", self.hint);
        for (c, s) in &self.steps {
            let o = host.try_run(c).await?;
            if o.status != 0 {
                return Err(host.fail(s, &o));
            }
        }
        match &self.conf {
            // Holds the CHAP password.
            Some((path, Some(text))) => host.write_file(path, text, Some(0o600)).await?,
            Some((path, None)) => {
                host.run(&sh_quote_words(["rm", "-f", path])).await?;
            }
            None => {}
        }
        Ok(planned)
    }
}

async fn run_lio(ctx: &ModuleCtx<'_>, p: &Params, luns: &[Lun], absent: bool) -> Result<Plan, ModuleError> {
    let host = StorageHost::new(ctx, "iscsi_target", "targetcli-fb");
    let path = p
        .saveconfig
        .clone()
        .unwrap_or_else(|| "/etc/rtslib-fb-target/saveconfig.json".into());
    let saved = match host.read_file(&path).await? {
        Some(t) if !t.trim().is_empty() => serde_json::from_str(&t)
            .map_err(|e| ModuleError::Failed(format!("iscsi_target: {path} on {}: {e}", ctx.host)))?,
        _ => Value::Null,
    };
    let chap = p.chap_user.as_deref().zip(p.chap_password.as_deref());
    let plan = lio_plan(&p.iqn, absent, luns, &p.initiators, chap, &saved)
        .map_err(|e| ModuleError::Args(format!("iscsi_target: {e}")))?;
    // targetcli joins its arguments with spaces into one command of its own
    // language: each word is passed quoted, so no value is shell code. The
    // shown commands are masked before quoting (a quoted secret would differ).
    let mut plan = plan;
    if !plan.is_empty() && p.persist {
        plan.push("saveconfig".into());
    }
    let targetcli = |c: &String| format!("targetcli {}", sh_quote_words(c.split(' ')));
    let cmds: Vec<String> = plan.iter().map(targetcli).collect();
    let shown: Vec<String> = mask(&plan, p.chap_password.as_deref()).iter().map(targetcli).collect();
    let mut outcome = ModuleOutcome::ok();
    if !cmds.is_empty() {
        outcome = outcome.with_diff(commands_diff(&format!("iscsi target {}", p.iqn), &shown));
    }
    let outcome = outcome.with("commands", json!(shown)).with("iqn", p.iqn.clone());
    if cmds.is_empty() {
        return Ok(Plan::Done(outcome));
    }
    Ok(Plan::change(
        outcome,
        TargetChange {
            hint: "targetcli-fb",
            steps: cmds.into_iter().zip(shown).collect(),
            conf: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW: &str = "Target 1: iqn.2024-01.test:t1
    System information:
        Driver: iscsi
        State: ready
    I_T nexus information:
    LUN information:
        LUN: 0
            Type: controller
            Backing store type: null
            Backing store path: None
            Backing store flags: 
        LUN: 1
            Type: disk
            Size: 17 MB, Block size: 512
            Backing store type: rdwr
            Backing store path: /var/tmp/lun1.img
            Backing store flags: 
    Account information:
        chapu
        outu (outgoing)
    ACL information:
        127.0.0.1
        iqn.2024-01.test:init
Target 3: iqn.2024-01.test:t3
    System information:
        Driver: iscsi
    LUN information:
        LUN: 0
            Backing store type: null
            Backing store path: None
    Account information:
    ACL information:
";

    fn params(v: Value) -> Params {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn parses_tgtadm_show() {
        let t = parse_tgt_show(SHOW);
        assert_eq!(t.len(), 2);
        assert_eq!(
            t[0],
            TgtTarget {
                tid: 1,
                iqn: "iqn.2024-01.test:t1".into(),
                luns: vec![(1, "/var/tmp/lun1.img".into(), "rdwr".into())],
                accounts: vec!["chapu".into()],
                acls: vec!["127.0.0.1".into(), "iqn.2024-01.test:init".into()],
            }
        );
        assert_eq!(t[1].tid, 3);
        assert!(t[1].luns.is_empty() && t[1].acls.is_empty());
        assert_eq!(
            parse_tgt_accounts("Account list:\n    chapu\n    x\n"),
            vec!["chapu", "x"]
        );
    }

    #[test]
    fn tgt_plans() {
        let t = parse_tgt_show(SHOW);
        let p = params(json!({
            "iqn": "iqn.2024-01.test:t1", "luns": ["/var/tmp/lun1.img"],
            "initiators": ["127.0.0.1", "iqn.2024-01.test:init"], "chap_user": "chapu"
        }));
        let luns = parse_luns(&p.luns, 1).unwrap();
        let (tid, cmds) = tgt_plan(&p, &luns, Some(&t[0]), &[1, 3], &["chapu".into()]).unwrap();
        assert_eq!((tid, cmds), (1, vec![]), "already matches");

        let p = params(json!({
            "iqn": "iqn.2024-01.test:new", "luns": [{"path": "/a.img", "bstype": "aio"}, "/b.img"],
            "initiators": ["ALL"], "chap_user": "u", "chap_password": "pw123456789012", "control_port": 7
        }));
        let luns = parse_luns(&p.luns, 1).unwrap();
        let (tid, cmds) = tgt_plan(&p, &luns, None, &[1, 3], &[]).unwrap();
        assert_eq!(tid, 4);
        assert_eq!(
            cmds,
            vec![
                "tgtadm -C 7 --lld iscsi --mode target --op new --tid 4 -T iqn.2024-01.test:new",
                "tgtadm -C 7 --lld iscsi --mode logicalunit --op new --tid 4 --lun 1 -b /a.img -E aio",
                "tgtadm -C 7 --lld iscsi --mode logicalunit --op new --tid 4 --lun 2 -b /b.img",
                "tgtadm -C 7 --lld iscsi --mode target --op bind --tid 4 -I ALL",
                "tgtadm -C 7 --lld iscsi --mode account --op new --user u --password pw123456789012",
                "tgtadm -C 7 --lld iscsi --mode account --op bind --tid 4 --user u",
            ]
        );
        assert!(mask(&cmds, Some("pw123456789012"))[4].ends_with("--password ********"));

        // Change: another LUN path, one ACL fewer, no CHAP.
        let p = params(json!({"iqn": "iqn.2024-01.test:t1", "luns": ["/other.img"], "initiators": ["127.0.0.1"]}));
        let luns = parse_luns(&p.luns, 1).unwrap();
        let (_, cmds) = tgt_plan(&p, &luns, Some(&t[0]), &[1, 3], &["chapu".into()]).unwrap();
        assert_eq!(
            cmds,
            vec![
                "tgtadm --lld iscsi --mode logicalunit --op delete --tid 1 --lun 1",
                "tgtadm --lld iscsi --mode logicalunit --op new --tid 1 --lun 1 -b /other.img",
                "tgtadm --lld iscsi --mode target --op unbind --tid 1 -Q iqn.2024-01.test:init",
                "tgtadm --lld iscsi --mode account --op unbind --tid 1 --user chapu",
            ]
        );
        let p = params(json!({"iqn": "iqn.2024-01.test:t1", "state": "absent"}));
        let (_, cmds) = tgt_plan(&p, &[], Some(&t[0]), &[1, 3], &[]).unwrap();
        assert_eq!(cmds, vec!["tgtadm --lld iscsi --mode target --op delete --tid 1"]);
        let p = params(json!({"iqn": "iqn.x:new", "tid": 3}));
        assert!(tgt_plan(&p, &[], None, &[1, 3], &[]).is_err(), "tid in use");
        let p = params(json!({"iqn": "iqn.x:new", "chap_user": "nobody"}));
        assert!(
            tgt_plan(&p, &[], None, &[], &[]).is_err(),
            "new account needs a password"
        );
        assert!(
            parse_luns(&json!(["/a", {"path": "/b", "lun": 1}]), 1).is_err(),
            "duplicate LUN"
        );
    }

    #[test]
    fn tgt_config_file() {
        let luns = parse_luns(
            &json!(["/a.img", {"path": "/dev/zvol/tank/v", "lun": 5, "bstype": "aio"}]),
            1,
        )
        .unwrap();
        let c = tgt_conf(
            "iqn.x:t",
            &luns,
            &["10.0.0.0/24".into(), "iqn.y:i".into()],
            Some(("u", "p")),
        );
        assert_eq!(
            c,
            "# Managed by rigger (iscsi_target)\n<target iqn.x:t>\n    <backing-store /a.img>\n        lun 1\n    \
</backing-store>\n    <backing-store /dev/zvol/tank/v>\n        lun 5\n        bs-type aio\n    \
</backing-store>\n    initiator-address 10.0.0.0/24\n    initiator-name iqn.y:i\n    incominguser u p\n</target>\n"
        );
    }

    #[test]
    fn lio_command_generation() {
        let iqn = "iqn.2024-01.com.example:vm";
        let luns = parse_luns(&json!(["/srv/a.img", "/dev/zvol/tank/b"]), 0).unwrap();
        let init = vec!["iqn.1993-08.org.debian:01:host".to_string()];
        let cmds = lio_plan(iqn, false, &luns, &init, Some(("u", "secretsecret")), &Value::Null).unwrap();
        assert_eq!(
            cmds,
            vec![
                "/iscsi create iqn.2024-01.com.example:vm",
                "/backstores/fileio create name=vm_lun0 file_or_dev=/srv/a.img",
                "/iscsi/iqn.2024-01.com.example:vm/tpg1/luns create /backstores/fileio/vm_lun0 lun=0",
                "/backstores/block create name=vm_lun1 dev=/dev/zvol/tank/b",
                "/iscsi/iqn.2024-01.com.example:vm/tpg1/luns create /backstores/block/vm_lun1 lun=1",
                "/iscsi/iqn.2024-01.com.example:vm/tpg1/acls create iqn.1993-08.org.debian:01:host",
                "/iscsi/iqn.2024-01.com.example:vm/tpg1/acls/iqn.1993-08.org.debian:01:host set auth userid=u \
password=secretsecret",
                "/iscsi/iqn.2024-01.com.example:vm/tpg1 set attribute authentication=1",
            ]
        );
        // The state those commands produce, as targetcli saves it: nothing left to do.
        let saved = json!({
            "storage_objects": [
                {"name": "vm_lun0", "plugin": "fileio", "dev": "/srv/a.img"},
                {"name": "vm_lun1", "plugin": "block", "dev": "/dev/zvol/tank/b"}
            ],
            "targets": [{"wwn": iqn, "fabric": "iscsi", "tpgs": [{
                "tag": 1, "attributes": {"authentication": 1, "generate_node_acls": 0},
                "luns": [{"index": 0, "storage_object": "/backstores/fileio/vm_lun0"},
                         {"index": 1, "storage_object": "/backstores/block/vm_lun1"}],
                "node_acls": [{"node_wwn": "iqn.1993-08.org.debian:01:host", "chap_userid": "u"}]
            }]}]
        });
        assert!(lio_plan(iqn, false, &luns, &init, Some(("u", "secretsecret")), &saved)
            .unwrap()
            .is_empty());
        // One LUN fewer, open ACLs.
        let cmds = lio_plan(iqn, false, &luns[..1], &[], None, &saved).unwrap();
        assert_eq!(
            cmds,
            vec![
                "/iscsi/iqn.2024-01.com.example:vm/tpg1/luns delete lun1",
                "/iscsi/iqn.2024-01.com.example:vm/tpg1/acls delete iqn.1993-08.org.debian:01:host",
                "/iscsi/iqn.2024-01.com.example:vm/tpg1 set attribute generate_node_acls=1 demo_mode_write_protect=0",
            ]
        );
        assert_eq!(
            lio_plan(iqn, true, &luns, &[], None, &saved).unwrap(),
            vec![
                "/iscsi delete iqn.2024-01.com.example:vm",
                "/backstores/fileio delete vm_lun0",
                "/backstores/block delete vm_lun1"
            ]
        );
        assert!(lio_plan(iqn, false, &luns, &["10.0.0.1".into()], None, &Value::Null).is_err());
    }
}
