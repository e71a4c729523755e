//! `application/x-www-form-urlencoded` encoding and decoding, including GMS's bracketed keys.
//!
//! GMS reads `userData[key]=value` fields; real clients send the brackets percent-encoded
//! (`userData%5Bkey%5D`), which is what the standard encoding produces.

use std::fmt::Write as _;

/// The `Content-Type` of every form GMS is sent. The charset is said: a server (or a gateway
/// before it) without it may read the bytes as ISO-8859-1 and garble every non-ASCII
/// letter. It stays a CORS-safelisted type, so a browser sends no preflight for it.
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=UTF-8";

/// Percent-encodes one key or value the way browsers encode form fields.
pub fn encode_component(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for byte in input.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(byte as char);
            }
            b' ' => out.push('+'),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}

/// Percent-encodes a URL path segment (a service name or a chat id).
pub fn encode_path_segment(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for byte in input.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char);
            }
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}

/// Encodes a list of fields as a form body, keeping their order.
pub fn encode<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)]) -> String {
    let mut out = String::new();
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&encode_component(key.as_ref()));
        out.push('=');
        out.push_str(&encode_component(value.as_ref()));
    }
    out
}

/// Why a form body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// A `%` was not followed by two hex digits.
    BadPercentEscape,
    /// The decoded bytes were not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FormError::BadPercentEscape => f.write_str("bad percent escape in form body"),
            FormError::NotUtf8 => f.write_str("form body is not UTF-8"),
        }
    }
}

impl std::error::Error for FormError {}

/// Decodes one percent-encoded component (`+` is a space).
pub fn decode_component(input: &str) -> Result<String, FormError> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or(FormError::BadPercentEscape)?;
                let hex = std::str::from_utf8(hex).map_err(|_| FormError::BadPercentEscape)?;
                let value = u8::from_str_radix(hex, 16).map_err(|_| FormError::BadPercentEscape)?;
                out.push(value);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

/// Decodes a form body into its fields, in order. Empty segments are skipped.
pub fn decode(body: &str) -> Result<Vec<(String, String)>, FormError> {
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode_component(key)?, decode_component(value)?))
        })
        .collect()
}

/// The `userData[key]` field name GMS reads for one user-data entry.
pub fn user_data_field(key: &str) -> String {
    format!("userData[{key}]")
}

/// The key inside a `userData[key]` field name, if it is one.
pub fn user_data_key(field: &str) -> Option<&str> {
    field.strip_prefix("userData[")?.strip_suffix(']')
}
