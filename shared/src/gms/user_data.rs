//! The user data that makes a chat asynchronous and subscribes it to customhttp push.

/// How a chat subscribes to GMS push. Built once from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// `GCTI_GMS_PushDeviceId`: the random id the widget keeps in localStorage.
    pub device_id: String,
    /// `GCTI_GMS_NodeGroup`: the GMS cluster node group (omitted when empty).
    pub node_group: String,
    /// `GCTI_GMS_PushIncludePayload`: push carries the new events.
    pub include_payload: bool,
    /// `GCTI_GMS_PushResend`: Chat Server resends until acknowledged.
    pub resend: bool,
    /// `GCTI_GMS_PushProvider`: a named GMS push provider, if the deployment uses one.
    pub provider: Option<String>,
}

impl PushSubscription {
    /// The subscription the design asks for: payload and resend on.
    pub fn new(device_id: impl Into<String>, node_group: impl Into<String>) -> Self {
        PushSubscription {
            device_id: device_id.into(),
            node_group: node_group.into(),
            include_payload: true,
            resend: true,
            provider: None,
        }
    }
}

/// The `userData` entries of an async chat with customhttp push, in a stable order.
pub fn async_push_user_data(subscription: &PushSubscription) -> Vec<(String, String)> {
    let flag = |on: bool| if on { "true" } else { "false" }.to_owned();
    let mut data = vec![
        ("GCTI_Chat_AsyncMode".to_owned(), "true".to_owned()),
        ("GCTI_Chat_PushSubscribe".to_owned(), "true".to_owned()),
        ("GCTI_GMS_PushDeviceType".to_owned(), "customhttp".to_owned()),
        ("GCTI_GMS_PushDeviceId".to_owned(), subscription.device_id.clone()),
    ];
    if !subscription.node_group.is_empty() {
        data.push(("GCTI_GMS_NodeGroup".to_owned(), subscription.node_group.clone()));
    }
    data.push(("GCTI_GMS_PushIncludePayload".to_owned(), flag(subscription.include_payload)));
    data.push(("GCTI_GMS_PushResend".to_owned(), flag(subscription.resend)));
    if let Some(provider) = &subscription.provider {
        data.push(("GCTI_GMS_PushProvider".to_owned(), provider.clone()));
    }
    data
}
