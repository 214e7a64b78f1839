//! Rules the source keeps: `unsafe` only where no safe wrapper exists, and nothing that
//! orders code or drops the binary's pages to lower a figure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn tree(dir: &str) -> Vec<(PathBuf, String)> {
    let mut paths = Vec::new();
    files(&Path::new(env!("CARGO_MANIFEST_DIR")).join(dir), &mut paths);
    paths
        .into_iter()
        .filter_map(|p| Some((p.clone(), std::fs::read_to_string(&p).ok()?)))
        .collect()
}

#[test]
fn at_most_six_unsafe_blocks_each_with_its_safety_comment() {
    let mut blocks = Vec::new();
    for (path, text) in tree("src") {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if code.contains("unsafe {")
                || code.contains("unsafe fn")
                || code.contains("unsafe impl")
            {
                let above = lines[..i]
                    .iter()
                    .rev()
                    .take(4)
                    .any(|l| l.contains("SAFETY:"));
                assert!(
                    above,
                    "{}:{}: unsafe without a SAFETY comment",
                    path.display(),
                    i + 1
                );
                blocks.push(format!("{}:{}", path.display(), i + 1));
            }
        }
    }
    assert!(!blocks.is_empty(), "the scan found no unsafe block at all");
    assert!(
        blocks.len() <= 6,
        "{} unsafe blocks: {blocks:#?}",
        blocks.len()
    );
}

#[test]
fn nothing_orders_code_or_releases_pages() {
    for dir in ["src", "scripts"] {
        for (path, text) in tree(dir) {
            for word in [
                "MADV_DONTNEED",
                "madvise",
                "symbol-ordering",
                "code-order",
                "relocation-model",
            ] {
                assert!(!text.contains(word), "{} mentions {word}", path.display());
            }
        }
    }
}
