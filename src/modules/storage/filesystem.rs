//! `filesystem`: make (or wipe) a file system on a device or image file,
//! idempotent through `blkid`.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::tools::StorageHost;
use crate::connection::sh_quote;
use crate::modules::host::text::text_diff;
use crate::modules::{
    parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};
use crate::shell::{quoted_args, sh_quote_words};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("dev", OptKind::Path, "Block device or image file.")
        .required()
        .aliases(&["device"]),
    OptionDoc::new(
        "fstype",
        OptKind::Str,
        "File system type (`ext4`, `xfs`, `vfat`, `btrfs`, `swap`, ...): runs `mkfs.<fstype>` \
(`mkswap` for swap). Required with state present.",
    )
    .aliases(&["type"]),
    OptionDoc::new(
        "state",
        OptKind::Str,
        "`present`: the file system exists. `absent`: every signature is wiped (`wipefs -a`).",
    )
    .choices(&["present", "absent"])
    .default("present"),
    OptionDoc::new(
        "force",
        OptKind::Bool,
        "Replace a file system of another type (destroys its data).",
    )
    .default("false"),
    OptionDoc::new(
        "opts",
        OptKind::Str,
        "Extra mkfs options (`-L data -m 1`), split into words like a shell does; each word is passed quoted.",
    ),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "filesystem",
    aliases: &["community.general.filesystem"],
    short: "Make a file system on a device",
    description: "Makes a file system when `blkid` finds none on the device; a file system of the wanted \
type is left alone; one of another type is replaced only with `force`.",
    free_form: false,
    options: OPTIONS,
    examples: "- filesystem: { dev: /dev/data/vm1, fstype: ext4, opts: -L vm1 }\n",
    returns: &[ReturnDoc {
        name: "fstype",
        description: "the file system type found before the task (empty: none)",
    }],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    dev: String,
    #[serde(default)]
    fstype: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    opts: Option<String>,
}

/// The mkfs command line for a file system type.
fn mkfs_command(fstype: &str, dev: &str, force: bool, opts: Option<&str>) -> Result<String, ModuleError> {
    let (tool, force_flag) = match fstype {
        "swap" => ("mkswap".to_string(), Some("-f")),
        t if t.starts_with("ext") => (format!("mkfs.{t}"), Some("-F")),
        "xfs" | "btrfs" | "f2fs" => (format!("mkfs.{fstype}"), Some("-f")),
        t => (format!("mkfs.{t}"), None),
    };
    let mut s = sh_quote(&tool);
    if fstype.starts_with("ext") {
        // Never ask "Proceed anyway?" on an image file.
        s.push_str(" -q");
    }
    if let (true, Some(f)) = (force, force_flag) {
        s.push(' ');
        s.push_str(f);
    }
    // Options are words for mkfs, never shell code.
    if let Some(o) = opts {
        let args =
            quoted_args(o).ok_or_else(|| ModuleError::Args(format!("filesystem: unbalanced quotes in opts `{o}`")))?;
        s.push_str(&args);
    }
    s.push(' ');
    s.push_str(&sh_quote(dev));
    Ok(s)
}

pub struct FilesystemModule;

#[async_trait]
impl Module for FilesystemModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let host = StorageHost::new(
            ctx,
            "filesystem",
            "util-linux and the mkfs tool (e2fsprogs, dosfstools, ...)",
        );
        let absent = p.state.as_deref() == Some("absent");
        let want = match (&p.fstype, absent) {
            (Some(t), _) => t.to_ascii_lowercase(),
            (None, true) => String::new(),
            (None, false) => return Err(ModuleError::Args("filesystem: `fstype` is required".into())),
        };
        let d = sh_quote(&p.dev);
        // blkid exits 2 when it finds nothing.
        let q = format!(
            "if [ ! -e {d} ]; then echo 'no such device or file' >&2; exit 3; fi; \
             blkid -c /dev/null -o value -s TYPE {d}; s=$?; [ $s -eq 2 ] && exit 0; exit $s"
        );
        let have = host.run(&q).await?.trim().to_string();
        let cmd = if absent {
            (!have.is_empty()).then(|| sh_quote_words(["wipefs", "-a", &p.dev]))
        } else if have == want {
            None
        } else if !have.is_empty() && !p.force {
            return Err(ModuleError::Failed(format!(
                "filesystem: {} already holds a {have} file system; set `force: true` to replace it with {want}",
                p.dev
            )));
        } else {
            Some(mkfs_command(&want, &p.dev, p.force, p.opts.as_deref())?)
        };
        let mut outcome = ModuleOutcome::ok();
        if cmd.is_some() {
            let show = |t: &str| format!("fstype: {}\n", if t.is_empty() { "none" } else { t });
            outcome = outcome.with_diff(text_diff(&p.dev, &show(&have), &show(&want)));
        }
        let outcome = outcome
            .with("fstype", have)
            .with("command", cmd.clone().map_or(Value::Null, Value::String));
        Ok(match cmd {
            Some(c) => Plan::change(outcome, host.commands(vec![c])),
            None => Plan::Done(outcome),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkfs_commands() {
        let mkfs = |t, d, f, o| mkfs_command(t, d, f, o).expect("valid options");
        assert_eq!(mkfs("ext4", "/dev/x", false, None), "mkfs.ext4 -q /dev/x");
        assert_eq!(mkfs("ext4", "/a b", true, Some("-L d")), "mkfs.ext4 -q -F -L d '/a b'");
        assert_eq!(mkfs("xfs", "/dev/x", true, None), "mkfs.xfs -f /dev/x");
        assert_eq!(mkfs("vfat", "/dev/x", true, None), "mkfs.vfat /dev/x");
        assert_eq!(mkfs("swap", "/dev/x", true, None), "mkswap -f /dev/x");
        // Options are words, never shell code.
        assert_eq!(
            mkfs("ext4", "/dev/x", false, Some("-L 'my label' $(touch /tmp/x);")),
            "mkfs.ext4 -q -L 'my label' '$(touch' '/tmp/x);' /dev/x"
        );
        assert!(mkfs_command("ext4", "/dev/x", false, Some("-L 'open")).is_err());
    }
}
