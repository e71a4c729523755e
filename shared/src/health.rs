//! Chat Server health bodies: the `app_dbid` and `process_os_pid` a restart detector needs.
//!
//! No public Genesys source describes this endpoint (the seed names the two fields), so the
//! reader finds them at any depth and accepts numbers sent as strings.

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

impl ChatServerHealth {
    /// Parses a health body.
    pub fn parse(body: &[u8]) -> Result<ChatServerHealth, HealthError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| HealthError(e.to_string()))?;
        let app_dbid = find_scalar(&value, &["app_dbid", "appDbid", "app-dbid"])
            .ok_or_else(|| HealthError("no app_dbid".to_owned()))?;
        let pid = find_scalar(&value, &["process_os_pid", "processOsPid", "process-os-pid"])
            .ok_or_else(|| HealthError("no process_os_pid".to_owned()))?;
        let process_os_pid = pid
            .parse()
            .map_err(|_| HealthError(format!("process_os_pid {pid:?} is not a number")))?;
        Ok(ChatServerHealth { app_dbid, process_os_pid })
    }
}
