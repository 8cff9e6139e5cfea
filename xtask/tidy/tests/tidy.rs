//! The tidy checks, run by `cargo test --workspace` (or `cargo test -p graceful-tidy`).
//!
//! Each test is one rule; its failure message lists every place that breaks it and says
//! what to do.

use std::fs;
use std::time::Instant;

use graceful_tidy::{api, cycles, diff, workspace_root, LIBRARY_CRATES};

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
