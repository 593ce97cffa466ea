use std::path::{Path, PathBuf};

use serde_json::json;
use tempfile::TempDir;

use super::model::GroupError;
use super::*;

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, content).unwrap();
    p
}

#[cfg(unix)]
fn write_script(dir: &Path, name: &str, content: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = write(dir, name, content);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn load_one(path: &Path) -> Result<Inventory, LocError> {
    Inventory::load(&[path.display().to_string()])
}

/// Load INI text from a temp file; returns the dir (kept alive) and the result.
fn ini(text: &str) -> (TempDir, PathBuf, Result<Inventory, LocError>) {
    let dir = TempDir::new().unwrap();
    let p = write(dir.path(), "hosts", text);
    let r = load_one(&p);
    (dir, p, r)
}

fn sel(inv: &Inventory, pattern: &str) -> Vec<String> {
    inv.select(pattern).unwrap()
}

const BASIC_INI: &str = "\
# comment
; another comment
lonely ansible_host=10.0.0.9

[web]
web[01:03].example.com http_port=80
edge:2222 ansible_user='deploy user' weight=1.5 enabled=True list=\"[1, 'a']\" raw=true

[db]
db-[a:b] # trailing comment

[web:vars]
proxy = \"squid\"
timeout = 30
shell_words = hello world

[prod:children]
web
db

[prod:vars]
env=prod
";

#[test]
fn ini_hosts_groups_and_vars() {
    let (_d, _p, r) = ini(BASIC_INI);
    let inv = r.unwrap();
    let hosts: Vec<&str> = inv.hosts.keys().map(String::as_str).collect();
    assert_eq!(
        hosts,
        [
            "lonely",
            "web01.example.com",
            "web02.example.com",
            "web03.example.com",
            "edge",
            "db-a",
            "db-b"
        ]
    );
    assert_eq!(inv.groups["web"].hosts.len(), 4);
    assert_eq!(inv.groups["prod"].children, ["web", "db"]);
    assert_eq!(inv.groups["ungrouped"].hosts, ["lonely"]);

    let edge = inv.host_vars("edge");
    assert_eq!(edge["ansible_port"], json!(2222));
    assert_eq!(edge["ansible_user"], json!("deploy user"));
    assert_eq!(edge["weight"], json!(1.5));
    assert_eq!(edge["enabled"], json!(true));
    assert_eq!(edge["list"], json!([1, "a"]));
    assert_eq!(edge["raw"], json!("true"));
    assert_eq!(edge["proxy"], json!("squid"));
    assert_eq!(edge["timeout"], json!(30));
    assert_eq!(edge["shell_words"], json!("hello world"));
    assert_eq!(edge["env"], json!("prod"));
    assert_eq!(inv.host_vars("web02.example.com")["http_port"], json!(80));
    assert!(!inv.host_vars("db-a").contains_key("proxy"));
    assert_eq!(inv.host_vars("lonely")["ansible_host"], json!("10.0.0.9"));
}

#[test]
fn ini_steps_and_letters() {
    let (_d, _p, r) = ini("[g]\nn[1:10:3]\nx[a:c]y\n");
    let inv = r.unwrap();
    assert_eq!(inv.groups["g"].hosts, ["n1", "n4", "n7", "n10", "xay", "xby", "xcy"]);
}

#[test]
fn ini_children_declared_later_and_empty_groups() {
    let (_d, _p, r) = ini("[parent:children]\nchild\n\n[child]\nh1\n\n[empty]\n");
    let inv = r.unwrap();
    assert_eq!(inv.groups["parent"].children, ["child"]);
    assert_eq!(sel(&inv, "parent"), ["h1"]);
    assert!(inv.groups.contains_key("empty"));
    assert_eq!(inv.groups["all"].children, ["ungrouped", "parent", "empty"]);
}

/// Every malformed INI input fails with `file:line:col` of the bad spot.
#[test]
fn ini_errors_are_located() {
    let cases: &[(&str, &str, &str)] = &[
        ("h1\n[web\nh2\n", ":2:1", "unterminated section"),
        ("[web]\nh1\n[web:bogus]\n", ":3:", "unknown type"),
        ("[web]\nh1\n[web ]\n", ":3:5", "invalid group name"),
        ("[web]\nh1\n[all:children]\nweb\nx=1\n", ":5:2", "variable assignment"),
        ("[web]\nh[01:5]\n", ":2:1", "equal-length"),
        ("[web]\nok\n  h[1:]\n", ":3:3", "end value"),
        ("[web]\nh[1:3\n", ":2:1", "unterminated range"),
        ("[web]\nh1 novalue\n", ":2:4", "key=value"),
        ("[web]\nh1 a='open\n", ":2:6", "closing quotation"),
        ("[web:vars]\nnovalue\n[web]\n", ":2:1", "key=value"),
        ("[web]\nh1\n[ghost:vars]\nx=1\n", ":3:1", "not defined"),
        ("[web]\nh1\n[p:children]\nweb\nwbe\n", ":5:1", "not defined"),
        ("[web]\nhost:\n", ":2:1", "reserved"),
        ("[web]\n---\n", ":2:1", "YAML"),
        ("[a:children]\nb\n[b:children]\na\n", ":4:1", "cycle"),
        ("[web:vars]\nansible_group_priority=high\n[web]\n", ":2:", "integer"),
    ];
    for (text, at, what) in cases {
        let (_d, p, r) = ini(text);
        let e = r.expect_err(text);
        let shown = e.to_string();
        let expected = format!("{}{at}", p.display());
        assert!(
            shown.starts_with(&expected),
            "{text:?}: expected `{expected}` in `{shown}`"
        );
        assert!(shown.contains(what), "{text:?}: expected `{what}` in `{shown}`");
    }
}

#[test]
fn ini_error_renders_snippet_and_hint() {
    let (_d, _p, r) = ini("[web]\nh1\n[all:children]\nweb\nansible_user=x\n");
    let rendered = r.unwrap_err().render();
    assert!(rendered.contains("5 | ansible_user=x"), "{rendered}");
    assert!(rendered.contains("hint:"), "{rendered}");
}

/// Random and garbled lines must never panic the INI parser.
#[test]
fn ini_parser_survives_garbage() {
    let alphabet: Vec<char> = "ab01:[]=#;'\" \t,-_.*!&~\\{}()\u{e9}\u{1F600}xyz9".chars().collect();
    let fragments = [
        "[",
        "]",
        ":vars",
        ":children",
        "[g]",
        "h[1:3]",
        "h[a:c]",
        "k=v",
        "='",
        "\"",
        "[1:",
        ":2222",
        "#",
        "---",
    ];
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let dir = TempDir::new().unwrap();
    for round in 0..300 {
        let mut text = String::new();
        for _ in 0..(next() % 8 + 1) {
            for _ in 0..(next() % 6) {
                if next() % 3 == 0 {
                    text.push_str(fragments[(next() % fragments.len() as u64) as usize]);
                } else {
                    text.push(alphabet[(next() % alphabet.len() as u64) as usize]);
                }
            }
            text.push('\n');
        }
        let mut inv = Inventory::new();
        let file = dir.path().join(format!("fuzz{round}"));
        // Ok or a located error, never a panic.
        if let Err(e) = ini::parse(&mut inv, &text, &file.display().to_string()) {
            assert!(e.loc.line >= 1, "{text:?} -> {e}");
        }
        inv.reconcile();
        let _ = inv.select("all");
        let _ = inv.to_list_json();
        let _ = inv.to_graph(None, true);
    }
}

#[test]
fn ungrouped_and_all() {
    let (_d, _p, r) = ini("a\n[g]\nb\na\n");
    let inv = r.unwrap();
    // `a` joined `g`, so it left `ungrouped`.
    assert!(inv.groups["ungrouped"].hosts.is_empty());
    assert_eq!(inv.group_names("a"), ["g"]);
    let (_d, _p, r) = ini("[g]\nb\n[h]\n");
    let mut inv = r.unwrap();
    inv.add_host("solo", &[], Map::new()).unwrap();
    assert_eq!(inv.group_names("solo"), ["ungrouped"]);
    // Ansible's order for a group: its own hosts, then its children's,
    // breadth first; `ungrouped` is the first child of `all`.
    assert_eq!(sel(&inv, "all"), ["solo", "b"]);
    let groups = inv.groups_map();
    assert_eq!(groups["all"], json!(["solo", "b"]));
    assert_eq!(groups["ungrouped"], json!(["solo"]));
    assert_eq!(groups["h"], json!([]));
}

#[test]
fn group_names_include_ancestors() {
    let (_d, _p, r) = ini("[leaf]\nh\n[mid:children]\nleaf\n[top:children]\nmid\n");
    let inv = r.unwrap();
    assert_eq!(inv.group_names("h"), ["leaf", "mid", "top"]);
    assert_eq!(inv.groups_map()["top"], json!(["h"]));
}

#[test]
fn var_precedence_depth_priority_name() {
    let text = "\
[all:vars]
v=all
only_all=1
[top:children]
mid
[top:vars]
v=top
[mid:children]
leaf
[mid:vars]
v=mid
d={'a': 1, 'b': 2}
[leaf]
h v=host
h2
[leaf:vars]
v=leaf
d={'c': 3}
[aa]
h2
[aa:vars]
v=aa
[zz]
h2
[zz:vars]
v=zz
[pri]
h2
[pri:vars]
v=pri
ansible_group_priority=10
";
    let (_d, _p, r) = ini(text);
    let inv = r.unwrap();
    let h = inv.host_vars("h");
    assert_eq!(h["v"], json!("host"));
    assert_eq!(h["only_all"], json!(1));
    // Dicts are replaced, not merged.
    assert_eq!(h["d"], json!({"c": 3}));
    // h2: leaf (depth 3) beats the depth-1 groups aa/zz/pri.
    assert_eq!(inv.host_vars("h2")["v"], json!("leaf"));
    assert!(!inv.host_vars("h2").contains_key("ansible_group_priority"));

    // Same depth: priority first, then name.
    let (_d, _p, r) = ini("[aa]\nh\n[aa:vars]\nv=aa\n[zz]\nh\n[zz:vars]\nv=zz\n[mm]\nh\n[mm:vars]\nv=mm\n");
    assert_eq!(r.unwrap().host_vars("h")["v"], json!("zz"));
    let (_d, _p, r) = ini("[aa]\nh\n[aa:vars]\nv=aa\nansible_group_priority=5\n[zz]\nh\n[zz:vars]\nv=zz\n");
    assert_eq!(r.unwrap().host_vars("h")["v"], json!("aa"));
}

#[test]
fn group_and_host_vars_dirs() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let inv_path = write(
        d,
        "inv/hosts",
        "[web]\nw1 from_line=line\nw2\n[web:vars]\nsrc=inventory\nfile_vs_inv=inv\n",
    );
    write(d, "inv/group_vars/all.yml", "src: all_file\nall_only: 1\n");
    write(d, "inv/group_vars/web", "file_vs_inv: file\nweb_plain: yes\n");
    // NAME wins over NAME.yml: only the first existing candidate is read.
    write(d, "inv/group_vars/web.yml", "shadowed: true\n");
    write(
        d,
        "inv/host_vars/w1/10-a.yml",
        "from_line: dirfile\nmerged: a\nkeep: a\n",
    );
    write(d, "inv/host_vars/w1/20-b.json", "{\"merged\": \"b\"}");
    write(d, "inv/host_vars/w1/notes.txt", "not: read\n");
    write(d, "inv/host_vars/w1/.hidden.yml", "hidden: true\n");
    write(d, "inv/host_vars/w2.yaml", "w2var: 2\n");
    write(d, "inv/group_vars/nogroup.yml", "- not a mapping but unused\n");
    let mut inv = load_one(&inv_path).unwrap();
    let w1 = inv.host_vars("w1");
    // Inventory-source group vars lose to group_vars/ files.
    assert_eq!(w1["src"], json!("all_file"));
    assert_eq!(w1["file_vs_inv"], json!("file"));
    assert_eq!(w1["web_plain"], json!(true));
    assert!(!w1.contains_key("shadowed"));
    assert_eq!(w1["from_line"], json!("dirfile"));
    assert_eq!(w1["merged"], json!("b"));
    assert_eq!(w1["keep"], json!("a"));
    assert!(!w1.contains_key("not") && !w1.contains_key("hidden"));
    assert_eq!(inv.host_vars("w2")["w2var"], json!(2));
    assert_eq!(inv.host_vars("w2")["all_only"], json!(1));

    // Playbook-adjacent dirs override the inventory's.
    write(d, "play/group_vars/web.yml", "file_vs_inv: playbook\n");
    write(d, "play/host_vars/w2.yml", "w2var: play\n");
    inv.load_vars_dirs(&d.join("play")).unwrap();
    assert_eq!(inv.host_vars("w1")["file_vs_inv"], json!("playbook"));
    assert_eq!(inv.host_vars("w2")["w2var"], json!("play"));

    // add_host picks up vars files of new hosts and groups.
    write(d, "inv/host_vars/late.yml", "late: 1\n");
    write(d, "inv/group_vars/newgroup.yml", "ng: 1\n");
    inv.add_host(
        "late",
        &["newgroup".to_string()],
        Map::from_iter([("x".to_string(), json!(1))]),
    )
    .unwrap();
    let late = inv.host_vars("late");
    assert_eq!((late["late"].clone(), late["ng"].clone()), (json!(1), json!(1)));
    // add_host's own variables are rendered values (data): kept apart from
    // the template source of the inventory.
    assert!(!late.contains_key("x"));
    assert_eq!(inv.host_runtime_vars("late")["x"], json!(1));
    assert_eq!(inv.groups["all"].children.last().map(String::as_str), Some("newgroup"));
}

#[test]
fn bad_vars_file_is_located() {
    let dir = TempDir::new().unwrap();
    let p = write(dir.path(), "hosts", "[web]\nw1\n");
    let f = write(dir.path(), "group_vars/web.yml", "a: 1\n- b\n");
    let e = load_one(&p).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}:", f.display())), "{e}");
    write(dir.path(), "group_vars/web.yml", "- a\n- b\n");
    let e = load_one(&p).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("{}:1:1", f.display())) && e.contains("mapping"),
        "{e}"
    );
}

const YAML_INV: &str = "\
all:
  hosts:
    solo:
      ansible_host: 10.0.0.1
  vars:
    ntp: time.example.com
  children:
    web:
      hosts:
        web[1:2].example.com:
          http_port: 8080
        edge:2222:
      vars:
        tier: front
    db:
      hosts: dbhost
      children:
        replicas:
          hosts:
            r1:
";

#[test]
fn yaml_inventory() {
    let dir = TempDir::new().unwrap();
    let p = write(dir.path(), "inv.yml", YAML_INV);
    let inv = load_one(&p).unwrap();
    assert_eq!(sel(&inv, "web"), ["web1.example.com", "web2.example.com", "edge"]);
    assert_eq!(sel(&inv, "db"), ["dbhost", "r1"]);
    assert_eq!(inv.groups["all"].children, ["ungrouped", "web", "db"]);
    assert_eq!(inv.groups["ungrouped"].hosts, ["solo"]);
    let v = inv.host_vars("web1.example.com");
    assert_eq!(
        (v["http_port"].clone(), v["tier"].clone(), v["ntp"].clone()),
        (json!(8080), json!("front"), json!("time.example.com"))
    );
    assert_eq!(inv.host_vars("edge")["ansible_port"], json!(2222));
    assert_eq!(inv.group_names("r1"), ["db", "replicas"]);
    assert!(inv.warnings.is_empty());
}

#[test]
fn yaml_inventory_warnings_and_errors() {
    let dir = TempDir::new().unwrap();
    let p = write(
        dir.path(),
        "w.yaml",
        "all:\n  host:\n    a:\n  children:\n    g:\n      hosts:\n        h1:\n",
    );
    let inv = load_one(&p).unwrap();
    assert_eq!(inv.warnings.len(), 1);
    let w = inv.warnings[0].to_string();
    assert!(
        w.starts_with(&format!("{}:2:3", p.display())) && w.contains("did you mean `hosts`"),
        "{w}"
    );

    let cases: &[(&str, &str, &str)] = &[
        ("all:\n  hosts:\n    - a\n    - b\n", ":3:5", "needs a mapping"),
        ("all:\n  hosts:\n    a: [1]\n", ":3:8", "must be a mapping"),
        (
            "all:\n  children:\n    g:\n      hosts:\n        h[1:]:\n",
            ":5:9",
            "end value",
        ),
        ("- a\n- b\n", ":1:1", "mapping of groups"),
        ("plugin: aws_ec2\n", ":1:9", "plugin"),
        (
            "a:\n  children:\n    b:\n      children:\n        a:\n",
            ":3:5",
            "cycle",
        ),
        ("all:\n  hosts: [a\n", ":", "invalid YAML"),
    ];
    for (text, at, what) in cases {
        let p = write(dir.path(), "e.yml", text);
        let e = load_one(&p).expect_err(text).to_string();
        assert!(e.starts_with(&format!("{}{at}", p.display())), "{text:?}: {e}");
        assert!(e.contains(what), "{text:?}: {e}");
    }
}

#[test]
fn directory_source() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    write(d, "inv/01-base", "[web]\nw1\n");
    write(
        d,
        "inv/02-more.yml",
        "all:\n  children:\n    web:\n      hosts:\n        w2:\n",
    );
    write(d, "inv/03-extra.ini", "[db]\nd1\n");
    write(d, "inv/README.md", "# not [an inventory\n");
    write(d, "inv/old.retry", "[broken\n");
    write(d, "inv/x.orig", "[broken\n");
    write(d, "inv/backup~", "[broken\n");
    write(d, "inv/.hidden", "[broken\n");
    write(d, "inv/group_vars/web.yml", "gv: 1\n");
    write(d, "inv/host_vars/w1.yml", "hv: 1\n");
    let inv = load_one(&d.join("inv")).unwrap();
    assert_eq!(sel(&inv, "all"), ["w1", "w2", "d1"]);
    assert_eq!(inv.host_vars("w2")["gv"], json!(1));
    assert_eq!(inv.host_vars("w1")["hv"], json!(1));
    assert!(!inv.hosts.contains_key("gv"));
}

#[test]
fn host_list_and_multiple_sources() {
    let inv = Inventory::load(&["h1,h2:2200,".to_string()]).unwrap();
    assert_eq!(sel(&inv, "all"), ["h1", "h2"]);
    assert_eq!(inv.host_vars("h2")["ansible_port"], json!(2200));
    assert_eq!(inv.group_names("h1"), ["ungrouped"]);

    let inv = Inventory::load(&["solo,".to_string()]).unwrap();
    assert_eq!(sel(&inv, "all"), ["solo"]);

    let dir = TempDir::new().unwrap();
    let a = write(dir.path(), "a", "[g]\nx v=1\n");
    let b = write(dir.path(), "b.yml", "g:\n  hosts:\n    x:\n      v: 2\n    y:\n");
    // Repeated -i, and one comma-separated list of paths.
    let inv = Inventory::load(&[a.display().to_string(), b.display().to_string()]).unwrap();
    assert_eq!(sel(&inv, "g"), ["x", "y"]);
    assert_eq!(inv.host_vars("x")["v"], json!(2));
    let inv = Inventory::load(&[format!("{},{}", b.display(), a.display())]).unwrap();
    assert_eq!(inv.host_vars("x")["v"], json!(1));

    let e = Inventory::load(&["/nonexistent/inventory".to_string()]).unwrap_err();
    assert!(e.to_string().contains("does not exist") && e.hint.is_some());
}

#[cfg(unix)]
#[test]
fn dynamic_inventory_scripts() {
    let dir = TempDir::new().unwrap();
    let with_meta = write_script(
        dir.path(),
        "meta.sh",
        r#"#!/bin/sh
if [ "$1" = "--list" ]; then
cat <<'JSON'
{"web": {"hosts": ["w1", "w2"], "vars": {"http_port": 80}, "children": ["inner"]},
 "inner": ["i1"],
 "simple": {"only_var": 1},
 "_meta": {"hostvars": {"w1": {"ansible_host": "127.0.0.2"}}}}
JSON
else
  echo "--host must not be called" >&2; exit 3
fi
"#,
    );
    let inv = load_one(&with_meta).unwrap();
    assert_eq!(sel(&inv, "web"), ["w1", "w2", "i1"]);
    assert_eq!(inv.host_vars("w1")["ansible_host"], json!("127.0.0.2"));
    assert_eq!(inv.host_vars("i1")["http_port"], json!(80));
    assert_eq!(inv.host_vars("simple")["only_var"], json!(1));

    let per_host = write_script(
        dir.path(),
        "perhost.sh",
        r#"#!/bin/sh
case "$1" in
  --list) echo '{"g": ["a", "b"]}' ;;
  --host) echo "{\"me\": \"$2\"}" ;;
esac
"#,
    );
    let inv = load_one(&per_host).unwrap();
    assert_eq!(inv.host_vars("b")["me"], json!("b"));

    let failing = write_script(dir.path(), "fail.sh", "#!/bin/sh\necho boom >&2\nexit 2\n");
    let e = load_one(&failing).unwrap_err().to_string();
    assert!(e.contains("boom") && e.contains("fail.sh"), "{e}");
    // Executable bit on a plain INI file (no `#!`): read as INI, not run.
    let static_ini = write_script(dir.path(), "static", "[g]\nplain\n");
    assert_eq!(sel(&load_one(&static_ini).unwrap(), "g"), ["plain"]);

    let garbage = write_script(dir.path(), "garbage.sh", "#!/bin/sh\necho '{not json'\n");
    let e = load_one(&garbage).unwrap_err().to_string();
    assert!(e.contains("invalid JSON"), "{e}");
}

fn pattern_inventory() -> (TempDir, Inventory) {
    let (d, _p, r) = ini("\
[web]
web1
web2
web3
[db]
db1
db2
[prod]
web1
db1
[staging]
web2
[prod:children]
lb
[lb]
lb1.example.com
");
    (d, r.unwrap())
}

#[test]
fn patterns() {
    let (_d, inv) = pattern_inventory();
    let all = ["web1", "web2", "web3", "db1", "db2", "lb1.example.com"];
    assert_eq!(sel(&inv, "all"), all);
    assert_eq!(sel(&inv, "*"), all);
    assert_eq!(sel(&inv, "web2"), ["web2"]);
    assert_eq!(sel(&inv, "db"), ["db1", "db2"]);
    assert_eq!(sel(&inv, "db:web"), ["db1", "db2", "web1", "web2", "web3"]);
    assert_eq!(sel(&inv, "db,web1"), ["db1", "db2", "web1"]);
    assert_eq!(sel(&inv, "web:&prod"), ["web1"]);
    assert_eq!(sel(&inv, "all:!db"), ["web1", "web2", "web3", "lb1.example.com"]);
    assert_eq!(sel(&inv, "!db"), ["web1", "web2", "web3", "lb1.example.com"]);
    assert_eq!(sel(&inv, "web:!staging:&prod"), ["web1"]);
    assert_eq!(sel(&inv, "prod"), ["web1", "db1", "lb1.example.com"]);
    assert_eq!(sel(&inv, "~web[12]"), ["web1", "web2"]);
    assert_eq!(sel(&inv, "~(db|lb)"), ["db1", "db2", "lb1.example.com"]);
    assert_eq!(sel(&inv, "*.example.com"), ["lb1.example.com"]);
    assert_eq!(sel(&inv, "web?"), ["web1", "web2", "web3"]);
    assert_eq!(sel(&inv, "db[!1]"), ["db2"]);
    assert_eq!(sel(&inv, "web[0]"), ["web1"]);
    assert_eq!(sel(&inv, "web[-1]"), ["web3"]);
    assert_eq!(sel(&inv, "web[0:1]"), ["web1", "web2"]);
    assert_eq!(sel(&inv, "web[1:]"), ["web2", "web3"]);
    assert_eq!(sel(&inv, "web[0]:db[-1]"), ["web1", "db2"]);
    let list = inv.select_detailed(&["db".to_string(), "staging".to_string()]).unwrap();
    assert_eq!(list.hosts, ["db1", "db2", "web2"]);
}

#[test]
fn unknown_patterns_match_nothing_and_are_reported() {
    let (_d, inv) = pattern_inventory();
    assert_eq!(sel(&inv, "nosuch"), Vec::<String>::new());
    let s = inv.select_detailed(&["web1:nosuch:!ghost".to_string()]).unwrap();
    assert_eq!(s.hosts, ["web1"]);
    assert_eq!(s.unmatched, ["nosuch", "!ghost"]);
    assert!(inv.select_detailed(&["all".into()]).unwrap().unmatched.is_empty());
    // Ansible's implicit localhost.
    assert_eq!(sel(&inv, "localhost"), ["localhost"]);
    assert_eq!(inv.host_vars("localhost")["ansible_connection"], json!("local"));
    // ... whose Python is the controller's (here: python3 on PATH).
    let py = inv.host_vars("localhost")["ansible_python_interpreter"].clone();
    assert!(std::path::Path::new(py.as_str().unwrap()).is_file(), "{py}");
    assert!(inv.host_vars("nosuch").is_empty());
}

#[test]
fn malformed_patterns_are_errors() {
    let (_d, inv) = pattern_inventory();
    for (p, what) in [
        ("~web(", "regular expression"),
        ("web[5]", "out of range"),
        ("web[1-2]", "[x:y]"),
        ("web[1:2:3]", "bad subscript"),
        ("web[0", "unbalanced"),
        ("&", "empty"),
    ] {
        let e = inv.select(p).expect_err(p).to_string();
        assert!(e.contains(what) && e.contains("host pattern"), "{p}: {e}");
    }
}

#[test]
fn limit_restricts_selection() {
    let (d, mut inv) = pattern_inventory();
    inv.restrict("web:db1").unwrap();
    assert_eq!(sel(&inv, "prod"), ["web1", "db1"]);
    assert_eq!(inv.select_ignoring_limit("db").unwrap(), ["db1", "db2"]);
    let f = write(d.path(), "limit.txt", "web2\n\nweb3\n");
    inv.restrict(&format!("@{}", f.display())).unwrap();
    assert_eq!(sel(&inv, "all"), ["web2", "web3"]);
    // `groups` ignores the limit, as in Ansible.
    assert_eq!(inv.groups_map()["db"], json!(["db1", "db2"]));
    assert!(inv.restrict("~(").is_err());
    assert!(inv
        .restrict("@/nonexistent/limit")
        .unwrap_err()
        .to_string()
        .contains("limit file"));
}

#[test]
fn cycles_are_rejected() {
    let mut inv = Inventory::new();
    inv.add_child("a", "b").unwrap();
    inv.add_child("b", "c").unwrap();
    assert!(inv.add_child("c", "a").unwrap_err().to_string().contains("cycle"));
    assert_eq!(
        inv.add_child("c", "a").unwrap_err(),
        GroupError::Cycle {
            parent: "c".into(),
            child: "a".into()
        }
    );
    assert!(inv.add_child("a", "a").is_err());
    assert!(inv.add_child("x", "all").is_err());
}

const LIST_INI: &str = "\
solo
[web]
w2 port_var=1
w1
[web:vars]
tier=front
[db]
[prod:children]
web
[all:vars]
_ansible_internal=x
";

#[test]
fn list_json_matches_ansible_inventory() {
    let (_d, _p, r) = ini(LIST_INI);
    let inv = r.unwrap();
    let expected = r#"{
    "_meta": {
        "hostvars": {
            "solo": {
                "_ansible_internal": "x"
            },
            "w1": {
                "_ansible_internal": "x",
                "tier": "front"
            },
            "w2": {
                "_ansible_internal": "x",
                "port_var": 1,
                "tier": "front"
            }
        },
        "profile": "inventory_legacy"
    },
    "all": {
        "children": [
            "ungrouped",
            "db",
            "prod"
        ]
    },
    "prod": {
        "children": [
            "web"
        ]
    },
    "ungrouped": {
        "hosts": [
            "solo"
        ]
    },
    "web": {
        "hosts": [
            "w2",
            "w1"
        ]
    }
}"#;
    assert_eq!(inv.to_list_json(), expected);
}

/// `--list --export` and `--list --yaml [--export]` as ansible-core 2.19.14
/// prints them for LIST_INI (outputs captured from ansible-inventory).
#[test]
fn list_export_and_yaml_match_ansible_inventory() {
    let (_d, _p, r) = ini(LIST_INI);
    let inv = r.unwrap();
    let export = r#"{
    "_meta": {
        "hostvars": {
            "w2": {
                "port_var": 1
            }
        },
        "profile": "inventory_legacy"
    },
    "all": {
        "children": [
            "ungrouped",
            "db",
            "prod"
        ],
        "vars": {
            "_ansible_internal": "x"
        }
    },
    "prod": {
        "children": [
            "web"
        ]
    },
    "ungrouped": {
        "hosts": [
            "solo"
        ]
    },
    "web": {
        "hosts": [
            "w2",
            "w1"
        ],
        "vars": {
            "tier": "front"
        }
    }
}"#;
    assert_eq!(super::dump_json(&inv.to_list_value(true)), export);
    let mut streamed = Vec::new();
    inv.write_list_json(true, &mut streamed).unwrap();
    assert_eq!(String::from_utf8(streamed).unwrap(), export);
    let yaml = "all:
  children:
    prod:
      children:
        web:
          hosts:
            w1:
              _ansible_internal: x
              tier: front
            w2:
              _ansible_internal: x
              port_var: 1
              tier: front
    ungrouped:
      hosts:
        solo:
          _ansible_internal: x
";
    assert_eq!(
        crate::template::yaml_dump(&inv.to_yaml_value(false), 2, true, false),
        yaml
    );
    let yaml_export = "all:
  children:
    prod:
      children:
        web:
          hosts:
            w1: {}
            w2:
              port_var: 1
          vars:
            tier: front
    ungrouped:
      hosts:
        solo: {}
  vars:
    _ansible_internal: x
";
    assert_eq!(
        crate::template::yaml_dump(&inv.to_yaml_value(true), 2, true, false),
        yaml_export
    );
}

#[test]
fn yaml_inventory_host_key_must_be_a_string() {
    let dir = TempDir::new().unwrap();
    let p = write(
        dir.path(),
        "int.yml",
        "all:
  children:
    kids:
      hosts:
        1234: {}
",
    );
    let e = load_one(&p).unwrap_err().to_string();
    assert!(
        e.contains(":5:9")
            && e.contains("Host pattern 1234 must be a string. Enclose integers/floats in quotation marks."),
        "{e}"
    );
}

#[test]
fn graph_matches_ansible_inventory() {
    let (_d, _p, r) = ini(LIST_INI);
    let inv = r.unwrap();
    let expected = "\
@all:
  |--@ungrouped:
  |  |--solo
  |--@db:
  |--@prod:
  |  |--@web:
  |  |  |--w2
  |  |  |--w1";
    assert_eq!(inv.to_graph(None, false).unwrap(), expected);
    let expected_vars = "\
@prod:
  |--@web:
  |  |--w2
  |  |  |--{_ansible_internal = x}
  |  |  |--{port_var = 1}
  |  |  |--{tier = front}
  |  |--w1
  |  |  |--{_ansible_internal = x}
  |  |  |--{tier = front}
  |  |--{tier = front}";
    assert_eq!(inv.to_graph(Some("prod"), true).unwrap(), expected_vars);
    let e = inv.to_graph(Some("wbe"), false).unwrap_err();
    assert_eq!(e.hint.as_deref(), Some("did you mean `web`?"));
}

#[test]
fn host_json_matches_ansible_inventory() {
    let (_d, _p, r) = ini("[g]\nh b=2 a='x' c=\"{'z': 1, 'y': [True, None]}\"\n");
    let inv = r.unwrap();
    let expected = r#"{
    "a": "x",
    "b": 2,
    "c": {
        "y": [
            true,
            null
        ],
        "z": 1
    }
}"#;
    assert_eq!(inv.host_json("h").unwrap(), expected);
    assert!(inv.host_json("nope").is_err());
}

#[test]
fn invalid_group_characters_follow_transform_setting() {
    let dir = TempDir::new().unwrap();
    let p = write(dir.path(), "hosts", "[local-]\nh1\n[1st:children]\nlocal-\n")
        .display()
        .to_string();
    let policy = |group_chars| UnparsedPolicy {
        group_chars,
        ..UnparsedPolicy::strict()
    };
    // never (Ansible's default): kept, with one warning.
    let inv = Inventory::load_with(std::slice::from_ref(&p), policy(GroupChars::Never)).unwrap();
    assert!(inv.groups.contains_key("local-") && inv.groups.contains_key("1st"));
    let never: Vec<&str> = inv.warnings.iter().map(|w| w.msg.as_str()).collect();
    assert_eq!(
        never,
        ["Invalid characters were found in group names but not replaced, use -vvvv to see details"]
    );
    // always: replaced (a leading digit too), and said so.
    let inv = Inventory::load_with(std::slice::from_ref(&p), policy(GroupChars::Always)).unwrap();
    assert_eq!(sel(&inv, "local_"), ["h1"]);
    assert_eq!(sel(&inv, "_st"), ["h1"]);
    assert!(!inv.groups.contains_key("local-"));
    assert!(inv.warnings[0].msg.contains("automatically replaced"));
    // silently / ignore: no warning.
    let inv = Inventory::load_with(std::slice::from_ref(&p), policy(GroupChars::Silently)).unwrap();
    assert!(inv.groups.contains_key("local_") && inv.warnings.is_empty());
    let inv = Inventory::load_with(std::slice::from_ref(&p), policy(GroupChars::Ignore)).unwrap();
    assert!(inv.groups.contains_key("local-") && inv.warnings.is_empty());
}

#[test]
fn unparsed_sources_are_warnings_unless_configured() {
    let lenient = UnparsedPolicy {
        group_chars: GroupChars::Never,
        any_unparsed_is_failed: false,
        unparsed_is_failed: false,
    };
    let inv = Inventory::load_with(&["/nonexistent/inventory".to_string()], lenient).unwrap();
    assert!(inv.hosts.is_empty());
    let msgs: Vec<String> = inv.warnings.iter().map(|w| w.msg.clone()).collect();
    assert!(
        msgs.iter()
            .any(|m| m == "Unable to parse /nonexistent/inventory as an inventory source"),
        "{msgs:?}"
    );
    assert!(msgs.iter().any(|m| m.contains("only implicit localhost")), "{msgs:?}");
    let e = Inventory::load_with(
        &["/nonexistent/inventory".to_string()],
        UnparsedPolicy {
            unparsed_is_failed: true,
            ..lenient
        },
    )
    .unwrap_err();
    assert!(e.msg.contains("No inventory was parsed"), "{e}");
}

#[test]
fn add_host_reports_whether_the_inventory_changed() {
    let (_d, _p, r) = ini("[g]\nb x=1\n");
    let mut inv = r.unwrap();
    let vars = |k: &str, v: Value| Map::from_iter([(k.to_string(), v)]);
    let g = ["g".to_string()];
    // A new host is a change; the same again is not.
    assert!(inv.add_host("n", &[], Map::new()).unwrap());
    assert!(!inv.add_host("n", &[], Map::new()).unwrap());
    // A variable the host lacks (or has with another value) is a change.
    assert!(inv.add_host("n", &[], vars("foo", json!("bar"))).unwrap());
    assert!(!inv.add_host("n", &[], vars("foo", json!("bar"))).unwrap());
    assert!(inv.add_host("n", &[], vars("foo", json!("baz"))).unwrap());
    // An inventory variable with the same value is not.
    assert!(!inv.add_host("b", &[], vars("x", json!(1))).unwrap());
    // A new group membership is a change, an existing one is not.
    assert!(inv.add_host("n", &g, Map::new()).unwrap());
    assert!(!inv.add_host("n", &g, Map::new()).unwrap());
    assert!(!inv.add_host("b", &g, Map::new()).unwrap());
    assert!(inv.add_host("b", &["new".to_string()], Map::new()).unwrap());
}

#[test]
fn refresh_reads_the_sources_again_and_replays_dynamic_changes() {
    let (d, p, r) = ini("one parity=odd\ntwo parity=even\n");
    let mut inv = r.unwrap();
    write(d.path(), "pb/group_vars/all.yml", "from_playbook_dir: 1\n");
    inv.load_vars_dirs(&d.path().join("pb")).unwrap();
    inv.add_host(
        "yolo",
        &["dyn".to_string()],
        Map::from_iter([("v".to_string(), json!(2))]),
    )
    .unwrap();
    inv.group_by("two", "even", &[]).unwrap();
    inv.group_by("one", "odd", &[]).unwrap();
    std::fs::write(&p, "two parity=even\nfour parity=even\n").unwrap();
    assert!(inv.refresh().unwrap().is_empty());
    // The sources as they are now, plus what the run added.
    let all = |inv: &Inventory| {
        let mut v = sel(inv, "all");
        v.sort();
        v
    };
    assert_eq!(all(&inv), ["four", "two", "yolo"]);
    assert_eq!(sel(&inv, "dyn"), ["yolo"]);
    assert_eq!(inv.host_runtime_vars("yolo")["v"], json!(2));
    assert_eq!(sel(&inv, "even"), ["two"]);
    // A group_by of a host that is gone is dropped; its group is not made.
    assert!(!inv.groups.contains_key("odd"));
    // The playbook's vars dirs are still read.
    assert_eq!(inv.host_vars("four")["from_playbook_dir"], json!(1));
    // Refreshing again replays the same changes.
    inv.refresh().unwrap();
    assert_eq!(all(&inv), ["four", "two", "yolo"]);
}

/// `--list` is written as it is made (host by host, keys sorted while
/// writing); it must be byte for byte the sorted dump of the whole listing,
/// nested mappings and lists of mappings included, with and without
/// `--export`, and with a group whose name sorts before `_meta`.
#[test]
fn streamed_list_json_is_the_sorted_dump() {
    let (_d, _p, r) = ini(
        "[Zeta]\nb2 z=1 a=2\n[web]\nw1 cfg='{\"z\": {\"y\": 1, \"b\": [{\"k\": 1, \"a\": 2}]}, \"a\": []}'\nw0\n\
         [web:vars]\nzz=1\naa={\"q\": 1, \"c\": 2}\n[all:vars]\nm=[3, 1]\n",
    );
    let inv = r.unwrap();
    for export in [false, true] {
        let mut streamed = Vec::new();
        inv.write_list_json(export, &mut streamed).unwrap();
        let streamed = String::from_utf8(streamed).unwrap();
        assert_eq!(
            streamed,
            super::dump_json(&inv.to_list_value(export)),
            "export={export}"
        );
        assert!(streamed.find("\"Zeta\"").unwrap() < streamed.find("\"_meta\"").unwrap());
    }
    let listed = inv.to_list_json();
    assert!(listed.contains("\"cfg\": {\n                    \"a\": [],\n                    \"z\": {\n                        \"b\": [\n                            {\n                                \"a\": 2,"), "{listed}");
}
