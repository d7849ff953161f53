//! Documented operations of the handlers that serve more than one method or path: one function per method and
//! path, so that each gets its own operation (id, parameters, body) and `routes!` registers exactly these.

use super::*;

const START_GET: &str = "Checks the inputs (every problem at once, 400), stores the instance as Running and \
    answers at once with its id. Dynamic parameters come from the query string: every key that is not one of \
    the API's own is one, e.g. `?name=Bob`.";
const START_POST: &str = "Checks the inputs (every problem at once, 400), stores the instance as Running and \
    answers at once with its id. Dynamic parameters come from the body; the query string may only hold the \
    API's own flags.";
const START_SYNC: &str = "Starts the plan and awaits completion (no polling) for up to `timeoutSeconds`. 200 \
    with the result tree (or the part `path` selects), rendered per `outputtype`, with the plan status in \
    `x-synapse-status`; 202 with the instance id if it is still running (it keeps running: GET \
    /synapse/execute/{plan}/{id} or stream /events).";
const PART: &str =
    "No path: the whole result (null while running). One path (`elementPath`, or one entry of \
    `ElementPaths`): that part. Several (query plus body): a list, in order.";

delegate! {
    start_async(state: State<Arc<AppState>>, plan: Path<String>, q: UniqueQuery, principal: Principal, req: Request) -> Result<Response, ApiError> {
        /// Start a plan (async)
        #[utoipa::path(get, path = "/{plan}/start", operation_id = "startGet", tag = "execute",
            description = START_GET,
            params(PlanPath, DryRunFlag, AtFlag, QueryParameters),
            responses(StartResponses))]
        start_get;
        /// Start a plan (async)
        #[utoipa::path(post, path = "/{plan}/start", operation_id = "startPost", tag = "execute",
            description = START_POST,
            params(PlanPath, DryRunFlag, AtFlag),
            request_body(description = BODY,
                content((Option<DynamicParameters> = "application/json"))),
            responses(StartResponses, (status = 413, response = PayloadTooLarge),
                (status = 415, response = UnsupportedMediaType)))]
        start_post;
        /// Start a plan (async)
        #[utoipa::path(get, path = "/{plan}/start/async", operation_id = "startAsyncGet", tag = "execute",
            description = START_GET,
            params(PlanPath, DryRunFlag, AtFlag, QueryParameters),
            responses(StartResponses))]
        start_async_get;
        /// Start a plan (async)
        #[utoipa::path(post, path = "/{plan}/start/async", operation_id = "startAsyncPost", tag = "execute",
            description = START_POST,
            params(PlanPath, DryRunFlag, AtFlag),
            request_body(description = BODY,
                content((Option<DynamicParameters> = "application/json"))),
            responses(StartResponses, (status = 413, response = PayloadTooLarge),
                (status = 415, response = UnsupportedMediaType)))]
        start_async_post;
    }
}

delegate! {
    start_sync(state: State<Arc<AppState>>, plan: Path<String>, q: UniqueQuery, headers: HeaderMap, principal: Principal, req: Request) -> Result<Response, ApiError> {
        /// Start a plan and wait for its result
        #[utoipa::path(get, path = "/{plan}/start/sync", operation_id = "startSyncGet", tag = "execute",
            description = START_SYNC,
            params(PlanPath, DryRunFlag, SyncFlags, QueryParameters),
            responses(SyncResponses))]
        start_sync_get;
        /// Start a plan and wait for its result
        #[utoipa::path(post, path = "/{plan}/start/sync", operation_id = "startSyncPost", tag = "execute",
            description = START_SYNC,
            params(PlanPath, DryRunFlag, SyncFlags),
            request_body(description = BODY,
                content((Option<DynamicParameters> = "application/json"))),
            responses(SyncResponses, (status = 413, response = PayloadTooLarge),
                (status = 415, response = UnsupportedMediaType)))]
        start_sync_post;
    }
}

delegate! {
    get_part(state: State<Arc<AppState>>, path: Path<(String, String)>, q: UniqueQuery, req: Request) -> Result<Response, ApiError> {
        /// Parts of an instance's result
        #[utoipa::path(get, path = "/{plan}/{id}/part", operation_id = "getPartGet", tag = "execute",
            description = PART,
            params(InstancePath, PartQuery),
            responses(PartResponses))]
        part_get;
        /// Parts of an instance's result
        #[utoipa::path(post, path = "/{plan}/{id}/part", operation_id = "getPartPost", tag = "execute",
            description = PART,
            params(InstancePath, PartQuery),
            request_body(description = BODY, content((Option<ElementPaths> = "application/json"))),
            responses(PartResponses, (status = 413, response = PayloadTooLarge),
                (status = 415, response = UnsupportedMediaType)))]
        part_post;
    }
}
