//! Core handlers: no external systems, used to test plans and the engine.

mod echo;
mod empty;

pub use echo::EchoHandler;
pub use empty::EmptyHandler;

use serde_json::Value;

/// A value from `params`, else from `config` (case-insensitive key).
fn field<'a>(params: &'a Value, config: &'a Value, name: &str) -> Option<&'a Value> {
    let get = |v: &'a Value| {
        v.as_object()
            .and_then(|m| {
                m.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v)
            })
            .filter(|v| !v.is_null())
    };
    get(params).or_else(|| get(config))
}
