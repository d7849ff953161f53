//! The one integration-test binary (one link step for the whole suite). Each module is a test area.

mod ad_handler;
mod api;
mod cli;
mod engine_exec;
mod ldap_pool;
mod plan_errors;
mod support;
