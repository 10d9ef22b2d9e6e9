//! The template catalogue: which text is used for a notice kind on a channel in a language.
//!
//! A [`Catalog`] is built once (at start-up) and passed around; it holds the shipped templates
//! (`templates/defaults/<lang>/<kind>.<channel>.jinja` and `<lang>/staff_email.jinja`, embedded
//! in the binary by `build.rs`) and, with [`Catalog::with_dir`], the files of a directory laid
//! out the same way, which replace shipped files of the same name or add languages. A directory
//! language the crate has no weekday and month names for can bring `<lang>/when.jinja`
//! ([`crate::variables::WHEN_FORMAT_VARIABLES`]); without one its times are numeric.
//!
//! An organisation's own texts are [`Overrides`]: a source and a version per (template, language),
//! kept by the caller (the database) and handed in with each render. Rendering picks, in order:
//! the override in the wanted language, the catalogue's text in that language, then the same two
//! in bokmål, with a warning when it falls back. A failing override (it was validated when saved,
//! so this means the rules changed under it) gives way to the default text with a warning rather
//! than stopping a notice. [`Rendered`] says which language and which version were used.
//!
//! Relay and outreach texts are read by Norwegian-speaking staff: for `en` and `se` the
//! instructions stay in bokmål and only what is passed on is in the patient's language (for `se`
//! with a bokmål gloss, using `when_nb`).

use crate::engine;
use crate::lang::Lang;
use crate::sms::{self, Segments};
use crate::validate::{self, Problem, Report, Rules};
use crate::variables::{Channel, Presence, TemplateKey, sample};
use crate::{Context, when};
use chrono::{DateTime, Utc};
use minijinja::value::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

include!(concat!(env!("OUT_DIR"), "/shipped.rs"));

/// Which text was rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateVersion {
    /// The catalogue's (shipped or from the template directory).
    Default,
    /// The organisation's override with this version number.
    Override(i64),
}

/// A rendered text and how it came about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The SMS, relay or outreach text (one line), or a letter's or e-mail's body.
    pub text: String,
    /// A letter's title or an e-mail's subject.
    pub title: Option<String>,
    /// The language of the text: the one asked for, or `nb` after a fallback.
    pub lang_used: Lang,
    pub version: TemplateVersion,
    /// SMS only: how many segments, GSM-7 or UCS-2.
    pub segments: Option<Segments>,
    /// Fallbacks and failures worth logging or showing; empty when all went as asked.
    pub warnings: Vec<String>,
}

/// An organisation's text for one template in one language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub version: i64,
    pub source: String,
}

/// An organisation's overrides, in memory; storing them is the caller's business. Validate a
/// source with [`crate::validate()`] (or [`Catalog::validate`]) before inserting it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    by_key: BTreeMap<(TemplateKey, Lang), Override>,
}

impl Overrides {
    /// No overrides: every text is the catalogue's.
    pub const NONE: Overrides = Overrides {
        by_key: BTreeMap::new(),
    };

    pub fn new() -> Overrides {
        Overrides::default()
    }

    /// Sets the text for `key` in `lang`; returns the one it replaces.
    pub fn insert(
        &mut self,
        key: TemplateKey,
        lang: Lang,
        version: i64,
        source: impl Into<String>,
    ) -> Option<Override> {
        let source = source.into();
        self.by_key
            .insert((key, lang), Override { version, source })
    }

    pub fn get(&self, key: TemplateKey, lang: &Lang) -> Option<&Override> {
        self.by_key.get(&(key, lang.clone()))
    }

    pub fn remove(&mut self, key: TemplateKey, lang: &Lang) -> Option<Override> {
        self.by_key.remove(&(key, lang.clone()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (TemplateKey, &Lang, &Override)> {
        self.by_key.iter().map(|((k, l), o)| (*k, l, o))
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// What the staff e-mail says: counts, summary lines and a link; never patient data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffEmail {
    pub staff_name: String,
    pub count: usize,
    pub lines: Vec<String>,
    pub link: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The context lacks a value the template always gets (a booking without a start time).
    MissingValue {
        key: TemplateKey,
        name: &'static str,
    },
    /// No text could be rendered; the first failure.
    Template {
        key: TemplateKey,
        lang: Lang,
        line: Option<usize>,
        message: String,
    },
    /// Neither the language nor bokmål has this template (cannot happen with the shipped set).
    NoTemplate { key: TemplateKey, lang: Lang },
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::MissingValue { key, name } => {
                write!(f, "{key}: the notice has no value for `{name}`")
            }
            RenderError::Template {
                key,
                lang,
                line,
                message,
            } => {
                write!(f, "{lang}/{key}")?;
                if let Some(line) = line {
                    write!(f, " line {line}")?;
                }
                write!(f, ": {message}")
            }
            RenderError::NoTemplate { key, lang } => write!(f, "no {key} template in {lang}"),
        }
    }
}

impl std::error::Error for RenderError {}

/// A file of a template directory that could not be used. Loading stops at none of them: all
/// are reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadError {
    Io {
        path: PathBuf,
        message: String,
    },
    /// A directory whose name is not a language tag.
    NotALanguage {
        path: PathBuf,
    },
    /// A `.jinja` file whose name is no template (`booking.fax.jinja`).
    UnknownTemplate {
        path: PathBuf,
    },
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, message } => write!(f, "{}: {message}", path.display()),
            LoadError::NotALanguage { path } => write!(
                f,
                "{}: not a language tag (use e.g. nb, se, fi)",
                path.display()
            ),
            LoadError::UnknownTemplate { path } => write!(
                f,
                "{}: not a template name (use <kind>.<channel>.jinja, staff_email.jinja or when.jinja)",
                path.display()
            ),
            LoadError::Invalid { path, problems } => {
                write!(f, "{}:", path.display())?;
                for p in problems {
                    write!(f, " {p};")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// The template's variables for the language used; may add warnings (about the date format).
type ValuesFor<'a> = dyn Fn(&Lang, &mut Vec<String>) -> Result<Value, RenderError> + 'a;

#[derive(Debug, Clone)]
struct Entry {
    /// For error messages: `nb/booking.sms.jinja` or the file's path.
    name: String,
    source: Cow<'static, str>,
}

/// All templates by key and language; see the module documentation.
#[derive(Debug, Clone)]
pub struct Catalog {
    templates: BTreeMap<(TemplateKey, Lang), Entry>,
    when_formats: BTreeMap<Lang, Entry>,
}

enum FileKind {
    Template(TemplateKey),
    When,
}

fn file_kind(stem: &str) -> Option<FileKind> {
    if stem == "when" {
        Some(FileKind::When)
    } else {
        TemplateKey::parse(stem).map(FileKind::Template)
    }
}

impl Catalog {
    /// The templates embedded in the binary: nb, nn, en and se.
    pub fn shipped() -> Catalog {
        let mut catalog = Catalog {
            templates: BTreeMap::new(),
            when_formats: BTreeMap::new(),
        };
        for &(path, source) in SHIPPED {
            let parsed = path.split_once('/').and_then(|(lang, file)| {
                Some((Lang::parse(lang)?, file_kind(file.strip_suffix(".jinja")?)?))
            });
            let entry = Entry {
                name: path.to_owned(),
                source: Cow::Borrowed(source),
            };
            match parsed {
                Some((lang, FileKind::Template(key))) => {
                    catalog.templates.insert((key, lang), entry);
                }
                Some((lang, FileKind::When)) => {
                    catalog.when_formats.insert(lang, entry);
                }
                None => debug_assert!(false, "{path} is not a template name"),
            }
        }
        catalog
    }

    /// The shipped templates, replaced and extended by `dir`'s (`<dir>/<lang>/<name>.jinja`),
    /// each checked with [`Rules::default`]. Other files (a README) are ignored.
    pub fn with_dir(dir: impl AsRef<Path>) -> Result<Catalog, Vec<LoadError>> {
        Catalog::with_dir_checked(dir, &Rules::default())
    }

    /// [`Catalog::with_dir`] with the directory's files checked against `rules`.
    pub fn with_dir_checked(
        dir: impl AsRef<Path>,
        rules: &Rules,
    ) -> Result<Catalog, Vec<LoadError>> {
        let mut catalog = Catalog::shipped();
        let mut errors = Vec::new();
        let mut files = Vec::new();
        for lang_dir in read_sorted(dir.as_ref()).map_err(|e| vec![e])? {
            let name = lang_dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !lang_dir.is_dir() || name.starts_with('.') {
                continue;
            }
            let Some(lang) = Lang::parse(name) else {
                errors.push(LoadError::NotALanguage { path: lang_dir });
                continue;
            };
            let entries = match read_sorted(&lang_dir) {
                Ok(entries) => entries,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for path in entries {
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                let Some(stem) = name.strip_suffix(".jinja") else {
                    continue;
                };
                match file_kind(stem) {
                    Some(kind) => files.push((lang.clone(), path, kind)),
                    None => errors.push(LoadError::UnknownTemplate { path }),
                }
            }
        }
        // Date formats first, so a new language's templates are checked with its own dates.
        files.sort_by_key(|(_, _, kind)| matches!(kind, FileKind::Template(_)));
        for (lang, path, kind) in files {
            let source = match std::fs::read_to_string(&path) {
                Ok(source) => source,
                Err(e) => {
                    errors.push(LoadError::Io {
                        message: e.to_string(),
                        path,
                    });
                    continue;
                }
            };
            let checked = match kind {
                FileKind::When => validate::check_when(&source).map(|_| ()),
                FileKind::Template(key) => catalog.validate(key, &lang, &source, rules).map(|_| ()),
            };
            if let Err(problems) = checked {
                errors.push(LoadError::Invalid { path, problems });
                continue;
            }
            let entry = Entry {
                name: path.display().to_string(),
                source: Cow::Owned(source),
            };
            match kind {
                FileKind::When => catalog.when_formats.insert(lang, entry),
                FileKind::Template(key) => catalog.templates.insert((key, lang), entry),
            };
        }
        if errors.is_empty() {
            Ok(catalog)
        } else {
            Err(errors)
        }
    }

    /// The languages with at least one template.
    pub fn languages(&self) -> Vec<Lang> {
        let mut langs: Vec<Lang> = self.templates.keys().map(|(_, l)| l.clone()).collect();
        langs.sort();
        langs.dedup();
        langs
    }

    /// The templates `lang` lacks (they fall back to bokmål).
    pub fn missing(&self, lang: &Lang) -> Vec<TemplateKey> {
        TemplateKey::all()
            .filter(|&key| !self.templates.contains_key(&(key, lang.clone())))
            .collect()
    }

    /// The catalogue's source for `key` in `lang`: a starting point for an override.
    pub fn source(&self, key: TemplateKey, lang: &Lang) -> Option<&str> {
        self.templates
            .get(&(key, lang.clone()))
            .map(|e| e.source.as_ref())
    }

    /// `t` worded for `lang`: the directory's `when.jinja`, else [`when::format_when`].
    pub fn format_when(&self, lang: &Lang, t: DateTime<Utc>) -> String {
        self.when(lang, t).0
    }

    fn when(&self, lang: &Lang, t: DateTime<Utc>) -> (String, Option<String>) {
        let mut warning = None;
        if let Some(entry) = self.when_formats.get(lang) {
            match engine::render_line(&entry.name, &entry.source, validate::when_values(t)) {
                Ok(text) => return (text, None),
                Err(e) => warning = Some(format!("{} failed: {}", entry.name, engine::message(&e))),
            }
        }
        match when::builtin(lang, t) {
            Some(text) => (text, warning),
            None => {
                let text = when::iso(t);
                let warning = warning.unwrap_or_else(|| {
                    format!("no weekday and month names for {lang}; wrote {text}")
                });
                (text, Some(warning))
            }
        }
    }

    /// Checks a template as [`crate::validate()`] does, wording times as this catalogue does
    /// (so a directory language's `when.jinja` counts in an SMS's length).
    pub fn validate(
        &self,
        key: TemplateKey,
        lang: &Lang,
        source: &str,
        rules: &Rules,
    ) -> Result<Report, Vec<Problem>> {
        validate::check(key, source, rules, &|t| self.format_when(lang, t))
    }

    /// The text of a notice (`ctx.kind`) for `channel`, in `lang` if there is a template for it.
    pub fn render(
        &self,
        channel: Channel,
        lang: &Lang,
        ctx: &Context<'_>,
        overrides: &Overrides,
    ) -> Result<Rendered, RenderError> {
        let key = TemplateKey::Notice(ctx.kind, channel);
        self.render_key(key, lang, overrides, &|lang_used, warnings| {
            let when = ctx.starts_at.map(|t| {
                let (text, warning) = self.when(lang_used, t);
                warnings.extend(warning);
                text
            });
            notice_values(key, ctx, when)
        })
    }

    /// The staff e-mail in `lang`: subject in `title`, body in `text`.
    pub fn render_staff_email(
        &self,
        lang: &Lang,
        email: &StaffEmail,
        overrides: &Overrides,
    ) -> Result<Rendered, RenderError> {
        let values: BTreeMap<&'static str, Value> = [
            ("staff_name", Value::from(email.staff_name.as_str())),
            ("count", Value::from(email.count)),
            (
                "lines",
                Value::from(email.lines.iter().map(Value::from).collect::<Vec<_>>()),
            ),
            ("link", Value::from(email.link.as_str())),
        ]
        .into_iter()
        .collect();
        let values = Value::from(values);
        self.render_key(TemplateKey::StaffEmail, lang, overrides, &|_, _| {
            Ok(values.clone())
        })
    }

    /// `key` in `lang` rendered with the built-in sample data ([`sample`]), overrides included.
    pub fn preview(
        &self,
        key: TemplateKey,
        lang: &Lang,
        overrides: &Overrides,
    ) -> Result<Rendered, RenderError> {
        match key {
            TemplateKey::Notice(kind, channel) => {
                self.render(channel, lang, &sample::context(kind), overrides)
            }
            TemplateKey::StaffEmail => {
                self.render_staff_email(lang, &sample::staff_email(), overrides)
            }
        }
    }

    fn render_key(
        &self,
        key: TemplateKey,
        lang: &Lang,
        overrides: &Overrides,
        values_for: &ValuesFor<'_>,
    ) -> Result<Rendered, RenderError> {
        let mut langs = vec![lang.clone()];
        if *lang != Lang::NB {
            langs.push(Lang::NB);
        }
        let mut warnings = Vec::new();
        let mut failure = None;
        for lang_used in langs {
            let own = overrides.get(key, &lang_used);
            let default = self.templates.get(&(key, lang_used.clone()));
            if own.is_none() && default.is_none() {
                continue;
            }
            if lang_used != *lang {
                warnings.push(format!(
                    "no usable {key} template in {lang}; used {lang_used}"
                ));
            }
            let values = values_for(&lang_used, &mut warnings)?;
            let candidates = own
                .map(|o| {
                    let name = format!("{lang_used}/{key} override version {}", o.version);
                    (
                        name,
                        o.source.as_str(),
                        TemplateVersion::Override(o.version),
                    )
                })
                .into_iter()
                .chain(
                    default.map(|d| (d.name.clone(), d.source.as_ref(), TemplateVersion::Default)),
                );
            for (name, source, version) in candidates {
                match engine::render(key, &name, source, values.clone()) {
                    Ok(out) => {
                        if version == TemplateVersion::Default {
                            let elsewhere: Vec<&str> = overrides
                                .iter()
                                .filter(|(k, l, _)| *k == key && **l != lang_used)
                                .map(|(_, l, _)| l.as_str())
                                .collect();
                            if !elsewhere.is_empty() {
                                warnings.push(format!(
                                    "the organisation's {key} text is in {} only; used the default {lang_used} text",
                                    elsewhere.join(", ")
                                ));
                            }
                        }
                        let segments =
                            (key.channel() == Some(Channel::Sms)).then(|| sms::count(&out.text));
                        return Ok(Rendered {
                            text: out.text,
                            title: out.title,
                            lang_used,
                            version,
                            segments,
                            warnings,
                        });
                    }
                    Err(e) => {
                        let line = e.line().map(|l| format!(" line {l}")).unwrap_or_default();
                        warnings.push(format!("{name}{line} failed: {}", engine::message(&e)));
                        failure.get_or_insert(RenderError::Template {
                            key,
                            lang: lang_used.clone(),
                            line: e.line(),
                            message: engine::message(&e),
                        });
                    }
                }
            }
        }
        Err(failure.unwrap_or_else(|| RenderError::NoTemplate {
            key,
            lang: lang.clone(),
        }))
    }
}

/// The row's variables from a notice's context; an `Always` one without a value is an error.
fn notice_values(
    key: TemplateKey,
    ctx: &Context<'_>,
    when: Option<String>,
) -> Result<Value, RenderError> {
    let text = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(Value::from);
    let mut values = BTreeMap::new();
    for v in key.variables() {
        let value = match v.name {
            "when" => when.as_deref().map(Value::from),
            "when_nb" => ctx.starts_at.map(|t| Value::from(crate::when_nb(t))),
            "place" => text(ctx.place),
            "code" => text(Some(ctx.code)),
            "link" => text(Some(ctx.link)),
            "patient_name" => text(ctx.patient_name),
            "patient_birth_year" => ctx.patient_birth_year.map(Value::from),
            other => unreachable!("a notice has no {other}; add it here with the variable"),
        };
        let value = match (value, v.presence) {
            (Some(value), _) => value,
            (None, Presence::Optional) => Value::from(()),
            (None, Presence::Always) => {
                return Err(RenderError::MissingValue { key, name: v.name });
            }
        };
        values.insert(v.name, value);
    }
    Ok(Value::from(values))
}

fn read_sorted(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let io = |e: std::io::Error| LoadError::Io {
        path: dir.to_owned(),
        message: e.to_string(),
    };
    let mut paths = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|entry| entry.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io)?;
    paths.sort();
    Ok(paths)
}
