//! Prometheus metrics: request counts and latencies by route template (never by concrete path:
//! ids and query strings stay out), served as text at `GET /metrics`.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Instant;

use crate::context::AppContext;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    stuck_steps: Gauge,
    failed_emails: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kontaktvei");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 14))
        });
        registry.register("http_requests", "HTTP requests answered", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            latency.clone(),
        );
        let stuck_steps = Gauge::default();
        registry.register(
            "stuck_steps",
            "Contact steps overdue by 15 minutes or more, or whose worker lease ran out (auditor)",
            stuck_steps.clone(),
        );
        let failed_emails = Gauge::default();
        registry.register(
            "staff_emails_failed",
            "Staff e-mails given up on (refused or every retry failed); see GET /api/v1/emails",
            failed_emails.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            stuck_steps,
            failed_emails,
        }
    }
}

impl Metrics {
    /// The text exposition, with the auditor's latest counts of stuck steps and failed mails.
    pub fn render(&self, stuck_steps: i64, failed_emails: i64) -> String {
        self.stuck_steps.set(stuck_steps);
        self.failed_emails.set(failed_emails);
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

pub async fn track(State(ctx): State<AppContext>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    ctx.metrics
        .latency
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    ctx.metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
