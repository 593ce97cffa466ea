//! Property-based fuzzing of the loaders (proptest): arbitrary and
//! YAML/INI/Jinja-shaped input must give a result or a located error, never a
//! panic. Runs briefly in CI (a few hundred cases per loader). And the
//! cargo-fuzz corpus (`fuzz/corpus/TARGET/`, crashes found included) replayed
//! through the same entry points the fuzz targets call (`rigger::fuzzing`).

use proptest::prelude::*;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Strings built from YAML's special characters and playbook-like words.
fn yamlish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "- ",
        "  ",
        "\n",
        ": ",
        "hosts",
        "tasks",
        "name",
        "block",
        "{{ x }}",
        "'",
        "\"",
        "&a ",
        "*a",
        "<<: ",
        "[",
        "]",
        "{",
        "}",
        ",",
        "#",
        "|",
        ">",
        "!!str ",
        "!vault ",
        "yes",
        "0644",
        "~",
        "\t",
        "---\n",
        "...\n",
        "copy",
        "src=a dest=b",
        "loop",
        "when",
        "\\",
        "%",
        "@",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

fn iniish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "[web]",
        "[web:vars]",
        "[all:children]",
        "[",
        "]",
        "\n",
        "host1",
        "web[01:10].x",
        "[a:c]",
        "[1:",
        " ",
        "ansible_host=",
        "127.0.0.1",
        "=",
        "'",
        "\"",
        "#",
        ";",
        ":",
        "2222",
        "k=v",
        "x=[1,2]",
        "{",
        "}",
        "\t",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

fn jinjaish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "{{",
        "}}",
        "{%",
        "%}",
        "{#",
        "#}",
        " x ",
        "|",
        "default",
        "(",
        ")",
        "'a'",
        "1",
        "+",
        "if",
        "for",
        "endfor",
        "endif",
        " in ",
        "[",
        "]",
        ".",
        "regex_replace",
        "combine",
        "to_json",
        "from_yaml",
        "int",
        "~",
        "is",
        "defined",
        "not",
        "lookup('env', 'HOME')",
        "\n",
    ]);
    prop::collection::vec(atoms, 0..30).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn yaml_loader_never_panics(text in prop_oneof![yamlish(), any::<String>()]) {
        if let Err(e) = rigger::yaml::parse_documents(&text, "fuzz.yml") {
            prop_assert_eq!(&*e.loc.file, "fuzz.yml");
        }
    }

    #[test]
    fn playbook_loader_never_panics(text in yamlish()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("play.yml");
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = rigger::playbook::load_playbook(&path, &Default::default()) {
            // Every error renders, with its snippet, without panicking.
            let _ = e.render();
        }
    }

    #[test]
    fn inventory_loader_never_panics(text in prop_oneof![iniish(), yamlish()]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, &text).unwrap();
        match rigger::inventory::Inventory::load(&[path.display().to_string()]) {
            Ok(inv) => {
                let _ = inv.select("all:!nothing");
            }
            Err(e) => {
                let _ = e.render();
            }
        }
    }

    #[test]
    fn template_engine_never_panics(text in prop_oneof![jinjaish(), any::<String>()]) {
        let templar = rigger::template::Templar::new();
        let ctx = minijinja::Value::from(minijinja::value::Serde(serde_json::json!({"x": [1, 2], "s": "t"})));
        let loc = rigger::yaml::Loc::synthetic("fuzz");
        let _ = templar.render_str(&text, &ctx, &loc);
        let _ = templar.eval(&text, &ctx, &loc);
    }
}

/// Every input of the committed cargo-fuzz corpus goes through its target's
/// entry point without a panic; every target has a corpus, and every corpus
/// directory is a target.
#[test]
fn the_fuzz_corpus_replays_without_a_panic() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut replayed = 0;
    for (name, entry) in rigger::fuzzing::TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name}: no corpus");
        for input in inputs {
            let data = std::fs::read(&input).unwrap();
            if std::panic::catch_unwind(|| entry(&data)).is_err() {
                panic!("{name}: {} panics", input.display());
            }
            replayed += 1;
        }
    }
    for d in std::fs::read_dir(&root).unwrap() {
        let name = d.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            rigger::fuzzing::TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/corpus/{name} is no target of rigger::fuzzing::TARGETS"
        );
    }
    let targets = std::fs::read_dir(root.join("../fuzz_targets")).unwrap().count();
    assert_eq!(
        targets,
        rigger::fuzzing::TARGETS.len(),
        "fuzz/fuzz_targets and TARGETS differ"
    );
    eprintln!("replayed {replayed} corpus inputs");
}
