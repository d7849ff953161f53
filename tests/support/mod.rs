//! Support code shared by the integration tests: fixtures that start real servers once per test
//! process.
#![allow(dead_code)]

pub mod bind;
pub mod dc;
pub mod fixture;
pub mod nats;
pub mod proxy;
pub mod serve;
