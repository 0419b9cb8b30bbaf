//! Every relative link in the documentation points somewhere: in `README.md`,
//! `ARCHITECTURE.md`, `RELIABILITY.md` and `docs/*.md`, each link and image (found by
//! pulldown-cmark, so links in code blocks are not links) must name a file or folder of the
//! repository, and a `#fragment` must match a heading of its target Markdown file by GitHub's
//! anchor rules (lowercase; spaces become `-`; punctuation other than `-` and `_` is dropped; a
//! repeated heading gets `-1`, `-2`, …). Absolute URLs (`https:`, `mailto:`) are not checked:
//! the docs point to nothing outside the repository. The checker is also fed small in-memory
//! documents with bad links, so it is known to fail when it should.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// The documents whose links are checked, relative to the repository root.
fn documents(root: &Path) -> Vec<String> {
    let mut docs: Vec<String> =
        ["README.md", "ARCHITECTURE.md", "RELIABILITY.md"].iter().map(|s| s.to_string()).collect();
    let mut topic: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .map(|e| e.expect("docs/ entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".md"))
        .map(|name| format!("docs/{name}"))
        .collect();
    topic.sort();
    docs.extend(topic);
    docs
}

/// What a link checker needs to know of a tree of files: whether a path (relative to the root,
/// `/`-separated, normalised) exists, and the text of a Markdown file.
trait Tree {
    fn exists(&self, path: &str) -> bool;
    fn read(&self, path: &str) -> Option<String>;
}

/// The repository on disk.
struct Disk(PathBuf);

impl Tree for Disk {
    fn exists(&self, path: &str) -> bool {
        path.is_empty() || self.0.join(path).exists()
    }
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(path)).ok()
    }
}

/// Files held in memory; a folder exists when some file lies below it.
struct Memory(HashMap<String, String>);

impl Tree for Memory {
    fn exists(&self, path: &str) -> bool {
        path.is_empty()
            || self.0.contains_key(path)
            || self.0.keys().any(|k| k.starts_with(&format!("{path}/")))
    }
    fn read(&self, path: &str) -> Option<String> {
        self.0.get(path).cloned()
    }
}

fn parser(text: &str) -> Parser<'_> {
    Parser::new_ext(text, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH)
}

/// GitHub's anchor for a heading's text: lowercase, letters, digits, `-` and `_` kept, each
/// space a `-`, everything else dropped.
fn slug(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            '-' | '_' => Some(c),
            c if c.is_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text's headings, in order; a repeated one gets `-1`, `-2`, … as
/// GitHub numbers them.
fn anchors(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut heading: Option<String> = None;
    for event in parser(text) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                let base = slug(heading.take().unwrap_or_default().trim());
                let n = seen.entry(base.clone()).or_insert(0);
                out.push(if *n == 0 { base.clone() } else { format!("{base}-{n}") });
                *n += 1;
            }
            Event::Text(t) | Event::Code(t) => {
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                }
            }
            _ => {}
        }
    }
    out
}

/// A link's destination with a scheme (`https:`, `mailto:`) points outside the repository.
fn is_absolute(dest: &str) -> bool {
    match dest.find(':') {
        Some(i) => {
            let scheme = &dest[..i];
            !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        }
        None => dest.starts_with("//"),
    }
}

/// `%XX` escapes decoded (a link to `a%20b.md` names `a b.md`).
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `target` (a link's path part) seen from the document at `from`, as a root-relative path
/// with `.` and `..` resolved; `None` when it climbs out of the repository.
fn resolve(from: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> =
        if target.starts_with('/') { Vec::new() } else { from.split('/').collect() };
    if !target.starts_with('/') {
        parts.pop(); // the document's own name
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// The links of `text` (the document at `from`) that point nowhere, each as
/// `FILE:LINE: DEST: why`.
fn broken_links(from: &str, text: &str, tree: &dyn Tree) -> Vec<String> {
    let mut problems = Vec::new();
    let mut anchor_cache: BTreeMap<String, Option<Vec<String>>> = BTreeMap::new();
    for (event, range) in parser(text).into_offset_iter() {
        let dest = match event {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => dest_url.to_string(),
            _ => continue,
        };
        if is_absolute(&dest) {
            continue;
        }
        let line = text[..range.start].matches('\n').count() + 1;
        let mut report = |why: String| problems.push(format!("{from}:{line}: {dest}: {why}"));
        let (path, fragment) = match dest.split_once('#') {
            Some((p, f)) => (p, Some(percent_decode(f))),
            None => (dest.as_str(), None),
        };
        let target = if path.is_empty() {
            from.to_string()
        } else {
            match resolve(from, &percent_decode(path)) {
                Some(t) => t,
                None => {
                    report("climbs out of the repository".into());
                    continue;
                }
            }
        };
        if !tree.exists(&target) {
            report(format!("no file or folder {target}"));
            continue;
        }
        let Some(fragment) = fragment else { continue };
        if !target.ends_with(".md") {
            report(format!("a fragment into {target}, which has no Markdown headings"));
            continue;
        }
        let known = anchor_cache
            .entry(target.clone())
            .or_insert_with(|| tree.read(&target).map(|t| anchors(&t)));
        match known {
            None => report(format!("{target} cannot be read")),
            Some(list) if !list.contains(&fragment) => {
                report(format!("{target} has no heading #{fragment}"))
            }
            Some(_) => {}
        }
    }
    problems
}

#[test]
fn every_relative_link_in_the_docs_points_somewhere() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let docs = documents(&root);
    assert!(docs.len() > 3, "docs/ holds the topic pages, found only {docs:?}");
    let tree = Disk(root);
    let mut problems = Vec::new();
    let mut links = 0;
    for doc in &docs {
        let text = tree.read(doc).unwrap_or_else(|| panic!("{doc} is readable"));
        links += parser(&text)
            .filter(|e| matches!(e, Event::Start(Tag::Link { .. } | Tag::Image { .. })))
            .count();
        problems.extend(broken_links(doc, &text, &tree));
    }
    assert!(links > 0, "no links found at all in {docs:?}");
    assert!(
        problems.is_empty(),
        "{} of {links} links point nowhere:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn a_missing_file_or_heading_is_reported_and_good_links_are_not() {
    let files = [
        (
            "README.md",
            "# sipl\n\
             See [ingest](docs/INGEST.md#the-rules), [the tree](docs/), [a figure](docs/f.svg),\n\
             [here](#sipl), [the page](https://example.org/x) and `[code](nowhere.md)`.\n\n\
             Broken: [gone](docs/GONE.md), [no such heading](docs/INGEST.md#no-such-heading),\n\
             [no local heading](#missing), ![no image](docs/missing.svg), [up](../outside.md),\n\
             [fragment into a figure](docs/f.svg#top).\n\n\
             ```\n[in a code block](nowhere.md)\n```\n",
        ),
        (
            "docs/INGEST.md",
            "# Ingest\n## The rules\n[back](../README.md#sipl), [bad](../README.md#the-rules)\n",
        ),
        ("docs/f.svg", "<svg/>"),
    ];
    let tree = Memory(files.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect());
    let readme = broken_links("README.md", files[0].1, &tree);
    let dests: Vec<&str> =
        readme.iter().map(|p| p.split(": ").nth(1).expect("FILE:LINE: DEST: why")).collect();
    assert_eq!(
        dests,
        [
            "docs/GONE.md",
            "docs/INGEST.md#no-such-heading",
            "#missing",
            "docs/missing.svg",
            "../outside.md",
            "docs/f.svg#top"
        ],
        "{readme:#?}"
    );
    assert!(readme[0].starts_with("README.md:5: "), "{}", readme[0]);
    let ingest = broken_links("docs/INGEST.md", files[1].1, &tree);
    assert_eq!(ingest.len(), 1, "{ingest:#?}");
    assert!(ingest[0].contains("README.md has no heading #the-rules"), "{}", ingest[0]);
}

#[test]
fn anchors_follow_githubs_rules() {
    assert_eq!(slug("Decisions and their measurements"), "decisions-and-their-measurements");
    assert_eq!(slug("Hyper-parameter search: `sipl tune`"), "hyper-parameter-search-sipl-tune");
    assert_eq!(slug("Ingest: image folders → shards"), "ingest-image-folders--shards");
    assert_eq!(slug("What (a) run_dir is, 2026-12-07"), "what-a-run_dir-is-2026-12-07");
    let text = "# Top\n## Notes\ntext\n## Notes\n### `sipl train` --help\n## Notes\n";
    assert_eq!(anchors(text), ["top", "notes", "notes-1", "sipl-train---help", "notes-2"]);
    assert_eq!(resolve("docs/A.md", "../README.md").as_deref(), Some("README.md"));
    assert_eq!(resolve("docs/A.md", "./B.md").as_deref(), Some("docs/B.md"));
    assert_eq!(resolve("README.md", "../x.md"), None);
    assert!(is_absolute("https://example.org") && is_absolute("mailto:a@b"));
    assert!(!is_absolute("docs/INGEST.md#x") && !is_absolute("#a:b"));
    assert_eq!(percent_decode("a%20b.md"), "a b.md");
}
