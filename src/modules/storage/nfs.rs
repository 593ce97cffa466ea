//! `nfs_export`: one NFS export, for the kernel server (`/etc/exports` +
//! `exportfs -ra`) or nfs-ganesha (an `EXPORT { }` block in its config file,
//! reloaded with SIGHUP, which ganesha ≥ 2.5 answers by re-reading its exports).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::tools::StorageHost;
use crate::connection::sh_quote;
use crate::modules::host::text::text_diff;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("path", OptKind::Path, "The exported directory.").required(),
    OptionDoc::new(
        "clients",
        OptKind::Raw,
        "Who may mount it, each with its own options: a list of `host(opts)` strings \
(`10.0.0.0/24(rw,no_root_squash)`), of `{host: H, options: O}` dicts, or a dict `H: O`. Options are \
exports(5) options; for ganesha `rw`/`ro`, `root_squash`/`no_root_squash`/`all_squash`, `anonuid`, \
`anongid` and `sec` are translated to CLIENT settings and the kernel-only `sync`, `async`, \
`(no_)subtree_check`, `(in)secure`, `(no_)wdelay`, `crossmnt`, `nohide` are ignored.",
    ),
    OptionDoc::new("state", OptKind::Str, "Whether the export should exist.")
        .choices(&["present", "absent"])
        .default("present"),
    OptionDoc::new("backend", OptKind::Str, "Which NFS server.")
        .choices(&["kernel", "ganesha"])
        .default("kernel"),
    OptionDoc::new(
        "dest",
        OptKind::Path,
        "The file holding the export: kernel `/etc/exports` (or a file in `/etc/exports.d`), \
ganesha `/etc/ganesha/ganesha.conf`.",
    ),
    OptionDoc::new(
        "export_id",
        OptKind::Int,
        "ganesha: the export's `Export_Id` (1-65535), which identifies its block. Required for ganesha.",
    ),
    OptionDoc::new(
        "pseudo",
        OptKind::Str,
        "ganesha: the NFSv4 pseudo path (default: `path`).",
    ),
    OptionDoc::new("fsal", OptKind::Str, "ganesha: the FSAL name.").default("VFS"),
    OptionDoc::new("protocols", OptKind::Str, "ganesha: NFS versions served.").default("3, 4"),
    OptionDoc::new(
        "reload",
        OptKind::Bool,
        "Make the server re-read its exports after a change: `exportfs -ra`, or SIGHUP to ganesha \
(when its `pid_file` names a live process; otherwise the file is only written and `reloaded` is false).",
    )
    .default("true"),
    OptionDoc::new(
        "reload_command",
        OptKind::Str,
        "A shell command to run instead of the default reload (`systemctl reload nfs-ganesha`): shell code by \
design, run as given.",
    ),
    OptionDoc::new("pid_file", OptKind::Path, "ganesha: its PID file.").default("/var/run/ganesha/ganesha.pid"),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "nfs_export",
    aliases: &[],
    short: "Manage NFS exports (kernel nfsd or nfs-ganesha)",
    description: "Keeps one export in the server's configuration: a line of `/etc/exports` for the \
kernel server, or an `EXPORT { ... }` block (found by its `Export_Id`) in ganesha's config file. The \
file is rewritten only when that line or block differs from the wanted one; the server then re-reads \
its exports. `--diff` shows the file before and after.",
    free_form: false,
    options: OPTIONS,
    examples: "- nfs_export:\n    path: /srv/share\n    clients: ['10.0.0.0/24(rw,no_root_squash)', '*(ro)']\n\
- nfs_export:\n    backend: ganesha\n    path: /srv/vms\n    export_id: 10\n    pseudo: /vms\n    \
clients: { 10.0.0.5: 'rw,no_root_squash' }\n",
    returns: &[
        ReturnDoc {
            name: "export",
            description: "the export's line or block as written (empty when absent)",
        },
        ReturnDoc {
            name: "dest",
            description: "the configuration file",
        },
        ReturnDoc {
            name: "reloaded",
            description: "whether the server was told to re-read its exports",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    path: String,
    #[serde(default)]
    clients: Value,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    dest: Option<String>,
    #[serde(default)]
    export_id: Option<i64>,
    #[serde(default)]
    pseudo: Option<String>,
    #[serde(default)]
    fsal: Option<String>,
    #[serde(default)]
    protocols: Option<String>,
    #[serde(default = "yes")]
    reload: bool,
    #[serde(default)]
    reload_command: Option<String>,
    #[serde(default)]
    pid_file: Option<String>,
}

fn yes() -> bool {
    true
}

/// One client and its exports(5) options.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub host: String,
    pub options: Vec<String>,
}

fn split_opts(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(String::from)
        .collect()
}

/// Clients from any of the accepted shapes.
pub fn parse_clients(v: &Value) -> Result<Vec<Client>, String> {
    let from_str = |s: &str| -> Result<Client, String> {
        let s = s.trim();
        match s.split_once('(') {
            Some((h, rest)) => {
                let opts = rest
                    .strip_suffix(')')
                    .ok_or_else(|| format!("client `{s}`: missing `)`"))?;
                Ok(Client {
                    host: h.trim().to_string(),
                    options: split_opts(opts),
                })
            }
            None => Ok(Client {
                host: s.to_string(),
                options: vec![],
            }),
        }
    };
    let opts_of = |v: &Value| -> Result<Vec<String>, String> {
        match v {
            Value::Null => Ok(vec![]),
            Value::String(s) => Ok(split_opts(s)),
            Value::Array(a) => Ok(a
                .iter()
                .map(|o| o.as_str().map_or(o.to_string(), String::from))
                .collect()),
            other => Err(format!("client options must be a string or a list, got {other}")),
        }
    };
    let clients = match v {
        Value::Null => vec![],
        Value::String(s) => s.split_whitespace().map(from_str).collect::<Result<_, _>>()?,
        Value::Object(m) => m
            .iter()
            .map(|(h, o)| {
                Ok(Client {
                    host: h.clone(),
                    options: opts_of(o)?,
                })
            })
            .collect::<Result<_, String>>()?,
        Value::Array(a) => a
            .iter()
            .map(|c| match c {
                Value::String(s) => from_str(s),
                Value::Object(m) => {
                    let host = m
                        .get("host")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("client {c}: needs `host`"))?;
                    if let Some(k) = m.keys().find(|k| *k != "host" && *k != "options") {
                        return Err(format!("client {c}: unknown key `{k}` (use `host` and `options`)"));
                    }
                    Ok(Client {
                        host: host.to_string(),
                        options: opts_of(m.get("options").unwrap_or(&Value::Null))?,
                    })
                }
                other => Err(format!("client {other}: expected `host(opts)` or {{host, options}}")),
            })
            .collect::<Result<_, _>>()?,
        other => return Err(format!("`clients` must be a list or a dict, got {other}")),
    };
    for c in &clients {
        if c.host.is_empty() || c.host.contains(char::is_whitespace) {
            return Err(format!("invalid client host `{}`", c.host));
        }
    }
    Ok(clients)
}

/// A path as the first word of an `/etc/exports` line (exports syntax, not
/// the shell's; line breaks are refused before this).
fn exports_quote(p: &str) -> String {
    if p.contains(|c: char| c.is_whitespace() || c == '"') {
        format!("\"{}\"", p.replace('"', "\\\""))
    } else {
        p.to_string()
    }
}

/// The `/etc/exports` line for an export.
pub fn exports_line(path: &str, clients: &[Client]) -> String {
    let mut s = exports_quote(path);
    for c in clients {
        s.push(' ');
        s.push_str(&c.host);
        if !c.options.is_empty() {
            s.push_str(&format!("({})", c.options.join(",")));
        }
    }
    s
}

/// The path an exports line is for (its first, possibly quoted, word).
fn line_path(line: &str) -> Option<String> {
    let t = line.trim_start();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    if let Some(rest) = t.strip_prefix('"') {
        return rest.split_once('"').map(|(p, _)| p.to_string());
    }
    t.split_whitespace().next().map(String::from)
}

/// `/etc/exports` with the export's line set (`Some`) or removed (`None`).
pub fn edit_exports(text: &str, path: &str, line: Option<&str>) -> String {
    let mut out = Vec::new();
    let mut placed = false;
    for l in text.lines() {
        if line_path(l).as_deref() == Some(path) {
            if let (Some(new), false) = (line, placed) {
                out.push(new.to_string());
                placed = true;
            }
            continue;
        }
        out.push(l.to_string());
    }
    if let (Some(new), false) = (line, placed) {
        out.push(new.to_string());
    }
    let mut s = out.join("\n");
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

const KERNEL_ONLY: &[&str] = &[
    "sync",
    "async",
    "subtree_check",
    "no_subtree_check",
    "secure",
    "insecure",
    "wdelay",
    "no_wdelay",
    "crossmnt",
    "nohide",
    "hide",
];

/// A ganesha `CLIENT { }` block from exports(5)-style options.
fn ganesha_client(c: &Client) -> Result<String, String> {
    let mut s = format!("\tCLIENT {{ Clients = {};", c.host);
    for o in &c.options {
        let (k, v) = o.split_once('=').map_or((o.as_str(), None), |(k, v)| (k, Some(v)));
        let setting = match (k, v) {
            ("rw", None) => "Access_Type = RW".to_string(),
            ("ro", None) => "Access_Type = RO".to_string(),
            ("root_squash", None) => "Squash = Root_Squash".to_string(),
            ("no_root_squash", None) => "Squash = No_Root_Squash".to_string(),
            ("all_squash", None) => "Squash = All_Squash".to_string(),
            ("anonuid", Some(n)) => format!("Anonymous_Uid = {n}"),
            ("anongid", Some(n)) => format!("Anonymous_Gid = {n}"),
            ("sec", Some(t)) => format!("SecType = {}", t.replace(':', ", ")),
            _ if KERNEL_ONLY.contains(&k) => continue,
            _ => {
                return Err(format!(
                    "client `{}`: option `{o}` has no nfs-ganesha equivalent (known: rw, ro, root_squash, \
no_root_squash, all_squash, anonuid, anongid, sec)",
                    c.host
                ))
            }
        };
        s.push_str(&format!(" {setting};"));
    }
    s.push_str(" }\n");
    Ok(s)
}

/// The ganesha `EXPORT { }` block (ending with a newline).
fn ganesha_block(p: &Params, id: i64, clients: &[Client]) -> Result<String, String> {
    let mut s = format!(
        "EXPORT {{\n\tExport_Id = {id};\n\tPath = \"{}\";\n\tPseudo = \"{}\";\n\tProtocols = {};\n\
\tAccess_Type = None;\n\tFSAL {{ Name = {}; }}\n",
        p.path,
        p.pseudo.as_deref().unwrap_or(&p.path),
        p.protocols.as_deref().unwrap_or("3, 4"),
        p.fsal.as_deref().unwrap_or("VFS"),
    );
    for c in clients {
        s.push_str(&ganesha_client(c)?);
    }
    s.push_str("}\n");
    Ok(s)
}

/// Byte ranges of the top-level `EXPORT { ... }` blocks of a ganesha config
/// (comments and quoted strings skipped), with their `Export_Id`.
pub fn ganesha_exports(text: &str) -> Vec<(std::ops::Range<usize>, Option<i64>)> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i < b.len() {
        match b[i] {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += 1;
                }
            }
            b'{' => {
                if depth == 0 {
                    // The block's keyword is the word just before the brace.
                    let head = text[..i].trim_end();
                    let word_start = head
                        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .map_or(0, |p| p + 1);
                    if head[word_start..].eq_ignore_ascii_case("export") {
                        start = Some(word_start);
                    }
                }
                depth += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    if let Some(s) = start.take() {
                        let mut end = i + 1;
                        if text[end..].starts_with('\n') {
                            end += 1;
                        }
                        let id = export_id_of(&text[s..end]);
                        found.push((s..end, id));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    found
}

fn export_id_of(block: &str) -> Option<i64> {
    let lower = block.to_ascii_lowercase();
    let at = lower.find("export_id")?;
    let rest = block[at + "export_id".len()..].trim_start().strip_prefix('=')?;
    let num: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    num.parse().ok()
}

/// Ganesha's config with the block of `id` replaced by `block` (appended when
/// missing) or removed (`None`).
pub fn edit_ganesha(text: &str, id: i64, block: Option<&str>) -> String {
    let blocks = ganesha_exports(text);
    let mut out = String::new();
    let mut last = 0;
    let mut placed = false;
    for (r, bid) in blocks {
        if bid != Some(id) {
            continue;
        }
        out.push_str(&text[last..r.start]);
        if let (Some(b), false) = (block, placed) {
            out.push_str(b);
            placed = true;
        }
        last = r.end;
    }
    out.push_str(&text[last..]);
    if let (Some(b), false) = (block, placed) {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(b);
    }
    out
}

pub struct NfsExportModule;

#[async_trait]
impl Module for NfsExportModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let args_err = |m: String| ModuleError::Args(format!("nfs_export: {m}"));
        let clients = parse_clients(&p.clients).map_err(args_err)?;
        // Values go into /etc/exports lines or ganesha's config language:
        // a line break or ganesha syntax in one would add configuration.
        for (name, v) in [
            ("path", Some(&p.path)),
            ("pseudo", p.pseudo.as_ref()),
            ("protocols", p.protocols.as_ref()),
            ("fsal", p.fsal.as_ref()),
        ] {
            if let Some(v) = v.filter(|v| v.contains(|c: char| c.is_control() || "\"{};#".contains(c))) {
                return Err(args_err(format!(
                    "`{name}` must not contain line breaks, control characters or any of \" {{ }} ; # (got {v:?})"
                )));
            }
        }
        let present = p.state.as_deref() != Some("absent");
        if present && clients.is_empty() {
            return Err(args_err("`clients` is required with state present".into()));
        }
        let ganesha = match p.backend.as_deref() {
            None | Some("kernel") => false,
            Some("ganesha") => true,
            Some(o) => return Err(args_err(format!("unknown backend `{o}` (kernel or ganesha)"))),
        };
        let host = StorageHost::new(
            ctx,
            "nfs_export",
            if ganesha { "nfs-ganesha" } else { "nfs-kernel-server" },
        );
        let dest = p.dest.clone().unwrap_or_else(|| {
            if ganesha {
                "/etc/ganesha/ganesha.conf".into()
            } else {
                "/etc/exports".into()
            }
        });
        let before = host.read_file(&dest).await?.unwrap_or_default();
        let (after, export) = if ganesha {
            let id = p
                .export_id
                .ok_or_else(|| args_err("backend ganesha needs `export_id`".into()))?;
            if !(1..=65535).contains(&id) {
                return Err(args_err(format!("export_id {id} is out of range 1-65535")));
            }
            let block = if present {
                Some(ganesha_block(&p, id, &clients).map_err(args_err)?)
            } else {
                None
            };
            (edit_ganesha(&before, id, block.as_deref()), block.unwrap_or_default())
        } else {
            let line = present.then(|| exports_line(&p.path, &clients));
            (
                edit_exports(&before, &p.path, line.as_deref()),
                line.unwrap_or_default(),
            )
        };
        let changed = after != before;
        let mut outcome = ModuleOutcome::ok();
        if changed {
            outcome = outcome.with_diff(text_diff(&dest, &before, &after));
        }
        // Only the change learns whether the server re-read its exports.
        let outcome = outcome
            .with("path", p.path.clone())
            .with("dest", dest.clone())
            .with("export", export)
            .with("state", if present { "present" } else { "absent" })
            .with("reloaded", json!(false));
        if !changed {
            return Ok(Plan::Done(outcome));
        }
        let reload = p.reload.then(|| match (&p.reload_command, ganesha) {
            (Some(cmd), _) => Reload::Command(cmd.clone()),
            (None, false) => Reload::Command("exportfs -ra".into()),
            (None, true) => Reload::Ganesha {
                pid_file: p
                    .pid_file
                    .clone()
                    .unwrap_or_else(|| "/var/run/ganesha/ganesha.pid".into()),
            },
        });
        Ok(Plan::change(
            outcome,
            WriteExports {
                ganesha,
                dest,
                text: after,
                reload,
            },
        ))
    }
}

/// How the server is made to re-read its exports.
enum Reload {
    /// `reload_command`, or `exportfs -ra`.
    Command(String),
    /// SIGHUP to the ganesha whose PID file this is, when it runs.
    Ganesha { pid_file: String },
}

/// Write the exports file, then reload the server.
struct WriteExports {
    ganesha: bool,
    dest: String,
    text: String,
    reload: Option<Reload>,
}

#[async_trait]
impl Change for WriteExports {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let host = StorageHost::new(
            ctx,
            "nfs_export",
            if self.ganesha {
                "nfs-ganesha"
            } else {
                "nfs-kernel-server"
            },
        );
        host.write_file(&self.dest, &self.text, None).await?;
        let reloaded = match &self.reload {
            Some(r) => reload(&host, r).await?,
            None => false,
        };
        Ok(planned.with("reloaded", json!(reloaded)))
    }
}

async fn reload(host: &StorageHost<'_>, how: &Reload) -> Result<bool, ModuleError> {
    let pid_file = match how {
        Reload::Command(cmd) => {
            host.run(cmd).await?;
            return Ok(true);
        }
        Reload::Ganesha { pid_file } => pid_file,
    };
    let pf = sh_quote(pid_file);
    let out = host
        .run(&format!(
            "pf={pf}; if [ -s \"$pf\" ] && kill -0 \"$(cat \"$pf\")\" 2>/dev/null; then \
             kill -HUP \"$(cat \"$pf\")\" && echo reloaded; else echo not-running; fi"
        ))
        .await?;
    Ok(out.trim() == "reloaded")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: Value) -> Params {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn clients_in_every_shape() {
        let want = vec![
            Client {
                host: "10.0.0.0/24".into(),
                options: vec!["rw".into(), "no_root_squash".into()],
            },
            Client {
                host: "*".into(),
                options: vec![],
            },
        ];
        assert_eq!(
            parse_clients(&json!(["10.0.0.0/24(rw,no_root_squash)", "*"])).unwrap(),
            want
        );
        assert_eq!(
            parse_clients(&json!([{"host": "10.0.0.0/24", "options": "rw, no_root_squash"}, {"host": "*"}])).unwrap(),
            want
        );
        assert_eq!(parse_clients(&json!("10.0.0.0/24(rw,no_root_squash) *")).unwrap(), want);
        assert_eq!(parse_clients(&json!({"h1": ["ro"]})).unwrap()[0].options, vec!["ro"]);
        assert!(parse_clients(&json!(["h(rw"])).is_err());
        assert!(parse_clients(&json!([{"host": "h", "opts": "rw"}])).is_err());
    }

    #[test]
    fn exports_file_edits() {
        let c = parse_clients(&json!(["a(rw)", "b"])).unwrap();
        let line = exports_line("/srv/x", &c);
        assert_eq!(line, "/srv/x a(rw) b");
        let text = "# comment\n/srv/y *(ro)\n/srv/x old(ro)\n";
        let edited = edit_exports(text, "/srv/x", Some(&line));
        assert_eq!(edited, "# comment\n/srv/y *(ro)\n/srv/x a(rw) b\n");
        assert_eq!(edit_exports(&edited, "/srv/x", Some(&line)), edited, "idempotent");
        assert_eq!(edit_exports(&edited, "/srv/x", None), "# comment\n/srv/y *(ro)\n");
        assert_eq!(
            edit_exports("", "/a b", Some(&exports_line("/a b", &c))),
            "\"/a b\" a(rw) b\n"
        );
        assert_eq!(edit_exports("\"/a b\" x\n", "/a b", None), "");
    }

    #[test]
    fn ganesha_blocks() {
        let p = params(json!({"path": "/srv/x", "backend": "ganesha", "export_id": 7, "pseudo": "/x"}));
        let c = parse_clients(&json!(["127.0.0.1(rw,no_root_squash,sync)"])).unwrap();
        let block = ganesha_block(&p, 7, &c).unwrap();
        assert_eq!(
            block,
            "EXPORT {\n\tExport_Id = 7;\n\tPath = \"/srv/x\";\n\tPseudo = \"/x\";\n\tProtocols = 3, 4;\n\
\tAccess_Type = None;\n\tFSAL { Name = VFS; }\n\tCLIENT { Clients = 127.0.0.1; Access_Type = RW; \
Squash = No_Root_Squash; }\n}\n"
        );
        assert!(ganesha_block(&p, 7, &parse_clients(&json!(["h(fsid=1)"])).unwrap()).is_err());
        let base = "NFS_CORE_PARAM { Protocols = 4; }\n# EXPORT { Export_Id = 7; }\nEXPORT\n{\n  Export_Id=3; \
Path = \"/a{b\";\n  FSAL { Name = VFS; }\n}\n";
        let found = ganesha_exports(base);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].1, Some(3));
        let added = edit_ganesha(base, 7, Some(&block));
        assert_eq!(added, format!("{base}{block}"));
        assert_eq!(edit_ganesha(&added, 7, Some(&block)), added, "idempotent");
        let other = block.replace("\"/x\"", "\"/y\"");
        assert_eq!(edit_ganesha(&added, 7, Some(&other)), format!("{base}{other}"));
        assert_eq!(edit_ganesha(&added, 7, None), base);
        let without3 = edit_ganesha(&added, 3, None);
        assert!(
            !without3.contains("Export_Id=3") && without3.ends_with(&block),
            "{without3}"
        );
    }
}
