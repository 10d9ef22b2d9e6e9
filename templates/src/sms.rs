//! How many SMS segments a text needs, so a template can be checked against a clinic's limit
//! before it is saved. GSM-7 (which has Æ Ø Å æ ø å) packs 160 septets into one segment and 153
//! into each part of a longer message; `^ { } \ [ ~ ] | €` take two septets. Any other character
//! — the Northern Sami á č đ ŋ š ŧ ž among them — forces UCS-2: 70 UTF-16 units in one segment,
//! 67 per part. The SMS channel counts with this too (`kontaktvei_channels::sms::segments`);
//! the GSM 03.38 table comes from `gsm7-alt`.

use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    pub segments: usize,
}

pub fn count(text: &str) -> Segments {
    let (encoding, units, single, part) = match gsm7_alt::encoded_len(text) {
        Ok(septets) => (Encoding::Gsm7, septets, 160, 153),
        Err(_) => (Encoding::Ucs2, text.encode_utf16().count(), 70, 67),
    };
    let segments = if units <= single {
        1
    } else {
        units.div_ceil(part)
    };
    Segments {
        encoding,
        units,
        segments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norwegian_stays_gsm7_and_sami_forces_ucs2() {
        let nb = count("Hei! Du har time på Ås, kl. 10.30. ÆØÅ æøå");
        assert_eq!(nb.encoding, Encoding::Gsm7);
        assert_eq!(count(&"a".repeat(160)).segments, 1);
        assert_eq!(count(&"a".repeat(161)).segments, 2);
        assert_eq!(count(&"a".repeat(307)).segments, 3);
        assert_eq!(count(&format!("{}€", "a".repeat(159))).segments, 2);
        let se = count("Don leat ožžon áiggi.");
        assert_eq!(se.encoding, Encoding::Ucs2);
        assert_eq!(count(&"š".repeat(70)).segments, 1);
        assert_eq!(count(&"š".repeat(71)).segments, 2);
        assert_eq!(count(&"š".repeat(135)).segments, 3);
    }
}
