//! The object shapes of seed 002 built from LDAP entries: User, Group (with Members), OrganizationalUnit and
//! Computer (with Parent), and the short principal form used in `Groups` and `Members`.

use crate::ad::identity::{split_rdn, unescape_rdn_value};
use crate::ad::values;
use ldap3::SearchEntry;
use serde_json::{json, Map, Value};

/// userAccountControl bits.
pub mod uac {
    pub const ACCOUNTDISABLE: i64 = 0x2;
    pub const PASSWD_NOTREQD: i64 = 0x20;
    pub const ENCRYPTED_TEXT_PWD_ALLOWED: i64 = 0x80;
    pub const NORMAL_ACCOUNT: i64 = 0x200;
    pub const WORKSTATION_TRUST_ACCOUNT: i64 = 0x1000;
    pub const DONT_EXPIRE_PASSWORD: i64 = 0x10000;
    pub const SMARTCARD_REQUIRED: i64 = 0x40000;
    pub const NOT_DELEGATED: i64 = 0x100000;
}

/// groupType bits.
pub mod group_type {
    pub const GLOBAL: i64 = 0x2;
    pub const DOMAIN_LOCAL: i64 = 0x4;
    pub const UNIVERSAL: i64 = 0x8;
    pub const SECURITY: i64 = 0x8000_0000;
}

/// The values of an attribute: an exact-name hit first (servers answer in schema case), then a
/// case-insensitive scan.
fn values_of<'a, T>(
    map: &'a std::collections::HashMap<String, Vec<T>>,
    attr: &str,
) -> Option<&'a Vec<T>> {
    map.get(attr).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(attr))
            .map(|(_, v)| v)
    })
}

/// The first text value of an attribute (case-insensitive name).
pub fn text(e: &SearchEntry, attr: &str) -> Option<String> {
    values_of(&e.attrs, attr).and_then(|v| v.first().cloned())
}

/// Every text value of an attribute.
pub fn texts(e: &SearchEntry, attr: &str) -> Vec<String> {
    values_of(&e.attrs, attr).cloned().unwrap_or_default()
}

fn binary(e: &SearchEntry, attr: &str) -> Option<Vec<u8>> {
    values_of(&e.bin_attrs, attr)
        .and_then(|v| v.first().cloned())
        .or_else(|| text(e, attr).map(String::into_bytes))
}

pub fn int(e: &SearchEntry, attr: &str) -> Option<i64> {
    text(e, attr).and_then(|v| v.trim().parse().ok())
}

pub fn guid(e: &SearchEntry) -> Option<String> {
    binary(e, "objectGUID").and_then(|b| values::guid_string(&b))
}

pub fn sid(e: &SearchEntry) -> Option<String> {
    binary(e, "objectSid").and_then(|b| crate::ad::sid::format(&b))
}

/// The most specific objectClass (the last one listed).
fn structural_class(e: &SearchEntry) -> Option<String> {
    texts(e, "objectClass").last().cloned()
}

fn filetime(e: &SearchEntry, attr: &str) -> Value {
    int(e, attr)
        .and_then(values::filetime_iso)
        .map_or(Value::Null, Value::String)
}

fn flag(uac: i64, bit: i64) -> bool {
    uac & bit != 0
}

/// Options for building objects.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shape {
    pub properties: bool,
}

fn properties(e: &SearchEntry, shape: Shape) -> Value {
    if shape.properties {
        Value::Object(values::properties(&e.attrs, &e.bin_attrs))
    } else {
        Value::Null
    }
}

/// The fields every principal has (upstream `PrincipalObject`).
pub fn principal(e: &SearchEntry) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("ContextType".into(), json!(1));
    m.insert("Description".into(), json!(text(e, "description")));
    m.insert("DisplayName".into(), json!(text(e, "displayName")));
    m.insert("DistinguishedName".into(), json!(e.dn));
    m.insert("Guid".into(), json!(guid(e)));
    m.insert(
        "Name".into(),
        json!(text(e, "name").or_else(|| text(e, "cn"))),
    );
    m.insert("SamAccountName".into(), json!(text(e, "sAMAccountName")));
    m.insert("Sid".into(), json!(sid(e)));
    m.insert("StructuralObjectClass".into(), json!(structural_class(e)));
    m.insert(
        "UserPrincipalName".into(),
        json!(text(e, "userPrincipalName")),
    );
    m
}

/// A User (seed 002 shape). `groups`: the Groups list, when asked for.
pub fn user(e: &SearchEntry, shape: Shape, groups: Option<Vec<Value>>) -> Value {
    let uac = int(e, "userAccountControl").unwrap_or(0);
    let mut m = principal(e);
    let expires = int(e, "accountExpires").and_then(values::filetime_iso);
    m.insert("EmailAddress".into(), json!(text(e, "mail")));
    m.insert("EmployeeId".into(), json!(text(e, "employeeID")));
    m.insert("GivenName".into(), json!(text(e, "givenName")));
    m.insert("MiddleName".into(), json!(text(e, "middleName")));
    m.insert("Surname".into(), json!(text(e, "sn")));
    m.insert(
        "VoiceTelephoneNumber".into(),
        json!(text(e, "telephoneNumber")),
    );
    m.insert("Manager".into(), json!(text(e, "manager")));
    m.insert("AccountExpirationDate".into(), json!(expires));
    m.insert("AccountLockoutTime".into(), filetime(e, "lockoutTime"));
    m.insert(
        "AllowReversiblePasswordEncryption".into(),
        json!(flag(uac, uac::ENCRYPTED_TEXT_PWD_ALLOWED)),
    );
    m.insert(
        "BadLogonCount".into(),
        json!(int(e, "badPwdCount").unwrap_or(0)),
    );
    m.insert(
        "DelegationPermitted".into(),
        json!(!flag(uac, uac::NOT_DELEGATED)),
    );
    m.insert("Enabled".into(), json!(!flag(uac, uac::ACCOUNTDISABLE)));
    m.insert("HomeDirectory".into(), json!(text(e, "homeDirectory")));
    m.insert("HomeDrive".into(), json!(text(e, "homeDrive")));
    m.insert(
        "LastBadPasswordAttempt".into(),
        filetime(e, "badPasswordTime"),
    );
    m.insert("LastLogon".into(), filetime(e, "lastLogon"));
    m.insert("LastPasswordSet".into(), filetime(e, "pwdLastSet"));
    m.insert(
        "PasswordNeverExpires".into(),
        json!(flag(uac, uac::DONT_EXPIRE_PASSWORD)),
    );
    m.insert(
        "PasswordNotRequired".into(),
        json!(flag(uac, uac::PASSWD_NOTREQD)),
    );
    m.insert(
        "PermittedLogonTimes".into(),
        json!(binary(e, "logonHours").map(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(b)
        })),
    );
    m.insert("ScriptPath".into(), json!(text(e, "scriptPath")));
    m.insert(
        "SmartcardLogonRequired".into(),
        json!(flag(uac, uac::SMARTCARD_REQUIRED)),
    );
    m.insert("UserCannotChangePassword".into(), json!(false));
    m.insert("Groups".into(), groups.map_or(Value::Null, Value::Array));
    m.insert("Properties".into(), properties(e, shape));
    Value::Object(m)
}

/// Scope and security flag of a groupType value.
pub fn group_scope(gt: i64) -> (&'static str, bool) {
    let scope = if gt & group_type::GLOBAL != 0 {
        "Global"
    } else if gt & group_type::DOMAIN_LOCAL != 0 {
        "Local"
    } else if gt & group_type::UNIVERSAL != 0 {
        "Universal"
    } else {
        "Local"
    };
    (scope, gt & group_type::SECURITY != 0)
}

/// A Group (seed 002 shape). `members`: direct members; `groups`: its own memberships when asked for.
pub fn group(
    e: &SearchEntry,
    shape: Shape,
    members: Vec<Value>,
    groups: Option<Vec<Value>>,
) -> Value {
    let gt = int(e, "groupType").unwrap_or(0);
    let (scope, security) = group_scope(gt);
    let mut m = principal(e);
    m.insert("GroupScope".into(), json!(scope));
    m.insert("IsSecurityGroup".into(), json!(security));
    m.insert("ManagedBy".into(), json!(text(e, "managedBy")));
    m.insert("Members".into(), Value::Array(members));
    m.insert("Groups".into(), groups.map_or(Value::Null, Value::Array));
    m.insert("Properties".into(), properties(e, shape));
    Value::Object(m)
}

/// The parent of a DN as a small object (`Parent` of OUs and computers).
fn parent_of(dn: &str) -> Value {
    match split_rdn(dn) {
        Some((_, _, parent)) if !parent.is_empty() => {
            let name = split_rdn(&parent)
                .map(|(a, v, _)| format!("{}={}", a.to_ascii_uppercase(), unescape_rdn_value(&v)));
            json!({"DistinguishedName": parent, "Name": name, "Path": format!("LDAP://{parent}")})
        }
        _ => Value::Null,
    }
}

/// An OrganizationalUnit or Computer (upstream `DirectoryEntryObject`).
pub fn directory_entry(e: &SearchEntry, shape: Shape, groups: Option<Vec<Value>>) -> Value {
    let rdn = split_rdn(&e.dn)
        .map(|(a, v, _)| format!("{}={}", a.to_ascii_uppercase(), unescape_rdn_value(&v)));
    let mut m = Map::new();
    m.insert("DistinguishedName".into(), json!(e.dn));
    m.insert("Guid".into(), json!(guid(e)));
    m.insert("Name".into(), json!(rdn));
    m.insert("Description".into(), json!(text(e, "description")));
    m.insert("ManagedBy".into(), json!(text(e, "managedBy")));
    m.insert("Path".into(), json!(format!("LDAP://{}", e.dn)));
    m.insert("SchemaClassName".into(), json!(structural_class(e)));
    m.insert("Parent".into(), parent_of(&e.dn));
    if structural_class(e).is_some_and(|c| c.eq_ignore_ascii_case("computer")) {
        let uac = int(e, "userAccountControl").unwrap_or(0);
        m.insert("SamAccountName".into(), json!(text(e, "sAMAccountName")));
        m.insert("DnsHostName".into(), json!(text(e, "dNSHostName")));
        m.insert("Sid".into(), json!(sid(e)));
        m.insert("Enabled".into(), json!(!flag(uac, uac::ACCOUNTDISABLE)));
        m.insert("Groups".into(), groups.map_or(Value::Null, Value::Array));
    }
    m.insert("Properties".into(), properties(e, shape));
    Value::Object(m)
}

/// The short form used in `Groups` and `Members`.
pub fn brief(e: &SearchEntry) -> Value {
    Value::Object(principal(e))
}
