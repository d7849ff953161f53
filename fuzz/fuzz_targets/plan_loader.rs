//! The plan loader must never panic, whatever the bytes: it returns a plan or diagnostics with positions.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match synapse_engine::load::load_str(text, "fuzz.yaml") {
            Ok(loaded) => {
                let _ = synapse_engine::help::plan_help(&loaded.plan);
                let registry = synapse_engine::HandlerRegistry::new();
                let _ = synapse_engine::validate::validate(&loaded, &registry);
            }
            Err(d) => assert!(!d.0.is_empty()),
        }
    }
});
