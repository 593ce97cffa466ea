//! `mount`: fstab entries and active mounts.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::host::command::run_checked;
use crate::modules::host::file_state::backup_file;
use crate::modules::host::file_state::write_text;
use crate::modules::host::opts;
use crate::modules::host::text::join_lines;
use crate::modules::host::text::text_diff;
use crate::modules::{
    parse_params, Change, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("path", OptKind::Path, "The mount point.")
        .required()
        .aliases(&["name"]),
    OptionDoc::new(
        "src",
        OptKind::Str,
        "The device, label, share or image to mount; required for present and mounted.",
    ),
    OptionDoc::new(
        "fstype",
        OptKind::Str,
        "File system type; required for present and mounted.",
    ),
    OptionDoc::new("opts", OptKind::Str, "Mount options (fstab field 4).").default("defaults"),
    OptionDoc::new("dump", OptKind::Str, "fstab field 5.").default("0"),
    OptionDoc::new("passno", OptKind::Str, "fstab field 6.").default("0"),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`mounted`: in fstab and mounted (created mount point; remounted when the entry changed). \
`present`: in fstab only. `unmounted`: not mounted, fstab untouched. `absent`: unmounted, removed from \
fstab and the mount point directory removed. `remounted`: remount now (always changed).",
    )
    .required()
    .choices(&["absent", "mounted", "present", "unmounted", "remounted"]),
    OptionDoc::new("fstab", OptKind::Path, "The fstab file to edit.").default("/etc/fstab"),
    OptionDoc::new(
        "boot",
        OptKind::Bool,
        "Mount at boot; `no` adds `noauto` to the options.",
    )
    .default("yes"),
    opts::BACKUP,
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "mount",
    aliases: &[],
    short: "Control active and configured mount points",
    description: "Manages a mount point's line in fstab (matched by the mount point) and whether it is \
mounted. Mounting goes through the fstab entry (`mount -T FSTAB PATH`), like Ansible.",
    free_form: false,
    options: OPTIONS,
    examples: "- mount:\n    path: /mnt/dvd\n    src: /dev/sr0\n    fstype: iso9660\n    opts: ro,noauto\n    state: present\n\n\
- mount:\n    path: /srv/scratch\n    src: tmpfs\n    fstype: tmpfs\n    opts: size=64m\n    state: mounted\n",
    returns: &[],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    path: String,
    #[serde(default)]
    src: Option<String>,
    #[serde(default)]
    fstype: Option<String>,
    #[serde(default)]
    opts: Option<String>,
    #[serde(default)]
    dump: Option<String>,
    #[serde(default)]
    passno: Option<String>,
    state: String,
    #[serde(default)]
    fstab: Option<String>,
    #[serde(default = "yes")]
    boot: bool,
    #[serde(default)]
    backup: bool,
}

fn yes() -> bool {
    true
}

pub(crate) struct Mount;

/// fstab/mountinfo escaping of whitespace and backslashes.
fn escape(s: &str) -> String {
    s.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012")
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The mount point of an fstab line.
fn fstab_path(line: &str) -> Option<String> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') {
        return None;
    }
    t.split_whitespace().nth(1).map(unescape)
}

/// (source, fstype) of what is mounted at `path` (the last, topmost mount), from mountinfo.
fn mounted_at(mountinfo: &str, path: &str) -> Option<(String, String)> {
    mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let dash = f.iter().position(|x| *x == "-")?;
            if unescape(f.get(4)?) != path {
                return None;
            }
            Some((unescape(f.get(dash + 2)?), f.get(dash + 1)?.to_string()))
        })
        .next_back()
}

#[async_trait]
impl Module for Mount {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let path = p.path.clone();
        let path = if path.len() > 1 {
            path.trim_end_matches('/').to_string()
        } else {
            path
        };
        if !path.starts_with('/') {
            return Err(ModuleError::Args(format!("mount: path must be absolute, got `{path}`")));
        }
        // parse_params refused a state outside the option's choices.
        let state = p.state.clone();
        let needs_entry = state == "present" || state == "mounted";
        if needs_entry && (p.src.is_none() || p.fstype.is_none()) {
            return Err(ModuleError::Args(format!(
                "mount: state={state} needs `src` and `fstype`"
            )));
        }
        let fstab = p.fstab.clone().unwrap_or_else(|| "/etc/fstab".into());

        // One round trip: fstab (may be missing) and the mount table.
        let q = format!(
            "f={}; if [ -e \"$f\" ]; then cat -- \"$f\"; fi; echo '\x1e'; cat /proc/self/mountinfo",
            sh_quote(&fstab)
        );
        let out = run_checked(ctx, "reading fstab and mounts", &q).await?;
        let text = out.stdout_str();
        let (fstab_text, mountinfo) = text.split_once("\x1e\n").unwrap_or((&text, ""));
        let lines: Vec<String> = fstab_text.lines().map(str::to_string).collect();
        let mounted = mounted_at(mountinfo, &path);

        // The desired fstab.
        let mut new_lines = lines.clone();
        let mut entry_changed = false;
        if needs_entry {
            let mut opts = p.opts.clone().unwrap_or_else(|| "defaults".into());
            if !p.boot && !opts.split(',').any(|o| o == "noauto") {
                opts = if opts == "defaults" {
                    "noauto".into()
                } else {
                    format!("{opts},noauto")
                };
            }
            let want = format!(
                "{} {} {} {} {} {}",
                escape(p.src.as_deref().unwrap_or_default()),
                escape(&path),
                escape(p.fstype.as_deref().unwrap_or_default()),
                escape(&opts),
                p.dump.as_deref().unwrap_or("0"),
                p.passno.as_deref().unwrap_or("0"),
            );
            let want_fields: Vec<&str> = want.split_whitespace().collect();
            match new_lines
                .iter()
                .position(|l| fstab_path(l).as_deref() == Some(path.as_str()))
            {
                Some(i) => {
                    let have: Vec<&str> = new_lines[i].split_whitespace().collect();
                    // Missing dump/passno fields mean 0.
                    let have_full: Vec<&str> = have.iter().copied().chain(["0", "0"]).take(6.max(have.len())).collect();
                    if have_full != want_fields {
                        new_lines[i] = want;
                        entry_changed = true;
                    }
                }
                None => {
                    new_lines.push(want);
                    entry_changed = true;
                }
            }
        } else if state == "absent" {
            new_lines.retain(|l| fstab_path(l).as_deref() != Some(path.as_str()));
            entry_changed = new_lines.len() != lines.len();
        }

        let mount_action = match state.as_str() {
            "mounted" if mounted.is_none() => Some("mount"),
            "mounted" if entry_changed => Some("remount"),
            "unmounted" | "absent" if mounted.is_some() => Some("umount"),
            "remounted" => Some("remount"),
            _ => None,
        };
        let mut res = ModuleOutcome::ok()
            .with("name", path.clone())
            .with("fstab", fstab.clone());
        for (k, v) in [("src", &p.src), ("fstype", &p.fstype)] {
            if let Some(v) = v {
                res = res.with(k, v.clone());
            }
        }
        if !entry_changed && mount_action.is_none() {
            return Ok(Plan::Done(res));
        }
        let after = join_lines(&new_lines);
        if ctx.diff_mode && entry_changed {
            res = res.with_diff(text_diff(&fstab, fstab_text, &after));
        }
        let write = entry_changed.then_some(FstabWrite {
            text: after,
            backup: p.backup && !lines.is_empty(),
            new_file: lines.is_empty(),
        });
        Ok(Plan::change(
            res,
            MountChange {
                path,
                state,
                fstab,
                write,
                mount_action,
            },
        ))
    }
}

/// The new fstab.
struct FstabWrite {
    text: String,
    /// Back up the old one first.
    backup: bool,
    /// The file was empty or missing (it gets mode 0644).
    new_file: bool,
}

/// Write fstab, then mount, remount or unmount, then (state absent) remove the mount point.
struct MountChange {
    path: String,
    state: String,
    fstab: String,
    write: Option<FstabWrite>,
    mount_action: Option<&'static str>,
}

#[async_trait]
impl Change for MountChange {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        let MountChange {
            path,
            state,
            fstab,
            write,
            mount_action,
        } = *self;
        let mut res = planned;
        if let Some(w) = write {
            if w.backup {
                let b = backup_file(ctx, &fstab).await?;
                res = res.with("backup_file", b);
            }
            write_text(ctx, &fstab, &w.text, if w.new_file { Some(0o644) } else { None }).await?;
        }
        let q = sh_quote(&path);
        let f = sh_quote(&fstab);
        match mount_action {
            Some("mount") => {
                run_checked(
                    ctx,
                    &format!("mounting {path}"),
                    &format!("mkdir -p -- {q} && mount -T {f} {q}"),
                )
                .await?;
            }
            Some("remount") => {
                let cmd = if state == "remounted" {
                    format!("mount -o remount {q}")
                } else {
                    // A changed source or type cannot be remounted in place.
                    format!("mount -T {f} -o remount {q} 2>/dev/null || {{ umount {q} && mount -T {f} {q}; }}")
                };
                run_checked(ctx, &format!("remounting {path}"), &cmd).await?;
            }
            Some(_) => {
                run_checked(ctx, &format!("unmounting {path}"), &format!("umount {q}")).await?;
            }
            None => {}
        }
        if state == "absent" {
            run_checked(
                ctx,
                &format!("removing the mount point {path}"),
                &format!("if [ -d {q} ]; then rmdir -- {q}; fi"),
            )
            .await?;
        }
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_mountinfo_parses() {
        assert_eq!(escape("/a b"), "/a\\040b");
        assert_eq!(unescape(&escape("/x y\\z")), "/x y\\z");
        let mi = "22 1 0:21 / /srv/a\\040b rw,relatime shared:1 - tmpfs none rw\n\
                  23 1 0:22 / /srv/c rw - ext4 /dev/loop0 rw\n";
        assert_eq!(mounted_at(mi, "/srv/a b"), Some(("none".into(), "tmpfs".into())));
        assert_eq!(mounted_at(mi, "/srv/c").map(|m| m.1), Some("ext4".into()));
        assert_eq!(mounted_at(mi, "/srv"), None);
        assert_eq!(
            fstab_path("tmpfs /srv/a\\040b tmpfs defaults 0 0").as_deref(),
            Some("/srv/a b")
        );
        assert_eq!(fstab_path("# x /y"), None);
    }
}
