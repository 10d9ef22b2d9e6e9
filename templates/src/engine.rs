//! The minijinja set-up every template renders with, and turning a rendered template into text:
//! strict undefined, no HTML escaping (these are SMS, letters and e-mails in plain text),
//! `trim_blocks`/`lstrip_blocks` so `{% if %}` lines leave no blank lines, and printing a `none`
//! is an error (an optional variable used outside `{% if %}`). A render may spend [`FUEL`]
//! instructions, so an override with a runaway loop fails instead of stalling a worker.

use crate::variables::TemplateKey;
use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, UndefinedBehavior};

/// Instructions one render may execute; the shipped templates need a few hundred.
pub(crate) const FUEL: u64 = 50_000;

pub(crate) fn environment<'source>() -> Environment<'source> {
    let mut env = Environment::new();
    env.set_fuel(Some(FUEL));
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    env.set_syntax(
        SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "printed a value that may be missing; put it inside {% if … %}",
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

/// A rendered template: the text (a letter's or e-mail's body) and the title or subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Output {
    pub text: String,
    pub title: Option<String>,
}

/// Renders `source` as the template for `key`; `name` appears in error messages.
pub(crate) fn render(
    key: TemplateKey,
    name: &str,
    source: &str,
    values: Value,
) -> Result<Output, Error> {
    let env = environment();
    let template = env.template_from_named_str(name, source)?;
    match key.blocks() {
        [title, body] => {
            let mut captured = template.render_captured(values)?;
            let title = captured.with_state_mut(|s| s.render_block(title))?;
            let body = captured.with_state_mut(|s| s.render_block(body))?;
            Ok(Output {
                text: body.trim().to_owned(),
                title: Some(one_line(&title)),
            })
        }
        _ => Ok(Output {
            text: one_line(&template.render(values)?),
            title: None,
        }),
    }
}

/// Renders a one-line template (a `when.jinja`).
pub(crate) fn render_line(name: &str, source: &str, values: Value) -> Result<String, Error> {
    let env = environment();
    let template = env.template_from_named_str(name, source)?;
    Ok(one_line(&template.render(values)?))
}

/// Whitespace runs, line breaks included, as single spaces; trimmed.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An error's message without minijinja's "(in name:line)" suffix; the line is reported apart.
pub(crate) fn message(error: &Error) -> String {
    match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    }
}
