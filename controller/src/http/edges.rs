//! The request body's edges, before any route reads it:
//!
//! - a `Content-Length` over `BodyLimit` is answered 413 at once, before a byte of the body is read (a
//!   client announcing 100 GB gets its answer without sending any);
//! - the body must arrive within `BodyReadTimeout` of the headers: reading it after that fails, and the
//!   request is answered 408 whatever the route made of the failed read.
//!
//! (Headers have their own timeout, `HeaderReadTimeout`, in the accept loop: `serve`.)

use crate::http::error::{ApiError, ErrorShape};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use synapse_engine::model::DurationSpec;

/// The body was not received in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0}")]
pub struct BodyTimeout(DurationSpec);

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(DurationSpec(
                this.limit,
            ))))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// How a refusal at the edges reads: the AD API's envelope on `/ad` and `/myriad`, the plain error elsewhere.
pub fn shape_for(state: &AppState, path: &str) -> ErrorShape {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if first == "ad" || first == "myriad" {
        state.ad_errors.clone()
    } else {
        ErrorShape::Plain
    }
}

/// The layer (needs the state in the extensions, as `http::access` does).
pub async fn body_edges(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > state.body_limit as u64) {
        return shape_for(&state, req.uri().path())
            .respond(ApiError::PayloadTooLarge(state.body_limit), "");
    }
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let limit = state.body_read_timeout;
    let shape = shape_for(&state, req.uri().path());
    let timed_out = Arc::new(AtomicBool::new(false));
    let flag = timed_out.clone();
    let req = req.map(|inner| {
        Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
            timed_out: flag,
        })
    });
    let resp = next.run(req).await;
    if timed_out.load(Ordering::Acquire) {
        return shape.respond(
            ApiError::RequestTimeout(BodyTimeout(DurationSpec(limit)).to_string()),
            "",
        );
    }
    resp
}
