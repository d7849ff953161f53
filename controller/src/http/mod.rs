//! The HTTP layer's shared pieces. `error`: [`error::ApiError`] and the one mapping from every error of the
//! controller (catalog, runner, store, auth, request parsing) to an HTTP status and body. `access`:
//! authentication of route groups and the permission each route declares. `origin`: requests from foreign
//! origins and hosts refused (cross-site requests and DNS rebinding). `edges`: the request body's
//! read timeout and its size from `Content-Length`.
//!
//! Everything below this layer (catalog, runner, store, config) returns its own domain error and knows
//! nothing of status codes.

pub mod access;
pub mod edges;
pub mod error;
pub mod origin;
