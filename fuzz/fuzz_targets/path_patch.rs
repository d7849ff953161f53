//! Colon-path parsing, select and patch must never panic; a successful patch must be selectable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use synapse_engine::path::{patch, select, ColonPath, PatchOptions};

fuzz_target!(|input: (&str, &str, &str)| {
    let (doc, path, value) = input;
    let Ok(path) = path.parse::<ColonPath>() else { return };
    let mut doc: serde_json::Value = serde_json::from_str(doc).unwrap_or(serde_json::Value::Null);
    let value = serde_json::Value::String(value.to_string());
    let before = doc.clone();
    match patch(&mut doc, &path, value, PatchOptions::default()) {
        Ok(()) => {
            let _ = select(&doc, &path);
        }
        Err(_) => assert_eq!(doc, before, "a failed patch changes nothing"),
    }
});
