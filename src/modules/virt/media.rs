//! `virt_install_media`: boot media for an unattended install from an installer ISO.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::seed::{plan_iso, BuildIso};
use crate::connection::sh_quote;
use crate::modules::args::choice;
use crate::modules::{
    parse_params, Change, Diff, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan,
    ReturnDoc,
};

const KINDS: &[&str] = &["preseed", "kickstart", "autoinstall"];

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new("iso", OptKind::Path, "The installer ISO on the hypervisor.").required(),
    OptionDoc::new(
        "dest",
        OptKind::Path,
        "Directory on the hypervisor for the extracted kernel and initrd and the answer ISO.",
    )
    .required(),
    OptionDoc::new(
        "kernel",
        OptKind::Str,
        "The installer kernel's path inside the ISO. Debian netinst: `install.amd/vmlinuz` (the text \
installer; `install.amd/gtk/vmlinuz` the graphical one); RHEL/Alma/Rocky/Fedora: `images/pxeboot/vmlinuz`; \
Ubuntu live server: `casper/vmlinuz`.",
    )
    .default("install.amd/vmlinuz"),
    OptionDoc::new(
        "initrd",
        OptKind::Str,
        "The installer initrd's path inside the ISO. Debian: `install.amd/initrd.gz`; RHEL: \
`images/pxeboot/initrd.img`; Ubuntu: `casper/initrd`.",
    )
    .default("install.amd/initrd.gz"),
    OptionDoc::new(
        "answer_kind",
        OptKind::Str,
        "`preseed` (Debian installer: the file goes into the initrd as `/preseed.cfg`), `kickstart` \
(Anaconda: `ks.cfg` on a CD labelled `OEMDRV`), `autoinstall` (Ubuntu subiquity: `user-data` on a \
NoCloud CD labelled `cidata`).",
    )
    .choices(KINDS)
    .required(),
    OptionDoc::new(
        "answer",
        OptKind::Str,
        "The answer file's content (e.g. `lookup('template', 'ks.cfg.j2')`).",
    )
    .required(),
    OptionDoc::new(
        "cmdline",
        OptKind::Str,
        "Extra kernel arguments appended to the ones the answer kind needs (e.g. `console=ttyS0`).",
    ),
    OptionDoc::new(
        "instance_id",
        OptKind::Str,
        "`autoinstall`: the `instance-id` of the seed's meta-data.",
    )
    .default("installer"),
];

static DOC: ModuleDoc = ModuleDoc {
    name: "virt_install_media",
    aliases: &[],
    short: "Prepare an unattended install from an installer ISO on a hypervisor",
    description: "Extracts the installer's kernel and initrd from the ISO on the hypervisor (with `bsdtar`, \
else `xorriso`, else `isoinfo`; no mount), puts the answer file where the installer looks for it (the \
initrd for preseed, an `OEMDRV` CD for kickstart, a `cidata` CD for autoinstall) and returns the \
`kernel`, `initrd`, `cmdline` and `cdroms` to give `virt_domain` for a direct-kernel-boot install. \
Idempotent: extracted files are compared with `cmp`, the answer ISO's files are read back. The \
`virt_install` role (playbooks/provision) drives the whole install: media, domain, wait for the \
installer's power-off, redefine to boot from disk.",
    free_form: false,
    options: OPTIONS,
    examples: "- virt_install_media:\n    iso: /var/lib/libvirt/images/debian-12.7.0-amd64-netinst.iso\n    dest: /var/lib/libvirt/images/db1-install\n    answer_kind: preseed\n    answer: \"{{ lookup('template', 'preseed.cfg.j2') }}\"\n    cmdline: console=ttyS0\n  register: media\n\n- virt_install_media:\n    iso: /var/lib/libvirt/images/AlmaLinux-9-latest-x86_64-minimal.iso\n    dest: /var/lib/libvirt/images/app1-install\n    kernel: images/pxeboot/vmlinuz\n    initrd: images/pxeboot/initrd.img\n    answer_kind: kickstart\n    answer: \"{{ lookup('template', 'ks.cfg.j2') }}\"\n",
    returns: &[
        ReturnDoc {
            name: "kernel / initrd",
            description: "paths of the extracted kernel and initrd (the initrd includes `/preseed.cfg` for preseed)",
        },
        ReturnDoc {
            name: "cmdline",
            description: "the kernel command line for the install",
        },
        ReturnDoc {
            name: "cdroms",
            description: "`virt_domain` cdroms: the installer ISO and the answer ISO (none for preseed)",
        },
        ReturnDoc {
            name: "answer_iso",
            description: "the answer ISO's path (empty for preseed)",
        },
    ],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    iso: String,
    dest: String,
    #[serde(default)]
    kernel: Option<String>,
    #[serde(default)]
    initrd: Option<String>,
    answer_kind: String,
    answer: String,
    #[serde(default)]
    cmdline: Option<String>,
    #[serde(default)]
    instance_id: Option<String>,
}

/// The kernel arguments that make each installer find its answer file.
fn kind_cmdline(kind: &str) -> &'static str {
    match kind {
        // d-i reads /preseed.cfg from its initrd by itself; naming it keeps the intent visible.
        "preseed" => "auto=true priority=critical preseed/file=/preseed.cfg",
        // inst.repo=cdrom: Anaconda looks for its stage2 and packages on the CD-ROMs (the installer ISO).
        "kickstart" => "inst.repo=cdrom inst.ks=hd:LABEL=OEMDRV:/ks.cfg",
        _ => "autoinstall ds=nocloud",
    }
}

/// A newc cpio archive holding one regular file, for appending to an initrd.
fn cpio_newc(name: &str, data: &[u8]) -> Vec<u8> {
    fn entry(out: &mut Vec<u8>, ino: u32, mode: u32, name: &str, data: &[u8]) {
        let namesize = name.len() + 1;
        let fields = [ino, mode, 0, 0, 1, 0, data.len() as u32, 0, 0, 0, 0, namesize as u32, 0];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend_from_slice(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }
    let mut out = Vec::new();
    entry(&mut out, 1, 0o100644, name, data);
    entry(&mut out, 0, 0, "TRAILER!!!", &[]);
    out
}

/// Extracts `vmlinuz` and `initrd` into a temporary directory (under DEST,
/// or /tmp when CHECK is 1: the query), appends the preseed cpio read from
/// stdin (when not empty) to the initrd, and reports `CHANGED name` for each
/// file that differs from DEST's; moves them into place unless CHECK is 1
/// (the change).
const EXTRACT: &str = r#"iso=$1 dest=$2 kpath=$3 ipath=$4 check=$5
[ -f "$iso" ] || { echo "the installer ISO $iso does not exist" >&2; exit 3; }
if command -v bsdtar >/dev/null 2>&1; then
    x() { bsdtar -xOf "$iso" "$1" >"$2" 2>/dev/null && [ -s "$2" ]; }
elif command -v xorriso >/dev/null 2>&1; then
    x() { xorriso -osirrox on -indev "$iso" -extract "/$1" "$2" >/dev/null 2>&1 && [ -s "$2" ]; }
elif command -v isoinfo >/dev/null 2>&1; then
    x() { isoinfo -R -i "$iso" -x "/$1" >"$2" 2>/dev/null && [ -s "$2" ]; }
else
    echo "NOTOOL" >&2; exit 4
fi
if [ "$check" = 1 ]; then tmp=$(mktemp -d /tmp/rigger-media.XXXXXX); else
    mkdir -p "$dest" && tmp=$(mktemp -d "$dest/.rigger-media.XXXXXX"); fi || exit 1
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/answer.cpio"
x "$kpath" "$tmp/vmlinuz" || { echo "no $kpath in $iso" >&2; exit 5; }
x "$ipath" "$tmp/initrd" || { echo "no $ipath in $iso" >&2; exit 5; }
if [ -s "$tmp/answer.cpio" ]; then
    size=$(wc -c <"$tmp/initrd")
    head -c $(( (4 - size % 4) % 4 )) /dev/zero >>"$tmp/initrd"
    cat "$tmp/answer.cpio" >>"$tmp/initrd"
fi
for f in vmlinuz initrd; do
    if ! cmp -s "$tmp/$f" "$dest/$f"; then
        echo "CHANGED $f"
        [ "$check" = 1 ] || { chmod 644 "$tmp/$f" && mv -f "$tmp/$f" "$dest/$f"; } || exit 1
    fi
done
"#;

pub struct VirtInstallMediaModule;

#[async_trait]
impl Module for VirtInstallMediaModule {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        choice("virt_install_media", "answer_kind", &p.answer_kind, KINDS)?;
        let dest = p.dest.trim_end_matches('/').to_string();
        let kpath = p.kernel.clone().unwrap_or_else(|| "install.amd/vmlinuz".into());
        let ipath = p.initrd.clone().unwrap_or_else(|| "install.amd/initrd.gz".into());
        let strip = |s: &str| s.trim_start_matches('/').to_string();
        let stdin = if p.answer_kind == "preseed" {
            cpio_newc("preseed.cfg", p.answer.as_bytes())
        } else {
            Vec::new()
        };
        let cmd = |check: &str| {
            format!(
                "sh -c {} rigger-media {} {} {} {} {check}",
                sh_quote(EXTRACT),
                sh_quote(&p.iso),
                sh_quote(&dest),
                sh_quote(&strip(&kpath)),
                sh_quote(&strip(&ipath)),
            )
        };
        let extract = ExtractMedia {
            query: cmd("1"),
            apply: cmd("0"),
            iso: p.iso.clone(),
            stdin,
        };
        let text = extract.run(ctx, &extract.query).await?;
        let changed_files: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("CHANGED ")).collect();
        let mut result = ModuleOutcome::ok();
        let mut change = MediaChange {
            extract: None,
            answer_iso: None,
        };
        if !changed_files.is_empty() {
            result = result.with_diff(Diff {
                before_header: format!("{dest} (before)"),
                after_header: format!("{dest} (after)"),
                before: String::new(),
                after: changed_files
                    .iter()
                    .map(|f| {
                        let from = if *f == "vmlinuz" { &kpath } else { &ipath };
                        let extra = if *f == "initrd" && p.answer_kind == "preseed" {
                            " + /preseed.cfg"
                        } else {
                            ""
                        };
                        format!("{dest}/{f}: {}:/{}{extra}\n", p.iso, strip(from))
                    })
                    .collect(),
            });
            change.extract = Some(extract);
        }

        let mut cdroms = vec![json!({ "path": p.iso })];
        let answer_iso = match p.answer_kind.as_str() {
            "preseed" => String::new(),
            kind => {
                let path = format!("{dest}/answer.iso");
                let (volid, files) = if kind == "kickstart" {
                    ("OEMDRV", vec![("ks.cfg".to_string(), p.answer.clone())])
                } else {
                    let id = p.instance_id.clone().unwrap_or_else(|| "installer".into());
                    (
                        "cidata",
                        vec![
                            ("user-data".to_string(), p.answer.clone()),
                            ("meta-data".to_string(), format!("instance-id: {id}\n")),
                        ],
                    )
                };
                if let Some((diff, build)) = plan_iso(ctx, "virt_install_media", &path, volid, &files, &[]).await? {
                    result = result.with_diff(diff);
                    change.answer_iso = Some(build);
                }
                cdroms.push(json!({ "path": path }));
                path
            }
        };
        let mut cmdline = kind_cmdline(&p.answer_kind).to_string();
        if let Some(extra) = p.cmdline.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            cmdline.push(' ');
            cmdline.push_str(extra);
        }
        let result = result
            .with("kernel", format!("{dest}/vmlinuz"))
            .with("initrd", format!("{dest}/initrd"))
            .with("cmdline", cmdline)
            .with("cdroms", json!(cdroms))
            .with("answer_iso", answer_iso);
        if change.extract.is_none() && change.answer_iso.is_none() {
            return Ok(Plan::Done(result));
        }
        Ok(Plan::change(result, change))
    }
}

/// [`EXTRACT`] for one installer ISO: the query compares in /tmp, the
/// change extracts again next to the destination and moves the files into place.
struct ExtractMedia {
    query: String,
    apply: String,
    iso: String,
    /// The preseed cpio appended to the initrd (empty: none).
    stdin: Vec<u8>,
}

impl ExtractMedia {
    /// Run one of the two command lines; its stdout (`CHANGED name` lines).
    async fn run(&self, ctx: &ModuleCtx<'_>, cmd: &str) -> Result<String, ModuleError> {
        let out = ctx.run_with_whole_stdin(cmd, self.stdin.clone()).await?;
        if out.status != 0 {
            let err = out.stderr_str();
            let msg = if out.status == 4 || err.contains("NOTOOL") {
                format!(
                    "virt_install_media: no tool to read ISO images on {}: install `bsdtar` \
                     (Debian/Ubuntu: libarchive-tools; RHEL: bsdtar), `xorriso` or `isoinfo` (genisoimage)",
                    ctx.host
                )
            } else {
                format!(
                    "virt_install_media: extracting the installer from {}: {}",
                    self.iso,
                    err.trim()
                )
            };
            return Err(ModuleError::Failed(msg));
        }
        Ok(out.stdout_str())
    }
}

/// Put the extracted kernel and initrd in place, then build the answer ISO.
struct MediaChange {
    extract: Option<ExtractMedia>,
    answer_iso: Option<BuildIso>,
}

#[async_trait]
impl Change for MediaChange {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        if let Some(x) = &self.extract {
            x.run(ctx, &x.apply).await?;
        }
        if let Some(b) = &self.answer_iso {
            b.build(ctx).await?;
        }
        Ok(planned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpio_newc_layout() {
        let a = cpio_newc("preseed.cfg", b"d-i x\n");
        assert_eq!(a.len() % 4, 0);
        assert!(a.starts_with(b"070701"));
        // ino 1, mode 100644, filesize 6, namesize 12.
        assert_eq!(&a[6..22], b"00000001000081a4");
        assert_eq!(&a[6 + 6 * 8..6 + 7 * 8], b"00000006");
        assert_eq!(&a[6 + 11 * 8..6 + 12 * 8], b"0000000c");
        // Header (110) + name (12) padded to 124, then the data.
        assert_eq!(&a[110..122], b"preseed.cfg\0");
        assert_eq!(&a[124..130], b"d-i x\n");
        let trailer = String::from_utf8_lossy(&a);
        assert!(trailer.contains("TRAILER!!!"));
    }

    #[test]
    fn each_kind_finds_its_answer_file() {
        assert!(kind_cmdline("kickstart").contains("inst.ks=hd:LABEL=OEMDRV:/ks.cfg"));
        assert!(kind_cmdline("preseed").contains("auto=true priority=critical"));
        assert_eq!(kind_cmdline("autoinstall"), "autoinstall ds=nocloud");
    }
}
