//! A light reading of template source for line numbers, which minijinja does not give for
//! everything: where a variable is used, where a `{% block %}` lies, and where a refused word
//! or phrase appears. It knows Jinja's three kinds of tags and string literals, nothing more.

use std::ops::Range;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    Text,
    /// `{{ … }}`
    Expr,
    /// `{% … %}`
    Stmt,
    /// `{# … #}`
    Comment,
}

/// The source cut into text and tags; a tag's range includes its delimiters.
pub(crate) fn parts(src: &str) -> Vec<(Part, Range<usize>)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut text_start) = (0, 0);
    while i + 1 < b.len() {
        let part = match (b[i], b[i + 1]) {
            (b'{', b'{') => Part::Expr,
            (b'{', b'%') => Part::Stmt,
            (b'{', b'#') => Part::Comment,
            _ => {
                i += 1;
                continue;
            }
        };
        if text_start < i {
            out.push((Part::Text, text_start..i));
        }
        let end = tag_end(b, i + 2, part);
        out.push((part, i..end));
        i = end;
        text_start = end;
    }
    if text_start < b.len() {
        out.push((Part::Text, text_start..b.len()));
    }
    out
}

/// Just past the tag's closing delimiter (or the end of the source); skips string literals.
fn tag_end(b: &[u8], mut j: usize, part: Part) -> usize {
    let close = match part {
        Part::Expr => b'}',
        Part::Stmt => b'%',
        _ => b'#',
    };
    while j < b.len() {
        match b[j] {
            q @ (b'"' | b'\'') if part != Part::Comment => j = string_end(b, j + 1, q),
            c if c == close && b.get(j + 1) == Some(&b'}') => return j + 2,
            _ => j += 1,
        }
    }
    b.len()
}

fn string_end(b: &[u8], mut j: usize, quote: u8) -> usize {
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            c if c == quote => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&c| c == b'\n')
        .count()
        + 1
}

/// The line where `name` is first used as a variable inside a tag (not as `x.name`, not as a
/// keyword argument `name=`, not inside a string).
pub(crate) fn variable_line(src: &str, name: &str) -> Option<usize> {
    let b = src.as_bytes();
    for (part, range) in parts(src) {
        if !matches!(part, Part::Expr | Part::Stmt) {
            continue;
        }
        let mut j = range.start + 2;
        while j < range.end {
            let c = b[j];
            if c == b'"' || c == b'\'' {
                j = string_end(b, j + 1, c);
            } else if c.is_ascii_alphabetic() || c == b'_' {
                let start = j;
                while j < range.end && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                let after_dot = src[..start].trim_end().ends_with('.');
                let rest = src[j..range.end].trim_start();
                let kwarg = rest.starts_with('=') && !rest.starts_with("==");
                if &src[start..j] == name && !after_dot && !kwarg {
                    return Some(line_of(src, start));
                }
            } else {
                j += 1;
            }
        }
    }
    None
}

/// A `{% block name %}…{% endblock %}`: its name, the byte range of its content and the lines
/// from the opening to the closing tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub name: String,
    pub content: Range<usize>,
    pub lines: Range<usize>,
}

pub(crate) fn blocks(src: &str) -> Vec<Block> {
    let mut open: Vec<(String, usize, usize)> = Vec::new();
    let mut out = Vec::new();
    for (part, range) in parts(src) {
        if part != Part::Stmt {
            continue;
        }
        let inner = src[range.start + 2..range.end.saturating_sub(2).max(range.start + 2)]
            .trim_matches(|c: char| c == '-' || c == '+' || c.is_whitespace());
        let mut words = inner.split_whitespace();
        match words.next() {
            Some("block") => {
                let name = words.next().unwrap_or_default().to_owned();
                open.push((name, range.start, range.end));
            }
            Some("endblock") => {
                if let Some((name, tag_start, content_start)) = open.pop() {
                    out.push(Block {
                        name,
                        content: content_start..range.start,
                        lines: line_of(src, tag_start)..line_of(src, range.end) + 1,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// The source with comments blanked out (byte for byte, line breaks kept), so what no reader
/// ever sees is not searched for refused words.
pub(crate) fn without_comments(src: &str) -> String {
    let mut out = src.as_bytes().to_vec();
    for (part, range) in parts(src) {
        if part == Part::Comment {
            for c in &mut out[range] {
                if *c != b'\n' {
                    *c = b' ';
                }
            }
        }
    }
    String::from_utf8(out).expect("only whole UTF-8 sequences were replaced by ASCII spaces")
}

/// Byte offsets in `text` where `phrase` occurs as whole words, ignoring case, with any run of
/// whitespace in either matching any other ("Rus  Nord" finds "rus nord", "rus" does not find
/// "russisk" but does find "Rus-Nord").
pub(crate) fn find_phrase(text: &str, phrase: &str) -> Vec<usize> {
    let needle: Vec<char> = fold(phrase).into_iter().map(|(_, c)| c).collect();
    let needle = trim_spaces(&needle);
    if needle.is_empty() {
        return Vec::new();
    }
    let hay = fold(text);
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for start in 0..hay.len() {
        let Some(window) = hay.get(start..start + needle.len()) else {
            break;
        };
        if !window.iter().map(|&(_, c)| c).eq(needle.iter().copied()) {
            continue;
        }
        let before = start.checked_sub(1).map(|i| hay[i].1);
        let after = hay.get(start + needle.len()).map(|&(_, c)| c);
        if !before.is_some_and(is_word) && !after.is_some_and(is_word) {
            found.push(hay[start].0);
        }
    }
    found
}

/// Lower-cased characters with their byte offsets; each whitespace run becomes one space.
fn fold(text: &str) -> Vec<(usize, char)> {
    let mut out: Vec<(usize, char)> = Vec::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if out.last().is_none_or(|&(_, p)| p != ' ') {
                out.push((i, ' '));
            }
        } else {
            out.extend(c.to_lowercase().map(|l| (i, l)));
        }
    }
    out
}

fn trim_spaces(chars: &[char]) -> &[char] {
    let start = chars.iter().position(|&c| c != ' ').unwrap_or(chars.len());
    let end = chars
        .iter()
        .rposition(|&c| c != ' ')
        .map_or(start, |e| e + 1);
    &chars[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_found_in_tags_only() {
        let src = "place is here\n{{ x.place }} {{ \"place\" }}\n{% if place %}\n{{ place }}";
        assert_eq!(variable_line(src, "place"), Some(3));
        assert_eq!(variable_line(src, "x"), Some(2));
        assert_eq!(variable_line(src, "here"), None);
        let kw = "{{ a|replace(old=\"x\") }}\n{{ old }}";
        assert_eq!(variable_line(kw, "old"), Some(2));
    }

    #[test]
    fn blocks_know_their_lines() {
        let src = "{# c #}\n{% block title %}Hei\n{{ when }}{% endblock %}\n{%- block body -%}\nx\n{% endblock %}\n";
        let blocks = blocks(src);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].name, "title");
        assert_eq!(&src[blocks[0].content.clone()], "Hei\n{{ when }}");
        assert_eq!(blocks[0].lines, 2..4);
        assert_eq!(blocks[1].name, "body");
        assert_eq!(blocks[1].lines, 4..7);
    }

    #[test]
    fn phrases_match_whole_words_ignoring_case() {
        assert_eq!(
            find_phrase("Velkommen til RUS-poliklinikken", "rus"),
            vec![14]
        );
        assert!(find_phrase("russisk og Rusten", "rus").is_empty());
        assert_eq!(
            find_phrase("Hei fra Poliklinikk  Rus\nNord!", "poliklinikk rus nord"),
            vec![8]
        );
        assert_eq!(find_phrase("Åsen psykiatri", "PSYKIATRI"), vec![6]);
        assert!(find_phrase("anything", "  ").is_empty());
    }

    #[test]
    fn comments_are_blanked_but_keep_lines() {
        let src = "a{# rus\nrus #}b «x»";
        let blank = without_comments(src);
        assert_eq!(blank.len(), src.len());
        assert_eq!(blank.lines().count(), 2);
        assert!(find_phrase(&blank, "rus").is_empty());
        assert!(blank.ends_with("b «x»"));
    }
}
