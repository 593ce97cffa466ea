//! `authorized_key`: SSH keys in a user's `authorized_keys`.
//!
//! One round trip reads the user's home, uid/gid and the current file; the
//! new file is computed here the way Ansible does (keys identified by their
//! base64 blob, existing order kept, new keys appended; a key whose options
//! or comment differ is replaced) and written atomically only if it differs.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::{sh_quote, FileAttrs};
use crate::modules::host::command::run_checked;
use crate::modules::host::text::tagged;
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

static DOC: ModuleDoc = ModuleDoc {
    name: "authorized_key",
    aliases: &[],
    short: "Manage SSH authorized keys",
    description: "Adds or removes SSH public keys in a user's `~/.ssh/authorized_keys` (or `path`). The \
directory is created with mode 0700 and the file written with mode 0600, both owned by the user.",
    free_form: false,
    options: &[
        OptionDoc::new("user", OptKind::Str, "The user whose authorized_keys is managed.").required(),
        OptionDoc::new("key", OptKind::Str, "One or more public keys, one per line.").required(),
        OptionDoc::new("path", OptKind::Path, "Alternative file path (default `~user/.ssh/authorized_keys`)."),
        OptionDoc::new("manage_dir", OptKind::Bool, "Create the key file's directory and fix its mode and owner.")
            .default("yes"),
        OptionDoc::new("state", OptKind::Str, "Whether the keys are present.")
            .default("present")
            .choices(&["absent", "present"]),
        OptionDoc::new("key_options", OptKind::Str, "Options prefixed to each key (`no-port-forwarding,from=\"10.0.1.1\"`)."),
        OptionDoc::new("exclusive", OptKind::Bool, "Remove every other key from the file.").default("no"),
        OptionDoc::new("comment", OptKind::Str, "Replace the keys' comments with this."),
        OptionDoc::new("follow", OptKind::Bool, "Follow a symlinked key file.").default("no"),
        OptionDoc::new("validate_certs", OptKind::Bool, "Accepted for compatibility (keys from URLs are not supported).")
    .ignored()
            .default("yes"),
    ],
    examples: "- authorized_key:\n    user: deploy\n    key: \"{{ lookup('file', 'files/deploy.pub') }}\"\n\n\
- authorized_key:\n    user: deploy\n    key: ssh-ed25519 AAAA... ops@laptop\n    key_options: no-port-forwarding\n    exclusive: yes\n",
    returns: &[
        ReturnDoc { name: "keyfile", description: "path of the key file" },
        ReturnDoc { name: "key", description: "the key(s) given" },
        ReturnDoc { name: "user", description: "the user" },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    user: String,
    key: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    manage_dir: Option<bool>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    key_options: Option<String>,
    #[serde(default)]
    exclusive: bool,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    follow: bool,
}

/// A parsed key line: `[options] type blob [comment]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyLine {
    pub options: Option<String>,
    pub kind: String,
    pub blob: String,
    pub comment: Option<String>,
}

impl KeyLine {
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(o) = &self.options {
            s.push_str(o);
            s.push(' ');
        }
        s.push_str(&self.kind);
        s.push(' ');
        s.push_str(&self.blob);
        if let Some(c) = &self.comment {
            s.push(' ');
            s.push_str(c);
        }
        s
    }
}

fn is_key_type(t: &str) -> bool {
    t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-") || t.starts_with("sk-ssh-") || t.starts_with("sk-ecdsa-")
}

/// Split on whitespace outside double quotes, keeping the separators' positions.
fn tokens(line: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        if c == '"' {
            quoted = !quoted;
        }
        if c.is_whitespace() && !quoted {
            if let Some(s) = start.take() {
                out.push((s, i));
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push((s, line.len()));
    }
    out
}

/// Parse one key line; `None` for comments, blank and invalid lines.
pub(crate) fn parse_key(line: &str) -> Option<KeyLine> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let toks = tokens(line);
    let ti = toks.iter().position(|&(s, e)| is_key_type(&line[s..e]))?;
    let (ks, ke) = toks[ti];
    let &(bs, be) = toks.get(ti + 1)?;
    let options = (ti > 0).then(|| line[..ks].trim().to_string());
    let comment = toks.get(ti + 2).map(|&(cs, _)| line[cs..].trim().to_string());
    Some(KeyLine {
        options,
        kind: line[ks..ke].to_string(),
        blob: line[bs..be].to_string(),
        comment,
    })
}

/// Ansible's algorithm: the new file content for `wanted` keys against `existing` content.
pub(crate) fn compute(existing: &str, wanted: &[KeyLine], present: bool, exclusive: bool) -> String {
    // Existing keys by blob, in file order; comments and unparsable lines are kept as they are.
    let mut lines: Vec<(Option<KeyLine>, String)> = existing.lines().map(|l| (parse_key(l), l.to_string())).collect();
    for w in wanted {
        let pos = lines
            .iter()
            .position(|(k, _)| k.as_ref().is_some_and(|k| k.blob == w.blob));
        match (present, pos) {
            (true, Some(i)) => {
                let same = lines[i].0.as_ref() == Some(w);
                if !same {
                    lines[i] = (Some(w.clone()), w.render());
                }
            }
            (true, None) => lines.push((Some(w.clone()), w.render())),
            (false, Some(i)) => {
                lines.remove(i);
            }
            (false, None) => {}
        }
    }
    if exclusive && present {
        lines.retain(|(k, _)| match k {
            Some(k) => wanted.iter().any(|w| w.blob == k.blob),
            None => false,
        });
    }
    let mut out = String::new();
    for (_, l) in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

pub(crate) struct AuthorizedKeyModule;

#[async_trait]
impl Module for AuthorizedKeyModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let user = p.user.clone();
        let key_text = p.key.clone();
        if user.is_empty() {
            return Err(ModuleError::Args("authorized_key: `user` is required".into()));
        }
        let state = p.state.as_deref().unwrap_or("present");
        if !matches!(state, "present" | "absent") {
            return Err(ModuleError::Args(format!(
                "authorized_key: state must be present or absent, got `{state}`"
            )));
        }
        if key_text.trim_start().starts_with("http://") || key_text.trim_start().starts_with("https://") {
            return Err(ModuleError::Args(
                "authorized_key: keys from URLs are not supported; fetch the keys first (e.g. with a lookup)".into(),
            ));
        }
        let mut wanted = Vec::new();
        for l in key_text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        {
            let mut k = parse_key(l).ok_or_else(|| ModuleError::Args(format!("invalid key specified: {l}")))?;
            if let Some(o) = &p.key_options {
                k.options = Some(o.clone());
            }
            if let Some(c) = &p.comment {
                k.comment = Some(c.clone());
            }
            wanted.push(k);
        }
        if wanted.is_empty() {
            return Err(ModuleError::Args("authorized_key: `key` holds no key".into()));
        }

        let u = sh_quote(&user);
        let path_expr = match &p.path {
            Some(path) => sh_quote(path),
            None => "\"$h/.ssh/authorized_keys\"".into(),
        };
        let resolve = if p.follow {
            "f=$(readlink -f -- \"$f\" || echo \"$f\"); "
        } else {
            ""
        };
        let script = format!(
            "pw=$(getent passwd {u}) || {{ echo NOUSER; exit 0; }}; h=$(printf '%s' \"$pw\" | cut -d: -f6); \
             echo \"U|$(printf '%s' \"$pw\" | cut -d: -f3)|$(printf '%s' \"$pw\" | cut -d: -f4)\"; \
             f={path_expr}; {resolve}echo \"F|$f\"; d=$(dirname -- \"$f\"); \
             [ -d \"$d\" ] && echo \"D|$(stat -c '%a|%u|%g' -- \"$d\")\"; \
             if [ -f \"$f\" ]; then echo \"S|$(stat -c '%a|%u|%g' -- \"$f\")\"; echo CONTENT; cat -- \"$f\"; fi"
        );
        let out = run_checked(ctx, "authorized_key query", &script).await?.stdout_str();
        if out.lines().next() == Some("NOUSER") {
            return Err(ModuleError::Failed(format!("Failed to lookup user {user}")));
        }
        let (head, content) = match out.split_once("CONTENT\n") {
            Some((h, c)) => (h.to_string(), Some(c.to_string())),
            None => (out.clone(), None),
        };
        let ids = tagged(&head, "U|").next().unwrap_or("0|0").to_string();
        let (uid, gid) = ids.split_once('|').unwrap_or(("0", "0"));
        let file = tagged(&head, "F|").next().unwrap_or("").to_string();
        let dir_stat = tagged(&head, "D|").next().map(str::to_string);
        let file_stat = tagged(&head, "S|").next().map(str::to_string);
        let manage_dir = p.manage_dir.unwrap_or(true) && p.path.is_none();

        let existing = content.clone().unwrap_or_default();
        let new = compute(&existing, &wanted, state == "present", p.exclusive);
        let content_changed = new != existing && !(content.is_none() && new.is_empty());
        let want_attrs = format!("600|{uid}|{gid}");
        let fix_file = content.is_some() && manage_dir && file_stat.as_deref() != Some(want_attrs.as_str());
        let dir_attrs = format!("700|{uid}|{gid}");
        let fix_dir =
            manage_dir && dir_stat.as_deref() != Some(dir_attrs.as_str()) && (content_changed || dir_stat.is_some());
        if !manage_dir && dir_stat.is_none() && content_changed {
            return Err(ModuleError::Failed(format!(
                "directory of {file} does not exist (set manage_dir: yes to create it)"
            )));
        }
        let mut res = ModuleOutcome::changed(content_changed || fix_file || fix_dir);
        let owner = format!("{uid}:{gid}");
        let change = WriteKeys {
            dir: fix_dir.then(|| crate::modules::host::remote_file::parent(&file)),
            write: content_changed.then(|| {
                (
                    new.clone(),
                    FileAttrs {
                        mode: Some(if manage_dir || content.is_none() {
                            0o600
                        } else {
                            file_stat
                                .as_deref()
                                .and_then(|s| s.split('|').next())
                                .and_then(|m| u32::from_str_radix(m, 8).ok())
                                .unwrap_or(0o600)
                        }),
                        owner: Some(uid.to_string()),
                        group: Some(gid.to_string()),
                    },
                )
            }),
            fix_file,
            file: file.clone(),
            owner,
        };
        if ctx.diff_mode && content_changed {
            res.diff.push(Diff {
                before_header: file.clone(),
                after_header: file.clone(),
                before: existing,
                after: new,
            });
        }
        res.ret.insert("user".into(), user.into());
        res.ret.insert("key".into(), key_text.into());
        res.ret.insert("keyfile".into(), file.clone().into());
        res.ret.insert("path".into(), p.path.map_or(Value::Null, Value::String));
        res.ret.insert("state".into(), state.into());
        res.ret.insert("exclusive".into(), p.exclusive.into());
        res.ret.insert("manage_dir".into(), manage_dir.into());
        res.ret
            .insert("key_options".into(), p.key_options.map_or(Value::Null, Value::String));
        res.ret
            .insert("comment".into(), p.comment.map_or(Value::Null, Value::String));
        res.ret.insert("follow".into(), p.follow.into());
        if !res.changed {
            return Ok(Plan::Done(res));
        }
        Ok(Plan::change(res, change))
    }
}

/// Create or fix the key file's directory, then write the file or fix its
/// owner and mode.
struct WriteKeys {
    file: String,
    /// `uid:gid` of the user.
    owner: String,
    /// The directory to create and give mode 0700.
    dir: Option<String>,
    /// The new content and its attributes.
    write: Option<(String, FileAttrs)>,
    /// Give the unchanged file the user's owner and mode 0600.
    fix_file: bool,
}

#[async_trait]
impl Change for WriteKeys {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let owner = &self.owner;
        if let Some(dir) = &self.dir {
            let q = sh_quote(dir);
            run_checked(
                ctx,
                "mkdir",
                &format!("mkdir -p {q} && chown {owner} {q} && chmod 0700 {q}"),
            )
            .await?;
        }
        if let Some((new, attrs)) = &self.write {
            ctx.put_bytes(new.as_bytes(), &self.file, attrs).await?;
        } else if self.fix_file {
            let q = sh_quote(&self.file);
            run_checked(ctx, "chmod", &format!("chown {owner} {q} && chmod 0600 {q}")).await?;
        }
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@a";
    const B: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB bob@b";

    #[test]
    fn parses_lines_with_options() {
        let k = parse_key(r#"no-pty,command="echo a b" ssh-ed25519 AAAAC3 my comment"#).unwrap();
        assert_eq!(k.options.as_deref(), Some(r#"no-pty,command="echo a b""#));
        assert_eq!(k.kind, "ssh-ed25519");
        assert_eq!(k.blob, "AAAAC3");
        assert_eq!(k.comment.as_deref(), Some("my comment"));
        assert!(parse_key("# comment").is_none());
        assert!(parse_key("garbage").is_none());
        assert_eq!(parse_key(A).unwrap().render(), A);
    }

    #[test]
    fn computes_like_ansible() {
        let a = parse_key(A).unwrap();
        let b = parse_key(B).unwrap();
        let existing = format!("# keep me\n{B}\n");
        assert_eq!(
            compute(&existing, std::slice::from_ref(&a), true, false),
            format!("# keep me\n{B}\n{A}\n")
        );
        assert_eq!(
            compute(&format!("{A}\n"), std::slice::from_ref(&a), true, false),
            format!("{A}\n")
        );
        assert_eq!(
            compute(&existing, std::slice::from_ref(&a), true, true),
            format!("{A}\n")
        );
        assert_eq!(
            compute(&format!("{A}\n{B}\n"), std::slice::from_ref(&b), false, false),
            format!("{A}\n")
        );
        let mut with_opts = a.clone();
        with_opts.options = Some("no-pty".into());
        assert_eq!(
            compute(&format!("{A}\n{B}\n"), &[with_opts], true, false),
            format!("no-pty {A}\n{B}\n")
        );
    }
}
