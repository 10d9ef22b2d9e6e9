//! Language tags: which language a template is written in and a patient or staff member reads.
//! Owns the tag's syntax only; which languages exist is the catalogue's business (the shipped
//! `nb`, `nn`, `en`, `se`, plus whatever a template directory adds).

use std::borrow::Cow;
use std::fmt;

/// A lower-case language tag such as `nb`, `se` or `fi`: two or three letters, optionally
/// followed by `-` and a subtag of two to eight letters or digits (`sma`, `en-gb`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lang(Cow<'static, str>);

impl Lang {
    /// Norwegian bokmål: the fallback for every template.
    pub const NB: Lang = Lang(Cow::Borrowed("nb"));
    /// Norwegian nynorsk.
    pub const NN: Lang = Lang(Cow::Borrowed("nn"));
    pub const EN: Lang = Lang(Cow::Borrowed("en"));
    /// Northern Sami (davvisámegiella).
    pub const SE: Lang = Lang(Cow::Borrowed("se"));

    /// The tag, lower-cased; `None` if it is not a language tag (`"NB"` → `nb`, `"../x"` → none).
    pub fn parse(tag: &str) -> Option<Lang> {
        let tag = tag.trim().to_ascii_lowercase();
        let mut parts = tag.split('-');
        let primary = parts.next()?;
        let primary_ok =
            (2..=3).contains(&primary.len()) && primary.bytes().all(|b| b.is_ascii_lowercase());
        let rest_ok = parts
            .all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
        (primary_ok && rest_ok).then_some(Lang(Cow::Owned(tag)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_checked_and_lower_cased() {
        assert_eq!(Lang::parse("NB"), Some(Lang::NB));
        assert_eq!(Lang::parse("sma").unwrap().as_str(), "sma");
        assert_eq!(Lang::parse("en-GB").unwrap().as_str(), "en-gb");
        for bad in ["", "n", "norsk", "../nb", "nb/x", "nb-", "nb-x"] {
            assert_eq!(Lang::parse(bad), None, "{bad:?}");
        }
    }
}
