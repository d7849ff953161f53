//! synapse-node: the worker loop that takes action jobs, runs handlers and reports.
//!
//! Not built yet: the engine (synapse-engine) and the CLI come first; see ARCHITECTURE.md for the order.
