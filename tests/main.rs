//! The one integration-test binary (one link step for the whole suite). Each module is a test area.

mod cli;
mod engine_exec;
mod plan_errors;
