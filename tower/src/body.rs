//! The bodies the layer hands on: the request's, replayed after the layer
//! read it, and the response's, scanned for `usage` as it streams past and
//! settled when it ends.

use crate::usage::UsageScanner;
use crate::Checker;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use ringfence::guard::Settlement;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// A request body as the guarded service receives it: the frames the layer
/// already read (the whole body, when it was at most `max_body_bytes`),
/// then the rest from the client.
pub struct GuardedBody<B: Body> {
    read: VecDeque<Frame<Bytes>>,
    error: Option<B::Error>,
    rest: Option<Pin<Box<B>>>,
}

impl<B: Body> GuardedBody<B> {
    pub(crate) fn new(
        read: VecDeque<Frame<Bytes>>,
        error: Option<B::Error>,
        rest: Option<Pin<Box<B>>>,
    ) -> Self {
        GuardedBody { read, error, rest }
    }

    /// The body, untouched (a request the layer does not guard).
    pub(crate) fn untouched(body: B) -> Self {
        GuardedBody {
            read: VecDeque::new(),
            error: None,
            rest: Some(Box::pin(body)),
        }
    }
}

// No field is ever pinned in place (the rest of the body is boxed).
impl<B: Body> Unpin for GuardedBody<B> {}

impl<B: Body<Data = Bytes>> Body for GuardedBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if let Some(frame) = self.read.pop_front() {
            return Poll::Ready(Some(Ok(frame)));
        }
        if let Some(e) = self.error.take() {
            return Poll::Ready(Some(Err(e)));
        }
        match self.rest.as_mut() {
            Some(rest) => rest.as_mut().poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.read.is_empty()
            && self.error.is_none()
            && self.rest.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let read: u64 = self
            .read
            .iter()
            .filter_map(|f| f.data_ref())
            .map(|d| d.len() as u64)
            .sum();
        match &self.rest {
            None => SizeHint::with_exact(read),
            Some(rest) => {
                let h = rest.size_hint();
                let mut out = SizeHint::new();
                out.set_lower(h.lower() + read);
                if let Some(u) = h.upper() {
                    out.set_upper(u + read);
                }
                out
            }
        }
    }
}

/// What settles a served request when its response ends.
pub(crate) struct Settler {
    pub guard: Arc<dyn Checker>,
    pub settlement: Settlement,
    pub scanner: UsageScanner,
    /// An error status: nothing was served, settle with no output.
    pub failed: bool,
}

impl Settler {
    /// Settles with what the body showed: no output for an error status,
    /// the usage found otherwise; a body without usage leaves the
    /// reservation standing (it was reserved at `max_tokens`).
    fn finish(mut self) {
        let output = if self.failed {
            Some(0)
        } else {
            self.scanner.finish()
        };
        if let Some(output) = output {
            self.guard.settle(self.settlement, output);
        }
    }
}

enum Kind<B> {
    /// The layer's own 429 answer.
    Refused(Option<Bytes>),
    /// The service's answer, settled (if `Some`) when it ends.
    Served(Pin<Box<B>>, Option<Settler>),
}

/// A response body: the guarded service's, passed on frame by frame (and
/// scanned for `usage` when the request was guarded), or the layer's own
/// refusal.
pub struct ResponseBody<B> {
    kind: Kind<B>,
}

impl<B> ResponseBody<B> {
    pub(crate) fn refused(body: Bytes) -> Self {
        ResponseBody {
            kind: Kind::Refused(Some(body)),
        }
    }

    pub(crate) fn served(body: B, settler: Option<Settler>) -> Self {
        ResponseBody {
            kind: Kind::Served(Box::pin(body), settler),
        }
    }
}

impl<B: Body<Data = Bytes>> Body for ResponseBody<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match &mut self.kind {
            Kind::Refused(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            Kind::Served(body, settler) => {
                let polled = body.as_mut().poll_frame(cx);
                match &polled {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let (Some(s), Some(data)) = (settler.as_mut(), frame.data_ref()) {
                            s.scanner.feed(data);
                        }
                        // A server that knows the length (a whole JSON
                        // answer) stops polling after the last frame.
                        if body.is_end_stream() {
                            if let Some(s) = settler.take() {
                                s.finish();
                            }
                        }
                    }
                    Poll::Ready(None) => {
                        if let Some(s) = settler.take() {
                            s.finish();
                        }
                    }
                    // A body that failed half-way keeps its reservation.
                    Poll::Ready(Some(Err(_))) => drop(settler.take()),
                    Poll::Pending => {}
                }
                polled
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Refused(body) => body.is_none(),
            // Not while a settlement waits for the end (it comes with the
            // last poll).
            Kind::Served(body, settler) => settler.is_none() && body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Refused(body) => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
            Kind::Served(body, _) => body.size_hint(),
        }
    }
}
