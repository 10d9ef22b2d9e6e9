//! Message texts: the shipped templates per kind, channel and language, an organisation's own
//! versions of them (every version kept; a notice records which one it used), checking a text
//! before it is saved (it must parse, use only its variables, fit the SMS budget and not reveal
//! the clinic's speciality where others may see it), and previews with sample data.

use super::{Items, roles};
use crate::auth::Caller;
use crate::context::AppContext;
use crate::extract::{ApiJson, parse_json};
use crate::problem::{ApiError, ApiResult};
use axum::extract::{Path, State};
use axum::routing;
use axum::{Json, Router};
use kontaktvei_scheduler::Policy;
use kontaktvei_store::template_overrides::{self, TemplateOverride};
use kontaktvei_store::{FieldError, organisations};
use kontaktvei_templates::{Lang, Rendered, TemplateKey, TemplateVersion};
use serde::{Deserialize, Serialize};

pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/templates", routing::get(list))
        .route("/templates/preview", routing::post(preview))
        .route(
            "/templates/{key}/{lang}",
            routing::get(get).put(save).delete(reset),
        )
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateEntry {
    /// `booking.sms`, `no_show_follow_up.letter`, `staff_email`, …
    pub key: String,
    pub lang: String,
    /// `default`, or the number of the organisation's own version in use.
    pub version: String,
}

/// Every template in every language the catalogue has, and which version is in use.
#[utoipa::path(get, path = "/templates", tag = "templates", responses((status = 200, body = Items<TemplateEntry>)))]
pub async fn list(
    State(ctx): State<AppContext>,
    caller: Caller,
) -> ApiResult<Json<Items<TemplateEntry>>> {
    caller.require(roles::READ_TEMPLATES, "read templates")?;
    let mut tx = ctx.store.begin_read().await?;
    let own = template_overrides::current(&mut tx, caller.organisation_id).await?;
    tx.commit().await?;
    let catalog = ctx.engine.catalog();
    let mut items = Vec::new();
    for lang in catalog.languages() {
        for key in TemplateKey::all() {
            let mine = own.iter().find(|o| {
                o.template_key == key.to_string() && o.lang == lang.as_str() && o.source.is_some()
            });
            items.push(TemplateEntry {
                key: key.to_string(),
                lang: lang.as_str().to_owned(),
                version: mine.map_or("default".to_owned(), |o| o.version.to_string()),
            });
        }
    }
    Ok(Json(Items::all(items)))
}

fn parse_key(key: &str, lang: &str) -> ApiResult<(TemplateKey, Lang)> {
    let key = TemplateKey::parse(key).ok_or_else(|| {
        ApiError::invalid(
            "key",
            "name a template as kind.channel (e.g. booking.sms, reminder.letter) or staff_email",
        )
    })?;
    let lang = Lang::parse(lang).ok_or_else(|| {
        ApiError::invalid(
            "lang",
            "a two- or three-letter language code: nb, nn, en, se, …",
        )
    })?;
    Ok((key, lang))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TemplateDetail {
    pub key: String,
    pub lang: String,
    /// The text in use: the organisation's newest version, or the default.
    pub source: Option<String>,
    /// `default`, or the version number in use.
    pub version: String,
    /// The shipped text (absent when the catalogue has no template in this language).
    pub default_source: Option<String>,
    /// The organisation's versions, newest first.
    pub versions: Vec<TemplateOverride>,
}

/// One template in one language: the text in use, the default, and every saved version.
#[utoipa::path(get, path = "/templates/{key}/{lang}", tag = "templates", responses((status = 200, body = TemplateDetail), (status = 422, body = crate::problem::Problem)))]
pub async fn get(
    State(ctx): State<AppContext>,
    caller: Caller,
    Path((key, lang)): Path<(String, String)>,
) -> ApiResult<Json<TemplateDetail>> {
    caller.require(roles::READ_TEMPLATES, "read templates")?;
    let (key, lang) = parse_key(&key, &lang)?;
    let mut tx = ctx.store.begin_read().await?;
    let versions = template_overrides::versions(
        &mut tx,
        caller.organisation_id,
        &key.to_string(),
        lang.as_str(),
    )
    .await?;
    tx.commit().await?;
    let default_source = ctx.engine.catalog().source(key, &lang).map(str::to_owned);
    let newest = versions
        .first()
        .and_then(|v| v.source.clone().map(|s| (v.version, s)));
    Ok(Json(TemplateDetail {
        key: key.to_string(),
        lang: lang.as_str().to_owned(),
        source: newest
            .as_ref()
            .map(|(_, s)| s.clone())
            .or(default_source.clone()),
        version: newest.map_or("default".to_owned(), |(v, _)| v.to_string()),
        default_source,
        versions,
    }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Save {
    /// The template text (minijinja; see the default's variables).
    pub source: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preview {
    pub text: String,
    pub title: Option<String>,
    pub lang_used: String,
    pub version: String,
    /// SMS only.
    pub sms_segments: Option<usize>,
    /// `GSM-7` or `UCS-2` (SMS only).
    pub sms_encoding: Option<String>,
    pub warnings: Vec<String>,
}

fn preview_of(r: Rendered) -> Preview {
    Preview {
        text: r.text,
        title: r.title,
        lang_used: r.lang_used.as_str().to_owned(),
        version: match r.version {
            TemplateVersion::Default => "default".to_owned(),
            TemplateVersion::Override(v) => v.to_string(),
        },
        sms_segments: r.segments.map(|s| s.segments),
        sms_encoding: r.segments.map(|s| s.encoding.to_string()),
        warnings: r.warnings,
    }
}

/// The organisation's rules for its own texts, from its policy.
async fn rules(ctx: &AppContext, caller: &Caller) -> ApiResult<kontaktvei_templates::Rules> {
    let mut tx = ctx.store.begin_read().await?;
    let stored = organisations::policy(&mut tx, caller.organisation_id).await?;
    tx.commit().await?;
    let policy = Policy::from_stored(stored).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(policy.template_rules())
}

/// Each problem as a field error on `source`, with its line.
fn problems(problems: Vec<kontaktvei_templates::Problem>) -> ApiError {
    ApiError::Invalid(
        problems
            .into_iter()
            .map(|p| FieldError::new("source", p.to_string()))
            .collect(),
    )
}

/// Stores a new version (`None`: back to the default) and shows what the template now gives.
async fn new_version(
    ctx: &AppContext,
    caller: &Caller,
    key: TemplateKey,
    lang: &Lang,
    source: Option<&str>,
) -> ApiResult<Json<Preview>> {
    let mut tx = ctx.store.begin().await?;
    template_overrides::save(
        &mut tx,
        caller.organisation_id,
        &key.to_string(),
        lang.as_str(),
        source,
        &caller.label(),
        ctx.clock.now(),
    )
    .await?;
    let overrides = ctx
        .engine
        .overrides(&mut tx, caller.organisation_id)
        .await?;
    tx.commit().await?;
    let rendered = ctx
        .engine
        .catalog()
        .preview(key, lang, &overrides)
        .map_err(|e| ApiError::invalid("source", e.to_string()))?;
    Ok(Json(preview_of(rendered)))
}

/// Saves a new version of the organisation's text, after checking it. Notices made from now
/// on use it (a notice in flight keeps its text).
#[utoipa::path(put, path = "/templates/{key}/{lang}", tag = "templates", request_body = Save,
    responses((status = 200, body = Preview), (status = 403, body = crate::problem::Problem), (status = 422, body = crate::problem::Problem)))]
pub async fn save(
    State(ctx): State<AppContext>,
    caller: Caller,
    Path((key, lang)): Path<(String, String)>,
    ApiJson(body): ApiJson<Save>,
) -> ApiResult<Json<Preview>> {
    caller.require(roles::ADMIN, "change the organisation's texts")?;
    let (key, lang) = parse_key(&key, &lang)?;
    let rules = rules(&ctx, &caller).await?;
    ctx.engine
        .catalog()
        .validate(key, &lang, &body.source, &rules)
        .map_err(problems)?;
    new_version(&ctx, &caller, key, &lang, Some(&body.source)).await
}

/// Goes back to the shipped text (kept as a version, so the history shows it).
#[utoipa::path(delete, path = "/templates/{key}/{lang}", tag = "templates",
    responses((status = 200, body = Preview), (status = 403, body = crate::problem::Problem)))]
pub async fn reset(
    State(ctx): State<AppContext>,
    caller: Caller,
    Path((key, lang)): Path<(String, String)>,
) -> ApiResult<Json<Preview>> {
    caller.require(roles::ADMIN, "change the organisation's texts")?;
    let (key, lang) = parse_key(&key, &lang)?;
    new_version(&ctx, &caller, key, &lang, None).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub key: String,
    pub lang: String,
    /// A text to try; without it, the one in use.
    pub source: Option<String>,
}

/// Renders a template with sample data: the one in use, or a text being written (checked as
/// saving would check it).
#[utoipa::path(post, path = "/templates/preview", tag = "templates", request_body = PreviewRequest,
    responses((status = 200, body = Preview), (status = 422, body = crate::problem::Problem)))]
pub async fn preview(
    State(ctx): State<AppContext>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult<Json<Preview>> {
    caller.require(roles::READ_TEMPLATES, "preview templates")?;
    let req: PreviewRequest = parse_json(&body)?;
    let (key, lang) = parse_key(&req.key, &req.lang)?;
    let mut tx = ctx.store.begin_read().await?;
    let mut overrides = ctx
        .engine
        .overrides(&mut tx, caller.organisation_id)
        .await?;
    tx.commit().await?;
    if let Some(source) = &req.source {
        let rules = rules(&ctx, &caller).await?;
        ctx.engine
            .catalog()
            .validate(key, &lang, source, &rules)
            .map_err(problems)?;
        overrides.insert(key, lang.clone(), 0, source.clone());
    }
    let rendered = ctx
        .engine
        .catalog()
        .preview(key, &lang, &overrides)
        .map_err(|e| ApiError::invalid("source", e.to_string()))?;
    Ok(Json(preview_of(rendered)))
}
