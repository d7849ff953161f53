//! synapse-engine: the plan language and its executor.
//!
//! - [`model`]: what a plan author writes (PascalCase YAML, upstream-compatible superset).
//! - [`load`]: YAML loading with file:line:column diagnostics; [`validate`]: the semantic checks.
//! - [`path`]: colon paths; [`resolve`]: the parameter pipeline; [`token`]: `~~tokens~~` and the
//!   [`token::Escaper`] seam through which handlers escape them.
//! - [`handler`]: the Handler trait and registry; [`descriptor`]: handler metadata without the handler;
//!   [`wire`]: the serializable action request and dispatch outcome; [`dispatch`]: the Dispatcher seam;
//!   [`executor`]: the run; [`clock`]: calendar time as a parameter.
//!
//! This crate knows nothing of HTTP, LDAP or storage.

pub mod clock;
pub mod descriptor;
pub mod dispatch;
pub mod executor;
pub mod handler;
pub mod help;
pub mod load;
pub mod model;
pub mod nesting;
pub mod params;
pub mod path;
pub mod progress;
pub mod resolve;
pub mod result;
pub mod status;
pub mod token;
pub mod validate;
pub mod wire;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use descriptor::{
    ActionBlock, ActionKind, ActionProblem, BasicDescriptor, HandlerDescriptor, OutcomeClass,
    RequestErrorInfo,
};
pub use dispatch::{ActionJob, ActionRuntime, Dispatcher, InProcess};
pub use executor::{Executor, RunError, RunOptions};
pub use handler::{
    ActionContext, ExecuteResult, Handler, HandlerRegistry, PoolGauges, RanOn, TargetHealth,
};
pub use load::{Diagnostic, Diagnostics, LoadedPlan, Severity};
pub use model::Plan;
pub use params::DynamicParams;
pub use progress::{ProgressEvent, ProgressSink};
pub use result::{ActionResult, PlanResult};
pub use status::{ExecuteCase, StatusType};
pub use token::{EscapeRule, Escaper, Verbatim};
pub use wire::{ActionRequest, DispatchOutcome, IdempotencyKey};

/// What secrets are replaced with in output, history, logs and errors.
pub const MASK: &str = "********";

/// The words that make a name secret-looking (matched anywhere in the lower-cased name).
const SECRET_WORDS: [&str; 8] = [
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "privatekey",
];

/// Endings of names that contain a secret word but hold facts about a secret, not the secret
/// (`pwdLastSet`, `badPwdCount`, `PasswordNeverExpires`, `minPwdLength`, `PasswordNotRequired`, ...).
const NOT_SECRET_ENDINGS: [&str; 12] = [
    "lastset",
    "passwordset",
    "count",
    "length",
    "age",
    "properties",
    "time",
    "expires",
    "expired",
    "required",
    "policy",
    "encryption",
];

/// Whether a parameter, field or attribute name looks like it holds a secret: it contains `password`,
/// `passwd`, `pwd`, `secret`, `token`, `apikey`, `api_key` or `privatekey` (so `Password`, `ApiKey`,
/// `userPassword`, `unicodePwd`, `ntPwdHistory`, `client_secret`, `AccessToken`), unless it names a fact about
/// a secret (`pwdLastSet`, `badPwdCount`, `PasswordNeverExpires`, `UserCannotChangePassword`, ...). The one
/// masking rule: [`wire::redact_value`] applies it to plans, parameters, results and logs alike.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|s| n.contains(s))
        && !n.starts_with("planstartinfo_")
        && !n.contains("cannotchange")
        && !NOT_SECRET_ENDINGS.iter().any(|e| n.ends_with(e))
}

/// Whether a text mentions a secret word at all (a cheap test before looking inside it).
pub(crate) fn mentions_secret(text: &str) -> bool {
    let n = text.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|s| n.contains(s))
}
