//! Vault taint through templates: a render that read a tainted value (one
//! holding a vault plaintext, see `output::redact`) is tainted, and what it
//! produced enters the run's secrets, so `{{ db_password | b64encode }}`
//! is masked wherever it is printed, as `{{ db_password }}` is.
//!
//! A render knows what it read in two ways: the variables its source names
//! (`undeclared_variables`, with their static attribute paths, looked up in
//! its context after it ran: a value holding a secret taints it), and
//! [`mark`], called by whatever hands out tainted data while it runs (the
//! `unvault` filter and lookup, a vaulted template file, another host's
//! variables through `hostvars`, a nested render that was tainted). What a
//! tainted render produced is each value it output (`{{ }}` nodes, through
//! the formatter), or its result (each string leaf) when it output none (a
//! native value of one expression): a node that is exactly
//! the value of an untainted variable it read (`{{ user }}:{{ pw }}`) is
//! not taken for a secret.
//!
//! Renders nest (a binding is rendered on first use, a lookup renders a
//! template), so each render has its own frame on a per-thread stack, and a
//! tainted frame taints the one around it. A run without vault passwords
//! never pushes a frame: none of this costs anything there.

use std::cell::RefCell;
use std::collections::HashSet;

use minijinja::value::ValueKind;
use minijinja::Value;

use crate::output::redact;

/// At most this many values of one render are recorded or inspected; the
/// rest are not (a render printing a million values is not a secret's).
const BUDGET: usize = 10_000;

#[derive(Default)]
struct Frame {
    tainted: bool,
    nodes: Vec<String>,
}

thread_local! {
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
}

/// Whether taint is tracked in this run (see `output::redact::tracking`).
pub fn tracking() -> bool {
    redact::tracking()
}

/// One render's (or one task's) frame. Inactive, and free, when the run
/// tracks no taint.
pub struct Scope {
    active: bool,
}

impl Scope {
    pub fn start() -> Scope {
        if !tracking() {
            return Scope { active: false };
        }
        FRAMES.with(|f| f.borrow_mut().push(Frame::default()));
        Scope { active: true }
    }

    /// Pop the frame: whether it was tainted (a tainted frame taints the
    /// one around it), with the values it output.
    fn pop(&mut self) -> Option<Frame> {
        if !self.active {
            return None;
        }
        self.active = false;
        let frame = FRAMES.with(|f| f.borrow_mut().pop())?;
        if frame.tainted {
            mark();
        }
        Some(frame)
    }

    /// End a task's frame: whether anything rendered inside it was tainted.
    pub fn finish(mut self) -> bool {
        self.pop().is_some_and(|f| f.tainted)
    }

    /// End a render's frame: `referenced` are the names (with static
    /// attribute paths) the template uses, looked up in `ctx`; when the
    /// render read a tainted value, `result` and the values it output enter
    /// the run's secrets.
    pub(super) fn settle(mut self, referenced: impl FnOnce() -> Vec<String>, ctx: &Value, result: &serde_json::Value) {
        if !self.active {
            return;
        }
        let mut untainted = HashSet::new();
        let reads_taint = FRAMES.with(|f| f.borrow().last().is_some_and(|fr| fr.tainted))
            || reads_tainted(&referenced(), ctx, &mut untainted);
        if reads_taint {
            mark();
        }
        let Some(frame) = self.pop() else {
            return;
        };
        if !frame.tainted {
            return;
        }
        // A text made of output values and literal text: the values are
        // the secrets (`password={{ pw }}` masks as `password=********`).
        // A native value (one expression) or text without output values
        // (`{% if pw %}...`) is one whole.
        if frame.nodes.is_empty() {
            taint_new_leaves(result, &untainted);
        }
        for node in frame.nodes.iter().filter(|n| !untainted.contains(*n)) {
            redact::taint(node);
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let _ = self.pop();
    }
}

/// The render (or task) running on this thread read tainted data.
pub fn mark() {
    if !tracking() {
        return;
    }
    FRAMES.with(|f| {
        if let Some(frame) = f.borrow_mut().last_mut() {
            frame.tainted = true;
        }
    });
}

/// [`mark`] when `v` holds a secret.
pub fn mark_if_secret(v: &serde_json::Value) {
    if tracking() && json_holds_secret(v, &mut BUDGET.clone()) {
        mark();
    }
}

fn json_holds_secret(v: &serde_json::Value, budget: &mut usize) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match v {
        serde_json::Value::String(s) => redact::run_secrets().holds_secret(s),
        serde_json::Value::Array(a) => a.iter().any(|x| json_holds_secret(x, budget)),
        serde_json::Value::Object(m) => m.values().any(|x| json_holds_secret(x, budget)),
        _ => false,
    }
}

/// Called by the formatter for each value a template outputs.
pub(super) fn record_node(v: &Value) {
    if !tracking() || !matches!(v.kind(), ValueKind::String | ValueKind::Number) {
        return;
    }
    FRAMES.with(|f| {
        if let Some(frame) = f.borrow_mut().last_mut() {
            if frame.nodes.len() < BUDGET {
                frame.nodes.push(v.to_string());
            }
        }
    });
}

/// Whether a value named in `referenced` holds a secret. The text of every
/// value they hold that is not a secret goes to `untainted`: passed through
/// a render unchanged (`{{ result }}` of a registered result), it stays
/// what it was.
fn reads_tainted(referenced: &[String], ctx: &Value, untainted: &mut HashSet<String>) -> bool {
    let mut budget = BUDGET;
    let mut tainted = false;
    for name in referenced {
        let mut parts = name.split('.');
        // Another host's variables are checked as they are handed out
        // (`hostvars[h]` marks the render): walking them all here would
        // compute every host's variables.
        let Some(root) = parts.next().filter(|r| *r != "hostvars") else {
            continue;
        };
        let Ok(mut v) = ctx.get_attr(root) else {
            continue;
        };
        for p in parts {
            match v.get_attr(p) {
                Ok(x) if !x.is_undefined() => v = x,
                _ => break,
            }
        }
        tainted |= holds_secret(&v, &mut budget, untainted);
    }
    tainted
}

fn holds_secret(v: &Value, budget: &mut usize, untainted: &mut HashSet<String>) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    match v.kind() {
        ValueKind::String | ValueKind::Number => {
            let text = v.to_string();
            if redact::run_secrets().holds_secret(&text) {
                return true;
            }
            untainted.insert(text);
            false
        }
        ValueKind::Seq => v
            .try_iter()
            .is_ok_and(|it| it.fold(false, |acc, x| holds_secret(&x, budget, untainted) | acc)),
        ValueKind::Map => v.try_iter().is_ok_and(|it| {
            it.fold(false, |acc, k| {
                v.get_item(&k).is_ok_and(|x| holds_secret(&x, budget, untainted)) | acc
            })
        }),
        _ => false,
    }
}

/// [`redact::taint`] the string leaves of `v` that did not pass through
/// unchanged (see [`reads_tainted`]).
fn taint_new_leaves(v: &serde_json::Value, untainted: &HashSet<String>) {
    match v {
        serde_json::Value::String(s) if !untainted.contains(s) => redact::taint(s),
        serde_json::Value::Array(a) => a.iter().for_each(|x| taint_new_leaves(x, untainted)),
        serde_json::Value::Object(m) => m.values().for_each(|x| taint_new_leaves(x, untainted)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_render_reading_a_secret_taints_what_it_outputs() {
        redact::taint("t4int-s3cret");
        let templar = super::super::Templar::new();
        let ctx = super::super::from_json_value(&serde_json::json!({
            "pw": "t4int-s3cret", "user": "admin", "creds": {"pw": "t4int-s3cret"}
        }));
        let loc = crate::yaml::Loc::synthetic("t");
        let v = templar.render_str("{{ pw | upper }}", &ctx, &loc).unwrap();
        assert_eq!(v, serde_json::json!("T4INT-S3CRET"));
        assert!(redact::run_secrets().is_secret("T4INT-S3CRET"));
        let v = templar
            .render_str("{{ user }}:{{ creds.pw | b64encode }}", &ctx, &loc)
            .unwrap();
        let b64 = "dDRpbnQtczNjcmV0";
        assert_eq!(v, serde_json::json!(format!("admin:{b64}")));
        assert!(redact::run_secrets().is_secret(b64));
        // The untainted variable's value is not taken for a secret.
        assert!(!redact::run_secrets().is_secret("admin"));
        // A render that reads nothing tainted taints nothing.
        templar.render_str("{{ user | upper }}", &ctx, &loc).unwrap();
        assert!(!redact::run_secrets().is_secret("ADMIN"));
        // An expression (debug's var) is a render too.
        templar.eval("pw | reverse", &ctx, &loc).unwrap();
        assert!(redact::run_secrets().is_secret("terc3s-tni4t"));
    }
}
