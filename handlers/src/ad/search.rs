//! `Search`: SearchRequests with Filter, SearchBase, ReturnAttributes and Find/ReplaceWith parameters.
//! Find is literal text; ReplaceWith is escaped as an RFC 4515 value before it goes in (upstream used a regex
//! and an unescaped replacement: an injection). Results are always paged.

use crate::ad::envelope::{AdAction, AdObjectType, AdResult, AdStatus};
use crate::ad::errors::map_error;
use crate::ad::model::AdSearchRequest;
use crate::ad::ops::Ctx;
use crate::ad::values;
use crate::ldap::escape::{ldap_filter_value, validate_dn};
use ldap3::Scope;
use serde_json::{json, Map, Value};

/// The filter after Find/ReplaceWith (each Find replaced everywhere, literally, case-sensitively).
pub fn apply_parameters(req: &AdSearchRequest) -> String {
    let mut filter = req.filter.clone();
    for p in &req.parameters {
        if p.find.is_empty() {
            continue;
        }
        let with = ldap_filter_value(p.replace_with.as_deref().unwrap_or(""));
        filter = filter.replace(&p.find, &with);
    }
    filter
}

pub async fn search(ctx: &Ctx<'_>, req: &AdSearchRequest) -> AdResult {
    let filter = apply_parameters(req);
    let mut r = AdResult::new(AdObjectType::SearchResults, filter.clone());
    if req
        .results_file
        .as_deref()
        .is_some_and(|f| !f.trim().is_empty())
    {
        r.push(
            AdStatus::NotSupported,
            AdAction::Search,
            "ResultsFile Is Not Supported; Results Are Returned In The Response.",
        );
        return r;
    }
    if filter.trim().is_empty() {
        r.push(
            AdStatus::MissingInput,
            AdAction::Search,
            "Filter Is Required.",
        );
        return r;
    }
    let base = req
        .search_base
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .unwrap_or(ctx.pool.base_dn())
        .to_string();
    if let Err(e) = validate_dn(&base) {
        r.push(
            AdStatus::InvalidPath,
            AdAction::Search,
            format!("SearchBase [{base}] Is Not Valid: {}.", e.reason),
        );
        return r;
    }
    if ctx.dry_run {
        r.push(
            AdStatus::Success,
            AdAction::Search,
            format!("Dry Run: Would Search [{base}] For [{filter}]."),
        );
        return r;
    }
    let attrs: Vec<String> = if req.return_attributes.is_empty() {
        vec!["1.1".into()]
    } else {
        req.return_attributes.clone()
    };
    match ctx
        .pool
        .search(&base, Scope::Subtree, &filter, &attrs)
        .await
    {
        Ok(entries) => {
            let rows: Vec<Value> = entries
                .iter()
                .map(|e| {
                    let mut row = Map::new();
                    row.insert("Path".into(), json!(format!("LDAP://{}", e.dn)));
                    row.insert("DistinguishedName".into(), json!(e.dn));
                    if !req.return_attributes.is_empty() {
                        let all = values::properties(&e.attrs, &e.bin_attrs);
                        let mut props = Map::new();
                        for a in &req.return_attributes {
                            let v = all
                                .iter()
                                .find(|(k, _)| k.eq_ignore_ascii_case(a))
                                .map(|(_, v)| v.clone());
                            let v = match v {
                                Some(v) => v,
                                None if a.eq_ignore_ascii_case("distinguishedName") => {
                                    json!([e.dn])
                                }
                                None => Value::Null,
                            };
                            props.insert(a.clone(), v);
                        }
                        row.insert("Properties".into(), Value::Object(props));
                    }
                    Value::Object(row)
                })
                .collect();
            r.push(
                AdStatus::Success,
                AdAction::Search,
                format!("[{}] Records Found.", rows.len()),
            );
            r.set_object(json!({ "Results": rows }));
        }
        Err(e) => {
            let mut f = map_error(&e, "Search", &filter);
            if e.ldap_code() == Some(32) {
                f.status = AdStatus::DoesNotExist;
                f.message = format!("SearchBase [{base}] Does Not Exist.");
            }
            r.push(f.status, AdAction::Search, f.message);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::model::FindReplace;

    #[test]
    fn replacement_is_escaped_and_find_is_literal() {
        let req = AdSearchRequest {
            filter: "(&(objectClass=group)(member=xxxx))".into(),
            parameters: vec![FindReplace {
                find: "xxxx".into(),
                replace_with: Some("*)(cn=*".into()),
            }],
            ..Default::default()
        };
        assert_eq!(
            apply_parameters(&req),
            "(&(objectClass=group)(member=\\2a\\29\\28cn=\\2a))"
        );
        let req = AdSearchRequest {
            filter: "(cn=a.b)".into(),
            parameters: vec![FindReplace {
                find: ".".into(),
                replace_with: Some("$1".into()),
            }],
            ..Default::default()
        };
        assert_eq!(apply_parameters(&req), "(cn=a$1b)");
    }
}
