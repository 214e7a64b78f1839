//! Rules the tree keeps: `unsafe` only where no safe wrapper exists, nothing that orders
//! code or drops the binary's pages to lower a figure, docs whose links resolve from a
//! short README, and test cases whose first failure does not hide the rest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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

/// GitHub's anchor of a heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == ' ' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> Vec<String> {
    let mut fence = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fence = !fence;
        } else if !fence && line.starts_with('#') {
            out.push(anchor(line.trim_start_matches('#')));
        }
    }
    out
}

#[test]
fn every_link_between_the_docs_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    files(&root.join("docs"), &mut pages);
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for (i, _) in text.match_indices("](") {
            let target = &text[i + 2..];
            let target = &target[..target.find(')').unwrap()];
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, frag) = target.split_once('#').unwrap_or((target, ""));
            let file = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            let linked = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {target}: {e}", page.display()));
            if !frag.is_empty() {
                assert!(
                    anchors(&linked).iter().any(|a| a == frag),
                    "{}: {target}: no such heading",
                    page.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 20, "{checked} links");
}

#[test]
fn the_readme_is_short_and_leads_to_every_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.lines().count() <= 300,
        "{} lines",
        readme.lines().count()
    );
    for page in std::fs::read_dir(root.join("docs")).unwrap() {
        let name = page.unwrap().file_name().into_string().unwrap();
        // Pages, not the figures they show.
        if !name.ends_with(".md") {
            continue;
        }
        assert!(
            readme.contains(&format!("(docs/{name})")),
            "the README does not link docs/{name}"
        );
    }
}

#[test]
fn a_failed_case_does_not_hide_the_next() {
    let mut ran = Vec::new();
    let mut cases = common::cases::Cases::new();
    cases.case("first", || {
        ran.push("first");
        panic!("the first case's failure");
    });
    cases.case("second", || ran.push("second"));
    let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cases.finish()));
    let message = *verdict.unwrap_err().downcast::<String>().unwrap();
    assert_eq!(ran, ["first", "second"]);
    assert!(message.starts_with("1 of 2 cases failed"), "{message}");
    assert!(
        message.contains("- first: the first case's failure"),
        "{message}"
    );
}
