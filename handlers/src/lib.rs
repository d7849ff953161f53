//! synapse-handlers: the built-in handlers. `core` holds the test workhorses (Empty, Echo).
//! Knows nothing of HTTP.

pub mod ad;
pub mod config;
pub mod core;
pub mod error;
pub mod format;
pub mod ldap;

pub use error::Error;

use std::sync::Arc;
use synapse_engine::HandlerRegistry;

/// A registry with every built-in handler.
pub fn builtin_registry() -> HandlerRegistry {
    let mut r = HandlerRegistry::new();
    r.register(Arc::new(core::EmptyHandler));
    r.register(Arc::new(core::EchoHandler));
    r.register(Arc::new(ad::ActiveDirectoryHandler::new(Vec::new())));
    r
}

/// A registry with every built-in handler, the ActiveDirectoryHandler configured from `SYNAPSE_AD_*`.
pub fn registry_from_env() -> Result<HandlerRegistry, Error> {
    let mut r = builtin_registry();
    r.register(Arc::new(ad::ActiveDirectoryHandler::from_env()?));
    Ok(r)
}
