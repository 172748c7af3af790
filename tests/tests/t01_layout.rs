//! The shape of the code base, checked so it does not drift back: no import cycle between the
//! top-level modules of `bzzz-node`, and no source file longer than [`MAX_LINES`] lines of
//! non-test code (a longer file almost always holds two jobs; split it by job, as
//! `docs/architecture.md` describes).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};

/// Most lines of non-test code in one source file.
const MAX_LINES: usize = 600;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    Ok(())
}

/// The top-level modules a source text names through `crate::…` (comments skipped), including
/// the members of a `crate::{a, b::c}` group.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            // `bzzz_node::…` or `some_crate::…` end in "crate::" too; only a bare `crate::` counts.
            let before = rest[..i].chars().last();
            rest = &rest[i + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        refs.insert(name);
                    }
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    refs.insert(name);
                }
            }
        }
    }
    refs
}

/// The module graph of one crate's `src`: top-level module → the top-level modules it uses.
fn module_graph(src: &Path) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut files = Vec::new();
    rust_files(src, &mut files)?;
    let module_of = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(src).ok()?;
        let first = rel.components().next()?.as_os_str().to_str()?;
        let name = first.trim_end_matches(".rs");
        (name != "lib" && name != "main").then(|| name.to_owned())
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|p| module_of(p)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = modules.iter().map(|m| (m.clone(), BTreeSet::new())).collect();
    for file in &files {
        let Some(from) = module_of(file) else { continue };
        let text = std::fs::read_to_string(file)?;
        for to in crate_refs(&text) {
            if to != from && modules.contains(&to) {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    Ok(graph)
}

/// Strongly connected components with more than one module (Tarjan): the import cycles.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_owned());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.found
}

#[test]
fn the_cycle_finder_finds_a_planted_cycle() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let edge = |g: &mut BTreeMap<String, BTreeSet<String>>, a: &str, b: &str| {
        g.entry(a.into()).or_default().insert(b.into());
        g.entry(b.into()).or_default();
    };
    edge(&mut g, "api", "context");
    edge(&mut g, "context", "auth");
    assert!(cycles(&g).is_empty());
    edge(&mut g, "context", "api");
    assert_eq!(cycles(&g), vec![vec!["api".to_owned(), "context".to_owned()]]);
    assert_eq!(
        crate_refs("use crate::{auth, metrics::X};\n// crate::node\nlet x = crate::api::f(); bzzz_node::crate_x;"),
        ["api", "auth", "metrics"].into_iter().map(String::from).collect()
    );
}

#[test]
fn bzzz_node_has_no_import_cycle() -> Result<()> {
    let graph = module_graph(&repo().join("node/src"))?;
    ensure!(
        graph.len() > 10,
        "found the modules of node/src ({} found)",
        graph.len()
    );
    let found = cycles(&graph);
    ensure!(
        found.is_empty(),
        "import cycles between the top-level modules of bzzz-node: {found:?} (graph: {graph:#?})"
    );
    Ok(())
}

#[test]
fn no_source_file_is_longer_than_the_limit() -> Result<()> {
    let mut files = Vec::new();
    for dir in [
        "node/src",
        "client/src",
        "storage/src",
        "protocol/src",
        "bootstrap/src",
        "tests/src",
    ] {
        let dir = repo().join(dir);
        if dir.exists() {
            rust_files(&dir, &mut files)?;
        }
    }
    let mut long = Vec::new();
    for file in &files {
        // Unit-test modules in their own file (`#[cfg(test)] mod tests;`) are test code.
        let rel = file.strip_prefix(repo()).unwrap_or(file);
        // (The first two components are the crate's directory and `src`.)
        if rel.file_name().is_some_and(|n| n == "tests.rs")
            || rel.components().skip(2).any(|c| c.as_os_str() == "tests")
        {
            continue;
        }
        let text = std::fs::read_to_string(file)?;
        // Lines before the file's unit tests (the last `#[cfg(test)]` followed by `mod …`).
        let lines: Vec<&str> = text.lines().collect();
        let code = (0..lines.len())
            .rev()
            .find(|&i| {
                lines[i].trim() == "#[cfg(test)]"
                    && lines.get(i + 1).is_some_and(|n| n.trim_start().starts_with("mod "))
            })
            .unwrap_or(lines.len());
        if code > MAX_LINES {
            long.push(format!(
                "{} ({code})",
                file.strip_prefix(repo()).unwrap_or(file).display()
            ));
        }
    }
    ensure!(
        long.is_empty(),
        "files over {MAX_LINES} lines of non-test code: {long:?}"
    );
    Ok(())
}
