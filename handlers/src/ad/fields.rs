//! Typed fields of the request objects -> attribute changes. One description per object type (`Changes`),
//! shared by Create and Modify. `null` leaves a field alone; `~null~` clears it.

use crate::ad::envelope::{AdObjectType, AdStatus};
use crate::ad::errors::Failure;
use crate::ad::identity::{dns_domain, split_rdn, unescape_rdn_value};
use crate::ad::model::{
    AdComputer, AdGroup, AdOrganizationalUnit, AdUser, GroupScope, NULL_MARKER,
};
use crate::ad::objects::{group_type, uac};
use crate::ad::values;
use base64::Engine as _;
use std::collections::BTreeMap;

/// A change to one attribute.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Set(Vec<Vec<u8>>),
    Clear,
}

/// Everything a Create or Modify wants to change on one object.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    /// attribute -> change (typed fields first, then Properties, which win).
    pub attrs: BTreeMap<String, Change>,
    /// Attributes whose values are identities to resolve to DNs first (manager, managedBy).
    pub references: BTreeMap<String, String>,
    /// userAccountControl bits to set (true) or clear (false).
    pub uac: Vec<(i64, bool)>,
    /// Enabled, applied after the password (users) so an account is never enabled without one.
    pub enabled: Option<bool>,
    pub password: Option<String>,
    /// Group scope and security flag changes.
    pub scope: Option<GroupScope>,
    pub security: Option<bool>,
    /// Steps that cannot be done (reported as NotSupported without failing the rest).
    pub unsupported: Vec<String>,
}

fn is_clear(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case(NULL_MARKER)
}

impl Changes {
    fn text(&mut self, attr: &str, v: &Option<String>) {
        if let Some(v) = v {
            let c = if is_clear(v) {
                Change::Clear
            } else {
                Change::Set(vec![v.clone().into_bytes()])
            };
            self.attrs.insert(attr.to_string(), c);
        }
    }

    /// `sAMAccountName`, refused when longer than `max` characters.
    fn sam_account_name(&mut self, v: &Option<String>, max: usize) -> Result<(), Failure> {
        if let Some(sam) = v {
            if !is_clear(sam) && sam.chars().count() > max {
                return Err(Failure::new(
                    AdStatus::InvalidAttribute,
                    format!("SamAccountName [{sam}] Is Longer Than {max} Characters."),
                ));
            }
        }
        self.text("sAMAccountName", v);
        Ok(())
    }

    fn reference(&mut self, attr: &str, v: &Option<String>) {
        if let Some(v) = v {
            if is_clear(v) {
                self.attrs.insert(attr.to_string(), Change::Clear);
            } else {
                self.references.insert(attr.to_string(), v.clone());
            }
        }
    }

    fn bit(&mut self, bit: i64, v: Option<bool>) {
        if let Some(on) = v {
            self.uac.push((bit, on));
        }
    }

    /// `Properties` raw attributes: applied after typed fields, so they win.
    fn properties(&mut self, props: &BTreeMap<String, Option<Vec<String>>>) -> Result<(), Failure> {
        for (k, v) in props {
            if k.trim().is_empty()
                || !k
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';')
            {
                return Err(Failure::new(
                    AdStatus::InvalidAttribute,
                    format!("Property [{k}] Is Not A Valid Attribute Name."),
                ));
            }
            let Some(values) = v else { continue };
            let c = if values.iter().any(|x| is_clear(x)) || values.is_empty() {
                Change::Clear
            } else {
                Change::Set(values.iter().map(|x| x.clone().into_bytes()).collect())
            };
            self.attrs.insert(k.clone(), c);
        }
        Ok(())
    }

    /// Whether nothing would change (besides the password, membership and rename).
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
            && self.references.is_empty()
            && self.uac.is_empty()
            && self.enabled.is_none()
            && self.scope.is_none()
            && self.security.is_none()
    }
}

fn not_supported_rules(c: &mut Changes, rules: usize, roles: usize) {
    if rules > 0 {
        c.unsupported
            .push("AccessRules are not supported yet; they were not applied.".into());
    }
    if roles > 0 {
        c.unsupported
            .push("Roles are not supported yet; they were not applied.".into());
    }
}

pub fn user(u: &AdUser) -> Result<Changes, Failure> {
    let mut c = Changes::default();
    c.text("userPrincipalName", &u.user_principal_name);
    c.sam_account_name(&u.sam_account_name, 20)?;
    c.text("displayName", &u.display_name);
    c.text("description", &u.description);
    c.text("givenName", &u.given_name);
    c.text("middleName", &u.middle_name);
    c.text("sn", &u.surname);
    c.text("mail", &u.email_address);
    c.text("telephoneNumber", &u.voice_telephone_number);
    c.text("employeeID", &u.employee_id);
    c.text("homeDirectory", &u.home_directory);
    c.text("homeDrive", &u.home_drive);
    c.text("scriptPath", &u.script_path);
    c.reference("manager", &u.manager);
    if let Some(d) = &u.account_expiration_date {
        let ft = if is_clear(d) {
            0
        } else {
            values::iso_to_filetime(d).ok_or_else(|| {
                Failure::new(
                    AdStatus::InvalidInput,
                    format!("AccountExpirationDate [{d}] Is Not An ISO 8601 Date (e.g. 2027-12-31 or 2027-12-31T23:59:00Z)."),
                )
            })?
        };
        c.attrs.insert(
            "accountExpires".into(),
            Change::Set(vec![ft.to_string().into_bytes()]),
        );
    }
    if let Some(t) = &u.permitted_logon_times {
        if is_clear(t) {
            c.attrs.insert("logonHours".into(), Change::Clear);
        } else {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .ok()
                .filter(|b| b.len() == 21)
                .ok_or_else(|| {
                    Failure::new(
                        AdStatus::InvalidInput,
                        "PermittedLogonTimes Must Be 21 Bytes, Base64-Encoded.",
                    )
                })?;
            c.attrs
                .insert("logonHours".into(), Change::Set(vec![bytes]));
        }
    }
    c.bit(uac::PASSWD_NOTREQD, u.password_not_required);
    c.bit(
        uac::ENCRYPTED_TEXT_PWD_ALLOWED,
        u.allow_reversible_password_encryption,
    );
    c.bit(uac::DONT_EXPIRE_PASSWORD, u.password_never_expires);
    c.bit(uac::SMARTCARD_REQUIRED, u.smartcard_logon_required);
    c.bit(uac::NOT_DELEGATED, u.delegation_permitted.map(|d| !d));
    if u.user_cannot_change_password == Some(true) {
        c.unsupported.push(
            "UserCannotChangePassword needs access rules, which are not supported yet.".into(),
        );
    }
    c.enabled = u.enabled;
    c.password = u.password.clone().filter(|p| !p.is_empty());
    not_supported_rules(&mut c, u.access_rules.len(), u.roles.len());
    c.properties(&u.properties)?;
    Ok(c)
}

pub fn group(g: &AdGroup) -> Result<Changes, Failure> {
    let mut c = Changes::default();
    c.sam_account_name(&g.sam_account_name, 256)?;
    c.text("description", &g.description);
    c.reference("managedBy", &g.managed_by);
    c.scope = g.scope;
    c.security = g.is_security_group;
    not_supported_rules(&mut c, g.access_rules.len(), g.roles.len());
    c.properties(&g.properties)?;
    Ok(c)
}

pub fn organizational_unit(o: &AdOrganizationalUnit) -> Result<Changes, Failure> {
    let mut c = Changes::default();
    c.text("description", &o.description);
    c.reference("managedBy", &o.managed_by);
    not_supported_rules(&mut c, o.access_rules.len(), o.roles.len());
    c.properties(&o.properties)?;
    Ok(c)
}

pub fn computer(k: &AdComputer) -> Result<Changes, Failure> {
    let mut c = Changes::default();
    if let Some(sam) = &k.sam_account_name {
        let fixed = if sam.ends_with('$') || is_clear(sam) {
            sam.clone()
        } else {
            format!("{sam}$")
        };
        c.text("sAMAccountName", &Some(fixed));
    }
    c.text("description", &k.description);
    c.text("dNSHostName", &k.dns_host_name);
    c.reference("managedBy", &k.managed_by);
    c.enabled = k.enabled;
    not_supported_rules(&mut c, k.access_rules.len(), k.roles.len());
    c.properties(&k.properties)?;
    Ok(c)
}

/// The groupType for a scope and security flag.
pub fn group_type_value(scope: GroupScope, security: bool) -> i64 {
    let base = match scope {
        GroupScope::Global => group_type::GLOBAL,
        GroupScope::Local => group_type::DOMAIN_LOCAL,
        GroupScope::Universal => group_type::UNIVERSAL,
    };
    let v = if security {
        base | group_type::SECURITY
    } else {
        base
    };
    // groupType is a signed 32-bit integer in AD.
    i64::from(v as u32 as i32)
}

/// An attribute with its values, for an LDAP add.
pub type Attr = (String, Vec<Vec<u8>>);

/// Attributes a new object starts with (besides typed fields and Properties): objectClass and naming.
pub fn initial_attrs(
    t: AdObjectType,
    dn: &str,
    base_dn: &str,
    c: &Changes,
) -> Result<Vec<Attr>, Failure> {
    let (rdn_attr, rdn_value, _) = split_rdn(dn).ok_or_else(|| {
        Failure::new(
            AdStatus::InvalidName,
            format!("[{dn}] Is Not A Distinguished Name."),
        )
    })?;
    let name = unescape_rdn_value(&rdn_value);
    let want = match t {
        AdObjectType::OrganizationalUnit => "ou",
        _ => "cn",
    };
    if !rdn_attr.eq_ignore_ascii_case(want) {
        return Err(Failure::new(
            AdStatus::InvalidName,
            format!(
                "A {} Must Be Named With {}= (Got [{dn}]).",
                t.name(),
                want.to_ascii_uppercase()
            ),
        ));
    }
    let s = |v: &str| vec![v.as_bytes().to_vec()];
    let mut out: Vec<Attr> = Vec::new();
    let has = |a: &str| c.attrs.keys().any(|k| k.eq_ignore_ascii_case(a));
    match t {
        AdObjectType::User => {
            out.push((
                "objectClass".into(),
                vec![
                    b"top".to_vec(),
                    b"person".to_vec(),
                    b"organizationalPerson".to_vec(),
                    b"user".to_vec(),
                ],
            ));
            if !has("sAMAccountName") {
                if name.chars().count() > 20 {
                    return Err(Failure::new(
                        AdStatus::InvalidAttribute,
                        format!(
                            "Name [{name}] Is Longer Than 20 Characters: Give A SamAccountName."
                        ),
                    ));
                }
                out.push(("sAMAccountName".into(), s(&name)));
            }
            if !has("userPrincipalName") {
                out.push((
                    "userPrincipalName".into(),
                    s(&format!("{name}@{}", dns_domain(base_dn))),
                ));
            }
            // Created disabled; the password is set and the account enabled afterwards.
            let mut flags = uac::NORMAL_ACCOUNT | uac::ACCOUNTDISABLE;
            for (bit, on) in &c.uac {
                if *on {
                    flags |= bit
                } else {
                    flags &= !bit
                }
            }
            out.push(("userAccountControl".into(), s(&flags.to_string())));
        }
        AdObjectType::Group => {
            out.push((
                "objectClass".into(),
                vec![b"top".to_vec(), b"group".to_vec()],
            ));
            if !has("sAMAccountName") {
                out.push(("sAMAccountName".into(), s(&name)));
            }
            let gt = group_type_value(
                c.scope.unwrap_or(GroupScope::Global),
                c.security.unwrap_or(true),
            );
            out.push(("groupType".into(), s(&gt.to_string())));
        }
        AdObjectType::OrganizationalUnit => {
            out.push((
                "objectClass".into(),
                vec![b"top".to_vec(), b"organizationalUnit".to_vec()],
            ));
        }
        AdObjectType::Computer => {
            out.push((
                "objectClass".into(),
                vec![
                    b"top".to_vec(),
                    b"person".to_vec(),
                    b"organizationalPerson".to_vec(),
                    b"user".to_vec(),
                    b"computer".to_vec(),
                ],
            ));
            if !has("sAMAccountName") {
                out.push(("sAMAccountName".into(), s(&format!("{name}$"))));
            }
            let mut flags = uac::WORKSTATION_TRUST_ACCOUNT;
            if c.enabled == Some(false) {
                flags |= uac::ACCOUNTDISABLE;
            }
            out.push(("userAccountControl".into(), s(&flags.to_string())));
        }
        _ => {}
    }
    for (k, v) in &c.attrs {
        if let Change::Set(vals) = v {
            out.push((k.clone(), vals.clone()));
        }
    }
    Ok(out)
}

/// Encodes a password for the `unicodePwd` attribute: the password in double quotes, UTF-16LE.
/// AD accepts writes of it only over an encrypted connection (which is all the LDAP pool opens).
pub fn encode_password(pw: &str) -> Vec<u8> {
    format!("\"{pw}\"")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_pwd_encoding() {
        assert_eq!(
            encode_password("ab"),
            vec![b'"', 0, b'a', 0, b'b', 0, b'"', 0]
        );
        // Non-ASCII: U+00E9 is one UTF-16 unit, U+1F600 two.
        assert_eq!(encode_password("é").len(), 6);
        assert_eq!(encode_password("\u{1F600}").len(), 8);
    }

    #[test]
    fn group_types_are_signed() {
        assert_eq!(group_type_value(GroupScope::Global, true), -2147483646);
        assert_eq!(group_type_value(GroupScope::Universal, true), -2147483640);
        assert_eq!(group_type_value(GroupScope::Local, true), -2147483644);
        assert_eq!(group_type_value(GroupScope::Universal, false), 8);
    }

    #[test]
    fn null_marker_clears_and_properties_win() {
        let u: AdUser = serde_json::from_value(serde_json::json!({
            "Identity": "cn=x,dc=y", "Description": "~null~", "GivenName": "A",
            "Properties": {"givenName": ["B"], "info": null, "comment": "~NULL~"}
        }))
        .unwrap();
        let c = user(&u).unwrap();
        assert_eq!(c.attrs["description"], Change::Clear);
        assert_eq!(c.attrs["givenName"], Change::Set(vec![b"B".to_vec()]));
        assert_eq!(c.attrs["comment"], Change::Clear);
        assert!(!c.attrs.contains_key("info"));
    }
}
