//! `getent`: read a name-service database of the host (`passwd`, `group`,
//! `hosts`, `services`, ...) into the fact `getent_<database>`.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::connection::sh_quote;
use crate::modules::args::de_opt_bool;
use crate::modules::{
    parse_params, Module, ModuleCtx, ModuleDoc, ModuleError, ModuleOutcome, OptKind, OptionDoc, Plan, ReturnDoc,
};

const OPTIONS: &[OptionDoc] = &[
    OptionDoc::new(
        "database",
        OptKind::Str,
        "The database to read (`passwd`, `group`, `hosts`, ...).",
    )
    .required(),
    OptionDoc::new(
        "key",
        OptKind::Str,
        "Only the entries of this key; all entries when not given.",
    ),
    OptionDoc::new(
        "service",
        OptKind::Str,
        "Read from this service only (`getent -s`, e.g. `files`).",
    ),
    OptionDoc::new(
        "split",
        OptKind::Str,
        "Field separator; `:` for passwd, shadow, group and gshadow, whitespace otherwise.",
    ),
    OptionDoc::new(
        "fail_key",
        OptKind::Bool,
        "Fail when `key` is not found; when false, the key is set to null instead.",
    )
    .default("true"),
];

pub(crate) static DOC: ModuleDoc = ModuleDoc {
    name: "getent",
    aliases: &[],
    short: "Read a name-service database (getent) into facts",
    description: "Runs `getent DATABASE [KEY] [-s SERVICE]` on the host and sets the fact \
`getent_DATABASE`: a mapping from each entry's first field to the list of its other fields (a list \
of such lists when a key appears more than once). Changes nothing.",
    free_form: false,
    options: OPTIONS,
    examples: "- getent:\n    database: passwd\n    key: root\n- debug:\n    var: getent_passwd.root\n",
    returns: &[ReturnDoc {
        name: "ansible_facts",
        description: "`getent_DATABASE`: the entries found",
    }],
    controller_only: false,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    database: String,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    split: Option<String>,
    #[serde(default, deserialize_with = "de_opt_bool")]
    fail_key: Option<bool>,
}

pub(crate) struct Getent;

#[async_trait]
impl Module for Getent {
    fn doc(&self) -> &'static ModuleDoc {
        &DOC
    }

    async fn query(&self, ctx: &ModuleCtx<'_>, args: Map<String, Value>) -> Result<Plan, ModuleError> {
        let p: Params = parse_params(&DOC, args)?;
        let mut cmd = format!("getent {}", sh_quote(&p.database));
        if let Some(k) = &p.key {
            cmd.push(' ');
            cmd.push_str(&sh_quote(k));
        }
        if let Some(s) = &p.service {
            cmd.push_str(" -s ");
            cmd.push_str(&sh_quote(s));
        }
        let out = ctx.run(&cmd).await?;
        let split = p.split.clone().or_else(|| {
            ["passwd", "shadow", "group", "gshadow"]
                .contains(&p.database.as_str())
                .then(|| ":".to_string())
        });
        let fact = format!("getent_{}", p.database);
        let mut entries = Map::new();
        let msg = match out.status {
            0 => {
                entries = parse_entries(&out.stdout_str(), split.as_deref());
                None
            }
            1 => Some("Missing arguments, or database unknown."),
            2 => {
                let msg = "One or more supplied key could not be found in the database.";
                if !p.fail_key.unwrap_or(true) {
                    entries.insert(p.key.clone().unwrap_or_default(), Value::Null);
                    let mut facts = Map::new();
                    facts.insert(fact, Value::Object(entries));
                    return Ok(Plan::Done(
                        ModuleOutcome::ok()
                            .with_msg(msg)
                            .with("ansible_facts", Value::Object(facts)),
                    ));
                }
                Some(msg)
            }
            3 => Some("Enumeration not supported on this database."),
            127 => Some("getent is not installed on the host"),
            _ => Some("Unexpected failure!"),
        };
        if let Some(m) = msg {
            return Ok(Plan::Done(ModuleOutcome::failed(m)));
        }
        let mut facts = Map::new();
        facts.insert(fact, Value::Object(entries));
        Ok(Plan::Done(
            ModuleOutcome::ok().with("ansible_facts", Value::Object(facts)),
        ))
    }
}

/// getent's lines as Ansible's module reads them: the first field is the key,
/// the others its value; a key seen again makes its value a list of records.
fn parse_entries(text: &str, split: Option<&str>) -> Map<String, Value> {
    let mut out = Map::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in text.lines() {
        let record: Vec<&str> = match split {
            Some(s) => line.split(s).collect(),
            None => line.split_whitespace().collect(),
        };
        let Some((key, rest)) = record.split_first() else {
            continue;
        };
        let rest = Value::Array(rest.iter().map(|f| Value::String(f.to_string())).collect());
        match seen.get_mut(*key) {
            Some(n) => {
                if *n == 1 {
                    if let Some(first) = out.remove(*key) {
                        out.insert(key.to_string(), Value::Array(vec![first]));
                    }
                }
                if let Some(Value::Array(list)) = out.get_mut(*key) {
                    list.push(rest);
                }
                *n += 1;
            }
            None => {
                out.insert(key.to_string(), rest);
                seen.insert(key.to_string(), 1);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_split_as_ansible_does() {
        let m = parse_entries("root:x:0:0:root:/root:/bin/bash\n", Some(":"));
        assert_eq!(
            m["root"],
            serde_json::json!(["x", "0", "0", "root", "/root", "/bin/bash"])
        );
        let m = parse_entries("ssh  22/tcp\nhttp 80/tcp www\nhttp 80/udp\n", None);
        assert_eq!(m["ssh"], serde_json::json!(["22/tcp"]));
        assert_eq!(m["http"], serde_json::json!([["80/tcp", "www"], ["80/udp"]]));
    }
}
