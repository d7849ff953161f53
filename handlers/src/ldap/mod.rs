//! The LDAP layer shared by every handler that speaks LDAP (the ActiveDirectoryHandler, and the
//! AD-integrated backend of the DnsHandler): escaping of filters and DNs.

pub mod escape;
