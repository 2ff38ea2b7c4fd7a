//! The layout stays a DAG inside each crate too (cargo enforces it between crates): no two modules
//! of a crate import each other, directly or through others. Read from the sources: every
//! `crate::…` and `super::…` path (brace groups expanded) of every module, resolved to the deepest
//! module it names. An edge between a module and one of its ancestors or descendants does not
//! count (a parent re-exports its children; a child uses its parent's items): an edge `a → b`
//! counts between the two children of their closest common ancestor that contain `a` and `b`.
//! Issue 14: the harness's modules imported each other in loops
//! (`commands → sweep → eval_commands → commands`, `experiment ↔ data_source`, `error ↔ plugins`).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use valley_e2e::workspace_root;

type ModPath = Vec<String>;

/// Every crate of the workspace: `crates/*`, `plugins/*/*`, `tests`, the fixture plugins.
fn crate_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let children = |d: PathBuf| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    for c in children(root.join("crates")) {
        dirs.push(c);
    }
    for kind in children(root.join("plugins")) {
        dirs.extend(children(kind));
    }
    dirs.extend(children(root.join("tests/fixtures/plugins")));
    dirs.push(root.join("tests"));
    dirs.retain(|d| d.join("Cargo.toml").is_file() && d.join("src").is_dir());
    dirs
}

/// The module path of a source file under `src`: `lib.rs`/`main.rs` → [], `a.rs` and `a/mod.rs`
/// → [a], `a/b.rs` → [a, b]. Binaries under `src/bin` are roots of their own and skipped.
fn module_of(src: &Path, file: &Path) -> Option<ModPath> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.first().map(String::as_str) == Some("bin") {
        return None;
    }
    let last = parts.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if parts.is_empty() && (stem == "lib" || stem == "main") {
        return Some(Vec::new());
    }
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    Some(parts)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments (doc comments included: intra-doc links are not imports).
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Expands `a::{b, c::{d}}` (the text after a `crate::` or `super::`) into paths.
fn expand(text: &str) -> Vec<Vec<String>> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    fn go(s: &str) -> Vec<Vec<String>> {
        if let Some(open) = s.find('{') {
            let prefix: Vec<String> = s[..open]
                .split("::")
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
            let inner = &s[open + 1..s.rfind('}').unwrap_or(s.len())];
            let mut items = Vec::new();
            let (mut depth, mut start) = (0, 0);
            for (i, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(&inner[start..i]);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            items.push(&inner[start..]);
            items
                .into_iter()
                .filter(|i| !i.is_empty())
                .flat_map(|i| {
                    go(i).into_iter().map(|tail| {
                        let mut p = prefix.clone();
                        p.extend(tail);
                        p
                    })
                })
                .collect()
        } else {
            vec![s
                .split("::")
                .map(|p| p.split(" as ").next().unwrap_or(p).to_string())
                .filter(|p| !p.is_empty())
                .collect()]
        }
    }
    go(&text)
}

/// The paths a module names, made absolute: `crate::a::b` → [a, b]; `super::b` from [x, a] →
/// [x, b].
fn references(module: &ModPath, text: &str) -> Vec<ModPath> {
    let text = strip_comments(text);
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let (mut base, mut after) = if rest.starts_with("crate::") {
            (Vec::new(), i + "crate::".len())
        } else if rest.starts_with("super::") {
            // A `mod.rs` module's path is its directory's, so `super` is one level up either way.
            (
                module[..module.len().saturating_sub(1)].to_vec(),
                i + "super::".len(),
            )
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        // Not part of a longer identifier (`valley_crate::`).
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            i = after;
            continue;
        }
        while text[after..].starts_with("super::") {
            base.pop();
            after += "super::".len();
        }
        // The path runs to the end of its brace group or identifier chain.
        let tail = &text[after..];
        let end = if tail.starts_with('{') {
            let mut depth = 0;
            tail.char_indices()
                .find(|&(_, c)| {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(tail.len(), |(j, _)| j + 1)
        } else {
            tail.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len())
        };
        for path in expand(&tail[..end]) {
            let mut full = base.clone();
            full.extend(path);
            out.push(full);
        }
        i = after + end.max(1);
    }
    out
}

/// The module graph's cycles of one crate, each as its modules in order.
fn cycles(crate_dir: &Path) -> Vec<String> {
    let src = crate_dir.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules: BTreeMap<ModPath, String> = BTreeMap::new();
    for f in &files {
        if let Some(m) = module_of(&src, f) {
            modules.insert(m, std::fs::read_to_string(f).unwrap());
        }
    }
    let known: BTreeSet<&ModPath> = modules.keys().collect();
    // Edges between siblings: parent → (child → children it reaches).
    let mut edges: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (m, text) in &modules {
        for r in references(m, text) {
            // The deepest module the path names.
            let Some(target) = (0..=r.len())
                .rev()
                .map(|n| r[..n].to_vec())
                .find(|p| known.contains(p))
            else {
                continue;
            };
            let common = m.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common == m.len() || common == target.len() {
                continue; // ancestor or descendant
            }
            edges
                .entry(m[..common].to_vec())
                .or_default()
                .entry(m[common].clone())
                .or_default()
                .insert(target[common].clone());
        }
    }
    let mut found = Vec::new();
    for (parent, graph) in &edges {
        // Depth-first search for a back edge.
        fn visit(
            node: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            stack: &mut Vec<String>,
            done: &mut BTreeSet<String>,
            found: &mut Vec<Vec<String>>,
        ) {
            if let Some(at) = stack.iter().position(|s| s == node) {
                let mut cycle = stack[at..].to_vec();
                cycle.push(node.to_string());
                found.push(cycle);
                return;
            }
            if !done.insert(node.to_string()) {
                return;
            }
            stack.push(node.to_string());
            for next in graph.get(node).into_iter().flatten() {
                visit(next, graph, stack, done, found);
            }
            stack.pop();
        }
        let mut done = BTreeSet::new();
        let mut local = Vec::new();
        for node in graph.keys() {
            visit(node, graph, &mut Vec::new(), &mut done, &mut local);
        }
        for c in local {
            let prefix = if parent.is_empty() {
                "crate".to_string()
            } else {
                format!("crate::{}", parent.join("::"))
            };
            found.push(format!("{prefix}: {}", c.join(" → ")));
        }
    }
    found
}

#[test]
fn no_crate_has_a_module_import_cycle() {
    let root = workspace_root();
    let dirs = crate_dirs(&root);
    assert!(
        dirs.len() >= 15,
        "found only {} crates under {}",
        dirs.len(),
        root.display()
    );
    let mut all = Vec::new();
    for d in &dirs {
        for c in cycles(d) {
            all.push(format!(
                "{}: {c}",
                d.strip_prefix(&root).unwrap_or(d).display()
            ));
        }
    }
    assert!(all.is_empty(), "module import cycles:\n{}", all.join("\n"));
}

/// The checker itself: a cycle through `super::` and a brace group is found; an edge to a parent
/// and a path that only names an item are not cycles.
#[test]
fn the_cycle_check_finds_a_planted_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\npub use a::X;\n").unwrap();
    std::fs::write(src.join("a/mod.rs"), "mod inner;\npub struct X;\n").unwrap();
    std::fs::write(
        src.join("a/inner.rs"),
        "use super::X;\nuse crate::{b::{Y as _}, a::X as _};\n",
    )
    .unwrap();
    std::fs::write(src.join("b.rs"), "pub struct Y;\n// crate::c::Z\n").unwrap();
    assert!(cycles(dir.path()).is_empty(), "{:?}", cycles(dir.path()));
    std::fs::write(
        src.join("b.rs"),
        "pub struct Y;\nfn f() -> super::a::X { todo!() }\n",
    )
    .unwrap();
    assert_eq!(cycles(dir.path()), ["crate: a → b → a"]);
}
