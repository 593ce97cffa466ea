//! The findings as text (`file:line:column: ID message`), JSON, or SARIF
//! 2.1.0 (for code-scanning tools).

use serde_json::{json, Value};

use super::finding::{Finding, Outcome};
use super::rules::{Level, RULES};
use crate::error::LocError;

/// One line per finding on stdout; the load failures (with their source
/// line) and a count on stderr.
pub fn text(out: &Outcome) {
    for f in &out.findings {
        let level = match f.level {
            Level::Error => "",
            Level::Warning => " (warning)",
        };
        stdoutln!("{}: {} {}{level}", f.loc, f.rule.id, f.message);
    }
    for e in &out.failures {
        stderrln!("{}", e.render());
    }
    let errors = out.count(Level::Error);
    let warnings = out.count(Level::Warning);
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut summary = format!(
        "rigger lint: {}, {} in {}",
        plural(errors, "error"),
        plural(warnings, "warning"),
        plural(out.files, "file")
    );
    if !out.failures.is_empty() {
        summary.push_str(&format!(
            ", {} that could not be read",
            plural(out.failures.len(), "file")
        ));
    }
    stderrln!("{summary} ({} ms)", out.elapsed.as_millis());
}

fn finding_json(f: &Finding) -> Value {
    json!({
        "rule": f.rule.id,
        "ansible_lint": f.rule.ansible_lint,
        "level": f.level.as_str(),
        "file": &*f.loc.file,
        "line": f.loc.line,
        "column": f.loc.col,
        "message": f.message,
    })
}

fn failure_json(e: &LocError) -> Value {
    json!({
        "file": &*e.loc.file,
        "line": e.loc.line,
        "column": e.loc.col,
        "message": e.msg,
    })
}

/// One JSON document: the findings, the files that could not be loaded, counts.
pub fn json(out: &Outcome) -> String {
    let doc = json!({
        "findings": out.findings.iter().map(finding_json).collect::<Vec<_>>(),
        "failures": out.failures.iter().map(failure_json).collect::<Vec<_>>(),
        "files": out.files,
        "errors": out.count(Level::Error),
        "warnings": out.count(Level::Warning),
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn sarif_level(l: Level) -> &'static str {
    match l {
        Level::Error => "error",
        Level::Warning => "warning",
    }
}

/// A relative path as a URI reference (`/`-separated, percent-encoded).
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn location(file: &str, line: u32, col: u32) -> Value {
    let artifact = if file.starts_with('/') {
        json!({ "uri": format!("file://{}", uri(file)) })
    } else {
        json!({ "uri": uri(file), "uriBaseId": "%SRCROOT%" })
    };
    let mut region = json!({ "startLine": line.max(1) });
    if col > 0 {
        region["startColumn"] = json!(col);
    }
    json!({ "physicalLocation": { "artifactLocation": artifact, "region": region } })
}

/// A SARIF 2.1.0 log: one run of rigger with every rule described and a
/// result per finding; files that could not be loaded are tool
/// execution notifications (and make the invocation unsuccessful).
pub fn sarif(out: &Outcome, levels: impl Fn(&'static super::rules::Rule) -> Option<Level>) -> String {
    let rules: Vec<Value> = RULES
        .iter()
        .map(|r| {
            let mut rule = json!({
                "id": r.id,
                "name": r.id,
                "shortDescription": { "text": r.summary },
                "fullDescription": { "text": r.description },
                "defaultConfiguration": {
                    "level": levels(r).map_or("none", sarif_level),
                    "enabled": levels(r).is_some(),
                },
            });
            if let Some(a) = r.ansible_lint {
                rule["properties"] = json!({ "ansibleLintId": a });
            }
            rule
        })
        .collect();
    let results: Vec<Value> = out
        .findings
        .iter()
        .map(|f| {
            json!({
                "ruleId": f.rule.id,
                "ruleIndex": RULES.iter().position(|r| r.id == f.rule.id).unwrap_or(0),
                "level": sarif_level(f.level),
                "message": { "text": f.message },
                "locations": [location(&f.loc.file, f.loc.line, f.loc.col)],
            })
        })
        .collect();
    let notifications: Vec<Value> = out
        .failures
        .iter()
        .map(|e| {
            json!({
                "level": "error",
                "message": { "text": e.msg },
                "locations": [location(&e.loc.file, e.loc.line, e.loc.col)],
            })
        })
        .collect();
    let root = std::env::current_dir()
        .map(|d| format!("file://{}/", uri(&d.display().to_string()).trim_end_matches('/')))
        .unwrap_or_else(|_| "file:///".into());
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "rigger",
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rules,
                }
            },
            "invocations": [{
                "executionSuccessful": out.failures.is_empty(),
                "toolExecutionNotifications": notifications,
            }],
            "originalUriBaseIds": { "%SRCROOT%": { "uri": root } },
            "results": results,
        }]
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
