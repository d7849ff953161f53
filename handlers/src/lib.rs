//! synapse-handlers: the built-in handlers. `core` holds the test workhorses (Empty, Echo).
//! Knows nothing of HTTP.

pub mod core;

use std::sync::Arc;
use synapse_engine::HandlerRegistry;

/// A registry with every built-in handler.
pub fn builtin_registry() -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    r.register(Arc::new(core::EmptyHandler));
    r.register(Arc::new(core::EchoHandler));
    r
}
