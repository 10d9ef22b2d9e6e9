//! Where everything goes: turns a normalised letter into pages of positioned items
//! (millimetres from the top-left), independent of the PDF library.

use super::LetterError;
use super::font::{Face, Fonts, LoadedFont};
use super::geometry::{self as g, Area, mm};

/// Fixed wording (bokmål) around the template's text.
pub const LABEL_REFERENCE: &str = "Referanse:";
pub const LABEL_CODE: &str = "Koden din";
pub const QR_CAPTION: &str = "Skann for å bekrefte";
const BULLET: &str = "•";

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Text {
        face: Face,
        size: f32,
        x: f32,
        baseline: f32,
        text: String,
    },
    /// A thin grey line.
    Rule { x1: f32, y1: f32, x2: f32, y2: f32 },
    /// A thin grey frame.
    Frame(Area),
    /// The letter's QR code, `size` mm square with its top-left corner at (`left`, `top`).
    Qr { left: f32, top: f32, size: f32 },
}

/// The letter's fields after NFC normalisation and whitespace clean-up.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub address: Vec<String>,
    pub sender: String,
    pub date: String,
    pub reference: String,
    pub title: String,
    pub body: String,
    pub code: String,
    pub has_qr: bool,
}

/// Lays out one letter; the result has at least one and at most [`g::MAX_PAGES`] pages.
pub fn layout(fonts: &Fonts, p: &Prepared) -> Result<Vec<Vec<Item>>, LetterError> {
    let mut flow = Flow {
        fonts,
        pages: vec![Vec::new()],
        next_baseline: 0.0,
        at_page_top: false,
    };
    let page = &mut flow.pages[0];
    window(fonts, p, page)?;
    fold_marks(page);

    // Date and reference, right-aligned below the window's level.
    let info_pitch = mm(g::INFO_PT) * g::INFO_LEADING;
    let reference_line = format!("{LABEL_REFERENCE} {}", p.reference);
    for (i, text) in [p.date.as_str(), reference_line.as_str()]
        .into_iter()
        .enumerate()
    {
        let width = fonts.regular.width(text, g::INFO_PT);
        page.push(Item::Text {
            face: Face::Regular,
            size: g::INFO_PT,
            x: g::MARGIN_RIGHT - width,
            baseline: g::INFO_FIRST_BASELINE + i as f32 * info_pitch,
            text: text.to_string(),
        });
    }

    // Title.
    let width = g::MARGIN_RIGHT - g::MARGIN_LEFT;
    flow.next_baseline = g::TITLE_FIRST_BASELINE;
    let title_pitch = mm(g::TITLE_PT) * g::TITLE_LEADING;
    for line in wrap(&fonts.bold, g::TITLE_PT, &p.title, width) {
        flow.line(Face::Bold, g::TITLE_PT, g::MARGIN_LEFT, line, title_pitch)?;
    }
    flow.next_baseline += g::TITLE_TO_BODY - title_pitch;

    // Body: blank lines separate paragraphs, "- " starts a list item, other line breaks stay.
    let body_pitch = mm(g::BODY_PT) * g::BODY_LEADING;
    let mut gap = false;
    for raw in p.body.split('\n') {
        let line = raw.trim();
        if line.is_empty() {
            gap = true;
            continue;
        }
        if std::mem::take(&mut gap) && !flow.at_page_top {
            flow.next_baseline += body_pitch * g::PARAGRAPH_GAP;
        }
        if let Some(item) = line.strip_prefix("- ") {
            let indent = g::MARGIN_LEFT + g::LIST_INDENT;
            let lines = wrap(&fonts.regular, g::BODY_PT, item, g::MARGIN_RIGHT - indent);
            for (i, text) in lines.into_iter().enumerate() {
                flow.break_if_full()?;
                if i == 0 {
                    let baseline = flow.next_baseline;
                    flow.page().push(Item::Text {
                        face: Face::Regular,
                        size: g::BODY_PT,
                        x: g::MARGIN_LEFT + 1.0,
                        baseline,
                        text: BULLET.to_string(),
                    });
                }
                flow.line(Face::Regular, g::BODY_PT, indent, text, body_pitch)?;
            }
        } else {
            for text in wrap(&fonts.regular, g::BODY_PT, line, width) {
                flow.line(Face::Regular, g::BODY_PT, g::MARGIN_LEFT, text, body_pitch)?;
            }
        }
    }

    if !p.code.is_empty() || p.has_qr {
        flow.code_box(p, body_pitch)?;
    }

    page_furniture(fonts, &mut flow.pages, &p.reference);
    Ok(flow.pages)
}

/// The sender line and the recipient block, inside [`g::WINDOW`].
fn window(fonts: &Fonts, p: &Prepared, page: &mut Vec<Item>) -> Result<(), LetterError> {
    let font = &fonts.regular;
    let left = g::MARGIN_LEFT;
    let right = g::WINDOW.right - g::WINDOW_INSET;
    let top = g::WINDOW.top + g::WINDOW_INSET;
    let bottom = g::WINDOW.bottom - g::WINDOW_INSET;
    let avail_w = right - left;

    let sender_w = font.width(&p.sender, g::SENDER_PT);
    let sender_pt = fit(g::SENDER_PT, sender_w, avail_w);
    if sender_pt < g::SENDER_MIN_PT {
        return Err(LetterError::SenderTooWide);
    }
    let sender_baseline = top + font.ascent * mm(sender_pt);
    page.push(Item::Text {
        face: Face::Regular,
        size: sender_pt,
        x: left,
        baseline: sender_baseline,
        text: p.sender.clone(),
    });

    let n = p.address.len();
    let block_top = sender_baseline + font.descent * mm(sender_pt) + g::SENDER_GAP;
    let em_height = font.ascent + font.descent + (n as f32 - 1.0) * g::ADDRESS_LEADING;
    let by_height = (bottom - block_top) / em_height * g::PT_PER_MM;
    if by_height < g::ADDRESS_MIN_PT {
        return Err(LetterError::AddressTooManyLines { lines: n });
    }
    let mut size = g::ADDRESS_MAX_PT.min(by_height);
    for (i, line) in p.address.iter().enumerate() {
        let fitted = fit(size, font.width(line, size), avail_w);
        if fitted < g::ADDRESS_MIN_PT {
            return Err(LetterError::AddressTooWide { line: i + 1 });
        }
        size = fitted;
    }
    // Round down to a tenth of a point, so the PDF carries tidy numbers.
    let size = (size * 10.0).floor() / 10.0;
    let pitch = mm(size) * g::ADDRESS_LEADING;
    let first = block_top + font.ascent * mm(size);
    for (i, line) in p.address.iter().enumerate() {
        page.push(Item::Text {
            face: Face::Regular,
            size,
            x: left,
            baseline: first + i as f32 * pitch,
            text: line.clone(),
        });
    }
    Ok(())
}

/// The largest size not above `size` at which text `width` mm wide (at `size`) fits `avail`.
fn fit(size: f32, width: f32, avail: f32) -> f32 {
    if width <= avail {
        size
    } else {
        size * avail / width
    }
}

fn fold_marks(page: &mut Vec<Item>) {
    for y in g::FOLD_MARKS {
        page.push(Item::Rule {
            x1: g::FOLD_MARK_X.0,
            y1: y,
            x2: g::FOLD_MARK_X.1,
            y2: y,
        });
    }
}

/// Page numbers on every page of a multi-page letter, and the reference atop the later ones.
fn page_furniture(fonts: &Fonts, pages: &mut [Vec<Item>], reference: &str) {
    let n = pages.len();
    if n < 2 {
        return;
    }
    for (i, page) in pages.iter_mut().enumerate() {
        if i > 0 {
            // Header first, so text extraction meets it before the body it heads.
            page.insert(
                0,
                Item::Text {
                    face: Face::Regular,
                    size: g::HEADER_PT,
                    x: g::MARGIN_LEFT,
                    baseline: g::HEADER_BASELINE,
                    text: format!("{LABEL_REFERENCE} {reference}"),
                },
            );
        }
        let text = format!("Side {} av {n}", i + 1);
        let width = fonts.regular.width(&text, g::HEADER_PT);
        page.push(Item::Text {
            face: Face::Regular,
            size: g::HEADER_PT,
            x: g::MARGIN_RIGHT - width,
            baseline: g::FOOTER_BASELINE,
            text,
        });
    }
}

struct Flow<'a> {
    fonts: &'a Fonts,
    pages: Vec<Vec<Item>>,
    /// Where the next line's baseline goes, on the last page.
    next_baseline: f32,
    /// Nothing has been set on the last page's body yet.
    at_page_top: bool,
}

impl Flow<'_> {
    fn page(&mut self) -> &mut Vec<Item> {
        self.pages.last_mut().expect("a flow always has a page")
    }

    fn new_page(&mut self) -> Result<(), LetterError> {
        if self.pages.len() >= g::MAX_PAGES {
            return Err(LetterError::TooLong {
                max_pages: g::MAX_PAGES,
            });
        }
        self.pages.push(Vec::new());
        self.next_baseline = g::CONTINUATION_BODY_TOP + self.fonts.regular.ascent * mm(g::BODY_PT);
        self.at_page_top = true;
        Ok(())
    }

    fn break_if_full(&mut self) -> Result<(), LetterError> {
        if self.next_baseline > g::BODY_BOTTOM {
            self.new_page()?;
        }
        Ok(())
    }

    fn line(
        &mut self,
        face: Face,
        size: f32,
        x: f32,
        text: String,
        pitch: f32,
    ) -> Result<(), LetterError> {
        self.break_if_full()?;
        let baseline = self.next_baseline;
        self.page().push(Item::Text {
            face,
            size,
            x,
            baseline,
            text,
        });
        self.next_baseline += pitch;
        self.at_page_top = false;
        Ok(())
    }

    /// The acknowledgement box: label and code on the left, QR code and caption on the right.
    fn code_box(&mut self, p: &Prepared, body_pitch: f32) -> Result<(), LetterError> {
        let fonts = self.fonts;
        let mut top = self.next_baseline - body_pitch + g::CODE_BOX_GAP;
        if top + g::CODE_BOX_H > g::BODY_BOTTOM + 4.0 {
            self.new_page()?;
            top = g::CONTINUATION_BODY_TOP;
        }
        let area = Area {
            left: g::MARGIN_LEFT,
            top,
            right: g::MARGIN_RIGHT,
            bottom: top + g::CODE_BOX_H,
        };
        let left = area.left + g::BOX_PADDING;
        let qr_left = area.right - g::BOX_PADDING - g::QR_SIZE;
        let items = self.pages.last_mut().expect("a flow always has a page");
        items.push(Item::Frame(area));
        if !p.code.is_empty() {
            items.push(Item::Text {
                face: Face::Regular,
                size: g::CODE_LABEL_PT,
                x: left,
                baseline: top + g::BOX_PADDING + fonts.regular.ascent * mm(g::CODE_LABEL_PT),
                text: LABEL_CODE.to_string(),
            });
            let avail = if p.has_qr {
                qr_left - 5.0
            } else {
                area.right - g::BOX_PADDING
            } - left;
            let size = fit(g::CODE_PT, fonts.mono.width(&p.code, g::CODE_PT), avail);
            if size < g::CODE_MIN_PT {
                return Err(LetterError::CodeTooLong);
            }
            items.push(Item::Text {
                face: Face::Mono,
                size,
                x: left,
                baseline: top + g::CODE_BOX_H * 0.66,
                text: p.code.clone(),
            });
        }
        if p.has_qr {
            let qr_top = top + 2.0;
            items.push(Item::Qr {
                left: qr_left,
                top: qr_top,
                size: g::QR_SIZE,
            });
            let width = fonts.regular.width(QR_CAPTION, g::QR_CAPTION_PT);
            items.push(Item::Text {
                face: Face::Regular,
                size: g::QR_CAPTION_PT,
                x: qr_left + (g::QR_SIZE - width) / 2.0,
                baseline: area.bottom - g::BOX_PADDING + 1.0,
                text: QR_CAPTION.to_string(),
            });
        }
        self.next_baseline = area.bottom + body_pitch;
        Ok(())
    }
}

/// Greedy word wrap by glyph advances. Runs of whitespace become one space; a word wider than
/// the line is broken between characters.
pub fn wrap(font: &LoadedFont, size: f32, text: &str, width: f32) -> Vec<String> {
    let space = font.width(" ", size);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_w = 0.0;
    for word in text.split_whitespace() {
        let word_w = font.width(word, size);
        if line.is_empty() {
            // fall through to placing the word on the empty line
        } else if line_w + space + word_w <= width {
            line.push(' ');
            line.push_str(word);
            line_w += space + word_w;
            continue;
        } else {
            lines.push(std::mem::take(&mut line));
            line_w = 0.0;
        }
        if word_w <= width {
            line.push_str(word);
            line_w = word_w;
            continue;
        }
        // A word longer than the line (a long URL): break it where it overflows.
        for c in word.chars() {
            let mut buf = [0u8; 4];
            let c_w = font.width(c.encode_utf8(&mut buf), size);
            if !line.is_empty() && line_w + c_w > width {
                lines.push(std::mem::take(&mut line));
                line_w = 0.0;
            }
            line.push(c);
            line_w += c_w;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
