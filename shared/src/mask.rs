//! The pre-filter of what the visitor writes: card numbers (and whatever else a site's
//! `maskPatterns` name) are hidden before the text leaves the browser, so under PCI DSS no
//! card number reaches GMS's transcript database. On by default with the card rule: 13 to
//! 19 digits, single spaces or dashes between them allowed, that pass the Luhn check (an
//! order id or a phone number rarely does, and is left alone).
//!
//! A site's pattern is a template: `#` a digit, `@` a letter, `*` a letter or digit, a
//! space a single space or dash or nothing, anything else itself (Latin, Greek and
//! Cyrillic letters in either case), matched as a whole word. `card` names the built-in
//! rule; an empty list turns the filter off. Hidden characters become `•`; a card keeps its
//! last four digits, as a receipt does. Letters and digits beyond ASCII are the platform's
//! ([`crate::letters`]).

use crate::letters::{Classify, Kind, no_tables};

/// What hides a character.
pub const HIDDEN: char = '\u{2022}';

/// The filter: the card rule and the site's templates.
#[derive(Debug, Clone)]
pub struct Mask {
    card: bool,
    templates: Vec<Vec<char>>,
    classify: Classify,
}

/// Filters compare by their rules: the classifier is the platform's, not the site's (and
/// function pointers do not compare reliably).
impl PartialEq for Mask {
    fn eq(&self, other: &Mask) -> bool {
        self.card == other.card && self.templates == other.templates
    }
}

impl Eq for Mask {}

impl Default for Mask {
    /// The card rule alone, by [`no_tables`]: the filter of a machine not told its
    /// platform's tables. Every character outside ASCII ends a word then, so a card number
    /// next to one is hidden all the same (a site's templates come with the tables,
    /// `WidgetConfig::mask`). Core's tables here would be in the widget's wasm although it
    /// always gives the browser's.
    fn default() -> Self {
        Mask::card(no_tables)
    }
}

impl Mask {
    /// The filter a site's `maskPatterns` describe (`card` for the built-in rule), telling
    /// letters and digits outside ASCII by `classify`.
    pub fn of(patterns: &[String], classify: Classify) -> Mask {
        Mask {
            card: patterns.iter().any(|p| p.trim() == "card"),
            templates: patterns
                .iter()
                .map(|p| p.trim())
                .filter(|p| *p != "card" && !p.is_empty())
                .map(|p| p.chars().collect())
                .collect(),
            classify,
        }
    }

    /// The card rule alone, telling letters and digits outside ASCII by `classify`.
    pub fn card(classify: Classify) -> Mask {
        Mask { card: true, templates: Vec::new(), classify }
    }

    fn kind(&self, c: char) -> Kind {
        crate::letters::kind(c, self.classify)
    }

    fn is_word(&self, c: char) -> bool {
        crate::letters::is_word(c, self.classify)
    }

    /// `text` with every match hidden, and whether anything was.
    pub fn apply(&self, text: &str) -> (String, bool) {
        let mut chars: Vec<char> = text.chars().collect();
        let mut hidden = false;
        let mut start = 0;
        while start < chars.len() {
            let at_word = start == 0 || !self.is_word(chars[start - 1]);
            let found = if at_word { self.match_at(&chars, start) } else { None };
            match found {
                Some((end, keep)) => {
                    let mut left = keep;
                    for c in chars[start..end].iter_mut().rev() {
                        if self.is_word(*c) {
                            if left == 0 {
                                *c = HIDDEN;
                            } else {
                                left -= 1;
                            }
                        }
                    }
                    hidden = true;
                    start = end;
                }
                None => start += 1,
            }
        }
        (chars.into_iter().collect(), hidden)
    }

    /// The end of a match starting at `start` (a whole word), and how many of its last
    /// characters stay visible.
    fn match_at(&self, chars: &[char], start: usize) -> Option<(usize, usize)> {
        let word_end = |end: usize| chars.get(end).is_none_or(|c| !self.is_word(*c));
        if self.card
            && let Some(end) = card_at(chars, start)
            && word_end(end)
        {
            return Some((end, 4));
        }
        self.templates
            .iter()
            .filter_map(|template| self.template_at(template, chars, start))
            .find(|end| word_end(*end))
            .map(|end| (end, 0))
    }

    /// A site's template matched at `start`; answers where the match ends.
    fn template_at(&self, template: &[char], chars: &[char], start: usize) -> Option<usize> {
        let mut at = start;
        for t in template {
            let c = chars.get(at).copied();
            match t {
                ' ' => {
                    if matches!(c, Some(' ' | '-')) {
                        at += 1;
                    }
                    continue;
                }
                '#' if c.is_some_and(|c| c.is_ascii_digit()) => {}
                '@' if c.is_some_and(|c| self.kind(c) == Kind::Letter) => {}
                '*' if c.is_some_and(|c| self.is_word(c)) => {}
                '#' | '@' | '*' => return None,
                literal if c.is_some_and(|c| fold(c) == fold(*literal)) => {}
                _ => return None,
            }
            at += 1;
        }
        (at > start).then_some(at)
    }
}

/// A card number starting at `start`: digits with single spaces or dashes between them,
/// 13 to 19 of them, Luhn-valid; answers where it ends.
fn card_at(chars: &[char], start: usize) -> Option<usize> {
    let mut digits = Vec::new();
    let mut end = start;
    while let Some(c) = chars.get(end) {
        if let Some(d) = c.to_digit(10) {
            digits.push(d);
            end += 1;
        } else if matches!(c, ' ' | '-')
            && !digits.is_empty()
            && chars.get(end + 1).is_some_and(char::is_ascii_digit)
        {
            end += 1;
        } else {
            break;
        }
        if digits.len() > 19 {
            return None;
        }
    }
    ((13..=19).contains(&digits.len()) && luhn(&digits)).then_some(end)
}

/// The Luhn checksum of card numbers: every second digit from the right doubled.
pub fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| match (!i.is_multiple_of(2), d * 2) {
            (true, doubled) if doubled > 9 => doubled - 9,
            (true, doubled) => doubled,
            (false, _) => *d,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// A letter in lower case, for a template's literal letters: the capitals of ASCII,
/// Latin-1, Latin Extended-A, Greek and Cyrillic (what sites' ids are written in) become
/// their small letters; any other character stands for itself. `char::to_lowercase` would
/// bring core's whole case table, 5.6 KB of the widget's first open.
pub(crate) fn fold(c: char) -> char {
    let n = u32::from(c);
    let lower = match n {
        0x41..=0x5A | 0xC0..=0xD6 | 0xD8..=0xDE | 0x391..=0x3A1 | 0x3A3..=0x3AB => n + 0x20,
        0x410..=0x42F => n + 0x20,
        0x400..=0x40F => n + 0x50,
        // Latin Extended-A: each capital followed by its small letter.
        0x100..=0x12F | 0x132..=0x137 | 0x14A..=0x177 if n % 2 == 0 => n + 1,
        0x139..=0x148 | 0x179..=0x17E if n % 2 == 1 => n + 1,
        0x178 => 0xFF,
        _ => n,
    };
    char::from_u32(lower).unwrap_or(c)
}
