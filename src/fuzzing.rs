//! Entry points for fuzzing the parsers (issue #22, "Parsers hardened"):
//! each takes arbitrary bytes and must return, never panic or hang. The
//! cargo-fuzz targets in `fuzz/` call them, and `tests/it/fuzz.rs` replays
//! every input of the committed corpus (`fuzz/corpus/TARGET/`) through them
//! on the stable toolchain, so a crash once found stays a regression test.
//!
//! Loaders that read a path get the input through a file in a private
//! scratch directory. Inputs that could reach a lookup (`lookup`, `query`,
//! `q`: `pipe` and `lines` run commands) are skipped where templates are
//! evaluated: a fuzzer must not run what it invents.

use std::path::PathBuf;
use std::sync::OnceLock;

/// A fuzzing entry point: any bytes in, nothing out, never a panic.
pub type Entry = fn(&[u8]);

/// Every parser under fuzzing, by its cargo-fuzz target name.
pub const TARGETS: &[(&str, Entry)] = &[
    ("playbook", playbook),
    ("inventory_ini", inventory_ini),
    ("inventory_yaml", inventory_yaml),
    ("inventory_script", inventory_script),
    ("template", template),
    ("vault", vault),
    ("watch_config", watch_config),
];

/// A private scratch directory for this process, made once.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("rigger-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    })
}

/// Writes `data` to `name` in the scratch directory; `None` if it cannot.
fn scratch_file(name: &str, data: &[u8]) -> Option<PathBuf> {
    let p = scratch().join(name);
    std::fs::write(&p, data).ok().map(|_| p)
}

/// Whether `text` names a lookup function (`lookup`, `query`, or `q` as a
/// word), directly or through an alias.
pub fn mentions_lookup(text: &str) -> bool {
    if text.contains("lookup") || text.contains("query") {
        return true;
    }
    let b = text.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    b.iter()
        .enumerate()
        .any(|(i, &c)| c == b'q' && (i == 0 || !word(b[i - 1])) && b.get(i + 1).is_none_or(|&n| !word(n)))
}

/// The YAML reader and the playbook loader (plays, tasks, blocks, roles'
/// keywords); every error renders.
pub fn playbook(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = crate::yaml::parse_documents(text, "fuzz.yml") {
        let _ = e.render();
    }
    if mentions_lookup(text) {
        return;
    }
    let Some(path) = scratch_file("play.yml", data) else {
        return;
    };
    match crate::playbook::load_playbook(&path, &Default::default()) {
        Ok(pb) => {
            let _ = pb.plays.len();
        }
        Err(e) => {
            let _ = e.render();
        }
    }
}

fn inventory_file(name: &str, data: &[u8]) {
    if std::str::from_utf8(data).is_ok_and(mentions_lookup) {
        return;
    }
    let Some(path) = scratch_file(name, data) else { return };
    match crate::inventory::Inventory::load(&[path.display().to_string()]) {
        Ok(inv) => {
            let _ = inv.select("all:!nothing");
            let _ = inv.to_list_json();
        }
        Err(e) => {
            let _ = e.render();
        }
    }
}

/// An INI inventory (groups, `:vars`, `:children`, ranges, values).
/// Inputs whose host ranges expand to more than [`MAX_EXPANSION`] hosts on
/// one line are skipped: the expansion is a product by design (as
/// Ansible's), so `h[01:10][01:10]...` is slow by its size, not by a bug,
/// and would stop the fuzzer with a timeout.
pub fn inventory_ini(data: &[u8]) {
    if range_product(data) > MAX_EXPANSION {
        return;
    }
    inventory_file("hosts", data);
}

/// The most hosts one fuzzed INI line may expand to.
const MAX_EXPANSION: u128 = 100_000;

/// The largest product, over the input's lines, of the sizes of the
/// `[A:B]` ranges on a line (an over-estimate: a step only shrinks them).
fn range_product(data: &[u8]) -> u128 {
    static RANGE: std::sync::OnceLock<regex::bytes::Regex> = std::sync::OnceLock::new();
    let re = RANGE.get_or_init(|| regex::bytes::Regex::new(r"\[([^\]:\n]*):([^\]:\n]*)").expect("regex"));
    let size = |a: &[u8], b: &[u8]| -> u128 {
        let num = |x: &[u8]| std::str::from_utf8(x).ok().and_then(|t| t.trim().parse::<u128>().ok());
        match (num(a), num(b)) {
            (Some(a), Some(b)) => b.abs_diff(a) + 1,
            _ => 26,
        }
    };
    data.split(|&c| c == b'\n')
        .map(|line| {
            re.captures_iter(line)
                .map(|c| size(&c[1], &c[2]))
                .fold(1u128, |p, n| p.saturating_mul(n.max(1)))
        })
        .max()
        .unwrap_or(1)
}

/// A YAML inventory.
pub fn inventory_yaml(data: &[u8]) {
    inventory_file("hosts.yml", data);
}

/// A dynamic-inventory script's `--list` output.
pub fn inventory_script(data: &[u8]) {
    match crate::inventory::Inventory::from_script_output(data, "fuzz-script") {
        Ok(inv) => {
            let _ = inv.select("all");
            let _ = inv.to_list_json();
        }
        Err(e) => {
            let _ = e.render();
        }
    }
}

/// A template and an expression, with Ansible's filters and tests.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if mentions_lookup(text) {
        return;
    }
    static TEMPLAR: OnceLock<crate::template::Templar> = OnceLock::new();
    let templar = TEMPLAR.get_or_init(crate::template::Templar::new);
    let ctx = minijinja::Value::from(minijinja::value::Serde(
        serde_json::json!({"x": [1, 2], "s": "t", "m": {"k": "v"}}),
    ));
    let loc = crate::yaml::Loc::synthetic("fuzz");
    let _ = templar.render_str(text, &ctx, &loc);
    let _ = templar.eval(text, &ctx, &loc);
}

/// An ansible-vault envelope (1.1 and 1.2) and the inline `!vault` values of
/// a YAML file; a well-formed one is decrypted with a fixed password (its
/// HMAC fails, or it decrypts when the input was made with it).
pub fn vault(data: &[u8]) {
    if let Ok(env) = crate::vault::format::Envelope::parse(data) {
        let _ = env.decrypt(b"fuzz");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::vault::inline::find(text, "fuzz.yml");
    }
}

/// A `rigger watch` configuration (collectors, rules, routes, notifiers).
pub fn watch_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(root) = crate::yaml::parse_one(text, "watch.yml") else {
        return;
    };
    match crate::watch::config::WatchConfig::from_node(&root, &scratch().join("watch.yml")) {
        Ok(_) => {}
        Err(e) => {
            let _ = e.render();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_recognised_as_words() {
        assert!(mentions_lookup("{{ lookup('pipe', 'id') }}"));
        assert!(mentions_lookup("{{ q('lines', 'id') }}"));
        assert!(mentions_lookup("{% set f = q %}"));
        assert!(!mentions_lookup("{{ x | unique }}"));
        assert!(!mentions_lookup("quiet: yes"));
    }
}
