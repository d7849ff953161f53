//! The one integration-test binary (one link step for the whole suite). Each module is a test area.

// Test code: failures should abort loudly, and unique names for test objects may come from the wall clock
// (time that matters to what is tested is driven through synapse_engine::ManualClock).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod ad_handler;
mod api;
mod cli;
mod dns;
mod dns_rfc2136;
mod engine_exec;
mod ldap_pool;
mod nodes;
mod nodes_late;
mod operator;
mod operator_cli;
mod plan_errors;
mod schedules;
mod support;
