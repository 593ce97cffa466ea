//! `virsh` on a host (`Virsh`), the planned virsh commands as a Change
//! (`VirshSteps`), and the XML comparisons the virt modules share.

use super::xml::{self, Elem};
use crate::connection::sh_quote;
use crate::modules::{Change, Diff, ModuleCtx, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan};
use async_trait::async_trait;

/// The libvirt URI used when a task gives none.
pub const DEFAULT_URI: &str = "qemu:///system";

/// The `uri` option every virt module takes.
pub const URI_OPTION: OptionDoc = OptionDoc::new(
    "uri",
    OptKind::Str,
    "libvirt connection URI, used by `virsh -c` on the hypervisor host.",
)
.default(DEFAULT_URI);

/// `virsh -c URI` on the task's host.
pub struct Virsh<'a> {
    pub ctx: &'a ModuleCtx<'a>,
    pub uri: String,
    /// Module name, for error messages.
    pub module: &'static str,
}

/// The result of one virsh command.
pub struct VirshOut {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl<'a> Virsh<'a> {
    pub fn new(ctx: &'a ModuleCtx<'a>, uri: Option<&str>, module: &'static str) -> Virsh<'a> {
        Virsh {
            ctx,
            uri: uri.filter(|u| !u.is_empty()).unwrap_or(DEFAULT_URI).to_string(),
            module,
        }
    }

    fn command(&self, args: &[&str]) -> String {
        let mut cmd = format!("LC_ALL=C virsh -q -c {}", sh_quote(&self.uri));
        for a in args {
            cmd.push(' ');
            cmd.push_str(&sh_quote(a));
        }
        cmd
    }

    /// Run virsh; a failure to run at all (no virsh) is an error, a virsh error is returned.
    pub async fn try_run(&self, args: &[&str]) -> Result<VirshOut, ModuleError> {
        let out = self.ctx.run(&self.command(args)).await?;
        if out.status == 127 {
            return Err(ModuleError::Failed(format!(
                "{}: `virsh` not found on {}; install libvirt-clients there",
                self.module, self.ctx.host
            )));
        }
        Ok(VirshOut {
            ok: out.status == 0,
            stdout: out.stdout_str(),
            stderr: out.stderr_str().trim().to_string(),
        })
    }

    /// Run virsh and fail the task with virsh's message when it fails.
    pub async fn run(&self, args: &[&str]) -> Result<String, ModuleError> {
        let out = self.try_run(args).await?;
        if out.ok {
            Ok(out.stdout)
        } else {
            Err(self.fail(args, &out.stderr))
        }
    }

    pub fn fail(&self, args: &[&str], stderr: &str) -> ModuleError {
        ModuleError::Failed(format!(
            "{}: `virsh -c {} {}` failed on {}: {}",
            self.module,
            self.uri,
            args.join(" "),
            self.ctx.host,
            stderr.trim()
        ))
    }

    /// `virsh SUBCMD /dev/stdin` with `xml` as stdin (define, net-define, pool-define, ...).
    pub async fn run_xml(&self, subcmd: &[&str], xml: &str) -> Result<String, ModuleError> {
        let mut args = subcmd.to_vec();
        args.push("/dev/stdin");
        let out = self
            .ctx
            .run_with_whole_stdin(&self.command(&args), xml.as_bytes().to_vec())
            .await?;
        if out.status != 0 {
            return Err(self.fail(&args, &out.stderr_str()));
        }
        Ok(out.stdout_str())
    }

    /// An XML document from a virsh command, or `None` when virsh fails with a
    /// "not found" kind of error.
    pub async fn xml(&self, args: &[&str]) -> Result<Option<xml::Elem>, ModuleError> {
        let out = self.try_run(args).await?;
        if !out.ok {
            if is_not_found(&out.stderr) {
                return Ok(None);
            }
            return Err(self.fail(args, &out.stderr));
        }
        xml::Elem::parse(&out.stdout)
            .map(Some)
            .map_err(|e| ModuleError::Failed(format!("{}: {e} (from virsh {})", self.module, args.join(" "))))
    }
}

/// One virsh command of a planned change.
enum VirshStep {
    /// `virsh ARGS`.
    Run(Vec<String>),
    /// `virsh SUBCMD /dev/stdin` with this XML on stdin.
    Xml(Vec<String>, String),
}

/// The virsh commands a virt module's query planned, run in order by its
/// change (stopping at the first failure).
pub struct VirshSteps {
    pub uri: String,
    module: &'static str,
    steps: Vec<VirshStep>,
}

impl VirshSteps {
    pub fn new(virsh: &Virsh<'_>) -> Self {
        VirshSteps {
            uri: virsh.uri.clone(),
            module: virsh.module,
            steps: Vec::new(),
        }
    }

    /// Plan `virsh ARGS` (see [`Virsh::run`]).
    pub fn run(&mut self, args: &[&str]) {
        self.steps
            .push(VirshStep::Run(args.iter().map(|a| a.to_string()).collect()));
    }

    /// Plan `virsh SUBCMD /dev/stdin` fed `xml` (see [`Virsh::run_xml`]).
    pub fn xml(&mut self, subcmd: &[&str], xml: String) {
        self.steps
            .push(VirshStep::Xml(subcmd.iter().map(|a| a.to_string()).collect(), xml));
    }

    /// The plan for `out` (whose `changed` the module set): these steps
    /// unless there are none and nothing changes. A step may change nothing
    /// the task reports (`pool-refresh`): it runs, and `changed` stays as set.
    pub fn plan(self, out: ModuleOutcome) -> Plan {
        if out.changed || !self.steps.is_empty() {
            Plan::Change(out, Box::new(self))
        } else {
            Plan::Done(out)
        }
    }

    /// Run the steps in order.
    pub async fn run_all(&self, ctx: &ModuleCtx<'_>) -> Result<(), ModuleError> {
        let virsh = Virsh::new(ctx, Some(&self.uri), self.module);
        for step in &self.steps {
            match step {
                VirshStep::Run(args) => {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    virsh.run(&args).await?;
                }
                VirshStep::Xml(subcmd, xml) => {
                    let subcmd: Vec<&str> = subcmd.iter().map(String::as_str).collect();
                    virsh.run_xml(&subcmd, xml).await?;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Change for VirshSteps {
    async fn apply(self: Box<Self>, ctx: &ModuleCtx<'_>, planned: ModuleOutcome) -> Result<ModuleOutcome, ModuleError> {
        self.run_all(ctx).await?;
        Ok(planned)
    }
}

/// Whether a virsh error says the object does not exist.
pub fn is_not_found(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("not found")
        || s.contains("failed to get domain")
        || s.contains("no domain with")
        || s.contains("no network with")
        || s.contains("no storage")
}

/// A `--diff` entry for an XML definition.
pub fn xml_diff(what: &str, before: Option<&str>, after: Option<&str>) -> Diff {
    Diff {
        before_header: format!("{what} (before)"),
        after_header: format!("{what} (after)"),
        before: before.unwrap_or_default().to_string(),
        after: after.unwrap_or_default().to_string(),
    }
}

/// The element paths that differ between two documents (`devices/disk[1]/driver@cache`),
/// for messages like "changed: vcpu, memory".
pub fn changed_paths(before: &xml::Elem, after: &xml::Elem) -> Vec<String> {
    let mut out = Vec::new();
    walk_changes(before, after, before.name.clone(), &mut out);
    out
}

fn walk_changes(a: &xml::Elem, b: &xml::Elem, path: String, out: &mut Vec<String>) {
    if a.attrs != b.attrs || a.text() != b.text() {
        out.push(path.clone());
    }
    let ac: Vec<&xml::Elem> = a.elems().collect();
    let bc: Vec<&xml::Elem> = b.elems().collect();
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for i in 0..ac.len().max(bc.len()) {
        let name = ac.get(i).or(bc.get(i)).map(|e| e.name.as_str()).unwrap_or_default();
        let n = seen.entry(name).or_insert(0);
        *n += 1;
        let p = format!("{path}/{name}[{n}]");
        match (ac.get(i), bc.get(i)) {
            (Some(x), Some(y)) if x.name == y.name => walk_changes(x, y, p, out),
            (Some(_), Some(y)) => out.push(format!("{path}/{}[{n}]", y.name)),
            (None, Some(y)) => out.push(format!("{path}/{} (added)", y.name)),
            (Some(x), None) => out.push(format!("{path}/{} (removed)", x.name)),
            (None, None) => {}
        }
    }
}

/// Whether every attribute, text and element of `want` is in `have`
/// (same-named children matched in order).
pub fn is_subset(want: &Elem, have: &Elem) -> bool {
    if want.name != have.name {
        return false;
    }
    if !want.attrs.iter().all(|(k, v)| have.attr(k) == Some(v.as_str())) {
        return false;
    }
    if !want.text().is_empty() && want.text() != have.text() {
        return false;
    }
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    for w in want.elems() {
        let n = counts.entry(w.name.as_str()).or_insert(0);
        let Some(h) = have.elems_named(&w.name).nth(*n) else {
            return false;
        };
        *n += 1;
        if !is_subset(w, h) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_changed_paths() {
        let a =
            xml::Elem::parse("<d><vcpu>1</vcpu><devices><disk><driver cache='none'/></disk></devices></d>").unwrap();
        let b = xml::Elem::parse(
            "<d><vcpu>2</vcpu><devices><disk><driver cache='writeback'/></disk><interface/></devices></d>",
        )
        .unwrap();
        assert_eq!(
            changed_paths(&a, &b),
            vec![
                "d/vcpu[1]",
                "d/devices[1]/disk[1]/driver[1]",
                "d/devices[1]/interface (added)"
            ]
        );
        assert!(is_not_found(
            "error: failed to get domain 'x'\nerror: Domain not found: no domain with matching name 'x'"
        ));
    }
}
