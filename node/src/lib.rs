//! synapse-node: actions dispatched over NATS JetStream to node workers (`synapse node`).
//!
//! Both sides live here so they share one description of the subjects and messages:
//!
//! * [`settings`]: the `Nats:` section of synapse.yaml / `SYNAPSE_NATS_*` (URL, credentials, TLS, ack wait,
//!   redelivery) and [`settings::connect`] with clear errors;
//! * [`subjects`]: the work-queue stream, one subject and one durable consumer per (handler, label pool);
//! * [`messages`]: what a node sends back (progress, result) and what it publishes about itself (heartbeat);
//! * [`dispatcher::NatsDispatcher`]: the controller's [`synapse_engine::Dispatcher`] over JetStream;
//! * [`worker`]: the node loop (pull, run with the local registry, heartbeat, cancel, drain);
//! * [`directory::NodeDirectory`]: the live view of the heartbeat KV bucket (routing, `GET /synapse/nodes`).
//!
//! Delivery is at least once (docs/decisions.md "Node workers over NATS JetStream").

pub mod directory;
pub mod dispatcher;
pub mod messages;
pub mod settings;
pub mod subjects;
pub mod worker;

pub use directory::{NodeDirectory, NodeView};
pub use dispatcher::NatsDispatcher;
pub use settings::{connect, NatsError, NatsSettings};
pub use worker::{run_node, NodeOptions};
