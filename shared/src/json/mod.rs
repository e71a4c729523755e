//! The widget's JSON: one small reader into a tree and one writer, with the codecs of the
//! standard types and the helpers the hand-written codecs use. Each type the widget reads or
//! writes has its [`FromJson`] and [`ToJson`] next to its definition, below its serde
//! derive: the same JSON (required fields, defaults and skipped `None`s follow its serde
//! attributes), at a fraction of the derive's code in the wasm.
//!
//! serde_json with derived `Deserialize` puts a copy of its decoding code into the wasm for
//! every type, plus float parsing and error texts: about a tenth of the widget. This reader
//! is one function for every type, keeps numbers as their text (the widget reads integers
//! only, so no float code) and answers `None` for anything malformed, with no error text.
//! The relay and the tests keep serde; `json_tests.rs` checks that both agree on every type
//! the widget shares with them.

use std::collections::BTreeMap;

/// A JSON value. Numbers are kept as their text; objects keep their keys in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// A number, as written (validated against JSON's grammar).
    Number(String),
    /// A string, unescaped.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: its members in order (a repeated key: the first one counts).
    Object(Vec<(String, Json)>),
}

/// Nesting deeper than this is refused, so hostile input cannot exhaust the stack
/// (serde_json's limit too).
const MAX_DEPTH: usize = 128;

/// Reads one JSON document (surrounding whitespace allowed); `None` when it is not JSON.
pub fn parse(text: &str) -> Option<Json> {
    let mut reader = Reader { bytes: text.as_bytes(), at: 0 };
    let value = reader.value(0)?;
    reader.skip_space();
    (reader.at == reader.bytes.len()).then_some(value)
}

/// Reads `text` as a `T`; `None` when it is not JSON or not a `T`.
pub fn from_str<T: FromJson>(text: &str) -> Option<T> {
    T::from_json(&parse(text)?)
}

/// `value` as JSON text.
pub fn to_string<T: ToJson + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    value.write_json(&mut out);
    out
}

/// A type the widget reads from JSON.
pub trait FromJson: Sized {
    /// `None` when `value` does not have this type's shape.
    fn from_json(value: &Json) -> Option<Self>;
}

/// A type the widget writes as JSON.
pub trait ToJson {
    /// Appends this value's JSON to `out`.
    fn write_json(&self, out: &mut String);
}

impl Json {
    /// The member `key` of an object, unless absent or `null` (both mean "not given").
    pub fn get(&self, key: &str) -> Option<&Json> {
        let Json::Object(members) = self else { return None };
        members.iter().find(|(k, _)| k == key).map(|(_, v)| v).filter(|v| **v != Json::Null)
    }

    /// A string's text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(text) => Some(text),
            _ => None,
        }
    }

    /// The elements of an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(items) => Some(items),
            _ => None,
        }
    }

    /// A whole number that fits `T` (a fraction or an exponent is not one, as in serde).
    pub fn as_integer<T: std::str::FromStr>(&self) -> Option<T> {
        match self {
            Json::Number(text) => text.parse().ok(),
            _ => None,
        }
    }
}

/// An object, or `None`.
pub(crate) fn object(value: &Json) -> Option<&Json> {
    matches!(value, Json::Object(_)).then_some(value)
}

/// A member that must be there.
pub(crate) fn required<T: FromJson>(value: &Json, key: &str) -> Option<T> {
    T::from_json(value.get(key)?)
}

/// A member that may be absent or `null` (`Some(None)`), but not of another type (`None`).
pub(crate) fn optional<T: FromJson>(value: &Json, key: &str) -> Option<Option<T>> {
    match value.get(key) {
        None => Some(None),
        Some(member) => T::from_json(member).map(Some),
    }
}

/// A member that takes its default when absent or `null`.
pub(crate) fn or_default<T: FromJson + Default>(value: &Json, key: &str) -> Option<T> {
    Some(optional(value, key)?.unwrap_or_default())
}

impl FromJson for String {
    fn from_json(value: &Json) -> Option<Self> {
        value.as_str().map(str::to_owned)
    }
}

impl FromJson for bool {
    fn from_json(value: &Json) -> Option<Self> {
        match value {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl FromJson for u64 {
    fn from_json(value: &Json) -> Option<Self> {
        value.as_integer()
    }
}

impl FromJson for i64 {
    fn from_json(value: &Json) -> Option<Self> {
        value.as_integer()
    }
}

impl FromJson for u32 {
    fn from_json(value: &Json) -> Option<Self> {
        value.as_integer()
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: &Json) -> Option<Self> {
        value.as_array()?.iter().map(T::from_json).collect()
    }
}

/// A pair is a two-element array.
impl<A: FromJson, B: FromJson> FromJson for (A, B) {
    fn from_json(value: &Json) -> Option<Self> {
        match value.as_array()? {
            [a, b] => Some((A::from_json(a)?, B::from_json(b)?)),
            _ => None,
        }
    }
}

/// A JSON object of texts, as serde reads a map of strings: any other member refuses it.
impl FromJson for BTreeMap<String, String> {
    fn from_json(value: &Json) -> Option<Self> {
        let Json::Object(members) = value else { return None };
        // A repeated name keeps its last value, as serde_json's map does. Inserted one by
        // one: collecting into a map sorts, and the sort's code would weigh on the wasm.
        let mut map = BTreeMap::new();
        for (name, value) in members {
            map.insert(name.clone(), String::from_json(value)?);
        }
        Some(map)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn literal(&mut self, word: &[u8], value: Json) -> Option<Json> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then(|| {
            self.at = end;
            value
        })
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        self.skip_space();
        match self.peek()? {
            b'{' if depth < MAX_DEPTH => self.object(depth + 1),
            b'[' if depth < MAX_DEPTH => self.array(depth + 1),
            b'"' => self.string().map(Json::String),
            b't' => self.literal(b"true", Json::Bool(true)),
            b'f' => self.literal(b"false", Json::Bool(false)),
            b'n' => self.literal(b"null", Json::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// After `open`: nothing but whitespace and `close`, or items separated by commas.
    fn items(&mut self, close: u8, mut item: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.at += 1;
        self.skip_space();
        if self.peek() == Some(close) {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            self.skip_space();
            match self.next()? {
                b',' => {}
                byte if byte == close => return Some(()),
                _ => return None,
            }
        }
    }

    fn array(&mut self, depth: usize) -> Option<Json> {
        let mut items = Vec::new();
        self.items(b']', |r| {
            items.push(r.value(depth)?);
            Some(())
        })?;
        Some(Json::Array(items))
    }

    fn object(&mut self, depth: usize) -> Option<Json> {
        let mut members = Vec::new();
        self.items(b'}', |r| {
            r.skip_space();
            if r.peek()? != b'"' {
                return None;
            }
            let key = r.string()?;
            r.skip_space();
            if r.next()? != b':' {
                return None;
            }
            members.push((key, r.value(depth)?));
            Some(())
        })?;
        Some(Json::Object(members))
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        self.at - start
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Option<Json> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let leading_zero = self.peek() == Some(b'0');
        let whole = self.digits();
        if whole == 0 || (leading_zero && whole > 1) {
            return None;
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        Some(Json::Number(text.to_owned()))
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.bytes.get(self.at..self.at + 4)?;
        self.at += 4;
        u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }

    /// A string at `"`, unescaped. A lone surrogate escape becomes U+FFFD.
    fn string(&mut self) -> Option<String> {
        self.at += 1;
        let mut out = Vec::new();
        loop {
            match self.next()? {
                b'"' => return String::from_utf8(out).ok(),
                b'\\' => {
                    let plain = match self.next()? {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode_escape()?,
                        _ => return None,
                    };
                    out.extend_from_slice(plain.encode_utf8(&mut [0; 4]).as_bytes());
                }
                // JSON forbids raw control characters inside strings.
                0..0x20 => return None,
                byte => out.push(byte),
            }
        }
    }

    /// After `\u`: one code point, from a surrogate pair when it starts one.
    fn unicode_escape(&mut self) -> Option<char> {
        let first = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&first)
            && self.bytes.get(self.at..self.at + 2) == Some(b"\\u")
        {
            let resume = self.at;
            self.at += 2;
            match self.hex4()? {
                second @ 0xDC00..0xE000 => 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00),
                _ => {
                    self.at = resume;
                    first
                }
            }
        } else {
            first
        };
        Some(char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER))
    }
}

/// Appends `text` as a JSON string, escaped as serde_json escapes it, so both write the same
/// text for the same value.
pub fn write_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let byte = c as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xF)]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes an object member by member: `{` on creation, `}` on [`Object::end`].
pub struct Object<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Opens an object in `out`.
    pub fn new(out: &'a mut String) -> Self {
        out.push('{');
        Object { out, empty: true }
    }

    /// Adds the member `key`: `value`.
    pub fn field<T: ToJson + ?Sized>(&mut self, key: &str, value: &T) -> &mut Self {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        write_str(self.out, key);
        self.out.push(':');
        value.write_json(self.out);
        self
    }

    /// Adds the member unless `value` is `None`.
    pub fn some<T: ToJson>(&mut self, key: &str, value: Option<&T>) -> &mut Self {
        match value {
            Some(value) => self.field(key, value),
            None => self,
        }
    }

    /// Closes the object.
    pub fn end(&mut self) {
        self.out.push('}');
    }
}

/// The tree written back as JSON text (numbers as read, members in order).
impl ToJson for Json {
    fn write_json(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(value) => value.write_json(out),
            Json::Number(text) => out.push_str(text),
            Json::String(text) => write_str(out, text),
            Json::Array(items) => items.write_json(out),
            Json::Object(members) => {
                let mut object = Object::new(out);
                for (key, value) in members {
                    object.field(key, value);
                }
                object.end();
            }
        }
    }
}

impl ToJson for str {
    fn write_json(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for String {
    fn write_json(&self, out: &mut String) {
        write_str(out, self);
    }
}

impl ToJson for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

macro_rules! integer_to_json {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut String) {
                out.push_str(&self.to_string());
            }
        }
    )*};
}
integer_to_json!(u64, i64, u32);

/// `None` is `null`, as serde writes an `Option` it does not skip.
impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(value) => value.write_json(out),
            None => out.push_str("null"),
        }
    }
}

impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, item) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            item.write_json(out);
        }
        out.push(']');
    }
}

impl ToJson for BTreeMap<String, String> {
    fn write_json(&self, out: &mut String) {
        let mut object = Object::new(out);
        for (key, value) in self {
            object.field(key, value);
        }
        object.end();
    }
}
