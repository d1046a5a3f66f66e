//! Embeds the web app (`web/dist`, built by `scripts/web`) into the binary. Without a build the node serves a page
//! that says how to make one, so `cargo build` alone still works.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dist = Path::new(&manifest_dir).join("../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut out = String::from("&[\n");
    if let Ok(entries) = std::fs::read_dir(&dist) {
        let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        for path in files {
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Ok(abs) = path.canonicalize() else { continue };
            println!("cargo:rerun-if-changed={}", abs.display());
            let _ = writeln!(out, "    ({name:?}, include_bytes!({:?}).as_slice()),", abs.display().to_string());
        }
    }
    out.push(']');
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into());
    if let Err(e) = std::fs::write(Path::new(&out_dir).join("web_assets.rs"), out) {
        panic!("cannot write the web app's asset list: {e}");
    }
}
