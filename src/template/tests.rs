//! Unit tests for the Ansible-compatible templating.

#![allow(clippy::disallowed_macros)] // the test harness captures std's prints

use serde_json::{json, Value};

use super::*;

fn ctx(j: Value) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(j))
}

fn loc() -> Loc {
    Loc::new("play.yml", 7, 9)
}

fn vars() -> Value {
    json!({
        "port": 8080,
        "name": "web",
        "enabled": true,
        "nothing": null,
        "users": ["alice", "bob"],
        "foo": {"a": 1, "nested": {"b": 2}},
        "inventory_hostname": "host1",
        "ratio": 1.5,
        "servers": [
            {"name": "a", "port": 80, "up": true},
            {"name": "b", "port": 443, "up": false},
            {"name": "c", "port": 22, "up": true}
        ],
    })
}

/// Render with the standard variables.
fn r(s: &str) -> Value {
    let t = Templar::new();
    t.render_str(s, &ctx(vars()), &loc())
        .unwrap_or_else(|e| panic!("rendering {s:?} failed: {e}"))
}

/// Render to a string (fails the test if the result is not a string).
fn rs(s: &str) -> String {
    match r(s) {
        Value::String(s) => s,
        other => panic!("expected a string from {s:?}, got {other}"),
    }
}

fn err(s: &str) -> LocError {
    let t = Templar::new();
    match t.render_str(s, &ctx(vars()), &loc()) {
        Ok(v) => panic!("expected {s:?} to fail, got {v}"),
        Err(e) => e,
    }
}

fn ev(expr: &str) -> bool {
    let t = Templar::new();
    t.eval_bool(expr, &ctx(vars()), &loc())
        .unwrap_or_else(|e| panic!("evaluating {expr:?} failed: {e}"))
}

// ------------------------------------------------------------ native types and rendering

#[test]
fn plain_strings_pass_through() {
    assert_eq!(r("hello {world}"), json!("hello {world}"));
}

#[test]
fn single_expression_keeps_native_type() {
    assert_eq!(r("{{ port }}"), json!(8080));
    // Only a template that is exactly one expression is native (Ansible
    // 2.19: `" {{ 1 }} "` is the string `" 1 "`).
    assert_eq!(r("  {{ enabled }} "), json!("  True "));
    assert_eq!(r("{{ users }}"), json!(["alice", "bob"]));
    assert_eq!(r("{{ foo }}"), json!({"a": 1, "nested": {"b": 2}}));
    assert_eq!(r("{{- port + 1 -}}"), json!(8081));
    assert_eq!(r("{{ {'a': {'b': 1}} }}"), json!({"a": {"b": 1}}));
    assert_eq!(r("{{ nothing }}"), Value::Null);
}

#[test]
fn several_expressions_make_a_string() {
    assert_eq!(r("{{ 1 }}{{ 2 }}"), json!("12"));
    assert_eq!(r("{{ name }} and {{ port }}"), json!("web and 8080"));
    assert_eq!(r("port={{ port }}"), json!("port=8080"));
}

#[test]
fn python_style_rendering_inside_strings() {
    assert_eq!(rs("x {{ enabled }}"), "x True");
    assert_eq!(rs("x {{ nothing }}"), "x None");
    assert_eq!(rs("x {{ users }}"), "x ['alice', 'bob']");
    assert_eq!(rs("x {{ foo.nested }}"), "x {'b': 2}");
}

#[test]
fn pycompat_methods() {
    assert_eq!(r("{{ 'a,b'.split(',') }}"), json!(["a", "b"]));
    assert_eq!(r("{{ name.startswith('w') }}"), json!(true));
    assert_eq!(r("{{ name.upper() }}"), json!("WEB"));
    assert_eq!(r("{{ foo.nested.items() | list }}"), json!([["b", 2]]));
}

/// Python's non-mutating str/list/dict methods that pycompat lacks, with
/// CPython's results (checked against python3).
#[test]
fn python_methods_beyond_pycompat() {
    assert_eq!(r("{{ users.index('bob') }}"), json!(1));
    assert_eq!(r("{{ [1, 2, 1, 2].index(2, 2) }}"), json!(3));
    assert_eq!(r("{{ [1, 2, 1, 2].index(1, -2) }}"), json!(2));
    assert!(err("{{ users.index('carol') }}")
        .to_string()
        .contains("'carol' is not in list"));
    assert_eq!(r("{{ 'hello'.index('l') }}"), json!(2));
    assert_eq!(r("{{ 'hello'.rindex('l') }}"), json!(3));
    assert_eq!(r("{{ 'h\u{e9}llo'.index('llo', 1) }}"), json!(2));
    assert!(err("{{ 'abc'.index('z') }}")
        .to_string()
        .contains("substring not found"));
    assert_eq!(r("{{ 'ab'.center(7, '*') }}"), json!("***ab**"));
    assert_eq!(r("{{ 'abc'.center(6) }}"), json!(" abc  "));
    assert_eq!(r("{{ 'ab'.ljust(4, '.') }}"), json!("ab.."));
    assert_eq!(r("{{ 'ab'.rjust(4) }}"), json!("  ab"));
    assert_eq!(r("{{ '-42'.zfill(5) }}"), json!("-0042"));
    assert_eq!(r("{{ 'a:b:c'.partition(':') }}"), json!(["a", ":", "b:c"]));
    assert_eq!(r("{{ 'a:b:c'.rpartition(':') }}"), json!(["a:b", ":", "c"]));
    assert_eq!(r("{{ 'abc'.rpartition(':') }}"), json!(["", "", "abc"]));
    assert_eq!(r("{{ 'a,b,c'.rsplit(',', 1) }}"), json!(["a,b", "c"]));
    assert_eq!(r("{{ ' a  b c '.rsplit(none, 1) }}"), json!([" a  b", "c"]));
    assert_eq!(r("{{ ' a  b c '.rsplit() }}"), json!(["a", "b", "c"]));
    assert_eq!(r("{{ 'Hello World'.istitle() }}"), json!(true));
    assert_eq!(r("{{ 'Hello world'.istitle() }}"), json!(false));
    assert_eq!(r("{{ 'aB'.swapcase() }}"), json!("Ab"));
    assert_eq!(r("{{ 'v1.2'.removeprefix('v') }}"), json!("1.2"));
    assert_eq!(r("{{ 'a\tb'.expandtabs(4) }}"), json!("a   b"));
    assert_eq!(r("{{ foo.copy() }}"), json!({"a": 1, "nested": {"b": 2}}));
    // Mutation cannot work on immutable values: loud, not a silent no-op.
    assert!(err("{{ users.append('x') }}").to_string().contains("append"));
}

/// Ansible 2.19's native concat: one output node keeps its type, several
/// join to text, literal text counts as a node.
#[test]
fn one_output_node_keeps_its_type() {
    assert_eq!(r("{% for x in [1] %}{{ x }}{% endfor %}"), json!(1));
    assert_eq!(
        r("{% if enabled %}{{ foo }}{% endif %}"),
        json!({"a": 1, "nested": {"b": 2}})
    );
    assert_eq!(r("{% for x in [4, 2] %}{{ x }}{% endfor %}"), json!("42"));
    assert_eq!(r("{% for x in [1] %}{{ x }} {% endfor %}"), json!("1 "));
    assert_eq!(
        r("{{ users }} + {{ users }}"),
        json!("['alice', 'bob'] + ['alice', 'bob']")
    );
    assert_eq!(r("{{ 1 }}{{ '' }}"), json!("1"));
    assert_eq!(rs("{% if true %}x{% endif %}"), "x");
}

/// An undefined value nested in a result fails the template, naming the
/// variable, as Ansible's finalization does.
#[test]
fn nested_undefined_fails_naming_the_variable() {
    let e = err("{{ [{'key': nested_and_undefined}] }}").to_string();
    assert!(e.contains("'nested_and_undefined' is undefined"), "{e}");
    let e = err("{{ [foo.missing] }}").to_string();
    assert!(e.contains("undefined"), "{e}");
    assert_eq!(r("{{ [nope | default(1)] }}"), json!([1]));
    assert_eq!(r("{{ [nope] if nope is defined else [] }}"), json!([]));
}

/// module_utils.common.network's validators, as tests.
#[test]
fn network_validator_tests() {
    assert!(ev("'00:00:00:a1:2b:cc' is is_mac"));
    assert!(ev("'00-00-00-A1-2B-CC' is is_mac"));
    assert!(!ev("'00:00-00:a1:2b:cc' is is_mac"));
    assert!(!ev("'foo' is is_mac"));
    assert!(!ev("'00:00:00:a1:2b:cc:dd' is is_mac"));
    assert!(ev("'255.255.252.0' is is_netmask"));
    assert!(!ev("'255.255.253.0' is is_netmask"));
    assert!(!ev("'255.255.0' is is_netmask"));
    assert!(ev("24 is is_masklen") && ev("'0' is is_masklen"));
    assert!(!ev("33 is is_masklen") && !ev("'x' is is_masklen"));
}

#[test]
fn omit_renders_to_placeholder() {
    assert_eq!(r("{{ omit }}"), json!(omit()));
    assert_eq!(r("{{ undefined_thing | default(omit) }}"), json!(omit()));
}

#[test]
fn render_value_recurses() {
    let t = Templar::new();
    let v = json!({"a": "{{ port }}", "b": ["{{ name }}-x", 3], "{{ name }}": true});
    let out = t.render_value(&v, &ctx(vars()), &loc()).unwrap();
    assert_eq!(out, json!({"a": 8080, "b": ["web-x", 3], "web": true}));
}

#[test]
fn statements_and_trailing_newline() {
    assert_eq!(rs("{% for u in users %}{{ u }}\n{% endfor %}"), "alice\nbob\n");
    assert_eq!(rs("{% if enabled %}\nyes\n{% endif %}\n"), "yes\n");
}

// ------------------------------------------------------------ undefined

#[test]
fn undefined_variable_is_an_error_naming_it() {
    let e = err("{{ missing }}");
    assert!(e.msg.contains("'missing' is undefined"), "{}", e.msg);
    assert_eq!(e.loc, loc());
    let e = err("value: {{ missing }}");
    assert!(e.msg.contains("'missing' is undefined"), "{}", e.msg);
    let e = err("{{ missing | upper }}");
    assert!(e.msg.contains("'missing' is undefined"), "{}", e.msg);
    let e = err("{% for x in missing %}{{ x }}{% endfor %}");
    assert!(e.msg.contains("'missing' is undefined"), "{}", e.msg);
}

#[test]
fn undefined_attribute_names_object_and_attribute() {
    // As Ansible 2.19 words it: the type of the object, then the attribute.
    let e = err("{{ foo.nope }}");
    assert!(
        e.msg.contains("object of type 'dict' has no attribute 'nope'"),
        "{}",
        e.msg
    );
}

#[test]
fn did_you_mean_hint() {
    let e = err("{{ prot }}");
    assert_eq!(e.hint.as_deref(), Some("did you mean 'port'?"));
}

#[test]
fn default_and_defined_tests() {
    assert_eq!(r("{{ missing | default('y') }}"), json!("y"));
    assert_eq!(r("{{ missing | d('y') }}"), json!("y"));
    assert_eq!(r("{{ '' | default('y', true) }}"), json!("y"));
    assert_eq!(r("{{ '' | default('y') }}"), json!(""));
    assert_eq!(r("{{ foo.bar | default(1) }}"), json!(1));
    assert_eq!(r("{{ missing.bar | default(1) }}"), json!(1));
    assert_eq!(r("{{ missing is defined }}"), json!(false));
    assert_eq!(r("{{ missing is undefined }}"), json!(true));
    assert_eq!(r("{{ missing.y is defined }}"), json!(false));
    assert_eq!(r("{{ foo.a is defined }}"), json!(true));
    assert!(ev("missing.attr is not defined"));
    assert!(!ev("missing.attr is defined and missing.attr"));
}

#[test]
fn chained_retry_still_refuses_to_print_undefined() {
    let e = err("{{ missing.x is defined }} {{ other }}");
    assert!(e.msg.contains("undefined"), "{}", e.msg);
}

#[test]
fn mandatory_filter() {
    assert_eq!(r("{{ port | mandatory }}"), json!(8080));
    let e = err("{{ missing | mandatory }}");
    assert!(e.msg.contains("undefined"), "{}", e.msg);
    let e = err("{{ missing | mandatory('set missing!') }}");
    assert!(e.msg.contains("set missing!"), "{}", e.msg);
}

#[test]
fn eval_conditions() {
    assert!(ev("port == 8080"));
    assert!(ev("{{ enabled }}"));
    assert!(!ev("users | length > 2"));
    let t = Templar::new();
    let e = t.eval_bool("missing == 1", &ctx(vars()), &loc()).unwrap_err();
    assert!(e.msg.contains("'missing' is undefined"), "{}", e.msg);
    let e = t.eval_bool("missing", &ctx(vars()), &loc()).unwrap_err();
    assert!(e.msg.contains("'missing' is undefined"), "{}", e.msg);
    let e = t.eval_bool("port ==", &ctx(vars()), &loc()).unwrap_err();
    assert!(e.msg.contains("syntax error"), "{}", e.msg);
}

#[test]
fn syntax_error_is_located() {
    let e = err("{{ port + }}");
    assert_eq!(e.loc, loc());
    assert!(e.msg.contains("syntax error"), "{}", e.msg);
    let e = err("{% if port %}unterminated");
    assert!(e.msg.contains("syntax error"), "{}", e.msg);
}

#[test]
fn render_file_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.j2");
    std::fs::write(&p, "line one\nport {{ port }}\n{{ missing_var }}\n").unwrap();
    let t = Templar::new();
    let e = t.render_file(&p, None, &ctx(vars())).unwrap_err();
    assert_eq!(&*e.loc.file, p.display().to_string().as_str());
    assert_eq!(e.loc.line, 3);
    assert_eq!(e.loc.col, 4);
    assert!(e.msg.contains("'missing_var' is undefined"), "{}", e.msg);
    std::fs::write(&p, "a\n{% for x in users %}{{ x }}\n{% endfor %}\n").unwrap();
    assert_eq!(t.render_file(&p, None, &ctx(vars())).unwrap(), "a\nalice\nbob\n");
    let e = t
        .render_file(&dir.path().join("nope.j2"), None, &ctx(vars()))
        .unwrap_err();
    assert!(e.msg.contains("cannot read template"), "{}", e.msg);
}

// ------------------------------------------------------------ type filters

#[test]
fn bool_int_float_string_list() {
    assert_eq!(r("{{ 'yes' | bool }}"), json!(true));
    assert_eq!(r("{{ 'no' | bool }}"), json!(false));
    assert_eq!(r("{{ 'True' | bool }}"), json!(true));
    assert_eq!(r("{{ 1 | bool }}"), json!(true));
    assert_eq!(r("{{ '42' | int }}"), json!(42));
    assert_eq!(r("{{ 'abc' | int }}"), json!(0));
    assert_eq!(r("{{ '3.9' | int }}"), json!(3));
    assert_eq!(r("{{ 'ff' | int(base=16) }}"), json!(255));
    assert_eq!(r("{{ '0x1F' | int(base=16) }}"), json!(31));
    assert_eq!(r("{{ 'x' | int(7) }}"), json!(7));
    assert_eq!(r("{{ '1.5' | float }}"), json!(1.5));
    assert_eq!(r("{{ port | string }}"), json!("8080"));
    assert_eq!(r("{{ foo | list }}"), json!(["a", "nested"]));
    assert_eq!(r("{{ users | length }}"), json!(2));
    assert_eq!(r("{{ users | count }}"), json!(2));
    assert_eq!(r("{{ -3 | abs }}"), json!(3));
    assert_eq!(r("{{ 2.567 | round(1) }}"), json!(2.6));
    assert_eq!(r("{{ 2.1 | round(0, 'ceil') }}"), json!(3.0));
}

#[test]
fn type_debug_names_python_types() {
    assert_eq!(r("{{ port | type_debug }}"), json!("int"));
    assert_eq!(r("{{ name | type_debug }}"), json!("str"));
    assert_eq!(r("{{ users | type_debug }}"), json!("list"));
    assert_eq!(r("{{ foo | type_debug }}"), json!("dict"));
    assert_eq!(r("{{ nothing | type_debug }}"), json!("NoneType"));
    assert_eq!(r("{{ enabled | type_debug }}"), json!("bool"));
}

// ------------------------------------------------------------ string filters

#[test]
fn string_filters() {
    assert_eq!(r("{{ 'a b c' | split }}"), json!(["a", "b", "c"]));
    assert_eq!(r("{{ 'a:b' | split(':') }}"), json!(["a", "b"]));
    assert_eq!(r("{{ users | join(', ') }}"), json!("alice, bob"));
    assert_eq!(r("{{ 'AbC' | lower }}"), json!("abc"));
    assert_eq!(r("{{ 'abc' | upper }}"), json!("ABC"));
    assert_eq!(r("{{ 'hello world' | capitalize }}"), json!("Hello world"));
    assert_eq!(r("{{ 'hello world' | title }}"), json!("Hello World"));
    assert_eq!(r("{{ '  x  ' | trim }}"), json!("x"));
    assert_eq!(r("{{ 'aXbX' | replace('X', '-') }}"), json!("a-b-"));
    assert_eq!(r("{{ 'a\nb' | indent(2) }}"), json!("a\n  b"));
    assert_eq!(r("{{ 'a\nb' | indent(2, true) }}"), json!("  a\n  b"));
    assert_eq!(r("{{ \"it's here\" | quote }}"), json!("'it'\"'\"'s here'"));
    assert_eq!(r("{{ 'safe-word_1.txt' | quote }}"), json!("safe-word_1.txt"));
    assert_eq!(r("{{ '' | quote }}"), json!("''"));
    assert_eq!(r("{{ 'café' | quote }}"), json!("'café'"));
    assert_eq!(r("{{ 'a b&c=d' | urlencode }}"), json!("a%20b%26c%3Dd"));
}

#[test]
fn regex_filters() {
    // Ansible keeps an expression's backslashes literal (escape_backslashes):
    // `\1` in the source is the back-reference, `\\1` a literal backslash.
    assert_eq!(
        r("{{ 'foo bar' | regex_replace('(o+)', '<\\\\1>') }}"),
        json!("f<\\1> bar")
    );
    assert_eq!(
        r("{{ 'foo bar' | regex_replace('(o+)', '<\\1>') }}"),
        json!("f<oo> bar")
    );
    assert_eq!(
        r("{{ 'ab12' | regex_replace('(?P<n>\\d+)', '[\\g<n>]') }}"),
        json!("ab[12]")
    );
    assert_eq!(
        r("{{ 'ABC' | regex_replace('b', 'x', ignorecase=true) }}"),
        json!("AxC")
    );
    assert_eq!(r("{{ 'cost $5' | regex_replace('5', '6') }}"), json!("cost $6"));
    assert_eq!(r("{{ 'aaa' | regex_replace('a', 'b', count=2) }}"), json!("bba"));
    assert_eq!(
        r("{{ 'server1.example' | regex_search('server\\d') }}"),
        json!("server1")
    );
    assert_eq!(r("{{ 'nomatch' | regex_search('\\d') }}"), Value::Null);
    assert_eq!(
        r("{{ 'user=bob id=7' | regex_search('user=(\\w+) id=(?P<id>\\d+)', '\\1', '\\g<id>') }}"),
        json!(["bob", "7"])
    );
    assert_eq!(
        r("{{ 'a1b22c333' | regex_findall('\\d+') }}"),
        json!(["1", "22", "333"])
    );
    assert_eq!(
        r("{{ 'k=v x=y' | regex_findall('(\\w)=(\\w)') }}"),
        json!([["k", "v"], ["x", "y"]])
    );
    assert_eq!(r("{{ '1.2.3.4' | regex_escape }}"), json!("1\\.2\\.3\\.4"));
    let e = err("{{ 'x' | regex_search('(') }}");
    assert!(e.msg.contains("invalid regular expression"), "{}", e.msg);
}

#[test]
fn path_filters() {
    assert_eq!(r("{{ '/etc/nginx/nginx.conf' | basename }}"), json!("nginx.conf"));
    assert_eq!(r("{{ '/etc/nginx/nginx.conf' | dirname }}"), json!("/etc/nginx"));
    assert_eq!(r("{{ '/file' | dirname }}"), json!("/"));
    assert_eq!(r("{{ 'archive.tar.gz' | splitext }}"), json!(["archive.tar", ".gz"]));
    assert_eq!(r("{{ '/a/.bashrc' | splitext }}"), json!(["/a/.bashrc", ""]));
    assert_eq!(r("{{ ['/etc', 'a', 'b.conf'] | path_join }}"), json!("/etc/a/b.conf"));
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(
        r("{{ '~/x' | expanduser }}"),
        json!(format!("{}/x", home.trim_end_matches('/')))
    );
    assert_eq!(r("{{ '/tmp/../etc/./x' | realpath }}"), json!("/etc/x"));
}

// ------------------------------------------------------------ lists and dicts

#[test]
fn list_filters() {
    assert_eq!(r("{{ [3, 1, 2] | sort }}"), json!([1, 2, 3]));
    assert_eq!(r("{{ [3, 1, 2] | sort(reverse=true) }}"), json!([3, 2, 1]));
    assert_eq!(
        r("{{ servers | sort(attribute='port') | map(attribute='name') | list }}"),
        json!(["c", "a", "b"])
    );
    assert_eq!(r("{{ [1, 2, 2, 3, 1] | unique }}"), json!([1, 2, 3]));
    assert_eq!(r("{{ [1, 2] | union([2, 3]) }}"), json!([1, 2, 3]));
    assert_eq!(r("{{ [1, 2, 3] | intersect([2, 3, 4]) }}"), json!([2, 3]));
    assert_eq!(r("{{ [1, 2, 3] | difference([2]) }}"), json!([1, 3]));
    assert_eq!(r("{{ [1, 2] | symmetric_difference([2, 3]) }}"), json!([1, 3]));
    assert_eq!(r("{{ [1, [2, [3, [4]]]] | flatten }}"), json!([1, 2, 3, 4]));
    assert_eq!(r("{{ [1, [2, [3]]] | flatten(levels=1) }}"), json!([1, 2, [3]]));
    assert_eq!(r("{{ [1, [2, [3]]] | flatten(1) }}"), json!([1, 2, [3]]));
    assert_eq!(r("{{ users | first }}"), json!("alice"));
    assert_eq!(r("{{ users | last }}"), json!("bob"));
    assert_eq!(r("{{ [4, 9, 2] | min }}"), json!(2));
    assert_eq!(r("{{ [4, 9, 2] | max }}"), json!(9));
    assert_eq!(
        r("{{ servers | max(attribute='port') }}"),
        json!({"name": "b", "port": 443, "up": false})
    );
    assert_eq!(r("{{ [1, 2, 3] | sum }}"), json!(6));
    assert_eq!(r("{{ [[1], [2, 3]] | sum(start=[]) }}"), json!([1, 2, 3]));
    assert_eq!(r("{{ ['1', '2'] | map('int') | list }}"), json!([1, 2]));
    assert_eq!(r("{{ users | map('upper') | list }}"), json!(["ALICE", "BOB"]));
    assert_eq!(
        r("{{ ['a1', 'b2'] | map('regex_replace', '\\d', '') | list }}"),
        json!(["a", "b"])
    );
    assert_eq!(r("{{ [0, 1, 2] | select | list }}"), json!([1, 2]));
    assert_eq!(r("{{ [1, 2, 3, 4] | select('even') | list }}"), json!([2, 4]));
    assert_eq!(r("{{ [1, 2, 3, 4] | reject('even') | list }}"), json!([1, 3]));
    assert_eq!(
        r("{{ servers | selectattr('up') | map(attribute='name') | list }}"),
        json!(["a", "c"])
    );
    assert_eq!(
        r("{{ servers | rejectattr('up') | map(attribute='name') | list }}"),
        json!(["b"])
    );
    assert_eq!(
        r("{{ servers | selectattr('port', 'gt', 50) | map(attribute='name') | list }}"),
        json!(["a", "b"])
    );
    assert_eq!(
        r("{{ servers | selectattr('name', 'match', '[ab]') | list | length }}"),
        json!(2)
    );
    assert_eq!(r("{{ servers | selectattr('missing', 'defined') | list }}"), json!([]));
    assert_eq!(r("{{ users | zip([1, 2]) | list }}"), json!([["alice", 1], ["bob", 2]]));
    assert_eq!(
        r("{{ [1, 2, 3] | zip_longest(['a'], fillvalue='-') }}"),
        json!([[1, "a"], [2, "-"], [3, "-"]])
    );
    assert_eq!(
        r("{{ [1, 2] | product(['a', 'b']) }}"),
        json!([[1, "a"], [1, "b"], [2, "a"], [2, "b"]])
    );
    assert_eq!(r("{{ range(3) | list }}"), json!([0, 1, 2]));
    assert_eq!(
        r("{{ ['a', 'nested'] | map('extract', foo) | list }}"),
        json!([1, {"b": 2}])
    );
}

#[test]
fn dict_filters() {
    assert_eq!(r("{{ {'a': 1, 'b': 2} | combine({'b': 3}) }}"), json!({"a": 1, "b": 3}));
    assert_eq!(
        r("{{ {'a': {'x': 1, 'y': 2}} | combine({'a': {'y': 3}}, recursive=true) }}"),
        json!({"a": {"x": 1, "y": 3}})
    );
    assert_eq!(
        r("{{ {'a': {'x': 1, 'y': 2}} | combine({'a': {'y': 3}}) }}"),
        json!({"a": {"y": 3}})
    );
    assert_eq!(
        r("{{ {'l': [1, 2]} | combine({'l': [3]}, list_merge='append') }}"),
        json!({"l": [1, 2, 3]})
    );
    assert_eq!(
        r("{{ {'l': [1, 2]} | combine({'l': [2, 3]}, list_merge='append_rp') }}"),
        json!({"l": [1, 2, 3]})
    );
    assert_eq!(
        r("{{ {'a': 1} | combine({'b': 2}, {'c': 3}) }}"),
        json!({"a": 1, "b": 2, "c": 3})
    );
    assert_eq!(
        r("{{ {'a': 1, 'b': 2} | dict2items }}"),
        json!([{"key": "a", "value": 1}, {"key": "b", "value": 2}])
    );
    assert_eq!(
        r("{{ {'a': 1} | dict2items(key_name='k', value_name='v') }}"),
        json!([{"k": "a", "v": 1}])
    );
    assert_eq!(r("{{ [{'key': 'a', 'value': 1}] | items2dict }}"), json!({"a": 1}));
    assert_eq!(
        r("{{ [{'name': 'a', 'ip': 1}] | items2dict(key_name='name', value_name='ip') }}"),
        json!({"a": 1})
    );
    assert_eq!(r("{{ dict(a=1, b='x') }}"), json!({"a": 1, "b": "x"}));
    assert_eq!(r("{{ dict(users | zip([1, 2])) }}"), json!({"alice": 1, "bob": 2}));
    assert_eq!(r("{{ foo.items() | list | length }}"), json!(2));
    assert_eq!(
        r("{{ [{'n': 1, 'l': [1, 2]}] | subelements('l') }}"),
        json!([[{"n": 1, "l": [1, 2]}, 1], [{"n": 1, "l": [1, 2]}, 2]])
    );
    let e = err("{{ [1] | combine({'a': 1}) }}");
    assert!(e.msg.contains("combine expects dictionaries"), "{}", e.msg);
}

#[test]
fn ternary_filter() {
    assert_eq!(r("{{ enabled | ternary('on', 'off') }}"), json!("on"));
    assert_eq!(r("{{ (port > 9000) | ternary('on', 'off') }}"), json!("off"));
    assert_eq!(r("{{ nothing | ternary('on', 'off', 'unset') }}"), json!("unset"));
}

// ------------------------------------------------------------ serialisation

#[test]
fn json_filters_match_python() {
    assert_eq!(r("{{ foo | to_json }}"), json!(r#"{"a": 1, "nested": {"b": 2}}"#));
    assert_eq!(r("{{ [1, 'é'] | to_json }}"), json!(r#"[1, "\u00e9"]"#));
    assert_eq!(
        r("{{ {'b': [1, 2], 'a': {}} | to_nice_json }}"),
        json!("{\n    \"a\": {},\n    \"b\": [\n        1,\n        2\n    ]\n}")
    );
    assert_eq!(
        r("{{ {'b': 1, 'a': 2} | to_nice_json(indent=2) }}"),
        json!("{\n  \"a\": 2,\n  \"b\": 1\n}")
    );
    assert_eq!(r("{{ '{\"x\": [1, true]}' | from_json }}"), json!({"x": [1, true]}));
    // Ansible's decoder profiles: inventory_legacy unwraps __ansible_unsafe.
    assert_eq!(
        r("{{ '{\"a\": {\"__ansible_unsafe\": \"{{x}}\"}}' | from_json(profile='inventory_legacy') }}"),
        json!({"a": "{{x}}"})
    );
    assert!(err("{{ '{}' | from_json(profile='nope') }}")
        .msg
        .contains("Unknown profile name 'nope'"));
    let e = err("{{ '{bad' | from_json }}");
    assert!(e.msg.contains("from_json"), "{}", e.msg);
}

#[test]
fn yaml_filters() {
    assert_eq!(rs("{{ {'b': [1, 2], 'a': 'x'} | to_yaml }}"), "a: x\nb: [1, 2]\n");
    assert_eq!(
        rs("{{ {'b': [1, 2], 'a': {'c': 'yes'}} | to_nice_yaml }}"),
        "a:\n    c: 'yes'\nb:\n- 1\n- 2\n"
    );
    assert_eq!(rs("{{ [{'k': 1, 'j': 2}] | to_nice_yaml }}"), "-   j: 2\n    k: 1\n");
    assert_eq!(
        rs("{{ [{'k': 1, 'j': 2}] | to_nice_yaml(indent=2) }}"),
        "- j: 2\n  k: 1\n"
    );
    assert_eq!(
        rs("{{ {'s': 'a: b', 'e': '', 'n': '123', 'm': 'l1\nl2'} | to_nice_yaml(indent=2) }}"),
        "e: ''\nm: \"l1\\nl2\"\nn: '123'\ns: 'a: b'\n"
    );
    assert_eq!(rs("{{ 'plain' | to_yaml }}"), "plain\n...\n");
    assert_eq!(
        r("{{ 'a: 1\nb: [x, y]\nc: yes' | from_yaml }}"),
        json!({"a": 1, "b": ["x", "y"], "c": true})
    );
    assert_eq!(
        r("{{ 'a: 1\n---\nb: 2' | from_yaml_all }}"),
        json!([{"a": 1}, {"b": 2}])
    );
    // Round trip through our own emitter and parser.
    let v = json!({"list": [{"x": "1.0", "y": [true, null]}], "s": "# not a comment", "t": "yes"});
    let t = Templar::new();
    let c = ctx(json!({"v": v}));
    let back = t.render_str("{{ v | to_nice_yaml | from_yaml }}", &c, &loc()).unwrap();
    assert_eq!(back, v);
    let back = t.render_str("{{ v | to_yaml | from_yaml }}", &c, &loc()).unwrap();
    assert_eq!(back, v);
}

// ------------------------------------------------------------ encoding, hashing, crypt

#[test]
fn base64_and_hashes() {
    assert_eq!(r("{{ 'hello' | b64encode }}"), json!("aGVsbG8="));
    assert_eq!(r("{{ 'aGVsbG8=' | b64decode }}"), json!("hello"));
    assert_eq!(
        r("{{ 'hello' | hash('sha1') }}"),
        json!("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
    );
    assert_eq!(
        r("{{ 'hello' | checksum }}"),
        json!("aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")
    );
    assert_eq!(
        r("{{ 'hello' | hash('md5') }}"),
        json!("5d41402abc4b2a76b9719d911017c592")
    );
    assert_eq!(
        r("{{ 'hello' | hash('sha256') }}"),
        json!("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")
    );
    assert!(rs("{{ 'hello' | hash('sha512') }}").starts_with("9b71d224bd62f378"));
    let e = err("{{ 'x' | hash('crc') }}");
    assert!(e.msg.contains("unsupported algorithm"), "{}", e.msg);
}

fn openssl_passwd(flag: &str, salt: &str, password: &str) -> Option<String> {
    let out = std::process::Command::new("openssl")
        .args(["passwd", flag, "-salt", salt, password])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn password_hash_matches_openssl() {
    let cases = [
        ("-6", "sha512", "saltsalt", "secret"),
        (
            "-6",
            "sha512",
            "abcdefghijklmnop",
            "a much longer password that is over sixty-four bytes long, really!",
        ),
        ("-6", "sha512", "x", "p"),
        ("-5", "sha256", "saltsalt", "secret"),
        ("-5", "sha256", "Zz./09", "pässwörd"),
        ("-1", "md5", "saltsalt", "secret"),
        ("-1", "md5", "ab", "a password longer than sixteen bytes"),
    ];
    let t = Templar::new();
    for (flag, scheme, salt, pw) in cases {
        let Some(expected) = openssl_passwd(flag, salt, pw) else {
            panic!("openssl passwd is needed for this test");
        };
        let c = ctx(json!({"pw": pw, "salt": salt, "scheme": scheme}));
        let got = t
            .render_str("{{ pw | password_hash(scheme, salt) }}", &c, &loc())
            .unwrap();
        assert_eq!(got, json!(expected), "{scheme} {salt} {pw:?}");
    }
    // Known vector from the SHA-crypt specification (rounds=5000 implied).
    let got = t
        .render_str(
            "{{ 'Hello world!' | password_hash('sha512', 'saltstring') }}",
            &c_empty(),
            &loc(),
        )
        .unwrap();
    assert_eq!(
        got,
        json!("$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1")
    );
    let got = t
        .render_str(
            "{{ 'Hello world!' | password_hash('sha512', 'saltstringsaltstring', rounds=10000) }}",
            &c_empty(),
            &loc(),
        )
        .unwrap();
    assert_eq!(
        got,
        json!("$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.")
    );
    // Without a salt a random one is used.
    let a = rs("{{ 'x' | password_hash('sha512') }}");
    assert!(a.starts_with("$6$") && a.len() > 90, "{a}");
    let e = err("{{ 'x' | password_hash('sha512', 'bad salt!') }}");
    assert!(e.msg.contains("invalid character"), "{}", e.msg);
}

fn c_empty() -> minijinja::Value {
    ctx(json!({}))
}

// ------------------------------------------------------------ network

#[test]
fn ipaddr_filters() {
    assert_eq!(r("{{ '192.168.1.10' | ipaddr }}"), json!("192.168.1.10"));
    assert_eq!(r("{{ 'not an ip' | ipaddr }}"), json!(false));
    assert_eq!(
        r("{{ ['10.0.0.1', 'x', '::1', '10.0.0.0/8'] | ipaddr }}"),
        json!(["10.0.0.1", "::1", "10.0.0.0/8"])
    );
    assert_eq!(r("{{ ['10.0.0.1', '::1'] | ipv4 }}"), json!(["10.0.0.1"]));
    assert_eq!(r("{{ ['10.0.0.1', '::1'] | ipv6 }}"), json!(["::1"]));
    assert_eq!(r("{{ '192.168.1.10/24' | ipaddr('address') }}"), json!("192.168.1.10"));
    assert_eq!(r("{{ '192.168.1.10/24' | ipaddr('network') }}"), json!("192.168.1.0"));
    assert_eq!(r("{{ '192.168.1.10/24' | ipaddr('netmask') }}"), json!("255.255.255.0"));
    assert_eq!(r("{{ '192.168.1.10/24' | ipaddr('prefix') }}"), json!(24));
    assert_eq!(
        r("{{ '192.168.1.10/24' | ipaddr('broadcast') }}"),
        json!("192.168.1.255")
    );
    assert_eq!(r("{{ '192.168.1.10/24' | ipaddr('host') }}"), json!("192.168.1.10/24"));
    assert_eq!(r("{{ '192.168.1.0/24' | ipaddr('net') }}"), json!("192.168.1.0/24"));
    assert_eq!(r("{{ '192.168.1.10/24' | ipaddr('cidr') }}"), json!("192.168.1.0/24"));
    assert_eq!(r("{{ '192.168.1.0/24' | ipaddr('size') }}"), json!(256));
    assert_eq!(r("{{ '192.168.1.0/24' | ipaddr(5) }}"), json!("192.168.1.5/24"));
    assert_eq!(r("{{ '192.168.1.0/255.255.255.0' | ipaddr('prefix') }}"), json!(24));
    assert_eq!(r("{{ '2001:db8::5/64' | ipaddr('network') }}"), json!("2001:db8::"));
    assert_eq!(r("{{ '2001:db8::5/64' | ipv4 }}"), json!(false));
    assert_eq!(r("{{ '10.1.1.1' | ipaddr('private') }}"), json!("10.1.1.1"));
    assert_eq!(r("{{ '8.8.8.8' | ipaddr('private') }}"), json!(false));
    assert_eq!(r("{{ '8.8.8.8' | ipaddr('public') }}"), json!("8.8.8.8"));
}

// ------------------------------------------------------------ random, misc

#[test]
fn random_is_seeded_per_host() {
    let t = Templar::new();
    let list: Vec<i64> = (0..100).collect();
    let pick = |host: &str, expr: &str| {
        let c = ctx(json!({"inventory_hostname": host, "l": list}));
        t.render_str(expr, &c, &loc()).unwrap()
    };
    let a1 = pick("h1", "{{ l | random }}");
    assert_eq!(a1, pick("h1", "{{ l | random }}"));
    let picks: std::collections::HashSet<String> = (0..20)
        .map(|i| pick(&format!("host{i}"), "{{ l | random }}").to_string())
        .collect();
    assert!(
        picks.len() > 5,
        "different hosts should get different values: {picks:?}"
    );
    let n = pick("h1", "{{ 60 | random }}");
    assert!(n.as_i64().is_some_and(|n| (0..60).contains(&n)), "{n}");
    let n = pick("h1", "{{ 100 | random(10, 10) }}");
    assert!(n.as_i64().is_some_and(|n| n % 10 == 0 && (10..100).contains(&n)), "{n}");
    assert_ne!(
        pick("h1", "{{ l | shuffle(seed='a') }}"),
        pick("h1", "{{ l | shuffle(seed='b') }}")
    );
    let s1 = pick("h1", "{{ l | shuffle }}");
    assert_eq!(s1, pick("h1", "{{ l | shuffle }}"));
    let mut sorted: Vec<i64> = s1.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_ne!(sorted, list, "shuffle should change the order");
    sorted.sort();
    assert_eq!(sorted, list);
}

#[test]
fn flattened_lookup() {
    // community.general.flattened (values from its _do_flatten under ansible-core 2.19).
    assert_eq!(
        r("{{ query('community.general.flattened', [1, [2, [3, [4]]]], [[['a']]], ' b ', {'k': 1}) }}"),
        json!([1, 2, 3, 4, "a", "b", {"k": 1}])
    );
    assert_eq!(
        r("{{ query('flattened', ['a', 'null', 'c'], 'd', ' None ', 'e') }}"),
        json!(["a", "d", "e"])
    );
}

#[test]
fn comment_filter() {
    assert_eq!(rs("{{ 'hi' | comment }}"), "#\n# hi\n#");
    assert_eq!(rs("{{ 'a\nb' | comment('c') }}"), "//\n// a\n// b\n//");
    assert_eq!(rs("{{ 'hi' | comment('cblock') }}"), "/*\n *\n * hi\n *\n */");
    assert_eq!(rs("{{ 'hi' | comment('xml') }}"), "<!--\n -\n - hi\n -\n-->");
    // Ansible's composition of empty and custom prefixes, postfixes and newlines (values from
    // ansible-core 2.19's filter): willshersystems.sshd's `comment(prefix="", postfix="")`.
    assert_eq!(rs("{{ 'x' | comment(prefix='', postfix='') }}"), "# x\n");
    assert_eq!(rs("{{ 'x' | comment(prefix='') }}"), "# x\n#");
    assert_eq!(rs("{{ 'x' | comment(prefix='\n', prefix_count=2) }}"), "\n\n# x\n#");
    assert_eq!(rs("{{ 'x' | comment(postfix_count=0) }}"), "#\n# x");
    assert_eq!(
        rs("{{ 'a\nb' | comment(newline='\r\n', decoration='; ') }}"),
        ";\r\n; a\nb\r\n;"
    );
    assert_eq!(
        rs("{{ 'x' | comment('erlang', beginning='%%', end='%%') }}"),
        "%%\n%\n% x\n%\n%%"
    );
}

#[test]
fn human_readable_filters() {
    assert_eq!(r("{{ 1048576 | human_readable }}"), json!("1.00 MB"));
    assert_eq!(r("{{ 512 | human_readable }}"), json!("512.00 Bytes"));
    assert_eq!(r("{{ '1K' | human_to_bytes }}"), json!(1024));
    // Ansible's errors for what is not a number (a numeric string included).
    let err = |s: &str| {
        Templar::new()
            .render_str(s, &ctx(vars()), &loc())
            .expect_err(s)
            .to_string()
    };
    assert!(err("{{ 'monkeys' | human_readable }}").contains("human_readable() failed on bad input"));
    assert!(err("{{ '10' | human_readable }}").contains("failed on bad input"));
    assert!(err("{{ 'yo' | log }}").contains("log() can only be used on numbers"));
    assert!(err("{{ 'yo' | pow(4) }}").contains("pow() can only be used on numbers"));
    assert!(err("{{ 'yo' | root }}").contains("root() can only be used on numbers"));
    assert!(err("{{ -4 | root }}").contains("root() can only be used on numbers"));
    assert_eq!(r("{{ 100 | log(10) }}"), json!(2.0));
    assert_eq!(r("{{ 2 | pow(4) }}"), json!(16.0));
    assert_eq!(r("{{ 9 | root(1) }}"), json!(9.0));
    assert_eq!(r("{{ true | log }}"), json!(0.0));
    assert_eq!(r("{{ 1 | human_readable(isbits=True) }}"), json!("1.00 bits"));
    assert_eq!(
        r("{{ 102400000 | human_readable(isbits=True, unit='G') }}"),
        json!("0.10 Gb")
    );
    assert_eq!(r("{{ 102400000 | human_readable(false, 'G') }}"), json!("0.10 GB"));
    assert_eq!(r("{{ '10.00 Kb' | human_to_bytes(isbits=True) }}"), json!(10240));
    assert_eq!(r("{{ '10' | human_to_bytes(default_unit='K') }}"), json!(10240));
}

#[test]
fn rekey_on_member_as_ansible() {
    let rows = r#"[{"proto": "eigrp", "s": 1}, {"proto": "ospf", "s": 2}]"#;
    assert_eq!(
        r(&format!("{{{{ {rows} | rekey_on_member('proto') }}}}")),
        json!({"eigrp": {"proto": "eigrp", "s": 1}, "ospf": {"proto": "ospf", "s": 2}})
    );
    assert_eq!(
        r("{{ {'a': {'p': 'x'}, 'b': {'p': 'y'}} | rekey_on_member('p') }}"),
        json!({"x": {"p": "x"}, "y": {"p": "y"}})
    );
    let dup = r#"[{"p": "x", "n": 1}, {"p": "x", "n": 2}]"#;
    assert_eq!(
        r(&format!(
            "{{{{ {dup} | rekey_on_member('p', duplicates='overwrite') }}}}"
        )),
        json!({"x": {"p": "x", "n": 2}})
    );
    let err = |s: &str| {
        Templar::new()
            .render_str(s, &ctx(vars()), &loc())
            .expect_err(s)
            .to_string()
    };
    assert!(err(&format!("{{{{ {dup} | rekey_on_member('p') }}}}"))
        .contains("Key 'x' is not unique, cannot convert to dict."));
    assert!(err("{{ [] | rekey_on_member('p', duplicates='boo') }}").contains("has unknown value 'boo'"));
    assert!(err("{{ 'minkeys' | rekey_on_member('p') }}").contains("Type is not a valid list, set, or dict"));
    assert!(err("{{ [true] | rekey_on_member('p') }}").contains("List item is not a valid dict"));
    assert!(err("{{ [{'q': 1}] | rekey_on_member('p') }}").contains("Key 'p' was not found."));
    // A mapping, compared as one.
    assert_eq!(
        r("{{ [{'p': 'x'}] | rekey_on_member('p') == {'x': {'p': 'x'}} }}"),
        json!(true)
    );
    assert_eq!(r("{{ '2 GB' | human_to_bytes }}"), json!(2147483648i64));
}

#[test]
fn dates() {
    assert_eq!(
        r("{{ '%Y-%m-%d %H:%M:%S' | strftime(0) }}"),
        json!("1970-01-01 00:00:00")
    );
    assert_eq!(
        r("{{ '%a %d %b %Y %j' | strftime(1700000000) }}"),
        json!("Tue 14 Nov 2023 318")
    );
    assert_eq!(r("{{ ('2024-03-01 12:30:00' | to_datetime).year }}"), json!(2024));
    assert_eq!(
        r("{{ ('2024-03-01' | to_datetime('%Y-%m-%d')).timestamp() }}"),
        json!(1709251200.0)
    );
    assert_eq!(
        r("{{ '2024-03-01 12:00:00' | to_datetime > '2024-02-01 12:00:00' | to_datetime }}"),
        json!(true)
    );
    let year = r("{{ now().year }}");
    assert!(year.as_i64().is_some_and(|y| y >= 2024), "{year}");
    assert_eq!(rs("{{ now(fmt='%Y') }}"), rs("{{ now().strftime('%Y') }}"));
}

// ------------------------------------------------------------ tests

#[test]
fn type_tests() {
    assert!(ev("nothing is none"));
    assert!(ev("name is string"));
    assert!(ev("port is number and port is integer"));
    assert!(ev("ratio is float"));
    assert!(ev("enabled is boolean"));
    assert!(ev("foo is mapping"));
    assert!(ev("users is iterable and users is sequence"));
    assert!(ev("'yes' is truthy"));
    assert!(ev("'' is falsy"));
    assert!(ev("'no' is falsy(convert_bool=true)"));
    assert!(!ev("'no' is falsy"));
}

#[test]
fn regex_tests() {
    assert!(ev("'server01' is match('server')"));
    assert!(!ev("'my server01' is match('server')"));
    assert!(ev("'my server01' is search('server\\\\d+')"));
    assert!(ev("'ABC' is search('b', ignorecase=true)"));
    assert!(ev("'abc' is regex('^a')"));
    assert!(!ev("'abc' is regex('b', match_type='match')"));
    // Python's `re`: lookarounds, named backreferences, \Z, fullmatch.
    assert!(ev("'qz_1,qa_1,qz_2' is search('(?=.*qa_1)(?=.*qz_1)(?=.*qz_2)')"));
    assert!(!ev("'qz_1,qz_2' is search('(?=.*qa_1)(?=.*qz_1)')"));
    assert!(ev("'foo' is search('(?P<c>o)(?P=c)')"));
    assert!(ev("'abc' is regex('abc', match_type='fullmatch')"));
    assert!(!ev("'abcd' is regex('abc', match_type='fullmatch')"));
    assert!(!ev("'x\\nab' is match('^ab', multiline=true)"));
    assert!(ev("'x\\nab' is search('^ab', multiline=true)"));
    assert_eq!(r("{{ 'price: 10 USD' | regex_search('\\d+(?= USD)') }}"), json!("10"));
    assert_eq!(r("{{ 'a1b2' | regex_replace('(?<=[a-z])\\d', '#') }}"), json!("a#b#"));
    assert_eq!(r("{{ 'a1b2' | regex_findall('[a-z](?=2)') }}"), json!(["b"]));
}

#[test]
fn membership_tests() {
    assert!(ev("'alice' in users"));
    assert!(ev("users is contains('bob')"));
    assert!(ev("['alice'] is subset(users)"));
    assert!(ev("users is superset(['bob'])"));
    assert!(!ev("['carol'] is subset(users)"));
    assert!(ev(
        "servers | selectattr('name', 'in', ['a', 'c']) | list | length == 2"
    ));
}

#[test]
fn version_tests() {
    assert!(ev("'2.0' is version('1.9', '>=')"));
    assert!(ev("'1.10' is version('1.9', '>')"));
    assert!(ev("'1.2.3' is version('1.2.3', 'eq')"));
    assert!(ev("'1.2.3' is version_compare('1.2.4', 'lt')"));
    assert!(ev("'2.6.0-1' is version('2.6', '>')"));
    // LooseVersion: [1, 0, 'rc', 1] > [1, 0], as in Ansible.
    assert!(ev("'1.0rc1' is version('1.0', '>')"));
    assert!(ev("'1.0a1' is version('1.0', '<', strict=true)"));
    assert!(ev("'1.0' is version('1.0a1', '>', strict=true)"));
    assert!(ev("'1.2.3-beta' is version('1.2.3', '<', version_type='semver')"));
    assert!(ev("'2.0' | version_compare('1.0', 'gt')"));
    let t = Templar::new();
    let e = t
        .eval_bool("'1.x' is version('1.0', '>', strict=true)", &ctx(vars()), &loc())
        .unwrap_err();
    assert!(e.msg.contains("invalid version number"), "{}", e.msg);
    let e = t
        .eval_bool("'1' is version('1.0', '=>')", &ctx(vars()), &loc())
        .unwrap_err();
    assert!(e.msg.contains("invalid operator"), "{}", e.msg);
    // `strict` is the third positional parameter, as in Ansible's signature.
    assert!(ev("'1.0a1' is version('1.0', '<', true)"));
    assert!(ev("'1.0' is version_compare('1.0', '==', true)"));
    for (expr, msg) in [
        ("'' is version('1.0', '>')", "Input version value cannot be empty"),
        (
            "'1.0' is version('', '>')",
            "Version parameter to compare against cannot be empty",
        ),
        (
            "'1.0' is version('1.0', strict=false, version_type='loose')",
            "Cannot specify both",
        ),
    ] {
        let e = t.eval_bool(expr, &ctx(vars()), &loc()).unwrap_err();
        assert!(e.msg.contains(msg), "{expr}: {}", e.msg);
    }
}

#[test]
fn result_tests() {
    let t = Templar::new();
    let c = ctx(json!({
        "ok": {"changed": false, "rc": 0},
        "bad": {"failed": true, "changed": true},
        "skip": {"skipped": true, "changed": false},
        "looped": {"results": [{"changed": false}, {"changed": true}]},
        "pending": {"finished": 0, "started": 1},
        "timed": {"failed": true, "timedout": {"period": 1}},
        "no_period": {"timedout": {"period": 0}},
    }));
    let b = |e: &str| t.eval_bool(e, &c, &loc()).unwrap();
    assert!(b("ok is succeeded and ok is success and ok is not failed"));
    assert!(b("bad is failed and bad is changed"));
    assert!(b("skip is skipped and skip is not changed"));
    assert!(b("looped is changed"));
    assert!(b("pending is not finished and pending is started"));
    assert!(b("ok is finished"));
    assert!(b(
        "timed is timedout and ok is not timedout and no_period is not timedout"
    ));
    let e = t.eval_bool("'x' is failed", &c, &loc()).unwrap_err();
    assert!(e.msg.contains("expects a registered task result"), "{}", e.msg);
}

#[test]
fn path_tests() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    std::fs::write(&f, "x").unwrap();
    let l = dir.path().join("l");
    std::os::unix::fs::symlink(&f, &l).unwrap();
    let t = Templar::new();
    let c = ctx(json!({"d": dir.path(), "f": f, "l": l, "n": dir.path().join("none")}));
    let b = |e: &str| t.eval_bool(e, &c, &loc()).unwrap();
    assert!(b("d is directory and d is not file and d is exists"));
    assert!(b("f is file and f is exists and f is not link"));
    assert!(b("l is link and l is file"));
    assert!(b("n is not exists"));
    assert!(b("'/x' is abs and 'x' is not abs"));
}

// ------------------------------------------------------------ lookups

fn lookup_ctx(dir: &std::path::Path) -> minijinja::Value {
    let mut v = vars();
    v[SEARCH_PATHS_VAR] = json!([dir.join("role"), dir]);
    v["greeting"] = json!("hi");
    ctx(v)
}

#[test]
fn file_template_fileglob_first_found_lookups() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("role/files")).unwrap();
    std::fs::create_dir_all(d.join("role/templates")).unwrap();
    std::fs::write(d.join("role/files/motd"), "welcome\n\n").unwrap();
    std::fs::write(d.join("role/files/a.conf"), "a").unwrap();
    std::fs::write(d.join("role/files/b.conf"), "b").unwrap();
    std::fs::write(d.join("top.txt"), "top").unwrap();
    std::fs::write(
        d.join("role/templates/t.j2"),
        "{{ greeting }} {{ name }} {{ extra | default('-') }}",
    )
    .unwrap();
    let t = Templar::new();
    let c = lookup_ctx(d);
    let r = |s: &str| t.render_str(s, &c, &loc()).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(r("{{ lookup('file', 'motd') }}"), json!("welcome"));
    assert_eq!(r("{{ lookup('file', 'top.txt') }}"), json!("top"));
    assert_eq!(r("{{ lookup('file', 'motd', 'top.txt') }}"), json!("welcome,top"));
    assert_eq!(r("{{ lookup('file', 'motd', rstrip=false) }}"), json!("welcome\n\n"));
    assert_eq!(r("{{ query('file', 'motd') }}"), json!(["welcome"]));
    // A keyword argument that is none of the options of Ansible's lookup is
    // ignored, as Ansible's set_options ignores it.
    assert_eq!(r("{{ lookup('vars', 'greeting', name='test') }}"), json!("hi"));
    assert_eq!(r("{{ query('vars', name='test') }}"), json!([]));
    assert_eq!(r("{{ query('file', 'motd', bogus=1) }}"), json!(["welcome"]));
    assert_eq!(r("{{ lookup('file', 'motd', wantlist=true) }}"), json!(["welcome"]));
    assert_eq!(r("{{ lookup('template', 't.j2') }}"), json!("hi web -"));
    assert_eq!(
        r("{{ lookup('template', 't.j2', template_vars={'extra': 'E'}) }}"),
        json!("hi web E")
    );
    let confs = r("{{ query('fileglob', '*.conf') | map('basename') | list }}");
    assert_eq!(confs, json!(["a.conf", "b.conf"]));
    let found = r("{{ lookup('first_found', ['nope.txt', 'b.conf', 'a.conf']) }}");
    assert_eq!(
        found,
        json!(std::fs::canonicalize(d.join("role/files/b.conf"))
            .unwrap()
            .display()
            .to_string())
    );
    assert_eq!(
        r("{{ query('first_found', ['nope1', 'nope2'], skip=true) }}"),
        json!([])
    );
    let found = r("{{ lookup('first_found', {'files': ['x', 'top.txt'], 'paths': [d]}) }}");
    assert!(found.as_str().unwrap().ends_with("top.txt"), "{found}");

    let e = t
        .render_str("{{ lookup('file', 'missing.txt') }}", &c, &loc())
        .unwrap_err();
    assert!(e.msg.contains("could not locate file 'missing.txt'"), "{}", e.msg);
    assert!(e.msg.contains("role/files"), "{}", e.msg);
    let e = t
        .render_str("{{ lookup('first_found', ['n1', 'n2']) }}", &c, &loc())
        .unwrap_err();
    assert!(e.msg.contains("no file was found"), "{}", e.msg);
    // A term that is not a file name, list or dict is a type error (Ansible's).
    let e = t
        .render_str("{{ lookup('first_found', ['n1', 1]) }}", &c, &loc())
        .unwrap_err();
    assert!(
        e.msg.contains("A string, dict or list is required, not 'int'"),
        "{}",
        e.msg
    );
    let e = t.render_str("{{ lookup('nosuch', 'x') }}", &c, &loc()).unwrap_err();
    assert!(e.msg.contains("lookup plugin 'nosuch' not found"), "{}", e.msg);
    assert_eq!(r("{{ lookup('file', 'missing.txt', errors='ignore') }}"), Value::Null);
}

#[test]
fn env_pipe_lines_vars_lookups() {
    let home = std::env::var("HOME").unwrap_or_default();
    assert_eq!(r("{{ lookup('env', 'HOME') }}"), json!(home));
    assert_eq!(r("{{ lookup('env', 'RIGGER_SURELY_UNSET_VAR') }}"), json!(""));
    assert_eq!(
        r("{{ lookup('env', 'RIGGER_SURELY_UNSET_VAR', default='d') }}"),
        json!("d")
    );
    // `undef()` as the default: an unset variable is undefined; the first
    // word of a term names the variable.
    assert!(ev(
        "lookup('env', 'RIGGER_SURELY_UNSET_VAR', default=undef()) is not defined"
    ));
    assert!(ev(
        "lookup('env', 'RIGGER_SURELY_UNSET_VAR', default=undef('hint')) is undefined"
    ));
    assert!(ev("lookup('env', 'HOME', default=undef()) is defined"));
    assert!(ev("lookup('env', 'HOME trailing words') == lookup('env', 'HOME')"));
    assert_eq!(r("{{ lookup('pipe', 'echo hello; echo') }}"), json!("hello"));
    assert_eq!(r("{{ query('lines', 'printf \"a\\nb\\n\"') }}"), json!(["a", "b"]));
    let e = err("{{ lookup('pipe', 'exit 3') }}");
    assert!(e.msg.contains("exited with 3"), "{}", e.msg);
    assert_eq!(r("{{ lookup('vars', 'port') }}"), json!(8080));
    assert_eq!(r("{{ lookup('vars', 'nope', default=1) }}"), json!(1));
    let e = err("{{ lookup('vars', 'nope') }}");
    assert!(e.msg.contains("No variable named 'nope' was found"), "{}", e.msg);
}

#[test]
fn list_lookups() {
    assert_eq!(r("{{ query('items', [1, [2, 3]], 4) }}"), json!([1, 2, 3, 4]));
    assert_eq!(
        r("{{ lookup('items', users, wantlist=true) }}"),
        json!(["alice", "bob"])
    );
    assert_eq!(r("{{ query('dict', {'a': 1}) }}"), json!([{"key": "a", "value": 1}]));
    assert_eq!(
        r("{{ query('indexed_items', ['a', 'b']) }}"),
        json!([[0, "a"], [1, "b"]])
    );
    assert_eq!(
        r("{{ query('together', [1, 2], ['a']) }}"),
        json!([[1, "a"], [2, null]])
    );
    assert_eq!(r("{{ query('nested', [1, 2], ['a']) }}"), json!([[1, "a"], [2, "a"]]));
    assert_eq!(
        r("{{ query('sequence', 'start=1 end=3 format=web%02d') }}"),
        json!(["web01", "web02", "web03"])
    );
    assert_eq!(
        r("{{ query('sequence', 'start=0 count=3 stride=2') }}"),
        json!(["0", "2", "4"])
    );
}

#[test]
fn sequence_lookup_shortcut_kv_and_errors_as_ansible() {
    assert_eq!(r("{{ query('sequence', '4') }}"), json!(["1", "2", "3", "4"]));
    assert_eq!(r("{{ query('sequence', '2-6/2') }}"), json!(["2", "4", "6"]));
    assert_eq!(
        r("{{ query('sequence', '7-8:host%02d') }}"),
        json!(["host07", "host08"])
    );
    assert_eq!(
        r("{{ query('sequence', count=3, start=10) }}"),
        json!(["10", "11", "12"])
    );
    // Keywords are every term's defaults; a term's own options win.
    assert_eq!(
        r("{{ query('sequence', 'count=2 start=0', 'count=2', start=20) }}"),
        json!(["0", "1", "20", "21"])
    );
    // Ansible's end for a count: start + count * stride - 1, even downwards.
    assert_eq!(
        r("{{ query('sequence', 'count=3 start=0', stride=-1) }}"),
        json!(["0", "-1", "-2", "-3", "-4"])
    );
    assert_eq!(r("{{ query('sequence', 'count=0') }}"), json!([]));
    assert_eq!(r("{{ query('sequence', 'count=5', stride=0) }}"), json!([]));
    assert_eq!(r("{{ query('sequence') }}"), json!([]));
    for (term, msg) in [
        ("start=0 junk=3", "unrecognized arguments to with_sequence: ['junk']"),
        ("start=A end=3", "has an invalid value"),
        ("1-4/C", "has an invalid value"),
        ("start=1", "must specify count or end in with_sequence"),
        (
            "start=1 end=4 count=2",
            "can't specify both count and end in with_sequence",
        ),
        ("start=4 end=1 stride=2", "to count backwards make stride negative"),
        ("start=1 end=4 stride=-2", "to count forward don't make stride negative"),
        ("start=1 end=4 format=d", "bad formatting string: d"),
    ] {
        let e = err(&format!("{{{{ query('sequence', '{term}') }}}}"));
        assert!(e.msg.contains(msg), "{term}: {}", e.msg);
    }
}

#[test]
fn subelements_lookup_pops_the_list_and_checks_terms() {
    let c = ctx(json!({
        "users": [
            {"name": "a", "k": {"l": [1, 2]}},
            {"name": "b", "skipped": true, "k": {"l": [3]}},
            {"name": "c"}
        ]
    }));
    let t = Templar::new();
    let q = |s: &str| t.render_str(s, &c, &loc());
    assert_eq!(
        q("{{ query('subelements', users[:1], 'k.l') }}").unwrap(),
        json!([[{"name": "a", "k": {}}, 1], [{"name": "a", "k": {}}, 2]])
    );
    assert_eq!(
        q("{{ query('subelements', users, 'k.l', {'skip_missing': true}) | length }}").unwrap(),
        json!(2)
    );
    for (expr, msg) in [
        ("users, 'k.l'", "could not find 'k' key in iterated item"),
        ("'x', 'k'", "first a dict or a list"),
        ("users, 1", "second a string"),
        ("users[:1], 'k'", "the key k should point to a list"),
        ("users[:1], 'name.x'", "the key name should point to a dictionary"),
        ("users, 'k.l', 'x'", "the optional third item must be a dict"),
        ("users", "expects a list of two or three items"),
    ] {
        let e = q(&format!("{{{{ query('subelements', {expr}) }}}}")).unwrap_err();
        assert!(e.msg.contains(msg), "{expr}: {}", e.msg);
    }
}

#[test]
fn inventory_hostnames_lookup_evaluates_patterns_on_groups() {
    let c = ctx(json!({
        "groups": {
            "all": ["n1", "t1", "t3", "t2", "t4", "t200"],
            "ungrouped": ["n1"],
            "g1": ["t1", "t3", "t2", "t4"],
            "g2": ["t3", "t4", "t200"],
            "empty": []
        }
    }));
    let t = Templar::new();
    let q = |s: &str| t.render_str(s, &c, &loc()).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(
        q("{{ query('inventory_hostnames', 'g1') }}"),
        json!(["t1", "t3", "t2", "t4"])
    );
    assert_eq!(
        q("{{ query('inventory_hostnames', 'g1:!t3') }}"),
        json!(["t1", "t2", "t4"])
    );
    assert_eq!(q("{{ query('inventory_hostnames', 'g1:&g2') }}"), json!(["t3", "t4"]));
    assert_eq!(q("{{ query('inventory_hostnames', 'ungrouped') }}"), json!(["n1"]));
    assert_eq!(q("{{ query('inventory_hostnames', 'nothere') }}"), json!([]));
    assert_eq!(q("{{ query('inventory_hostnames', 'empty') }}"), json!([]));
    assert_eq!(q("{{ query('inventory_hostnames', 't2?0') }}"), json!(["t200"]));
    assert_eq!(q("{{ query('inventory_hostnames', 'all') | length }}"), json!(6));
}

#[test]
fn together_nested_random_choice_lookups_as_ansible() {
    // Rows are flattened one level, as Ansible's LookupBase._flatten does.
    assert_eq!(
        r("{{ query('together', [1, [2, 3]], ['a']) }}"),
        json!([[1, "a"], [2, 3, null]])
    );
    assert_eq!(r("{{ query('nested', [[1, 2]], ['a']) }}"), json!([[1, 2, "a"]]));
    let e = err("{{ query('together') }}");
    assert!(
        e.msg
            .contains("with_together requires at least one element in each list"),
        "{}",
        e.msg
    );
    let e = err("{{ query('nested') }}");
    assert!(e.msg.contains("with_nested requires at least one element"), "{}", e.msg);
    assert_eq!(r("{{ query('random_choice') }}"), json!([]));
    for _ in 0..20 {
        let v = r("{{ lookup('random_choice', 'a', 'b') }}");
        assert!(v == json!("a") || v == json!("b"), "{v}");
    }
}

#[test]
fn urlencode_and_urldecode_as_jinja_and_ansible() {
    assert_eq!(r("{{ 'a b/c&é' | urlencode }}"), json!("a%20b/c%26%C3%A9"));
    assert_eq!(r("{{ {'foo': 'a b', 'x': 1} | urlencode }}"), json!("foo=a+b&x=1"));
    assert_eq!(
        r("{{ [('k', 'v/w'), ['n', True]] | urlencode }}"),
        json!("k=v%2Fw&n=True")
    );
    assert_eq!(r("{{ () | urlencode }}"), json!(""));
    assert_eq!(r("{{ 42 | urlencode }}"), json!("42"));
    assert_eq!(r("{{ 'a+b%20c' | urldecode }}"), json!("a b c"));
    assert!(ev("'nan' | float is isnan and 1.5 is not isnan"));
}

#[test]
fn unique_filter_as_ansible_with_its_fallback() {
    assert_eq!(r("{{ [1, 2, 2, 1] | unique }}"), json!([1, 2]));
    assert_eq!(r("{{ ['A', 'a', 'b'] | unique }}"), json!(["A", "b"]));
    assert_eq!(r("{{ ['A', 'a'] | unique(case_sensitive=true) }}"), json!(["A", "a"]));
    assert_eq!(r("{{ 'foo' | unique }}"), json!(["f", "o"]));
    assert_eq!(r("{{ {'x': 1, 'y': 2} | unique }}"), json!(["x", "y"]));
    assert_eq!(
        r("{{ [{'n': 'a'}, {'n': 'A'}, {'n': 'b'}] | unique(attribute='n') }}"),
        json!([{"n": "a"}, {"n": "b"}])
    );
    // Unhashable items: Ansible's own version, by equality.
    assert_eq!(r("{{ [{'a': 1}, {'a': 1}, [2]] | unique }}"), json!([{"a": 1}, [2]]));
    let e = err("{{ [{'a': 1}] | unique(case_sensitive=False) }}");
    assert!(e.msg.contains("cannot fall back to Ansible's version"), "{}", e.msg);
    let e = err("{{ True | unique }}");
    assert!(e.msg.contains("'bool' object is not iterable"), "{}", e.msg);
}

// ------------------------------------------------------------ performance guard

#[test]
fn strings_without_delimiters_never_reach_minijinja() {
    // A string with Jinja-invalid content but no delimiters must pass as is.
    assert_eq!(r("}} %} ok"), json!("}} %} ok"));
}

#[test]
#[ignore]
fn bench_render() {
    let t = Templar::new();
    let c = ctx(vars());
    for s in [
        "{{ name }}-{{ port }}",
        "{{ port }}",
        "{{ users | map('upper') | join(',') }}",
        "{{ foo.bar | default(1) }}",
        "no template here",
    ] {
        let start = std::time::Instant::now();
        for _ in 0..10000 {
            t.render_str(s, &c, &loc()).unwrap();
        }
        println!("{s:50} {:?}/render", start.elapsed() / 10000);
    }
}

#[test]
fn render_file_keeps_trailing_newlines_like_ansible() {
    // Ansible: Jinja without keep_trailing_newline, then the result padded to
    // the source's number of trailing newlines.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.j2");
    let t = Templar::new();
    let vars = ctx(serde_json::json!({"v": "x\n"}));
    for (src, want) in [
        ("a{% if true %} t{% endif %}\n\n", "a t\n\n"),
        ("{% if true %}t{% endif %}\n", "t\n"),
        ("{{ v }}\n", "x\n"),
        ("{{ v }}", "x\n"),
        ("two\n\n\n", "two\n\n\n"),
        ("none", "none"),
    ] {
        std::fs::write(&p, src).unwrap();
        assert_eq!(t.render_file(&p, None, &vars).unwrap(), want, "template {src:?}");
    }
}

#[test]
fn one_expression_then_newlines_as_ansible() {
    // Jinja drops the last newline (so `{{ x }}\n` is still one expression,
    // native), then Ansible pads a text result to the source's newlines.
    assert_eq!(r("{{ name }}\n"), json!("web\n"));
    assert_eq!(r("{{ name }}\n\n"), json!("web\n\n"));
    assert_eq!(r("{{ port }}\n"), json!(8080));
    assert_eq!(r("{{ users }}\n"), json!(["alice", "bob"]));
    assert_eq!(
        r("{{ users | to_nice_json }}\n"),
        json!("[\n    \"alice\",\n    \"bob\"\n]\n")
    );
    assert_eq!(r(" {{ port }}"), json!(" 8080"));
    assert_eq!(r("a {{ name }}\n"), json!("a web\n"));
    let t = Templar::new();
    assert_eq!(t.render_string("{{ name }}\n", &ctx(vars()), &loc()).unwrap(), "web\n");
}

#[test]
fn jinja2_header_overrides_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.j2");
    let t = Templar::new();
    let c = ctx(vars());
    let render = |src: &str| {
        std::fs::write(&p, src).unwrap();
        t.render_file(&p, None, &c)
    };
    let body = "{% for u in users %}\n  {% if u %}\n{{ u }}\n  {% endif %}\n{% endfor %}\nend\n";
    // Ansible's default: trim_blocks only.
    assert_eq!(render(body).unwrap(), "  alice\n    bob\n  end\n");
    assert_eq!(
        render(&format!("#jinja2: lstrip_blocks: True\n{body}")).unwrap(),
        "alice\nbob\nend\n"
    );
    assert_eq!(
        render(&format!("#jinja2: lstrip_blocks: True, trim_blocks: False\n{body}")).unwrap(),
        "\n\nalice\n\n\n\nbob\n\n\nend\n"
    );
    assert_eq!(
        render("#jinja2:variable_start_string:'[%', variable_end_string:'%]'\n{{ x }} [% name %]\n").unwrap(),
        "{{ x }} web\n"
    );
    assert_eq!(
        render("#jinja2: keep_trailing_newline: True\n{{ name }}\n").unwrap(),
        "web\n"
    );
    assert_eq!(
        render("#jinja2: newline_sequence: '\\r\\n'\na\n{{ name }}\n").unwrap(),
        "a\r\nweb\r\n"
    );
    // Errors: an unknown key, a value that is not a literal; line numbers
    // count the header.
    let e = render("#jinja2: lstrip: True\nx\n").unwrap_err();
    assert!(
        e.msg.contains("invalid \"#jinja2:\" override key `lstrip`"),
        "{}",
        e.msg
    );
    let e = render("#jinja2: trim_blocks: yes\nx\n").unwrap_err();
    assert!(e.msg.contains("not a Python literal"), "{}", e.msg);
    let e = render("#jinja2: trim_blocks: True\nok\n{{ missing }}\n").unwrap_err();
    assert_eq!(e.loc.line, 3, "{e}");
    assert!(e.msg.contains("'missing' is undefined"), "{}", e.msg);
    // The lookup applies the header too.
    let lc = lookup_ctx(dir.path());
    std::fs::write(&p, format!("#jinja2: lstrip_blocks: True\n{body}")).unwrap();
    assert_eq!(
        t.render_str("{{ lookup('template', 't.j2') }}", &lc, &loc()).unwrap(),
        json!("alice\nbob\nend\n")
    );
}

#[test]
fn fileglob_searches_files_then_dir_and_returns_absolute_paths() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("role/files/sub")).unwrap();
    std::fs::create_dir_all(d.join("files")).unwrap();
    std::fs::write(d.join("role/files/sub/r.conf"), "").unwrap();
    std::fs::write(d.join("files/p.txt"), "").unwrap();
    std::fs::write(d.join("top.txt"), "").unwrap();
    let search = vec![d.join("role"), d.to_path_buf()];
    let found = |pat: &str| crate::template::fileglob_paths(pat, &search).unwrap();
    let abs = |rel: &str| d.join(rel).display().to_string();
    // `<dir>/files` before `<dir>`, the first place with matches wins.
    assert_eq!(found("*.txt"), vec![abs("files/p.txt")]);
    assert_eq!(found("top.*"), vec![abs("top.txt")]);
    assert_eq!(found("sub/*.conf"), vec![abs("role/files/sub/r.conf")]);
    assert_eq!(found("nothing*"), Vec::<String>::new());
    // Relative search directories still give absolute paths.
    let cwd = std::env::current_dir().unwrap();
    let rel = crate::template::fileglob_paths("src/main.rs", &[PathBuf::from(".")]).unwrap();
    assert_eq!(rel, vec![cwd.join("src/main.rs").display().to_string()]);
}

#[test]
fn undefined_errors_name_the_variable_and_the_object_type() {
    let t = Templar::new();
    let c = ctx(vars());
    let msg = |s: &str| t.render_str(s, &c, &loc()).unwrap_err().msg;
    assert!(
        msg("{{ missing }}").ends_with("'missing' is undefined"),
        "{}",
        msg("{{ missing }}")
    );
    assert!(msg("{{ missing | upper }}").ends_with("'missing' is undefined"));
    assert!(
        msg("{{ missing + 1 }}").ends_with("'missing' is undefined"),
        "{}",
        msg("{{ missing + 1 }}")
    );
    for (src, want) in [
        ("{{ foo.bar }}", "object of type 'dict' has no attribute 'bar'"),
        ("a {{ foo.nested.zz }} b", "object of type 'dict' has no attribute 'zz'"),
        ("{{ foo.a.x }}", "object of type 'int' has no attribute 'x'"),
        ("{{ foo['bar'] }}", "object of type 'dict' has no attribute 'bar'"),
        ("{{ users[5] }}", "object of type 'list' has no attribute 5"),
        ("{{ name.x }}", "object of type 'str' has no attribute 'x'"),
    ] {
        let m = msg(src);
        assert!(m.ends_with(want), "{src}: {m}");
    }
    // In a template file: its path and line.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.j2");
    std::fs::write(&p, "one\nval={{ foo.bar }}\n").unwrap();
    let e = t.render_file(&p, None, &c).unwrap_err();
    assert_eq!((e.loc.line, e.loc.col), (2, 8), "{e}");
    assert!(
        e.msg.ends_with("object of type 'dict' has no attribute 'bar'"),
        "{}",
        e.msg
    );
    let lc = lookup_ctx(dir.path());
    let e = t
        .render_str("{{ lookup('template', 't.j2') }}", &lc, &loc())
        .unwrap_err();
    assert!(
        e.msg.contains(&format!(
            "{}:2: object of type 'dict' has no attribute 'bar'",
            p.display()
        )),
        "{}",
        e.msg
    );
}

#[test]
fn csvfile_lookup_reads_rows_as_python_csv() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("role/files")).unwrap();
    std::fs::write(
        d.join("role/files/people.csv"),
        "# Last,First\nSmith,Jane,1\n\"German von Lastname\",Demo,2\n\"\"\"The Rock\"\" Johnson\",Dwayne,3\r\n",
    )
    .unwrap();
    std::fs::write(d.join("role/files/tabs.csv"), "fruit\tbananas\nelectronics\ttvs\n").unwrap();
    let t = Templar::new();
    let c = lookup_ctx(d);
    let r = |s: &str| t.render_str(s, &c, &loc()).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(
        r("{{ lookup('csvfile', 'Smith', file='people.csv', delimiter=',') }}"),
        json!("Jane")
    );
    assert_eq!(
        r("{{ lookup('csvfile', 'Jane', file='people.csv', delimiter=',', col=0, keycol=1) }}"),
        json!("Smith")
    );
    // Old k=v syntax: the words that are not options are the key.
    assert_eq!(
        r("{{ lookup('csvfile', 'German von Lastname file=people.csv delimiter=, col=1') }}"),
        json!("Demo")
    );
    assert_eq!(
        r(r#"{{ lookup('csvfile', '"The Rock" Johnson file=people.csv delimiter=, col=1') }}"#),
        json!("Dwayne")
    );
    assert_eq!(
        r("{{ lookup('csvfile', 'electronics', 'fruit', file='tabs.csv', delimiter='TAB') }}"),
        json!("tvs,bananas")
    );
    assert_eq!(
        r("{{ lookup('csvfile', 'nope file=people.csv delimiter=,') }}"),
        json!([])
    );
    assert_eq!(
        r("{{ lookup('csvfile', 'nope file=people.csv delimiter=, default=what?') }}"),
        json!("what?")
    );
    let e = |s: &str| t.render_str(s, &c, &loc()).unwrap_err().msg;
    assert!(e("{{ lookup('csvfile', file='people.csv') }}").contains("Search key is required"));
    assert!(e("{{ lookup('csvfile', 'x thisarg=1 file=people.csv') }}").contains("'thisarg' is not a valid option"));
    assert!(e("{{ lookup('csvfile', 'x file=people.csv col=2,') }}").contains("has an invalid value"));
    assert!(e("{{ lookup('csvfile', 'x', file='nope.csv') }}").contains("No such file or directory"));
}

#[test]
fn varnames_lookup_searches_visible_names() {
    let t = Templar::new();
    let c = ctx(json!({"qz_1": 1, "qz_2": 2, "qa_1": 3, "qz_": 4}));
    let r = |s: &str| t.render_str(s, &c, &loc()).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(
        r("{{ lookup('varnames', '^qz_.+', wantlist=True) | sort }}"),
        json!(["qz_1", "qz_2"])
    );
    assert_eq!(
        r("{{ query('varnames', '^q.*_\\d') | sort }}"),
        json!(["qa_1", "qz_1", "qz_2"])
    );
    assert_eq!(r("{{ query('varnames', '^nothing') }}"), json!([]));
    let e = |s: &str| t.render_str(s, &c, &loc()).unwrap_err().msg;
    assert!(e("{{ lookup('varnames', true) }}").contains("Invalid setting identifier"));
    let m = e("{{ lookup('varnames', '*') }}");
    assert!(m.contains("Unable to use") && m.contains("nothing to repeat"), "{m}");
}

#[test]
fn vars_lookup_names_missing_and_non_string_terms() {
    let t = Templar::new();
    let c = ctx(json!({"a": 1}));
    let e = |s: &str| t.render_str(s, &c, &loc()).unwrap_err().msg;
    assert!(e("{{ lookup('vars', 'nope') }}").contains("No variable named 'nope' was found."));
    assert!(e("{{ lookup('vars', 42) }}").contains("Variable name must be 'str' not 'int'"));
    let r = t
        .render_str("{{ lookup('vars', 'nope', default='d') }}", &c, &loc())
        .unwrap();
    assert_eq!(r, json!("d"));
}

#[test]
fn template_lookup_includes_from_its_search_path_with_own_delimiters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("role/templates")).unwrap();
    std::fs::write(d.join("role/templates/hello.txt"), "Hello {% include 'world.txt' %}!").unwrap();
    std::fs::write(d.join("role/templates/world.txt"), "world").unwrap();
    std::fs::write(
        d.join("role/templates/custom.txt"),
        "Hello [% name %] {{ raw }}[# gone #]",
    )
    .unwrap();
    std::fs::write(d.join("role/templates/none.j2"), "{# nothing #}\n").unwrap();
    std::fs::write(
        d.join("role/templates/me.j2"),
        "{{ template_path }} {{ ansible_managed }}",
    )
    .unwrap();
    let t = Templar::new();
    let c = lookup_ctx(d);
    let r = |s: &str| t.render_str(s, &c, &loc()).unwrap_or_else(|e| panic!("{s}: {e}"));
    assert_eq!(r("{{ lookup('template', 'hello.txt') }}"), json!("Hello world!"));
    assert_eq!(
        r(
            "{{ lookup('template', 'custom.txt', variable_start_string='[%', variable_end_string='%]', \
           comment_start_string='[#', comment_end_string='#]') }}"
        ),
        json!("Hello web {{ raw }}")
    );
    assert_eq!(r("{{ lookup('template', 'none.j2') is none }}"), json!(true));
    assert_eq!(r("{{ lookup('template', 'me.j2') }}"), json!("me.j2 Ansible managed"));
}

#[test]
fn ini_lookup_reads_ini_and_properties_files_as_configparser() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("role/files")).unwrap();
    std::fs::write(
        d.join("role/files/app.ini"),
        "[global]\n# comment\nvalue1=one\nfield.with.space = spaced out\nhome: /home\ndir: %(home)s/me\n\
         [section1]\nvalue1=s1/v1\nvalue2=s1/v2\nother=o\n",
    )
    .unwrap();
    std::fs::write(d.join("role/files/dup.ini"), "[dup]\nname = a\nNAME = b\n").unwrap();
    std::fs::write(d.join("role/files/my.ini"), "[flags]\nuser = mysql\nbare\n").unwrap();
    std::fs::write(d.join("role/files/app.properties"), "value1=p1\nvalue.dot = dotted\n").unwrap();
    // "été" in Latin-1.
    std::fs::write(d.join("role/files/latin.ini"), b"[global]\nu=\xe9t\xe9\n").unwrap();
    let t = Templar::new();
    let c = lookup_ctx(d);
    let r = |s: &str| t.render_str(s, &c, &loc()).unwrap_or_else(|e| panic!("{s}: {e}"));
    let e = |s: &str| t.render_str(s, &c, &loc()).unwrap_err().msg;
    assert_eq!(r("{{ lookup('ini', 'value1', file='app.ini') }}"), json!("one"));
    assert_eq!(
        r("{{ lookup('ini', 'VALUE1', section='section1', file='app.ini') }}"),
        json!("s1/v1")
    );
    assert_eq!(r("{{ lookup('ini', 'dir', file='app.ini') }}"), json!("/home/me"));
    assert_eq!(
        r("{{ lookup('ini', 'dir', file='app.ini', interpolation=false) }}"),
        json!("%(home)s/me")
    );
    // Inline options; `re` matches option names from their start.
    assert_eq!(
        r("{{ lookup('ini', 'field.with.space  section=global file=app.ini') }}"),
        json!("spaced out")
    );
    assert_eq!(
        r("{{ lookup('ini', 'value[1-2] section=section1 file=app.ini re=true') }}"),
        json!("s1/v1,s1/v2")
    );
    assert_eq!(
        r("{{ lookup('ini', 'value1 type=properties file=app.properties') }}"),
        json!("p1")
    );
    assert_eq!(
        r("{{ lookup('ini', 'value.dot', type='properties', file='app.properties') }}"),
        json!("dotted")
    );
    assert_eq!(
        r("{{ lookup('ini', 'nope default=dflt file=app.ini') }}"),
        json!("dflt")
    );
    assert_eq!(
        r("{{ lookup('ini', 'u encoding=iso8859-1 file=latin.ini') }}"),
        json!("été")
    );
    assert_eq!(
        r("{{ lookup('ini', 'NAME', section='dup', file='dup.ini', case_sensitive=True) }}"),
        json!("b")
    );
    // A key without a value (allow_no_value) gives nothing.
    assert_eq!(
        r("{{ lookup('ini', 'bare', section='flags', file='my.ini', allow_none=True) }}"),
        json!([])
    );
    assert!(e("{{ lookup('ini', 'user', section='flags', file='my.ini') }}").contains("parsing errors"));
    assert!(e("{{ lookup('ini', 'name', section='dup', file='dup.ini') }}").contains("Duplicate option in 'dup.ini'."));
    assert!(
        e("{{ lookup('ini', 'x', section='missing', file='app.ini', case_sensitive=True) }}")
            .contains("No section 'missing' in 'app.ini'.")
    );
    assert!(e("{{ lookup('ini', 'file=app.ini', 'value1') }}").contains("No key to look up was provided"));
    assert!(e("{{ lookup('ini', 'invalid=option') }}").contains("'invalid' is not a valid option."));
}

#[test]
fn undefined_values_inside_results_name_their_cause() {
    // map(attribute=...) on an item without it: Ansible's message.
    let e = err("{{ [{'name': 'a'}, {'other': 'b'}] | map(attribute='name') }}");
    assert!(e.msg.contains("object of type 'dict' has no attribute 'name'"), "{e}");
    // With a default, or filtered out, nothing is undefined.
    assert_eq!(
        r("{{ [{'name': 'a'}, {'other': 'b'}] | map(attribute='name', default='-') | list }}"),
        json!(["a", "-"])
    );
    assert_eq!(
        r("{{ [{'name': 'a'}, {'other': 'b'}] | map(attribute='name') | select('defined') | list }}"),
        json!(["a"])
    );
    // An undefined variable inside a list in text fails, naming it.
    let e = err("{{ [{'key': nested_and_undefined}] }} second_node");
    assert!(e.msg.contains("'nested_and_undefined' is undefined"), "{e}");
    // Python's message for a division by zero.
    let e = err("{{ 5 / 0 }}");
    assert!(e.msg.contains("division by zero"), "{e}");
}
