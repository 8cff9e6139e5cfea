//! User docs cite no issue numbers of this project: a reader has no tracker to look them up
//! in. Other projects' issues may be cited, named by their project.
//!
//! # The rule
//!
//! A reference is `issue 12`, `issues 9, 12 and 14`, `issue #12`, `PR 12`, `pull request
//! #12` (any case), or a bare `#12` standing on its own (not glued to a word, a `/` or an
//! `&`, so `conn#1`, `page#12`, `&#123;` and `owner/repo#12` are not bare references).
//!
//! It cites another project when the word right before it (across spaces and line breaks,
//! and past a possessive `'s`) names one: an `owner/repo` pair, a package in `Cargo.lock`
//! that is not a workspace member, or one of [`OTHER_PROJECTS`]. So `hyper #4171`,
//! `axum issue #3003`, `hyper's issue 4171` and `(actix-net #606)` pass, while `(issue 9)`,
//! `fix of issue 8`, `TLS (issue 9)` and `see #12` are this project's and fail.
//!
//! The docs: every `.md` file at the workspace root, each workspace member's `README.md`,
//! and the doc comments (`///`, `//!`, `/** */`, `/*! */`, `#[doc = "…"]`) of the library
//! crates' sources.

use std::collections::BTreeSet;
use std::path::Path;

use crate::lex::{tokens, Tok};
use crate::{read, relative, rust_files, Finding};

/// Projects cited in the docs that are no crate in `Cargo.lock`.
pub const OTHER_PROJECTS: [&str; 20] = [
    "actix-net",
    "actix-web",
    "caddy",
    "curl",
    "envoy",
    "go",
    "golang",
    "gunicorn",
    "h2load",
    "haproxy",
    "linux",
    "nghttp2",
    "nginx",
    "node",
    "pingora",
    "rust",
    "rustc",
    "systemd",
    "uvicorn",
    "wrk",
];

/// One reference to an issue of this project: where it starts (a byte offset) and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Byte offset in the text.
    pub offset: usize,
    /// The reference as written (`issues 9, 12`).
    pub text: String,
}

fn is_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// The references to this project's issues in `text`; `projects` holds other projects'
/// names in lower case.
///
/// # Examples
///
/// ```
/// use std::collections::BTreeSet;
/// use graceful_tidy::citations::references;
/// let projects: BTreeSet<String> = ["hyper".to_string()].into();
/// let found = references("hyper #4171 is fixed (issue 12).", &projects);
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].text, "issue 12");
/// ```
pub fn references(text: &str, projects: &BTreeSet<String>) -> Vec<Reference> {
    let mut out = Vec::new();
    let mut consumed_until = 0;
    for (at, c) in text.char_indices() {
        if at < consumed_until {
            continue;
        }
        let before = text[..at].chars().next_back();
        let end = if c == '#' && !before.is_some_and(|b| is_word(b) || b == '/' || b == '&') {
            numbers(text, at)
        } else if is_word(c) && !before.is_some_and(is_word) {
            keyword(text, at).and_then(|after| numbers(text, after))
        } else {
            None
        };
        let Some(end) = end else {
            continue;
        };
        consumed_until = end;
        if !cites_other_project(&text[..at], projects) {
            out.push(Reference {
                offset: at,
                text: text[at..end]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            });
        }
    }
    out
}

/// After `issue`, `issues`, `PR`, `PRs`, `pull request(s)` at `at` (any case), followed by
/// whitespace or `#`: the offset after the keyword and its whitespace.
fn keyword(text: &str, at: usize) -> Option<usize> {
    let rest = &text[at..];
    let word_end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
    let mut after = at + word_end;
    match rest[..word_end].to_lowercase().as_str() {
        "issue" | "issues" | "pr" | "prs" => {}
        "pull" => {
            let tail = text[after..].trim_start();
            let word = tail.split(|c: char| !is_word(c)).next().unwrap_or("");
            if !matches!(word.to_lowercase().as_str(), "request" | "requests") {
                return None;
            }
            after = text.len() - tail.len() + word.len();
        }
        _ => return None,
    }
    let tail = &text[after..];
    let skipped = tail.len() - tail.trim_start().len();
    (skipped > 0 || tail.starts_with('#')).then_some(after + skipped)
}

/// After `#12`, `12`, and lists `12, 13 and #14` starting at `at`: the end offset of the last
/// number, or `None` if no number starts there.
fn numbers(text: &str, at: usize) -> Option<usize> {
    let number_at = |i: usize| -> Option<usize> {
        let rest = &text[i..];
        let rest_after_hash = rest.strip_prefix('#').unwrap_or(rest);
        let start = i + (rest.len() - rest_after_hash.len());
        let digits = rest_after_hash.len()
            - rest_after_hash
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .len();
        let end = start + digits;
        let glued = text[end..].chars().next().is_some_and(is_word);
        (digits > 0 && !glued).then_some(end)
    };
    let mut end = number_at(at)?;
    loop {
        let tail = &text[end..];
        let trimmed = tail.trim_start();
        let sep = [",", "and ", "or ", "&"]
            .iter()
            .find(|s| trimmed.starts_with(**s));
        let Some(sep) = sep else {
            return Some(end);
        };
        let next = &trimmed[sep.len()..];
        let next_at = text.len() - next.trim_start().len();
        match number_at(next_at) {
            Some(e) => end = e,
            None => return Some(end),
        }
    }
}

/// Whether the word just before a reference (whose text precedes it as `before`) names
/// another project.
fn cites_other_project(before: &str, projects: &BTreeSet<String>) -> bool {
    let trimmed = before.trim_end();
    let trimmed = trimmed
        .strip_suffix("'s")
        .or_else(|| trimmed.strip_suffix("\u{2019}s"))
        .unwrap_or(trimmed);
    let start = trimmed
        .rfind(|c: char| !(is_word(c) || matches!(c, '-' | '.' | '/')))
        .map_or(0, |i| {
            i + trimmed[i..].chars().next().map_or(1, char::len_utf8)
        });
    let word = trimmed[start..].trim_matches('.').to_lowercase();
    if word.is_empty() {
        return false;
    }
    let owner_repo = word
        .split_once('/')
        .is_some_and(|(o, r)| !o.is_empty() && !r.is_empty());
    owner_repo || projects.contains(&word) || projects.contains(&word.replace('_', "-"))
}

/// Other projects' names: `Cargo.lock`'s packages that come from a registry or git (not
/// the workspace's own), and [`OTHER_PROJECTS`], in lower case.
pub fn projects(cargo_lock: &str) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = OTHER_PROJECTS.iter().map(|p| p.to_string()).collect();
    for package in cargo_lock.split("[[package]]").skip(1) {
        let field = |key: &str| {
            package.lines().find_map(|l| {
                let value = l.trim().strip_prefix(key)?.trim().strip_prefix('=')?;
                Some(value.trim().trim_matches('"').to_string())
            })
        };
        if let (Some(name), Some(_)) = (field("name"), field("source")) {
            out.insert(name.to_lowercase());
        }
    }
    out
}

/// The references in one Markdown file (`file` names it in the findings).
pub fn in_markdown(file: &str, text: &str, projects: &BTreeSet<String>) -> Vec<Finding> {
    references(text, projects)
        .into_iter()
        .map(|r| Finding {
            file: file.to_string(),
            line: text[..r.offset].matches('\n').count() + 1,
            what: format!("cites \"{}\"", r.text),
        })
        .collect()
}

/// The references in one Rust file's doc comments. Consecutive doc lines are read as one
/// text, so a project named at the end of one line covers a number on the next.
pub fn in_doc_comments(file: &str, text: &str, projects: &BTreeSet<String>) -> Vec<Finding> {
    let toks = tokens(text);
    // Blocks of doc text, with the source line of each of their lines.
    let mut blocks: Vec<(String, Vec<usize>)> = Vec::new();
    let mut last_line = 0;
    for (i, t) in toks.iter().enumerate() {
        let doc = match &t.tok {
            Tok::Doc(d) => d.clone(),
            // `#[doc = "…"]`
            Tok::Str(s)
                if i >= 2
                    && toks[i - 1].tok == Tok::Punct('=')
                    && toks[i - 2].tok == Tok::Ident("doc".into()) =>
            {
                s.clone()
            }
            _ => continue,
        };
        let continues = !blocks.is_empty() && t.line == last_line + 1;
        if !continues {
            blocks.push((String::new(), Vec::new()));
        }
        if let Some((block, lines)) = blocks.last_mut() {
            for (k, line) in doc.split('\n').enumerate() {
                block.push_str(line);
                block.push('\n');
                lines.push(t.line + k);
            }
        }
        last_line = t.line + doc.matches('\n').count();
    }
    let mut out = Vec::new();
    for (block, lines) in blocks {
        for r in references(&block, projects) {
            let k = block[..r.offset].matches('\n').count();
            out.push(Finding {
                file: file.to_string(),
                line: lines.get(k).copied().unwrap_or(0),
                what: format!("cites \"{}\"", r.text),
            });
        }
    }
    out
}

/// The user docs of the workspace at `root`: its `.md` files, its members' `README.md`s,
/// and the library crates' sources (for their doc comments).
pub fn user_docs(
    root: &Path,
    library_crates: &[&str],
) -> Result<(Vec<String>, Vec<String>), String> {
    let mut markdown = Vec::new();
    let entries =
        std::fs::read_dir(root).map_err(|e| format!("reading {}: {e}", root.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "md") {
            markdown.push(relative(root, &path));
        }
    }
    let manifest = read(&root.join("Cargo.toml"))?;
    for member in members(&manifest) {
        if root.join(&member).join("README.md").is_file() {
            markdown.push(format!("{member}/README.md"));
        }
    }
    markdown.sort();
    let mut sources = Vec::new();
    for krate in library_crates {
        for file in rust_files(&root.join(krate).join("src"))? {
            sources.push(relative(root, &file));
        }
    }
    Ok((markdown, sources))
}

/// The `members = [...]` of a workspace manifest.
fn members(manifest: &str) -> Vec<String> {
    let Some(at) = manifest.find("members") else {
        return Vec::new();
    };
    let list = &manifest[at..];
    let (Some(open), Some(close)) = (list.find('['), list.find(']')) else {
        return Vec::new();
    };
    list[open + 1..close]
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_string())
        .filter(|m| !m.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<String> {
        let projects = projects(
            "[[package]]\nname = \"hyper\"\nsource = \"registry+x\"\n\n\
             [[package]]\nname = \"axum\"\nsource = \"registry+x\"\n\n\
             [[package]]\nname = \"graceful-core\"\nversion = \"0.1.0\"\n",
        );
        references(text, &projects)
            .into_iter()
            .map(|r| r.text)
            .collect()
    }

    /// This project's references, as today's README and ARCHITECTURE.md write them.
    #[test]
    fn finds_this_projects_issues() {
        let cases = [
            ("lost on every rolling restart (issue 12) |", "issue 12"),
            ("| lost (issues 9, 12) |", "issues 9, 12"),
            ("Floors (issues 9 and 11):", "issues 9 and 11"),
            ("5 runs per server, issue 8):", "issue 8"),
            ("- **Go's net/http over TLS** (issue 9): loses", "issue 9"),
            ("the HTTP/2 fix of issue 8, and", "issue 8"),
            ("with `tests/http/`: issue 4's behaviours", "issue 4"),
            ("axum issue #3003 (cited in issue 8); dockpanel", "issue 8"),
            ("Fixed in #12.", "#12"),
            ("(see\n#12)", "#12"),
            ("Issue #7 and PR 8", "Issue #7"),
            ("pull request #31 landed", "pull request #31"),
            ("the graceful #5 fix", "#5"),
        ];
        for (text, want) in cases {
            let got = found(text);
            assert_eq!(
                got.first().map(String::as_str),
                Some(want),
                "in {text:?}: {got:?}"
            );
        }
        assert_eq!(found("Issue #7 and PR 8"), vec!["Issue #7", "PR 8"]);
    }

    /// Other projects' issues, named by their project, and things that only look alike.
    #[test]
    fn passes_other_projects_and_look_alikes() {
        let texts = [
            "Socket holds or escapes the drain (axum #3003) [^dock]",
            "cannot be told (actix-net #606) [^606]",
            "[^606]: actix-net #606, \"Not able to",
            "hyper #4171 and nghttp2 #1103",
            "hyper's issue 4171, hyper\u{2019}s PR #12",
            "hyper\nissue #3 across a line",
            "rust-lang/rust#12345 and tokio-rs/tokio #99",
            "assert_eq!(id.to_string(), \"conn#1\");",
            "https://github.com/hyperium/hyper/issues/4171 and page#12 and &#123;",
            "a tissue 5, an issue tracker, issue-free, the issues",
            "# Examples\n## 2 things\n#[derive(Debug)] #![doc] C# `{:#?}`",
            "issue 12a is not a number alone; #12b neither",
        ];
        for text in texts {
            assert_eq!(found(text), Vec::<String>::new(), "in {text:?}");
        }
    }

    #[test]
    fn doc_comments_are_read_with_their_lines() {
        let projects = projects("");
        let src = "//! Crate docs.\n//! As issue 3 showed,\n\n/// See hyper-like\n/// #4 here.\n\
                   #[doc = \"and (issue 5)\"]\n// issue 6 in a plain comment\nfn f() { let _ = \"issue 7\"; }\n\
                   /** block\n  issue 8 */\nfn g() {}\n";
        let got: Vec<String> = in_doc_comments("f.rs", src, &projects)
            .into_iter()
            .map(|f| f.to_string())
            .collect();
        assert_eq!(
            got,
            vec![
                "f.rs:2: cites \"issue 3\"",
                "f.rs:5: cites \"#4\"",
                "f.rs:6: cites \"issue 5\"",
                "f.rs:10: cites \"issue 8\"",
            ]
        );
    }

    #[test]
    fn projects_come_from_the_lock_and_the_list() {
        let p = projects("[[package]]\nname = \"Hyper-Util\"\nsource = \"git+x\"\n[[package]]\nname = \"graceful-core\"\n");
        assert!(p.contains("hyper-util") && p.contains("nghttp2"));
        assert!(!p.contains("graceful-core"));
        assert_eq!(
            members("[workspace]\nmembers = [\"a\", \"xtask/tidy\",\n \"b\"]\n"),
            vec!["a", "xtask/tidy", "b"]
        );
    }
}
