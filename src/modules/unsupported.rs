//! Ansible's words for a task's parameters that a module does not take
//! (below the registry: the modules themselves fail with them).

use super::contract::ModuleDoc;

/// Ansible's failure for parameters a module does not take. Its action
/// plugins with a fixed set of options (`reboot`, `wait_for_connection`,
/// `fail`, `group_by`: `ActionBase._VALID_ARGS`) say "Invalid options for
/// ACTION: a,b"; `shell` refuses `command`'s `expand_argument_vars` in its
/// own words; a module's argument spec says "Unsupported parameters for
/// (MODULE) module: a, b. Supported parameters include: ... (aliases)."
pub fn unsupported_message(doc: &ModuleDoc, bad: &[String]) -> String {
    if matches!(doc.name, "reboot" | "wait_for_connection" | "fail" | "group_by") {
        return format!("Invalid options for {}: {}", doc.name, bad.join(","));
    }
    if doc.name == "shell" && bad.iter().any(|b| b == "expand_argument_vars") {
        return "Unsupported parameters for (shell) module: expand_argument_vars".into();
    }
    let mut names: Vec<&str> = doc.options.iter().map(|o| o.name).collect();
    names.sort_unstable();
    let mut aliases: Vec<&str> = doc.options.iter().flat_map(|o| o.aliases.iter().copied()).collect();
    aliases.sort_unstable();
    let mut supported = names.join(", ");
    if !aliases.is_empty() {
        supported.push_str(&format!(" ({})", aliases.join(", ")));
    }
    format!(
        "Unsupported parameters for ({}) module: {}. Supported parameters include: {supported}.",
        doc.name,
        bad.join(", ")
    )
}
