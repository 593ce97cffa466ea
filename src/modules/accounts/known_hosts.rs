//! `known_hosts`: add or remove host keys in an OpenSSH known_hosts file.

use async_trait::async_trait;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha1::Sha1;

use crate::connection::sh_quote;
use crate::modules::host::command::run_checked;
use crate::modules::host::text::text_diff;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "name",
        OptKind::Str,
        "The host, as it appears in known_hosts (`[host]:port` for a non-default port).",
    )
    .required()
    .aliases(&["host"]),
    OptionDoc::new(
        "key",
        OptKind::Str,
        "The line to add (`HOST KEYTYPE BASE64`), as `ssh-keyscan` prints it; required with state=present.",
    ),
    OptionDoc::new("path", OptKind::Path, "The known_hosts file.").default("~/.ssh/known_hosts"),
    OptionDoc::new(
        "hash_host",
        OptKind::Bool,
        "Write the host name hashed (`|1|salt|hash`).",
    )
    .default("no"),
    OptionDoc::new("state", OptKind::Str, "Whether the host's key should be in the file.")
        .default("present")
        .choices(&["absent", "present"]),
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "known_hosts",
    aliases: &[],
    short: "Add or remove a host from the known_hosts file",
    description: "Keeps a host's key in a known_hosts file: a line with the same key type but another key is \
replaced, the same key is left alone (hashed entries are recognised). `state=absent` removes every line for \
the host.",
    free_form: false,
    options: OPTIONS,
    examples: "- known_hosts:\n    name: foo.com.invalid\n    key: \"foo.com.invalid ssh-ed25519 AAAAC3Nza...\"\n    path: /etc/ssh/ssh_known_hosts\n",
    returns: &[],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    name: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    hash_host: bool,
    #[serde(default)]
    state: Option<String>,
}

pub(crate) struct KnownHosts;

/// One known_hosts line split into (marker, hosts, key type, key data).
fn fields(line: &str) -> Option<(Option<&str>, &str, &str, &str)> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    let mut it = t.split_whitespace();
    let mut first = it.next()?;
    let marker = if first.starts_with('@') {
        let m = first;
        first = it.next()?;
        Some(m)
    } else {
        None
    };
    Some((marker, first, it.next()?, it.next()?))
}

fn hash_name(salt: &[u8], name: &str) -> Option<String> {
    let mut mac = Hmac::<Sha1>::new_from_slice(salt).ok()?;
    mac.update(name.as_bytes());
    Some(base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// Whether a hosts field (`a,b` or `|1|salt|hash`) names `name`.
fn hosts_match(hosts: &str, name: &str) -> bool {
    if let Some(rest) = hosts.strip_prefix("|1|") {
        let Some((salt, hash)) = rest.split_once('|') else {
            return false;
        };
        let Ok(salt) = base64::engine::general_purpose::STANDARD.decode(salt) else {
            return false;
        };
        return hash_name(&salt, name).as_deref() == Some(hash);
    }
    hosts.split(',').any(|h| h == name)
}

#[async_trait]
impl Module for KnownHosts {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let name = p.name.to_lowercase();
        if name.is_empty() {
            return Err(ModuleError::Args("known_hosts: missing required argument: name".into()));
        }
        let present = match p.state.as_deref().unwrap_or("present") {
            "present" => true,
            "absent" => false,
            s => {
                return Err(ModuleError::Args(format!(
                    "known_hosts: state must be present or absent, got `{s}`"
                )))
            }
        };
        let want = match (&p.key, present) {
            (Some(k), _) => {
                let (marker, hosts, ktype, kdata) = fields(k).ok_or_else(|| {
                    ModuleError::Args("known_hosts: `key` must look like `HOST KEYTYPE BASE64`".into())
                })?;
                if !hosts_match(&hosts.to_lowercase(), &name) {
                    return Err(ModuleError::Args(format!(
                        "known_hosts: the host in `key` ({hosts}) does not match name `{name}`"
                    )));
                }
                Some((
                    marker.map(str::to_string),
                    ktype.to_string(),
                    kdata.to_string(),
                    k.trim().to_string(),
                ))
            }
            (None, true) => {
                return Err(ModuleError::Args(
                    "known_hosts: `key` is required with state=present".into(),
                ))
            }
            (None, false) => None,
        };
        let path = p.path.clone().unwrap_or_else(|| "~/.ssh/known_hosts".into());
        let path_expr = match path.strip_prefix("~/") {
            Some(rest) => format!("\"$HOME\"/{}", sh_quote(rest)),
            None => sh_quote(&path),
        };
        let q = format!("p={path_expr}; printf '%s\\n' \"$p\"; if [ -e \"$p\" ]; then cat -- \"$p\"; fi");
        let out = run_checked(ctx, &format!("reading {path}"), &q).await?;
        let text = out.stdout_str();
        let (real_path, before) = text.split_once('\n').unwrap_or((&text, ""));
        let real_path = real_path.to_string();
        let lines: Vec<&str> = before.lines().collect();

        let is_host = |l: &str| fields(l).is_some_and(|(_, h, _, _)| hosts_match(&h.to_lowercase(), &name));
        let mut new_lines: Vec<String>;
        match &want {
            Some((marker, ktype, kdata, line)) if present => {
                let same = lines.iter().any(|l| {
                    fields(l).is_some_and(|(m, h, t, d)| {
                        hosts_match(&h.to_lowercase(), &name)
                            && m.map(str::to_string) == *marker
                            && t == ktype
                            && d == kdata
                    })
                });
                if same {
                    new_lines = lines.iter().map(|l| l.to_string()).collect();
                } else {
                    // Another key of the same type for this host is replaced.
                    new_lines = lines
                        .iter()
                        .filter(|l| !(is_host(l) && fields(l).is_some_and(|(_, _, t, _)| t == ktype)))
                        .map(|l| l.to_string())
                        .collect();
                    let line = if p.hash_host {
                        let salt: [u8; 20] = rand::random();
                        let b64 = base64::engine::general_purpose::STANDARD;
                        let hashed = hash_name(&salt, &name).unwrap_or_default();
                        let m = marker.as_ref().map(|m| format!("{m} ")).unwrap_or_default();
                        format!("{m}|1|{}|{hashed} {ktype} {kdata}", b64.encode(salt))
                    } else {
                        line.clone()
                    };
                    new_lines.push(line);
                }
            }
            _ => {
                new_lines = lines.iter().filter(|l| !is_host(l)).map(|l| l.to_string()).collect();
            }
        }
        let old: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        let changed = new_lines != old;
        let after = crate::modules::host::text::join_lines(&new_lines);
        let mut res = ModuleOutcome::changed(changed)
            .with("name", name.clone())
            .with("path", real_path.clone())
            .with("hash_host", p.hash_host)
            .with("key", p.key.clone().map(Value::String).unwrap_or(Value::Null));
        if !changed {
            return Ok(Plan::Done(res));
        }
        if ctx.diff_mode {
            res = res.with_diff(text_diff(&real_path, before, &after));
        }
        let change = WriteKnownHosts {
            new_file: before.is_empty() && old.is_empty(),
            path: real_path,
            content: after,
        };
        Ok(Plan::change(res, change))
    }
}

/// Write the edited file, creating its directory (0700) and, for a new
/// file, giving it mode 0644.
struct WriteKnownHosts {
    path: String,
    content: String,
    new_file: bool,
}

#[async_trait]
impl Change for WriteKnownHosts {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let mkdir = format!(
            "d=$(dirname -- {}); [ -d \"$d\" ] || mkdir -m 700 -p -- \"$d\"",
            sh_quote(&self.path)
        );
        run_checked(ctx, "creating the directory of the known_hosts file", &mkdir).await?;
        crate::modules::host::file_state::write_text(
            ctx,
            &self.path,
            &self.content,
            if self.new_file { Some(0o644) } else { None },
        )
        .await?;
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_and_plain_hosts_match() {
        let salt = [7u8; 20];
        let h = hash_name(&salt, "[127.0.0.1]:2222").unwrap();
        let field = format!("|1|{}|{h}", base64::engine::general_purpose::STANDARD.encode(salt));
        assert!(hosts_match(&field, "[127.0.0.1]:2222"));
        assert!(!hosts_match(&field, "127.0.0.1"));
        assert!(hosts_match("a,b.example", "b.example"));
        assert!(!hosts_match("ab", "a"));
        assert_eq!(
            fields("@cert-authority *.x ssh-ed25519 AAA c"),
            Some((Some("@cert-authority"), "*.x", "ssh-ed25519", "AAA"))
        );
    }
}
