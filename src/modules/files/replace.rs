//! `replace`: replace every match of a regular expression in a file.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::pyre::{self, Subject, Template};
use crate::connection::FileAttrs;
use crate::modules::args::{de_opt_mode, Mode};
use crate::modules::host::file_state::attrs_msg;
use crate::modules::host::file_state::backup_local;
use crate::modules::host::file_state::check_validate;
use crate::modules::host::file_state::not_a_dir;
use crate::modules::host::file_state::query_file;
use crate::modules::host::file_state::write_file;
use crate::modules::host::file_state::AttrParams;
use crate::modules::host::file_state::SetAttrs;
use crate::modules::host::opts::{GROUP_OPT, MODE_OPT, OWNER_OPT, PATH_ALIASES, UNSAFE_WRITES_OPT};
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("path", OptKind::Path, "The file to modify.")
        .required()
        .aliases(PATH_ALIASES),
    OptionDoc::new(
        "regexp",
        OptKind::Str,
        "Python regular expression, searched in multiline mode (`^`/`$` match at every line).",
    )
    .required(),
    OptionDoc::new(
        "replace",
        OptKind::Str,
        "The replacement; may hold `\\1` or `\\g<name>` back-references.",
    )
    .default(""),
    OptionDoc::new(
        "after",
        OptKind::Str,
        "Only replace in the text after the first match of this expression (dot matches newlines).",
    ),
    OptionDoc::new(
        "before",
        OptKind::Str,
        "Only replace in the text before the match of this expression (dot matches newlines).",
    ),
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
        "encoding",
        OptKind::Str,
        "Character encoding of the file: `utf-8` or `latin-1` (`iso-8859-1`), or `ascii`.",
    )
    .default("utf-8"),
    OWNER_OPT,
    GROUP_OPT,
    MODE_OPT,
    UNSAFE_WRITES_OPT,
];

static DOC: ModuleDoc = ModuleDoc {
    name: "replace",
    aliases: &[],
    short: "Replace all instances of a pattern in a file",
    description: "Replaces every match of `regexp` in the file (or in the part between `after` and \
`before`) with `replace`, using Python regular expression and template syntax. The file is read once, \
the result is computed on the controller and uploaded atomically only when it differs.",
    free_form: false,
    options: OPTIONS,
    examples: "- replace:\n    path: /etc/hosts\n    regexp: '(\\s+)old\\.host\\.name(\\s+.*)?$'\n    replace: '\\1new.host.name\\2'\n\n\
- replace:\n    path: /etc/apache2/sites-available/default.conf\n    after: 'NameVirtualHost [*]'\n    regexp: '^(.+)$'\n    replace: '# \\1'\n",
    returns: &[
        ReturnDoc {
            name: "msg",
            description: "`N replacements made`, or empty",
        },
        ReturnDoc {
            name: "backup_file",
            description: "name of the backup file, when one was made",
        },
        ReturnDoc {
            name: "rc",
            description: "always 0",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    path: String,
    regexp: String,
    #[serde(default)]
    replace: Option<String>,
    #[serde(default)]
    after: Option<String>,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    backup: bool,
    #[serde(default)]
    validate: Option<String>,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default, deserialize_with = "de_opt_mode")]
    mode: Option<Mode>,
}

/// How the file's bytes map to text: regular expressions work on UTF-8.
#[derive(Clone, Copy)]
enum Encoding {
    Utf8,
    Latin1,
    Ascii,
}

impl Encoding {
    fn parse(s: &str) -> Option<Encoding> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "utf-8" | "utf8" | "u8" => Some(Encoding::Utf8),
            "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" | "l1" | "cp819" => Some(Encoding::Latin1),
            "ascii" | "us-ascii" => Some(Encoding::Ascii),
            _ => None,
        }
    }

    fn decode(self, data: &[u8]) -> Option<String> {
        match self {
            Encoding::Utf8 => String::from_utf8(data.to_vec()).ok(),
            Encoding::Ascii => data.is_ascii().then(|| String::from_utf8_lossy(data).into_owned()),
            Encoding::Latin1 => Some(data.iter().map(|&b| char::from(b)).collect()),
        }
    }

    fn encode(self, text: &str) -> Option<Vec<u8>> {
        match self {
            Encoding::Utf8 => Some(text.as_bytes().to_vec()),
            Encoding::Ascii => text.is_ascii().then(|| text.as_bytes().to_vec()),
            Encoding::Latin1 => text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect(),
        }
    }
}

pub(crate) struct Replace;

/// The replacement itself: returns the new text and the number of
/// replacements, or `Err(pattern)` when `after`/`before` did not match.
fn compute(
    contents: &str,
    regexp: &str,
    replace: &str,
    after: Option<&str>,
    before: Option<&str>,
) -> Result<Result<(String, usize), String>, ModuleError> {
    let after = after.filter(|s| !s.is_empty());
    let before = before.filter(|s| !s.is_empty());
    let pattern = match (after, before) {
        (Some(a), Some(b)) => format!("{a}(?P<subsection>.*?){b}"),
        (Some(a), None) => format!("{a}(?P<subsection>.*)"),
        (None, Some(b)) => format!("(?P<subsection>.*){b}"),
        (None, None) => String::new(),
    };
    let (start, end) = if pattern.is_empty() {
        (0, contents.len())
    } else {
        let section_re = pyre::compile("after/before", &pattern, Subject::Text, false, true)?;
        match section_re
            .captures(contents.as_bytes())?
            .and_then(|c| c.name("subsection"))
        {
            Some(m) => (m.start(), m.end()),
            None => return Ok(Err(pattern)),
        }
    };
    let section = &contents.as_bytes()[start..end];
    let re = pyre::compile("regexp", regexp, Subject::Text, true, false)?;
    // Python raises the template's error from `re.subn`, which Ansible
    // reports as a failure of the replacement.
    let tpl = Template::parse(replace.as_bytes(), &re).map_err(|e| {
        let why = e.to_string();
        let why = why.strip_prefix("invalid replacement template: ").unwrap_or(&why);
        ModuleError::Failed(format!("Unable to process replace due to error: {why}"))
    })?;
    let (new_section, n) = pyre::subn(&re, &tpl, section)?;
    let mut out = contents.as_bytes()[..start].to_vec();
    out.extend_from_slice(&new_section);
    out.extend_from_slice(&contents.as_bytes()[end..]);
    let text = String::from_utf8(out).map_err(|_| {
        ModuleError::Failed("the replacement produced text that is not valid in the file's encoding".into())
    })?;
    Ok(Ok((text, n)))
}

#[async_trait]
impl Module for Replace {
    fn query_hints(&self, args: &Map<String, Value>) -> Vec<crate::modules::PathQuery> {
        crate::modules::host::prefetch::needs("replace", args)
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
        let regexp = p.regexp.clone();
        let enc_name = p.encoding.clone().unwrap_or_else(|| "utf-8".into());
        let enc = Encoding::parse(&enc_name)
            .ok_or_else(|| ModuleError::Args(format!("replace: unsupported encoding `{enc_name}`")))?;
        check_validate(p.validate.as_deref())?;
        let replace = p.replace.clone().unwrap_or_default();
        // Validate the expressions before touching the host.
        let _checked = compute("", &regexp, &replace, None, None)?;
        let attrs = AttrParams {
            owner: p.owner.clone(),
            group: p.group.clone(),
            mode: p.mode.clone(),
        };

        let st = query_file(ctx, &path, true).await?;
        not_a_dir(&st, &path)?;
        if !st.exists() {
            return Ok(Plan::Done(
                ModuleOutcome::failed(format!("Path {path} does not exist !")).with("rc", 257),
            ));
        }
        let raw = st.content.clone().unwrap_or_default();
        let contents = enc.decode(&raw).ok_or_else(|| {
            ModuleError::Failed(format!("Unable to read the contents of {path}: not valid {enc_name}"))
        })?;
        let (result, n) = match compute(&contents, &regexp, &replace, p.after.as_deref(), p.before.as_deref())? {
            Ok(r) => r,
            Err(pattern) => {
                return Ok(Plan::Done(ModuleOutcome::changed(false).with("rc", 0).with_msg(
                    format!("Pattern for before/after params did not match the given file: {pattern}"),
                )))
            }
        };
        let changed = n > 0 && result != contents;
        let mut out = ModuleOutcome::changed(changed).with("rc", 0);
        let mut msg = String::new();
        if changed {
            msg = format!("{n} replacements made");
            if ctx.diff_mode {
                out = out.with_diff(Diff {
                    before_header: path.clone(),
                    after_header: path.clone(),
                    before: contents.clone(),
                    after: result.clone(),
                });
            }
        }
        let attrs_differ = attrs.differ(&st);
        if attrs_differ {
            attrs_msg(&mut msg, changed);
        }
        let out = out.with_msg(msg);
        if changed {
            let change = WriteReplaced {
                // Encoded only by the write: check mode reports the change
                // of a result the encoding cannot hold, as before.
                data: enc.encode(&result),
                enc_name,
                backup: p.backup,
                file_attrs: attrs.file_attrs(&st),
                real_path: st.real_path,
                validate: p.validate,
            };
            Ok(Plan::change(out, change))
        } else if attrs_differ {
            Ok(Plan::change(out, SetAttrs { st, attrs }))
        } else {
            Ok(Plan::Done(out))
        }
    }
}

/// Write the file with the replacements (after a backup of the old one).
struct WriteReplaced {
    /// The new content in the file's encoding (`None`: it cannot be encoded).
    data: Option<Vec<u8>>,
    enc_name: String,
    backup: bool,
    file_attrs: FileAttrs,
    real_path: String,
    validate: Option<String>,
}

#[async_trait]
impl Change for WriteReplaced {
    async fn apply(
        self: Box<Self>,
        ctx: &ModuleCtx<'_>,
        mut planned: ModuleOutcome,
    ) -> Result<ModuleOutcome, ModuleError> {
        let data = self
            .data
            .ok_or_else(|| ModuleError::Failed(format!("the result cannot be encoded as {}", self.enc_name)))?;
        if self.backup {
            planned = planned.with("backup_file", backup_local(ctx, &self.real_path).await?);
        }
        write_file(ctx, &self.real_path, &data, &self.file_attrs, self.validate.as_deref()).await?;
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::modules::host::file_state::testutil::Harness;

    #[test]
    fn sections_and_templates() {
        let (s, n) = compute("a=1\nb=2\n", r"^(\w)=(\d)$", r"\2=\1", None, None)
            .unwrap()
            .unwrap();
        assert_eq!((s.as_str(), n), ("1=a\n2=b\n", 2));
        let text = "x\n[s]\nx\n[t]\nx\n";
        let (s, n) = compute(text, "^x$", "y", Some(r"\[s\]"), Some(r"\[t\]"))
            .unwrap()
            .unwrap();
        assert_eq!((s.as_str(), n), ("x\n[s]\ny\n[t]\nx\n", 1));
        let (s, _) = compute(text, "^x$", "y", Some(r"\[s\]"), None).unwrap().unwrap();
        assert_eq!(s, "x\n[s]\ny\n[t]\ny\n");
        let (s, _) = compute(text, "^x$", "y", None, Some(r"\[t\]")).unwrap().unwrap();
        assert_eq!(s, "y\n[s]\ny\n[t]\nx\n");
        assert!(compute(text, "x", "y", Some("nomatch"), None).unwrap().is_err());
    }

    #[tokio::test]
    async fn apply_reapply_check_and_errors() {
        let h = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        let fs = f.to_str().unwrap();
        std::fs::write(&f, "host old.example\nother old.example\n").unwrap();
        let args = json!({"path": fs, "regexp": r"old\.(example)", "replace": r"new.\1"});
        let o = h.run(&Replace, true, args.clone()).await.unwrap();
        assert!(o.changed);
        assert_eq!(o.msg.as_deref(), Some("2 replacements made"));
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "host old.example\nother old.example\n"
        );
        let o = h.run(&Replace, false, args.clone()).await.unwrap();
        assert!(o.changed);
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "host new.example\nother new.example\n"
        );
        let o = h.run(&Replace, false, args.clone()).await.unwrap();
        assert!(!o.changed);
        assert_eq!(o.msg.as_deref(), Some(""));
        // Latin-1 round trip keeps the other bytes intact.
        std::fs::write(&f, b"caf\xe9 x\n").unwrap();
        let o = h
            .run(
                &Replace,
                false,
                json!({"path": fs, "regexp": "x", "replace": "y", "encoding": "latin-1"}),
            )
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read(&f).unwrap(), b"caf\xe9 y\n");
        let o = h
            .run(&Replace, false, json!({"path": fs, "regexp": "y", "replace": "z"}))
            .await;
        assert!(matches!(o, Err(ModuleError::Failed(_))));
        // A bad replacement fails as Ansible's (from `re.subn`), not as an argument error.
        std::fs::write(&f, "a\n").unwrap();
        for (tpl, why) in [(r"\1", "invalid group reference 1"), (r"\D", r"bad escape \D")] {
            let r = h
                .run(&Replace, false, json!({"path": fs, "regexp": "a", "replace": tpl}))
                .await;
            let want = format!("Unable to process replace due to error: {why}");
            assert!(matches!(&r, Err(ModuleError::Failed(m)) if *m == want), "{r:?}");
        }
        for bad in [
            json!({"path": fs}),
            json!({"path": fs, "regexp": "(", "replace": "x"}),
            json!({"path": fs, "regexp": "a", "encoding": "klingon"}),
            json!({"path": fs, "regexp": "a", "extra": 1}),
        ] {
            let r = h.run(&Replace, false, bad.clone()).await;
            assert!(matches!(r, Err(ModuleError::Args(_))), "{bad}");
        }
    }
}
