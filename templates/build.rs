//! Embeds the shipped templates: every `defaults/<lang>/<name>.jinja` becomes one entry of
//! `SHIPPED` in `$OUT_DIR/shipped.rs`, its text pulled in with `include_str!`. A generated list
//! (instead of a hand-written one) means shipping a new language is dropping a directory of files
//! in; a build script (instead of an `include_dir`-style crate) keeps the crate free of one more
//! dependency and proc macro. Cargo re-runs this when anything under `defaults/` changes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest.join("defaults");
    println!("cargo:rerun-if-changed=defaults");
    println!("cargo:rerun-if-changed=build.rs");

    let mut files = Vec::new();
    for lang in read_dir(&root) {
        if !lang.is_dir() {
            continue;
        }
        for file in read_dir(&lang) {
            if file.extension().is_some_and(|e| e == "jinja") {
                files.push(file);
            }
        }
    }
    files.sort();

    let mut out = String::from(
        "/// `(\"<lang>/<name>.jinja\", text)` for every file under `templates/defaults/`.\n\
         pub(crate) const SHIPPED: &[(&str, &str)] = &[\n",
    );
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under root");
        let relative = relative
            .iter()
            .map(|c| c.to_str().expect("template paths are UTF-8"))
            .collect::<Vec<_>>()
            .join("/");
        let absolute = file.to_str().expect("template paths are UTF-8");
        writeln!(out, "    ({relative:?}, include_str!({absolute:?})),").expect("write to String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("shipped.rs");
    fs::write(dest, out).expect("write shipped.rs");
}

fn read_dir(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("read directory entry").path())
        .collect()
}
