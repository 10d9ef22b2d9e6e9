//! The bundled fonts (DejaVu, see `channels/fonts/LICENSE-DejaVu.txt`): parsed once per
//! [`super::LetterRenderer`], measured with `ttf-parser`, embedded (subset) by printpdf.

use super::LetterError;
use super::geometry::mm;

const SANS: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const SANS_BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");
const MONO: &[u8] = include_bytes!("../../fonts/DejaVuSansMono.ttf");

/// Which of the three faces a piece of text is set in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Regular,
    Bold,
    Mono,
}

/// Advances of U+0000..U+0200 (Latin-1 and Latin Extended-A, where all Norwegian and Northern
/// Sami letters live) looked up once, so measuring text rarely touches the cmap.
const FAST: usize = 0x200;

pub struct LoadedFont {
    name: &'static str,
    face: ttf_parser::Face<'static>,
    pub pdf: printpdf::ParsedFont,
    units_per_em: f32,
    /// Per code point below [`FAST`]: the advance in font units, or `None` if there is no glyph.
    fast: Vec<Option<u16>>,
    /// Ascender and descender (positive, below the baseline), in em.
    pub ascent: f32,
    pub descent: f32,
}

impl std::fmt::Debug for LoadedFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedFont")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl LoadedFont {
    fn load(name: &'static str, bytes: &'static [u8]) -> Result<Self, LetterError> {
        let face = ttf_parser::Face::parse(bytes, 0).map_err(|_| LetterError::Font(name))?;
        let pdf = printpdf::ParsedFont::from_bytes(bytes, 0, &mut Vec::new())
            .ok_or(LetterError::Font(name))?;
        let units_per_em = f32::from(face.units_per_em());
        let mut font = LoadedFont {
            name,
            ascent: f32::from(face.ascender()) / units_per_em,
            descent: -f32::from(face.descender()) / units_per_em,
            face,
            pdf,
            units_per_em,
            fast: Vec::new(),
        };
        font.fast = (0..FAST as u32)
            .map(|cp| char::from_u32(cp).and_then(|c| font.advance_slow(c)))
            .collect();
        Ok(font)
    }

    fn advance_slow(&self, c: char) -> Option<u16> {
        let glyph = self.face.glyph_index(c)?;
        if glyph.0 == 0 {
            return None; // mapped to .notdef: as good as missing
        }
        Some(self.face.glyph_hor_advance(glyph).unwrap_or(0))
    }

    /// The advance of `c` in font units, or `None` when the font has no glyph for it.
    fn advance(&self, c: char) -> Option<u16> {
        match self.fast.get(c as usize) {
            Some(a) => *a,
            None => self.advance_slow(c),
        }
    }

    /// Fails, naming the first character the font cannot draw (which would otherwise come
    /// out as a silent .notdef box).
    pub fn check(&self, text: &str, field: &'static str) -> Result<(), LetterError> {
        match text
            .chars()
            .find(|&c| c != '\n' && self.advance(c).is_none())
        {
            Some(c) => Err(LetterError::MissingGlyph { ch: c, field }),
            None => Ok(()),
        }
    }

    /// Width of `text` at `size_pt`, in millimetres (no kerning: printpdf does not kern either).
    /// Characters without a glyph count as zero; [`Self::check`] runs first.
    pub fn width(&self, text: &str, size_pt: f32) -> f32 {
        let units: u32 = text
            .chars()
            .map(|c| u32::from(self.advance(c).unwrap_or(0)))
            .sum();
        mm(units as f32 / self.units_per_em * size_pt)
    }
}

/// The three faces, parsed once.
#[derive(Debug)]
pub struct Fonts {
    pub regular: LoadedFont,
    pub bold: LoadedFont,
    pub mono: LoadedFont,
}

impl Fonts {
    pub fn load() -> Result<Self, LetterError> {
        Ok(Fonts {
            regular: LoadedFont::load("DejaVu Sans", SANS)?,
            bold: LoadedFont::load("DejaVu Sans Bold", SANS_BOLD)?,
            mono: LoadedFont::load("DejaVu Sans Mono", MONO)?,
        })
    }

    pub fn get(&self, face: Face) -> &LoadedFont {
        match face {
            Face::Regular => &self.regular,
            Face::Bold => &self.bold,
            Face::Mono => &self.mono,
        }
    }
}
