//! Checking a template before it is used: when an organisation saves an override, and when a
//! template directory is loaded. [`validate`] parses the source, refuses names the template is
//! not given, renders it with sample data (with every optional variable present, and with all
//! of them missing), counts an SMS's segments against the clinic's limit, and refuses words that
//! reveal a diagnosis or speciality in the texts others may see. Each [`Problem`] names its line.

use crate::lang::Lang;
use crate::sms::{self, Encoding, Segments};
use crate::variables::{Channel, Presence, TemplateKey, Variable, WHEN_FORMAT_VARIABLES, sample};
use crate::{engine, scan, when};
use chrono::{DateTime, Datelike, Timelike, Utc};
use minijinja::value::Value;
use std::collections::BTreeMap;
use std::fmt;

/// A clinic's limit: long SMS cost more and arrive out of order on old phones. Four because a
/// Northern Sami SMS is UCS-2 (67 characters a part) and needs three or four.
pub const DEFAULT_MAX_SMS_SEGMENTS: usize = 4;

/// A starting list of words that give away what kind of clinic writes; a clinic's policy
/// supplies its own (its name, its ward). Whole words only, so each inflected or compound form
/// that matters is listed. "LAR" is left out on purpose: it is also the verb "lar".
pub const DEFAULT_REVEALING_WORDS: &[&str] = &[
    "rus",
    "rusbehandling",
    "rusavhengighet",
    "rusmiddel",
    "rusmidler",
    "ruspoliklinikk",
    "avrusning",
    "psykiatri",
    "psykiatrisk",
    "psykisk",
    "psykose",
    "DPS",
    "legemiddelassistert",
    "substitusjonsbehandling",
    "metadon",
    "buprenorfin",
    "hiv",
    "addiction",
    "psychiatry",
    "psychiatric",
    "mental health",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// An SMS that renders longer than this with sample data is refused.
    pub max_sms_segments: usize,
    /// Refused (ignoring case, as whole words or phrases) in SMS, relay texts and letter titles.
    pub revealing_words: Vec<String>,
    /// The clinic's policy allows naming itself or its speciality.
    pub allow_revealing: bool,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            max_sms_segments: DEFAULT_MAX_SMS_SEGMENTS,
            revealing_words: DEFAULT_REVEALING_WORDS
                .iter()
                .map(|w| (*w).to_owned())
                .collect(),
            allow_revealing: false,
        }
    }
}

/// One thing wrong with a template, and its line (1-based) when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub kind: ProblemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// The source is not a template (an unclosed `{% if %}`, a stray `}}`).
    Syntax { message: String },
    /// A name the template is not given; `provided` lists what it is given.
    UnknownVariable {
        name: String,
        provided: Vec<&'static str>,
    },
    /// A letter needs `{% block title %}` and `{% block body %}`, an e-mail `subject` and `body`.
    MissingBlock { name: &'static str },
    /// Rendering with sample data failed (e.g. an optional variable printed outside `{% if %}`).
    Render { message: String },
    /// The SMS needs more segments than the policy allows (rendered with sample data).
    TooManySegments {
        segments: usize,
        max: usize,
        encoding: Encoding,
        units: usize,
    },
    /// A refused word in a text others may see. Without a line, it came from an expression.
    Revealing { word: String },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match &self.kind {
            ProblemKind::Syntax { message } => write!(f, "syntax error: {message}"),
            ProblemKind::UnknownVariable { name, provided } => write!(
                f,
                "unknown variable `{name}`; this template is given: {}",
                if provided.is_empty() {
                    "nothing".to_owned()
                } else {
                    provided.join(", ")
                }
            ),
            ProblemKind::MissingBlock { name } => {
                write!(f, "missing {{% block {name} %}}…{{% endblock %}}")
            }
            ProblemKind::Render { message } => write!(f, "does not render: {message}"),
            ProblemKind::TooManySegments {
                segments,
                max,
                encoding,
                units,
            } => write!(
                f,
                "the SMS needs {segments} segments ({units} {encoding} units with sample data); the limit is {max}"
            ),
            ProblemKind::Revealing { word } => write!(
                f,
                "\"{word}\" may reveal the clinic or a diagnosis to others who see this text"
            ),
        }
    }
}

/// A template that passed: what it looks like with sample data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// One-line text, or the body of a letter or e-mail.
    pub text: String,
    /// A letter's title or an e-mail's subject.
    pub title: Option<String>,
    /// SMS only: segments and encoding of the sample text.
    pub segments: Option<Segments>,
    /// The variables the template uses, in table order.
    pub variables_used: Vec<&'static str>,
}

/// Checks `source` as the template for `key` in `lang` against a clinic's `rules`.
pub fn validate(
    key: TemplateKey,
    lang: &Lang,
    source: &str,
    rules: &Rules,
) -> Result<Report, Vec<Problem>> {
    check(key, source, rules, &|t| when::format_when(lang, t))
}

/// [`validate`] with the time worded by `when` (a directory language's `when.jinja`).
pub(crate) fn check(
    key: TemplateKey,
    source: &str,
    rules: &Rules,
    when: &dyn Fn(DateTime<Utc>) -> String,
) -> Result<Report, Vec<Problem>> {
    let name = key.file_stem();
    let env = engine::environment();
    let template = env.template_from_named_str(&name, source).map_err(|e| {
        vec![Problem {
            line: e.line(),
            kind: ProblemKind::Syntax {
                message: engine::message(&e),
            },
        }]
    })?;

    let mut problems = Vec::new();
    let provided = key.variables();
    let used = template.undeclared_variables(false);
    let globals: Vec<&str> = env.globals().map(|(name, _)| name).collect();
    for name in &used {
        if !provided.iter().any(|v| v.name == name) && !globals.contains(&name.as_str()) {
            problems.push(Problem {
                line: scan::variable_line(source, name),
                kind: ProblemKind::UnknownVariable {
                    name: name.clone(),
                    provided: provided.iter().map(|v| v.name).collect(),
                },
            });
        }
    }
    let blocks = scan::blocks(source);
    for &block in key.blocks() {
        if !blocks.iter().any(|b| b.name == block) {
            problems.push(Problem {
                line: None,
                kind: ProblemKind::MissingBlock { name: block },
            });
        }
    }
    let exposed = exposed_lines(key, source, &blocks);
    if !rules.allow_revealing {
        let visible = scan::without_comments(source);
        for word in &rules.revealing_words {
            for at in scan::find_phrase(&visible, word) {
                let line = scan::line_of(source, at);
                // A word on both the shipped list and the policy's is said once.
                let said = problems.iter().any(|p| {
                    p.line == Some(line)
                        && matches!(&p.kind, ProblemKind::Revealing { word: w } if w.to_lowercase() == word.to_lowercase())
                });
                if exposed.as_ref().is_some_and(|lines| lines.contains(&line)) && !said {
                    problems.push(revealing(word, Some(line)));
                }
            }
        }
    }

    if problems.is_empty() {
        let mut rendered = None;
        for sparse in [false, true] {
            let values = sample_values(key, when, sparse);
            match engine::render(key, &name, source, values) {
                Ok(out) => {
                    rendered.get_or_insert(out);
                }
                Err(e) => {
                    let problem = Problem {
                        line: e.line(),
                        kind: ProblemKind::Render {
                            message: engine::message(&e),
                        },
                    };
                    if !problems.contains(&problem) {
                        problems.push(problem);
                    }
                }
            }
        }
        if let Some(out) = rendered.filter(|_| problems.is_empty()) {
            let segments = (key.channel() == Some(Channel::Sms)).then(|| sms::count(&out.text));
            if let Some(s) = segments.filter(|s| s.segments > rules.max_sms_segments) {
                problems.push(Problem {
                    line: None,
                    kind: ProblemKind::TooManySegments {
                        segments: s.segments,
                        max: rules.max_sms_segments,
                        encoding: s.encoding,
                        units: s.units,
                    },
                });
            }
            // Words that only appear once rendered (built by an expression) have no line.
            if exposed.is_some() && !rules.allow_revealing {
                let seen = if key.blocks().is_empty() {
                    &out.text
                } else {
                    out.title.as_deref().unwrap_or_default()
                };
                for word in &rules.revealing_words {
                    let reported = problems.iter().any(
                        |p| matches!(&p.kind, ProblemKind::Revealing { word: w } if w == word),
                    );
                    if !reported && !scan::find_phrase(seen, word).is_empty() {
                        problems.push(revealing(word, None));
                    }
                }
            }
            if problems.is_empty() {
                return Ok(Report {
                    text: out.text,
                    title: out.title,
                    segments,
                    variables_used: provided
                        .iter()
                        .map(|v| v.name)
                        .filter(|n| used.contains(*n))
                        .collect(),
                });
            }
        }
    }
    problems.sort_by_key(|p| (p.line.is_none(), p.line));
    Err(problems)
}

fn revealing(word: &str, line: Option<usize>) -> Problem {
    Problem {
        line,
        kind: ProblemKind::Revealing {
            word: word.to_owned(),
        },
    }
}

/// The lines others than the patient may see: all of an SMS or relay text, a letter's title
/// block; `None` for texts only the patient (or staff) read.
fn exposed_lines(
    key: TemplateKey,
    source: &str,
    blocks: &[scan::Block],
) -> Option<std::ops::Range<usize>> {
    match key.channel() {
        Some(Channel::Letter) => {
            let title = blocks.iter().find(|b| b.name == "title")?;
            Some(title.lines.clone())
        }
        Some(channel) if channel.is_exposed() => Some(1..scan::line_of(source, source.len()) + 1),
        _ => None,
    }
}

/// The sample context for `key`: every variable of its row, with its sample value; with
/// `sparse`, optional variables are `none` (as when a place or time is not known).
pub(crate) fn sample_values(
    key: TemplateKey,
    when: &dyn Fn(DateTime<Utc>) -> String,
    sparse: bool,
) -> Value {
    let t = sample::time();
    let values: BTreeMap<&'static str, Value> = key
        .variables()
        .iter()
        .map(|v| {
            let value = if sparse && v.presence == Presence::Optional {
                Value::from(())
            } else {
                sample_value(key, v, t, when)
            };
            (v.name, value)
        })
        .collect();
    Value::from(values)
}

fn sample_value(
    key: TemplateKey,
    v: &Variable,
    t: DateTime<Utc>,
    when: &dyn Fn(DateTime<Utc>) -> String,
) -> Value {
    match v.name {
        "when" => Value::from(when(t)),
        "when_nb" => Value::from(crate::when_nb(t)),
        "place" => Value::from(sample::PLACE),
        "code" => Value::from(sample::CODE),
        "link" if key == TemplateKey::StaffEmail => Value::from(sample::STAFF_LINK),
        "link" => Value::from(sample::LINK),
        "patient_name" => Value::from(sample::PATIENT_NAME),
        "patient_birth_year" => Value::from(sample::PATIENT_BIRTH_YEAR),
        "staff_name" => Value::from(sample::STAFF_NAME),
        "count" => Value::from(3),
        "lines" => Value::from(sample::STAFF_LINES.map(Value::from).to_vec()),
        other => unreachable!("no sample value for {other}; add one with the variable"),
    }
}

/// The variables of a `when.jinja` for time `t` (Oslo time).
pub(crate) fn when_values(t: DateTime<Utc>) -> Value {
    let local = when::oslo(t);
    let values: BTreeMap<&'static str, Value> = [
        ("weekday", Value::from(local.weekday().number_from_monday())),
        ("day", Value::from(local.day())),
        ("month", Value::from(local.month())),
        ("year", Value::from(local.year())),
        ("hour", Value::from(format!("{:02}", local.hour()))),
        ("minute", Value::from(format!("{:02}", local.minute()))),
    ]
    .into_iter()
    .collect();
    Value::from(values)
}

/// Checks a directory language's `when.jinja`; on success, the sample time it words.
pub(crate) fn check_when(source: &str) -> Result<String, Vec<Problem>> {
    let env = engine::environment();
    let template = env.template_from_named_str("when", source).map_err(|e| {
        vec![Problem {
            line: e.line(),
            kind: ProblemKind::Syntax {
                message: engine::message(&e),
            },
        }]
    })?;
    let mut problems: Vec<Problem> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !WHEN_FORMAT_VARIABLES.iter().any(|v| v.name == name))
        .filter(|name| env.globals().all(|(g, _)| g != name))
        .map(|name| Problem {
            line: scan::variable_line(source, &name),
            kind: ProblemKind::UnknownVariable {
                name,
                provided: WHEN_FORMAT_VARIABLES.iter().map(|v| v.name).collect(),
            },
        })
        .collect();
    if problems.is_empty() {
        match engine::render_line("when", source, when_values(sample::time())) {
            Ok(text) if !text.is_empty() => return Ok(text),
            Ok(_) => problems.push(Problem {
                line: None,
                kind: ProblemKind::Render {
                    message: "renders as nothing".to_owned(),
                },
            }),
            Err(e) => problems.push(Problem {
                line: e.line(),
                kind: ProblemKind::Render {
                    message: engine::message(&e),
                },
            }),
        }
    }
    problems.sort_by_key(|p| (p.line.is_none(), p.line));
    Err(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    fn plain() -> Rules {
        Rules {
            revealing_words: Vec::new(),
            ..Rules::default()
        }
    }

    #[test]
    fn loop_variables_and_sets_are_not_unknown() {
        let source = "{% block subject %}{{ count }}{% endblock %}{% block body %}{% set n = count %}{% for line in lines %}{{ loop.index }}/{{ n }} {{ line|upper }}\n{% endfor %}{{ link }}{% endblock %}";
        let report = validate(TemplateKey::StaffEmail, &Lang::NB, source, &plain()).unwrap();
        assert!(
            report.text.starts_with("1/3 2 BESKJEDER"),
            "{}",
            report.text
        );
        assert_eq!(report.variables_used, ["count", "lines", "link"]);
    }

    #[test]
    fn a_runaway_loop_runs_out_of_fuel() {
        let key = TemplateKey::Notice(Kind::Free, Channel::Outreach);
        let source = "{{ code }}\n{% for i in range(100) %}{% for j in range(100) %}{% for k in range(100) %}.{% endfor %}{% endfor %}{% endfor %}";
        let problems = validate(key, &Lang::NB, source, &plain()).unwrap_err();
        assert!(
            matches!(&problems[0].kind, ProblemKind::Render { message } if message.contains("fuel")),
            "{problems:?}"
        );
    }

    #[test]
    fn include_and_extends_find_nothing() {
        let key = TemplateKey::Notice(Kind::Free, Channel::Sms);
        for source in ["{% include 'nb/free.sms' %}", "{% extends 'x' %}"] {
            let problems = validate(key, &Lang::NB, source, &plain()).unwrap_err();
            assert!(
                matches!(problems[0].kind, ProblemKind::Render { .. }),
                "{problems:?}"
            );
        }
    }

    #[test]
    fn a_word_on_two_lists_is_named_once() {
        let key = TemplateKey::Notice(Kind::Free, Channel::Sms);
        let rules = Rules {
            revealing_words: vec!["avrusning".into(), "Avrusning".into()],
            ..Rules::default()
        };
        let problems = validate(
            key,
            &Lang::NB,
            "Hei!\nTime på avrusning. {{ code }}",
            &rules,
        )
        .unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn a_when_format_is_checked() {
        let ok = check_when("{{ day }}.{{ month }}. klo {{ hour }}.{{ minute }}").unwrap();
        assert_eq!(ok, "3.3. klo 10.30");
        let problems = check_when("{{ day }}\n{{ weekday_name }}").unwrap_err();
        assert_eq!(problems[0].line, Some(2));
    }
}
