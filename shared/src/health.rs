//! Chat Server health bodies: the `app_dbid` and `process_os_pid` a restart detector needs,
//! and what one poll of a health port showed.
//!
//! No public Genesys source describes this endpoint (the seed names the two fields), so the
//! reader finds them at any depth, under names the operator can change, and accepts numbers
//! sent as strings. A success whose body lacks them is told apart from no answer: the
//! process is alive, only its identity is unknown, which must never look like an outage.

use serde_json::Value;

use crate::json_search::find_scalar;

/// The identity of one running Chat Server process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatServerHealth {
    /// The application DBID: the same value GMS returns as `alias`.
    pub app_dbid: String,
    /// The OS process id: it changes when the Chat Server restarts.
    pub process_os_pid: u64,
}

/// A health body without the fields a restart detector needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthError(pub String);

impl std::fmt::Display for HealthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unusable Chat Server health body: {}", self.0)
    }
}

impl std::error::Error for HealthError {}

/// The names of the two fields in a health body. Each is also looked for in camelCase and
/// kebab-case, as the defaults always were (`appDbid`, `app-dbid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthKeys {
    /// The application DBID's name (`app_dbid` by default).
    pub dbid: String,
    /// The process id's name (`process_os_pid` by default).
    pub pid: String,
}

impl Default for HealthKeys {
    fn default() -> HealthKeys {
        HealthKeys { dbid: "app_dbid".to_owned(), pid: "process_os_pid".to_owned() }
    }
}

/// `key` as given, in camelCase and in kebab-case, without repeats.
fn spellings(key: &str) -> Vec<String> {
    let mut camel = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' || c == '-' {
            upper = !camel.is_empty();
        } else if upper {
            camel.extend(c.to_uppercase());
            upper = false;
        } else {
            camel.push(c);
        }
    }
    let mut all = vec![key.to_owned()];
    for spelling in [camel, key.replace('_', "-")] {
        if !spelling.is_empty() && !all.contains(&spelling) {
            all.push(spelling);
        }
    }
    all
}

impl ChatServerHealth {
    /// Parses a health body with the default field names.
    pub fn parse(body: &[u8]) -> Result<ChatServerHealth, HealthError> {
        ChatServerHealth::parse_with(body, &HealthKeys::default())
    }

    /// Parses a health body whose fields carry `keys`' names.
    pub fn parse_with(body: &[u8], keys: &HealthKeys) -> Result<ChatServerHealth, HealthError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| HealthError(e.to_string()))?;
        let field = |key: &str| {
            let names = spellings(key);
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            find_scalar(&value, &names).ok_or_else(|| HealthError(format!("no {key}")))
        };
        let app_dbid = field(&keys.dbid)?;
        let pid = field(&keys.pid)?;
        let process_os_pid = pid
            .parse()
            .map_err(|_| HealthError(format!("{} {pid:?} is not a number", keys.pid)))?;
        Ok(ChatServerHealth { app_dbid, process_os_pid })
    }
}

/// What one poll of a health port showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthPoll {
    /// The process answered with its identity.
    Ok(ChatServerHealth),
    /// No answer, or an answer that is no success: the process may be gone.
    Unreachable(String),
    /// A success whose body lacks the fields: the process is up, its identity unknown.
    Unreadable(HealthError),
}

impl HealthPoll {
    /// Judges an HTTP answer of a health port.
    pub fn judge(status: u16, body: &[u8], keys: &HealthKeys) -> HealthPoll {
        if !(200..300).contains(&status) {
            return HealthPoll::Unreachable(format!("HTTP {status}"));
        }
        match ChatServerHealth::parse_with(body, keys) {
            Ok(health) => HealthPoll::Ok(health),
            Err(error) => HealthPoll::Unreadable(error),
        }
    }

    /// The poll's `result` label: `ok`, `unreachable` or `unreadable`.
    pub fn result(&self) -> &'static str {
        match self {
            HealthPoll::Ok(_) => "ok",
            HealthPoll::Unreachable(_) => "unreachable",
            HealthPoll::Unreadable(_) => "unreadable",
        }
    }
}

/// Every `result` label of a poll, for series that start at zero.
pub const POLL_RESULTS: [&str; 3] = ["ok", "unreachable", "unreadable"];

/// What a health body looks like at its top level, without a single value: for telling an
/// operator which names to give `--health-dbid-key` and `--health-pid-key` (a body may hold
/// figures they would rather not paste). Key names are quoted, so no body can forge a line.
pub fn outline(body: &[u8]) -> String {
    /// Keys named at most; a larger object is summed up.
    const KEYS: usize = 20;
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return format!("not JSON ({} bytes)", body.len());
    };
    match value {
        Value::Object(map) if map.is_empty() => "an empty JSON object".to_owned(),
        Value::Object(map) => {
            let named: Vec<String> = map
                .iter()
                .take(KEYS)
                .map(|(key, item)| format!("{key:?} ({})", kind(item)))
                .collect();
            let more = map.len().saturating_sub(KEYS);
            let rest = if more > 0 { format!(" and {more} more") } else { String::new() };
            format!("a JSON object with the keys {}{rest}", named.join(", "))
        }
        other => format!("{} at the top", kind(&other)),
    }
}

/// A JSON value's kind, in words.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(_) => "a boolean".to_owned(),
        Value::Number(_) => "a number".to_owned(),
        Value::String(_) => "a string".to_owned(),
        Value::Array(items) => format!("an array of {}", items.len()),
        Value::Object(map) => format!("an object of {} keys", map.len()),
    }
}
