//! AddToGroup and RemoveFromGroup, with the group nesting rules checked first.

use super::{attach, push_failure, Ctx, Target};
use crate::ad::envelope::{AdAction, AdObjectType, AdResult, AdStatus};
use crate::ad::errors::map_error;
use crate::ad::identity::resolve;
use crate::ad::objects::{self, group_type};
use ldap3::Mod;
use std::collections::HashSet;

/// Adds or removes `member_dn` (of type `t`) to/from `group_id`. Returns the status and message.
pub async fn membership(
    ctx: &Ctx<'_>,
    t: AdObjectType,
    member_dn: &str,
    group_id: &str,
    remove: bool,
) -> (AdStatus, String) {
    let kind = t.name();
    let (verb, action_text) = if remove {
        ("Removed From", "remove")
    } else {
        ("Added To", "add")
    };
    let group = match resolve(ctx.pool, AdObjectType::Group, group_id, &["groupType"]).await {
        Ok(g) => g,
        Err(f) => return (f.status, format!("Group [{group_id}]: {}", f.message)),
    };
    if !remove && t == AdObjectType::Group {
        // Nesting rules give NotAllowed, not LDAP noise.
        let child = match resolve(ctx.pool, AdObjectType::Group, member_dn, &["groupType"]).await {
            Ok(c) => c,
            Err(f) => return (f.status, f.message),
        };
        if group.dn.eq_ignore_ascii_case(&child.dn) {
            return (
                AdStatus::NotAllowed,
                format!("Group [{group_id}] Cannot Be A Member Of Itself."),
            );
        }
        let pg = objects::int(&group, "groupType").unwrap_or(0);
        let cg = objects::int(&child, "groupType").unwrap_or(0);
        let not_allowed = (pg & group_type::UNIVERSAL != 0 && cg & group_type::DOMAIN_LOCAL != 0)
            || (pg & group_type::GLOBAL != 0 && cg & group_type::GLOBAL == 0);
        if not_allowed {
            let (ps, _) = objects::group_scope(pg);
            let (cs, _) = objects::group_scope(cg);
            return (
                AdStatus::NotAllowed,
                format!(
                    "A {cs} Group Cannot Be A Member Of A {ps} Group ([{member_dn}] -> [{}]).",
                    group.dn
                ),
            );
        }
    }
    if ctx.dry_run {
        return (
            AdStatus::Success,
            format!(
                "Dry Run: {kind} [{member_dn}] Would Be {verb} Group [{}].",
                group.dn
            ),
        );
    }
    let value = HashSet::from([member_dn.as_bytes().to_vec()]);
    let m = if remove {
        Mod::Delete(b"member".to_vec(), value)
    } else {
        Mod::Add(b"member".to_vec(), value)
    };
    match ctx.pool.modify(&group.dn, vec![m]).await {
        Ok(()) => (
            AdStatus::Success,
            format!("{kind} [{member_dn}] {verb} Group [{}].", group.dn),
        ),
        Err(e) => match e.ldap_code() {
            Some(68) | Some(20) if !remove => (
                AdStatus::AlreadyExists,
                format!(
                    "{kind} [{member_dn}] Is Already A Member Of Group [{}].",
                    group.dn
                ),
            ),
            Some(16) | Some(53) | Some(32) if remove => (
                AdStatus::DoesNotExist,
                format!(
                    "{kind} [{member_dn}] Is Not A Member Of Group [{}].",
                    group.dn
                ),
            ),
            _ => {
                let f = map_error(&e, kind, member_dn);
                (
                    f.status,
                    format!("Could not {action_text} membership: {}", f.message),
                )
            }
        },
    }
}

/// AddToGroup / RemoveFromGroup for one object and its `MemberOf` groups.
pub async fn group_membership(ctx: &Ctx<'_>, target: &Target<'_>, remove: bool) -> AdResult {
    let action = if remove {
        AdAction::RemoveFromGroup
    } else {
        AdAction::AddToGroup
    };
    let mut r = AdResult::new(target.t, target.identity);
    if target.member_of.is_empty() {
        r.push(
            AdStatus::MissingInput,
            action,
            format!(
                "MemberOf Lists No Group For {} [{}].",
                target.t.name(),
                target.identity
            ),
        );
        return r;
    }
    let e = match resolve(ctx.pool, target.t, target.identity, &["1.1"]).await {
        Ok(e) => e,
        Err(f) => {
            push_failure(&mut r, action, f);
            return r;
        }
    };
    for g in target.member_of {
        let (status, msg) = membership(ctx, target.t, &e.dn, g, remove).await;
        r.push(status, action, msg);
    }
    attach(ctx, &mut r, target.t, &e.dn, action).await;
    r
}
