//! Printed letters: renders a letter (or a day's batch of them) to an A4 PDF that fits a
//! Norwegian window envelope (C5 / E65, window on the left).
//!
//! Pure: no I/O, no global state. Build a [`LetterRenderer`] once (it parses the bundled
//! DejaVu fonts) and reuse it; [`render`] and [`render_many`] are conveniences that build one
//! per call.
//!
//! What goes where (see [`geometry`] for the numbers and their sources):
//! * inside the envelope window: a small neutral sender line, then the recipient block
//!   (`recipient_lines`, then "postal code place", then the country unless it is Norway);
//! * right-aligned below it: the date ("26. november 2026") and the reference;
//! * the title (bold), the body (wrapped and paginated; blank lines separate paragraphs,
//!   lines starting with "- " are list items, other line breaks are kept);
//! * a box with the acknowledgement code printed large in a monospaced face, and the
//!   one-click link as a QR code with a short caption.
//!
//! Every character is checked against the font before anything is drawn: one the font lacks
//! is a [`LetterError::MissingGlyph`] naming it, never a silent box. Error messages never
//! quote the patient's text (only the offending character and the field's name).

mod font;
pub mod geometry;
mod layout;
mod pdf;
mod qr;
#[cfg(test)]
mod tests;

use chrono::{Datelike, NaiveDate};
use font::{Face, Fonts};
use layout::Prepared;
use unicode_normalization::UnicodeNormalization;

/// What a letter step keeps from planning time: the words, and the code and link to print. The
/// address and date are added when the letter is printed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LetterMessage {
    pub title: String,
    pub body: String,
    pub code: String,
    pub link: String,
}

impl LetterMessage {
    /// The printable letter for this message to `address`, dated `date`.
    pub fn to_content(
        &self,
        address: &kontaktvei_store::contact_points::PostalAddress,
        sender_line: &str,
        date: NaiveDate,
        reference: &str,
    ) -> LetterContent {
        LetterContent {
            recipient_lines: address.lines.clone(),
            postal_code: address.postal_code.clone(),
            place: address.place.clone(),
            country: address.country.clone(),
            sender_line: sender_line.to_owned(),
            date,
            reference: reference.to_owned(),
            title: self.title.clone(),
            body: self.body.clone(),
            code: grouped(&self.code),
            link: self.link.clone(),
        }
    }
}

/// "FAPZHE" → "FAP ZHE": three and three are easier to read out and to type.
fn grouped(code: &str) -> String {
    let chars: Vec<char> = code.chars().filter(|c| !c.is_whitespace()).collect();
    if chars.len() == 6 {
        format!(
            "{} {}",
            chars[..3].iter().collect::<String>(),
            chars[3..].iter().collect::<String>()
        )
    } else {
        code.to_owned()
    }
}

#[cfg(test)]
mod grouping_tests {
    #[test]
    fn codes_are_printed_three_and_three() {
        assert_eq!(super::grouped("FAPZHE"), "FAP ZHE");
        assert_eq!(super::grouped("K7M X3Q"), "K7M X3Q");
        assert_eq!(super::grouped("ABCD"), "ABCD");
    }
}

/// The reference printed on a letter (and typed or scanned when it comes back): `BR-` and the
/// last ten hex digits of the step's id, which are random.
pub fn reference_for(step_id: kontaktvei_store::Id) -> String {
    let hex = step_id.0.simple().to_string().to_uppercase();
    format!("BR-{}", &hex[hex.len() - 10..])
}

/// One letter's content, as the templates produce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LetterContent {
    /// Address block lines as they go in the window: name, c/o, street.
    pub recipient_lines: Vec<String>,
    pub postal_code: String,
    pub place: String,
    /// ISO country code or name; "NO" (or "NORGE"/"NORWAY", or empty) is not printed, any other
    /// value is printed in capitals as the last address line.
    pub country: String,
    /// Small neutral return line above the window, e.g. "Avsender: Postboks 123, 0101 Oslo" —
    /// never a clinic's speciality.
    pub sender_line: String,
    /// Printed as "26. november 2026"; also the PDF's creation date (00:00 UTC).
    pub date: NaiveDate,
    /// The letter's reference (id): printed on the right, and in the PDF title.
    pub reference: String,
    /// Heading of the body, e.g. "Du har fått time".
    pub title: String,
    /// Paragraphs separated by blank lines; lines starting with "- " are list items.
    pub body: String,
    /// The acknowledgement code, printed large, e.g. "K7M X3Q".
    pub code: String,
    /// The one-click link, printed as a QR code next to the code.
    pub link: String,
}

impl LetterContent {
    /// A sample letter (bokmål with a Northern Sami paragraph), for looking at the layout
    /// without data.
    pub fn sample() -> Self {
        LetterContent {
            recipient_lines: vec![
                "Máret Ŋuvttis Čáhppes".to_string(),
                "c/o Kirkens Bymisjon, Fyrlykta".to_string(),
                "Storgata 12".to_string(),
            ],
            postal_code: "0155".to_string(),
            place: "OSLO".to_string(),
            country: "NO".to_string(),
            sender_line: "Avsender: Postboks 123 Sentrum, 0102 Oslo".to_string(),
            date: NaiveDate::from_ymd_opt(2026, 11, 26).expect("a valid date"),
            reference: "BR-2026-000123".to_string(),
            title: "Du har fått time".to_string(),
            body: "Hei!\n\n\
Du har fått time på Storgata legesenter tirsdag 1. desember 2026 kl. 10.30. \
Vær så snill og møt opp ti minutter før timen.\n\n\
Hvor: Storgata 40, 2. etasje. Ta trikk 17 eller 18 til Hausmanns gate.\n\n\
Slik bekrefter du at du har fått brevet – du trenger ikke BankID:\n\
- Send koden under på SMS til 2222.\n\
- Si koden i resepsjonen eller på telefon 22 00 00 00.\n\
- Skann QR-koden med kameraet på mobilen.\n\n\
Passer ikke timen? Ring oss på 22 00 00 00, hverdager kl. 08.00–15.30, så finner vi \
en ny tid sammen med deg.\n\n\
Sámegillii: Dus lea áigi Storgata doaktárguovddážis. Jus áigi ii heive, riŋge midjiide. \
Giitu! (áčđŋšŧž ÁČĐŊŠŦŽ)"
                .to_string(),
            code: "K7M X3Q".to_string(),
            link: "https://svar.kontaktvei.example/a/K7MX3Q-9f3k2Lw8".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LetterError {
    #[error("the letter font has no glyph for {ch:?} (U+{:04X}) in the {field}", u32::from(*ch))]
    MissingGlyph { ch: char, field: &'static str },
    #[error("the letter has no {0}")]
    Empty(&'static str),
    #[error(
        "the address has {lines} lines; they do not fit in the envelope window at 8 pt or more"
    )]
    AddressTooManyLines { lines: usize },
    #[error("address line {line} is too wide for the envelope window at 8 pt or more")]
    AddressTooWide { line: usize },
    #[error("the sender line is too wide for the envelope window")]
    SenderTooWide,
    #[error("the acknowledgement code is too long to print large")]
    CodeTooLong,
    #[error("the link cannot be printed as a QR code: {0}")]
    Qr(String),
    #[error("the letter would run to more than {max_pages} pages")]
    TooLong { max_pages: usize },
    #[error("a batch needs at least one letter")]
    EmptyBatch,
    #[error("the bundled font {0} could not be parsed")]
    Font(&'static str),
}

/// Renders letters; holds the parsed fonts, so build it once and reuse it.
#[derive(Debug)]
pub struct LetterRenderer {
    fonts: Fonts,
}

/// A letter laid out, ready to be added to a document.
struct Laid {
    pages: Vec<Vec<layout::Item>>,
    qr: Option<qr::QrImage>,
}

impl LetterRenderer {
    pub fn new() -> Result<Self, LetterError> {
        Ok(LetterRenderer {
            fonts: Fonts::load()?,
        })
    }

    /// One letter → PDF bytes (title "Brev {reference}").
    pub fn render(&self, letter: &LetterContent) -> Result<Vec<u8>, LetterError> {
        let laid = self.lay_out(letter)?;
        let title = format!("Brev {}", letter.reference.nfc().collect::<String>().trim());
        let mut doc = pdf::DocBuilder::new(&self.fonts, &title);
        doc.add_letter(&laid.pages, laid.qr.as_ref());
        Ok(doc.finish(letter.date))
    }

    /// A batch → one PDF in which every letter starts on an odd page (a blank page is inserted
    /// where needed, so duplex printing never puts two letters on one sheet). Returns the PDF
    /// and each letter's own page count (blank pages not included).
    pub fn render_many(
        &self,
        letters: &[LetterContent],
    ) -> Result<(Vec<u8>, Vec<u32>), LetterError> {
        let newest = letters
            .iter()
            .map(|l| l.date)
            .max()
            .ok_or(LetterError::EmptyBatch)?;
        let title = if letters.len() == 1 {
            format!(
                "Brev {}",
                letters[0].reference.nfc().collect::<String>().trim()
            )
        } else {
            format!("Brev, {} stk.", letters.len())
        };
        let mut doc = pdf::DocBuilder::new(&self.fonts, &title);
        let mut counts = Vec::with_capacity(letters.len());
        for letter in letters {
            let laid = self.lay_out(letter)?;
            if doc.page_count() % 2 == 1 {
                doc.blank_page();
            }
            doc.add_letter(&laid.pages, laid.qr.as_ref());
            counts.push(laid.pages.len() as u32);
        }
        Ok((doc.finish(newest), counts))
    }

    /// Each letter's page count, as [`LetterRenderer::render_many`] lays it out, and the same
    /// checks (fonts, fields, the QR code's size), without making the PDF. A print batch
    /// records this when it is made; its PDF is rendered again whenever it is fetched.
    pub fn page_counts<'a>(
        &self,
        letters: impl IntoIterator<Item = &'a LetterContent>,
    ) -> Result<Vec<u32>, LetterError> {
        letters
            .into_iter()
            .map(|letter| {
                let prepared = self.prepare(letter)?;
                let pages = layout::layout(&self.fonts, &prepared)?;
                qr::check(&one_line(&letter.link))?;
                Ok(pages.len() as u32)
            })
            .collect()
    }

    fn lay_out(&self, letter: &LetterContent) -> Result<Laid, LetterError> {
        let prepared = self.prepare(letter)?;
        let pages = layout::layout(&self.fonts, &prepared)?;
        let link = one_line(&letter.link);
        let qr = if link.is_empty() {
            None
        } else {
            Some(qr::encode(&link)?)
        };
        Ok(Laid { pages, qr })
    }

    /// NFC-normalises every field, tidies whitespace, and checks that the fonts can draw
    /// every character (including the fixed wording around them).
    fn prepare(&self, letter: &LetterContent) -> Result<Prepared, LetterError> {
        let mut address: Vec<String> = letter
            .recipient_lines
            .iter()
            .map(|l| one_line(l))
            .filter(|l| !l.is_empty())
            .collect();
        if address.is_empty() {
            return Err(LetterError::Empty("recipient"));
        }
        let place = one_line(&format!("{} {}", letter.postal_code, letter.place));
        if one_line(&letter.place).is_empty() {
            return Err(LetterError::Empty("place"));
        }
        address.push(place);
        let country = one_line(&letter.country).to_uppercase();
        if !matches!(
            country.as_str(),
            "" | "NO" | "NOR" | "NORGE" | "NOREG" | "NORWAY"
        ) {
            address.push(country);
        }
        let sender = one_line(&letter.sender_line);
        if sender.is_empty() {
            return Err(LetterError::Empty("sender line"));
        }
        let reference = one_line(&letter.reference);
        if reference.is_empty() {
            return Err(LetterError::Empty("reference"));
        }
        let title = one_line(&letter.title);
        let body: String = letter
            .body
            .nfc()
            .filter(|&c| c != '\r')
            .map(|c| if c == '\t' { ' ' } else { c })
            .collect();
        let code = one_line(&letter.code);
        let link = one_line(&letter.link);

        let regular = &self.fonts.regular;
        for line in &address {
            regular.check(line, "address")?;
        }
        regular.check(&sender, "sender line")?;
        regular.check(&reference, "reference")?;
        regular.check(&body, "body")?;
        self.fonts.get(Face::Bold).check(&title, "title")?;
        self.fonts.get(Face::Mono).check(&code, "code")?;
        for fixed in [
            layout::LABEL_REFERENCE,
            layout::LABEL_CODE,
            layout::QR_CAPTION,
            "• Side av 0123456789",
        ] {
            regular.check(fixed, "fixed wording")?;
        }
        let date = norwegian_date(letter.date);
        regular.check(&date, "date")?;

        Ok(Prepared {
            address,
            sender,
            date,
            reference,
            title,
            body,
            code,
            has_qr: !link.is_empty(),
        })
    }
}

/// One letter → PDF bytes. Parses the fonts on every call: for more than a few letters, keep
/// a [`LetterRenderer`].
pub fn render(letter: &LetterContent) -> Result<Vec<u8>, LetterError> {
    LetterRenderer::new()?.render(letter)
}

/// A batch → one PDF, each letter starting on an odd page; returns each letter's page count.
pub fn render_many(letters: &[LetterContent]) -> Result<(Vec<u8>, Vec<u32>), LetterError> {
    LetterRenderer::new()?.render_many(letters)
}

/// NFC, and all whitespace runs (tabs, line breaks) as single spaces, trimmed.
fn one_line(s: &str) -> String {
    s.nfc()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// "26. november 2026".
pub fn norwegian_date(date: NaiveDate) -> String {
    const MONTHS: [&str; 12] = [
        "januar",
        "februar",
        "mars",
        "april",
        "mai",
        "juni",
        "juli",
        "august",
        "september",
        "oktober",
        "november",
        "desember",
    ];
    format!(
        "{}. {} {}",
        date.day(),
        MONTHS[date.month0() as usize],
        date.year()
    )
}
