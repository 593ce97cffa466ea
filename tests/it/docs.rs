//! The documentation in docs/ stays true to the binary.
//!
//! - docs/modules/ is exactly what `rigger doc --markdown` prints
//!   (regenerate with `scripts/gen-module-docs.sh`).
//! - Every example in docs/**/*.md marked runnable runs, and the test names
//!   the file and line of each example that failed. A marker is an HTML
//!   comment on the line before a fenced block:
//!
//!   | marker | block | what runs |
//!   | --- | --- | --- |
//!   | `<!-- example: playbook -->` | YAML | `rigger run FILE` against sshd test hosts, twice: the second run must report `changed=0` |
//!   | `<!-- example: syntax-check -->` | YAML | `rigger run --syntax-check FILE` (for playbooks that need what the test hosts lack) |
//!   | `<!-- example: inventory -->` | INI or YAML | `rigger inventory --list -i FILE` |
//!   | `<!-- example: shell -->` | sh | `bash -e` with `rigger` on `PATH` |
//!   | `<!-- example: file file=NAME -->` | any | nothing: saved as NAME for later examples |
//!
//!   Options after the kind: `exit=N`, the expected exit code (default 0;
//!   a playbook with `exit=N` runs once); `file=NAME`, the name the block is
//!   saved as (default `example.yml`, `example.ini` or `example.sh`). The
//!   examples of one doc run in order in one scratch directory (also `HOME`),
//!   so a shell example can use a file an earlier example saved. A fenced
//!   block right after the example, preceded by `<!-- output -->`, lists
//!   lines that must each appear (trimmed) in the command's stdout or stderr.
//!
//!   The test hosts of `playbook` examples are reached through an inventory
//!   with the groups `web` (hosts `web1`, `web2`) and `db` (host `db1`); each
//!   host has private `/srv`, `/tmp` and `/etc` (an overlay), so examples may
//!   write there. Log in as root.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::{rigger, rigger_bin, run_with_timeout, HostOpts, TestHosts};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const REGENERATE: &str = "scripts/gen-module-docs.sh";

/// The built-in modules: the first block of `rigger doc --list`.
fn module_names() -> Vec<String> {
    let (code, out, err) = rigger(&["doc", "--list"]);
    assert_eq!(code, 0, "rigger doc --list: {err}");
    out.lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}

#[test]
fn module_pages_are_current() {
    let dir = repo().join("docs/modules");
    let mut problems = Vec::new();
    let mut expected = vec![("README.md".to_string(), "doc --markdown --list".to_string())];
    for m in module_names() {
        expected.push((format!("{m}.md"), format!("doc --markdown {m}")));
    }
    for (file, args) in &expected {
        let args: Vec<&str> = args.split(' ').collect();
        let (code, want, err) = rigger(&args);
        assert_eq!(code, 0, "rigger {}: {err}", args.join(" "));
        match fs::read_to_string(dir.join(file)) {
            Ok(have) if have == want => {}
            Ok(_) => problems.push(format!("docs/modules/{file} differs from `rigger {}`", args.join(" "))),
            Err(_) => problems.push(format!("docs/modules/{file} is missing")),
        }
    }
    let mut committed: Vec<String> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    committed.sort();
    for f in committed {
        if !expected.iter().any(|(e, _)| *e == f) {
            problems.push(format!("docs/modules/{f} is not a page of any module"));
        }
    }
    assert!(
        problems.is_empty(),
        "the module reference is not current; regenerate it with `{REGENERATE}` and commit docs/modules/:\n  {}",
        problems.join("\n  ")
    );
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Playbook,
    SyntaxCheck,
    Inventory,
    Shell,
    /// Only saved, for the examples after it.
    File,
}

#[derive(Debug)]
struct Example {
    /// docs/FILE.md, relative to the repository.
    doc: String,
    /// 1-based line of the marker.
    line: usize,
    kind: Kind,
    exit: i32,
    file: String,
    body: String,
    /// Lines that must appear in the output.
    expect: Vec<String>,
}

fn parse_marker(doc: &str, line: usize, text: &str) -> Result<Option<(Kind, i32, Option<String>)>, String> {
    let Some(inner) = text
        .trim()
        .strip_prefix("<!-- example:")
        .and_then(|r| r.strip_suffix("-->"))
    else {
        return Ok(None);
    };
    let mut words = inner.split_whitespace();
    let kind = match words.next() {
        Some("playbook") => Kind::Playbook,
        Some("syntax-check") => Kind::SyntaxCheck,
        Some("inventory") => Kind::Inventory,
        Some("shell") => Kind::Shell,
        Some("file") => Kind::File,
        other => return Err(format!("{doc}:{line}: unknown example kind {other:?}")),
    };
    let (mut exit, mut file) = (0, None);
    for w in words {
        if let Some(n) = w.strip_prefix("exit=") {
            exit = n.parse().map_err(|_| format!("{doc}:{line}: bad exit={n}"))?;
        } else if let Some(f) = w.strip_prefix("file=") {
            file = Some(f.to_string());
        } else {
            return Err(format!("{doc}:{line}: unknown example option `{w}`"));
        }
    }
    if kind == Kind::File && file.is_none() {
        return Err(format!("{doc}:{line}: a `file` example needs file=NAME"));
    }
    Ok(Some((kind, exit, file)))
}

/// The fenced block starting at `lines[i]` (which must open one): its info
/// string, its text, and the index after its closing fence.
fn fenced(lines: &[&str], i: usize) -> Option<(String, String, usize)> {
    let info = lines.get(i)?.strip_prefix("```")?.trim().to_string();
    let mut body = String::new();
    for (j, l) in lines.iter().enumerate().skip(i + 1) {
        if l.trim_end() == "```" {
            return Some((info, body, j + 1));
        }
        body.push_str(l);
        body.push('\n');
    }
    None
}

fn examples_of(doc: &str, text: &str) -> Result<Vec<Example>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some((kind, exit, file)) = parse_marker(doc, i + 1, lines[i])? else {
            i += 1;
            continue;
        };
        let line = i + 1;
        let (info, body, next) = fenced(&lines, i + 1)
            .ok_or_else(|| format!("{doc}:{line}: an example marker must precede a fenced block"))?;
        let ext = match (kind, info.as_str()) {
            (Kind::Shell, _) => "sh",
            (Kind::Inventory, "ini") => "ini",
            _ => "yml",
        };
        let mut ex = Example {
            doc: doc.to_string(),
            line,
            kind,
            exit,
            file: file.unwrap_or_else(|| format!("example.{ext}")),
            body,
            expect: Vec::new(),
        };
        i = next;
        let mut j = i;
        while j < lines.len() && lines[j].trim().is_empty() {
            j += 1;
        }
        if lines.get(j).map(|l| l.trim()) == Some("<!-- output -->") {
            let (_, expected, after) = fenced(&lines, j + 1)
                .ok_or_else(|| format!("{doc}:{}: `<!-- output -->` must precede a fenced block", j + 1))?;
            ex.expect = expected
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            i = after;
        }
        out.push(ex);
    }
    Ok(out)
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir) else { return };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            markdown_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "md") {
            out.push(p);
        }
    }
}

fn all_examples() -> Vec<Example> {
    let mut files = Vec::new();
    markdown_files(&repo().join("docs"), &mut files);
    let mut out = Vec::new();
    for f in files {
        let rel = f.strip_prefix(repo()).unwrap_or(&f).display().to_string();
        let text = fs::read_to_string(&f).unwrap_or_else(|e| panic!("{rel}: {e}"));
        out.extend(examples_of(&rel, &text).unwrap_or_else(|e| panic!("{e}")));
    }
    out
}

/// The inventory of the `playbook` examples: web1, web2 in `web`, db1 in `db`.
fn docs_inventory(hosts: &TestHosts, path: &Path) {
    let line = |name: &str, i: usize| {
        format!(
            "{name} ansible_host={} ansible_port={} ansible_user=root ansible_ssh_private_key_file={}\n",
            hosts.addr(i),
            hosts.port(i),
            hosts.client_key().display()
        )
    };
    let text = format!(
        "[web]\n{}{}\n[db]\n{}",
        line("web1", 0),
        line("web2", 1),
        line("db1", 2)
    );
    fs::write(path, text).unwrap();
}

struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn run_in(dir: &Path, program: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    let bin_dir = rigger_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    cmd.env("PATH", path)
        .env("HOME", dir)
        .env("XDG_STATE_HOME", dir.join(".state"))
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .env("NO_COLOR", "1");
    for (k, _) in std::env::vars() {
        if k.starts_with("ANSIBLE_") || (k.starts_with("RIGGER_") && k != "RIGGER_SKIP_ANSIBLE_DIFF") {
            cmd.env_remove(k);
        }
    }
    let out = run_with_timeout(cmd, Duration::from_secs(180));
    Ran {
        code: if out.timed_out { None } else { out.code },
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// Runs one example; `Err` says why it failed.
fn run_example(ex: &Example, dir: &Path, inventory: &Path, known_hosts: &Path) -> Result<(), String> {
    let path = dir.join(&ex.file);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    fs::write(&path, &ex.body).map_err(|e| format!("cannot write {}: {e}", ex.file))?;
    let bin = rigger_bin();
    let inv = inventory.display().to_string();
    let kh = known_hosts.display().to_string();
    let mut runs = Vec::new();
    let shown = match ex.kind {
        Kind::Playbook => {
            let args = ["run", ex.file.as_str(), "-i", &inv, "--known-hosts", &kh];
            runs.push(run_in(dir, &bin, &args));
            if ex.exit == 0 && runs[0].code == Some(0) {
                runs.push(run_in(dir, &bin, &args));
            }
            format!("rigger run {} (against the test hosts)", ex.file)
        }
        Kind::SyntaxCheck => {
            runs.push(run_in(
                dir,
                &bin,
                &["run", "--syntax-check", &ex.file, "-i", "localhost,"],
            ));
            format!("rigger run --syntax-check {}", ex.file)
        }
        Kind::Inventory => {
            runs.push(run_in(dir, &bin, &["inventory", "--list", "-i", &ex.file]));
            format!("rigger inventory --list -i {}", ex.file)
        }
        Kind::Shell => {
            runs.push(run_in(dir, Path::new("bash"), &["-e", &ex.file]));
            format!("bash -e {}", ex.file)
        }
        Kind::File => return Ok(()),
    };
    let first = &runs[0];
    let output = |r: &Ran| format!("--- stdout ---\n{}--- stderr ---\n{}", r.stdout, r.stderr);
    if first.code != Some(ex.exit) {
        return Err(format!(
            "{shown}: exit {:?}, expected {}\n{}",
            first.code,
            ex.exit,
            output(first)
        ));
    }
    let all = format!("{}\n{}", first.stdout, first.stderr);
    let have: Vec<&str> = all.lines().map(str::trim).collect();
    for want in &ex.expect {
        if !have.contains(&want.as_str()) {
            return Err(format!(
                "{shown}: the output lacks the line `{want}`\n{}",
                output(first)
            ));
        }
    }
    if let Some(second) = runs.get(1) {
        let recap: Vec<&str> = second.stdout.lines().filter(|l| l.contains(": ok=")).collect();
        if second.code != Some(0) || recap.is_empty() || recap.iter().any(|l| !l.contains(" changed=0 ")) {
            return Err(format!(
                "{shown}: the second run must change nothing (changed=0, exit 0), got exit {:?}\n{}",
                second.code,
                output(second)
            ));
        }
    }
    Ok(())
}

#[test]
fn examples_in_the_docs_run() {
    let examples = all_examples();
    assert!(!examples.is_empty(), "no runnable examples found under docs/");
    let hosts = TestHosts::with_opts(3, HostOpts { isolated_root: true });
    let work = tempfile::tempdir().unwrap();
    let inventory = work.path().join("docs-hosts.ini");
    docs_inventory(&hosts, &inventory);
    let mut failures = Vec::new();
    let mut scratch: Option<(String, tempfile::TempDir)> = None;
    for ex in &examples {
        if scratch.as_ref().map(|(d, _)| d != &ex.doc).unwrap_or(true) {
            scratch = Some((ex.doc.clone(), tempfile::tempdir_in(work.path()).unwrap()));
        }
        let dir = scratch.as_ref().unwrap().1.path();
        if let Err(e) = run_example(ex, dir, &inventory, hosts.known_hosts()) {
            failures.push(format!("{}:{}: {:?} example failed: {e}", ex.doc, ex.line, ex.kind));
        }
    }
    eprintln!("ran {} examples from docs/", examples.len());
    assert!(
        failures.is_empty(),
        "{} of {} examples in docs/ failed:\n\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n\n")
    );
}

#[test]
fn markers_are_parsed_with_their_line() {
    let text = "# t\n\n<!-- example: syntax-check exit=1 file=a.yml -->\n```yaml\n- hosts: all\n```\n\n<!-- output -->\n```text\n  boom\n```\n";
    let ex = examples_of("docs/t.md", text).unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!((ex[0].line, ex[0].kind, ex[0].exit), (3, Kind::SyntaxCheck, 1));
    assert_eq!(ex[0].file, "a.yml");
    assert_eq!(ex[0].body, "- hosts: all\n");
    assert_eq!(ex[0].expect, vec!["boom".to_string()]);
    assert!(examples_of("docs/t.md", "<!-- example: wat -->\n```\n```\n")
        .unwrap_err()
        .contains("docs/t.md:1"));
    assert!(examples_of("docs/t.md", "<!-- example: shell -->\ntext\n")
        .unwrap_err()
        .contains("must precede a fenced block"));
}

/// Every relative link in docs/ (`[text](file.md#anchor)`) names a file that exists.
#[test]
fn links_in_the_docs_resolve() {
    let mut files = Vec::new();
    markdown_files(&repo().join("docs"), &mut files);
    let mut broken = Vec::new();
    for f in &files {
        let text = fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(repo()).unwrap_or(f).display().to_string();
        let mut in_fence = false;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
            }
            if in_fence {
                continue;
            }
            // Not inside `code spans` either.
            let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
            let mut rest = prose.as_str();
            while let Some(i) = rest.find("](") {
                rest = &rest[i + 2..];
                let Some(end) = rest.find(')') else { break };
                let target = &rest[..end];
                rest = &rest[end..];
                if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                    continue;
                }
                let path = target.split('#').next().unwrap_or(target);
                if !f.parent().unwrap().join(path).exists() {
                    broken.push(format!("{rel}:{}: `{target}` does not exist", n + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links in docs/:\n  {}", broken.join("\n  "));
}

/// The examples on the module pages load: each page's `## Examples` block,
/// as the tasks of a play, passes `rigger run --syntax-check` without a
/// warning (a misspelt option would be one).
#[test]
fn module_page_examples_load() {
    let dir = repo().join("docs/modules");
    let work = tempfile::tempdir().unwrap();
    let mut pages = Vec::new();
    markdown_files(&dir, &mut pages);
    let mut checked = 0;
    let mut problems = Vec::new();
    for page in pages {
        let text = fs::read_to_string(&page).unwrap();
        let Some(start) = text.find("## Examples\n\n```yaml\n") else {
            continue;
        };
        let body = &text[start + "## Examples\n\n```yaml\n".len()..];
        let Some(end) = body.find("\n```") else { continue };
        let mut play = String::from("- hosts: all\n  gather_facts: false\n  tasks:\n");
        for line in body[..end].lines() {
            play.push_str("    ");
            play.push_str(line);
            play.push('\n');
        }
        let name = page.file_stem().unwrap().to_string_lossy().into_owned();
        let file = work.path().join(format!("{name}.yml"));
        fs::write(&file, play).unwrap();
        let file = file.display().to_string();
        let (code, out, err) = rigger(&["run", "--syntax-check", &file, "-i", "localhost,"]);
        checked += 1;
        if code != 0 || err.contains("WARNING") {
            problems.push(format!("docs/modules/{name}.md: exit {code}\n{out}{err}"));
        }
    }
    assert!(checked > 0, "no module page has examples");
    assert!(
        problems.is_empty(),
        "module examples that do not load (fix the module's doc comment, then run {REGENERATE}):\n\n{}",
        problems.join("\n")
    );
}
