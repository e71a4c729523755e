//! Breadth-first search of JSON trees, so tolerant parsers find a key at any depth and
//! prefer the shallowest occurrence.

use serde_json::Value;

/// Deepest level searched: deeper input is ignored, so hostile nesting cannot cost much.
pub(crate) const MAX_DEPTH: usize = 8;

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
