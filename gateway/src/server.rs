//! The HTTP server: routes, the layers every request passes (request id, tracing, metrics),
//! the operational endpoints, and a graceful shutdown on SIGTERM / Ctrl-C.

use crate::api;
use crate::config::Config;
use crate::context::AppContext;
use crate::problem::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use kontaktvei_scheduler::calendar::PostalCalendar;
use kontaktvei_scheduler::cron::Cron;
use kontaktvei_scheduler::{Engine, EngineConfig, worker};
use kontaktvei_store::{Clock, Store};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi;

pub fn app(ctx: AppContext) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/k/{token}", get(crate::link::show).post(crate::link::confirm))
        .route("/hooks/sms/{provider}/{secret}/dlr", get(crate::hooks::dlr).post(crate::hooks::dlr))
        .route("/hooks/sms/{provider}/{secret}/inbound", get(crate::hooks::inbound).post(crate::hooks::inbound))
        .nest("/api/v1", api::router(ctx.clone()))
        .merge(crate::web::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), crate::metrics::track))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // Only the route template: concrete paths carry ids and query strings may
                    // carry a patient's name.
                    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str());
                    let request_id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), route, request_id, key_id = tracing::field::Empty)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(ctx)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(ctx): State<AppContext>) -> (StatusCode, Json<serde_json::Value>) {
    if ctx.store.ping().await {
        (StatusCode::OK, Json(json!({"status": "ready"})))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "database unreachable"})),
        )
    }
}

async fn metrics(State(ctx): State<AppContext>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ctx.metrics
            .render(ctx.cron.stuck_steps(), ctx.cron.failed_emails()),
    )
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(api::ApiDoc::openapi())
}

/// Binds, announces the address on stdout (tests and scripts read it when the port was 0),
/// starts the escalation worker, and serves until SIGTERM or Ctrl-C; requests in flight and the
/// worker's current round are finished first.
pub async fn serve(store: Store, clock: Arc<dyn Clock>, config: &Config) -> anyhow::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    let instance = format!("{}:{}", hostname(), std::process::id());
    let public_base_url = config
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let sms = kontaktvei_channels::sms::config::build(
        &config.sms_providers,
        &public_base_url,
        &store,
        clock.clone(),
    )
    .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    tracing::info!(providers = ?sms.channel.provider_names(), "SMS providers");
    let engine = Arc::new(
        Engine::new(
            store.clone(),
            clock.clone(),
            EngineConfig {
                public_base_url,
                instance: instance.clone(),
                postal: PostalCalendar::default(),
            },
        )
        .with_sms(Arc::new(sms.channel)),
    );
    let cron = Arc::new(Cron::new(engine.clone(), instance));
    let hook_limiter = Arc::new(governor::RateLimiter::keyed(governor::Quota::per_second(
        std::num::NonZeroU32::new(200).unwrap_or(std::num::NonZeroU32::MIN),
    )));
    let ctx = AppContext {
        store,
        clock,
        metrics: Arc::default(),
        engine: engine.clone(),
        cron: cron.clone(),
        hooks: Arc::new(sms.hooks),
        hook_limiter,
    };
    let (stop, stopped) = watch::channel(false);
    let worker = tokio::spawn(worker::run(
        engine,
        cron,
        Duration::from_millis(config.worker_interval_ms),
        stopped,
    ));
    let mailer = kontaktvei_channels::email::Mailer::from_config(&config.email)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let mail = tokio::spawn(kontaktvei_scheduler::mail::run(
        ctx.engine.clone(),
        mailer,
        Duration::from_millis(config.worker_interval_ms.max(1000)),
        stop.subscribe(),
    ));
    println!("listening on http://{addr}");
    tracing::info!(%addr, backend = ?ctx.store.backend(), "kontaktvei is serving");
    axum::serve(listener, app(ctx.clone()))
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        })
        .await?;
    let _ = worker.await;
    let _ = mail.await;
    ctx.store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// This machine's name, to tell instances' leases apart in the database.
fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "kontaktvei".into())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
