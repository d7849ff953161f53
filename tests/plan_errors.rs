//! Error messages for a corpus of broken plans (tests/corpus/broken), as insta snapshots: every message must
//! name file, line, column and field. Changing a message means reviewing the snapshot.

use std::path::Path;
use synapse_engine::{load, validate, Diagnostics};

fn diagnostics_for(path: &Path) -> String {
    let shown = format!("broken/{}", path.file_name().unwrap().to_string_lossy());
    let text = std::fs::read_to_string(path).unwrap();
    let registry = synapse_handlers::builtin_registry();
    match load::load_str(&text, &shown) {
        Err(d) => d.to_string(),
        Ok(l) => Diagnostics(validate::validate(&l, &registry)).to_string(),
    }
}

#[test]
fn broken_plan_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    let mut out = String::new();
    for f in files {
        let d = diagnostics_for(&f);
        assert!(!d.is_empty(), "{} produced no diagnostics", f.display());
        for line in d.lines() {
            // file:line:col: severity: ...
            let parts: Vec<&str> = line.splitn(4, ':').collect();
            assert!(
                parts.len() == 4
                    && parts[1].parse::<usize>().is_ok()
                    && parts[2].parse::<usize>().is_ok(),
                "{line}"
            );
        }
        out.push_str(&d);
        out.push_str("\n\n");
    }
    insta::assert_snapshot!(out);
}

#[test]
fn shipped_plans_validate_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let registry = synapse_handlers::builtin_registry();
    let mut stack = vec![root];
    let mut count = 0;
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yaml") {
                let l = load::load_file(&p).unwrap_or_else(|d| panic!("{d}"));
                let d = Diagnostics(validate::validate(&l, &registry));
                assert!(d.0.is_empty(), "{d}");
                count += 1;
            }
        }
    }
    assert!(count >= 2);
}
