//! Page geometry of a letter, in millimetres measured from the TOP-LEFT corner of an A4 sheet
//! (the PDF's own origin is bottom-left; [`super::pdf`] converts).
//!
//! # Where the window numbers come from
//!
//! * DIN 5008:2020, form B (for window envelopes): the address field (*Anschriftfeld*) sits
//!   20 mm from the left edge and 45 mm from the top, 85 mm wide and 45 mm high. Its top
//!   17.7 mm (5 lines of 8 pt) is the zone for the return address and postal notes, written
//!   bottom-up; the 27.3 mm below (6 lines) hold the recipient. The text itself aligns on the
//!   25 mm left margin. Sources: din-5008-richtlinien.de "Anschriftenfeld", sekretaria.de
//!   "DIN 5008 / Absender" (form B: zone begins 45 mm from the top, 20 mm from the left).
//! * Norwegian window envelopes (officeconsult.no, "Brevmaler: plassering av mottakerfelt i
//!   vinduskonvolutter"): on most types the window begins 15 mm from the left; C5: 44 mm from
//!   the top, 105 × 35 mm; E6/5 (E65): 40 mm, 95 × 30 mm; C6/5: 39 mm, 100 × 35 mm; EC4: 42 mm,
//!   100 × 40 mm. The window common to C5, E65 and C6/5 is therefore x 15–110 mm, y 44–70 mm.
//! * The project's FACTS (Post): a safe recipient block is x 20–105 mm, y 46–68 mm — the
//!   common window above, shrunk by 2–5 mm for the sheet's play inside the envelope.
//!
//! We use that safe block as the window rectangle ([`WINDOW`]): the small sender line and the
//! whole recipient block are drawn inside it, the text starting at the DIN 5008 margin of
//! 25 mm. Nothing else on the page comes into x < 110 mm, y 40–80 mm, so nothing but the
//! address shows through any of the windows. The DIN form B address top (45 mm) is the same;
//! its 45 mm height is not usable here because an E65 window ends at 70 mm.
//!
//! Fold marks are DIN 5008 form B's (105 mm and 210 mm from the top): an A4 sheet folded
//! there goes into an E65 (110 × 220 mm) envelope; folded once across the middle, into a C5.

/// A4 portrait.
pub const PAGE_W: f32 = 210.0;
pub const PAGE_H: f32 = 297.0;

/// A rectangle in millimetres from the top-left corner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Area {
    pub left: f32,
    pub top: f32,
    pub right: f32,
    pub bottom: f32,
}

/// The part of the sheet that shows through the envelope window (see the module docs).
pub const WINDOW: Area = Area {
    left: 20.0,
    top: 46.0,
    right: 105.0,
    bottom: 68.0,
};

/// Left text margin (DIN 5008: 25 mm) and right margin (20 mm).
pub const MARGIN_LEFT: f32 = 25.0;
pub const MARGIN_RIGHT: f32 = PAGE_W - 20.0;

/// Keep this far inside the window, so antialiasing and printer registration never touch
/// its edge.
pub const WINDOW_INSET: f32 = 0.6;

/// The sender (return) line: small type at the top of the window.
pub const SENDER_PT: f32 = 7.0;
pub const SENDER_MIN_PT: f32 = 6.0;
/// Gap between the sender line's descenders and the recipient's first line.
pub const SENDER_GAP: f32 = 1.2;

/// Recipient block: as large as fits, never below DIN 5008's 8 pt minimum.
pub const ADDRESS_MAX_PT: f32 = 10.5;
pub const ADDRESS_MIN_PT: f32 = 8.0;
/// Line pitch of the address block, as a multiple of the font size.
pub const ADDRESS_LEADING: f32 = 1.18;

/// Date and reference: right-aligned, just below the window's level so no viewer or text
/// extractor reads them in the middle of the address.
pub const INFO_PT: f32 = 9.5;
pub const INFO_FIRST_BASELINE: f32 = 80.0;
pub const INFO_LEADING: f32 = 1.45;

/// Title (bold) and body.
pub const TITLE_PT: f32 = 15.0;
pub const TITLE_FIRST_BASELINE: f32 = 100.0;
pub const TITLE_LEADING: f32 = 1.25;
/// Space between the title's last baseline and the body's first.
pub const TITLE_TO_BODY: f32 = 10.0;
pub const BODY_PT: f32 = 11.0;
pub const BODY_LEADING: f32 = 1.4;
/// Extra space between paragraphs, as a fraction of a body line.
pub const PARAGRAPH_GAP: f32 = 0.6;
/// List items: the bullet at the margin, the text (and its wrapped lines) indented.
pub const LIST_INDENT: f32 = 5.0;
/// The lowest baseline a body line may have.
pub const BODY_BOTTOM: f32 = 272.0;

/// Pages after the first: a small header with the reference, and the body starting higher.
pub const HEADER_PT: f32 = 8.0;
pub const HEADER_BASELINE: f32 = 15.0;
pub const CONTINUATION_BODY_TOP: f32 = 27.0;
/// "Side 1 av 2", when a letter has more than one page.
pub const FOOTER_BASELINE: f32 = 286.0;

/// The acknowledgement box: the code large on the left, the QR code on the right.
pub const CODE_BOX_GAP: f32 = 8.0;
pub const CODE_BOX_H: f32 = 42.0;
pub const CODE_LABEL_PT: f32 = 10.0;
pub const CODE_PT: f32 = 30.0;
pub const CODE_MIN_PT: f32 = 16.0;
pub const QR_SIZE: f32 = 30.0;
pub const QR_CAPTION_PT: f32 = 8.0;
pub const BOX_PADDING: f32 = 5.0;

/// DIN 5008 form B fold marks.
pub const FOLD_MARKS: [f32; 2] = [105.0, 210.0];
pub const FOLD_MARK_X: (f32, f32) = (4.0, 9.0);

/// A letter longer than this is refused (a runaway template, not a letter).
pub const MAX_PAGES: usize = 8;

pub const PT_PER_MM: f32 = 72.0 / 25.4;

/// Millimetres for a size given in points.
pub fn mm(pt: f32) -> f32 {
    pt / PT_PER_MM
}
