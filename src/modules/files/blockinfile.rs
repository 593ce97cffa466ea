//! `blockinfile`: insert, update or remove a block of lines between markers.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::pyre::{self, Regex, Subject};
use crate::connection::FileAttrs;
use crate::modules::args::{de_opt_mode, exclusive, Mode};
use crate::modules::host::file_state::attrs_msg;
use crate::modules::host::file_state::backup_local;
use crate::modules::host::file_state::check_validate;
use crate::modules::host::file_state::content_diff;
use crate::modules::host::file_state::make_parents;
use crate::modules::host::file_state::not_a_dir;
use crate::modules::host::file_state::query_file;
use crate::modules::host::file_state::splitlines_keepends;
use crate::modules::host::file_state::write_file;
use crate::modules::host::file_state::AttrParams;
use crate::modules::host::file_state::SetAttrs;
use crate::modules::host::opts::{GROUP_OPT, MODE_OPT, OWNER_OPT, PATH_ALIASES, UNSAFE_WRITES_OPT};
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("path", OptKind::Path, "The file to modify.")
        .required()
        .aliases(PATH_ALIASES),
    OptionDoc::new("state", OptKind::Str, "Whether the block should be there or not.")
        .default("present")
        .choices(&["absent", "present"]),
    OptionDoc::new(
        "marker",
        OptKind::Str,
        "The marker line template; `{mark}` is replaced by `marker_begin`/`marker_end`.",
    )
    .default("# {mark} ANSIBLE MANAGED BLOCK"),
    OptionDoc::new(
        "block",
        OptKind::Str,
        "The text to put between the markers. An empty block removes the markers and the block.",
    )
    .default("")
    .aliases(&["content"]),
    OptionDoc::new(
        "insertafter",
        OptKind::Str,
        "When the markers are not found, insert after the last line matching this regular expression, or \
at the end (`EOF`).",
    ),
    OptionDoc::new(
        "insertbefore",
        OptKind::Str,
        "When the markers are not found, insert before the last line matching this regular expression, or \
at the start (`BOF`).",
    ),
    OptionDoc::new("create", OptKind::Bool, "Create the file when it does not exist.").default("no"),
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
    OptionDoc::new("marker_begin", OptKind::Str, "Replaces `{mark}` in the opening marker.").default("BEGIN"),
    OptionDoc::new("marker_end", OptKind::Str, "Replaces `{mark}` in the closing marker.").default("END"),
    OptionDoc::new(
        "append_newline",
        OptKind::Bool,
        "Add a blank line after the block unless one is already there or the block ends the file.",
    )
    .default("no"),
    OptionDoc::new(
        "prepend_newline",
        OptKind::Bool,
        "Add a blank line before the block unless one is already there or the block starts the file.",
    )
    .default("no"),
    OWNER_OPT,
    GROUP_OPT,
    MODE_OPT,
    UNSAFE_WRITES_OPT,
];

static DOC: ModuleDoc = ModuleDoc {
    name: "blockinfile",
    aliases: &[],
    short: "Insert, update or remove a block of lines surrounded by markers",
    description: "Manages a block of text delimited by marker lines. When the markers exist the block \
between them is replaced; otherwise it is inserted (by default at the end of the file). The new content \
is computed on the controller and uploaded atomically only when it differs.",
    free_form: false,
    options: OPTIONS,
    examples: "- blockinfile:\n    path: /etc/ssh/sshd_config\n    block: |\n      Match User ansible-agent\n      PasswordAuthentication no\n\n\
- blockinfile:\n    path: /etc/hosts\n    marker: \"# {mark} hosts for {{ inventory_hostname }}\"\n    state: absent\n",
    returns: &[
        ReturnDoc {
            name: "msg",
            description: "`Block inserted`, `Block removed`, `File created` or empty",
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
    path: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    marker: Option<String>,
    #[serde(default)]
    block: Option<String>,
    #[serde(default)]
    insertafter: Option<String>,
    #[serde(default)]
    insertbefore: Option<String>,
    #[serde(default)]
    create: bool,
    #[serde(default)]
    backup: bool,
    #[serde(default)]
    validate: Option<String>,
    #[serde(default)]
    marker_begin: Option<String>,
    #[serde(default)]
    marker_end: Option<String>,
    #[serde(default)]
    append_newline: bool,
    #[serde(default)]
    prepend_newline: bool,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_mode")]
    mode: Option<Mode>,
}

pub(crate) struct BlockInFile;

/// Where and what to insert, already resolved.
struct Spec<'a> {
    present: bool,
    block: &'a [u8],
    marker0: Vec<u8>,
    marker1: Vec<u8>,
    insertafter: Option<&'a str>,
    insertbefore: Option<&'a str>,
    insert_re: Option<&'a Regex>,
    /// The insert expression has `(?m)`: searched in the whole text.
    insert_multiline: bool,
    append_newline: bool,
    prepend_newline: bool,
}

/// Ansible's blockinfile algorithm; returns the new content.
fn compute(original: &[u8], s: &Spec<'_>) -> Result<Vec<u8>, ModuleError> {
    let sep: &[u8] = b"\n";
    let mut lines = splitlines_keepends(original);
    let blocklines: Vec<Vec<u8>> = if s.present && !s.block.is_empty() {
        let mut block = s.block.to_vec();
        if !block.ends_with(sep) {
            block.extend_from_slice(sep);
        }
        let mut v = vec![s.marker0.clone()];
        v.extend(splitlines_keepends(&block));
        v.push(s.marker1.clone());
        v
    } else {
        Vec::new()
    };
    let mut n0 = None;
    let mut n1 = None;
    for (i, line) in lines.iter().enumerate() {
        if *line == s.marker0 {
            n0 = Some(i);
        }
        if *line == s.marker1 {
            n1 = Some(i);
        }
    }
    let mut n0 = match (n0, n1) {
        (Some(a), Some(b)) if a < b => {
            lines.drain(a..=b);
            a
        }
        (Some(a), Some(b)) => {
            lines.drain(b..=a);
            b
        }
        _ => {
            if let Some(re) = s.insert_re {
                let mut found = None;
                if s.insert_multiline {
                    if let Some((start, end)) = re.find(original)? {
                        let at = if s.insertafter.is_some() { end } else { start };
                        found = Some(original[..at].iter().filter(|&&b| b == b'\n').count());
                    }
                } else {
                    for (i, line) in lines.iter().enumerate() {
                        let text = line.strip_suffix(b"\n").unwrap_or(line);
                        if re.is_match(text)? {
                            found = Some(i);
                        }
                    }
                    if s.insertafter.is_some() {
                        found = found.map(|i| i + 1);
                    }
                }
                found.unwrap_or(lines.len())
            } else if s.insertafter.is_some() {
                lines.len()
            } else if s.insertbefore.is_some() {
                0
            } else {
                lines.len()
            }
        }
    };
    if n0 > 0 && !lines[n0 - 1].ends_with(sep) {
        lines[n0 - 1].extend_from_slice(sep);
    }
    if s.prepend_newline && s.present && n0 != 0 && lines[n0 - 1] != sep {
        lines.insert(n0, sep.to_vec());
        n0 += 1;
    }
    let nblock = blocklines.len();
    lines.splice(n0..n0, blocklines);
    if s.append_newline && s.present {
        let after = n0 + nblock;
        if after < lines.len() && lines[after] != sep {
            lines.insert(after, sep.to_vec());
        }
    }
    Ok(lines.concat())
}

#[async_trait]
impl Module for BlockInFile {
    fn query_hints(&self, args: &Map<String, Value>) -> Vec<crate::modules::PathQuery> {
        crate::modules::host::prefetch::needs("blockinfile", args)
    }

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
        let path = p.path.clone();
        let present = p.state.as_deref() != Some("absent");
        exclusive(
            "blockinfile",
            ("insertbefore", p.insertbefore.is_some()),
            ("insertafter", p.insertafter.is_some()),
        )?;
        check_validate(p.validate.as_deref())?;
        let (ins_aft, ins_bef) = match (p.insertafter.as_deref(), p.insertbefore.as_deref()) {
            (None, None) => (Some("EOF"), None),
            other => other,
        };
        let (insert_re, insert_pat) = match (ins_aft, ins_bef) {
            (Some(a), _) if a != "EOF" => (Some(pyre::compile("insertafter", a, Subject::Bytes, false, false)?), a),
            (_, Some(b)) if b != "BOF" => (Some(pyre::compile("insertbefore", b, Subject::Bytes, false, false)?), b),
            _ => (None, ""),
        };
        let marker = p.marker.as_deref().unwrap_or("# {mark} ANSIBLE MANAGED BLOCK");
        let mk = |m: &str| {
            let mut v = marker.replace("{mark}", m).into_bytes();
            v.push(b'\n');
            v
        };
        let block = p.block.clone().unwrap_or_default();
        let spec = Spec {
            present,
            block: block.as_bytes(),
            marker0: mk(p.marker_begin.as_deref().unwrap_or("BEGIN")),
            marker1: mk(p.marker_end.as_deref().unwrap_or("END")),
            insertafter: ins_aft,
            insertbefore: ins_bef,
            insert_re: insert_re.as_ref(),
            insert_multiline: insert_pat.starts_with("(?m") || insert_pat.contains("(?m)"),
            append_newline: p.append_newline,
            prepend_newline: p.prepend_newline,
        };
        let attrs = AttrParams {
            owner: p.owner.clone(),
            group: p.group.clone(),
            mode: p.mode.clone(),
        };

        let st = query_file(ctx, &path, true).await?;
        not_a_dir(&st, &path)?;
        if !st.exists() {
            if !p.create {
                return Ok(Plan::Done(
                    ModuleOutcome::failed(format!("Path {path} does not exist !")).with("rc", 257),
                ));
            }
            if !present {
                return Ok(Plan::Done(
                    ModuleOutcome::changed(false).with_msg(format!("File {path} not present")),
                ));
            }
        }
        let original = st.content.clone().unwrap_or_default();
        let result = compute(&original, &spec)?;
        let (changed, mut msg) = if st.exists() && original == result {
            (false, String::new())
        } else if !st.exists() {
            // Ansible compares against `None`: creating even an empty file is a change.
            (true, "File created".to_string())
        } else if !spec.present || spec.block.is_empty() {
            (true, "Block removed".to_string())
        } else {
            (true, "Block inserted".to_string())
        };
        let mut out = ModuleOutcome::changed(changed);
        if ctx.diff_mode {
            out = out.with_diff(content_diff(&path, &original, &result));
        }
        if changed {
            // A new file: Ansible stops before the attribute check in check
            // mode, only the write reports the attributes.
            let new_attrs = !st.exists() && attrs.differ_for_new(&st);
            if st.exists() && attrs.differ(&st) {
                attrs_msg(&mut msg, true);
            }
            let change = WriteBlock {
                parents_of: (!st.exists() && !st.parent_exists).then(|| path.clone()),
                backup: p.backup && st.exists(),
                file_attrs: attrs.file_attrs(&st),
                real_path: st.real_path,
                data: result,
                validate: p.validate,
                new_attrs,
            };
            return Ok(Plan::change(out.with_msg(msg), change));
        }
        if attrs.differ(&st) {
            attrs_msg(&mut msg, false);
            return Ok(Plan::change(out.with_msg(msg), SetAttrs { st, attrs }));
        }
        Ok(Plan::Done(out.with_msg(msg)))
    }
}

/// Write the file with the new block (after a backup of the old one).
struct WriteBlock {
    /// Create the parent directories of this path first.
    parents_of: Option<String>,
    backup: bool,
    real_path: String,
    file_attrs: FileAttrs,
    data: Vec<u8>,
    validate: Option<String>,
    /// A new file whose attributes the write sets: the real run says so.
    new_attrs: bool,
}

#[async_trait]
impl Change for WriteBlock {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        mut planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let mut backup_file = None;
        if self.backup {
            backup_file = Some(backup_local(ctx, &self.real_path).await?);
        }
        if let Some(path) = &self.parents_of {
            make_parents(ctx, path).await?;
        }
        write_file(
            ctx,
            &self.real_path,
            &self.data,
            &self.file_attrs,
            self.validate.as_deref(),
        )
        .await?;
        if self.new_attrs {
            attrs_msg(planned.msg.get_or_insert_with(String::new), true);
        }
        if let Some(b) = backup_file {
            planned = planned.with("backup_file", b);
        }
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::host::file_state::testutil::{mode_of, Harness};

    fn spec<'a>(block: &'a str, after: Option<&'a str>, before: Option<&'a str>, re: Option<&'a Regex>) -> Spec<'a> {
        Spec {
            present: true,
            block: block.as_bytes(),
            marker0: b"# BEGIN ANSIBLE MANAGED BLOCK\n".to_vec(),
            marker1: b"# END ANSIBLE MANAGED BLOCK\n".to_vec(),
            insertafter: after,
            insertbefore: before,
            insert_re: re,
            insert_multiline: false,
            append_newline: false,
            prepend_newline: false,
        }
    }

    #[test]
    fn algorithm_matches_ansible() {
        let out = compute(b"a\nb", &spec("x\ny", Some("EOF"), None, None)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\nb\n# BEGIN ANSIBLE MANAGED BLOCK\nx\ny\n# END ANSIBLE MANAGED BLOCK\n"
        );
        // Existing block is replaced in place.
        let orig = b"a\n# BEGIN ANSIBLE MANAGED BLOCK\nold\n# END ANSIBLE MANAGED BLOCK\nz\n";
        let out = compute(orig, &spec("new", Some("EOF"), None, None)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\n# BEGIN ANSIBLE MANAGED BLOCK\nnew\n# END ANSIBLE MANAGED BLOCK\nz\n"
        );
        // Empty block removes it.
        let out = compute(orig, &spec("", Some("EOF"), None, None)).unwrap();
        assert_eq!(out, b"a\nz\n");
        // BOF and regex insertion points.
        let out = compute(b"a\n", &spec("x", None, Some("BOF"), None)).unwrap();
        assert!(out.starts_with(b"# BEGIN"));
        let re = pyre::compile("i", "^b", Subject::Bytes, false, false).unwrap();
        let out = compute(b"a\nb\nc\n", &spec("x", Some("^b"), None, Some(&re))).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\nb\n# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\nc\n"
        );
        let out = compute(b"a\nb\nc\n", &spec("x", None, Some("^b"), Some(&re))).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\n# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\nb\nc\n"
        );
        // Blank lines around the block.
        let mut s = spec("x", None, Some("^b"), Some(&re));
        s.prepend_newline = true;
        s.append_newline = true;
        let out = compute(b"a\nb\n", &s).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a\n\n# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\n\nb\n"
        );
    }

    #[tokio::test]
    async fn apply_reapply_check_and_errors() {
        let h = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("hosts");
        let fs = f.to_str().unwrap();
        std::fs::write(&f, "127.0.0.1 localhost\n").unwrap();
        let args = json!({"path": fs, "block": "10.0.0.1 a\n10.0.0.2 b", "marker": "## {mark} hosts", "mode": "0640"});
        let o = h.run(&BlockInFile, true, args.clone()).await.unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "127.0.0.1 localhost\n");
        let o = h.run(&BlockInFile, false, args.clone()).await.unwrap();
        assert!(o.changed);
        assert_eq!(
            o.msg.as_deref(),
            Some("Block inserted and ownership, perms or SE linux context changed")
        );
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "127.0.0.1 localhost\n## BEGIN hosts\n10.0.0.1 a\n10.0.0.2 b\n## END hosts\n"
        );
        assert_eq!(mode_of(&f), 0o640);
        let o = h.run(&BlockInFile, false, args.clone()).await.unwrap();
        assert!(!o.changed);
        // Change the block content: check predicts, real run does it.
        let args2 = json!({"path": fs, "content": "10.0.0.3 c", "marker": "## {mark} hosts", "backup": true});
        let o = h.run(&BlockInFile, true, args2.clone()).await.unwrap();
        assert!(o.changed);
        assert!(std::fs::read_to_string(&f).unwrap().contains("10.0.0.1"));
        let o = h.run(&BlockInFile, false, args2).await.unwrap();
        assert!(o.changed);
        assert!(o.ret.contains_key("backup_file"));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "127.0.0.1 localhost\n## BEGIN hosts\n10.0.0.3 c\n## END hosts\n"
        );
        // Removal.
        let o = h
            .run(
                &BlockInFile,
                false,
                json!({"path": fs, "marker": "## {mark} hosts", "state": "absent"}),
            )
            .await
            .unwrap();
        assert_eq!(o.msg.as_deref(), Some("Block removed"));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "127.0.0.1 localhost\n");
        // create.
        let n = dir.path().join("d/new");
        let o = h
            .run(
                &BlockInFile,
                false,
                json!({"path": n.to_str().unwrap(), "block": "x", "create": true}),
            )
            .await
            .unwrap();
        assert_eq!(o.msg.as_deref(), Some("File created"));
        assert_eq!(
            std::fs::read_to_string(&n).unwrap(),
            "# BEGIN ANSIBLE MANAGED BLOCK\nx\n# END ANSIBLE MANAGED BLOCK\n"
        );
        for bad in [
            json!({"path": fs, "blok": "x"}),
            json!({"path": fs, "state": "maybe"}),
            json!({"path": fs, "insertafter": "(", "block": "x"}),
            json!({"path": fs, "create": "perhaps"}),
        ] {
            let r = h.run(&BlockInFile, false, bad.clone()).await;
            assert!(matches!(r, Err(ModuleError::Args(_))), "{bad}");
        }
    }
}
