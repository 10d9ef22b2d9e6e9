//! The one-click link as a QR code: an 8-bit grey raw image (printpdf places it as an image
//! XObject), one module per `SCALE` × `SCALE` pixels, with the standard 4-module quiet zone.

use super::LetterError;
use qrcode::{Color, EcLevel, QrCode, bits};

/// Pixels per module. Printing scales the image up without smoothing (no /Interpolate), so
/// a few pixels per module are plenty and keep the stream small.
const SCALE: usize = 4;
const QUIET: usize = 4;
/// Version 10 (57 modules) still gives ~0.45 mm modules in a 30 mm square: past that a phone
/// camera struggles with a printed code, so a longer link is refused rather than printed.
const MAX_MODULES: usize = 57;

#[derive(Debug, Clone)]
pub struct QrImage {
    /// Row-major grey pixels, 0 = black, 255 = white.
    pub pixels: Vec<u8>,
    /// Width = height, in pixels.
    pub side: usize,
}

pub fn encode(link: &str) -> Result<QrImage, LetterError> {
    let code = QrCode::with_bits(fitting_bits(link)?, EcLevel::M)
        .map_err(|e| LetterError::Qr(e.to_string()))?;
    let modules = code.width();
    let colors = code.to_colors();
    let side_modules = modules + 2 * QUIET;
    let side = side_modules * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
        for row in my * SCALE..(my + 1) * SCALE {
            pixels[row * side + mx * SCALE..row * side + (mx + 1) * SCALE].fill(0);
        }
    }
    Ok(QrImage { pixels, side })
}

/// Whether the link fits a code that prints reliably, without drawing it: the size follows
/// from the data alone, and drawing (choosing the best of eight masks) is most of the cost.
pub fn check(link: &str) -> Result<(), LetterError> {
    fitting_bits(link).map(drop)
}

/// The link encoded for a code of the smallest version that holds it, if that version prints
/// reliably.
fn fitting_bits(link: &str) -> Result<bits::Bits, LetterError> {
    let bits = bits::encode_auto(link.as_bytes(), EcLevel::M)
        .map_err(|e| LetterError::Qr(e.to_string()))?;
    let modules = usize::try_from(bits.version().width()).unwrap_or(usize::MAX);
    if modules > MAX_MODULES {
        return Err(LetterError::Qr(format!(
            "the link needs {modules} × {modules} modules; at most {MAX_MODULES} print reliably"
        )));
    }
    Ok(bits)
}
