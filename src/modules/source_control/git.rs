//! `git`: deploy a checkout of a git repository.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::host::command::run_checked;
use crate::modules::host::text::text_diff;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "repo",
        OptKind::Str,
        "URL of the repository (ssh://, https://, file://, a path, or user@host:path).",
    )
    .required()
    .aliases(&["name"]),
    OptionDoc::new("dest", OptKind::Path, "Where the checkout goes.").required(),
    OptionDoc::new(
        "version",
        OptKind::Str,
        "Branch, tag or commit SHA to check out; `HEAD` is the remote's default branch.",
    )
    .default("HEAD"),
    OptionDoc::new(
        "update",
        OptKind::Bool,
        "Fetch and move an existing checkout to `version`.",
    )
    .default("yes"),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Discard local modifications instead of failing.",
    )
    .default("no"),
    OptionDoc::new("depth", OptKind::Int, "Shallow clone/fetch with this many commits."),
    OptionDoc::new("clone", OptKind::Bool, "Clone when `dest` has no repository.").default("yes"),
    OptionDoc::new("remote", OptKind::Str, "Name of the remote.").default("origin"),
    OptionDoc::new(
        "accept_hostkey",
        OptKind::Bool,
        "Accept an unknown SSH host key (StrictHostKeyChecking=no).",
    )
    .default("no"),
    OptionDoc::new(
        "accept_newhostkey",
        OptKind::Bool,
        "Accept a new SSH host key, never a changed one.",
    )
    .default("no"),
    OptionDoc::new(
        "key_file",
        OptKind::Path,
        "Private key (on the host) for SSH repositories.",
    ),
    OptionDoc::new(
        "ssh_opts",
        OptKind::Str,
        "Extra options for the ssh command git runs. Shell code by design: git runs `GIT_SSH_COMMAND` \
(where these options go, unquoted) through the shell on the host.",
    ),
    OptionDoc::new("executable", OptKind::Path, "The git binary to use.").default("git"),
    OptionDoc::new("single_branch", OptKind::Bool, "Clone only the history of `version`.").default("no"),
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "git",
    aliases: &[],
    short: "Deploy software (or files) from git checkouts",
    description: "Clones the repository into `dest` or moves an existing checkout to `version`. The remote \
is asked with `git ls-remote` first, so an up-to-date checkout is not fetched and check mode reports the exact \
commit a real run would check out. Local modifications make the task fail unless `force`.",
    free_form: false,
    options: OPTIONS,
    examples: "- git:\n    repo: https://github.com/example/app.git\n    dest: /srv/app\n    version: release-1.2\n\n\
- git:\n    repo: ssh://git@git.example.com/app.git\n    dest: /srv/app\n    key_file: /root/.ssh/deploy\n    accept_hostkey: yes\n",
    returns: &[
        ReturnDoc {
            name: "before",
            description: "commit checked out before the task (null when there was no repository)",
        },
        ReturnDoc {
            name: "after",
            description: "commit checked out after the task",
        },
        ReturnDoc {
            name: "remote_url_changed",
            description: "whether the remote's URL was updated",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    repo: String,
    dest: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default = "yes")]
    update: bool,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    depth: Option<i64>,
    #[serde(default = "yes")]
    clone: bool,
    #[serde(default)]
    remote: Option<String>,
    #[serde(default)]
    accept_hostkey: bool,
    #[serde(default)]
    accept_newhostkey: bool,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    ssh_opts: Option<String>,
    #[serde(default)]
    executable: Option<String>,
    #[serde(default)]
    single_branch: bool,
}

fn yes() -> bool {
    true
}

pub(crate) struct Git;

#[derive(Debug, PartialEq)]
enum Target {
    Head(String),
    Branch(String),
    Tag(String),
    /// A commit id not advertised by the remote.
    Sha,
}

/// Resolve `version` against `git ls-remote` output.
fn resolve(ls_remote: &str, version: &str) -> Option<Target> {
    let refs: Vec<(&str, &str)> = ls_remote.lines().filter_map(|l| l.split_once('\t')).collect();
    let find = |name: &str| refs.iter().find(|(_, r)| *r == name).map(|(s, _)| s.to_string());
    if version == "HEAD" {
        return find("HEAD").map(Target::Head);
    }
    if let Some(s) = find(&format!("refs/heads/{version}")) {
        return Some(Target::Branch(s));
    }
    if let Some(s) = find(&format!("refs/tags/{version}^{{}}")).or_else(|| find(&format!("refs/tags/{version}"))) {
        return Some(Target::Tag(s));
    }
    (version.len() >= 4 && version.len() <= 40 && version.bytes().all(|b| b.is_ascii_hexdigit())).then_some(Target::Sha)
}

const SEP: &str = "\x1e";

#[async_trait]
impl Module for Git {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let repo = p.repo.clone();
        let dest = p.dest.clone();
        if repo.is_empty() || dest.is_empty() {
            return Err(ModuleError::Args("git: `repo` and `dest` are required".into()));
        }
        let version = p.version.clone().unwrap_or_else(|| "HEAD".into());
        let remote = p.remote.clone().unwrap_or_else(|| "origin".into());
        let git = crate::shell::sh_quote_command(p.executable.as_deref().unwrap_or("git"));
        let mut ssh = String::from("ssh -o BatchMode=yes");
        if let Some(k) = &p.key_file {
            ssh.push_str(&format!(" -i {} -o IdentitiesOnly=yes", sh_quote(k)));
        }
        if p.accept_hostkey {
            ssh.push_str(" -o StrictHostKeyChecking=no");
        } else if p.accept_newhostkey {
            ssh.push_str(" -o StrictHostKeyChecking=accept-new");
        }
        if let Some(o) = &p.ssh_opts {
            ssh.push(' ');
            ssh.push_str(o);
        }
        let env = format!(
            "export GIT_SSH_COMMAND={} GIT_TERMINAL_PROMPT=0 LC_ALL=C; ",
            sh_quote(&ssh)
        );
        let d = sh_quote(&dest);
        let r = sh_quote(&repo);
        let rem = sh_quote(&remote);

        // One round trip: local state and the remote's refs for `version`.
        let q = format!(
            "{env}command -v {git} >/dev/null 2>&1 || {{ echo 'git is not installed on the host' >&2; exit 127; }}; d={d}; \
             if [ -e \"$d/.git\" ] || [ -f \"$d/HEAD\" -a -d \"$d/objects\" ]; then echo repo; \
               {git} -C \"$d\" rev-parse HEAD 2>/dev/null || echo none; \
               {git} -C \"$d\" status --porcelain --untracked-files=no 2>/dev/null | head -n1 | wc -l; \
               {git} -C \"$d\" config --get remote.{rem}.url || echo; \
             elif [ -d \"$d\" ] && [ -n \"$(ls -A \"$d\")\" ]; then echo nonempty; else echo absent; fi; \
             printf '{SEP}'; {git} ls-remote -- {r} HEAD {v} 2>&1; echo \"{SEP}$?\"",
            v = sh_quote(&version),
        );
        let out = ctx.run(&q).await?;
        if out.status == 127 {
            return Err(ModuleError::Failed(format!(
                "{} (install git)",
                out.stderr_str().trim()
            )));
        }
        if out.status != 0 {
            return Err(crate::modules::host::command::failure("git query", &out));
        }
        let text = out.stdout_str();
        let mut parts = text.split(SEP);
        let local = parts.next().unwrap_or_default();
        let ls = parts.next().unwrap_or_default();
        let ls_rc = parts.next().unwrap_or("1").trim();
        if ls_rc != "0" {
            return Err(ModuleError::Failed(format!(
                "Failed to read the remote repository {repo}: {}",
                ls.trim()
            )));
        }
        let target = resolve(ls, &version)
            .ok_or_else(|| ModuleError::Failed(format!("Cannot find version `{version}` in {repo}")))?;
        let target_sha = match &target {
            Target::Head(s) | Target::Branch(s) | Target::Tag(s) => s.clone(),
            Target::Sha => version.clone(),
        };
        let mut ll = local.lines();
        let kind = ll.next().unwrap_or("absent");
        let mut res = ModuleOutcome::ok().with("remote_url_changed", false);

        if kind == "nonempty" {
            return Err(ModuleError::Failed(format!(
                "Destination path {dest} already exists and is not an empty directory"
            )));
        }
        if kind == "absent" {
            res = res.with("before", Value::Null);
            if !p.clone {
                return Ok(Plan::Done(res.with("after", Value::Null)));
            }
            res.changed = true;
            if ctx.diff_mode {
                res = res.with_diff(text_diff(&dest, "", &format!("{target_sha}\n")));
            }
            let mut clone = format!("{env}{git} clone --origin {rem}");
            if let Some(n) = p.depth.filter(|_| target != Target::Sha) {
                clone.push_str(&format!(" --depth {n}"));
                if !p.single_branch {
                    clone.push_str(" --no-single-branch");
                }
            }
            if let Target::Branch(_) | Target::Tag(_) = target {
                clone.push_str(&format!(" --branch {}", sh_quote(&version)));
                if p.single_branch {
                    clone.push_str(" --single-branch");
                }
            }
            clone.push_str(&format!(" -- {r} {d}"));
            if target == Target::Sha {
                clone.push_str(&format!(" && {git} -C {d} checkout --force -q {}", sh_quote(&version)));
            }
            clone.push_str(&format!(" && {git} -C {d} rev-parse HEAD"));
            let change = Checkout {
                what: "git clone",
                script: clone,
                unchanged_at: None,
            };
            return Ok(Plan::change(res.with("after", target_sha), change));
        }

        let before = ll.next().unwrap_or("none").trim().to_string();
        let local_mods = ll.next().unwrap_or("0").trim() != "0";
        let url_now = ll.next().unwrap_or("").trim().to_string();
        res = res.with(
            "before",
            if before == "none" {
                Value::Null
            } else {
                Value::String(before.clone())
            },
        );
        if !p.update {
            return Ok(Plan::Done(res.with("after", before)));
        }
        if local_mods && !p.force {
            return Err(ModuleError::Failed(format!(
                "Local modifications exist in the destination: {dest} (force=no)."
            )));
        }
        let url_changed = url_now != repo;
        let at_target = match target {
            Target::Sha => before.starts_with(&version),
            _ => before == target_sha,
        };
        if at_target && !local_mods && !url_changed {
            return Ok(Plan::Done(res.with("after", before)));
        }
        res.changed = true;
        res = res.with("remote_url_changed", url_changed);
        if ctx.diff_mode {
            res = res.with_diff(text_diff(&dest, &format!("{before}\n"), &format!("{target_sha}\n")));
        }
        let mut cmd = format!("{env}cd {d} && ");
        if url_changed {
            cmd.push_str(&format!(
                "{{ {git} remote set-url -- {rem} {r} 2>/dev/null || {git} remote add -- {rem} {r}; }} && "
            ));
        }
        let depth = p.depth.map(|n| format!(" --depth {n}")).unwrap_or_default();
        let refspec = sh_quote(&format!("+refs/heads/*:refs/remotes/{remote}/*"));
        cmd.push_str(&format!("{git} fetch -q{depth} --tags {rem} {refspec} && "));
        let v = sh_quote(&version);
        match target {
            Target::Branch(_) => cmd.push_str(&format!("{git} checkout -q --force -B {v} {rem}/{v}")),
            // `s` is what the remote advertised: quoted like any value.
            Target::Head(ref s) => cmd.push_str(&format!("{git} reset -q --hard {}", sh_quote(s))),
            Target::Tag(_) => cmd.push_str(&format!("{git} checkout -q --force {}", sh_quote(&format!("refs/tags/{version}")))),
            Target::Sha => cmd.push_str(&format!("{{ {git} cat-file -e {v}^{{commit}} 2>/dev/null || {git} fetch -q {rem} {v}; }} && {git} checkout -q --force {v}")),
        }
        cmd.push_str(&format!(" && {git} rev-parse HEAD"));
        let change = Checkout {
            what: "git update",
            script: cmd,
            unchanged_at: (!local_mods && !url_changed).then_some(before),
        };
        Ok(Plan::change(res.with("after", target_sha), change))
    }
}

/// Clone, or fetch and move the checkout; the script ends with `git
/// rev-parse HEAD`, the commit reported as `after`.
struct Checkout {
    /// What failed, for the error message.
    what: &'static str,
    script: String,
    /// A checkout that ends at this commit did not change (the commit was
    /// there before, with no local modifications and the same remote URL).
    unchanged_at: Option<String>,
}

#[async_trait]
impl Change for Checkout {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let after = run_checked(ctx, self.what, &self.script)
            .await?
            .stdout_str()
            .trim()
            .to_string();
        let mut res = planned;
        if self.unchanged_at.as_deref() == Some(after.as_str()) {
            res.changed = false;
        }
        Ok(res.with("after", after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_resolve_against_ls_remote() {
        let ls = "aaa1\tHEAD\nbbb2\trefs/heads/main\nccc3\trefs/tags/v1\nddd4\trefs/tags/v1^{}\n";
        assert_eq!(resolve(ls, "HEAD"), Some(Target::Head("aaa1".into())));
        assert_eq!(resolve(ls, "main"), Some(Target::Branch("bbb2".into())));
        assert_eq!(resolve(ls, "v1"), Some(Target::Tag("ddd4".into())));
        assert_eq!(resolve(ls, "deadbeef"), Some(Target::Sha));
        assert_eq!(resolve(ls, "nope"), None);
    }
}
