//! synapse-controller: the HTTP API, plan catalog, instance store, scheduler, auth and dispatch to nodes.
//!
//! Not built yet: the engine (synapse-engine) and the CLI come first; see ARCHITECTURE.md for the order.
