//! Fixture tests: the real captured bodies from the protocol reference, both directions;
//! tolerance of unknown fields and types; malformed input never panics.

mod fixtures;
mod format_tests;
mod gms_tests;
mod health_tests;
mod json_tests;
mod mask_tests;
mod policy_tests;
mod protocol_doc;
mod proxy_tests;
mod push_tests;
mod rich_tests;
mod transcript_tests;
mod visitor_chat_tests;
mod visitor_embed_tests;
mod visitor_hours_tests;
mod visitor_identity_tests;
mod visitor_notify_tests;
mod visitor_proxy_tests;
mod visitor_receipt_tests;
mod visitor_survey_tests;
mod visitor_tests;
