//! The architecture, checked: no import cycle between the top-level modules of any crate, and
//! `train`'s modules import only the layers below their own (the order its crate doc draws).
//!
//! An import is a `crate::module` path in code (comments are left out, so a doc link may
//! point anywhere). A new top-level module of `train` must be given its layer here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `train`'s layers, bottom first: a module may import modules of lower layers only.
const TRAIN_LAYERS: &[&[&str]] = &[
    &["backend", "checks", "model"],
    &["data"],
    &["optim", "report"],
    &["eval"],
    &["engine"],
    &["config"],
    &["inference"],
    &["run", "vanishing", "bench", "listen", "export"],
];

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a readable folder") {
        let path = entry.expect("a readable entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The code of a file without comments and string literals.
fn code(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut in_string = false;
        let mut previous = ' ';
        let mut kept = String::new();
        for (i, c) in line.char_indices() {
            if !in_string && c == '/' && line[i..].starts_with("//") {
                break;
            }
            if c == '"' && previous != '\\' {
                in_string = !in_string;
            } else if !in_string {
                kept.push(c);
            }
            previous = c;
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

/// The top-level modules `text` names as `crate::module` or inside `crate::{…}`.
fn imported_modules(text: &str) -> BTreeSet<String> {
    let mut modules = BTreeSet::new();
    let word = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        modules.insert(word(inner[start..j].trim()));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
            modules.insert(word(inner[start..].trim()));
        } else {
            modules.insert(word(rest));
        }
    }
    modules.retain(|m| !m.is_empty());
    modules
}

/// For each top-level module of a crate's `src`, the other top-level modules it imports.
fn module_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut imports = BTreeMap::<String, BTreeSet<String>>::new();
    for file in rust_files(src) {
        let relative = file.strip_prefix(src).expect("under src");
        let first = relative.components().next().expect("a path");
        let top = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" || top == "bin" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a readable source file");
        let entry = imports.entry(top.clone()).or_default();
        entry.extend(
            imported_modules(&code(&text))
                .into_iter()
                .filter(|m| *m != top),
        );
    }
    imports
}

/// A cycle among the modules, if there is one (as the modules on it, in order).
fn find_cycle(imports: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        imports: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            return Some(path[at..].to_vec());
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in imports.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, imports, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    imports
        .keys()
        .find_map(|module| visit(module, imports, &mut Vec::new(), &mut done))
}

fn crate_sources() -> Vec<PathBuf> {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(workspace().join("crates"))
        .expect("crates/")
        .map(|entry| entry.expect("an entry").path().join("src"))
        .filter(|src| src.is_dir())
        .collect();
    sources.push(workspace().join("src"));
    sources.push(workspace().join("python/src"));
    sources.sort();
    sources
}

#[test]
fn no_crate_has_an_import_cycle_between_its_top_level_modules() {
    for src in crate_sources() {
        let imports = module_imports(&src);
        assert!(
            find_cycle(&imports).is_none(),
            "{}: import cycle {:?}",
            src.display(),
            find_cycle(&imports)
        );
    }
}

#[test]
fn train_imports_only_downwards() {
    let layer_of = |module: &str| {
        TRAIN_LAYERS
            .iter()
            .position(|layer| layer.contains(&module))
    };
    let imports = module_imports(&workspace().join("crates/train/src"));
    for (module, imported) in &imports {
        let layer = layer_of(module)
            .unwrap_or_else(|| panic!("train's module {module} has no layer in TRAIN_LAYERS"));
        for dependency in imported {
            let below = layer_of(dependency).is_some_and(|l| l < layer);
            assert!(
                below,
                "train: {module} imports {dependency}, which is not below it"
            );
        }
    }
}

#[test]
fn the_checks_see_imports_and_cycles() {
    let text = code(
        "use crate::data::Batch;\nuse crate::{eval, report::x};\n// crate::engine\nlet s = \"crate::run\";",
    );
    let found: Vec<String> = imported_modules(&text).into_iter().collect();
    assert_eq!(found, ["data", "eval", "report"]);
    let cyclic = BTreeMap::from([
        ("a".to_string(), BTreeSet::from(["b".to_string()])),
        ("b".to_string(), BTreeSet::from(["c".to_string()])),
        ("c".to_string(), BTreeSet::from(["a".to_string()])),
    ]);
    assert_eq!(find_cycle(&cyclic).map(|c| c.len()), Some(3));
    let acyclic = BTreeMap::from([("a".to_string(), BTreeSet::from(["b".to_string()]))]);
    assert_eq!(find_cycle(&acyclic), None);
}
