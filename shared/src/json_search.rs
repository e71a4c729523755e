//! Breadth-first search of JSON trees, so tolerant parsers find a key at any depth and
//! prefer the shallowest occurrence; and the decoding of JSON that a sender put into a
//! string, so the search finds it too.

use serde_json::Value;

/// Deepest level searched: deeper input is ignored, so hostile nesting cannot cost much.
pub(crate) const MAX_DEPTH: usize = 8;

/// Encodings of JSON inside a JSON string that are read: one is GMS serialising its payload
/// into a string value, two is something on the way serialising the body once more. A third
/// is no layout anyone sends, only work for a hostile body (each encoding doubles the
/// escapes), so it stays text. Every decoded string is at most as long as the body, so a
/// body costs at most three parses.
pub(crate) const MAX_STRING_DECODES: usize = 2;

/// A copy of `root` in which every string that holds a JSON object or array, down to the
/// search depth, is replaced by what it holds (up to `MAX_STRING_DECODES` encodings deep); the
/// decoded value takes the string's place, so its depth is the string's. Under an `opaque`
/// key only the value itself is decoded, never the strings inside it: those are free text
/// (an event's words), which must not be able to name a chat or its tokens.
pub(crate) fn decode_strings(root: &Value, opaque: &[&str]) -> Value {
    expand(root, 0, MAX_STRING_DECODES, opaque)
}

fn expand(value: &Value, depth: usize, decodes: usize, opaque: &[&str]) -> Value {
    if depth >= MAX_DEPTH {
        return value.clone();
    }
    match value {
        Value::String(text) if decodes > 0 => match decoded(text) {
            Some(inner) => expand(&inner, depth, decodes - 1, opaque),
            None => value.clone(),
        },
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| {
                    let item = if opaque.contains(&key.as_str()) {
                        match item {
                            Value::String(text) if decodes > 0 => {
                                decoded(text).unwrap_or_else(|| item.clone())
                            }
                            _ => item.clone(),
                        }
                    } else {
                        expand(item, depth + 1, decodes, opaque)
                    };
                    (key.clone(), item)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items.iter().map(|item| expand(item, depth + 1, decodes, opaque)).collect(),
        ),
        _ => value.clone(),
    }
}

/// The object or array a string holds, if it holds one (serde_json bounds its nesting).
pub(crate) fn decoded(text: &str) -> Option<Value> {
    let trimmed = text.trim_start();
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<Value>(text).ok().filter(|v| v.is_object() || v.is_array())
}

/// The shallowest value stored under any of `keys`, for which `accept` is true.
pub(crate) fn find<'a>(
    root: &'a Value,
    keys: &[&str],
    accept: impl Fn(&Value) -> bool,
) -> Option<&'a Value> {
    let mut level: Vec<&Value> = vec![root];
    for _ in 0..MAX_DEPTH {
        let mut deeper = Vec::new();
        for value in level {
            match value {
                Value::Object(map) => {
                    for key in keys {
                        if let Some(found) = map.get(*key).filter(|v| accept(v)) {
                            return Some(found);
                        }
                    }
                    deeper.extend(map.values());
                }
                Value::Array(items) => deeper.extend(items),
                _ => {}
            }
        }
        if deeper.is_empty() {
            return None;
        }
        level = deeper;
    }
    None
}

/// The shallowest scalar under any of `keys`, as a string (numbers are accepted for ids).
pub(crate) fn find_scalar(root: &Value, keys: &[&str]) -> Option<String> {
    find(root, keys, |v| scalar(v).is_some()).and_then(scalar)
}

/// A string or number as a trimmed, non-empty string.
pub(crate) fn scalar(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// Whether any string in the tree satisfies `predicate` (keys and values, bounded depth).
pub(crate) fn any_string(root: &Value, predicate: &impl Fn(&str, &str) -> bool) -> bool {
    fn walk(value: &Value, key: &str, depth: usize, p: &impl Fn(&str, &str) -> bool) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        match value {
            Value::String(s) => p(key, s),
            Value::Object(map) => map.iter().any(|(k, v)| walk(v, k, depth + 1, p)),
            Value::Array(items) => items.iter().any(|v| walk(v, key, depth + 1, p)),
            _ => false,
        }
    }
    walk(root, "", 0, predicate)
}
