#!/usr/bin/env python3
"""Import-cycle check for the rigger library crate: no two files under src/
may depend on each other, directly or through other files.

Why: data flows one way (cli -> config -> runner -> modules -> connection).
A cycle between files means two files know each other; the fix is to move
what both sides need one layer down (see STYLE.md), not to merge the files.

The rule, precisely:
- Nodes are the files of the library crate: src/lib.rs and every file reached
  from it through `mod x;` declarations (`x.rs` or `x/mod.rs`, next to a
  mod.rs/lib.rs or in the folder named after a non-mod.rs file).
  src/main.rs and src/bin/ are other crates: they reach the library only as
  `rigger::..`, so they cannot be part of a cycle and are not read.
- An edge A -> B exists when file A names a path that resolves into file B:
  a `use` declaration (`use crate::..`, `use super::..`, `use self::..`,
  `use child::..`, with `{..}` groups, `as` renames and `*` globs expanded),
  or a path in code (`crate::a::b::f(..)`, `super::x::Y`, `self::m::Z`,
  `child::f(..)` where `child` is a module declared in the current module,
  macro_rules! bodies included), or a path in an attribute's string
  (`#[serde(deserialize_with = "super::args::de_bool")]`; not `#[doc]`).
- A path that names a module resolves to that module's file; a path that
  names an item resolves to the file of the deepest module in the path
  (`crate::template::filters::to_json` -> src/template/filters.rs,
  `crate::template::render` -> src/template/mod.rs). A re-export is an item
  of the re-exporting module, so `use crate::error::Loc` is an edge to
  src/error.rs even if error.rs only re-exports Loc. Inline `mod x { .. }`
  blocks belong to their file. `crate::name!` for a `#[macro_export]` macro
  resolves to the file that defines the macro.
- `mod x;` declarations are NOT edges (a parent declaring a child is the
  module tree, not a dependency). A self-edge is not a cycle.
- Items marked `#[cfg(test)]` are ignored: `#[cfg(test)] mod tests { .. }`
  blocks, `#[cfg(test)] mod tests;` files (and everything below them), and
  any other `#[cfg(test)]` item or `use`. Test code may reach anywhere.
- `$crate::..` inside macro bodies is not an edge (it is resolved where the
  macro is used, and that use already points at the macro's file).
- A path may start with a module a `use` bound to a name (`use crate::a;`
  then `a::b::f()` is an edge to a/b.rs, `use super::x as y;` then `y::..`)
  or one a glob `use m::*` brought in. `use` declarations inside functions
  count for their whole module.
- Comments, strings and char literals are skipped.

The check finds the strongly connected components of this graph (Tarjan);
every component of more than one file is reported with its files, each edge
inside it with one example line, and one shortest cycle through each edge.
Exit status: 0 no cycle, 1 cycles found, 2 usage or parse error.

Usage:
  scripts/check-cycles.py [--root DIR]   check DIR/src/lib.rs (default: repo root)
  scripts/check-cycles.py --self-test    check the checker on tiny temporary crates
"""

import os
import re
import sys
import tempfile
from collections import deque

# --------------------------------------------------------------------------
# Lexer: Rust source -> tokens (kind, text, line). Comments, string, char and
# number literals are dropped; lifetimes are dropped; `::` is one token.


class ParseError(Exception):
    pass


def _is_ident_start(c):
    return c == "_" or c.isalpha()


def _is_ident_char(c):
    return c == "_" or c.isalnum()


def tokenize(src, path="<src>"):
    toks = []
    i, n, line = 0, len(src), 1

    def skip_string(j, raw_hashes=None):
        """j is just after the opening quote; returns index after the closing one."""
        nonlocal line
        while j < n:
            c = src[j]
            if c == "\n":
                line += 1
            if raw_hashes is None:
                if c == "\\":
                    if j + 1 < n and src[j + 1] == "\n":
                        line += 1
                    j += 2
                    continue
                if c == '"':
                    return j + 1
            elif c == '"' and src[j + 1 : j + 1 + raw_hashes] == "#" * raw_hashes:
                return j + 1 + raw_hashes
            j += 1
        raise ParseError(f"{path}:{line}: unterminated string")

    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    if src[j] == "\n":
                        line += 1
                    j += 1
            i = j
        elif c == '"':
            start_line = line
            j = skip_string(i + 1)
            # kept for paths in attributes: #[serde(deserialize_with = "super::f")]
            toks.append(("s", src[i + 1 : j - 1], start_line))
            i = j
        elif c == "'":
            # char literal ('a', '\n', '\u{1F600}') or lifetime/label ('a, 'static)
            if i + 1 < n and src[i + 1] == "\\":
                j = i + 2
                while j < n and src[j] != "'":
                    j += 1
                i = j + 1
            elif i + 2 < n and src[i + 2] == "'":
                i += 3
            else:
                j = i + 1
                while j < n and _is_ident_char(src[j]):
                    j += 1
                i = j
        elif c.isdigit():
            j = i
            while j < n and (_is_ident_char(src[j])):
                j += 1
            i = j
        elif _is_ident_start(c):
            j = i
            while j < n and _is_ident_char(src[j]):
                j += 1
            word = src[i:j]
            if word in ("r", "br", "cr") and j < n and src[j] in "#\"":
                k = j
                while k < n and src[k] == "#":
                    k += 1
                if k < n and src[k] == '"':
                    i = skip_string(k + 1, raw_hashes=k - j)
                    continue
                if word == "r" and k == j + 1 and k < n and _is_ident_start(src[k]):
                    # raw identifier r#name
                    m = k
                    while m < n and _is_ident_char(src[m]):
                        m += 1
                    toks.append(("id", src[k:m], line))
                    i = m
                    continue
            if word in ("b", "c") and j < n and src[j] == '"':
                i = skip_string(j + 1)
                continue
            if word == "b" and j < n and src[j] == "'":
                k = j + 1
                if k < n and src[k] == "\\":
                    k += 1
                k += 1
                while k < n and src[k] != "'":
                    k += 1
                i = k + 1
                continue
            toks.append(("id", word, line))
            i = j
        elif src.startswith("::", i):
            toks.append(("p", "::", line))
            i += 2
        else:
            toks.append(("p", c, line))
            i += 1
    return toks


# --------------------------------------------------------------------------
# Parser: one file's tokens -> module declarations and path references, each
# with the module scope (inline `mod x { }` blocks included) it appears in.

OPEN = {"(": ")", "[": "]", "{": "}"}
CLOSE = {")", "]", "}"}
PATH_ROOTS = ("crate", "super", "self")
ITEM_QUALIFIERS = {"pub", "unsafe", "async", "extern", "default", "auto"}
SEMI_ITEMS = {"use", "const", "static", "let", "type"}
ATTR_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(::[A-Za-z_][A-Za-z0-9_]*)+$")


class FileInfo:
    def __init__(self):
        self.mods = []  # (scope tuple, name, is_test, is_inline)
        self.refs = []  # (scope tuple, segments list, line, is_use, is_macro, name a use binds)
        self.macros = set()  # #[macro_export] macro_rules! names


def _match_close(toks, i):
    """toks[i] is an opener; returns index of its matching closer."""
    depth = 0
    for j in range(i, len(toks)):
        t = toks[j][1] if toks[j][0] == "p" else None
        if t in OPEN:
            depth += 1
        elif t in CLOSE:
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def _skip_qualifiers(toks, j):
    """Skips `pub`, `pub(crate)`, `unsafe`, `async`, `extern "C"`, `const fn`..."""
    while j < len(toks) and toks[j][0] == "id":
        t = toks[j][1]
        nxt = toks[j + 1][1] if j + 1 < len(toks) else ""
        if t == "pub" and nxt == "(":
            j = _match_close(toks, j + 1) + 1
        elif t in ITEM_QUALIFIERS or (t == "const" and nxt in ("fn", "unsafe", "async", "extern")):
            j += 1
        else:
            break
    return j


def _item_end(toks, i):
    """End (inclusive) of the item starting at toks[i] (after its attributes)."""
    j = _skip_qualifiers(toks, i)
    semi_only = j < len(toks) and toks[j][1] in SEMI_ITEMS
    while j < len(toks):
        t = toks[j][1] if toks[j][0] == "p" else None
        if t == ";":
            return j
        if t in OPEN:
            k = _match_close(toks, j)
            if t == "{" and not semi_only:
                return k
            j = k + 1
            continue
        if t in CLOSE:  # end of the enclosing block: an item without terminator
            return j - 1
        j += 1
    return len(toks) - 1


def _parse_use_tree(toks, i, prefix, out):
    """Parses a use tree at toks[i]; appends (full path, bound name or None)
    to out; returns the next index."""
    segs = list(prefix)
    while True:
        kind, t, _ = toks[i]
        if t == "::":
            i += 1
            continue
        if t == "*":
            out.append((segs + ["*"], None))
            return i + 1
        if t == "{":
            i += 1
            while toks[i][1] != "}":
                i = _parse_use_tree(toks, i, segs, out)
                if toks[i][1] == ",":
                    i += 1
            return i + 1
        if kind == "id":
            segs.append(t)
            i += 1
            if toks[i][1] == "::":
                i += 1
                continue
            # `self` inside a group names the group's prefix itself
            if segs[-1] == "self" and len(segs) > 1:
                segs.pop()
            name = segs[-1]
            if toks[i][1] == "as":
                name = toks[i + 1][1] if toks[i + 1][1] != "_" else None
                i += 2
            out.append((segs, name))
            return i
        raise ParseError(f"line {toks[i][2]}: unexpected {t!r} in use")


def parse_file(src, path):
    toks = tokenize(src, path)
    info = FileInfo()
    scope_stack = []  # (scope tuple, index of closing brace)
    scope = ()
    pending_test = False
    pending_macro_export = False
    skip_until = -1  # a #[cfg(test)] item: skip through this token index
    i, n = 0, len(toks)

    def tok(k):
        return toks[k][1] if 0 <= k < n else ""

    while i < n:
        while scope_stack and i > scope_stack[-1][1]:
            scope_stack.pop()
            scope = scope_stack[-1][0] if scope_stack else ()
        kind, t, line = toks[i]
        if i <= skip_until:
            i += 1
            continue

        # attributes: #[..] and #![..]
        if t == "#" and (tok(i + 1) == "[" or (tok(i + 1) == "!" and tok(i + 2) == "[")):
            start = i + 1 if tok(i + 1) == "[" else i + 2
            end = _match_close(toks, start)
            body = [x[1] for x in toks[start + 1 : end]]
            if not pending_test and body[:1] != ["doc"]:
                for k in range(start + 1, end):
                    if toks[k][0] == "s" and ATTR_PATH.match(toks[k][1]):
                        segs = toks[k][1].split("::")
                        info.refs.append((scope, segs, toks[k][2], False, False, None))
            if body == ["cfg", "(", "test", ")"]:
                if tok(i + 1) == "!":
                    return None  # the whole file is test-only
                pending_test = True
            if body == ["macro_export"]:
                pending_macro_export = True
            i = end + 1
            continue

        if pending_test:
            pending_test = False
            end = _item_end(toks, i)
            # `#[cfg(test)] mod x;` makes the file x test-only
            j = _skip_qualifiers(toks, i)
            if tok(j) == "mod" and toks[j + 1][0] == "id":
                info.mods.append((scope, tok(j + 1), True, tok(j + 2) == "{"))
            skip_until = end
            i += 1
            continue

        if kind == "id" and t == "macro_rules" and tok(i + 1) == "!":
            if pending_macro_export:
                info.macros.add(tok(i + 2))
            pending_macro_export = False
            i += 3  # the body is read as code; `$crate::` is not an edge
            continue
        if kind == "id" and t not in ITEM_QUALIFIERS:
            pending_macro_export = False

        if kind == "id" and t == "mod" and toks[i + 1][0] == "id" and tok(i - 1) != "::":
            name = tok(i + 1)
            if tok(i + 2) == ";":
                info.mods.append((scope, name, False, False))
                i += 3
                continue
            if tok(i + 2) == "{":
                info.mods.append((scope, name, False, True))
                close = _match_close(toks, i + 2)
                scope = scope + (name,)
                scope_stack.append((scope, close))
                i += 3
                continue

        if kind == "id" and t == "use" and tok(i - 1) not in ("::", "."):
            j = i + 1
            if tok(j) == "::":  # `use ::std::..`: an external crate
                end = _item_end(toks, i)
                i = end + 1
                continue
            paths = []
            try:
                j = _parse_use_tree(toks, j, [], paths)
            except (ParseError, IndexError) as e:
                raise ParseError(f"{path}:{line}: cannot read this use: {e}")
            for p, name in paths:
                info.refs.append((scope, p, line, True, False, name))
            i = j
            continue

        # a path in code: `root::a::b`, not preceded by `::`, `$` or `.`
        if kind == "id" and tok(i + 1) == "::" and tok(i - 1) not in ("::", "$", "."):
            segs = [t]
            j = i + 1
            while tok(j) == "::" and j + 1 < n and toks[j + 1][0] == "id":
                segs.append(tok(j + 1))
                j += 2
            is_macro = tok(j) == "!"
            info.refs.append((scope, segs, line, False, is_macro, None))
            i = j
            continue
        i += 1
    return info


# --------------------------------------------------------------------------
# Crate model: module tree from lib.rs, then resolve every reference.


class Crate:
    def __init__(self, root):
        self.root = root
        self.src = os.path.join(root, "src")
        self.file_of = {}  # module path tuple -> file (relative), inline ones too
        self.file_modules = {}  # module path tuple -> file, only modules with a file
        self.infos = {}  # file -> FileInfo
        self.lines = {}  # file -> list of source lines
        self.macro_file = {}  # exported macro name -> file
        self.test_only = set()  # module paths declared #[cfg(test)]
        self._load(os.path.join(self.src, "lib.rs"), ())

    def rel(self, path):
        return os.path.relpath(path, self.root)

    def _load(self, path, modpath):
        rel = self.rel(path)
        with open(path, encoding="utf-8") as f:
            src = f.read()
        info = parse_file(src, rel)
        if info is None:
            return
        self.infos[rel] = info
        self.lines[rel] = src.splitlines()
        self.file_of[modpath] = rel
        self.file_modules[modpath] = rel
        for name in info.macros:
            self.macro_file[name] = rel
        base = os.path.basename(path)
        if base in ("lib.rs", "main.rs", "mod.rs"):
            folder = os.path.dirname(path)
        else:
            folder = os.path.join(os.path.dirname(path), base[:-3])
        for scope, name, is_test, inline in info.mods:
            child = modpath + scope + (name,)
            if is_test:
                self.test_only.add(child)
                continue
            if inline:
                self.file_of[child] = rel
                continue
            d = os.path.join(folder, *scope)
            for cand in (os.path.join(d, name + ".rs"), os.path.join(d, name, "mod.rs")):
                if os.path.isfile(cand):
                    self._load(cand, child)
                    break
            else:
                raise ParseError(f"{rel}: module {name} declared but no file found in {self.rel(d)}")

    def module_path_of_file(self, rel):
        for m, f in self.file_modules.items():
            if f == rel:
                return m
        raise KeyError(rel)

    def resolve_module(self, modscope, segs, names):
        """The module path that segs names, with the names in scope, or None
        (an item, or outside the crate)."""
        if not segs:
            return None
        head = segs[0]
        if head == "crate":
            cur, rest = (), segs[1:]
        elif head in ("self", "super"):
            cur, rest = modscope, segs
            while rest and rest[0] in ("self", "super"):
                if rest[0] == "super":
                    if not cur:
                        return None
                    cur = cur[:-1]
                rest = rest[1:]
        elif modscope + (head,) in self.file_of:
            cur, rest = modscope, segs
        elif head in names.get(modscope, {}):
            cur, rest = names[modscope][head], segs[1:]
        else:
            for g in names.get((modscope, "*"), ()):
                if g + (head,) in self.file_of:
                    cur, rest = g, segs
                    break
            else:
                return None  # std, an external crate, a type, a local name
        while rest and cur + (rest[0],) in self.file_of:
            cur, rest = cur + (rest[0],), rest[1:]
        return cur, rest

    def resolve(self, modscope, segs, is_macro, names):
        """Module path + segments -> target file, or None (external/unknown)."""
        found = self.resolve_module(modscope, segs, names)
        if found is None:
            return None
        cur, rest = found
        if cur == () and rest and rest[0] in self.macro_file and (is_macro or len(rest) == 1):
            return self.macro_file[rest[0]]
        return self.file_of.get(cur)

    def names_in_scope(self, modpath, info):
        """The modules that `use` declarations bind to a name, per scope:
        {scope: {name: module path}} and {(scope, "*"): [glob-imported modules]}."""
        names = {}
        for _ in range(3):  # a use may name what another use binds
            for scope, segs, _line, is_use, _m, name in info.refs:
                if not is_use:
                    continue
                full = modpath + scope
                glob = segs[-1] == "*"
                found = self.resolve_module(full, segs[:-1] if glob else segs, names)
                if found is None or found[1]:
                    continue  # not a module
                if glob:
                    gl = names.setdefault((full, "*"), [])
                    if found[0] not in gl:
                        gl.append(found[0])
                elif name:
                    names.setdefault(full, {})[name] = found[0]
        return names

    def edges(self):
        """{(from_file, to_file): [(line, text, is_use)]} for every cross-file edge."""
        out = {}
        for rel, info in self.infos.items():
            modpath = self.module_path_of_file(rel)
            names = self.names_in_scope(modpath, info)
            for scope, segs, line, is_use, is_macro, _name in info.refs:
                target = self.resolve(modpath + scope, segs, is_macro, names)
                if target is None or target == rel:
                    continue
                text = self.lines[rel][line - 1].strip()
                out.setdefault((rel, target), []).append((line, text, is_use))
        return out


# --------------------------------------------------------------------------
# Tarjan's strongly connected components (iterative).


def tarjan(nodes, succ):
    index, low, on_stack, stack, sccs = {}, {}, set(), [], []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(succ.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(succ.get(w, ()))))
                    advanced = True
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                sccs.append(sorted(comp))
    return sccs


def shortest_path(succ, start, goal, allowed):
    prev = {start: None}
    q = deque([start])
    while q:
        v = q.popleft()
        if v == goal:
            path = []
            while v is not None:
                path.append(v)
                v = prev[v]
            return path[::-1]
        for w in sorted(succ.get(v, ())):
            if w in allowed and w not in prev:
                prev[w] = v
                q.append(w)
    return None


def find_cycles(crate):
    """Returns (edges, groups): groups is a list of (files, internal edges, cycles)."""
    edges = crate.edges()
    succ = {}
    for a, b in edges:
        succ.setdefault(a, set()).add(b)
    nodes = sorted(crate.infos)
    groups = []
    for comp in tarjan(nodes, succ):
        if len(comp) < 2:
            continue
        members = set(comp)
        internal = sorted((a, b) for (a, b) in edges if a in members and b in members)
        cycles, seen = [], set()
        for a, b in internal:
            back = shortest_path(succ, b, a, members)
            cyc = [a] + back  # a -> b -> ... -> a
            ring = cyc[:-1]
            k = ring.index(min(ring))
            key = tuple(ring[k:] + ring[:k])
            if key not in seen:
                seen.add(key)
                cycles.append(list(key) + [key[0]])
        groups.append((comp, internal, sorted(cycles, key=lambda c: (len(c), c))))
    groups.sort(key=lambda g: g[0])
    return edges, groups


def example(refs):
    """One example line for an edge: the first `use`, else the first path in code."""
    uses = [r for r in refs if r[2]]
    line, text, _ = min(uses or refs)
    return line, text


def report(crate, out=sys.stdout):
    edges, groups = find_cycles(crate)
    if not groups:
        out.write(f"check-cycles: no import cycles between {len(crate.infos)} files ({len(edges)} edges)\n")
        return 0
    out.write(f"check-cycles: {len(groups)} group(s) of files that import each other\n")
    for n, (files, internal, cycles) in enumerate(groups, 1):
        out.write(f"\ncycle group {n} ({len(files)} files):\n")
        for f in files:
            out.write(f"  {f}\n")
        out.write("  edges:\n")
        for a, b in internal:
            line, text = example(edges[(a, b)])
            out.write(f"    {a} -> {b}\n      {a}:{line}: {text}\n")
        out.write("  cycles (one shortest through each edge):\n")
        for c in cycles:
            out.write("    " + " -> ".join(c) + "\n")
    return 1


# --------------------------------------------------------------------------
# Self-test: tiny crates with known answers.

SELF_TESTS = [
    (
        "acyclic: mod declarations, cfg(test), comments, strings, macros, $crate, names bound by use",
        {
            "lib.rs": "#[macro_use]\nmod out;\npub mod a;\npub mod b;\npub mod c;\npub mod d;\n",
            "c/mod.rs": "pub mod deep;\n",
            "c/deep.rs": "pub fn f() {}\n",
            "d/mod.rs": "pub mod deep;\n",
            "d/deep.rs": "pub fn f() {}\n",
            "out.rs": (
                "#[macro_export]\nmacro_rules! say { ($e:expr) => { $crate::b::x($e) } }\n"
            ),
            "a/mod.rs": (
                "mod inner;\n"
                "use crate::b::{self, Thing as T};\n"
                "// use crate::a::inner::loop_back;\n"
                "/* crate::a::inner::f() /* nested */ crate::a::inner::g() */\n"
                'const S: &str = "super::inner::x crate::a::inner::y";\n'
                "const C: char = '\"';\n"
                "fn f<'a>(x: &'a str) { crate::say!(x); b::x(1); }\n"
                "#[cfg(test)]\nmod tests { use crate::a::inner::*; }\n"
            ),
            "a/inner.rs": (
                "use super::super::b::x;\n"
                "use crate::c;\nuse crate::d::*;\n"
                "fn g() { c::deep::f(); deep::f(); }\n"
                "#[cfg(test)]\nuse crate::a::f;\n"
                'fn r() -> &\'static str { r#"crate::a::f()"# }\n'
            ),
            "b.rs": "pub struct Thing;\npub fn x(_: i32) {}\n#[cfg(test)]\nmod t;\n",
            "b/t.rs": "use crate::a::f;\n",
        },
        {
            ("src/a/mod.rs", "src/b.rs"),
            ("src/a/inner.rs", "src/b.rs"),
            ("src/a/inner.rs", "src/c/mod.rs"),
            ("src/a/inner.rs", "src/c/deep.rs"),
            ("src/a/inner.rs", "src/d/mod.rs"),
            ("src/a/inner.rs", "src/d/deep.rs"),
            ("src/a/mod.rs", "src/out.rs"),
        },
        0,
    ),
    (
        "cycles: use super, inline crate path, group use, child path, deepest module",
        {
            "lib.rs": "mod app;\nmod check;\nmod t;\nmod w;\n",
            "app.rs": "pub fn load() {}\npub fn go() { crate::check::run(); }\n",
            "check.rs": "use crate::{app::load, t};\npub fn run() { load(); }\n",
            "t/mod.rs": "mod filters;\nmod tests;\npub fn truthy() {}\nfn f() { filters::f(); }\n",
            "t/filters.rs": "pub fn f() { super::tests::g(); }\n",
            "t/tests.rs": "use super::truthy;\npub fn g() {}\n",
            "w/mod.rs": "pub mod collect;\npub mod q;\npub mod store;\n",
            "w/collect.rs": "pub fn key() {}\npub mod inner { pub fn z() { super::super::store::s(); } }\n",
            "w/store.rs": (
                "use crate::w::collect::inner::z;\npub fn s() {}\n"
                '#[derive(serde::Deserialize)]\nstruct P { #[serde(deserialize_with = "super::q::de")] a: u8 }\n'
            ),
            "w/q.rs": "pub fn de() {}\n#[doc = \"crate::w::store::s\"]\nfn d() {}\n",
        },
        {
            ("src/app.rs", "src/check.rs"),
            ("src/check.rs", "src/app.rs"),
            ("src/check.rs", "src/t/mod.rs"),
            ("src/t/mod.rs", "src/t/filters.rs"),
            ("src/t/filters.rs", "src/t/tests.rs"),
            ("src/t/tests.rs", "src/t/mod.rs"),
            ("src/w/collect.rs", "src/w/store.rs"),
            ("src/w/store.rs", "src/w/collect.rs"),
            ("src/w/store.rs", "src/w/q.rs"),
        },
        1,
    ),
]


def self_test():
    failures = 0
    for name, files, want_edges, want_rc in SELF_TESTS:
        with tempfile.TemporaryDirectory() as d:
            for rel, text in files.items():
                p = os.path.join(d, "src", rel)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "w", encoding="utf-8") as f:
                    f.write(text)
            crate = Crate(d)
            got_edges = set(crate.edges())

            class Sink:
                text = ""

                def write(self, s):
                    self.text += s

            sink = Sink()
            rc = report(crate, sink)
        ok = got_edges == want_edges and rc == want_rc
        print(f"self-test {'ok  ' if ok else 'FAIL'} {name}")
        if not ok:
            failures += 1
            for e in sorted(want_edges - got_edges):
                print(f"  missing edge {e[0]} -> {e[1]}")
            for e in sorted(got_edges - want_edges):
                print(f"  unexpected edge {e[0]} -> {e[1]}")
            if rc != want_rc:
                print(f"  exit {rc}, want {want_rc}")
            print("  report:\n" + sink.text)
    # the cyclic crate: three groups, each found
    with tempfile.TemporaryDirectory() as d:
        for rel, text in SELF_TESTS[1][1].items():
            p = os.path.join(d, "src", rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w", encoding="utf-8") as f:
                f.write(text)
        _, groups = find_cycles(Crate(d))
        got = [g[0] for g in groups]
        want = [
            ["src/app.rs", "src/check.rs"],
            ["src/t/filters.rs", "src/t/mod.rs", "src/t/tests.rs"],
            ["src/w/collect.rs", "src/w/store.rs"],
        ]
        ok = got == want
        print(f"self-test {'ok  ' if ok else 'FAIL'} groups of the cyclic crate")
        if not ok:
            failures += 1
            print(f"  got {got}\n  want {want}")
    return 1 if failures else 0


def main(argv):
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    args = argv[1:]
    if args == ["--self-test"]:
        return self_test()
    if len(args) == 2 and args[0] == "--root":
        root = args[1]
    elif args:
        sys.stderr.write(__doc__)
        return 2
    try:
        crate = Crate(root)
    except (OSError, ParseError) as e:
        sys.stderr.write(f"check-cycles: {e}\n")
        return 2
    return report(crate)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
