//! The pages' HTML: minijinja templates embedded in the binary (autoescaping on for all of
//! them), the [`Page`] a handler returns, and the layer that renders it and adds the headers
//! every staff page carries (no caching, no framing, a strict content security policy).
//!
//! The layout is built for WCAG 2.1 AA: Norwegian bokmål (`lang="nb"`), a label for every
//! field, a skip link, visible focus, contrast of at least 4.5:1 for text and 3:1 for focus
//! rings and borders, no JavaScript, and a single column that works at 320 px. The CSS is
//! inline: the pages load nothing else.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use std::sync::Arc;

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    ("login.html", include_str!("templates/login.html")),
    ("start.html", include_str!("templates/start.html")),
    ("message.html", include_str!("templates/message.html")),
    ("tasks.html", include_str!("templates/tasks.html")),
    ("print.html", include_str!("templates/print.html")),
    ("report.html", include_str!("templates/report.html")),
];

/// The compiled templates, made once when the router is built.
#[derive(Debug)]
pub struct Pages {
    env: Environment<'static>,
}

impl Pages {
    pub fn new() -> Result<Pages, minijinja::Error> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        // A misspelt variable is an error in the tests, not an empty spot on a page.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let pages = [
            TEMPLATES,
            super::clinic::TEMPLATES,
            super::coordinator::TEMPLATES,
            super::admin::TEMPLATES,
        ];
        for (name, source) in pages.into_iter().flatten() {
            env.add_template(name, source)?;
        }
        Ok(Pages { env })
    }

    fn render(&self, page: &Page) -> Result<String, minijinja::Error> {
        self.env.get_template(page.template)?.render(&page.context)
    }
}

/// A page to be rendered: which template, with what. Handlers return it; the layer
/// [`render`] turns it into HTML.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: StatusCode,
    pub template: &'static str,
    pub context: Value,
}

impl Page {
    pub fn new(template: &'static str, context: Value) -> Page {
        Page {
            status: StatusCode::OK,
            template,
            context,
        }
    }

    pub fn with_status(self, status: StatusCode) -> Page {
        Page { status, ..self }
    }

    /// A page with a heading, one paragraph and a link onwards (errors, refusals).
    pub fn message(status: StatusCode, title: &str, text: &str, link: (&str, &str)) -> Page {
        Page::new(
            "message.html",
            minijinja::context! {
                title => title,
                text => text,
                link_href => link.0,
                link_label => link.1,
                staff => Value::from(()),
            },
        )
        .with_status(status)
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// Renders the [`Page`] a handler returned and adds the staff pages' headers to every answer.
pub async fn render(State(pages): State<Arc<Pages>>, req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    if let Some(page) = response.extensions_mut().remove::<Page>() {
        let mut rendered = match pages.render(&page) {
            Ok(html) => (page.status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, template = page.template, "a staff page could not be rendered");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Html("<!doctype html><html lang=\"nb\"><title>Feil</title><p>Noe gikk galt hos oss. Prøv igjen om litt.</p></html>"),
                )
                    .into_response()
            }
        };
        // Cookies and redirects the handler set stay.
        for (name, value) in response.headers() {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                rendered.headers_mut().append(name, value.clone());
            }
        }
        response = rendered;
    }
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compile_and_escape() {
        let pages = Pages::new().unwrap();
        let html = pages
            .render(&Page::message(
                StatusCode::OK,
                "<b>Tittel</b>",
                "tekst",
                ("/staff", "Til startsiden"),
            ))
            .unwrap();
        assert!(html.contains("&lt;b&gt;Tittel&lt;"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(html.contains("lang=\"nb\""), "{html}");
    }
}
