//! Documented operations of the handlers that serve several methods (`one`, `two`, `membership`,
//! `membership_twin`): one function per method, so that each gets its own operation (id, parameters, body) and
//! `routes!` registers exactly these.

use super::*;

delegate! {
    one(path: Path<(String, String)>, method: Method, c: Call, req: Request) -> Response {
        /// Get{Type}: read an object
        ///
        /// Plan Get{Type} (GetUser, GetGroup, GetOrgUnit, GetComputer; overridable with `AdRoutes` in synapse.yaml)
        /// with identity `{identity}`. The OU plans take no group-membership flags (using one is a 400).
        #[utoipa::path(
            get,
            path = "/{object}/{identity}",
            operation_id = "adGet",
            tag = "ad",
            params(ObjectPath, AdObjectFlags, AdFlags),
            responses(AdResponses)
        )]
        get_object;
        /// Create{Type}: create an object
        ///
        /// Plan Create{Type} with identity `{identity}` (must be a DN) and the body's fields. With `upsert=true` an
        /// existing object is modified.
        #[utoipa::path(post, path = "/{object}/{identity}", operation_id = "adCreate", tag = "ad",
            params(ObjectPath, AdObjectFlags, UpsertFlag, AdFlags),
            request_body(description = BODY, content((Option<AdObjectBody> = "application/json"))),
            responses(AdBodyResponses))]
        create_object;
        /// Modify{Type}: change an object
        ///
        /// Plan Modify{Type} with identity `{identity}` and the body's fields (absent fields are left alone; `~null~`
        /// clears one). With `upsert=true` a missing object is created (DN identities only).
        #[utoipa::path(put, path = "/{object}/{identity}", operation_id = "adModify", tag = "ad",
            params(ObjectPath, AdObjectFlags, UpsertFlag, AdFlags),
            request_body(description = BODY, content((Option<AdObjectBody> = "application/json"))),
            responses(AdBodyResponses))]
        modify_object;
        /// Delete{Type}: delete a leaf object
        ///
        /// Plan Delete{Type} with identity `{identity}`. Objects with children (e.g. a non-empty OU) are NotAllowed
        /// (403).
        #[utoipa::path(
            delete,
            path = "/{object}/{identity}",
            operation_id = "adDelete",
            tag = "ad",
            params(ObjectPath, AdObjectFlags, AdFlags),
            responses(AdResponses)
        )]
        delete_object;
    }
}

delegate! {
    two(path: Path<(String, String, String)>, method: Method, c: Call, req: Request) -> Response {
        /// Get{Type} of `{a}\{b}`
        ///
        /// GET and PUT on three segments always mean the identity `{a}\{b}` (`DOMAIN\name`).
        #[utoipa::path(
            get,
            path = "/{object}/{a}/{b}",
            operation_id = "adGetDomain",
            tag = "ad",
            params(ObjectTwoPath, AdObjectFlags, AdFlags),
            responses(AdResponses)
        )]
        get_two;
        /// Modify{Type} of `{a}\{b}`
        ///
        /// GET and PUT on three segments always mean the identity `{a}\{b}` (`DOMAIN\name`).
        #[utoipa::path(put, path = "/{object}/{a}/{b}", operation_id = "adModifyDomain", tag = "ad",
            params(ObjectTwoPath, AdObjectFlags, UpsertFlag, AdFlags),
            request_body(description = BODY, content((Option<AdObjectBody> = "application/json"))),
            responses(AdBodyResponses))]
        modify_two;
        /// Add{Type}ToGroup (seed form), or Create{Type} of `{a}\{b}` when `{a}` is a domain
        ///
        /// When `{a}` is not a configured domain name or alias (the usual case): plan Add{Type}ToGroup
        /// (AddUserToGroup, AddGroupToGroup, AddComputerToGroup) with identity `{a}` and group `{b}`; the body is
        /// ignored; `ou` answers 400 (OUs cannot be group members). Already a member: 409 (AlreadyExists). Nesting
        /// rules (a group cannot contain itself; Universal cannot contain Domain Local; Global only Global) give 403
        /// (NotAllowed). When `{a}` is a configured domain: Create{Type} of `{a}\{b}` with the body.
        #[utoipa::path(post, path = "/{object}/{a}/{b}", operation_id = "adAddToGroup", tag = "ad",
            params(ObjectTwoPath, AdObjectFlags, AdFlags),
            request_body(description = BODY, content((Option<AdObjectBody> = "application/json"))),
            responses(AdBodyResponses))]
        add_two;
        /// Remove{Type}FromGroup (seed form), or Delete{Type} of `{a}\{b}` when `{a}` is a domain
        ///
        /// When `{a}` is not a configured domain name or alias: plan Remove{Type}FromGroup with identity `{a}` and
        /// group `{b}`. Not a member: 404 (DoesNotExist). When `{a}` is a configured domain: Delete{Type} of
        /// `{a}\{b}`.
        #[utoipa::path(
            delete,
            path = "/{object}/{a}/{b}",
            operation_id = "adRemoveFromGroup",
            tag = "ad",
            params(ObjectTwoPath, AdObjectFlags, AdFlags),
            responses(AdResponses)
        )]
        remove_two;
    }
}

delegate! {
    membership(path: Path<(String, String, String)>, c: Call, req: Request) -> Response {
        /// Add{Type}ToGroup
        ///
        /// Upstream's explicit form. Plan Add{Type}ToGroup with identity `{identity}` and group `{group}`. The body
        /// is ignored. `ou` answers 400 (OUs cannot be group members).
        #[utoipa::path(
            post,
            path = "/{object}/{identity}/group/{group}",
            operation_id = "adAddToGroupExplicit",
            tag = "ad",
            params(MembershipPath, AdObjectFlags, AdFlags),
            responses(AdResponses)
        )]
        add_to_group;
        /// Remove{Type}FromGroup
        ///
        /// Plan Remove{Type}FromGroup with identity `{identity}` and group `{group}`.
        #[utoipa::path(
            delete,
            path = "/{object}/{identity}/group/{group}",
            operation_id = "adRemoveFromGroupExplicit",
            tag = "ad",
            params(MembershipPath, AdObjectFlags, AdFlags),
            responses(AdResponses)
        )]
        remove_from_group;
    }
}

delegate! {
    membership_twin(path: Path<(String, String, String, String)>, c: Call, req: Request) -> Response {
        /// Add{Type}ToGroup
        ///
        /// Upstream's explicit form. Plan Add{Type}ToGroup with identity `{domain}\{identity}` and group `{group}`.
        /// The body is ignored.
        #[utoipa::path(
            post,
            path = "/{object}/{domain}/{identity}/group/{group}",
            operation_id = "adAddToGroupExplicitTwin",
            tag = "ad",
            params(MembershipTwinPath, AdObjectFlags, AdFlags),
            responses(AdResponses)
        )]
        add_to_group_twin;
        /// Remove{Type}FromGroup
        ///
        /// Plan Remove{Type}FromGroup with identity `{domain}\{identity}` and group `{group}`.
        #[utoipa::path(
            delete,
            path = "/{object}/{domain}/{identity}/group/{group}",
            operation_id = "adRemoveFromGroupExplicitTwin",
            tag = "ad",
            params(MembershipTwinPath, AdObjectFlags, AdFlags),
            responses(AdResponses)
        )]
        remove_from_group_twin;
    }
}
