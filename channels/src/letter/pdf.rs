//! Laid-out pages → printpdf operations → PDF bytes.

use super::font::{Face, Fonts};
use super::geometry::{self as g, PT_PER_MM};
use super::layout::Item;
use super::qr::QrImage;
use printpdf::{
    Color, FontId, Greyscale, Line, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle,
    PdfPage, PdfSaveOptions, Point, Pt, RawImage, RawImageData, RawImageFormat, Rect, TextItem,
    TextMatrix, XObjectId, XObjectTransform,
};

/// One PDF being assembled: the fonts are registered once, pages are appended letter by letter.
pub struct DocBuilder {
    doc: PdfDocument,
    font_ids: [FontId; 3],
    pages: Vec<PdfPage>,
}

fn x_pt(x_mm: f32) -> Pt {
    Pt(x_mm * PT_PER_MM)
}

/// From millimetres below the top edge to points above the bottom edge.
fn y_pt(y_mm: f32) -> Pt {
    Pt((g::PAGE_H - y_mm) * PT_PER_MM)
}

fn grey(level: f32) -> Color {
    Color::Greyscale(Greyscale {
        percent: level,
        icc_profile: None,
    })
}

impl DocBuilder {
    pub fn new(fonts: &Fonts, title: &str) -> Self {
        let mut doc = PdfDocument::new(title);
        let font_ids = [
            doc.add_font(&fonts.regular.pdf),
            doc.add_font(&fonts.bold.pdf),
            doc.add_font(&fonts.mono.pdf),
        ];
        DocBuilder {
            doc,
            font_ids,
            pages: Vec::new(),
        }
    }

    pub fn page_count(&self) -> usize {
        self.pages.len()
    }

    pub fn blank_page(&mut self) {
        self.pages
            .push(PdfPage::new(Mm(g::PAGE_W), Mm(g::PAGE_H), Vec::new()));
    }

    /// Appends one letter's pages.
    pub fn add_letter(&mut self, pages: &[Vec<Item>], qr: Option<&QrImage>) {
        let qr_id = qr.map(|q| {
            self.doc.add_image(&RawImage {
                pixels: RawImageData::U8(q.pixels.clone()),
                width: q.side,
                height: q.side,
                data_format: RawImageFormat::R8,
                tag: Vec::new(),
            })
        });
        for items in pages {
            let ops = self.page_ops(items, qr_id.as_ref(), qr.map_or(0, |q| q.side));
            self.pages
                .push(PdfPage::new(Mm(g::PAGE_W), Mm(g::PAGE_H), ops));
        }
    }

    fn font_handle(&self, face: Face) -> PdfFontHandle {
        let i = match face {
            Face::Regular => 0,
            Face::Bold => 1,
            Face::Mono => 2,
        };
        PdfFontHandle::External(self.font_ids[i].clone())
    }

    fn page_ops(&self, items: &[Item], qr: Option<&XObjectId>, qr_px: usize) -> Vec<Op> {
        let mut w = OpWriter::default();
        for item in items {
            match item {
                Item::Text {
                    face,
                    size,
                    x,
                    baseline,
                    text,
                } => w.text(self.font_handle(*face), *face, *size, *x, *baseline, text),
                Item::Rule { x1, y1, x2, y2 } => {
                    w.stroke_start(0.3);
                    w.ops.push(Op::DrawLine {
                        line: Line {
                            points: vec![
                                LinePoint {
                                    p: Point {
                                        x: x_pt(*x1),
                                        y: y_pt(*y1),
                                    },
                                    bezier: false,
                                },
                                LinePoint {
                                    p: Point {
                                        x: x_pt(*x2),
                                        y: y_pt(*y2),
                                    },
                                    bezier: false,
                                },
                            ],
                            is_closed: false,
                        },
                    });
                    w.ops.push(Op::RestoreGraphicsState);
                }
                Item::Frame(area) => {
                    w.stroke_start(0.8);
                    let mut rect = Rect::from_xywh(
                        x_pt(area.left),
                        y_pt(area.bottom),
                        x_pt(area.right - area.left),
                        x_pt(area.bottom - area.top),
                    );
                    rect.mode = Some(PaintMode::Stroke);
                    w.ops.push(Op::DrawRectangle { rectangle: rect });
                    w.ops.push(Op::RestoreGraphicsState);
                }
                Item::Qr { left, top, size } => {
                    let Some(id) = qr else { continue };
                    w.end_text();
                    w.ops.push(Op::UseXobject {
                        id: id.clone(),
                        transform: XObjectTransform {
                            translate_x: Some(x_pt(*left)),
                            translate_y: Some(y_pt(top + size)),
                            // px / dpi inches = size mm
                            dpi: Some(qr_px as f32 * 25.4 / size),
                            ..Default::default()
                        },
                    });
                }
            }
        }
        w.end_text();
        w.ops
    }

    /// Serialises the document, with `title` and `created` in its metadata.
    pub fn finish(mut self, created: chrono::NaiveDate) -> Vec<u8> {
        use chrono::Datelike;
        let stamp = printpdf::DateTime {
            date: printpdf::Date {
                year: created.year(),
                month: created.month() as u8,
                day: created.day() as u8,
            },
            time: printpdf::Time {
                hour: 0,
                minute: 0,
                second: 0,
                millisecond: 0,
            },
            offset: printpdf::Offset {
                hours: 0,
                minutes: 0,
                seconds: 0,
                milliseconds: 0,
            },
        };
        let info = &mut self.doc.metadata.info;
        info.creation_date = stamp;
        info.modification_date = stamp;
        info.metadata_date = stamp;
        info.creator = "kontaktvei".to_string();
        info.producer = "kontaktvei (printpdf)".to_string();
        self.doc.with_pages(std::mem::take(&mut self.pages));
        // No stream compression: it halves a letter (37 KB instead of 76 KB) but takes half of
        // the time to make it (390 instead of 805 letters a second on one core, measured with
        // `cargo bench -p kontaktvei-channels --bench letters`). Print files are local and
        // short-lived; speed counts more. Fonts are still subset.
        let opts = PdfSaveOptions {
            optimize: false,
            subset_fonts: true,
            secure: true,
            image_optimization: None,
        };
        let mut warnings = Vec::new();
        let bytes = self.doc.save(&opts, &mut warnings);
        for w in warnings {
            tracing::debug!(page = w.page, msg = %w.msg, "printpdf warning");
        }
        bytes
    }
}

#[derive(Default)]
struct OpWriter {
    ops: Vec<Op>,
    in_text: bool,
    font: Option<(Face, f32)>,
}

impl OpWriter {
    fn text(&mut self, handle: PdfFontHandle, face: Face, size: f32, x: f32, y: f32, text: &str) {
        if !self.in_text {
            self.ops.push(Op::StartTextSection);
            self.in_text = true;
            self.font = None;
        }
        if self.font != Some((face, size)) {
            self.ops.push(Op::SetFont {
                font: handle,
                size: Pt(size),
            });
            self.font = Some((face, size));
        }
        self.ops.push(Op::SetTextMatrix {
            matrix: TextMatrix::Translate(x_pt(x), y_pt(y)),
        });
        self.ops.push(Op::ShowText {
            items: vec![TextItem::Text(text.to_string())],
        });
    }

    fn end_text(&mut self) {
        if self.in_text {
            self.ops.push(Op::EndTextSection);
            self.in_text = false;
        }
    }

    fn stroke_start(&mut self, width_pt: f32) {
        self.end_text();
        self.ops.push(Op::SaveGraphicsState);
        self.ops.push(Op::SetOutlineColor { col: grey(0.45) });
        self.ops.push(Op::SetOutlineThickness { pt: Pt(width_pt) });
    }
}
