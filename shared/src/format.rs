//! What a line of text becomes on screen: the safe-link rule every link of the widget
//! follows (absolute http(s) only, no bidirectional controls), and the small markdown
//! subset agents' lines may carry (standard responses are written with it): bold, italic,
//! inline code, bullet and numbered lists, line breaks and links. Visitor lines stay plain
//! text with their links.
//!
//! The output is a tree of text the view renders as text nodes, so markup in a line (HTML,
//! scripts) is shown, never interpreted. Parsing is linear in the line's length whatever
//! it holds: a delimiter pairs with the first candidate after it or is text, links are
//! looked for within a bounded span, and emphasis nests three deep at most.

use crate::letters::{Classify, is_word};

/// A block of an agent's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// Lines of text, with `Inline::Break` between them.
    Paragraph(Vec<Inline>),
    /// One item per line that started with `- `, `* ` or `• `.
    Bullets(Vec<Vec<Inline>>),
    /// One item per line that started with a number and `.` or `)`, counted from `start`.
    Numbered {
        /// The first item's number.
        start: u32,
        /// The items.
        items: Vec<Vec<Inline>>,
    },
}

/// A run of text inside a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    /// Shown as it is, whatever it contains.
    Text(String),
    /// `**bold**`.
    Strong(Vec<Inline>),
    /// `*italic*` or `_italic_`.
    Emphasis(Vec<Inline>),
    /// `` `code` ``, shown as it is.
    Code(String),
    /// `[text](url)` or a bare URL, `url` passing [`safe_url`].
    Link {
        /// What the link shows.
        text: String,
        /// Where it goes.
        url: String,
    },
    /// A line break inside a paragraph.
    Break,
}

/// A piece of plain text: text, or an http(s) URL to show as a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Shown as text, whatever it contains.
    Text(String),
    /// An absolute http(s) URL.
    Link(String),
}

/// How deep emphasis may nest (bold in italic in bold); deeper delimiters are text.
const MAX_DEPTH: u8 = 3;
/// How far after `[` a link's `](url)` is looked for.
const LINK_SPAN: usize = 512;

/// Unicode's bidirectional embeddings, overrides and isolates: in an agent's line they
/// could make what follows read in another order (a link as another address).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` without its bidirectional controls: what an agent's line shows as plain text
/// before, or without, its formatting.
pub fn without_bidi(text: &str) -> String {
    text.chars().filter(|c| !is_bidi_control(*c)).collect()
}

/// The URL if it is absolute http(s), so a pushed `javascript:` link is never clickable,
/// and free of bidirectional controls, which could make it read as another address.
pub fn safe_url(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"))?;
    let marks = |c: char| matches!(c, '\u{200e}' | '\u{200f}') || is_bidi_control(c);
    let clean = !trimmed.chars().any(|c| c.is_whitespace() || c.is_control() || marks(c));
    (!rest.is_empty() && clean).then(|| trimmed.to_owned())
}

/// Splits plain text into text and http(s) links: a link is a whitespace-separated word
/// that [`safe_url`] accepts, without the punctuation that ends a sentence after it.
/// Everything else, `javascript:` or `data:` URLs and markup included, stays text.
pub fn segments(text: &str) -> Vec<Segment> {
    fn push_text(out: &mut Vec<Segment>, piece: &str) {
        match out.last_mut() {
            Some(Segment::Text(last)) => last.push_str(piece),
            _ => out.push(Segment::Text(piece.to_owned())),
        }
    }
    let mut out: Vec<Segment> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let word_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (word, after) = rest.split_at(word_end);
        let url = word.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'', '"']);
        match safe_url(url) {
            Some(link) if !word.is_empty() => {
                out.push(Segment::Link(link));
                push_text(&mut out, &word[url.len()..]);
            }
            _ => push_text(&mut out, word),
        }
        let space_end = after.find(|c: char| !c.is_whitespace()).unwrap_or(after.len());
        push_text(&mut out, &after[..space_end]);
        rest = &after[space_end..];
    }
    out.retain(|s| !matches!(s, Segment::Text(t) if t.is_empty()));
    out
}

/// Whether an agent's line shows the same without the formatter: some text, and nothing
/// in it the formatter reads (emphasis, code, bracketed links, several lines, a list item:
/// a digit, `-` or `•` first is enough to ask it) or drops (bidirectional controls). Such a
/// line is shown as plain text with its links ([`segments`]); the others wait for
/// [`blocks`], which the widget loads with its later part.
pub fn is_plain(text: &str) -> bool {
    !text.trim().is_empty()
        && !text.contains(['*', '_', '`', '[', '\n', '\r'])
        && !text.chars().any(is_bidi_control)
        && !text
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '\u{2022}')
}

/// An agent's line as blocks: paragraphs, bullet lists and numbered lists, each of
/// formatted runs; `classify` tells the letters beyond ASCII next to a `_`
/// ([`crate::letters`]). Bidirectional controls are dropped from the text shown, after
/// parsing, so a URL that held one stays text rather than becoming a link to another
/// address.
pub fn blocks(text: &str, classify: Classify) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    for line in text.lines() {
        let item = list_item(line);
        if item.is_some() || line.trim().is_empty() {
            flush_paragraph(&mut out, &mut paragraph, classify);
        }
        match item {
            Some(Item::Bullet(rest)) => match out.last_mut() {
                Some(Block::Bullets(items)) => items.push(inlines(rest, 0, classify)),
                _ => out.push(Block::Bullets(vec![inlines(rest, 0, classify)])),
            },
            Some(Item::Number(number, rest)) => match out.last_mut() {
                Some(Block::Numbered { items, .. }) => items.push(inlines(rest, 0, classify)),
                _ => out.push(Block::Numbered {
                    start: number,
                    items: vec![inlines(rest, 0, classify)],
                }),
            },
            None if line.trim().is_empty() => {}
            None => paragraph.push(line),
        }
    }
    flush_paragraph(&mut out, &mut paragraph, classify);
    out
}

fn flush_paragraph(out: &mut Vec<Block>, lines: &mut Vec<&str>, classify: Classify) {
    if lines.is_empty() {
        return;
    }
    let mut runs = Vec::new();
    for (n, line) in lines.drain(..).enumerate() {
        if n > 0 {
            runs.push(Inline::Break);
        }
        runs.extend(inlines(line, 0, classify));
    }
    out.push(Block::Paragraph(runs));
}

enum Item<'a> {
    Bullet(&'a str),
    Number(u32, &'a str),
}

fn list_item(line: &str) -> Option<Item<'_>> {
    let line = line.trim_start();
    for marker in ["- ", "* ", "\u{2022} "] {
        if let Some(rest) = line.strip_prefix(marker) {
            return Some(Item::Bullet(rest));
        }
    }
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = line[digits..].strip_prefix(['.', ')'])?.strip_prefix(' ')?;
    (1..=3).contains(&digits).then(|| Item::Number(line[..digits].parse().unwrap_or(1), rest))
}

/// Formatted runs of one line.
fn inlines(text: &str, depth: u8, classify: Classify) -> Vec<Inline> {
    let mut out = Vec::new();
    let mut plain = String::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let before = text[..i].chars().next_back();
        let parsed = match rest.as_bytes()[0] {
            b'`' => code(rest),
            b'*' if rest.starts_with("**") => emphasis(rest, "**", depth, before, classify),
            b'*' | b'_' => emphasis(rest, &rest[..1], depth, before, classify),
            b'[' => link(rest),
            _ => None,
        };
        match parsed {
            Some((inline, used)) => {
                flush_text(&mut out, &mut plain);
                out.push(inline);
                i += used;
            }
            None => {
                let c = rest.chars().next().unwrap_or_default();
                plain.push(c);
                i += c.len_utf8();
            }
        }
    }
    flush_text(&mut out, &mut plain);
    out
}

/// Plain text, with its bare URLs as links.
fn flush_text(out: &mut Vec<Inline>, plain: &mut String) {
    for segment in segments(plain) {
        out.push(match segment {
            Segment::Text(text) => Inline::Text(without_bidi(&text)),
            Segment::Link(url) => Inline::Link { text: url.clone(), url },
        });
    }
    plain.clear();
}

/// `` `code` ``: up to the next backtick; none, or nothing between, is text.
fn code(rest: &str) -> Option<(Inline, usize)> {
    let end = rest[1..].find('`')? + 1;
    (end > 1).then(|| (Inline::Code(without_bidi(&rest[1..end])), end + 1))
}

/// `**strong**`, `*em*` or `_em_`, paired with the first delimiter after it: the text
/// between must not start or end with a space, and `_` must stand at word edges
/// (`snake_case_names` stay as they are).
fn emphasis(
    rest: &str,
    delimiter: &str,
    depth: u8,
    before: Option<char>,
    classify: Classify,
) -> Option<(Inline, usize)> {
    if depth >= MAX_DEPTH {
        return None;
    }
    let word_edge = |c: Option<char>| c.is_none_or(|c| !is_word(c, classify));
    let underscore = delimiter == "_";
    if underscore && !word_edge(before) {
        return None;
    }
    let open = delimiter.len();
    let end = rest[open..].find(delimiter)? + open;
    let inner = &rest[open..end];
    let after = rest[end + open..].chars().next();
    let spaced = inner.starts_with(char::is_whitespace) || inner.ends_with(char::is_whitespace);
    if inner.is_empty() || spaced || (underscore && !word_edge(after)) {
        return None;
    }
    let runs = inlines(inner, depth + 1, classify);
    let inline = if open == 2 { Inline::Strong(runs) } else { Inline::Emphasis(runs) };
    Some((inline, end + open))
}

/// `[text](url)` on one line, when `url` passes [`safe_url`]; anything else is text.
fn link(rest: &str) -> Option<(Inline, usize)> {
    let window = &rest[..floor_boundary(rest, LINK_SPAN)];
    let close = window.find("](")?;
    let text = &window[1..close];
    let url_len = window[close + 2..].find(')')?;
    let url = &window[close + 2..close + 2 + url_len];
    if text.trim().is_empty() || text.contains(['\n', '[']) {
        return None;
    }
    let url = safe_url(url)?;
    Some((Inline::Link { text: text.to_owned(), url }, close + 3 + url_len))
}

/// The largest char boundary of `text` at or below `at`.
fn floor_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}
