//! The widget's configuration, as the host page gives it.
//!
//! A site embeds the widget with one tag, `<script src=".../widget.js" async data-...>`,
//! whose `data-*` attributes are these fields in kebab case; a
//! `<script type="application/json" id="gms-chat-config">` element holding this JSON works
//! too. The loader checks both (and `theme` and `position`, which only it uses) and hands
//! the widget this JSON. Every field has a default; the relay's defaults to the loader's
//! own origin, GMS's to the page's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::gms::{GmsHeader, checked_headers};
use crate::json::{FromJson, Json, object, optional};

/// The id of the host page element that holds the configuration JSON.
pub const CONFIG_ELEMENT_ID: &str = "gms-chat-config";

/// What the host page tells the widget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WidgetConfig {
    /// GMS base URL (scheme, host, port); empty means the page's origin.
    pub gms_url: String,
    /// The GMS chat service name (`chat.<service>` in GMS options).
    pub service: String,
    /// The relay's base URL; empty means the page's origin.
    pub relay_url: String,
    /// `GCTI_GMS_NodeGroup` for push subscriptions; empty leaves it out.
    pub node_group: String,
    /// The panel's title.
    pub title: String,
    /// BCP 47 language of the widget's texts.
    pub language: String,
    /// While the page stays open, how often the widget refreshes anyway (seconds), so GMS
    /// sees an idle visitor as present. Lower it only to measure, never below GMS's own
    /// idle timers' needs.
    pub idle_refresh_seconds: u32,
    /// The site's service worker for Web Push (the one-line file that imports the relay's
    /// `gms-chat-sw.js`), on the page's own origin; empty: no notifications are offered.
    pub service_worker: String,
    /// Days an ended chat's transcript stays in the visitor's browser (its tokens go when
    /// it ends); 0 removes it on the next page load that runs the widget.
    pub keep_ended_days: u32,
    /// Extra headers (name → value) sent with every GMS request, uploads and downloads
    /// included, such as the `apikey` an API gateway in front of GMS asks for. They make
    /// those requests non-simple: GMS or its gateway must answer the CORS preflight.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub gms_headers: BTreeMap<String, String>,
    /// The site's logged-in visitor (`data-user-id`); used only with `user_hash`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    /// `data-user-hash`: the hex HMAC-SHA256 of `user_id` that the relay verifies.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user_hash: String,
    /// `maskPatterns`: what is hidden from the visitor's lines before they are sent
    /// (`shared::mask`); absent: card numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask_patterns: Option<Vec<String>>,
    /// The token of the resume link that opened the page (the loader takes it from the
    /// URL's fragment, never from a setting).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub resume: String,
    /// The relay is in proxy mode (`--gms-proxy`): the widget reaches GMS only through it
    /// and keeps no GMS token. Only the loader the relay renders sets it, never a page.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy: bool,
    /// `closedMode`: while the office is closed (the relay's `--office-hours`), visitors may
    /// still start a chat that is answered once it opens (`write`), or may not (`refuse`).
    pub closed_mode: ClosedMode,
    /// `survey`: the rating offered when a chat ends: `stars` (1 to 5), `thumbs`, or `off`.
    pub survey: SurveyKind,
    /// `surveyUrl`: the site's own survey, linked from the rating with `{chatId}` filled
    /// in; empty: none.
    pub survey_url: String,
    /// The relay takes ratings after the chat ended (`--survey-webhook`). Only the loader
    /// the relay renders sets it, never a page.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub surveys: bool,
}

/// The rating offered when a chat ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SurveyKind {
    /// One to five stars.
    #[default]
    Stars,
    /// Thumbs up or down.
    Thumbs,
    /// No survey.
    Off,
}

impl SurveyKind {
    /// Its scale's name in the answer.
    pub fn scale(self) -> &'static str {
        match self {
            SurveyKind::Thumbs => "thumbs",
            SurveyKind::Stars | SurveyKind::Off => "stars",
        }
    }
}

/// What the widget does while the office is closed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClosedMode {
    /// Chats start, and are answered once the office opens.
    #[default]
    Write,
    /// No chat starts while closed.
    Refuse,
}

impl FromJson for WidgetConfig {
    fn from_json(value: &Json) -> Option<Self> {
        let v = object(value)?;
        let d = WidgetConfig::default();
        let or = |key: &str, default: String| Some(optional(v, key)?.unwrap_or(default));
        Some(WidgetConfig {
            gms_url: or("gmsUrl", d.gms_url)?,
            service: or("service", d.service)?,
            relay_url: or("relayUrl", d.relay_url)?,
            node_group: or("nodeGroup", d.node_group)?,
            title: or("title", d.title)?,
            language: or("language", d.language)?,
            idle_refresh_seconds: optional(v, "idleRefreshSeconds")?
                .unwrap_or(d.idle_refresh_seconds),
            service_worker: or("serviceWorker", d.service_worker)?,
            keep_ended_days: optional(v, "keepEndedDays")?.unwrap_or(d.keep_ended_days),
            gms_headers: optional(v, "gmsHeaders")?.unwrap_or(d.gms_headers),
            user_id: or("userId", d.user_id)?,
            user_hash: or("userHash", d.user_hash)?,
            resume: or("resume", d.resume)?,
            mask_patterns: optional(v, "maskPatterns")?,
            // Anything but `true` (an unrendered loader's placeholder) is direct mode.
            proxy: v.get("proxy").and_then(bool::from_json).unwrap_or(false),
            closed_mode: match v.get("closedMode") {
                Some(Json::String(mode)) if mode == "refuse" => ClosedMode::Refuse,
                _ => ClosedMode::Write,
            },
            survey: match v.get("survey") {
                Some(Json::String(kind)) if kind == "thumbs" => SurveyKind::Thumbs,
                Some(Json::String(kind)) if kind == "off" => SurveyKind::Off,
                _ => SurveyKind::Stars,
            },
            survey_url: or("surveyUrl", d.survey_url)?,
            surveys: v.get("surveys").and_then(bool::from_json).unwrap_or(false),
        })
    }
}

impl Default for WidgetConfig {
    fn default() -> Self {
        WidgetConfig {
            gms_url: String::new(),
            service: "customer-support".to_owned(),
            relay_url: String::new(),
            node_group: String::new(),
            title: "Chat with us".to_owned(),
            language: "en".to_owned(),
            idle_refresh_seconds: 1800,
            service_worker: String::new(),
            keep_ended_days: 7,
            gms_headers: BTreeMap::new(),
            user_id: String::new(),
            user_hash: String::new(),
            resume: String::new(),
            mask_patterns: None,
            proxy: false,
            closed_mode: ClosedMode::Write,
            survey: SurveyKind::Stars,
            survey_url: String::new(),
            surveys: false,
        }
    }
}

impl WidgetConfig {
    /// The pre-filter of the visitor's lines the site asked for, telling letters and digits
    /// outside ASCII by `classify`.
    pub fn mask(&self, classify: crate::letters::Classify) -> crate::mask::Mask {
        use crate::mask::Mask;
        self.mask_patterns
            .as_deref()
            .map_or_else(|| Mask::card(classify), |p| Mask::of(p, classify))
    }

    /// The site's logged-in visitor, when the page names both the id and its hash.
    pub fn identity(&self) -> Option<crate::relay_api::Identity> {
        (!self.user_id.is_empty() && !self.user_hash.is_empty()).then(|| {
            crate::relay_api::Identity {
                user_id: self.user_id.clone(),
                user_hash: self.user_hash.clone(),
            }
        })
    }

    /// Reads the host page's JSON. Missing keys take their defaults and an unreadable
    /// document gives the defaults, so a broken host page still gets a working widget.
    pub fn from_json(text: &str) -> WidgetConfig {
        crate::json::from_str(text).unwrap_or_default()
    }

    /// Checks `gms_headers` once, at start: keeps the valid ones (trimmed, as they are
    /// sent) and answers each invalid one's problem, which never holds its value. A
    /// page's mistake then costs that header, not the widget.
    pub fn check_gms_headers(&mut self) -> Vec<String> {
        let (valid, problems) = checked_headers(&self.gms_headers);
        // Inserted one by one: collecting into a map sorts, and the sort weighs on the wasm.
        self.gms_headers.clear();
        for GmsHeader { name, value } in valid {
            self.gms_headers.insert(name, value);
        }
        problems
    }

    /// How long an ended chat's transcript is kept.
    pub fn keep_ended(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.keep_ended_days) * 86_400)
    }

    /// Puts this configuration in a page's configuration element, adding the element at
    /// the end of `<head>` when the page has none. `None` when the page has neither.
    pub fn embed_in(&self, page: &str) -> Option<String> {
        // `</` cannot appear inside a script element, so it is escaped in the JSON.
        let json = serde_json::to_string(self).ok()?.replace("</", "<\\/");
        let marker = format!("id=\"{CONFIG_ELEMENT_ID}\"");
        let Some(element) = page.find(&marker) else {
            let head = page.find("</head>")?;
            let element = format!(
                "<script type=\"application/json\" id=\"{CONFIG_ELEMENT_ID}\">{json}</script>\n"
            );
            return Some(format!("{}{element}{}", &page[..head], &page[head..]));
        };
        let content_start = element + page[element..].find('>')? + 1;
        let content_end = content_start + page[content_start..].find("</script>")?;
        Some(format!("{}{json}{}", &page[..content_start], &page[content_end..]))
    }
}
