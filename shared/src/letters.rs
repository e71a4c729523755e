//! Which characters are letters and digits, for the rules that need word edges (the card
//! mask, agents' `_emphasis_`): ASCII here, anything beyond by the platform's Unicode tables,
//! given as a [`Classify`]. Core's are [`core_tables`]; the widget asks the browser's, so its
//! wasm carries none (core's letter and digit tables weigh 2 KB gzipped).

/// What a character is to a word: a letter (Unicode's `Alphabetic` property), else a digit
/// (`Numeric`), else neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Alphabetic`.
    Letter,
    /// `Numeric`, and not `Alphabetic`.
    Digit,
    /// Anything else.
    Other,
}

/// Tells the [`Kind`] of a character outside ASCII by a platform's Unicode tables.
pub type Classify = fn(char) -> Kind;

/// [`Classify`] by core's Unicode tables.
pub fn core_tables(c: char) -> Kind {
    if c.is_alphabetic() {
        Kind::Letter
    } else if c.is_numeric() {
        Kind::Digit
    } else {
        Kind::Other
    }
}

/// [`Classify`] by no tables: every character outside ASCII is neither a letter nor a digit.
pub fn no_tables(_: char) -> Kind {
    Kind::Other
}

/// The [`Kind`] of `c`: ASCII's own, `classify`'s beyond.
pub fn kind(c: char, classify: Classify) -> Kind {
    match c {
        'a'..='z' | 'A'..='Z' => Kind::Letter,
        '0'..='9' => Kind::Digit,
        _ if c.is_ascii() => Kind::Other,
        _ => classify(c),
    }
}

/// Whether `c` is part of a word: a letter or a digit (`char::is_alphanumeric` by the
/// platform's tables).
pub fn is_word(c: char, classify: Classify) -> bool {
    kind(c, classify) != Kind::Other
}
