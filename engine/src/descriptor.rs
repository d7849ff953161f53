//! Handler metadata without the handler: what the engine and the controller need to know about a handler to
//! validate, resolve, route, retry and answer for plans that use it, even when the handler itself runs only on
//! a remote node.
//!
//! - names and aliases (upstream type strings);
//! - escaping: which Config/Parameters paths are which language ([`EscapeRule`]s with the handler's own
//!   [`crate::token::Escaper`]s);
//! - reads vs writes per action ([`ActionKind`]): decides retries after an unknown outcome and how much of a
//!   result the controller keeps;
//! - outcome classes ([`OutcomeClass`]): how a finished action's result reads to an API (the controller maps
//!   classes to HTTP statuses in exactly one place);
//! - the handler's own result body (e.g. the AD result envelope) and how a request error looks in it;
//! - static checks of an action's Config and Parameters as written ([`HandlerDescriptor::check_action`]):
//!   what would fail at run time (an unknown action, a filter that does not parse, a Dynamic Target the
//!   handler does not have), reported by `plan validate` and at server start with the plan's other errors.

use crate::model::ParameterInfo;
use crate::path::Seg;
use crate::status::StatusType;
use crate::token::EscapeRule;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What an action does, as far as retries, storage and routing care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActionKind {
    /// Reads only: safe to run again after an unknown outcome.
    Read,
    /// A read that answers a query (custom searches run only these).
    Search,
    /// Changes something (or the handler cannot tell): never repeated blindly.
    Write,
}

impl ActionKind {
    /// Whether running the action twice is harmless.
    pub fn is_read(self) -> bool {
        matches!(self, ActionKind::Read | ActionKind::Search)
    }
}

/// How a finished action (or a refused request) reads to an API client. The controller maps each class to
/// one HTTP status; handlers decide the class from their own result (e.g. the worst AD status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OutcomeClass {
    Success,
    /// A required input was not given.
    MissingInput,
    /// An input was given but is not acceptable.
    InvalidInput,
    NotFound,
    /// The object already exists (or the change conflicts with the object's state).
    Conflict,
    /// The caller or the plan may not do this.
    Forbidden,
    /// The handler does not support the request.
    NotSupported,
    /// The system behind the handler cannot be reached.
    Unavailable,
    /// Anything else that went wrong.
    Failed,
}

impl OutcomeClass {
    /// The class a plain engine status implies, for handlers without a richer result.
    pub fn from_status(status: StatusType) -> OutcomeClass {
        match status {
            StatusType::Complete => OutcomeClass::Success,
            _ => OutcomeClass::Failed,
        }
    }
}

/// A request the controller refused before (or instead of) running the plan, as a handler's result body
/// renders it (for APIs whose clients always expect the handler's envelope).
#[derive(Clone, Copy, Debug)]
pub struct RequestErrorInfo<'a> {
    pub class: OutcomeClass,
    pub message: &'a str,
    /// What the request was about (an identity, a plan name), when known.
    pub subject: &'a str,
}

/// Which block of an action a [`ActionProblem`] is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionBlock {
    /// `Handler.Config`.
    Config,
    /// `Parameters`.
    Parameters,
}

/// A problem a handler finds in an action as written (before any run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionProblem {
    pub block: ActionBlock,
    /// Inside the block, e.g. `Values:Action` or `Dynamic[0]:Target` (placed at that node's line and column).
    pub path: Vec<Seg>,
    pub message: String,
}

impl ActionProblem {
    pub fn new(block: ActionBlock, path: Vec<Seg>, message: impl Into<String>) -> Self {
        ActionProblem {
            block,
            path,
            message: message.into(),
        }
    }
}

/// A handler's metadata. Implemented by a small type in the handler's module; available without the handler
/// (no connections, no configuration), so a controller can hold the descriptors of handlers that only run on
/// remote nodes.
pub trait HandlerDescriptor: Send + Sync {
    /// The canonical short name, e.g. `EmptyHandler`.
    fn name(&self) -> &'static str;

    /// Other names this handler answers to, e.g. upstream type strings
    /// (`Synapse.Handlers.ActiveDirectory:ActiveDirectoryHandler`).
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// How `~~tokens~~` in `Handler.Config` are escaped, by path. Paths without a rule are verbatim.
    fn config_escaping(&self) -> &[EscapeRule] {
        &[]
    }

    /// How `~~tokens~~` in `Parameters` are escaped, by path. Paths without a rule are verbatim.
    fn parameter_escaping(&self) -> &[EscapeRule] {
        &[]
    }

    /// What an action with this `Handler.Config` does (the plan's Config values, or the resolved Config).
    /// The default is the safe answer: a write.
    fn action_kind(&self, _config: &Value) -> ActionKind {
        ActionKind::Write
    }

    /// The outcome class of a finished action, from its status and exit data.
    fn outcome(&self, status: StatusType, _exit_data: &Value) -> OutcomeClass {
        OutcomeClass::from_status(status)
    }

    /// The part of an action's exit data an API answers with, when the handler has its own result body (the
    /// AD result envelope). None: the handler has none, or this exit data is not one.
    fn result_body(&self, _exit_data: &Value) -> Option<Value> {
        None
    }

    /// A refused request in the handler's result body shape, when it has one.
    fn request_error_body(&self, _error: &RequestErrorInfo<'_>) -> Option<Value> {
        None
    }

    /// Static checks of one action's `Handler.Config` and `Parameters` as the plan writes them (Values with
    /// `~~tokens~~` unfilled, Dynamic entries unresolved): every problem that would fail the action at run
    /// time whatever the inputs. Values holding tokens are the run's business. The default finds none.
    fn check_action(
        &self,
        _config: Option<&ParameterInfo>,
        _parameters: Option<&ParameterInfo>,
    ) -> Vec<ActionProblem> {
        Vec::new()
    }
}

/// The descriptor of a handler that needs nothing beyond a name: no escaping, every action a write, outcome
/// classes from the engine status.
#[derive(Clone, Copy, Debug)]
pub struct BasicDescriptor {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
}

impl HandlerDescriptor for BasicDescriptor {
    fn name(&self) -> &'static str {
        self.name
    }
    fn aliases(&self) -> &'static [&'static str] {
        self.aliases
    }
}
