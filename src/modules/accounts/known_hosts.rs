//! `known_hosts`: add or remove host keys in an OpenSSH known_hosts file.

use async_trait::async_trait;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha1::Sha1;

use crate::connection::sh_quote;
use crate::connection::ssh_config::match_pattern;
use crate::modules::host::command::run_checked;
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

/// Whether a hosts field (`a,b`, compared without case, or `|1|salt|hash`,
/// whose base64 is case-sensitive) names the lowercase `name`.
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
    // OpenSSH's match_hostname: the patterns (`*`, `?`) are compared without
    // case; a matching negated one (`!pat`) means no match.
    let mut matched = false;
    for pat in hosts.split(',') {
        let pat = pat.to_lowercase();
        match pat.strip_prefix('!') {
            Some(neg) if match_pattern(name, neg) => return false,
            Some(_) => {}
            None => matched |= match_pattern(name, &pat),
        }
    }
    matched
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
        let mut want_hosts = String::new();
        let want = match (&p.key, present) {
            (Some(k), _) => {
                // Ansible's sanity_check (`\S+(\s+)?,(\s+)?` in the name).
                let comma = name
                    .char_indices()
                    .any(|(i, c)| c == ',' && !name[..i].trim_end().is_empty());
                if comma {
                    return Err(ModuleError::Args(
                        "Comma separated list of names is not supported. \
                         Please pass a single name to lookup in the known_hosts file."
                            .into(),
                    ));
                }
                let (marker, hosts, ktype, kdata) = fields(k).ok_or_else(|| {
                    ModuleError::Args("known_hosts: `key` must look like `HOST KEYTYPE BASE64`".into())
                })?;
                if !hosts_match(hosts, &name) {
                    // Ansible's words (`ssh-keygen -F NAME` finds nothing in the key).
                    return Err(ModuleError::Args(
                        "Host parameter does not match hashed host field in supplied key".into(),
                    ));
                }
                want_hosts = hosts.to_string();
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
        let q = format!(
            "p={path_expr}; printf '%s\\n' \"$p\"; if [ -e \"$p\" ]; then echo E; cat -- \"$p\"; else echo N; fi"
        );
        let out = run_checked(ctx, &format!("reading {path}"), &q).await?;
        let text = out.stdout_str();
        let (real_path, rest) = text.split_once('\n').unwrap_or((&text, ""));
        let (exists, before) = match rest.split_once('\n') {
            Some(("E", content)) => (true, content),
            _ => (false, ""),
        };
        let real_path = real_path.to_string();
        let lines: Vec<&str> = before.lines().collect();

        let is_host = |l: &str| fields(l).is_some_and(|(_, h, _, _)| hosts_match(h, &name));
        let mut new_lines: Vec<String>;
        match &want {
            Some((marker, ktype, kdata, line)) if present => {
                // Ansible's search_for_host_key, over the host's lines in
                // order (what `ssh-keygen -F` lists): a @cert-authority or
                // @revoked line only counts when it is the same key (another
                // one is never replaced); a plain line with the same key
                // leaves the file alone, the first with another key of the
                // same type is replaced. The new line goes at the end.
                let new_hosts = if p.hash_host { "|1|" } else { want_hosts.as_str() };
                let mut same = false;
                let mut replace = None;
                for (i, l) in lines.iter().enumerate() {
                    let Some((m, h, t, d)) = fields(l) else { continue };
                    if !hosts_match(h, &name) {
                        continue;
                    }
                    // Two hashed host fields are the same host (Ansible
                    // keeps the existing hash).
                    let host_eq = h == new_hosts || (h.starts_with("|1|") && new_hosts.starts_with("|1|"));
                    let equal = host_eq && m.map(str::to_string) == *marker && t == ktype && d == kdata;
                    if equal {
                        same = true;
                        break;
                    }
                    if m.is_none() && t == ktype {
                        replace = Some(i);
                        break;
                    }
                }
                if same {
                    new_lines = lines.iter().map(|l| l.to_string()).collect();
                } else {
                    new_lines = lines
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| Some(*i) != replace)
                        .map(|(_, l)| l.to_string())
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
            Some((marker, ktype, kdata, _)) => {
                // Ansible's `search_for_host_key` then its rewrite: with a
                // key, only the host's first line of that key type goes (for
                // a @cert-authority or @revoke line, only the same key);
                // none of that type: nothing changes.
                let gone = lines.iter().position(|l| {
                    fields(l).is_some_and(|(m, h, t, d)| {
                        hosts_match(h, &name)
                            && match m {
                                Some(_) => m.map(str::to_string) == *marker && t == ktype && d == kdata,
                                None => t == ktype,
                            }
                    })
                });
                new_lines = lines
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != gone)
                    .map(|(_, l)| l.to_string())
                    .collect();
            }
            None => {
                // `ssh-keygen -R`: the host's lines go, its @cert-authority
                // and @revoked lines stay.
                new_lines = lines
                    .iter()
                    .filter(|l| !is_host(l) || fields(l).is_some_and(|(m, _, _, _)| m.is_some()))
                    .map(|l| l.to_string())
                    .collect();
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
        // Ansible's module always returns its diff (one dict, `/dev/null`
        // as the header of a missing file's `before`); shown in diff mode.
        let mut diff = Map::new();
        let header = |h: &str| Value::String(h.to_string());
        diff.insert(
            "before_header".into(),
            header(if exists { &real_path } else { "/dev/null" }),
        );
        diff.insert("after_header".into(), header(&real_path));
        diff.insert("before".into(), header(before));
        diff.insert("after".into(), header(if changed { &after } else { before }));
        res = res.with("diff", Value::Object(diff));
        if !changed {
            return Ok(Plan::Done(res));
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
        assert!(hosts_match("A,B.Example", "b.example"));
        assert!(!hosts_match("ab", "a"));
        // OpenSSH's patterns, a negated one winning.
        assert!(hosts_match("*.example.com", "host.example.com"));
        assert!(hosts_match("*.example.com", "*.example.com"));
        assert!(hosts_match("h?st.example.com", "host.example.com"));
        assert!(!hosts_match("*.example.com", "example.com"));
        assert!(!hosts_match("*.example.com,!bad.example.com", "bad.example.com"));
        assert!(hosts_match(&"*".repeat(40), "x"));
        assert!(!hosts_match(&format!("{}b", "*a".repeat(30)), &"a".repeat(60)));
        assert_eq!(
            fields("@cert-authority *.x ssh-ed25519 AAA c"),
            Some((Some("@cert-authority"), "*.x", "ssh-ed25519", "AAA"))
        );
    }

    /// Ansible's diff is part of the result in every mode: a dict whose
    /// `after` is `before` plus the new line, `/dev/null` before a new file.
    #[tokio::test]
    async fn diff_is_returned_as_ansible_does() {
        use crate::modules::host::file_state::testutil::Harness;
        use serde_json::json;
        let h = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let ps = path.to_str().unwrap();
        let old = "example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFp8\n";
        std::fs::write(&path, old).unwrap();
        let key = "example.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIzl";
        let args = json!({"name": "example.org", "key": key, "path": ps});
        let o = h.run(&KnownHosts, true, args.clone()).await.unwrap();
        assert!(o.changed);
        let d = &o.ret["diff"];
        assert_eq!(d["before_header"], ps);
        assert_eq!(d["after_header"], ps);
        assert_eq!(d["before"], old);
        assert_eq!(d["after"], format!("{old}{key}\n"));
        h.run(&KnownHosts, false, args.clone()).await.unwrap();
        let o = h.run(&KnownHosts, true, args).await.unwrap();
        assert!(!o.changed);
        assert_eq!(o.ret["diff"]["before"], o.ret["diff"]["after"]);
        let new = dir.path().join("new").display().to_string();
        let o = h
            .run(
                &KnownHosts,
                true,
                json!({"name": "example.org", "key": key, "path": new}),
            )
            .await
            .unwrap();
        assert_eq!(o.ret["diff"]["before_header"], "/dev/null");
        assert_eq!(o.ret["diff"]["after"], format!("{key}\n"));
        // Absent with a key of a type the host has no line of: no change;
        // with the key's type: that one line goes, the host's others stay.
        let other = "example.org ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB";
        std::fs::write(&path, format!("{old}{key}\n{other}\n")).unwrap();
        let absent = |k: &str| json!({"name": "example.org", "key": k, "path": ps, "state": "absent"});
        let o = h
            .run(&KnownHosts, false, absent("example.org ecdsa-sha2-nistp256 AAAAE2Vj"))
            .await
            .unwrap();
        assert!(!o.changed);
        let o = h.run(&KnownHosts, false, absent(key)).await.unwrap();
        assert!(o.changed);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{old}{other}\n"));
        // A hashed line is the same host again (its base64 keeps its case).
        let hashed = json!({"name": "example.org", "key": key, "path": ps, "hash_host": true});
        assert!(h.run(&KnownHosts, false, hashed.clone()).await.unwrap().changed);
        assert!(!h.run(&KnownHosts, false, hashed).await.unwrap().changed);
        // Plain again: the hashed line is replaced by a plain one.
        let plain = json!({"name": "example.org", "key": key, "path": ps});
        assert!(h.run(&KnownHosts, false, plain.clone()).await.unwrap().changed);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{old}{other}\n{key}\n")
        );
        assert!(!h.run(&KnownHosts, false, plain).await.unwrap().changed);
    }

    /// @cert-authority and @revoked lines are never replaced by another key:
    /// a second CA key of the same type is added after them, and only the
    /// same marked key is removed; a host's plain key of that type (also
    /// matched through a wildcard CA line) is added as its own line.
    #[tokio::test]
    async fn marked_lines_are_kept_as_ansible_keeps_them() {
        use crate::modules::host::file_state::testutil::Harness;
        use serde_json::json;
        let h = Harness::new();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("known_hosts");
        let ps = path.to_str().unwrap();
        let ca1 = "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDXh";
        let ca2 = "@cert-authority *.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPx6";
        let hostkey = "host.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFp8";
        let revoked = "@revoked host.example.com ssh-ed25519-cert-v01@openssh.com AAAAIHNz";
        let start = format!("example.com ssh-rsa AAAAB3\n{ca1}\n# example.net ssh-ed25519 AAAA\n");
        std::fs::write(&path, &start).unwrap();
        let args = |name: &str, key: &str, state: &str| json!({"name": name, "key": key, "path": ps, "state": state});
        let read = || std::fs::read_to_string(&path).unwrap();
        assert!(
            h.run(&KnownHosts, false, args("host.example.com", hostkey, "present"))
                .await
                .unwrap()
                .changed
        );
        let with_host = format!("{start}{hostkey}\n");
        assert_eq!(read(), with_host);
        assert!(
            h.run(&KnownHosts, false, args("*.example.com", ca2, "present"))
                .await
                .unwrap()
                .changed
        );
        assert_eq!(read(), format!("{with_host}{ca2}\n"));
        assert!(
            !h.run(&KnownHosts, false, args("*.example.com", ca2, "present"))
                .await
                .unwrap()
                .changed
        );
        assert!(
            h.run(&KnownHosts, false, args("*.example.com", ca2, "absent"))
                .await
                .unwrap()
                .changed
        );
        assert_eq!(read(), with_host);
        assert!(
            h.run(&KnownHosts, false, args("host.example.com", revoked, "present"))
                .await
                .unwrap()
                .changed
        );
        assert_eq!(read(), format!("{with_host}{revoked}\n"));
        assert!(
            h.run(&KnownHosts, false, args("host.example.com", revoked, "absent"))
                .await
                .unwrap()
                .changed
        );
        assert_eq!(read(), with_host);
        // Without a key, the host's plain lines go and its marked ones stay.
        let all = json!({"name": "host.example.com", "path": ps, "state": "absent"});
        assert!(h.run(&KnownHosts, false, all).await.unwrap().changed);
        assert_eq!(read(), start);
    }
}
