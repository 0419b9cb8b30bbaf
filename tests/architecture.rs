//! The structural rules of ARCHITECTURE.md: on `cargo metadata`, which crates may reach
//! libtorch and which sipl crates each may use; on the sources, where FFI may live.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// The packages that bring libtorch in.
const TORCH: [&str; 2] = ["tch", "torch-sys"];

struct Graph {
    /// Package id → package name.
    names: BTreeMap<String, String>,
    /// Package id → (dependency id, kinds: "normal", "dev", "build").
    deps: BTreeMap<String, Vec<(String, Vec<String>)>>,
}

fn metadata() -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let names = v["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (p["id"].as_str().expect("id").to_owned(), p["name"].as_str().expect("name").to_owned())
        })
        .collect();
    let mut deps = BTreeMap::new();
    for node in v["resolve"]["nodes"].as_array().expect("resolve nodes") {
        let edges = node["deps"]
            .as_array()
            .expect("deps")
            .iter()
            .map(|d| {
                let kinds = d["dep_kinds"]
                    .as_array()
                    .expect("dep_kinds")
                    .iter()
                    .map(|k| k["kind"].as_str().unwrap_or("normal").to_owned())
                    .collect();
                (d["pkg"].as_str().expect("pkg").to_owned(), kinds)
            })
            .collect();
        deps.insert(node["id"].as_str().expect("id").to_owned(), edges);
    }
    Graph { names, deps }
}

impl Graph {
    fn id(&self, name: &str) -> &str {
        self.names.iter().find(|(_, n)| *n == name).map(|(id, _)| id.as_str()).expect(name)
    }

    /// Names of every package `name` needs to build and run: its normal dependencies and theirs,
    /// plus its own dev-dependencies (and their normal dependencies) when `with_dev`, which is
    /// what `cargo test -p name` builds.
    fn closure(&self, name: &str, with_dev: bool) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let start = self.id(name).to_owned();
        let mut todo: Vec<String> = self.deps[&start]
            .iter()
            .filter(|(_, kinds)| kinds.iter().any(|k| k == "normal" || (with_dev && k == "dev")))
            .map(|(id, _)| id.clone())
            .collect();
        while let Some(id) = todo.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            for (dep, kinds) in &self.deps[&id] {
                if kinds.iter().any(|k| k == "normal") {
                    todo.push(dep.clone());
                }
            }
        }
        seen.into_iter().map(|id| self.names[&id].clone()).collect()
    }

    /// The sipl crates `name` depends on directly (normal dependencies).
    fn sipl_deps(&self, name: &str) -> BTreeSet<String> {
        self.deps[self.id(name)]
            .iter()
            .filter(|(_, kinds)| kinds.iter().any(|k| k == "normal"))
            .map(|(id, _)| self.names[id].clone())
            .filter(|n| n.starts_with("sipl"))
            .collect()
    }
}

#[test]
fn only_the_trainer_the_evaluation_and_the_binary_reach_libtorch() {
    let g = metadata();
    for name in ["sipl-limits", "sipl-shards", "sipl-ingest", "sipl-loader"] {
        let reached: Vec<_> =
            g.closure(name, true).into_iter().filter(|n| TORCH.contains(&n.as_str())).collect();
        assert!(
            reached.is_empty(),
            "{name} (with its tests) must build without libtorch: {reached:?}"
        );
    }
    for name in ["sipl-train", "sipl-eval", "sipl-tune", "sipl"] {
        assert!(g.closure(name, false).contains("tch"), "{name} uses tch");
    }
}

#[test]
fn each_crate_uses_only_the_crates_below_it() {
    let g = metadata();
    let allowed: [(&str, &[&str]); 7] = [
        ("sipl-limits", &[]),
        ("sipl-shards", &["sipl-limits"]),
        ("sipl-ingest", &["sipl-limits", "sipl-shards"]),
        ("sipl-loader", &["sipl-limits", "sipl-shards"]),
        ("sipl-train", &["sipl-limits", "sipl-shards", "sipl-loader"]),
        ("sipl-eval", &["sipl-limits", "sipl-shards", "sipl-loader", "sipl-train"]),
        ("sipl-tune", &["sipl-limits", "sipl-shards", "sipl-train", "sipl-eval"]),
    ];
    for (name, may) in allowed {
        let may: BTreeSet<String> = may.iter().map(|s| s.to_string()).collect();
        let extra: Vec<_> = g.sipl_deps(name).difference(&may).cloned().collect();
        assert!(extra.is_empty(), "{name} may use only {may:?}, but uses {extra:?}");
    }
}

#[test]
fn all_ffi_declarations_live_in_the_two_ffi_modules() {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read source dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // libtorch's C++ shim (the trainer) and libjpeg's C shim (ingest's JPEG decoder).
    let ffi = [root.join("train/src/ffi"), root.join("ingest/src/libjpeg.rs")];
    let mut files = Vec::new();
    for dir in ["limits", "shards", "ingest", "loader", "train", "eval", "src", "tests"] {
        walk(&root.join(dir), &mut files);
    }
    let needle = ["extern", " \"C\""].concat();
    let outside: Vec<_> = files
        .iter()
        .filter(|f| !ffi.iter().any(|d| f.starts_with(d)))
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|s| s.contains(&needle)))
        .collect();
    assert!(files.len() > 50, "found the sources ({} files)", files.len());
    assert!(outside.is_empty(), "FFI declared outside {ffi:?}: {outside:?}");
}
