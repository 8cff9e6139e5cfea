//! The tidy checks, run by `cargo test --workspace` (or `cargo test -p graceful-tidy`).
//!
//! Each test is one rule; its failure message lists every place that breaks it and says
//! what to do.

use std::fs;
use std::time::Instant;

use graceful_tidy::{api, citations, cycles, diff, glue, workspace_root, LIBRARY_CRATES};

/// The public API listings under `api/` match the code. `TIDY_BLESS=1` rewrites them.
#[test]
fn public_api_listings_are_current() {
    let root = workspace_root();
    let bless = std::env::var("TIDY_BLESS").is_ok_and(|v| v == "1");
    let mut public = api::PublicPaths::new();
    let mut diffs = String::new();
    let started = Instant::now();
    for package in LIBRARY_CRATES {
        let doc = api::rustdoc_json(&root, package).unwrap_or_else(|e| panic!("{e}"));
        let listing = api::render(&doc, package, &mut public).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{package}: {} public item paths ({} re-exports), {} trait impls",
            listing.items, listing.re_exports, listing.impls
        );
        let file = api::listing_path(&root, package);
        let checked_in = fs::read_to_string(&file).unwrap_or_default();
        if checked_in == listing.text {
            continue;
        }
        if bless {
            fs::create_dir_all(file.parent().unwrap_or(&root)).expect("creating api/");
            fs::write(&file, &listing.text).expect("writing the listing");
            println!("blessed {}", file.display());
        } else {
            let name = format!("api/{package}.txt");
            diffs.push_str(&diff::unified(
                &checked_in,
                &listing.text,
                &format!("{name} (checked in)"),
                &format!("{name} (from the code)"),
                3,
            ));
        }
    }
    println!("rustdoc JSON and listings: {:.1?}", started.elapsed());
    assert!(
        diffs.is_empty(),
        "the public API differs from the checked-in listings:\n\n{diffs}\n\
         If the change is deliberate, accept it and commit api/:\n    \
         TIDY_BLESS=1 cargo test -p graceful-tidy\n"
    );
}

/// No cycle among the top-level modules of a library crate (the port of `cycles.py`).
#[test]
fn library_crates_have_no_module_cycles() {
    let root = workspace_root();
    let mut report = String::new();
    for package in LIBRARY_CRATES {
        let (modules, lib) =
            cycles::load(&root, &root.join(package)).unwrap_or_else(|e| panic!("{e}"));
        let layering = cycles::analyse(&modules, &lib);
        println!("{package}: {} cycle group(s)", layering.cycles.len());
        if !layering.cycles.is_empty() {
            report.push_str(&format!(
                "{package}: {} cycle group(s)\n{}",
                layering.cycles.len(),
                layering.report()
            ));
        }
    }
    assert!(
        report.is_empty(),
        "the top-level modules of these crates use each other in a circle:\n{report}\n\
         Each use is a `crate::module` path or a `crate::Name` that lib.rs re-exports, in \
         code or docs. Make the lower module stop naming the higher one.\n"
    );
}

/// No `#[doc(hidden)]`, `__` public item or `#[macro_export]` in the library crates.
#[test]
fn library_crates_have_no_hidden_glue() {
    let root = workspace_root();
    let found = glue::hidden_items_in(&root, &LIBRARY_CRATES).unwrap_or_else(|e| panic!("{e}"));
    let list: Vec<String> = found.iter().map(|f| format!("    {f}\n")).collect();
    assert!(
        found.is_empty(),
        "hidden or private glue in the library crates ({}):\n{}\
         What a library crate exports is what its docs show: make it a documented public \
         item, or crate-private.\n",
        found.len(),
        list.concat()
    );
}

/// No `#[path]` (or `include!`) reaches out of its own crate.
#[test]
fn no_path_include_leaves_its_crate() {
    let root = workspace_root();
    let includes = glue::includes(&root).unwrap_or_else(|e| panic!("{e}"));
    for inc in &includes {
        let verdict = if inc.same_crate {
            "stays in its crate"
        } else {
            "LEAVES its crate"
        };
        println!("{} -> {} ({verdict})", inc.at, inc.resolved);
    }
    let leaving: Vec<String> = includes
        .iter()
        .filter(|i| !i.same_crate)
        .map(|i| format!("    {} -> {}\n", i.at, i.resolved))
        .collect();
    assert!(
        leaving.is_empty(),
        "these includes reach into another crate's files ({}):\n{}\
         Share the code through a crate (xtask/harness for test plumbing) instead.\n",
        leaving.len(),
        leaving.concat()
    );
}

/// README.md, ARCHITECTURE.md, the other root docs, the crates' READMEs and the library
/// crates' doc comments cite no issue numbers of this project.
#[test]
fn user_docs_cite_no_issue_numbers() {
    let root = workspace_root();
    let lock = fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let projects = citations::projects(&lock);
    let (markdown, sources) =
        citations::user_docs(&root, &LIBRARY_CRATES).unwrap_or_else(|e| panic!("{e}"));
    let mut found = Vec::new();
    for file in &markdown {
        let text = fs::read_to_string(root.join(file)).expect("reading a doc");
        found.extend(citations::in_markdown(file, &text, &projects));
    }
    for file in &sources {
        let text = fs::read_to_string(root.join(file)).expect("reading a source");
        found.extend(citations::in_doc_comments(file, &text, &projects));
    }
    println!(
        "read {} Markdown files and {} sources",
        markdown.len(),
        sources.len()
    );
    let list: Vec<String> = found.iter().map(|f| format!("    {f}\n")).collect();
    assert!(
        found.is_empty(),
        "user docs cite this project's issues ({}):\n{}\
         Say what the issue was about instead. To cite another project's issue, name the \
         project first (`hyper #4171`, `axum issue #3003`); a project that is no crate in \
         Cargo.lock goes in OTHER_PROJECTS (xtask/tidy/src/citations.rs).\n",
        found.len(),
        list.concat()
    );
}
