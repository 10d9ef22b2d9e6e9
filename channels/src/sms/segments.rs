//! How many SMS segments a text needs. GSM-7 (the default alphabet, which has Æ Ø Å æ ø å) packs
//! 160 septets into one segment and 153 into each part of a longer message; the characters
//! `^ { } \ [ ~ ] | €` take two septets (escape + character). Any other character — Northern Sami
//! á č đ ŋ š ŧ ž among them — forces UCS-2: 70 UTF-16 units in one segment, 67 per part.
//! The counting lives with the templates (which check texts against a clinic's limit before
//! they are saved); the channel uses the same.

pub use kontaktvei_templates::sms::{Encoding, Segments, count};

/// Texts longer than this many segments get a warning: they are expensive and often arrive
/// out of order on old phones.
pub const WARN_ABOVE: usize = 3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn norwegian_letters_stay_in_gsm7() {
        let s = count("Hei! Du har time på Ås, kl. 10.30. Svar JA for å bekrefte. ÆØÅ æøå");
        assert_eq!(s.encoding, Encoding::Gsm7);
        assert_eq!(s.units, 66);
        assert_eq!(s.segments, 1);
    }

    #[test]
    fn escaped_characters_take_two_septets() {
        assert_eq!(count("€").units, 2);
        assert_eq!(count("[x]").units, 5);
        assert_eq!(count(&"a".repeat(159)).segments, 1);
        assert_eq!(
            count(&format!("{}€", "a".repeat(159))).segments,
            2,
            "161 septets"
        );
    }

    #[test]
    fn segment_boundaries_follow_160_and_153() {
        assert_eq!(count(&"a".repeat(160)).segments, 1);
        assert_eq!(count(&"a".repeat(161)).segments, 2);
        assert_eq!(count(&"a".repeat(306)).segments, 2);
        assert_eq!(count(&"a".repeat(307)).segments, 3);
    }

    #[test]
    fn sami_letters_force_ucs2() {
        let s = count("Buorre beaivi! Áigi lea čoahkkimii.");
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(count(&"š".repeat(70)).segments, 1);
        assert_eq!(count(&"š".repeat(71)).segments, 2);
        assert_eq!(count(&"š".repeat(134)).segments, 2);
        assert_eq!(count(&"š".repeat(135)).segments, 3);
    }
}
