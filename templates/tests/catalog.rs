//! The catalogue through its public API: every shipped template, the bokmål texts against the
//! original functions, validation, overrides, fallback and a dropped-in language.

use chrono::{TimeZone, Utc};
use kontaktvei_templates::sms::Encoding;
use kontaktvei_templates::variables::{STAFF_EMAIL_VARIABLES, sample};
use kontaktvei_templates::{
    Catalog, Channel, Context, Kind, Lang, LoadError, Medium, Overrides, ProblemKind, RenderError,
    Rules, TemplateKey, TemplateVersion, letter, render, validate,
};

const SHIPPED: [Lang; 4] = [Lang::NB, Lang::NN, Lang::EN, Lang::SE];

fn ctx(kind: Kind) -> Context<'static> {
    Context {
        kind,
        starts_at: Some(Utc.with_ymd_and_hms(2026, 3, 3, 9, 30, 0).unwrap()),
        place: Some("Storgata 36"),
        code: "K7MX3Q",
        link: "http://127.0.0.1:8080/k/abc",
        patient_name: Some("Kari"),
        patient_birth_year: Some(1979),
    }
}

fn no_rules() -> Rules {
    Rules {
        revealing_words: Vec::new(),
        ..Rules::default()
    }
}

#[test]
fn every_shipped_template_renders_in_every_language() {
    let catalog = Catalog::shipped();
    assert_eq!(catalog.languages(), {
        let mut l = SHIPPED.to_vec();
        l.sort();
        l
    });
    for lang in &SHIPPED {
        assert!(
            catalog.missing(lang).is_empty(),
            "{lang}: {:?}",
            catalog.missing(lang)
        );
        for key in TemplateKey::all() {
            let out = catalog
                .preview(key, lang, &Overrides::NONE)
                .unwrap_or_else(|e| panic!("{lang}/{key}: {e}"));
            assert_eq!(&out.lang_used, lang);
            assert_eq!(out.version, TemplateVersion::Default);
            assert!(out.warnings.is_empty(), "{lang}/{key}: {:?}", out.warnings);
            assert!(!out.text.is_empty(), "{lang}/{key}");
            assert!(
                !out.text.contains("none") && !out.text.contains("{{"),
                "{lang}/{key}: {}",
                out.text
            );
            match key {
                TemplateKey::Notice(_, Channel::Letter) | TemplateKey::StaffEmail => {
                    assert!(
                        out.title.as_deref().is_some_and(|t| !t.is_empty()),
                        "{lang}/{key}"
                    );
                }
                TemplateKey::Notice(..) => assert_eq!(out.title, None),
            }
            if let TemplateKey::Notice(_, channel) = key {
                let mentions_code = out.text.contains(sample::CODE);
                assert_eq!(
                    mentions_code,
                    channel != Channel::Letter,
                    "{lang}/{key}: {}",
                    out.text
                );
            }
            if key.channel() == Some(Channel::Sms) {
                assert!(out.text.contains(sample::LINK), "{lang}/{key}");
            }
            // Every shipped template passes the checks an organisation's override must pass.
            let source = catalog.source(key, lang).unwrap();
            let report = validate(key, lang, source, &Rules::default())
                .unwrap_or_else(|p| panic!("{lang}/{key}: {p:?}"));
            assert_eq!(report.text, out.text, "{lang}/{key}");
        }
    }
}

#[test]
fn every_shipped_template_renders_without_the_optional_values() {
    let catalog = Catalog::shipped();
    for lang in &SHIPPED {
        for kind in [Kind::Cancellation, Kind::NoShowFollowUp, Kind::Free] {
            for channel in Channel::ALL {
                let bare = Context {
                    starts_at: None,
                    place: None,
                    patient_name: None,
                    patient_birth_year: None,
                    ..ctx(kind)
                };
                let out = catalog.render(channel, lang, &bare, &Overrides::NONE);
                assert!(out.is_ok(), "{lang} {kind:?} {channel:?}: {out:?}");
            }
        }
        let no_place = Context {
            place: None,
            ..ctx(Kind::Booking)
        };
        let sms = catalog
            .render(Channel::Sms, lang, &no_place, &Overrides::NONE)
            .unwrap();
        assert!(
            !sms.text.contains(", ,") && !sms.text.contains(" ."),
            "{}",
            sms.text
        );
    }
}

#[test]
fn bokmal_texts_equal_the_original_functions() {
    let catalog = Catalog::shipped();
    let lines = |s: &str| {
        s.lines()
            .map(str::trim)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    for kind in Kind::ALL {
        let full = ctx(kind);
        let no_place = Context {
            place: None,
            ..ctx(kind)
        };
        let anonymous = Context {
            patient_name: None,
            patient_birth_year: None,
            ..ctx(kind)
        };
        let no_year = Context {
            patient_birth_year: None,
            ..ctx(kind)
        };
        for c in [&full, &no_place, &anonymous, &no_year] {
            let sms = catalog
                .render(Channel::Sms, &Lang::NB, c, &Overrides::NONE)
                .unwrap();
            assert_eq!(sms.text, render(Medium::Sms, c), "{kind:?}");
            for channel in [Channel::Relay, Channel::Outreach] {
                let said = catalog
                    .render(channel, &Lang::NB, c, &Overrides::NONE)
                    .unwrap();
                assert_eq!(
                    said.text,
                    render(Medium::InPerson, c),
                    "{kind:?} {channel:?}"
                );
            }
            let printed = catalog
                .render(Channel::Letter, &Lang::NB, c, &Overrides::NONE)
                .unwrap();
            let old = letter(c);
            assert_eq!(
                printed.title.as_deref(),
                Some(old.title.as_str()),
                "{kind:?}"
            );
            // The letter renderer trims each line, so only the old text's indentation differs.
            assert_eq!(lines(&printed.text), lines(&old.body), "{kind:?}");
        }
    }
}

#[test]
fn a_booking_without_a_time_is_refused_not_worded_vaguely() {
    let c = Context {
        starts_at: None,
        ..ctx(Kind::Booking)
    };
    let err = Catalog::shipped()
        .render(Channel::Sms, &Lang::NB, &c, &Overrides::NONE)
        .unwrap_err();
    assert!(
        matches!(err, RenderError::MissingValue { name: "when", .. }),
        "{err}"
    );
}

#[test]
fn sms_texts_fit_the_segment_budget_for_typical_values() {
    let catalog = Catalog::shipped();
    for lang in &SHIPPED {
        for kind in Kind::ALL {
            let out = catalog
                .preview(
                    TemplateKey::Notice(kind, Channel::Sms),
                    lang,
                    &Overrides::NONE,
                )
                .unwrap();
            let s = out.segments.unwrap();
            let (encoding, max) = if *lang == Lang::SE {
                (Encoding::Ucs2, 4)
            } else {
                (Encoding::Gsm7, 2)
            };
            assert_eq!(s.encoding, encoding, "{lang} {kind:?}");
            assert!(s.segments <= max, "{lang} {kind:?}: {s:?} {}", out.text);
        }
    }
}

#[test]
fn validation_names_the_unknown_variable_and_its_line() {
    let source = "Du har time {{ when }}.\n{% if place %}Sted: {{ place }}{% endif %}\n{% if patient_name %}Hei {{ patient_name }}{% endif %}, svar {{ code }} {{ link }}";
    let key = TemplateKey::Notice(Kind::Booking, Channel::Sms);
    let problems = validate(key, &Lang::NB, source, &Rules::default()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, Some(3));
    match &problems[0].kind {
        ProblemKind::UnknownVariable { name, provided } => {
            assert_eq!(name, "patient_name");
            assert_eq!(provided, &["when", "place", "code", "link"]);
        }
        other => panic!("{other:?}"),
    }
    let shown = problems[0].to_string();
    assert!(
        shown.starts_with("line 3: unknown variable `patient_name`"),
        "{shown}"
    );

    // The same name is fine where the template is given it.
    let relay = TemplateKey::Notice(Kind::Booking, Channel::Relay);
    assert!(validate(relay, &Lang::NB, source, &Rules::default()).is_ok());

    // A free notice has no time at all.
    let free = TemplateKey::Notice(Kind::Free, Channel::Sms);
    let problems = validate(
        free,
        &Lang::NB,
        "Hei!\n\n{{ when }} {{ code }}",
        &no_rules(),
    )
    .unwrap_err();
    assert_eq!(problems[0].line, Some(3));
}

#[test]
fn validation_reports_syntax_errors_and_careless_optional_values_with_lines() {
    let key = TemplateKey::Notice(Kind::Cancellation, Channel::Sms);
    let broken = "Timen din er avlyst.\n{% if when %}{{ when }}\nSvar {{ code }} {{ link }}";
    let problems = validate(key, &Lang::NB, broken, &no_rules()).unwrap_err();
    assert!(
        matches!(problems[0].kind, ProblemKind::Syntax { .. }),
        "{problems:?}"
    );
    assert!(problems[0].line.is_some(), "{problems:?}");

    // `when` may be missing for a cancellation: printing it bare fails with sample data.
    let careless = "Timen din er avlyst.\nDet var {{ when }}.\nSvar {{ code }} {{ link }}";
    let problems = validate(key, &Lang::NB, careless, &no_rules()).unwrap_err();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, Some(2));
    assert!(matches!(problems[0].kind, ProblemKind::Render { .. }));

    let letter = TemplateKey::Notice(Kind::Free, Channel::Letter);
    let problems = validate(
        letter,
        &Lang::NB,
        "{% block body %}Hei{% endblock %}",
        &no_rules(),
    )
    .unwrap_err();
    assert!(matches!(
        problems[0].kind,
        ProblemKind::MissingBlock { name: "title" }
    ));
}

#[test]
fn revealing_words_are_refused_unless_the_policy_allows_them() {
    let key = TemplateKey::Notice(Kind::Booking, Channel::Sms);
    let source = "Velkommen til\nPoliklinikk Rus Nord {{ when }}. Svar {{ code }} {{ link }}";
    let rules = Rules {
        max_sms_segments: 3,
        revealing_words: vec![
            "rus".into(),
            "psykiatri".into(),
            "Poliklinikk Rus Nord".into(),
        ],
        allow_revealing: false,
    };
    let problems = validate(key, &Lang::NB, source, &rules).unwrap_err();
    let words: Vec<(&str, Option<usize>)> = problems
        .iter()
        .map(|p| match &p.kind {
            ProblemKind::Revealing { word } => (word.as_str(), p.line),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(words, [("rus", Some(2)), ("Poliklinikk Rus Nord", Some(2))]);

    let allowed = Rules {
        allow_revealing: true,
        ..rules.clone()
    };
    let report = validate(key, &Lang::NB, source, &allowed).unwrap();
    assert!(report.text.contains("Poliklinikk Rus Nord"));

    // Words only, not parts of words; comments are not seen by anyone.
    let harmless = "{# not for rus patients #}Russetid? {{ when }} {{ code }} {{ link }}";
    assert!(validate(key, &Lang::NB, harmless, &rules).is_ok());
    // Built by an expression: refused, without a line.
    let sneaky = "{{ 'r' ~ 'us' }} {{ when }} {{ code }} {{ link }}";
    let problems = validate(key, &Lang::NB, sneaky, &rules).unwrap_err();
    assert_eq!(problems[0].line, None);
    assert!(matches!(&problems[0].kind, ProblemKind::Revealing { word } if word == "rus"));

    // A letter's title shows in the envelope window; its body does not.
    let letter = TemplateKey::Notice(Kind::Booking, Channel::Letter);
    let body_only = "{% block title %}Du har fått time{% endblock %}\n{% block body %}\nVelkommen til psykiatri {{ when }}.\n{% endblock %}";
    assert!(validate(letter, &Lang::NB, body_only, &rules).is_ok());
    let in_title = "{% block title %}\nTime i psykiatri\n{% endblock %}\n{% block body %}{{ when }}{% endblock %}";
    let problems = validate(letter, &Lang::NB, in_title, &rules).unwrap_err();
    assert_eq!(problems[0].line, Some(2));
    // Relay texts are said out loud; outreach and staff e-mail are not checked.
    let relay = TemplateKey::Notice(Kind::Free, Channel::Relay);
    assert!(validate(relay, &Lang::NB, "Fra psykiatri: {{ code }}", &rules).is_err());
    let outreach = TemplateKey::Notice(Kind::Free, Channel::Outreach);
    assert!(validate(outreach, &Lang::NB, "Fra psykiatri: {{ code }}", &rules).is_ok());
}

#[test]
fn segment_counts_report_gsm7_and_ucs2() {
    let key = TemplateKey::Notice(Kind::Free, Channel::Sms);
    let nb = validate(
        key,
        &Lang::NB,
        "Hei! Svar {{ code }} på denne meldingen: {{ link }}",
        &no_rules(),
    )
    .unwrap();
    let s = nb.segments.unwrap();
    assert_eq!((s.encoding, s.segments), (Encoding::Gsm7, 1));
    assert_eq!(nb.variables_used, ["code", "link"]);

    let se = validate(key, &Lang::SE, "Vástit {{ code }}: {{ link }}", &no_rules()).unwrap();
    let s = se.segments.unwrap();
    assert_eq!((s.encoding, s.segments), (Encoding::Ucs2, 1));

    let long = format!(
        "{} {{{{ code }}}} {{{{ link }}}}",
        "Dette er en lang melding.".repeat(12)
    );
    let rules = Rules {
        max_sms_segments: 2,
        ..no_rules()
    };
    let problems = validate(key, &Lang::NB, &long, &rules).unwrap_err();
    match problems[0].kind {
        ProblemKind::TooManySegments {
            segments,
            max,
            encoding,
            ..
        } => {
            assert_eq!((segments, max, encoding), (3, 2, Encoding::Gsm7));
        }
        ref other => panic!("{other:?}"),
    }
    // Letters have no segments.
    let letter = TemplateKey::Notice(Kind::Free, Channel::Letter);
    let report = validate(
        letter,
        &Lang::NB,
        "{% block title %}T{% endblock %}{% block body %}B{% endblock %}",
        &no_rules(),
    )
    .unwrap();
    assert_eq!(report.segments, None);
    assert_eq!(report.title.as_deref(), Some("T"));
}

#[test]
fn a_missing_language_falls_back_to_bokmal_with_a_warning() {
    let catalog = Catalog::shipped();
    let fi = Lang::parse("fi").unwrap();
    let out = catalog
        .render(Channel::Sms, &fi, &ctx(Kind::Booking), &Overrides::NONE)
        .unwrap();
    assert_eq!(out.lang_used, Lang::NB);
    assert_eq!(out.text, render(Medium::Sms, &ctx(Kind::Booking)));
    assert_eq!(out.warnings.len(), 1, "{:?}", out.warnings);
    assert!(
        out.warnings[0].contains("fi") && out.warnings[0].contains("nb"),
        "{:?}",
        out.warnings
    );
}

#[test]
fn overrides_are_used_and_their_version_reported() {
    let catalog = Catalog::shipped();
    let key = TemplateKey::Notice(Kind::NoShowFollowUp, Channel::Sms);
    let mut overrides = Overrides::new();
    overrides.insert(
        key,
        Lang::NB,
        7,
        "Vi savnet deg. Kom innom mandag–fredag 9–15. Svar {{ code }} eller åpne {{ link }}",
    );
    let c = ctx(Kind::NoShowFollowUp);
    let out = catalog
        .render(Channel::Sms, &Lang::NB, &c, &overrides)
        .unwrap();
    assert_eq!(out.version, TemplateVersion::Override(7));
    assert!(
        out.text.starts_with("Vi savnet deg. Kom innom"),
        "{}",
        out.text
    );
    assert!(out.warnings.is_empty());

    // Other templates are untouched.
    let reminder = catalog
        .render(Channel::Sms, &Lang::NB, &ctx(Kind::Reminder), &overrides)
        .unwrap();
    assert_eq!(reminder.version, TemplateVersion::Default);

    // The language match wins over the override, but the caller hears about it.
    let nn = catalog
        .render(Channel::Sms, &Lang::NN, &c, &overrides)
        .unwrap();
    assert_eq!(
        (nn.lang_used.clone(), nn.version),
        (Lang::NN, TemplateVersion::Default)
    );
    assert!(nn.warnings[0].contains("nb only"), "{:?}", nn.warnings);

    // An override with no default in its language is still used.
    let fi = Lang::parse("fi").unwrap();
    overrides.insert(
        key,
        fi.clone(),
        2,
        "Kaipasimme sinua. Vastaa {{ code }}: {{ link }}",
    );
    let out = catalog.render(Channel::Sms, &fi, &c, &overrides).unwrap();
    assert_eq!(
        (out.lang_used, out.version),
        (fi, TemplateVersion::Override(2))
    );

    // A broken override gives way to the default text instead of stopping the notice.
    overrides.insert(key, Lang::NB, 8, "Hei {{ patient_name }}");
    let out = catalog
        .render(Channel::Sms, &Lang::NB, &c, &overrides)
        .unwrap();
    assert_eq!(out.version, TemplateVersion::Default);
    assert_eq!(out.text, render(Medium::Sms, &c));
    assert!(
        out.warnings[0].contains("override version 8"),
        "{:?}",
        out.warnings
    );

    // Previews show the override with sample data.
    let preview = catalog
        .preview(key, &Lang::parse("fi").unwrap(), &overrides)
        .unwrap();
    assert!(preview.text.contains(sample::CODE));
}

#[test]
fn the_staff_email_counts_and_links_without_patient_data() {
    let names: Vec<&str> = STAFF_EMAIL_VARIABLES.iter().map(|v| v.name).collect();
    assert_eq!(names, ["staff_name", "count", "lines", "link"]);
    let catalog = Catalog::shipped();
    let email = kontaktvei_templates::StaffEmail {
        staff_name: "Ola".into(),
        count: 1,
        lines: vec!["1 beskjed venter på å bli gitt videre".into()],
        link: "https://kontaktvei.example.no/oppgaver".into(),
    };
    let out = catalog
        .render_staff_email(&Lang::NB, &email, &Overrides::NONE)
        .unwrap();
    assert_eq!(out.title.as_deref(), Some("1 ny sak i kontaktvei"));
    assert_eq!(
        out.text,
        "Hei Ola!\n\nDu har 1 ny sak i kontaktvei:\n- 1 beskjed venter på å bli gitt videre\n\nLogg inn for å se den: https://kontaktvei.example.no/oppgaver\n\nDenne e-posten inneholder ingen pasientopplysninger."
    );
    let en = catalog
        .preview(TemplateKey::StaffEmail, &Lang::EN, &Overrides::NONE)
        .unwrap();
    assert_eq!(en.title.as_deref(), Some("3 new items in kontaktvei"));
    // Patient fields are not given to the e-mail.
    let problems = validate(
        TemplateKey::StaffEmail,
        &Lang::NB,
        "{% block subject %}{{ patient_name }}{% endblock %}{% block body %}{% endblock %}",
        &no_rules(),
    )
    .unwrap_err();
    assert!(
        matches!(&problems[0].kind, ProblemKind::UnknownVariable { name, .. } if name == "patient_name")
    );
}

#[test]
fn a_dropped_in_directory_adds_a_language_and_replaces_files() {
    let dir = tempfile::tempdir().unwrap();
    let fi = dir.path().join("fi");
    std::fs::create_dir(&fi).unwrap();
    std::fs::write(
        fi.join("when.jinja"),
        "{{ ['maanantaina', 'tiistaina', 'keskiviikkona', 'torstaina', 'perjantaina', 'lauantaina', 'sunnuntaina'][weekday - 1] }} {{ day }}.{{ month }}. klo {{ hour }}.{{ minute }}\n",
    )
    .unwrap();
    std::fs::write(
        fi.join("booking.sms.jinja"),
        "Sinulla on aika {{ when }}{% if place %}, {{ place }}{% endif %}.\nVastaa {{ code }} tähän viestiin tai avaa {{ link }}\n",
    )
    .unwrap();
    std::fs::write(fi.join("README.txt"), "ignored").unwrap();
    let nb = dir.path().join("nb");
    std::fs::create_dir(&nb).unwrap();
    std::fs::write(
        nb.join("free.sms.jinja"),
        "Ring oss. Svar {{ code }}: {{ link }}",
    )
    .unwrap();

    let catalog = Catalog::with_dir(dir.path()).unwrap();
    let fi = Lang::parse("fi").unwrap();
    assert!(catalog.languages().contains(&fi));
    let out = catalog
        .render(Channel::Sms, &fi, &ctx(Kind::Booking), &Overrides::NONE)
        .unwrap();
    assert_eq!(out.lang_used, fi);
    assert_eq!(
        out.text,
        "Sinulla on aika tiistaina 3.3. klo 10.30, Storgata 36. Vastaa K7MX3Q tähän viestiin tai avaa http://127.0.0.1:8080/k/abc"
    );
    assert!(out.warnings.is_empty(), "{:?}", out.warnings);
    // What fi lacks falls back to bokmål.
    assert_eq!(catalog.missing(&fi).len(), 24);
    let letter = catalog
        .render(Channel::Letter, &fi, &ctx(Kind::Booking), &Overrides::NONE)
        .unwrap();
    assert_eq!(letter.lang_used, Lang::NB);
    // The directory's nb file replaces the shipped one; the rest of nb stays.
    let free = catalog
        .render(Channel::Sms, &Lang::NB, &ctx(Kind::Free), &Overrides::NONE)
        .unwrap();
    assert_eq!(
        free.text,
        "Ring oss. Svar K7MX3Q: http://127.0.0.1:8080/k/abc"
    );
    assert_eq!(free.version, TemplateVersion::Default);
    assert_eq!(catalog.missing(&Lang::NB), []);
}

#[test]
fn a_directory_with_mistakes_is_refused_file_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let fi = dir.path().join("fi");
    std::fs::create_dir(&fi).unwrap();
    std::fs::write(fi.join("booking.fax.jinja"), "x").unwrap();
    std::fs::write(
        fi.join("free.sms.jinja"),
        "Hei {{ patient_name }}\n{{ code }}",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("finnish")).unwrap();
    let errors = Catalog::with_dir(dir.path()).unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, LoadError::UnknownTemplate { .. }))
    );
    assert!(
        errors
            .iter()
            .any(|e| matches!(e, LoadError::NotALanguage { .. }))
    );
    let invalid = errors
        .iter()
        .find_map(|e| match e {
            LoadError::Invalid { problems, .. } => Some(problems),
            _ => None,
        })
        .unwrap();
    assert_eq!(invalid[0].line, Some(1));
    assert!(Catalog::with_dir(dir.path().join("absent")).is_err());
}

#[test]
#[ignore = "prints every shipped text with sample data, for reading"]
fn print_all_previews() {
    let catalog = Catalog::shipped();
    for lang in &SHIPPED {
        for key in TemplateKey::all() {
            let out = catalog.preview(key, lang, &Overrides::NONE).unwrap();
            println!(
                "== {lang}/{key} {:?}",
                out.segments.map(|s| (s.encoding, s.units, s.segments))
            );
            if let Some(t) = &out.title {
                println!("[{t}]");
            }
            println!("{}\n", out.text);
        }
    }
}

#[test]
fn a_catalog_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Catalog>();
    shared::<Overrides>();
}
