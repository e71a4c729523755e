//! The expected wait: GMS's estimated wait time (EWT) APIs as the relay asks them, their
//! answers read tolerantly, and the minutes a visitor is shown.
//!
//! Genesys documents the requests ([Widgets' StatsService and EWT](https://docs.genesys.com/Documentation:GWC:WidgetsAPI:SSEWT:Current)):
//! v1 `GET /genesys/1/service/ewt-for-vq?name=<vq>&aqt=<urs|urs2|stat>`, v2
//! `GET /genesys/2/ewt/<ewt1|ewt2|ewt3>?vq=<vq,...>`, in seconds; not the answers' exact
//! shape. Seen and accepted: a bare number, `{"<vq>": n}`, `{"<vq>": {"ewt": n}}`,
//! `{"ewt": n}`, `{"data": {"ewt": n}}` and `{"data": [{"virtualQueue": "<vq>",
//! "estimatedWaitTime": n}]}`; a negative number (GES answers -1 for an error) is none.

use serde_json::Value;

/// Which EWT API the relay asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EwtApi {
    /// `/genesys/1/service/ewt-for-vq?name=<vq>&aqt=urs2`.
    V1,
    /// `/genesys/2/ewt/ewt2?vq=<vq>`.
    V2,
}

impl EwtApi {
    /// The request's path and query for one virtual queue.
    pub fn path(self, queue: &str) -> String {
        let queue = crate::form::encode_component(queue);
        match self {
            EwtApi::V1 => format!("/genesys/1/service/ewt-for-vq?name={queue}&aqt=urs2"),
            EwtApi::V2 => format!("/genesys/2/ewt/ewt2?vq={queue}"),
        }
    }
}

/// The estimated wait for `queue`, in whole seconds, from an EWT answer; None when the
/// answer holds nothing usable.
pub fn wait_seconds(answer: &Value, queue: &str) -> Option<u64> {
    let seconds = |value: &Value| -> Option<u64> {
        let value = match value {
            Value::Object(fields) => {
                fields.get("ewt").or_else(|| fields.get("estimatedWaitTime"))?
            }
            other => other,
        };
        let number = value.as_f64().or_else(|| value.as_str()?.trim().parse().ok())?;
        // Whole seconds, rounded up: 0.999 waits a second, not none.
        (0.0..1e9).contains(&number).then(|| number.ceil() as u64)
    };
    if let Some(found) = seconds(answer) {
        return Some(found);
    }
    let fields = answer.as_object()?;
    if let Some(found) = fields.get(queue).and_then(seconds) {
        return Some(found);
    }
    match fields.get("data")? {
        Value::Array(rows) => rows
            .iter()
            .find(|row| row.get("virtualQueue").and_then(Value::as_str) == Some(queue))
            .and_then(seconds),
        data => seconds(data),
    }
}

/// The minutes shown for a wait: rounded up, at least one.
pub fn minutes(seconds: u64) -> u64 {
    seconds.div_ceil(60).max(1)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{EwtApi, minutes, wait_seconds};

    #[test]
    fn every_documented_or_seen_shape_reads_and_nothing_else_does() {
        for answer in [
            json!(240),
            json!("240"),
            json!({"chat_vq": 240}),
            json!({"chat_vq": {"ewt": 239.2}}),
            json!({"ewt": 240}),
            json!({"data": {"ewt": 240}}),
            json!({"data": [{"virtualQueue": "other", "estimatedWaitTime": 5},
                            {"virtualQueue": "chat_vq", "estimatedWaitTime": 240}]}),
        ] {
            assert_eq!(wait_seconds(&answer, "chat_vq"), Some(240), "{answer}");
        }
        for answer in [
            json!(-1),
            json!({"data": [{"virtualQueue": "chat_vq", "estimatedWaitTime": -1}]}),
            json!({"other": 240}),
            json!({"ewt": "soon"}),
            json!(null),
            json!([]),
            json!(1e300),
        ] {
            assert_eq!(wait_seconds(&answer, "chat_vq"), None, "{answer}");
        }
    }

    #[test]
    fn minutes_round_up_and_the_paths_name_the_queue() {
        assert_eq!(
            (minutes(0), minutes(1), minutes(60), minutes(61), minutes(240)),
            (1, 1, 1, 2, 4)
        );
        assert_eq!(EwtApi::V2.path("chat vq"), "/genesys/2/ewt/ewt2?vq=chat+vq");
        assert_eq!(EwtApi::V1.path("q"), "/genesys/1/service/ewt-for-vq?name=q&aqt=urs2");
    }
}
