//! The ActiveDirectoryHandler against the fixture Samba AD DC: every action and object type, every identity
//! form, bad input and injection. Each test works in its own OU; results are checked with an independent
//! LDAP read, not only the handler's own output.

use serde_json::{json, Value};
use std::sync::Arc;
use synapse_engine::{
    load, ActionContext, DynamicParams, Executor, Handler, RunOptions, StatusType,
};
use synapse_handlers::ad::settings::ActiveDirectoryConfig;
use synapse_handlers::ad::ActiveDirectoryHandler;
use synapse_handlers::ldap::{LdapPool, Scope, SearchEntry};

use crate::support::dc::{dc, random_suffix};
use crate::support::proxy::PausingProxy;
use std::time::Duration;

struct Ad {
    handler: ActiveDirectoryHandler,
    pool: LdapPool,
    ou: String,
}

async fn setup(prefix: &str) -> Ad {
    let dc = dc();
    Ad {
        handler: ActiveDirectoryHandler::new(vec![dc.settings()]),
        pool: dc.pool().await,
        ou: dc.unique_ou(prefix).await,
    }
}

/// Every built-in handler, the ActiveDirectoryHandler configured for the fixture DC (the path
/// `synapse serve` takes: a `Handlers` section through `synapse_handlers::registry`).
fn dc_registry() -> synapse_engine::HandlerRegistry {
    synapse_handlers::registry(&synapse_handlers::HandlersConfig {
        active_directory: Some(ActiveDirectoryConfig {
            domains: vec![dc().settings()],
        }),
        ..Default::default()
    })
    .unwrap()
}

impl Ad {
    /// Runs one handler call; returns (engine status, envelope).
    async fn call(&self, config: Value, params: Value) -> (StatusType, Value) {
        self.call_ctx(&ActionContext::standalone("test"), config, params)
            .await
    }

    async fn call_ctx(
        &self,
        ctx: &ActionContext,
        config: Value,
        params: Value,
    ) -> (StatusType, Value) {
        let r = self.handler.execute(ctx, config, params).await;
        (r.status, r.exit_data)
    }

    /// An independent read of one entry (None when absent).
    async fn read(&self, dn: &str) -> Option<SearchEntry> {
        match self
            .pool
            .search(
                dn,
                Scope::Base,
                "(objectClass=*)",
                &["*", "objectGUID", "objectSid"],
            )
            .await
        {
            Ok(mut v) => v.pop(),
            Err(e) if e.ldap_code() == Some(32) => None,
            Err(e) => panic!("reading {dn}: {e}"),
        }
    }

    fn dn(&self, rdn: &str) -> String {
        format!("{rdn},{}", self.ou)
    }
}

fn attr(e: &SearchEntry, name: &str) -> Option<String> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().cloned())
}

fn attrs(e: &SearchEntry, name: &str) -> Vec<String> {
    e.attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn statuses(env: &Value) -> Vec<u64> {
    env["Results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["Statuses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["Status"].as_u64().unwrap())
        })
        .collect()
}

fn first_status(env: &Value) -> (u64, String) {
    let s = &env["Results"][0]["Statuses"][0];
    (
        s["Status"].as_u64().unwrap(),
        s["Message"].as_str().unwrap_or_default().to_string(),
    )
}

const PASSWORD: &str = "bi@02LL49_VWQ{b";

/// The seed's Create User body (002), with the test's own OU and names.
fn seed_user(identity: &str, sam: &str) -> Value {
    json!({
        "Identity": identity,
        "Password": PASSWORD,
        "GivenName": "Michael",
        "Surname": "Fox",
        "Description": "American Actor, Back to the Future.",
        "UserPrincipalName": format!("{sam}@sandbox.local"),
        "SamAccountName": sam,
        "DisplayName": "Michael J. Fox",
        "EmailAddress": "mfox@company.com",
        "VoiceTelephoneNumber": "1-800-555-1212",
        "EmployeeId": "42",
        "Enabled": true,
        "AccountExpirationDate": "2037-10-10T16:35:46.0417954Z",
        "SmartcardLogonRequired": false,
        "DelegationPermitted": true,
        "HomeDirectory": "C:\\Temp",
        "ScriptPath": "C:\\Temp\\Scripts",
        "PasswordNotRequired": false,
        "PasswordNeverExpires": true,
        "UserCannotChangePassword": false,
        "AllowReversiblePasswordEncryption": false,
        "HomeDrive": "F:"
    })
}

#[tokio::test]
async fn user_lifecycle_with_every_identity_form() {
    let ad = setup("users").await;
    let sam = format!("mf{}", &random_suffix()[..8]);
    let dn = ad.dn(&format!("cn={sam}"));
    let (st, env) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"Users": [seed_user(&dn, &sam)]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    assert_eq!(env["Results"][0]["Type"], 1);
    assert_eq!(env["Results"][0]["Statuses"][0]["Action"], 2);
    assert_eq!(env["Results"][0]["User"]["Enabled"], true);
    assert_eq!(env["Results"][0]["User"]["GivenName"], "Michael");

    // Independent read.
    let e = ad.read(&dn).await.expect("the user exists");
    let uac: i64 = attr(&e, "userAccountControl").unwrap().parse().unwrap();
    assert_eq!(uac & 0x2, 0, "enabled");
    assert_ne!(uac & 0x10000, 0, "password never expires");
    assert_eq!(attr(&e, "mail").as_deref(), Some("mfox@company.com"));
    assert_eq!(
        attr(&e, "telephoneNumber").as_deref(),
        Some("1-800-555-1212")
    );
    assert_eq!(attr(&e, "employeeID").as_deref(), Some("42"));
    assert_eq!(attr(&e, "scriptPath").as_deref(), Some("C:\\Temp\\Scripts"));
    assert_eq!(attr(&e, "homeDrive").as_deref(), Some("F:"));
    assert_ne!(
        attr(&e, "pwdLastSet").as_deref(),
        Some("0"),
        "the password was set"
    );
    assert_ne!(attr(&e, "accountExpires").as_deref(), Some("0"));

    // Get by every identity form.
    let user = env["Results"][0]["User"].clone();
    let sid = user["Sid"].as_str().unwrap().to_string();
    let guid = user["Guid"].as_str().unwrap().to_string();
    for id in [
        dn.clone(),
        sam.clone(),
        format!("{sam}@sandbox.local"),
        format!("SANDBOX\\{sam}"),
        sid,
        guid,
    ] {
        let (st, env) = ad
            .call(
                json!({"Action": "Get"}),
                json!({"Users": [{"Identity": id}]}),
            )
            .await;
        assert_eq!(st, StatusType::Complete, "get by {id}: {env:#}");
        assert_eq!(
            env["Results"][0]["User"]["DistinguishedName"]
                .as_str()
                .unwrap()
                .to_lowercase(),
            dn.to_lowercase()
        );
    }

    // Modify: change one field, clear another, nothing else touched.
    let (st, env) = ad
        .call(json!({"Action": "Modify"}), json!({"Users": [{"Identity": sam, "Description": "Changed", "EmailAddress": "~null~"}]}))
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    let e = ad.read(&dn).await.unwrap();
    assert_eq!(attr(&e, "description").as_deref(), Some("Changed"));
    assert_eq!(attr(&e, "mail"), None);
    assert_eq!(attr(&e, "givenName").as_deref(), Some("Michael"));

    // Rename through Name, then move to another OU.
    let (st, env) = ad
        .call(
            json!({"Action": "Modify"}),
            json!({"Users": [{"Identity": sam, "Name": "Marty McFly"}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    let renamed = ad.dn("cn=Marty McFly");
    assert!(ad.read(&dn).await.is_none() && ad.read(&renamed).await.is_some());
    let target = dc().unique_ou("moveto").await;
    let (st, env) = ad
        .call(
            json!({"Action": "Move"}),
            json!({"Users": [{"Identity": sam, "MoveTo": target}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    assert!(ad.read(&format!("cn=Marty McFly,{target}")).await.is_some());

    // Delete, then it is gone.
    let (st, _) = ad
        .call(
            json!({"Action": "Delete"}),
            json!({"Users": [{"Identity": sam}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete);
    assert!(ad.read(&format!("cn=Marty McFly,{target}")).await.is_none());
    let (st, env) = ad
        .call(
            json!({"Action": "Get"}),
            json!({"Users": [{"Identity": sam}]}),
        )
        .await;
    assert_eq!(st, StatusType::Failed);
    assert_eq!(first_status(&env).0, 4, "DoesNotExist");
}

#[tokio::test]
async fn a_weak_password_creates_nothing() {
    let ad = setup("weakpw").await;
    let dn = ad.dn("cn=weakling");
    let mut body = seed_user(&dn, "weakling");
    body["Password"] = json!("abc");
    let (st, env) = ad
        .call(json!({"Action": "Create"}), json!({"Users": [body]}))
        .await;
    assert_eq!(st, StatusType::Failed);
    let (code, msg) = first_status(&env);
    assert_eq!(code, 5, "PasswordPolicyNotMet: {msg}");
    assert!(msg.contains("Was Not Created"), "{msg}");
    assert!(
        ad.read(&dn).await.is_none(),
        "no disabled orphan is left behind"
    );
}

#[tokio::test]
async fn bad_input_gives_clear_statuses_and_changes_nothing() {
    let ad = setup("badinput").await;
    let create = |user: Value| ad.call(json!({"Action": "Create"}), json!({"Users": [user]}));
    let (_, env) = create(json!({"Identity": "justaname"})).await;
    assert_eq!(
        first_status(&env).0,
        2,
        "non-DN identity on create: MissingInput"
    );
    let (_, env) = create(json!({"Identity": format!("cn=x,ou=NoSuchOu,{}", ad.ou)})).await;
    assert_eq!(first_status(&env).0, 6, "missing parent: InvalidPath");
    // A domain no configured one answers to is the caller's error (InvalidInput: 400), not a connection
    // error (503), and names the configured domains.
    let (_, env) = ad
        .call(
            json!({"Action": "Get", "Domain": "no-such-domain"}),
            json!({"Users": [{"Identity": "Administrator"}]}),
        )
        .await;
    let (code, msg) = first_status(&env);
    assert_eq!(code, 14, "{env:#}");
    assert!(
        msg.contains("no-such-domain") && msg.contains("configured are"),
        "{msg}"
    );
    let dn = ad.dn("cn=dup");
    let (st, _) = create(json!({"Identity": dn})).await;
    assert_eq!(st, StatusType::Complete);
    let (_, env) = create(json!({"Identity": dn})).await;
    assert_eq!(first_status(&env).0, 3, "duplicate: AlreadyExists");
    let (_, env) = ad
        .call(
            json!({"Action": "Modify"}),
            json!({"Users": [{"Identity": dn, "Properties": {"noSuchAttributeXyz": ["1"]}}]}),
        )
        .await;
    assert_eq!(
        first_status(&env).0,
        9,
        "unknown attribute: InvalidAttribute: {env:#}"
    );
    let (_, env) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"Users": [{"Identity": dn, "Bogus": 1}]}),
        )
        .await;
    let (code, msg) = first_status(&env);
    assert_eq!(code, 14, "unknown field: InvalidInput");
    assert!(msg.contains("Bogus"), "{msg}");

    // Injection attempts and oversized or NUL identities find nothing and change nothing.
    let before = ad
        .pool
        .search(&ad.ou, Scope::Subtree, "(objectClass=*)", &["1.1"])
        .await
        .unwrap()
        .len();
    for id in [
        "*",
        "*)(objectClass=*",
        "\\2a",
        "dup)(cn=*",
        &"x".repeat(10 * 1024),
        "a\0b",
    ] {
        for action in ["Get", "Delete", "Modify"] {
            let (st, env) = ad
                .call(
                    json!({"Action": action}),
                    json!({"Users": [{"Identity": id, "Description": "pwned"}]}),
                )
                .await;
            assert_eq!(st, StatusType::Failed, "{action} {id:.20}: {env:#}");
            let code = first_status(&env).0;
            assert!(code == 4 || code == 14, "{action} {id:.20}: status {code}");
        }
    }
    let after = ad
        .pool
        .search(&ad.ou, Scope::Subtree, "(objectClass=*)", &["1.1"])
        .await
        .unwrap()
        .len();
    assert_eq!(before, after);
    let e = ad.read(&dn).await.unwrap();
    assert_eq!(attr(&e, "description"), None, "nothing was modified");
}

#[tokio::test]
async fn groups_membership_and_nesting_rules() {
    let ad = setup("groups").await;
    let g = |n: &str| ad.dn(&format!("cn={n}"));
    let sfx = &random_suffix()[..6];
    let actors = format!("FamousActors{sfx}");
    let (st, env) = ad
        .call(json!({"Action": "Create"}), json!({"Groups": [
            {"Identity": g(&actors), "Description": "Actors"},
            {"Identity": g(&format!("Uni{sfx}")), "Scope": "Universal"},
            {"Identity": g(&format!("Glob{sfx}")), "Scope": "Global", "IsSecurityGroup": "false"}
        ]}))
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    assert_eq!(
        attr(&ad.read(&g(&actors)).await.unwrap(), "groupType").as_deref(),
        Some("-2147483646"),
        "default: Global security"
    );
    assert_eq!(
        attr(
            &ad.read(&g(&format!("Glob{sfx}"))).await.unwrap(),
            "groupType"
        )
        .as_deref(),
        Some("2")
    );

    // Modify with only a description does not touch the scope (upstream's ModifyGroup forced Universal).
    let (st, _) = ad
        .call(
            json!({"Action": "Modify"}),
            json!({"Groups": [{"Identity": g(&actors), "Description": "New"}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete);
    assert_eq!(
        attr(&ad.read(&g(&actors)).await.unwrap(), "groupType").as_deref(),
        Some("-2147483646")
    );

    let user = ad.dn(&format!("cn=u{sfx}"));
    let (st, _) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"Users": [{"Identity": user}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete);
    let add = json!({"Users": [{"Identity": user, "MemberOf": [actors.clone()]}]});
    let (st, env) = ad.call(json!({"Action": "AddToGroup"}), add.clone()).await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    assert_eq!(env["Results"][0]["Statuses"][0]["Action"], 64);
    let members = attrs(&ad.read(&g(&actors)).await.unwrap(), "member");
    assert!(
        members.iter().any(|m| m.eq_ignore_ascii_case(&user)),
        "{members:?}"
    );
    let (_, env) = ad.call(json!({"Action": "AddToGroup"}), add.clone()).await;
    assert_eq!(first_status(&env).0, 3, "already a member: {env:#}");

    // Get the group: Members lists the user.
    let (_, env) = ad
        .call(
            json!({"Action": "Get"}),
            json!({"Groups": [{"Identity": actors}]}),
        )
        .await;
    let listed: Vec<String> = env["Results"][0]["Group"]["Members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["DistinguishedName"].as_str().unwrap().to_lowercase())
        .collect();
    assert_eq!(listed, vec![user.to_lowercase()]);

    let (st, _) = ad
        .call(json!({"Action": "RemoveFromGroup"}), add.clone())
        .await;
    assert_eq!(st, StatusType::Complete);
    assert!(attrs(&ad.read(&g(&actors)).await.unwrap(), "member").is_empty());
    let (_, env) = ad.call(json!({"Action": "RemoveFromGroup"}), add).await;
    assert_eq!(first_status(&env).0, 4, "not a member: {env:#}");

    // Group into group: Global into Global is fine; Universal into Global is NotAllowed.
    let (st, env) = ad
        .call(
            json!({"Action": "AddToGroup"}),
            json!({"Groups": [{"Identity": format!("Glob{sfx}"), "MemberOf": [actors.clone()]}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    let (_, env) = ad
        .call(
            json!({"Action": "AddToGroup"}),
            json!({"Groups": [{"Identity": format!("Uni{sfx}"), "MemberOf": [actors]}]}),
        )
        .await;
    let (code, msg) = first_status(&env);
    assert_eq!(code, 8, "NotAllowed: {msg}");
    assert!(
        msg.contains("Universal Group Cannot Be A Member Of A Global Group"),
        "{msg}"
    );
}

#[tokio::test]
async fn organizational_units_and_computers() {
    let ad = setup("ous").await;
    let ou = ad.dn("ou=Child");
    let (st, env) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"OrganizationalUnits": [{"Identity": ou, "Description": "A child OU"}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    assert_eq!(env["Results"][0]["Type"], 4);
    assert_eq!(
        env["Results"][0]["OrganizationalUnit"]["Parent"]["DistinguishedName"]
            .as_str()
            .unwrap()
            .to_lowercase(),
        ad.ou.to_lowercase()
    );
    assert_eq!(
        attr(&ad.read(&ou).await.unwrap(), "description").as_deref(),
        Some("A child OU")
    );

    let pc = format!("cn=WS{},{ou}", &random_suffix()[..6]);
    let (st, env) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"Computers": [{"Identity": pc, "DnsHostName": "ws.sandbox.local"}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    let e = ad.read(&pc).await.unwrap();
    assert!(attr(&e, "sAMAccountName").unwrap().ends_with('$'));
    assert_eq!(attr(&e, "userAccountControl").as_deref(), Some("4096"));
    let name = attr(&e, "cn").unwrap();
    let (st, env) = ad
        .call(
            json!({"Action": "Get"}),
            json!({"Computers": [{"Identity": name}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    assert_eq!(
        env["Results"][0]["Computer"]["DnsHostName"],
        "ws.sandbox.local"
    );

    // An OU with children is not deleted (upstream deleted the whole tree silently).
    let (_, env) = ad
        .call(
            json!({"Action": "Delete"}),
            json!({"OrganizationalUnits": [{"Identity": ou}]}),
        )
        .await;
    assert_eq!(first_status(&env).0, 8, "{env:#}");
    assert!(ad.read(&pc).await.is_some());
    let (st, _) = ad
        .call(
            json!({"Action": "Delete"}),
            json!({"Computers": [{"Identity": pc}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete);
    let (st, _) = ad
        .call(
            json!({"Action": "Delete"}),
            json!({"OrganizationalUnits": [{"Identity": ou}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete);
    assert!(ad.read(&ou).await.is_none());
}

#[tokio::test]
async fn dry_run_changes_nothing() {
    let ad = setup("dryrun").await;
    let mut ctx = ActionContext::standalone("dry");
    ctx.dry_run = true;
    let dn = ad.dn("cn=dry");
    let (st, env) = ad
        .call_ctx(
            &ctx,
            json!({"Action": "Create"}),
            json!({"Users": [{"Identity": dn}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    assert!(first_status(&env).1.starts_with("Dry Run"));
    assert!(ad.read(&dn).await.is_none());
}

#[tokio::test]
async fn search_with_find_replace_and_the_get_all_groups_plan() {
    let ad = setup("search").await;
    let sfx = &random_suffix()[..6];
    let (inner, outer, user) = (
        ad.dn(&format!("cn=Inner{sfx}")),
        ad.dn(&format!("cn=Outer{sfx}")),
        ad.dn(&format!("cn=s{sfx}")),
    );
    let (st, env) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"Groups": [{"Identity": inner}, {"Identity": outer}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    let (st, _) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"Users": [{"Identity": user, "MemberOf": [inner.clone()]}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete);
    let (st, _) = ad
        .call(
            json!({"Action": "AddToGroup"}),
            json!({"Groups": [{"Identity": inner, "MemberOf": [outer.clone()]}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete);

    // Find/ReplaceWith: the replacement is escaped, so an injection finds nothing.
    let req = |with: &str| {
        json!({"SearchRequests": [{"Filter": "(&(objectClass=group)(cn=NAME))", "SearchBase": ad.ou,
            "Parameters": [{"Find": "NAME", "ReplaceWith": with}], "ReturnAttributes": ["cn", "objectGUID", "missingAttr"]}]})
    };
    let (st, env) = ad
        .call(json!({"Action": "Search"}), req(&format!("Inner{sfx}")))
        .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    let rows = env["Results"][0]["SearchResults"]["Results"]
        .as_array()
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["Properties"]["cn"], json!([format!("Inner{sfx}")]));
    assert!(
        rows[0]["Properties"]["objectGUID"][0]
            .as_str()
            .unwrap()
            .len()
            == 36
    );
    assert_eq!(rows[0]["Properties"]["missingAttr"], Value::Null);
    let (_, env) = ad.call(json!({"Action": "Search"}), req("*")).await;
    assert_eq!(
        env["Results"][0]["SearchResults"]["Results"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    // The shipped custom search, through the engine: transitive groups plus the object itself.
    let plan = load::load_file(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/plans/GetAllGroups.yaml"
    )))
    .unwrap_or_else(|d| panic!("{d}"))
    .plan;
    let registry = dc_registry();
    let exec = Executor::in_process(Arc::new(registry));
    let inputs: DynamicParams = [("distinguishedname", user.as_str())].into_iter().collect();
    let r = exec
        .run(
            &plan,
            RunOptions {
                inputs,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusType::Complete, "{r:#?}");
    let data = &r.actions[0].exit_data;
    let data: Value = match data {
        Value::String(s) => serde_yaml::from_str(s).unwrap(),
        v => v.clone(),
    };
    let mut found: Vec<String> = data["Results"][0]["SearchResults"]["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["DistinguishedName"].as_str().unwrap().to_lowercase())
        .collect();
    found.sort();
    let mut want = vec![
        inner.to_lowercase(),
        outer.to_lowercase(),
        user.to_lowercase(),
    ];
    want.sort();
    assert_eq!(found, want);

    // A hostile value through the token finds nothing extra.
    let inputs: DynamicParams = [("distinguishedname", "*")].into_iter().collect();
    let r = exec
        .run(
            &plan,
            RunOptions {
                inputs,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let text = serde_json::to_string(&r.actions[0].exit_data).unwrap();
    assert!(text.contains("[0] Records Found"), "{text}");
}

#[tokio::test]
async fn transitive_group_membership_is_returned_when_asked() {
    let ad = setup("transitive").await;
    let sfx = &random_suffix()[..6];
    let (a, b, u) = (
        ad.dn(&format!("cn=TA{sfx}")),
        ad.dn(&format!("cn=TB{sfx}")),
        ad.dn(&format!("cn=tu{sfx}")),
    );
    ad.call(
        json!({"Action": "Create"}),
        json!({"Groups": [{"Identity": a}, {"Identity": b, "MemberOf": [a.clone()]}]}),
    )
    .await;
    let (st, _) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"Users": [{"Identity": u, "MemberOf": [b.clone()]}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete);
    let groups = |env: &Value| -> usize {
        env["Results"][0]["User"]["Groups"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let (_, env) = ad
        .call(
            json!({"Action": "Get", "ReturnGroupMembership": true}),
            json!({"Users": [{"Identity": u}]}),
        )
        .await;
    assert_eq!(groups(&env), 1, "direct: {env:#}");
    let (_, env) = ad
        .call(json!({"Action": "Get", "ReturnGroupMembership": "true", "ReturnTransitiveGroupMembership": true}), json!({"Users": [{"Identity": u}]}))
        .await;
    assert_eq!(groups(&env), 2, "transitive: {env:#}");
    let (_, env) = ad
        .call(
            json!({"Action": "Get", "ReturnObjects": false}),
            json!({"Users": [{"Identity": u}]}),
        )
        .await;
    assert_eq!(env["Results"][0]["User"], Value::Null);
}

#[tokio::test]
async fn an_unreachable_directory_is_a_connection_error() {
    let mut settings = dc().settings();
    settings.ldap.urls = vec!["ldaps://127.0.0.1:1".into()];
    settings.ldap.connect_timeout = std::time::Duration::from_secs(2);
    let handler = ActiveDirectoryHandler::new(vec![settings]);
    let r = handler
        .execute(
            &ActionContext::standalone("t"),
            json!({"Action": "Get"}),
            json!({"Users": [{"Identity": "mfox"}]}),
        )
        .await;
    assert_eq!(r.status, StatusType::Failed);
    assert_eq!(statuses(&r.exit_data), vec![10]);
}

/// Runs a shipped plan (plans/NAME.yaml) through the engine against the fixture DC.
async fn run_plan(name: &str, inputs: &[(&str, &str)]) -> (StatusType, Value) {
    let path = format!("{}/plans/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let plan = load::load_file(std::path::Path::new(&path))
        .unwrap_or_else(|d| panic!("{d}"))
        .plan;
    let registry = dc_registry();
    let exec = Executor::in_process(Arc::new(registry));
    let inputs: DynamicParams = inputs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let r = exec
        .run(
            &plan,
            RunOptions {
                inputs,
                ..Default::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (r.status, r.actions[0].exit_data.clone())
}

#[tokio::test]
async fn the_shipped_plans_map_request_values_and_force_nothing() {
    let ad = setup("plans").await;
    let sfx = &random_suffix()[..6];
    let sam = format!("pf{sfx}");
    let dn = ad.dn(&format!("cn={sam}"));
    // The seed's Create User body, as the API will pass it (every value a string).
    let (st, env) = run_plan(
        "CreateUser",
        &[
            ("identity", &dn),
            ("password", PASSWORD),
            ("givenname", "Michael"),
            ("surname", "Fox"),
            ("samaccountname", &sam),
            ("displayname", "Michael J. Fox"),
            ("enabled", "true"),
            ("passwordneverexpires", "true"),
            ("scriptpath", "C:\\Temp\\Scripts"),
            ("middlename", "Andrew"),
        ],
    )
    .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    let e = ad.read(&dn).await.unwrap();
    assert_eq!(
        attr(&e, "scriptPath").as_deref(),
        Some("C:\\Temp\\Scripts"),
        "upstream could not set ScriptPath"
    );
    assert_eq!(attr(&e, "middleName").as_deref(), Some("Andrew"));
    assert_eq!(
        attr(&e, "userAccountControl").map(|u| u.parse::<i64>().unwrap() & 2),
        Some(0)
    );

    let (st, env) = run_plan(
        "GetUser",
        &[
            ("identity", &format!("{sam}@sandbox.local")),
            ("returngroupmembership", "true"),
        ],
    )
    .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    assert!(env["Results"][0]["User"]["Groups"].is_array());

    // A distribution group stays one when ModifyGroup changes only its description.
    let group = ad.dn(&format!("cn=Dist{sfx}"));
    let (st, env) = run_plan(
        "CreateGroup",
        &[
            ("identity", &group),
            ("scope", "Global"),
            ("issecuritygroup", "false"),
        ],
    )
    .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    let (st, env) = run_plan(
        "ModifyGroup",
        &[("identity", &group), ("description", "only this")],
    )
    .await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    let g = ad.read(&group).await.unwrap();
    assert_eq!(attr(&g, "groupType").as_deref(), Some("2"));
    assert_eq!(attr(&g, "description").as_deref(), Some("only this"));

    let (st, env) = run_plan("AddUserToGroup", &[("identity", &sam), ("group", &group)]).await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    let (st, env) = run_plan("DeleteUser", &[("identity", &dn)]).await;
    assert_eq!(st, StatusType::Complete, "{env:#}");
    assert!(ad.read(&dn).await.is_none());
}

#[tokio::test]
async fn a_value_given_twice_on_create_is_invalid_input_not_already_exists() {
    let ad = setup("dupvalue").await;
    let dn = ad.dn("cn=twice");
    let (st, env) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"Users": [{"Identity": dn, "Properties": {"objectClass": ["user", "computer"]}}]}),
        )
        .await;
    assert_eq!(st, StatusType::Failed);
    let (code, msg) = first_status(&env);
    assert_ne!(
        code, 3,
        "the object does not exist: not AlreadyExists: {msg}"
    );
    assert!(
        code == 14 || code == 9,
        "InvalidInput or InvalidAttribute: {msg}"
    );
    assert!(
        msg.to_ascii_lowercase().contains("more than once"),
        "the message says a value was given more than once: {msg}"
    );
    assert!(ad.read(&dn).await.is_none(), "nothing was created");
    // A genuine duplicate entry is still AlreadyExists.
    let (st, _) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"Users": [{"Identity": dn}]}),
        )
        .await;
    assert_eq!(st, StatusType::Complete);
    let (_, env) = ad
        .call(
            json!({"Action": "Create"}),
            json!({"Users": [{"Identity": dn}]}),
        )
        .await;
    assert_eq!(first_status(&env).0, 3, "a real duplicate: AlreadyExists");
}

/// A handler whose only way to the DC is a [`PausingProxy`], with short timeouts, its pool already open.
async fn frozen_setup(ad: &Ad, op_timeout: Duration) -> (ActiveDirectoryHandler, PausingProxy) {
    let dc = dc();
    let proxy = PausingProxy::start(&format!("{}:636", dc.ip)).await;
    let mut settings = dc.settings();
    settings.ldap.urls = vec![format!("ldaps://{}", proxy.addr)];
    settings.ldap.op_timeout = op_timeout;
    settings.ldap.connect_timeout = Duration::from_secs(1);
    let handler = ActiveDirectoryHandler::new(vec![settings]);
    // Open (and bind) the pool's connection, so the next request on it is the create's add.
    let r = handler
        .execute(
            &ActionContext::standalone("warm"),
            json!({"Action": "Get"}),
            json!({"OrganizationalUnits": [{"Identity": ad.ou}]}),
        )
        .await;
    assert_eq!(r.status, StatusType::Complete, "{}", r.exit_data);
    (handler, proxy)
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_rolled_back_once_the_dc_answers_again() {
    // The issue: the DC froze mid-create, the create answered 503 "The Disabled User Could Not Be Removed",
    // and the user existed afterwards. Here the add reaches the DC and is applied, its answer is held past
    // the operation timeout, and the DC answers again within the settling window.
    let ad = setup("frozenadd").await;
    let (handler, proxy) = frozen_setup(&ad, Duration::from_secs(2)).await;
    let dn = ad.dn("cn=frozen");
    let mut body = seed_user(&dn, &format!("fz{}", &random_suffix()[..8]));
    body["UserPrincipalName"] = json!(null);
    proxy.freeze_after_next_request();
    let thaw = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.thaw();
    };
    let ctx = ActionContext::standalone("test");
    let (r, ()) = tokio::join!(
        handler.execute(&ctx, json!({"Action": "Create"}), json!({"Users": [body]}),),
        thaw
    );
    let (code, msg) = first_status(&r.exit_data);
    assert_eq!(code, 10, "ConnectionError: {msg}");
    assert!(msg.contains("Was Not Created"), "{msg}");
    assert!(
        msg.contains("Removed Again"),
        "the add had been applied: {msg}"
    );
    assert_eq!(r.status, StatusType::Failed);
    // The answer matches the directory, now and after the held traffic is delivered.
    assert!(ad.read(&dn).await.is_none(), "no orphan");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(ad.read(&dn).await.is_none(), "no orphan later either");
}

#[tokio::test]
async fn a_create_frozen_past_its_window_says_the_outcome_is_unknown_and_names_the_dn() {
    let ad = setup("frozenlong").await;
    let (handler, proxy) = frozen_setup(&ad, Duration::from_secs(1)).await;
    let dn = ad.dn("cn=frozenlong");
    let mut body = seed_user(&dn, &format!("fl{}", &random_suffix()[..8]));
    body["UserPrincipalName"] = json!(null);
    proxy.freeze_after_next_request();
    let r = handler
        .execute(
            &ActionContext::standalone("test"),
            json!({"Action": "Create"}),
            json!({"Users": [body]}),
        )
        .await;
    proxy.thaw();
    let (code, msg) = first_status(&r.exit_data);
    assert_eq!(code, 10, "ConnectionError: {msg}");
    assert!(msg.starts_with("Outcome Unknown"), "{msg}");
    assert!(
        msg.contains(&format!("Check [{dn}]")),
        "names the DN to check: {msg}"
    );
    assert!(
        !msg.contains("Could Not Be Removed:"),
        "not the old misleading answer: {msg}"
    );
    // What the message warned about: the add was applied, the user is there, disabled, without a password.
    let e = ad.read(&dn).await.expect("the add was applied");
    let uac: i64 = attr(&e, "userAccountControl").unwrap().parse().unwrap();
    assert_ne!(uac & 2, 0, "disabled: {uac}");
}

#[tokio::test]
async fn a_create_frozen_after_its_password_is_rolled_back_once_the_dc_answers_again() {
    // The exact answer ("... timed out after 30s) The Disabled User Could Not Be Removed", the user
    // left behind): the add is answered, the password request reaches the DC, its answer is held.
    let ad = setup("frozenpw").await;
    let (handler, proxy) = frozen_setup(&ad, Duration::from_secs(2)).await;
    let dn = ad.dn("cn=frozenpw");
    let body = seed_user(&dn, &format!("fp{}", &random_suffix()[..8]));
    proxy.freeze_after_requests(2);
    let thaw = async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.thaw();
    };
    let ctx = ActionContext::standalone("test");
    let (r, ()) = tokio::join!(
        handler.execute(&ctx, json!({"Action": "Create"}), json!({"Users": [body]})),
        thaw
    );
    let (code, msg) = first_status(&r.exit_data);
    assert_eq!(code, 10, "ConnectionError: {msg}");
    assert!(msg.contains("Was Not Created"), "{msg}");
    assert!(!msg.contains("Could Not Be Removed"), "{msg}");
    assert!(
        msg.contains("Removed Again"),
        "settled, not left to chance: {msg}"
    );
    assert!(ad.read(&dn).await.is_none(), "no orphan");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(ad.read(&dn).await.is_none(), "no orphan later either");
}

#[tokio::test]
async fn four_creates_through_a_frozen_dc_answer_what_the_directory_holds() {
    // The scenario: 4 clients creating users when the DC freezes. Whichever step each create is in,
    // once the DC answers again every answer matches the directory: Success = the user exists and is
    // enabled; a failure = no entry, unless the answer says the outcome is unknown.
    let ad = setup("frozenfour").await;
    let (handler, proxy) = frozen_setup(&ad, Duration::from_secs(2)).await;
    let sfx = &random_suffix()[..6];
    let dns: Vec<String> = (0..4).map(|i| ad.dn(&format!("cn=ff{i}{sfx}"))).collect();
    let ctx = ActionContext::standalone("test");
    // Four open connections, so the four creates are on the wire together when the DC freezes.
    let gets = (0..4).map(|_| {
        handler.execute(
            &ctx,
            json!({"Action": "Get"}),
            json!({"OrganizationalUnits": [{"Identity": ad.ou}]}),
        )
    });
    futures::future::join_all(gets).await;
    let creates = dns.iter().enumerate().map(|(i, dn)| {
        let body = seed_user(dn, &format!("ff{i}{sfx}"));
        handler.execute(&ctx, json!({"Action": "Create"}), json!({"Users": [body]}))
    });
    let freeze = async {
        tokio::time::sleep(Duration::from_millis(40)).await;
        proxy.freeze();
        tokio::time::sleep(Duration::from_secs(3)).await;
        proxy.thaw();
    };
    let (results, ()) = tokio::join!(futures::future::join_all(creates), freeze);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (dn, r) in dns.iter().zip(&results) {
        let (code, msg) = first_status(&r.exit_data);
        let entry = ad.read(dn).await;
        println!("{code} {msg} (entry present: {})", entry.is_some());
        assert!(!msg.contains("Could Not Be Removed:"), "{dn}: {msg}");
        match code {
            1 => {
                let e = entry.unwrap_or_else(|| panic!("{dn}: Success but no entry"));
                let uac: i64 = attr(&e, "userAccountControl").unwrap().parse().unwrap();
                assert_eq!(uac & 2, 0, "{dn}: Success, so enabled: {uac}");
            }
            // Honest, and names what to check (the DC stayed frozen past the settling window).
            10 if msg.starts_with("Outcome Unknown") => {
                assert!(msg.contains(&format!("Check [{dn}]")), "{msg}")
            }
            // "Was Not Created" after settling, or "Directory Unreachable" when no connection could even
            // be opened (nothing was sent): either way no entry.
            10 => assert!(entry.is_none(), "{dn}: answered {msg} but the entry exists"),
            _ => panic!(
                "{dn}: unexpected answer {code} {msg} (entry present: {})",
                entry.is_some()
            ),
        }
    }
}
