//! ActiveDirectoryHandler: users, groups, OUs, computers, membership and search over LDAP, answering with the
//! result envelope of seed 002.
//!
//! - `settings`: per-domain settings (names + the generic `LdapSettings`); `domain`: a domain's pool (the
//!   generic `crate::ldap::LdapPool` with the domain's names).
//! - `model`: Config and Parameters as plans write them; `fields`: typed fields -> attribute changes.
//! - `identity`: identity forms -> escaped filters -> one entry; `ops/`: the per-object operations;
//!   `search`: SearchRequests; `objects`, `values`, `sid`: output shapes and value codecs.
//! - `envelope`: the result envelope; `errors`: LDAP outcome -> envelope status.
//! - `descriptor`: the handler's metadata (escaping per path, reads vs writes, outcome classes).

pub mod check;
pub mod descriptor;
pub mod domain;
pub mod domains;
pub mod envelope;
pub mod errors;
pub mod fields;
pub mod identity;
pub mod model;
pub mod objects;
pub mod ops;
pub mod search;
pub mod settings;
pub mod sid;
pub mod values;

use crate::ad::domain::DomainPool;
use crate::ad::domains::Domains;
use crate::ad::envelope::{AdAction, AdEnvelope, AdObjectType, AdResult, AdStatus};
use crate::ad::fields::Changes;
use crate::ad::model::{ActionName, AdConfig, AdParameters, OutputType};
use crate::ad::ops::{Ctx, Target};
use crate::ad::settings::{ActiveDirectoryConfig, DomainSettings};
use async_trait::async_trait;
use futures::future::join_all;
use serde_json::Value;
use std::future::Future;
use std::sync::Arc;
use synapse_engine::{
    ActionContext, ExecuteResult, Handler, HandlerDescriptor, PoolGauges, StatusType, TargetHealth,
};

/// The handler. Cheap to share; pools are opened on first use and kept (shared with the DnsHandler).
pub struct ActiveDirectoryHandler {
    domains: Domains,
}

impl ActiveDirectoryHandler {
    /// A handler for these domains (the first is the default).
    pub fn new(domains: Vec<DomainSettings>) -> Self {
        Self::with_domains(Domains::new(domains))
    }

    /// A handler over domains (and pools) shared with other handlers (`crate::registry`).
    pub fn with_domains(domains: Domains) -> Self {
        ActiveDirectoryHandler { domains }
    }

    /// A handler built from its section of `Handlers` in `synapse.yaml` (`crate::registry` checks the section
    /// first; a domain's settings are checked again when its pool opens). With no domain, every action
    /// reports a ConnectionError saying so.
    pub fn from_config(cfg: &ActiveDirectoryConfig) -> Self {
        Self::new(cfg.domains.clone())
    }

    /// A handler configured from `SYNAPSE_AD_*` variables; with no `SYNAPSE_AD_URL`, a handler with no domain
    /// (every action then reports a ConnectionError saying so). Invalid settings are returned as an error.
    pub fn from_env() -> Result<Self, crate::Error> {
        Ok(Self::from_config(
            &ActiveDirectoryConfig::from_env()?.unwrap_or_default(),
        ))
    }

    async fn pool(&self, cfg: &AdConfig) -> Result<DomainPool, (AdStatus, String)> {
        let (_, domain) = self.domains.pick(cfg.domain.as_deref())?;
        domain
            .pool()
            .await
            .map_err(|m| (AdStatus::ConnectionError, m))
    }

    /// Each domain: its pool opened (connect, bind) and the rootDSE read through it.
    async fn check_domains(&self) -> Vec<TargetHealth> {
        let checks = self.domains.iter().map(|d| async move {
            let result = match d.pool().await {
                Ok(pool) => pool.root_dse().await.map(|_| ()).map_err(|e| {
                    format!("Domain [{}]: reading the rootDSE: {e}", d.settings().name())
                }),
                Err(e) => Err(e),
            };
            TargetHealth {
                target: d.settings().name().to_string(),
                ready: result.is_ok(),
                error: result.err(),
            }
        });
        join_all(checks).await
    }
}

/// Runs `f` over `items`, concurrently unless `sequential`; results keep the request order.
async fn each<'a, T, F, Fut>(items: &'a [T], sequential: bool, f: F) -> Vec<AdResult>
where
    F: Fn(&'a T) -> Fut,
    Fut: Future<Output = AdResult>,
{
    if sequential {
        let mut out = Vec::with_capacity(items.len());
        for i in items {
            out.push(f(i).await);
        }
        out
    } else {
        join_all(items.iter().map(f)).await
    }
}

/// An envelope with one failed result per requested object (bad input, no connection).
fn failed_envelope(
    params: &AdParameters,
    action: AdAction,
    status: AdStatus,
    message: &str,
) -> AdEnvelope {
    let mut ids: Vec<(AdObjectType, &str)> = Vec::new();
    ids.extend(
        params
            .users
            .iter()
            .map(|u| (AdObjectType::User, u.identity.as_str())),
    );
    ids.extend(
        params
            .groups
            .iter()
            .map(|g| (AdObjectType::Group, g.identity.as_str())),
    );
    ids.extend(
        params
            .computers
            .iter()
            .map(|c| (AdObjectType::Computer, c.identity.as_str())),
    );
    ids.extend(
        params
            .organizational_units
            .iter()
            .map(|o| (AdObjectType::OrganizationalUnit, o.identity.as_str())),
    );
    ids.extend(
        params
            .search_requests
            .iter()
            .map(|s| (AdObjectType::SearchResults, s.filter.as_str())),
    );
    if ids.is_empty() {
        ids.push((AdObjectType::None, ""));
    }
    let results = ids
        .into_iter()
        .map(|(t, id)| {
            let mut r = AdResult::new(t, id);
            r.push(status, action, message);
            r
        })
        .collect();
    AdEnvelope { results }
}

fn action_code(a: ActionName) -> AdAction {
    match a {
        ActionName::Get => AdAction::Get,
        ActionName::Create => AdAction::Create,
        ActionName::Modify => AdAction::Modify,
        ActionName::Delete => AdAction::Delete,
        ActionName::Move => AdAction::Move,
        ActionName::AddToGroup => AdAction::AddToGroup,
        ActionName::RemoveFromGroup => AdAction::RemoveFromGroup,
        ActionName::Search => AdAction::Search,
    }
}

/// The targets of a request, in the order upstream processes each action.
fn targets(p: &AdParameters, action: ActionName) -> Vec<(AdObjectType, Vec<Target<'_>>)> {
    // Only Create and Modify use the attribute changes; other actions skip building them.
    let writes = matches!(action, ActionName::Create | ActionName::Modify);
    let users = || {
        p.users
            .iter()
            .map(|u| Target {
                t: AdObjectType::User,
                identity: &u.identity,
                name: u.name.as_deref(),
                move_to: u.move_to.as_deref(),
                member_of: &u.member_of,
                changes: if writes {
                    fields::user(u)
                } else {
                    Ok(Changes::default())
                },
            })
            .collect::<Vec<_>>()
    };
    let groups = || {
        p.groups
            .iter()
            .map(|g| Target {
                t: AdObjectType::Group,
                identity: &g.identity,
                name: g.name.as_deref(),
                move_to: g.move_to.as_deref(),
                member_of: &g.member_of,
                changes: if writes {
                    fields::group(g)
                } else {
                    Ok(Changes::default())
                },
            })
            .collect::<Vec<_>>()
    };
    let computers = || {
        p.computers
            .iter()
            .map(|c| Target {
                t: AdObjectType::Computer,
                identity: &c.identity,
                name: c.name.as_deref(),
                move_to: c.move_to.as_deref(),
                member_of: &c.member_of,
                changes: if writes {
                    fields::computer(c)
                } else {
                    Ok(Changes::default())
                },
            })
            .collect::<Vec<_>>()
    };
    let ous = || {
        p.organizational_units
            .iter()
            .map(|o| Target {
                t: AdObjectType::OrganizationalUnit,
                identity: &o.identity,
                name: o.name.as_deref(),
                move_to: o.move_to.as_deref(),
                member_of: &[],
                changes: if writes {
                    fields::organizational_unit(o)
                } else {
                    Ok(Changes::default())
                },
            })
            .collect::<Vec<_>>()
    };
    use AdObjectType::*;
    match action {
        // Parents before children when creating; children before parents when deleting.
        ActionName::Create | ActionName::Modify => vec![
            (OrganizationalUnit, ous()),
            (Computer, computers()),
            (Group, groups()),
            (User, users()),
        ],
        ActionName::Get | ActionName::Delete | ActionName::Move => vec![
            (User, users()),
            (Group, groups()),
            (Computer, computers()),
            (OrganizationalUnit, ous()),
        ],
        ActionName::AddToGroup | ActionName::RemoveFromGroup => {
            vec![(User, users()), (Group, groups()), (Computer, computers())]
        }
        ActionName::Search => Vec::new(),
    }
}

async fn run_action(ctx: &Ctx<'_>, params: &AdParameters) -> AdEnvelope {
    let seq = ctx.cfg.run_sequential;
    let mut results = Vec::new();
    if ctx.cfg.action == ActionName::Search {
        results.extend(each(&params.search_requests, seq, |r| search::search(ctx, r)).await);
        return AdEnvelope { results };
    }
    for (_, group) in targets(params, ctx.cfg.action) {
        // Creates and modifies consume their targets (upsert may switch between them).
        let out = match ctx.cfg.action {
            ActionName::Create | ActionName::Modify => {
                let create = ctx.cfg.action == ActionName::Create;
                let futs = group.into_iter().map(|t| async move {
                    if create {
                        ops::create(ctx, t).await
                    } else {
                        ops::modify(ctx, t).await
                    }
                });
                if seq {
                    let mut v = Vec::new();
                    for f in futs {
                        v.push(f.await);
                    }
                    v
                } else {
                    join_all(futs).await
                }
            }
            ActionName::Get => each(&group, seq, |t| ops::get(ctx, t)).await,
            ActionName::Delete => each(&group, seq, |t| ops::delete(ctx, t)).await,
            ActionName::Move => each(&group, seq, |t| ops::move_to(ctx, t)).await,
            ActionName::AddToGroup => {
                each(&group, seq, |t| ops::group_membership(ctx, t, false)).await
            }
            ActionName::RemoveFromGroup => {
                each(&group, seq, |t| ops::group_membership(ctx, t, true)).await
            }
            ActionName::Search => Vec::new(),
        };
        results.extend(out);
    }
    AdEnvelope { results }
}

/// The envelope as exit data, in the configured OutputType.
fn render(env: AdEnvelope, cfg: &AdConfig) -> Value {
    let value = env.into_value();
    match cfg.output_type {
        OutputType::Json => value,
        OutputType::Yaml => serde_yaml::to_string(&value)
            .map(Value::String)
            .unwrap_or(value),
        OutputType::Xml => Value::String(crate::format::xml::to_xml(
            "AdResults",
            &value,
            cfg.pretty_print,
        )),
    }
}

fn summary(env: &AdEnvelope) -> String {
    let total: usize = env.results.iter().map(|r| r.statuses.len()).sum();
    let ok: usize = env
        .results
        .iter()
        .flat_map(|r| r.statuses.iter())
        .filter(|s| s.status == AdStatus::Success)
        .count();
    let first_failure = env
        .results
        .iter()
        .flat_map(|r| r.statuses.iter())
        .find(|s| s.status != AdStatus::Success)
        .map(|s| format!("; first failure: {} ({})", s.message, s.status.name()))
        .unwrap_or_default();
    format!("{ok} of {total} steps succeeded{first_failure}")
}

#[async_trait]
impl Handler for ActiveDirectoryHandler {
    fn descriptor(&self) -> Arc<dyn HandlerDescriptor> {
        Arc::new(descriptor::AdDescriptor::default())
    }

    async fn check_targets(&self) -> Vec<TargetHealth> {
        self.check_domains().await
    }

    fn unconfigured(&self) -> Option<String> {
        self.domains.is_empty().then(|| {
            "no AD domain is configured (`Handlers: ActiveDirectory: Domains` in synapse.yaml, or SYNAPSE_AD_*)"
                .to_string()
        })
    }

    fn pool_gauges(&self) -> Vec<(String, PoolGauges)> {
        self.domains
            .iter()
            .filter_map(|d| {
                let stats = d.opened()?.stats();
                Some((
                    d.settings().name().to_string(),
                    PoolGauges {
                        in_use: stats.in_use,
                        idle: stats.idle,
                        opened: stats.opened,
                        errors: stats.failed + stats.discarded,
                    },
                ))
            })
            .collect()
    }

    async fn execute(&self, ctx: &ActionContext, config: Value, params: Value) -> ExecuteResult {
        let cfg: AdConfig = match config {
            Value::Null => AdConfig::default(),
            v => match serde_json::from_value(v) {
                Ok(c) => c,
                Err(e) => {
                    return invalid(
                        &AdParameters::default(),
                        AdAction::None,
                        format!("Config: {e}"),
                    )
                }
            },
        };
        let action = action_code(cfg.action);
        let params: AdParameters = match params {
            Value::Null => AdParameters::default(),
            v => match serde_json::from_value(v) {
                Ok(p) => p,
                Err(e) => {
                    return invalid(&AdParameters::default(), action, format!("Parameters: {e}"))
                }
            },
        };
        if cfg.load_schema {
            return invalid(
                &params,
                action,
                "Config: LoadSchema is not supported".into(),
            );
        }
        if cfg.return_access_rules {
            return invalid(
                &params,
                action,
                "Config: ReturnAccessRules is not supported yet".into(),
            );
        }
        let pool = match self.pool(&cfg).await {
            Ok(p) => p,
            Err((status, msg)) => {
                let env = failed_envelope(&params, action, status, &msg);
                return ExecuteResult {
                    status: StatusType::Failed,
                    exit_data: render(env, &cfg),
                    message: msg,
                    exit_code: 0,
                    ran_on: None,
                };
            }
        };
        let octx = Ctx {
            pool: &pool,
            cfg: &cfg,
            dry_run: ctx.dry_run,
            deadline: ctx.deadline,
        };
        let env = run_action(&octx, &params).await;
        let message = summary(&env);
        if !cfg.suppress_output {
            ctx.report(StatusType::Running, message.clone());
        }
        let status = env.engine_status();
        let exit_code = i32::from(env.worst().code());
        ExecuteResult {
            status,
            exit_data: render(env, &cfg),
            message,
            exit_code,
            ran_on: None,
        }
    }
}

fn invalid(params: &AdParameters, action: AdAction, message: String) -> ExecuteResult {
    let env = failed_envelope(params, action, AdStatus::InvalidInput, &message);
    ExecuteResult {
        status: StatusType::Failed,
        exit_data: serde_json::to_value(&env).unwrap_or(Value::Null),
        message,
        exit_code: i32::from(AdStatus::InvalidInput.code()),
        ran_on: None,
    }
}
