//! `lineinfile`: make sure one line is (or is not) in a text file.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::pyre::{self, Captures, Regex, Subject, Template};
use crate::connection::FileAttrs;
use crate::modules::args::{de_opt_mode, exclusive, Mode};
use crate::modules::host::file_state::attrs_msg;
use crate::modules::host::file_state::backup_local;
use crate::modules::host::file_state::check_validate;
use crate::modules::host::file_state::content_diff;
use crate::modules::host::file_state::make_parents;
use crate::modules::host::file_state::not_a_dir;
use crate::modules::host::file_state::query_file;
use crate::modules::host::file_state::readlines;
use crate::modules::host::file_state::rstrip_eol;
use crate::modules::host::file_state::write_file;
use crate::modules::host::file_state::AttrParams;
use crate::modules::host::file_state::FileState;
use crate::modules::host::file_state::SetAttrs;
use crate::modules::host::opts::{GROUP_OPT, MODE_OPT, OWNER_OPT, PATH_ALIASES, UNSAFE_WRITES_OPT};
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("path", OptKind::Path, "The file to modify.")
        .required()
        .aliases(PATH_ALIASES),
    OptionDoc::new(
        "regexp",
        OptKind::Str,
        "Python regular expression searched in every line. With `state=present` the last matching line is \
replaced (the first with `firstmatch`); with `state=absent` every matching line is removed.",
    )
    .aliases(&["regex"]),
    OptionDoc::new(
        "search_string",
        OptKind::Str,
        "Literal string searched in every line; like `regexp` without regular expression syntax.",
    ),
    OptionDoc::new("state", OptKind::Str, "Whether the line should be there or not.")
        .default("present")
        .choices(&["absent", "present"]),
    OptionDoc::new(
        "line",
        OptKind::Str,
        "The line to insert or replace. With `backrefs`, may hold `\\1` or `\\g<name>` references to the \
groups of `regexp`.",
    )
    .aliases(&["value"]),
    OptionDoc::new(
        "backrefs",
        OptKind::Bool,
        "Expand `regexp` group references in `line`. When `regexp` matches no line, the file is left \
unchanged.",
    )
    .default("no"),
    OptionDoc::new(
        "insertafter",
        OptKind::Str,
        "When no line matched `regexp`/`search_string`, insert after the last line matching this regular \
expression, or at the end (`EOF`). Inserts at the end when the expression matches nothing.",
    ),
    OptionDoc::new(
        "insertbefore",
        OptKind::Str,
        "When no line matched, insert before the last line matching this regular expression, or at the \
start (`BOF`).",
    ),
    OptionDoc::new("create", OptKind::Bool, "Create the file when it does not exist.").default("no"),
    OptionDoc::new(
        "backup",
        OptKind::Bool,
        "Keep a timestamped copy of the original file when it changes.",
    )
    .default("no"),
    OptionDoc::new(
        "firstmatch",
        OptKind::Bool,
        "Use the first matching line for `regexp`/`insertafter`/`insertbefore` instead of the last.",
    )
    .default("no"),
    OptionDoc::new(
        "validate",
        OptKind::Str,
        "Command that checks the new file before it replaces the old one; `%s` is the new file. Not shell code: it is split into words like a shell does and each word is passed as one argument, so \
`|`, `;`, `$(...)` and globs are plain characters (as in Ansible).",
    ),
    OWNER_OPT,
    GROUP_OPT,
    MODE_OPT,
    UNSAFE_WRITES_OPT,
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "lineinfile",
    aliases: &[],
    short: "Manage lines in text files",
    description: "Ensures a particular line is in a file, or replaces an existing line matched by a \
regular expression or a literal string. The file is read once, the new content is computed on the \
controller and uploaded atomically only when it differs. Use `blockinfile` for multi-line blocks, \
`replace` for multiple occurrences, `template`/`copy` for whole files.",
    free_form: false,
    options: OPTIONS,
    examples: "- lineinfile:\n    path: /etc/selinux/config\n    regexp: '^SELINUX='\n    line: SELINUX=enforcing\n\n\
- lineinfile:\n    path: /etc/hosts\n    line: 127.0.0.1 app.local\n    insertafter: '^127\\.0\\.0\\.1'\n\n\
- lineinfile:\n    path: /etc/ssh/sshd_config\n    regexp: '^#?(PermitRootLogin) .*'\n    line: '\\1 no'\n    backrefs: yes\n",
    returns: &[
        ReturnDoc {
            name: "msg",
            description: "`line added`, `line replaced`, `N line(s) removed`, possibly with `and ownership, perms or SE linux context changed`",
        },
        ReturnDoc {
            name: "backup",
            description: "name of the backup file, or an empty string",
        },
        ReturnDoc {
            name: "found",
            description: "with state=absent: the number of lines removed",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    path: String,
    #[serde(default)]
    regexp: Option<String>,
    #[serde(default)]
    search_string: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    line: Option<String>,
    #[serde(default)]
    backrefs: bool,
    #[serde(default)]
    insertafter: Option<String>,
    #[serde(default)]
    insertbefore: Option<String>,
    #[serde(default)]
    create: bool,
    #[serde(default)]
    backup: bool,
    #[serde(default)]
    firstmatch: bool,
    #[serde(default)]
    validate: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_mode")]
    mode: Option<Mode>,
}

pub(crate) struct LineInFile;

/// Search a line the way Python's `re.search` does on a line read with its
/// newline: `$` must also match before that newline, so it is dropped.
fn search_line<'h>(re: &Regex, line: &'h [u8]) -> Result<Option<Captures<'h>>, ModuleError> {
    let text = line.strip_suffix(b"\n").unwrap_or(line);
    re.captures(text)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Inputs of [`present`], already compiled.
pub(crate) struct PresentSpec<'a> {
    pub regexp: Option<&'a Regex>,
    pub search_string: Option<&'a [u8]>,
    pub line: &'a [u8],
    pub insertafter: Option<&'a str>,
    pub insertbefore: Option<&'a str>,
    pub insert_re: Option<&'a Regex>,
    pub backrefs: Option<&'a Template>,
    pub firstmatch: bool,
}

/// Ansible's `present()`, line for line: returns (changed, msg).
pub(crate) fn present(lines: &mut Vec<Vec<u8>>, s: &PresentSpec<'_>) -> Result<(bool, &'static str), ModuleError> {
    let line = s.line;
    let sep: &[u8] = b"\n";
    let mut index: [i64; 2] = [-1, -1];
    let mut matched_caps: Option<Vec<u8>> = None;
    let mut matched = false;

    if let Some(re) = s.regexp {
        for (no, cur) in lines.iter().enumerate() {
            if let Some(c) = search_line(re, cur)? {
                index[0] = no as i64;
                matched = true;
                matched_caps = s.backrefs.map(|t| t.expand(&c));
                if s.firstmatch {
                    break;
                }
            }
        }
    }
    if let Some(ss) = s.search_string {
        for (no, cur) in lines.iter().enumerate() {
            if contains(cur, ss) {
                index[0] = no as i64;
                matched = true;
                if s.firstmatch {
                    break;
                }
            }
        }
    }
    if !matched {
        for (no, cur) in lines.iter().enumerate() {
            if line == rstrip_eol(cur) {
                index[0] = no as i64;
            } else if let Some(true) = s
                .insert_re
                .map(|re| search_line(re, cur).map(|c| c.is_some()))
                .transpose()?
            {
                if s.insertafter.is_some() {
                    index[1] = no as i64 + 1;
                    if s.firstmatch {
                        break;
                    }
                }
                if s.insertbefore.is_some() {
                    index[1] = no as i64;
                    if s.firstmatch {
                        break;
                    }
                }
            }
        }
    }

    let with_sep = |l: &[u8]| {
        let mut v = l.to_vec();
        v.extend_from_slice(sep);
        v
    };
    let ends_with_eol = |l: &Vec<u8>| matches!(l.last(), Some(b'\n' | b'\r'));

    if index[0] != -1 {
        let mut new_line = match (&matched_caps, matched) {
            (Some(expanded), true) => expanded.clone(),
            _ => line.to_vec(),
        };
        if !new_line.ends_with(sep) {
            new_line.extend_from_slice(sep);
        }
        let i0 = index[0] as usize;
        if lines[i0] != new_line {
            lines[i0] = new_line;
            return Ok((true, "line replaced"));
        }
        return Ok((false, ""));
    }
    if s.backrefs.is_some() {
        // Without a match the back-references cannot be filled: do nothing.
        return Ok((false, ""));
    }
    if s.insertbefore == Some("BOF") || s.insertafter == Some("BOF") {
        lines.insert(0, with_sep(line));
        return Ok((true, "line added"));
    }
    if s.insertafter == Some("EOF") || index[1] == -1 {
        if lines.last().is_some_and(|l| !ends_with_eol(l)) {
            lines.push(sep.to_vec());
        }
        lines.push(with_sep(line));
        return Ok((true, "line added"));
    }
    let i1 = index[1] as usize;
    if s.insertafter.is_some() {
        if lines.len() == i1 {
            if rstrip_eol(&lines[i1 - 1]) != line {
                lines.push(with_sep(line));
                return Ok((true, "line added"));
            }
        } else if line != rstrip_eol(&lines[i1]) {
            lines.insert(i1, with_sep(line));
            return Ok((true, "line added"));
        }
        return Ok((false, ""));
    }
    lines.insert(i1, with_sep(line));
    Ok((true, "line added"))
}

/// Ansible's `absent()` filter: returns the number of lines removed.
fn absent(
    lines: &mut Vec<Vec<u8>>,
    regexp: Option<&Regex>,
    search: Option<&[u8]>,
    line: Option<&[u8]>,
) -> Result<usize, ModuleError> {
    let before = lines.len();
    let mut kept = Vec::with_capacity(lines.len());
    for cur in lines.drain(..) {
        let found = if let Some(re) = regexp {
            search_line(re, &cur)?.is_some()
        } else if let Some(ss) = search {
            contains(&cur, ss)
        } else {
            line.is_some_and(|l| l == rstrip_eol(&cur))
        };
        if !found {
            kept.push(cur);
        }
    }
    *lines = kept;
    Ok(before - lines.len())
}

#[async_trait]
impl Module for LineInFile {
    fn query_hints(&self, args: &Map<String, Value>) -> Vec<crate::modules::PathQuery> {
        crate::modules::host::prefetch::needs("lineinfile", args)
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
        let state_present = p.state.as_deref() != Some("absent");
        exclusive(
            "lineinfile",
            ("insertbefore", p.insertbefore.is_some()),
            ("insertafter", p.insertafter.is_some()),
        )?;
        exclusive(
            "lineinfile",
            ("regexp", p.regexp.is_some()),
            ("search_string", p.search_string.is_some()),
        )?;
        exclusive(
            "lineinfile",
            ("backrefs", p.backrefs),
            ("search_string", p.search_string.is_some()),
        )?;
        check_validate(p.validate.as_deref())?;
        let regexp = p
            .regexp
            .as_deref()
            .map(|r| pyre::compile("regexp", r, Subject::Bytes, false, false))
            .transpose()?;
        let attrs = AttrParams {
            owner: p.owner.clone(),
            group: p.group.clone(),
            mode: p.mode.clone(),
        };

        if state_present {
            if p.backrefs && regexp.is_none() {
                return Err(ModuleError::Args("regexp is required with backrefs=true".into()));
            }
            let line = p
                .line
                .clone()
                .ok_or_else(|| ModuleError::Args("line is required with state=present".into()))?;
            let (ins_aft, ins_bef) = match (p.insertafter.as_deref(), p.insertbefore.as_deref()) {
                (None, None) => (Some("EOF"), None),
                other => other,
            };
            let insert_re = match (ins_aft, ins_bef) {
                (Some(a), _) if a != "BOF" && a != "EOF" => {
                    Some(pyre::compile("insertafter", a, Subject::Bytes, false, false)?)
                }
                (_, Some(b)) if b != "BOF" => Some(pyre::compile("insertbefore", b, Subject::Bytes, false, false)?),
                _ => None,
            };
            let template = match (&regexp, p.backrefs) {
                (Some(re), true) => Some(Template::parse(line.as_bytes(), re)?),
                _ => None,
            };
            let spec = PresentSpec {
                regexp: regexp.as_ref(),
                search_string: p.search_string.as_deref().map(str::as_bytes),
                line: line.as_bytes(),
                insertafter: ins_aft,
                insertbefore: ins_bef,
                insert_re: insert_re.as_ref(),
                backrefs: template.as_ref(),
                firstmatch: p.firstmatch,
            };
            query_present(ctx, &path, &p, &spec, attrs).await
        } else {
            if p.regexp.is_none() && p.search_string.is_none() && p.line.is_none() {
                return Err(ModuleError::Args(
                    "one of line, search_string, or regexp is required with state=absent".into(),
                ));
            }
            query_absent(ctx, &path, &p, regexp.as_ref(), attrs).await
        }
    }
}

async fn query_present(
    ctx: &ModuleCtx<'_>,
    path: &str,
    p: &Params,
    spec: &PresentSpec<'_>,
    attrs: AttrParams,
) -> Result<Plan, ModuleError> {
    let st = query_file(ctx, path, true).await?;
    not_a_dir(&st, path)?;
    if !st.exists() && !p.create {
        return Ok(Plan::Done(
            ModuleOutcome::failed(format!("Destination {path} does not exist !")).with("rc", 257),
        ));
    }
    let before = st.content.clone().unwrap_or_default();
    let mut lines = readlines(&before);
    let (changed, msg) = present(&mut lines, spec)?;
    let after: Vec<u8> = lines.concat();
    let mut out = ModuleOutcome::changed(changed);
    if ctx.diff_mode {
        out = out.with_diff(content_diff(path, &before, &after));
    }
    let msg = msg.to_string();
    if !st.exists() {
        if !changed {
            return Ok(Plan::Done(out.with_msg(msg).with("backup", "")));
        }
        // Ansible stops before the attribute check in check mode for a new
        // file: only the write reports the attributes.
        let change = EditLines::Write {
            parents_of: (!st.parent_exists).then(|| path.to_string()),
            real_path: st.real_path.clone(),
            file_attrs: attrs.file_attrs(&st),
            data: after,
            validate: p.validate.clone(),
            backup: false,
            new_attrs: attrs.differ_for_new(&st),
        };
        return Ok(Plan::change(out.with_msg(msg).with("backup", ""), change));
    }
    plan_existing(out, msg, changed, st, after, p, attrs)
}

async fn query_absent(
    ctx: &ModuleCtx<'_>,
    path: &str,
    p: &Params,
    regexp: Option<&Regex>,
    attrs: AttrParams,
) -> Result<Plan, ModuleError> {
    let st = query_file(ctx, path, true).await?;
    not_a_dir(&st, path)?;
    if !st.exists() {
        return Ok(Plan::Done(ModuleOutcome::changed(false).with_msg("file not present")));
    }
    let before = st.content.clone().unwrap_or_default();
    let mut lines = readlines(&before);
    let found = absent(
        &mut lines,
        regexp,
        p.search_string.as_deref().map(str::as_bytes),
        p.line.as_deref().map(str::as_bytes),
    )?;
    let changed = found > 0;
    let after: Vec<u8> = lines.concat();
    let mut out = ModuleOutcome::changed(changed);
    if ctx.diff_mode {
        out = out.with_diff(content_diff(path, &before, &after));
    }
    let msg = if changed {
        format!("{found} line(s) removed")
    } else {
        String::new()
    };
    plan_existing(out.with("found", found), msg, changed, st, after, p, attrs)
}

/// The plan for an existing file: write the new content (after a backup),
/// or only fix its attributes, or nothing.
fn plan_existing(
    out: ModuleOutcome,
    mut msg: String,
    changed: bool,
    st: FileState,
    after: Vec<u8>,
    p: &Params,
    attrs: AttrParams,
) -> Result<Plan, ModuleError> {
    let attrs_differ = attrs.differ(&st);
    if attrs_differ {
        attrs_msg(&mut msg, changed);
    }
    let out = out.with_msg(msg).with("backup", "");
    if changed {
        let change = EditLines::Write {
            parents_of: None,
            real_path: st.real_path.clone(),
            file_attrs: attrs.file_attrs(&st),
            data: after,
            validate: p.validate.clone(),
            backup: p.backup,
            new_attrs: false,
        };
        Ok(Plan::change(out, change))
    } else if attrs_differ {
        Ok(Plan::change(out, SetAttrs { st, attrs }))
    } else {
        Ok(Plan::Done(out))
    }
}

/// What `lineinfile` changes on the host.
enum EditLines {
    /// Write the new content (after a backup of the old one).
    Write {
        /// Create the parent directories of this path first.
        parents_of: Option<String>,
        real_path: String,
        file_attrs: FileAttrs,
        data: Vec<u8>,
        validate: Option<String>,
        backup: bool,
        /// A new file whose attributes the write sets: the real run says so.
        new_attrs: bool,
    },
}

#[async_trait]
impl Change for EditLines {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        mut planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        match *self {
            EditLines::Write {
                parents_of,
                real_path,
                file_attrs,
                data,
                validate,
                backup,
                new_attrs,
            } => {
                if let Some(path) = parents_of {
                    make_parents(ctx, &path).await?;
                }
                if backup {
                    let name = backup_local(ctx, &real_path).await?;
                    planned = planned.with("backup", name);
                }
                write_file(ctx, &real_path, &data, &file_attrs, validate.as_deref()).await?;
                if new_attrs {
                    attrs_msg(planned.msg.get_or_insert_with(String::new), true);
                }
            }
        }
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::host::file_state::testutil::{mode_of, Harness};

    fn apply(content: &str, args: Value) -> (String, bool, String) {
        let p: Params = parse_params(&DOC, args.as_object().cloned().unwrap_or_default()).unwrap();
        let regexp = p
            .regexp
            .as_deref()
            .map(|r| pyre::compile("regexp", r, Subject::Bytes, false, false).unwrap());
        let (a, b) = match (p.insertafter.as_deref(), p.insertbefore.as_deref()) {
            (None, None) => (Some("EOF"), None),
            o => o,
        };
        let ins = match (a, b) {
            (Some(x), _) if x != "EOF" && x != "BOF" => {
                Some(pyre::compile("i", x, Subject::Bytes, false, false).unwrap())
            }
            (_, Some(x)) if x != "BOF" => Some(pyre::compile("i", x, Subject::Bytes, false, false).unwrap()),
            _ => None,
        };
        let line = p.line.clone().unwrap();
        let tpl = match (&regexp, p.backrefs) {
            (Some(re), true) => Some(Template::parse(line.as_bytes(), re).unwrap()),
            _ => None,
        };
        let spec = PresentSpec {
            regexp: regexp.as_ref(),
            search_string: p.search_string.as_deref().map(str::as_bytes),
            line: line.as_bytes(),
            insertafter: a,
            insertbefore: b,
            insert_re: ins.as_ref(),
            backrefs: tpl.as_ref(),
            firstmatch: p.firstmatch,
        };
        let mut lines = readlines(content.as_bytes());
        let (changed, msg) = present(&mut lines, &spec).unwrap();
        (String::from_utf8(lines.concat()).unwrap(), changed, msg.to_string())
    }

    #[test]
    fn present_semantics_match_ansible() {
        // Last match is replaced.
        let r = apply("a=1\nb=2\na=3\n", json!({"path": "x", "regexp": "^a=", "line": "a=9"}));
        assert_eq!(r, ("a=1\nb=2\na=9\n".into(), true, "line replaced".into()));
        // firstmatch replaces the first one.
        let r = apply(
            "a=1\nb=2\na=3\n",
            json!({"path": "x", "regexp": "^a=", "line": "a=9", "firstmatch": true}),
        );
        assert_eq!(r.0, "a=9\nb=2\na=3\n");
        // Line already present elsewhere: no change even though regexp does not match.
        let r = apply("x\ny\n", json!({"path": "x", "regexp": "^zzz", "line": "x"}));
        assert_eq!((r.1, r.2.as_str()), (false, ""));
        // Appending to a file without a final newline adds one first.
        let r = apply("x", json!({"path": "x", "line": "y"}));
        assert_eq!(r.0, "x\ny\n");
        // insertafter regex with no match -> EOF.
        let r = apply("a\nb\n", json!({"path": "x", "line": "new", "insertafter": "^nomatch"}));
        assert_eq!(r.0, "a\nb\nnew\n");
        // insertafter regex: after the last matching line.
        let r = apply(
            "# c1\nx\n# c2\ny\n",
            json!({"path": "x", "line": "new", "insertafter": "^#"}),
        );
        assert_eq!(r.0, "# c1\nx\n# c2\nnew\ny\n");
        let r = apply(
            "# c1\nx\n# c2\ny\n",
            json!({"path": "x", "line": "new", "insertafter": "^#", "firstmatch": "yes"}),
        );
        assert_eq!(r.0, "# c1\nnew\nx\n# c2\ny\n");
        // insertafter and the next line is already the line: no change.
        let r = apply("# c\nnew\n", json!({"path": "x", "line": "new", "insertafter": "^# c"}));
        assert!(!r.1);
        // insertbefore regex and BOF.
        let r = apply("a\nb\n", json!({"path": "x", "line": "new", "insertbefore": "^b"}));
        assert_eq!(r.0, "a\nnew\nb\n");
        let r = apply("a\n", json!({"path": "x", "line": "new", "insertbefore": "BOF"}));
        assert_eq!(r.0, "new\na\n");
        // insertbefore with no match -> end of file.
        let r = apply("a\n", json!({"path": "x", "line": "new", "insertbefore": "^zz"}));
        assert_eq!(r.0, "a\nnew\n");
        // backrefs: groups expanded; no match leaves the file alone.
        let r = apply(
            "#PermitRootLogin yes\n",
            json!({"path": "x", "regexp": "^#?(PermitRootLogin) .*$", "line": "\\1 no", "backrefs": true}),
        );
        assert_eq!(r.0, "PermitRootLogin no\n");
        let r = apply(
            "other\n",
            json!({"path": "x", "regexp": "^(nomatch)", "line": "\\1 no", "backrefs": true}),
        );
        assert_eq!(r, ("other\n".into(), false, "".into()));
        // search_string is literal.
        let r = apply(
            "a.b = 1\naxb = 2\n",
            json!({"path": "x", "search_string": "a.b", "line": "a.b = 3"}),
        );
        assert_eq!(r.0, "a.b = 3\naxb = 2\n");
        // `$` matches before the line's newline, as in Python.
        let r = apply(
            "key=old\n",
            json!({"path": "x", "regexp": "^key=old$", "line": "key=new"}),
        );
        assert_eq!(r.0, "key=new\n");
    }

    #[test]
    fn absent_semantics() {
        let re = pyre::compile("regexp", "^#", Subject::Bytes, false, false).unwrap();
        let mut lines = readlines(b"# a\nb\n# c\n");
        assert_eq!(absent(&mut lines, Some(&re), None, None).unwrap(), 2);
        assert_eq!(lines.concat(), b"b\n");
        let mut lines = readlines(b"x\nxy\r\nx\r\n");
        assert_eq!(absent(&mut lines, None, None, Some(b"x")).unwrap(), 2);
        assert_eq!(lines.concat(), b"xy\r\n");
    }

    #[tokio::test]
    async fn apply_reapply_check_and_errors() {
        let h = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("conf");
        let fs = f.to_str().unwrap();
        std::fs::write(&f, "port=1\nhost=a\n").unwrap();

        let args = json!({"path": fs, "regexp": "^port=", "line": "port=22", "mode": "0600"});
        // Check mode predicts the change and leaves the file alone.
        let o = h.run(&LineInFile, true, args.clone()).await.unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "port=1\nhost=a\n");
        assert_eq!(o.diff[0].after, "port=22\nhost=a\n");
        // The real run does exactly that.
        let o = h.run(&LineInFile, false, args.clone()).await.unwrap();
        assert!(o.changed);
        assert_eq!(
            o.msg.as_deref(),
            Some("line replaced and ownership, perms or SE linux context changed")
        );
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "port=22\nhost=a\n");
        assert_eq!(mode_of(&f), 0o600);
        // Second run: nothing to do.
        let o = h.run(&LineInFile, false, args.clone()).await.unwrap();
        assert!(!o.changed, "{:?}", o.msg);
        let o = h.run(&LineInFile, true, args).await.unwrap();
        assert!(!o.changed);

        // Mode alone changes.
        let o = h
            .run(
                &LineInFile,
                false,
                json!({"dest": fs, "line": "host=a", "mode": "u=rw,g=r"}),
            )
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(o.msg.as_deref(), Some("ownership, perms or SE linux context changed"));
        assert_eq!(mode_of(&f), 0o640);

        // Absent with a regexp, backup.
        let o = h
            .run(
                &LineInFile,
                false,
                json!({"path": fs, "regexp": "^host", "state": "absent", "backup": true}),
            )
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(o.msg.as_deref(), Some("1 line(s) removed"));
        assert_eq!(o.ret["found"], 1);
        let backup = o.ret["backup"].as_str().unwrap().to_string();
        assert!(backup.starts_with(fs) && backup.ends_with('~'), "{backup}");
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), "port=22\nhost=a\n");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "port=22\n");
        let o = h
            .run(
                &LineInFile,
                false,
                json!({"path": fs, "regexp": "^host", "state": "absent"}),
            )
            .await
            .unwrap();
        assert!(!o.changed);

        // create: missing file (and parent dir).
        let newf = dir.path().join("sub/new.conf");
        let ns = newf.to_str().unwrap();
        let o = h
            .run(&LineInFile, false, json!({"path": ns, "line": "x"}))
            .await
            .unwrap();
        assert!(o.failed);
        assert_eq!(o.msg.unwrap(), format!("Destination {ns} does not exist !"));
        let o = h
            .run(&LineInFile, true, json!({"path": ns, "line": "x", "create": true}))
            .await
            .unwrap();
        assert!(o.changed);
        assert!(!newf.exists());
        let o = h
            .run(&LineInFile, false, json!({"path": ns, "line": "x", "create": true}))
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(o.msg.as_deref(), Some("line added"));
        assert_eq!(std::fs::read_to_string(&newf).unwrap(), "x\n");

        // validate: a failing validator leaves the file untouched.
        let o = h
            .run(
                &LineInFile,
                false,
                json!({"path": ns, "line": "y", "validate": "grep -q nothing %s"}),
            )
            .await;
        assert!(matches!(o, Err(ModuleError::Failed(ref m)) if m.starts_with("failed to validate")));
        assert_eq!(std::fs::read_to_string(&newf).unwrap(), "x\n");
        let o = h
            .run(
                &LineInFile,
                false,
                json!({"path": ns, "line": "y", "validate": "grep -q y %s"}),
            )
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read_to_string(&newf).unwrap(), "x\ny\n");
        assert_eq!(std::fs::read_dir(newf.parent().unwrap()).unwrap().count(), 1);

        // Bad arguments.
        for bad in [
            json!({"path": fs, "line": "x", "bogus": 1}),
            json!({"path": fs, "regexp": "(", "line": "x"}),
            json!({"path": fs, "line": "x", "insertafter": "a", "insertbefore": "b"}),
            json!({"path": fs, "backrefs": true, "line": "x"}),
            json!({"path": fs}),
            json!({"path": fs, "state": "absent"}),
            json!({"path": fs, "line": "x", "validate": "true"}),
        ] {
            let r = h.run(&LineInFile, false, bad.clone()).await;
            assert!(matches!(r, Err(ModuleError::Args(_))), "{bad}: {:?}", r.map(|o| o.msg));
        }
    }
}
