//! The core's modules (`src/*.rs`) depend on each other without cycles (issue 17), so each can
//! be read knowing only the modules below it (docs/ARCHITECTURE.md, "Module dependencies").
//!
//! A module depends on another when its code names `crate::other` (in a path or a `use`,
//! `use crate::{a, b::C}` groups included), a type the crate root re-exports from it
//! (`crate::Result` is `error`'s), or `super::` out of the file. Comments, string literals
//! and `#[cfg(test)]` items are not read: a unit test may use the whole crate. The hosts
//! (`src/python/`, `src/ffi/`) sit above the core and are not checked here.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

/// Where a dependency is named: the 1-based line of the first mention in the file.
type Edges = BTreeMap<String, BTreeMap<String, usize>>;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Punct(char),
    PathSep,
}

/// The tokens of Rust source that matter for paths, each with its line; comments, string,
/// char and raw string literals and lifetimes are dropped.
fn tokens(src: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Skips to just past `end`, counting lines on the way.
    let skip_past = |i: &mut usize, line: &mut usize, end: &dyn Fn(usize) -> Option<usize>| {
        while *i < chars.len() {
            if let Some(len) = end(*i) {
                *i += len;
                return;
            }
            if chars[*i] == '\n' {
                *line += 1;
            }
            *i += 1;
        }
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            // Block comments nest in Rust.
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            chars.get(i + 1 + hashes) == Some(&'"')
        } {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            i += 2 + hashes;
            skip_past(&mut i, &mut line, &|j| {
                (chars[j] == '"'
                    && chars[j + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes)
                    .then_some(1 + hashes)
            });
        } else if c == '"' || (c == 'b' && next == Some('"')) {
            i += if c == 'b' { 2 } else { 1 };
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if chars.get(i) == Some(&'\n') {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): both are skipped.
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), line));
        } else if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
        } else if c == ':' && next == Some(':') {
            out.push((Tok::PathSep, line));
            i += 2;
        } else {
            out.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    out
}

/// `toks` without the items marked `#[cfg(test)]` (the attribute and the item after it: up to
/// its `;` or the `}` closing its body).
fn without_test_items(toks: Vec<(Tok, usize)>) -> Vec<(Tok, usize)> {
    let is = |t: &Tok, p: char| *t == Tok::Punct(p);
    let ident = |t: &Tok, s: &str| matches!(t, Tok::Ident(x) if x == s);
    let mut out = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let cfg_test = i + 6 < toks.len()
            && is(&toks[i].0, '#')
            && is(&toks[i + 1].0, '[')
            && ident(&toks[i + 2].0, "cfg")
            && is(&toks[i + 3].0, '(')
            && ident(&toks[i + 4].0, "test")
            && is(&toks[i + 5].0, ')')
            && is(&toks[i + 6].0, ']');
        if !cfg_test {
            out.push(toks[i].clone());
            i += 1;
            continue;
        }
        i += 7;
        let mut depth = 0usize;
        while i < toks.len() {
            let t = &toks[i].0;
            i += 1;
            if is(t, '{') || is(t, '(') || is(t, '[') {
                depth += 1;
            } else if is(t, '}') || is(t, ')') || is(t, ']') {
                depth -= 1;
                if depth == 0 && is(t, '}') {
                    break;
                }
            } else if depth == 0 && is(t, ';') {
                break;
            }
        }
    }
    out
}

/// The first segments of the crate-root paths in `src` (after `crate::`, or `super::` out of
/// the file), each with the line it is on: `use crate::{a, b::{C}}` gives `a` and `b`.
fn root_names(src: &str) -> Vec<(String, usize)> {
    let toks = without_test_items(tokens(src));
    let mut names = Vec::new();
    // Braces opened by inline modules, so `super::` in them stays in the file.
    let mut braces: Vec<bool> = Vec::new();
    let mut next_brace_is_mod = false;
    let mut i = 0;
    while i < toks.len() {
        let (tok, _) = &toks[i];
        let rooted = match tok {
            Tok::Ident(s) if s == "mod" => {
                next_brace_is_mod = true;
                None
            }
            Tok::Punct(';') => {
                next_brace_is_mod = false;
                None
            }
            Tok::Punct('{') => {
                braces.push(next_brace_is_mod);
                next_brace_is_mod = false;
                None
            }
            Tok::Punct('}') => {
                braces.pop();
                None
            }
            Tok::Ident(s)
                if s == "crate" && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep) =>
            {
                Some(i + 2)
            }
            Tok::Ident(s)
                if s == "super" && toks.get(i + 1).map(|t| &t.0) == Some(&Tok::PathSep) =>
            {
                let mut supers = 0;
                let mut j = i;
                while matches!(&toks.get(j).map(|t| &t.0), Some(Tok::Ident(s)) if s == "super")
                    && toks.get(j + 1).map(|t| &t.0) == Some(&Tok::PathSep)
                {
                    supers += 1;
                    j += 2;
                }
                let inline_mods = braces.iter().filter(|&&m| m).count();
                let out_of_file = supers > inline_mods;
                i = j - 1;
                out_of_file.then_some(j)
            }
            _ => None,
        };
        let Some(start) = rooted else {
            i += 1;
            continue;
        };
        match toks.get(start) {
            Some((Tok::Ident(name), line)) => {
                names.push((name.clone(), *line));
                i = start + 1;
            }
            Some((Tok::Punct('{'), _)) => {
                // A group: the first segment of each of its entries.
                let mut depth = 1;
                let mut entry_start = true;
                let mut j = start + 1;
                while j < toks.len() && depth > 0 {
                    match &toks[j] {
                        (Tok::Punct('{'), _) => depth += 1,
                        (Tok::Punct('}'), _) => depth -= 1,
                        (Tok::Punct(','), _) if depth == 1 => entry_start = true,
                        (Tok::Ident(name), line) if depth == 1 && entry_start => {
                            names.push((name.clone(), *line));
                            entry_start = false;
                        }
                        _ => {}
                    }
                    j += 1;
                }
                i = j;
            }
            _ => i = start,
        }
    }
    names
}

/// The crate root's names that are not modules: what `lib.rs` re-exports (`pub use m::X` or
/// `pub use m::{X, Y}`, mapped to `m`) and defines itself (mapped to `None`).
fn root_items(lib: &str) -> BTreeMap<String, Option<String>> {
    let toks = tokens(lib);
    let mut items = BTreeMap::new();
    let mut i = 0;
    while i + 1 < toks.len() {
        let ident = |k: usize| match toks.get(k) {
            Some((Tok::Ident(s), _)) => Some(s.as_str()),
            _ => None,
        };
        if ident(i) == Some("pub") && ident(i + 1) == Some("use") {
            let module = ident(i + 2).expect("pub use <module>::...").to_string();
            let mut j = i + 3;
            let mut last = None;
            while j < toks.len() && toks[j].0 != Tok::Punct(';') {
                match &toks[j].0 {
                    Tok::Ident(s) if s != "as" => last = Some(s.clone()),
                    Tok::Punct(',') | Tok::Punct('}') => {
                        if let Some(name) = last.take() {
                            items.insert(name, Some(module.clone()));
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if let Some(name) = last {
                items.insert(name, Some(module));
            }
            i = j;
        } else if ident(i) == Some("pub")
            && matches!(
                ident(i + 1),
                Some("fn" | "const" | "static" | "struct" | "enum" | "type")
            )
        {
            if let Some(name) = ident(i + 2) {
                items.insert(name.to_string(), None);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    items
}

/// The dependency graph of the files `name → source`: for each module, the modules it names
/// and the line of the first mention.
fn graph(files: &BTreeMap<String, String>, lib: &str) -> Edges {
    let items = root_items(lib);
    let mut edges = Edges::new();
    for (module, src) in files {
        let deps = edges.entry(module.clone()).or_default();
        for (name, line) in root_names(src) {
            let target = if files.contains_key(&name) {
                Some(name)
            } else if let Some(target) = items.get(&name) {
                target.clone()
            } else if matches!(name.as_str(), "ffi" | "python" | "self") {
                None
            } else {
                panic!(
                    "src/{module}.rs:{line} names crate::{name}, neither a module nor an item of \
                     lib.rs: teach tests/module_graph.rs this kind of path"
                );
            };
            if let Some(target) = target.filter(|t| t != module) {
                deps.entry(target).or_insert(line);
            }
        }
    }
    edges
}

/// The tangles of `edges` (strongly connected components of more than one module), each as
/// its modules and one shortest way round from the first, which is repeated at the end.
fn cycles(edges: &Edges) -> Vec<(Vec<String>, Vec<String>)> {
    // Tarjan's algorithm, then a shortest way round each component from its first module.
    struct State<'a> {
        edges: &'a Edges,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        for w in s.edges[v].keys() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let at = s.stack.iter().position(|&x| x == v).unwrap();
            s.components.push(s.stack.split_off(at));
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        components: Vec::new(),
    };
    for v in edges.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    let mut found = Vec::new();
    for component in s.components.into_iter().filter(|c| c.len() > 1) {
        let members: BTreeSet<&str> = component.iter().copied().collect();
        let start = *members.iter().next().unwrap();
        // Breadth-first from `start` inside the component, back to `start`.
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut last = None;
        'search: while let Some(v) = queue.pop_front() {
            for w in edges[v]
                .keys()
                .map(String::as_str)
                .filter(|w| members.contains(w))
            {
                if w == start {
                    last = Some(v);
                    break 'search;
                }
                if !parent.contains_key(w) {
                    parent.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        let mut cycle = vec![start.to_string()];
        let mut v = last.expect("a component has a way round");
        while v != start {
            cycle.push(v.to_string());
            v = parent[v];
        }
        cycle.push(start.to_string());
        cycle.reverse();
        found.push((members.iter().map(|m| m.to_string()).collect(), cycle));
    }
    found
}

/// A tangle as its modules, then a way round: `a → b (src/a.rs:12) → a (src/b.rs:3)`.
fn describe(edges: &Edges, (members, cycle): &(Vec<String>, Vec<String>)) -> String {
    let mut text = format!("{{{}}}: {}", members.join(", "), cycle[0]);
    for pair in cycle.windows(2) {
        let line = edges[&pair[0]][&pair[1]];
        text += &format!(" → {} (src/{}.rs:{line})", pair[1], pair[0]);
    }
    text
}

#[test]
fn core_modules_have_no_import_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && stem != "lib" {
            files.insert(stem.to_string(), fs::read_to_string(&path).unwrap());
        }
    }
    let lib = fs::read_to_string(src.join("lib.rs")).unwrap();
    assert!(
        files.len() > 10,
        "read the core's modules from {}",
        src.display()
    );
    let edges = graph(&files, &lib);
    let found = cycles(&edges);
    let report: Vec<String> = found.iter().map(|t| describe(&edges, t)).collect();
    assert!(
        found.is_empty(),
        "import cycles among src/*.rs (one way round each tangle; move the code so the \
         dependency runs one way, see docs/ARCHITECTURE.md, \"Module dependencies\"):\n  {}",
        report.join("\n  ")
    );
}

fn files(modules: &[(&str, &str)]) -> BTreeMap<String, String> {
    modules
        .iter()
        .map(|(m, s)| (m.to_string(), s.to_string()))
        .collect()
}

/// The reader of paths finds what a module names, and only that.
#[test]
fn paths_are_read_as_rust_would() {
    let src = r##"
        use crate::{a, b::{C, d::E}, self};
        use crate::c::F;
        pub(crate) fn f() -> crate::Result<()> { Ok(()) }
        // crate::x in a comment
        /* crate::y /* nested */ crate::z */
        const S: &str = "crate::w";
        const R: &str = r#"crate::v"#;
        fn g<'a>(x: &'a str) -> char { let _ = super::h; 'c' }
        mod inner { fn k() { super::k2(); super::super::e::G; } }
        #[cfg(test)]
        mod tests { use crate::t; }
        #[cfg(test)]
        use crate::u;
        fn last() { crate::d::g() }
    "##;
    let names: Vec<String> = root_names(src).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["a", "b", "self", "c", "Result", "h", "e", "d"]);
    let lib = "pub use error::{Error, Result};\npub use pool::Pool;\npub fn version() {}";
    let items = root_items(lib);
    assert_eq!(items["Result"].as_deref(), Some("error"));
    assert_eq!(items["Pool"].as_deref(), Some("pool"));
    assert_eq!(items["version"], None);
}

/// A cycle is found and shown one way round, with where each step is named; a layered graph
/// has none.
#[test]
fn cycles_are_found_and_shown() {
    let lib = "pub use error::Result;";
    let tangled = files(&[
        ("error", ""),
        ("pool", "use crate::error;\nuse crate::session::Session;"),
        (
            "session",
            "fn f() -> crate::Result<()> {\n crate::pool::g() }",
        ),
        ("rows", "use crate::session;"),
    ]);
    let edges = graph(&tangled, lib);
    let found = cycles(&edges);
    assert_eq!(found.len(), 1);
    assert_eq!(
        describe(&edges, &found[0]),
        "{pool, session}: pool → session (src/pool.rs:2) → pool (src/session.rs:2)"
    );
    let layered = files(&[
        ("error", ""),
        ("pool", "use crate::error;"),
        ("session", "use crate::{pool, error::Error};"),
        ("rows", "use crate::session;"),
    ]);
    assert!(cycles(&graph(&layered, lib)).is_empty());
}
