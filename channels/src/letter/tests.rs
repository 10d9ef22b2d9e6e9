//! Letter rendering, checked the way a person would: the text poppler extracts, the pixels
//! it renders, and what a QR reader makes of the code. The external tools come from Debian
//! (`apt-get install -y poppler-utils zbar-tools`); a test whose tool is missing says so and
//! skips that check.

use super::geometry::{self as g, WINDOW};
use super::layout::{self, Item};
use super::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

fn renderer() -> LetterRenderer {
    LetterRenderer::new().expect("the bundled fonts parse")
}

fn has_tool(name: &str) -> bool {
    let ok = Command::new(name).arg("-v").output().is_ok();
    if !ok {
        eprintln!(
            "SKIPPED: `{name}` is not installed (apt-get install -y poppler-utils zbar-tools)"
        );
    }
    ok
}

/// A fresh path in the temp dir, unique per process and call.
fn tmp(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!(
        "kontaktvei-letter-{}-{n}-{name}",
        std::process::id()
    ))
}

fn write_pdf(bytes: &[u8]) -> PathBuf {
    let path = tmp("letter.pdf");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn pdftotext(pdf: &Path, args: &[&str]) -> String {
    let out = Command::new("pdftotext")
        .args(args)
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext runs");
    assert!(
        out.status.success(),
        "pdftotext: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Asserts that `needles` occur in `text` in this order (each after the previous one).
fn assert_in_order(text: &str, needles: &[&str]) {
    let mut from = 0;
    for needle in needles {
        match text[from..].find(needle) {
            Some(at) => from += at + needle.len(),
            None => panic!("{needle:?} missing or out of order in:\n{text}"),
        }
    }
}

struct Gray {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

/// Page `page` rendered by pdftoppm at `dpi` as an 8-bit grey image (binary PGM).
fn render_page(pdf: &Path, page: u32, dpi: u32) -> Gray {
    let prefix = tmp("page");
    let status = Command::new("pdftoppm")
        .args([
            "-gray",
            "-r",
            &dpi.to_string(),
            "-f",
            &page.to_string(),
            "-l",
        ])
        .arg(page.to_string())
        .args(["-singlefile"])
        .arg(pdf)
        .arg(&prefix)
        .status()
        .expect("pdftoppm runs");
    assert!(status.success());
    let path = prefix.with_extension("pgm");
    let data = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    // "P5 <width> <height> <maxval>" and one whitespace byte, then the pixels.
    let mut fields = Vec::new();
    let mut pos = 0;
    while fields.len() < 4 {
        while data[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let start = pos;
        while !data[pos].is_ascii_whitespace() {
            pos += 1;
        }
        fields.push(String::from_utf8_lossy(&data[start..pos]).to_string());
    }
    assert_eq!(fields[0], "P5");
    assert_eq!(fields[3], "255");
    let width: usize = fields[1].parse().unwrap();
    let height: usize = fields[2].parse().unwrap();
    let pixels = data[pos + 1..].to_vec();
    assert_eq!(pixels.len(), width * height);
    Gray {
        width,
        height,
        pixels,
    }
}

fn page_count(pdf: &Path) -> u32 {
    let out = Command::new("pdfinfo")
        .arg(pdf)
        .output()
        .expect("pdfinfo runs");
    let info = String::from_utf8_lossy(&out.stdout).to_string();
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no page count in {info}"))
}

fn long_letter() -> LetterContent {
    let mut letter = LetterContent::sample();
    letter.reference = "BR-LONG-1".to_string();
    let paragraph = "Dette er et langt avsnitt som gjentas for å fylle siden, slik at brevet \
        må fortsette på neste side. Det skal brytes pent mellom ordene og aldri gå ut i margen.";
    letter.body = (1..=22)
        .map(|i| format!("{i}. {paragraph}"))
        .collect::<Vec<_>>()
        .join("\n\n");
    letter
}

#[test]
fn sample_text_comes_out_in_reading_order() {
    let bytes = renderer().render(&LetterContent::sample()).unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    // Subset fonts: a few tens of KB, not the 1.8 MB of the three whole fonts.
    assert!(
        bytes.len() < 120_000,
        "{} bytes: fonts not subset?",
        bytes.len()
    );
    if !has_tool("pdftotext") {
        return;
    }
    let pdf = write_pdf(&bytes);
    let order = [
        "Avsender: Postboks 123 Sentrum, 0102 Oslo",
        "Máret Ŋuvttis Čáhppes",
        "c/o Kirkens Bymisjon, Fyrlykta",
        "Storgata 12",
        "0155 OSLO",
        "26. november 2026",
        "Referanse: BR-2026-000123",
        "Du har fått time",
        "Vær så",
        "møt opp ti minutter",
        "- du trenger ikke BankID",
        "Send koden under på SMS",
        "Sámegillii: Dus lea áigi",
        "riŋge midjiide",
        "áčđŋšŧž ÁČĐŊŠŦŽ",
        "Koden din",
        "K7M X3Q",
        "Skann for å bekrefte",
    ];
    let layout = pdftotext(&pdf, &["-layout"]);
    // `–` comes out as itself; normalise the dash before "du trenger" for the search.
    let layout_text = layout.replace('–', "-");
    assert_in_order(&layout_text, &order);
    // Plain (reading-order) extraction too: the address, then date and reference, then the rest.
    let plain = pdftotext(&pdf, &[]).replace('–', "-");
    assert_in_order(&plain, &order);
    assert!(
        !layout.contains("NO\n"),
        "Norway is not printed as a country"
    );
    let _ = std::fs::remove_file(pdf);
}

#[test]
fn metadata_has_title_and_creation_date() {
    let bytes = renderer().render(&LetterContent::sample()).unwrap();
    if !has_tool("pdfinfo") {
        return;
    }
    let pdf = write_pdf(&bytes);
    let out = Command::new("pdfinfo")
        .args(["-isodates"])
        .arg(&pdf)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(field("Title:"), "Brev BR-2026-000123", "{info}");
    assert!(
        field("CreationDate:").starts_with("2026-11-26T00:00:00"),
        "{info}"
    );
    assert!(
        !info.contains("Máret"),
        "no patient name in the metadata: {info}"
    );
    let fonts = Command::new("pdffonts").arg(&pdf).output().unwrap();
    let fonts = String::from_utf8_lossy(&fonts.stdout).to_string();
    assert!(fonts.contains("DejaVu"), "{fonts}");
    for line in fonts.lines().skip(2) {
        // columns: name type encoding emb sub uni ...
        assert!(
            line.contains(" yes yes yes "),
            "embedded, subset, with ToUnicode: {line}"
        );
    }
    let _ = std::fs::remove_file(pdf);
}

/// The address block's pixels (page 1 rendered at 72 dpi) all lie inside the window rectangle.
fn assert_address_inside_window(letter: &LetterContent) {
    let bytes = renderer().render(letter).unwrap();
    if !has_tool("pdftoppm") {
        return;
    }
    let pdf = write_pdf(&bytes);
    let img = render_page(&pdf, 1, 72);
    let px = |mm: f32| mm / 25.4 * 72.0;
    assert!(img.width.abs_diff(595) <= 1 && img.height.abs_diff(842) <= 1);
    // The band where an address could stray: left of the right-hand column, above the title.
    let (band_x, band_y) = (0..px(120.0) as usize, px(30.0) as usize..px(90.0) as usize);
    let inside = |x: usize, y: usize| {
        let (x, y) = (x as f32 + 0.5, y as f32 + 0.5);
        x >= px(WINDOW.left)
            && x <= px(WINDOW.right)
            && y >= px(WINDOW.top)
            && y <= px(WINDOW.bottom)
    };
    let mut dark_inside = 0;
    for y in band_y {
        for x in band_x.clone() {
            if img.pixels[y * img.width + x] < 160 {
                assert!(
                    inside(x, y),
                    "dark pixel at ({:.1} mm, {:.1} mm) outside the window",
                    x as f32 * 25.4 / 72.0,
                    y as f32 * 25.4 / 72.0
                );
                dark_inside += 1;
            }
        }
    }
    assert!(
        dark_inside > 300,
        "the address was drawn ({dark_inside} dark pixels)"
    );
    let _ = std::fs::remove_file(pdf);
}

#[test]
fn address_block_lies_inside_the_window() {
    assert_address_inside_window(&LetterContent::sample());
}

#[test]
fn a_five_line_foreign_address_still_fits_the_window() {
    let mut letter = LetterContent::sample();
    letter.recipient_lines = vec![
        "Ánde Ŧeahkká Šuoŋjárvi-Žáhkkorievvár".to_string(),
        "c/o Frelsesarmeens Sosialtjeneste Lavterskeltilbud".to_string(),
        "Kungsgatan 101 B, leilighet 1204".to_string(),
    ];
    letter.postal_code = "111 22".to_string();
    letter.place = "STOCKHOLM".to_string();
    letter.country = "Sverige".to_string();
    assert_address_inside_window(&letter);
    // And by the numbers, without poppler: every address item's ink box is inside the window.
    let r = renderer();
    let pages = layout::layout(&r.fonts, &r.prepare(&letter).unwrap()).unwrap();
    let texts: Vec<_> = pages[0]
        .iter()
        .filter_map(|i| match i {
            Item::Text {
                size,
                x,
                baseline,
                text,
                ..
            } if *baseline < 70.0 => Some((*size, *x, *baseline, text.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(texts.len(), 6, "sender + 5 address lines: {texts:?}");
    assert_eq!(texts[5].3, "SVERIGE");
    for (size, x, baseline, text) in texts {
        let f = &r.fonts.regular;
        let right = x + f.width(&text, size);
        let top = baseline - f.ascent * g::mm(size);
        let bottom = baseline + f.descent * g::mm(size);
        assert!(
            x >= WINDOW.left && right <= WINDOW.right,
            "{text}: x {x}..{right}"
        );
        assert!(
            top >= WINDOW.top && bottom <= WINDOW.bottom,
            "{text}: y {top}..{bottom}"
        );
        assert!(
            size >= g::ADDRESS_MIN_PT || baseline < 50.0,
            "{text}: {size} pt"
        );
    }
}

#[test]
fn an_address_that_cannot_fit_is_refused() {
    let r = renderer();
    let mut letter = LetterContent::sample();
    letter.recipient_lines = (1..=6).map(|i| format!("Linje {i}")).collect();
    assert_eq!(
        r.render(&letter),
        Err(LetterError::AddressTooManyLines { lines: 7 })
    );
    let mut letter = LetterContent::sample();
    letter.recipient_lines[1] = "c/o ".to_string() + &"Lavterskeltilbudet ".repeat(4);
    assert_eq!(
        r.render(&letter),
        Err(LetterError::AddressTooWide { line: 2 })
    );
}

#[test]
fn the_qr_code_decodes_to_the_link() {
    let letter = LetterContent::sample();
    let bytes = renderer().render(&letter).unwrap();
    if !has_tool("pdftoppm") {
        return;
    }
    if Command::new("zbarimg").arg("--version").output().is_err() {
        eprintln!("SKIPPED: zbarimg is not installed (apt-get install -y zbar-tools)");
        return;
    }
    let pdf = write_pdf(&bytes);
    let prefix = tmp("qr");
    let status = Command::new("pdftoppm")
        .args([
            "-gray",
            "-r",
            "150",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            "-png",
        ])
        .arg(&pdf)
        .arg(&prefix)
        .status()
        .unwrap();
    assert!(status.success());
    let png = prefix.with_extension("png");
    let out = Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&png)
        .output()
        .unwrap();
    let decoded = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        decoded,
        letter.link,
        "zbarimg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_file(png);
    let _ = std::fs::remove_file(pdf);
}

#[test]
fn a_missing_glyph_is_an_error_naming_it() {
    let r = renderer();
    let mut letter = LetterContent::sample();
    // DejaVu has the emoticons U+1F600..U+1F640, but not the crab.
    letter.body.push_str("\n\nHilsen 🦀");
    let Err(err) = r.render(&letter) else {
        panic!("a letter with 🦀 rendered")
    };
    assert_eq!(
        err,
        LetterError::MissingGlyph {
            ch: '🦀',
            field: "body"
        }
    );
    assert!(err.to_string().contains("U+1F980"), "{err}");
    assert!(err.to_string().contains('🦀'), "{err}");

    let mut letter = LetterContent::sample();
    letter.recipient_lines[0] = "王小明".to_string();
    assert_eq!(
        r.render(&letter),
        Err(LetterError::MissingGlyph {
            ch: '王',
            field: "address"
        })
    );

    let mut letter = LetterContent::sample();
    letter.title = "Time \u{0007}".to_string();
    assert!(matches!(
        r.render(&letter),
        Err(LetterError::MissingGlyph {
            ch: '\u{0007}',
            field: "title"
        })
    ));
    // Norwegian and Northern Sami letters are all there, in every face.
    let all = "æøåÆØÅáčđŋšŧžÁČĐŊŠŦŽ";
    for face in [&r.fonts.regular, &r.fonts.bold, &r.fonts.mono] {
        face.check(all, "test").unwrap();
    }
}

#[test]
fn input_is_nfc_normalised() {
    let r = renderer();
    let mut letter = LetterContent::sample();
    // "á" and "č" as base letter + combining mark.
    letter.recipient_lines[0] = "Ma\u{0301}ret C\u{030C}a\u{0301}hppes".to_string();
    letter.body = "Ma\u{0301}ret".to_string();
    let prepared = r.prepare(&letter).unwrap();
    assert_eq!(prepared.address[0], "Máret Čáhppes");
    assert_eq!(prepared.body, "Máret");
}

#[test]
fn wrapping_follows_glyph_advances_and_keeps_every_word() {
    let r = renderer();
    let text = "Dette er en setning med ganske mange ord som må brytes over flere linjer \
        https://svar.kontaktvei.example/a/en-svært-lang-lenke-uten-mellomrom-som-må-deles-opp";
    for width in [30.0, 60.0, 165.0] {
        let lines = layout::wrap(&r.fonts.regular, 11.0, text, width);
        for line in &lines {
            assert!(
                r.fonts.regular.width(line, 11.0) <= width + 1e-3,
                "{line:?} > {width}"
            );
        }
        assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
    }
    // Wide glyphs take more room than narrow ones.
    let narrow = layout::wrap(&r.fonts.regular, 11.0, &"il ".repeat(40), 60.0);
    let wide = layout::wrap(&r.fonts.regular, 11.0, &"MW ".repeat(40), 60.0);
    assert!(
        wide.len() >= 2 * narrow.len(),
        "{} vs {}",
        wide.len(),
        narrow.len()
    );
}

#[test]
fn a_long_body_continues_on_a_second_page_with_the_reference() {
    let letter = long_letter();
    let (bytes, pages) = renderer()
        .render_many(std::slice::from_ref(&letter))
        .unwrap();
    assert_eq!(pages, vec![2]);
    if !has_tool("pdftotext") {
        return;
    }
    let pdf = write_pdf(&bytes);
    let first = pdftotext(&pdf, &["-layout", "-f", "1", "-l", "1"]);
    let second = pdftotext(&pdf, &["-layout", "-f", "2", "-l", "2"]);
    assert!(first.contains("Side 1 av 2"), "{first}");
    assert_in_order(&second, &["Referanse: BR-LONG-1", "K7M X3Q", "Side 2 av 2"]);
    assert!(
        !second.contains("Storgata 12"),
        "the address is on page 1 only"
    );
    // No paragraph is lost across the break.
    let all = pdftotext(&pdf, &[]);
    for i in 1..=22 {
        assert!(
            all.contains(&format!("{i}. Dette er et langt")),
            "paragraph {i}"
        );
    }
    let _ = std::fs::remove_file(pdf);
}

#[test]
fn a_batch_starts_every_letter_on_an_odd_page() {
    let r = renderer();
    let long = long_letter();
    let mut short = LetterContent::sample();
    short.reference = "BR-SHORT-2".to_string();
    let mut third = LetterContent::sample();
    third.reference = "BR-THIRD-3".to_string();

    let (bytes, pages) = r.render_many(&[long.clone(), short.clone()]).unwrap();
    assert_eq!(pages, vec![2, 1]);
    let (bytes2, pages2) = r.render_many(&[short.clone(), third, long]).unwrap();
    assert_eq!(pages2, vec![1, 1, 2]);
    assert_eq!(r.render_many(&[]), Err(LetterError::EmptyBatch));
    if !has_tool("pdftotext") {
        return;
    }
    let pdf = write_pdf(&bytes);
    assert_eq!(page_count(&pdf), 3);
    let third_page = pdftotext(&pdf, &["-f", "3", "-l", "3"]);
    assert!(third_page.contains("Referanse: BR-SHORT-2"), "{third_page}");
    let _ = std::fs::remove_file(pdf);

    // 1 + blank + 1 + blank + 2: letters start on pages 1, 3 and 5.
    let pdf = write_pdf(&bytes2);
    assert_eq!(page_count(&pdf), 6);
    assert!(pdftotext(&pdf, &["-f", "2", "-l", "2"]).trim().is_empty());
    assert!(pdftotext(&pdf, &["-f", "3", "-l", "3"]).contains("BR-THIRD-3"));
    assert!(pdftotext(&pdf, &["-f", "4", "-l", "4"]).trim().is_empty());
    assert!(pdftotext(&pdf, &["-f", "5", "-l", "5"]).contains("Referanse: BR-LONG-1"));
    let _ = std::fs::remove_file(pdf);
}

/// What a print batch records when it is made must match the PDF made when it is fetched, and
/// a letter the PDF would refuse is refused then already.
#[test]
fn page_counts_match_the_pdf_and_refuse_what_it_refuses() {
    let r = renderer();
    let letters = [long_letter(), LetterContent::sample(), long_letter()];
    let (_, pages) = r.render_many(&letters).unwrap();
    assert_eq!(r.page_counts(&letters).unwrap(), pages);
    assert_eq!(pages, vec![2, 1, 2]);

    let mut too_long = LetterContent::sample();
    too_long.link = format!("https://kontaktvei.example/k/{}", "x".repeat(400));
    let refused = r.page_counts([&LetterContent::sample(), &too_long]);
    assert!(
        matches!(&refused, Err(LetterError::Qr(m)) if m.contains("at most 57")),
        "{refused:?}"
    );
    assert!(matches!(r.render(&too_long), Err(LetterError::Qr(_))));
    // Just inside the limit: version 10 at level M holds 213 bytes.
    too_long.link = format!("https://kontaktvei.example/k/{}", "x".repeat(150));
    assert_eq!(r.page_counts([&too_long]).unwrap(), vec![1]);
    assert!(r.render(&too_long).is_ok());

    let mut no_glyph = LetterContent::sample();
    no_glyph.body = "Timen din er flyttet \u{1F980}".to_string();
    assert!(r.page_counts([&no_glyph]).is_err());
    assert!(r.render(&no_glyph).is_err());
}

#[test]
fn norwegian_dates_and_required_fields() {
    let d = NaiveDate::from_ymd_opt(2026, 3, 3).unwrap();
    assert_eq!(norwegian_date(d), "3. mars 2026");
    let r = renderer();
    let mut letter = LetterContent::sample();
    letter.recipient_lines = vec!["  ".to_string()];
    assert_eq!(r.render(&letter), Err(LetterError::Empty("recipient")));
    let mut letter = LetterContent::sample();
    letter.sender_line.clear();
    assert_eq!(r.render(&letter), Err(LetterError::Empty("sender line")));
    // No link: no QR code, the code is still printed.
    let mut letter = LetterContent::sample();
    letter.link.clear();
    let pages = layout::layout(&r.fonts, &r.prepare(&letter).unwrap()).unwrap();
    assert!(!pages[0].iter().any(|i| matches!(i, Item::Qr { .. })));
    assert!(
        pages[0]
            .iter()
            .any(|i| matches!(i, Item::Text { text, .. } if text == "K7M X3Q"))
    );
}

/// Writes the sample letter to /tmp/letter.pdf, to look at.
#[test]
#[ignore = "writes /tmp/letter.pdf for a person to look at"]
fn write_sample_letter() {
    let bytes = renderer().render(&LetterContent::sample()).unwrap();
    std::fs::write("/tmp/letter.pdf", bytes).unwrap();
    let (bytes, _) = renderer()
        .render_many(&[long_letter(), LetterContent::sample()])
        .unwrap();
    std::fs::write("/tmp/letters.pdf", bytes).unwrap();
    let mut foreign = LetterContent::sample();
    foreign.recipient_lines = vec![
        "Ánde Ŧeahkká Šuoŋjárvi-Žáhkkorievvár".to_string(),
        "c/o Frelsesarmeens Sosialtjeneste Lavterskeltilbud".to_string(),
        "Kungsgatan 101 B, leilighet 1204".to_string(),
    ];
    foreign.postal_code = "111 22".to_string();
    foreign.place = "STOCKHOLM".to_string();
    foreign.country = "Sverige".to_string();
    std::fs::write(
        "/tmp/letter-foreign.pdf",
        renderer().render(&foreign).unwrap(),
    )
    .unwrap();
}
