//! `assemble`: build a file from a directory of fragments.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::pyre::{self, Regex, Subject};
use crate::connection::{sh_quote, FileAttrs};
use crate::modules::args::{de_opt_mode, Mode};
use crate::modules::host::digest::sha1_hex;
use crate::modules::host::file_state::backup_local;
use crate::modules::host::file_state::check_validate;
use crate::modules::host::file_state::content_diff;
use crate::modules::host::file_state::make_parents;
use crate::modules::host::file_state::query_file;
use crate::modules::host::file_state::write_file;
use crate::modules::host::file_state::AttrParams;
use crate::modules::host::file_state::SetAttrs;
use crate::modules::host::opts::{GROUP_OPT, MODE_OPT, OWNER_OPT, UNSAFE_WRITES_OPT};
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "src",
        OptKind::Path,
        "Directory of fragments: on the host, or on the controller with `remote_src: no`.",
    )
    .required(),
    OptionDoc::new("dest", OptKind::Path, "The file to build.").required(),
    OptionDoc::new(
        "delimiter",
        OptKind::Str,
        "Text put between fragments (escapes like `\\n` are decoded); a newline follows it.",
    ),
    OptionDoc::new(
        "regexp",
        OptKind::Str,
        "Only use fragments whose name matches this regular expression.",
    ),
    OptionDoc::new(
        "ignore_hidden",
        OptKind::Bool,
        "Skip fragments whose name starts with a dot.",
    )
    .default("no"),
    OptionDoc::new(
        "remote_src",
        OptKind::Bool,
        "`src` is on the host (`yes`) or on the controller.",
    )
    .default("yes"),
    OptionDoc::new(
        "backup",
        OptKind::Bool,
        "Keep a timestamped copy of the original file when it changes.",
    )
    .default("no"),
    OptionDoc::new(
        "validate",
        OptKind::Str,
        "Command that checks the new file before it replaces the old one; `%s` is the new file. Not shell code: it is split into words like a shell does and each word is passed as one argument, so \
`|`, `;`, `$(...)` and globs are plain characters (as in Ansible).",
    ),
    OptionDoc::new(
        "decrypt",
        OptKind::Bool,
        "Accepted for compatibility (vault files are not decrypted).",
    )
    .ignored()
    .default("yes"),
    OWNER_OPT,
    GROUP_OPT,
    MODE_OPT,
    UNSAFE_WRITES_OPT,
];

static DOC: ModuleDoc = ModuleDoc {
    name: "assemble",
    aliases: &[],
    short: "Assemble a configuration file from fragments",
    description: "Concatenates the regular files of a directory in name order, optionally separated by a \
delimiter, and writes the result to `dest` when it differs. A newline is added between fragments that \
do not end with one.",
    free_form: false,
    options: OPTIONS,
    examples: "- assemble:\n    src: /etc/someapp/fragments\n    dest: /etc/someapp/someapp.conf\n    delimiter: '### START FRAGMENT ###'\n",
    returns: &[
        ReturnDoc {
            name: "checksum",
            description: "SHA-1 of the assembled content",
        },
        ReturnDoc {
            name: "backup_file",
            description: "name of the backup file, when one was made",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    src: String,
    dest: String,
    #[serde(default)]
    delimiter: Option<String>,
    #[serde(default)]
    regexp: Option<String>,
    #[serde(default)]
    ignore_hidden: bool,
    #[serde(default)]
    remote_src: Option<bool>,
    #[serde(default)]
    backup: bool,
    #[serde(default)]
    validate: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_mode")]
    mode: Option<Mode>,
}

pub(crate) struct Assemble;

/// Python's `codecs.escape_decode` for the common escapes.
fn escape_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' || i + 1 == b.len() {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = b[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'v' => out.push(11),
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'\n' => {}
            b'x' if i + 2 <= b.len() && b[i..i + 2].iter().all(u8::is_ascii_hexdigit) => {
                let hex = std::str::from_utf8(&b[i..i + 2]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(c - b'0');
                let mut n = 1;
                while n < 3 && i < b.len() && (b'0'..=b'7').contains(&b[i]) {
                    v = v * 8 + u32::from(b[i] - b'0');
                    i += 1;
                    n += 1;
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    out
}

/// Ansible's `assemble_from_fragments` over (name, content) pairs.
fn assemble(
    mut fragments: Vec<(String, Vec<u8>)>,
    delimiter: Option<&str>,
    regexp: Option<&Regex>,
    ignore_hidden: bool,
) -> Result<Vec<u8>, ModuleError> {
    fragments.sort_by(|a, b| a.0.cmp(&b.0));
    let delim = delimiter.filter(|d| !d.is_empty()).map(escape_decode);
    let mut out = Vec::new();
    let mut delimit_me = false;
    let mut add_newline = false;
    for (name, content) in fragments {
        if regexp.map(|re| re.is_match(name.as_bytes())).transpose()? == Some(false) {
            continue;
        }
        if ignore_hidden && name.starts_with('.') {
            continue;
        }
        if add_newline {
            out.push(b'\n');
        }
        if delimit_me {
            if let Some(d) = &delim {
                out.extend_from_slice(d);
                if d.last() != Some(&b'\n') {
                    out.push(b'\n');
                }
            }
        }
        add_newline = !content.ends_with(b"\n");
        out.extend_from_slice(&content);
        delimit_me = true;
    }
    Ok(out)
}

/// Read the regular files of a host directory in one round trip.
async fn remote_fragments(ctx: &ModuleCtx<'_>, src: &str) -> Result<Vec<(String, Vec<u8>)>, ModuleError> {
    let script = format!(
        "s={}; if [ ! -e \"$s\" ]; then echo NOSRC; exit 0; fi; if [ ! -d \"$s\" ]; then echo NOTDIR; exit 0; fi; \
         echo OK; for f in \"$s\"/* \"$s\"/.[!.]* \"$s\"/..?*; do [ -f \"$f\" ] || continue; \
         printf '%s\\0%s\\0' \"${{f##*/}}\" \"$(wc -c < \"$f\")\" && cat -- \"$f\" || exit 1; done",
        sh_quote(src)
    );
    let out = ctx.run(&script).await?;
    if out.status != 0 {
        return Err(ModuleError::Failed(format!(
            "cannot read the fragments in {src}: {}",
            out.stderr_str().trim()
        )));
    }
    let data = out.stdout;
    let nl = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    match &data[..nl] {
        b"NOSRC" => return Err(ModuleError::Failed(format!("Source ({src}) does not exist"))),
        b"NOTDIR" => return Err(ModuleError::Failed(format!("Source ({src}) is not a directory"))),
        b"OK" => {}
        _ => return Err(ModuleError::Failed(format!("unexpected answer while reading {src}"))),
    }
    let mut rest = &data[(nl + 1).min(data.len())..];
    let mut frags = Vec::new();
    let bad = || ModuleError::Failed(format!("unexpected answer while reading the fragments in {src}"));
    while !rest.is_empty() {
        let z1 = rest.iter().position(|&b| b == 0).ok_or_else(bad)?;
        let name = String::from_utf8_lossy(&rest[..z1]).into_owned();
        rest = &rest[z1 + 1..];
        let z2 = rest.iter().position(|&b| b == 0).ok_or_else(bad)?;
        let len: usize = String::from_utf8_lossy(&rest[..z2]).trim().parse().map_err(|_| bad())?;
        rest = &rest[z2 + 1..];
        if len > rest.len() {
            return Err(bad());
        }
        frags.push((name, rest[..len].to_vec()));
        rest = &rest[len..];
    }
    Ok(frags)
}

fn local_fragments(dir: &std::path::Path) -> Result<Vec<(String, Vec<u8>)>, ModuleError> {
    let fail = |e: std::io::Error| ModuleError::Failed(format!("cannot read {}: {e}", dir.display()));
    if !dir.is_dir() {
        return Err(ModuleError::Failed(format!(
            "Source ({}) is not a directory",
            dir.display()
        )));
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let path = entry.path();
        if path.is_file() {
            out.push((
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(&path).map_err(fail)?,
            ));
        }
    }
    Ok(out)
}

#[async_trait]
impl Module for Assemble {
    fn creates_files(&self) -> bool {
        true
    }

    fn may_change_users(&self, result: &Map<String, Value>) -> bool {
        crate::modules::host::remote_file::wrote_user_database(result)
    }

    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let src = p.src.clone();
        let dest = p.dest.clone();
        check_validate(p.validate.as_deref())?;
        let regexp = p
            .regexp
            .as_deref()
            .map(|r| pyre::compile("regexp", r, Subject::Text, false, false))
            .transpose()?;
        let attrs = AttrParams {
            owner: p.owner.clone(),
            group: p.group.clone(),
            mode: p.mode.clone(),
        };
        let fragments = if p.remote_src.unwrap_or(true) {
            remote_fragments(ctx, &src).await?
        } else {
            local_fragments(&ctx.find_local("files", &src)?)?
        };
        let result = assemble(fragments, p.delimiter.as_deref(), regexp.as_ref(), p.ignore_hidden)?;
        let checksum = sha1_hex(&result);

        let st = query_file(ctx, &dest, true).await?;
        if st.is_dir() {
            return Err(ModuleError::Failed(format!("Destination {dest} is a directory")));
        }
        let before = st.content.clone().unwrap_or_default();
        let content_changed = !st.exists() || before != result;
        let mut out = ModuleOutcome::changed(content_changed)
            .with("checksum", checksum)
            .with("dest", dest.clone())
            .with("src", src.clone());
        if content_changed && ctx.diff_mode {
            // One dict, as Ansible's assemble action returns it (not a list).
            let diff = content_diff(&dest, &before, &result);
            out = out.with("diff", serde_json::to_value(diff).unwrap_or(Value::Null));
        }
        let mut out = out.with_msg("OK");
        // What the path is now: the result of a run that changes nothing
        // (a change reads it again once applied).
        crate::modules::host::remote_file::add_path_info(ctx, &dest, &mut out.ret).await?;
        if content_changed {
            let change = WriteAssembled {
                dest: dest.clone(),
                backup: p.backup && st.exists(),
                parents_of: (!st.parent_exists).then_some(dest),
                file_attrs: attrs.file_attrs(&st),
                real_path: st.real_path,
                data: result,
                validate: p.validate,
            };
            Ok(Plan::change(out, change))
        } else if attrs.differ(&st) {
            Ok(Plan::change(
                out,
                SetAttrsThenInfo {
                    dest,
                    inner: SetAttrs { st, attrs },
                },
            ))
        } else {
            Ok(Plan::Done(out))
        }
    }
}

/// Set owner/group/mode, then return the path's new info.
struct SetAttrsThenInfo {
    dest: String,
    inner: SetAttrs,
}

#[async_trait]
impl Change for SetAttrsThenInfo {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let mut out = Box::new(self.inner).apply(ctx, planned).await?;
        crate::modules::host::remote_file::add_path_info(ctx, &self.dest, &mut out.ret).await?;
        Ok(out)
    }
}

/// Write the assembled file (after a backup of the old one).
struct WriteAssembled {
    /// The path as given (its path info is returned).
    dest: String,
    backup: bool,
    /// Create the parent directories of this path first.
    parents_of: Option<String>,
    file_attrs: FileAttrs,
    real_path: String,
    data: Vec<u8>,
    validate: Option<String>,
}

#[async_trait]
impl Change for WriteAssembled {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        mut planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        if self.backup {
            planned = planned.with("backup_file", backup_local(ctx, &self.real_path).await?);
        }
        if let Some(dest) = &self.parents_of {
            make_parents(ctx, dest).await?;
        }
        write_file(
            ctx,
            &self.real_path,
            &self.data,
            &self.file_attrs,
            self.validate.as_deref(),
        )
        .await?;
        crate::modules::host::remote_file::add_path_info(ctx, &self.dest, &mut planned.ret).await?;
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::host::file_state::testutil::{mode_of, Harness};

    #[test]
    fn fragments_join_like_ansible() {
        let f = vec![
            ("b".to_string(), b"two".to_vec()),
            ("a".to_string(), b"one\n".to_vec()),
            (".h".to_string(), b"hidden\n".to_vec()),
        ];
        assert_eq!(assemble(f.clone(), None, None, true).unwrap(), b"one\ntwo");
        assert_eq!(
            assemble(f.clone(), Some("--\\t"), None, true).unwrap(),
            b"one\n--\t\ntwo"
        );
        assert_eq!(assemble(f.clone(), None, None, false).unwrap(), b"hidden\none\ntwo");
        let re = pyre::compile("regexp", "^[ab]$", Subject::Text, false, false).unwrap();
        assert_eq!(assemble(f, None, Some(&re), false).unwrap(), b"one\ntwo");
        assert_eq!(escape_decode(r"a\x41\101\n"), b"aAA\n");
    }

    #[tokio::test]
    async fn apply_reapply_check_and_errors() {
        let h = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let frag = dir.path().join("frag");
        std::fs::create_dir(&frag).unwrap();
        std::fs::write(frag.join("10-a"), "alpha\n").unwrap();
        std::fs::write(frag.join("20-b"), "beta").unwrap();
        std::fs::write(frag.join(".hidden"), "h\n").unwrap();
        std::fs::create_dir(frag.join("30-dir")).unwrap();
        let dest = dir.path().join("out.conf");
        let args = json!({"src": frag.to_str().unwrap(), "dest": dest.to_str().unwrap(),
                          "ignore_hidden": true, "delimiter": "#--", "mode": "0640"});
        let o = h.run(&Assemble, true, args.clone()).await.unwrap();
        assert!(o.changed);
        assert!(!dest.exists());
        let o = h.run(&Assemble, false, args.clone()).await.unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "alpha\n#--\nbeta");
        assert_eq!(o.ret["checksum"], sha1_hex(b"alpha\n#--\nbeta"));
        assert_eq!(mode_of(&dest), 0o640);
        // Ansible's path info of `dest`, after the write.
        assert_eq!(o.ret["state"], "file");
        assert_eq!(o.ret["mode"], "0640");
        // In diff mode (the harness's) the diff is one dict, as Ansible's.
        assert_eq!(o.ret["diff"]["after"], "alpha\n#--\nbeta");
        assert_eq!(o.ret["diff"]["before"], "");
        assert_eq!(o.ret["size"], 14);
        let o = h.run(&Assemble, false, args.clone()).await.unwrap();
        assert!(!o.changed);
        assert_eq!(o.ret["state"], "file");
        // A new fragment: predicted, then applied, with a backup.
        std::fs::write(frag.join("15-c"), "gamma\n").unwrap();
        let mut args2 = args.clone();
        args2["backup"] = json!(true);
        let o = h.run(&Assemble, true, args2.clone()).await.unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "alpha\n#--\nbeta");
        let o = h.run(&Assemble, false, args2).await.unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read_to_string(&dest).unwrap(), "alpha\n#--\ngamma\n#--\nbeta");
        let backup = o.ret["backup_file"].as_str().unwrap();
        assert_eq!(std::fs::read_to_string(backup).unwrap(), "alpha\n#--\nbeta");
        // Controller-side fragments.
        let local_dest = dir.path().join("local.conf");
        let o = h
            .run(
                &Assemble,
                false,
                json!({"src": frag.to_str().unwrap(), "dest": local_dest.to_str().unwrap(), "remote_src": false}),
            )
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read_to_string(&local_dest).unwrap(), "h\nalpha\ngamma\nbeta");
        // Errors.
        let r = h
            .run(
                &Assemble,
                false,
                json!({"src": dir.path().join("nope").to_str().unwrap(), "dest": local_dest.to_str().unwrap()}),
            )
            .await;
        assert!(matches!(r, Err(ModuleError::Failed(m)) if m.contains("does not exist")));
        for bad in [
            json!({"src": "/x"}),
            json!({"src": "/x", "dest": "/y", "regexp": "("}),
            json!({"src": "/x", "dest": "/y", "delimeter": "x"}),
            json!({"src": "/x", "dest": "/y", "validate": "visudo -c"}),
        ] {
            let r = h.run(&Assemble, false, bad.clone()).await;
            assert!(matches!(r, Err(ModuleError::Args(_))), "{bad}");
        }
    }
}
