//! The chat record and the one merge rule every writer of records goes through: what the
//! relay keeps per chat (`ChatRecord`), what a push, a registration or a ping learned of it
//! (`Observation`, from a `Source`), and the clock of observations (`now_millis`).

use serde::{Deserialize, Serialize};
use shared::gms::Credentials;

/// What the relay keeps per chat: enough to acknowledge, ping and restore it.
/// This is the store's own format (JSON values), not a wire type; fields added later have
/// defaults so older records still load.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRecord {
    /// The GMS chat service.
    pub service: String,
    /// chatId, userId, secureKey and the latest alias, as GMS last accepted them.
    pub credentials: Credentials,
    /// `GCTI_GMS_PushDeviceId`, when known.
    #[serde(default)]
    pub device_id: Option<String>,
    /// The highest `nextPosition` seen.
    #[serde(default)]
    pub position: u64,
    /// When the stored alias was observed (ms since the Unix epoch): an older observation
    /// never replaces it.
    #[serde(default)]
    pub alias_seen_at: u64,
    /// When a widget last registered the chat, or it was first seen (ms since the Unix
    /// epoch): orders a device's chats.
    #[serde(default)]
    pub registered_at: u64,
    /// userId, secureKey and alias a push carried that differ from the accepted ones. They
    /// are tried only if GMS refuses the accepted ones, and replace them once GMS accepts
    /// them, so one wrong push can neither make the relay forget a running chat nor move it
    /// (and its browsers) to another Chat Server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposed: Option<ProposedTokens>,
    /// The highest position the chat's browsers have been told of: by a push's frame, a
    /// registration, or a `changed` frame. A ping that finds more says so.
    #[serde(default)]
    pub announced: u64,
    /// Counts the record's committed versions (1 for the first). Relays sharing a store
    /// write a record only over the version they read, so no node overwrites another's
    /// change with a stale copy.
    #[serde(default)]
    pub revision: u64,
    /// The browser to notify by Web Push while no browser follows the chat (the visitor
    /// opted in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub web_push: Option<Box<WebPushSubscription>>,
    /// When the subscription was last set or removed (ms since the Unix epoch): an older
    /// change never replaces a newer one.
    #[serde(default)]
    pub web_push_at: u64,
    /// When GMS first refused the accepted tokens without saying the chat ended (ms since
    /// the Unix epoch; 0: not refused since GMS last accepted them). GMS documents
    /// statusCode 2 as "the chat may have ended": a chat is forgotten only when a second
    /// refusal comes long enough after this one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub refused_at: u64,
    /// `relay check --capture` registered the chat: the first push body for it is kept,
    /// redacted (`capture`). In the record so whichever relay takes the push knows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub capture: bool,
    /// The verified identity the chat runs under: the site's user hash (lowercase hex of
    /// HMAC-SHA256 of its user id under `--identity-secret`), never the user id. In the
    /// record so every relay can hand the chat over to the identity's other devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_hash: Option<String>,
    /// When a registration last named that identity (ms since the Unix epoch): the
    /// identity's newest is its running chat.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub identified_at: u64,
    /// What the chat's resume tokens are made under: random when the record is made (so
    /// a chat forgotten and registered again does not bring back the links revoked before),
    /// one more on every revocation of them all.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resume_epoch: u64,
}

#[allow(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if takes a reference"
)]
fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// A browser's Web Push subscription for one chat.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebPushSubscription {
    /// The push service URL (it identifies the browser: kept out of logs).
    pub endpoint: String,
    /// The browser's P-256 public key, base64url.
    pub p256dh: String,
    /// The browser's authentication secret, base64url.
    pub auth: String,
    /// The page a click on a notification opens.
    #[serde(default)]
    pub page: Option<String>,
    /// The titles in the visitor's language.
    #[serde(default)]
    pub texts: shared::relay_api::NotificationTexts,
    /// The chat's position when the visitor opted in: nothing before it is notified.
    #[serde(default)]
    pub since: u64,
}

impl std::fmt::Debug for WebPushSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebPushSubscription").field("since", &self.since).finish_non_exhaustive()
    }
}

/// Tokens a push proposed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposedTokens {
    pub user_id: String,
    pub secure_key: String,
    /// Empty: the accepted alias (records from before pushes proposed aliases).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alias: String,
}

// Records hold the secure key: their Debug form names the chat and nothing secret.
impl std::fmt::Debug for ChatRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatRecord")
            .field("chat_id", &self.credentials.chat_id)
            .field("alias", &self.credentials.alias)
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

/// Where an observation of a chat comes from, which decides how far it is trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// GMS accepted these tokens: a widget's registration, or a ping that used them.
    Gms,
    /// A push: its tokens are not verified until GMS accepts them.
    Push,
}

/// What one source learned about a chat at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// When it was learned (ms since the Unix epoch); for a GMS answer, when it was asked.
    pub at: u64,
    pub source: Source,
    /// The service, known from a registration only.
    pub service: Option<String>,
    pub user_id: Option<String>,
    pub secure_key: Option<String>,
    pub alias: Option<String>,
    pub device_id: Option<String>,
    pub position: Option<u64>,
    /// A widget registered the chat now: it becomes its device's most recent chat.
    pub registration: bool,
    /// The browsers have been told of the chat up to this position.
    pub announced: Option<u64>,
    /// The visitor turned Web Push on (`Some(Some(..))`) or off (`Some(None)`).
    pub web_push: Option<Option<Box<WebPushSubscription>>>,
    /// GMS refused the tokens (statusCode 2) without saying the chat ended.
    pub refused: bool,
    /// A registration asked for the first push body to be kept (`relay check --capture`).
    pub capture: bool,
    /// A registration named this verified identity (its user hash).
    pub user_hash: Option<String>,
    /// The visitor revoked every resume link of the chat.
    pub revoke_resume: bool,
}

impl Observation {
    /// An observation with nothing in it yet.
    pub fn new(at: u64, source: Source) -> Observation {
        Observation {
            at,
            source,
            service: None,
            user_id: None,
            secure_key: None,
            alias: None,
            device_id: None,
            position: None,
            registration: false,
            announced: None,
            web_push: None,
            refused: false,
            capture: false,
            user_hash: None,
            revoke_resume: false,
        }
    }
}

impl ChatRecord {
    /// A record for a chat first observed, when the observation carries its secure key
    /// (with `userId` and `alias` when GMS gave them); `service` when it names none.
    pub fn create(chat_id: &str, seen: &Observation, service: &str) -> Option<ChatRecord> {
        let mut record = ChatRecord {
            service: seen.service.clone().unwrap_or_else(|| service.to_owned()),
            credentials: Credentials {
                chat_id: chat_id.to_owned(),
                // GMS 8.5.112 and later may hand out no userId and no alias.
                user_id: seen.user_id.clone().unwrap_or_default(),
                secure_key: seen.secure_key.clone().filter(|key| !key.is_empty())?,
                alias: seen.alias.clone().unwrap_or_default(),
            },
            device_id: seen.device_id.clone(),
            position: seen.position.unwrap_or(0),
            alias_seen_at: seen.at,
            registered_at: seen.at,
            proposed: None,
            announced: 0,
            revision: 0,
            web_push: None,
            web_push_at: 0,
            refused_at: 0,
            capture: false,
            user_hash: None,
            identified_at: 0,
            resume_epoch: rand::random(),
        };
        // Nothing to compare a push's tokens with: GMS's answer to the ping decides.
        record.merge(&Observation { source: Source::Gms, ..seen.clone() });
        Some(record)
    }

    /// The one merge rule: the position only grows, the alias follows the newest GMS
    /// answer, tokens and alias change only once GMS has accepted them (a push's are kept
    /// as a proposal). Answers whether the record changed.
    pub fn merge(&mut self, seen: &Observation) -> bool {
        let before = self.clone();
        if let Some(position) = seen.position {
            self.position = self.position.max(position);
        }
        if let Some(announced) = seen.announced {
            self.announced = self.announced.max(announced);
        }
        // Only a different alias moves `alias_seen_at`: every acknowledging ping confirms
        // the alias, and a write for each would double the commits per push. (What is given
        // up: an answer older than that confirmation but newer than the stored one could
        // still set an older alias; the acker asks one ping per chat at a time, so only a
        // GMS answering out of its own order could give one.)
        if let Some(alias) = seen.alias.as_ref().filter(|_| seen.source == Source::Gms)
            && *alias != self.credentials.alias
            && seen.at >= self.alias_seen_at
        {
            self.credentials.alias.clone_from(alias);
            self.alias_seen_at = seen.at;
        }
        if let Some(service) = &seen.service {
            self.service.clone_from(service);
        }
        if let Some(change) = &seen.web_push
            && seen.at >= self.web_push_at
        {
            self.web_push.clone_from(change);
            self.web_push_at = seen.at;
        }
        let user_id = seen.user_id.clone().unwrap_or_else(|| self.credentials.user_id.clone());
        let secure_key =
            seen.secure_key.clone().unwrap_or_else(|| self.credentials.secure_key.clone());
        let alias = seen.alias.clone().unwrap_or_else(|| self.credentials.alias.clone());
        let same_tokens = user_id == self.credentials.user_id
            && secure_key == self.credentials.secure_key
            && alias == self.credentials.alias;
        match seen.source {
            Source::Gms => {
                self.credentials.user_id = user_id;
                self.credentials.secure_key = secure_key;
                if self.proposed.as_ref().is_some_and(|p| {
                    p.user_id == self.credentials.user_id
                        && p.secure_key == self.credentials.secure_key
                }) || seen.registration
                {
                    self.proposed = None;
                }
            }
            Source::Push if !same_tokens => {
                self.proposed = Some(ProposedTokens { user_id, secure_key, alias });
            }
            Source::Push => {}
        }
        if seen.refused {
            if self.refused_at == 0 {
                self.refused_at = seen.at;
            }
        } else if seen.source == Source::Gms && seen.secure_key.is_some() {
            // GMS accepted tokens again: an earlier refusal was a passing one.
            self.refused_at = 0;
        }
        // Asked once, kept for the chat's life: a later registration without it (the widget's)
        // does not take it back.
        self.capture |= seen.capture;
        // The identity a registration names (a verified one only reaches here) becomes the
        // chat's; a registration naming none leaves it, as an older widget's would.
        if let Some(hash) = &seen.user_hash
            && (self.user_hash.as_ref() != Some(hash) || seen.at > self.identified_at)
        {
            self.user_hash = Some(hash.clone());
            self.identified_at = self.identified_at.max(seen.at);
        }
        if seen.revoke_resume {
            self.resume_epoch = self.resume_epoch.wrapping_add(1);
        }
        if seen.registration {
            self.registered_at = self.registered_at.max(seen.at);
            if seen.device_id.is_some() {
                self.device_id.clone_from(&seen.device_id);
            }
        } else if self.device_id.is_none() {
            self.device_id.clone_from(&seen.device_id);
        }
        *self != before
    }

    /// Whether a refusal of the tokens at `at` confirms an earlier one at least `apart`
    /// before it: only then is the chat taken to be over (GMS said neither `chatEnded` nor
    /// anything else to tell a passing refusal, as during a move between Chat Servers,
    /// from a final one).
    pub fn refusal_confirmed(&self, at: u64, apart: std::time::Duration) -> bool {
        let apart = u64::try_from(apart.as_millis()).unwrap_or(u64::MAX);
        self.refused_at != 0 && at.saturating_sub(self.refused_at) >= apart
    }

    /// The proposed tokens as credentials, to try when GMS refuses the accepted ones.
    pub fn proposed_credentials(&self) -> Option<Credentials> {
        let proposed = self.proposed.as_ref()?;
        let alias = match proposed.alias.as_str() {
            "" => self.credentials.alias.clone(),
            alias => alias.to_owned(),
        };
        Some(Credentials {
            user_id: proposed.user_id.clone(),
            secure_key: proposed.secure_key.clone(),
            alias,
            ..self.credentials.clone()
        })
    }
}

/// Now, in ms since the Unix epoch: the clock of observations, comparable across restarts.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::{ChatRecord, Observation, Source};

    fn gms(at: u64) -> Observation {
        Observation::new(at, Source::Gms)
    }

    fn record() -> ChatRecord {
        let seen = Observation {
            user_id: Some("U".into()),
            secure_key: Some("K".into()),
            alias: Some("117".into()),
            position: Some(5),
            registration: true,
            ..gms(100)
        };
        ChatRecord::create("C", &seen, "svc").expect("every token")
    }

    #[test]
    fn the_newest_web_push_change_wins_whatever_order_they_land_in() {
        let subscription = super::WebPushSubscription {
            endpoint: "https://push.example/1".into(),
            p256dh: "key".into(),
            auth: "auth".into(),
            page: None,
            texts: shared::relay_api::NotificationTexts::default(),
            since: 5,
        };
        let mut r = record();
        let on = Observation { web_push: Some(Some(Box::new(subscription.clone()))), ..gms(300) };
        let off = Observation { web_push: Some(None), ..gms(400) };
        assert!(r.merge(&off));
        assert!(!r.merge(&on), "turned off after it was turned on");
        assert_eq!(r.web_push, None);
        let mut other = record();
        // Records are made with random resume epochs.
        other.resume_epoch = r.resume_epoch;
        assert!(other.merge(&on) && other.merge(&off));
        assert_eq!(other, r);
        assert!(r.merge(&Observation { web_push: Some(Some(Box::new(subscription))), ..gms(500) }));
        r.merge(&Observation { position: Some(9), ..gms(600) });
        assert!(r.web_push.is_some(), "other observations leave it alone");
    }

    #[test]
    fn the_position_never_moves_back() {
        let mut r = record();
        assert!(!r.merge(&Observation { position: Some(3), ..gms(200) }));
        assert!(r.merge(&Observation { position: Some(9), ..gms(50) }));
        assert_eq!(r.position, 9);
    }

    #[test]
    fn what_the_browsers_were_told_never_moves_back_and_a_ping_alone_tells_them_nothing() {
        let mut r = record();
        assert!(r.merge(&Observation { position: Some(9), ..gms(200) }));
        assert_eq!((r.position, r.announced), (9, 0), "a ping found more than was told");
        let push = Observation { position: Some(7), announced: Some(7), ..gms(300) };
        assert!(r.merge(&Observation { source: Source::Push, ..push }));
        assert!(!r.merge(&Observation { announced: Some(4), ..gms(400) }));
        assert_eq!((r.position, r.announced), (9, 7));
    }

    #[test]
    fn a_ping_that_finds_what_is_stored_changes_nothing_to_write() {
        // Every acknowledgement's ping confirms the tokens and the alias: a write for each
        // would double the commits per push.
        let mut r = record();
        let ping = Observation {
            user_id: Some("U".into()),
            secure_key: Some("K".into()),
            alias: Some("117".into()),
            position: Some(5),
            ..gms(300)
        };
        assert!(!r.merge(&ping));
        assert_eq!(r.alias_seen_at, 100);
    }

    #[test]
    fn the_alias_follows_the_newest_observation_only() {
        let mut r = record();
        assert!(r.merge(&Observation { alias: Some("118".into()), ..gms(300) }));
        // A ping asked before that push answers later with what it saw then.
        assert!(!r.merge(&Observation { alias: Some("117".into()), ..gms(250) }));
        assert_eq!((r.credentials.alias.as_str(), r.alias_seen_at), ("118", 300));
    }

    #[test]
    fn tokens_from_a_push_wait_for_gms_to_accept_them() {
        let mut r = record();
        let push = Observation {
            user_id: Some("U".into()),
            secure_key: Some("WRONG".into()),
            ..Observation::new(200, Source::Push)
        };
        assert!(r.merge(&push));
        assert_eq!(r.credentials.secure_key, "K", "the accepted key stays");
        let proposed = r.proposed_credentials().expect("proposed");
        assert_eq!(proposed.secure_key, "WRONG");
        // GMS accepted the proposed ones: they replace the old.
        let accepted =
            Observation { user_id: Some("U".into()), secure_key: Some("WRONG".into()), ..gms(300) };
        assert!(r.merge(&accepted));
        assert_eq!((r.credentials.secure_key.as_str(), r.proposed.is_none()), ("WRONG", true));
        // A push repeating the accepted tokens proposes nothing.
        assert!(!r.merge(&Observation { secure_key: Some("WRONG".into()), ..push }));
    }

    #[test]
    fn a_refusal_is_final_only_when_a_second_comes_long_enough_after_the_first() {
        let apart = std::time::Duration::from_secs(30);
        let mut r = record();
        assert!(!r.refusal_confirmed(1_000, apart), "a first refusal is not final");
        let refused = |at| Observation { refused: true, ..gms(at) };
        assert!(r.merge(&refused(1_000)));
        assert!(!r.refusal_confirmed(20_000, apart), "too soon after the first");
        assert!(!r.merge(&refused(20_000)), "the first refusal's time is kept");
        assert!(r.refusal_confirmed(31_000, apart));
        // GMS accepting the tokens in between makes the next refusal a first one again.
        let accepted =
            Observation { user_id: Some("U".into()), secure_key: Some("K".into()), ..gms(32_000) };
        assert!(r.merge(&accepted));
        assert!(!r.refusal_confirmed(70_000, apart));
        // What is not GMS accepting tokens (a note that browsers were told) changes nothing.
        assert!(r.merge(&refused(71_000)));
        assert!(!r.merge(&Observation { announced: Some(0), ..gms(72_000) }));
        assert!(r.refusal_confirmed(101_000, apart));
    }

    #[test]
    fn a_pushs_alias_is_only_proposed_until_gms_answers() {
        let mut r = record();
        let push = Observation { alias: Some("999".into()), ..Observation::new(500, Source::Push) };
        assert!(r.merge(&push));
        assert_eq!(r.credentials.alias, "117", "the accepted alias stays");
        assert_eq!(r.proposed_credentials().expect("proposed").alias, "999");
        // GMS answers with its own alias: that one is the truth, the proposal is moot.
        let answer = Observation {
            user_id: Some("U".into()),
            secure_key: Some("K".into()),
            alias: Some("118".into()),
            ..gms(600)
        };
        assert!(r.merge(&answer));
        assert_eq!((r.credentials.alias.as_str(), r.proposed.is_none()), ("118", true));
    }

    #[test]
    fn a_registration_sets_the_device_and_its_time_and_a_push_only_fills_a_gap() {
        let mut r = record();
        let push =
            Observation { device_id: Some("d1".into()), ..Observation::new(500, Source::Push) };
        assert!(r.merge(&push));
        assert_eq!((r.device_id.as_deref(), r.registered_at), (Some("d1"), 100));
        let push2 = Observation { device_id: Some("d2".into()), ..push };
        assert!(!r.merge(&push2));
        let again = Observation { device_id: Some("d3".into()), registration: true, ..gms(600) };
        assert!(r.merge(&again));
        assert_eq!((r.device_id.as_deref(), r.registered_at), (Some("d3"), 600));
    }

    #[test]
    fn a_capture_once_asked_stays_and_older_records_load_without_it() {
        let mut r = record();
        assert!(!r.capture);
        let text = serde_json::to_string(&r).expect("writes");
        assert!(!text.contains("capture"), "false is not stored: {text}");
        assert!(r.merge(&Observation { capture: true, registration: true, ..gms(200) }));
        assert!(r.capture);
        r.merge(&Observation { registration: true, ..gms(300) });
        assert!(r.capture, "the widget's registration does not take it back");
        let back: ChatRecord =
            serde_json::from_str(&serde_json::to_string(&r).expect("writes")).expect("reads");
        assert!(back.capture);
        let older: ChatRecord = serde_json::from_str(&text).expect("an older record loads");
        assert!(!older.capture);
    }

    #[test]
    fn a_verified_identity_sticks_to_the_chat_and_its_newest_naming_counts() {
        let mut r = record();
        assert_eq!((r.user_hash.as_deref(), r.identified_at), (None, 0));
        let named = |hash: &str, at| Observation {
            user_hash: Some(hash.into()),
            registration: true,
            ..gms(at)
        };
        assert!(r.merge(&named("aa", 200)));
        assert_eq!((r.user_hash.as_deref(), r.identified_at), (Some("aa"), 200));
        assert!(!r.merge(&named("aa", 150)), "an older naming changes nothing");
        assert!(r.merge(&named("aa", 300)));
        assert_eq!(r.identified_at, 300, "named again: the identity's newest");
        r.merge(&Observation { registration: true, ..gms(400) });
        assert_eq!((r.user_hash.as_deref(), r.identified_at), (Some("aa"), 300), "kept");
        assert!(r.merge(&named("bb", 350)), "another identity takes the chat");
        assert_eq!((r.user_hash.as_deref(), r.identified_at), (Some("bb"), 350));
        let back: ChatRecord =
            serde_json::from_str(&serde_json::to_string(&r).expect("writes")).expect("reads");
        assert_eq!(back, r);
    }

    #[test]
    fn a_revocation_moves_the_resume_epoch_and_a_new_record_starts_elsewhere() {
        let mut r = record();
        let epoch = r.resume_epoch;
        assert!(r.merge(&Observation { revoke_resume: true, ..gms(200) }));
        assert_eq!(r.resume_epoch, epoch.wrapping_add(1));
        r.merge(&Observation { position: Some(9), ..gms(300) });
        assert_eq!(r.resume_epoch, epoch.wrapping_add(1), "nothing else moves it");
        // A chat forgotten and registered again: the links revoked before stay dead.
        let epochs: std::collections::HashSet<u64> =
            (0..8).map(|_| record().resume_epoch).collect();
        assert!(epochs.len() > 1, "{epochs:?}");
        let older: ChatRecord = serde_json::from_str(
            r#"{"service":"s","credentials":{"chatId":"C","userId":"","secureKey":"K","alias":""}}"#,
        )
        .expect("an older record loads");
        assert_eq!((older.resume_epoch, older.user_hash), (0, None));
    }

    #[test]
    fn a_record_needs_every_token() {
        let seen = Observation { user_id: Some("U".into()), ..gms(1) };
        assert!(ChatRecord::create("C", &seen, "svc").is_none());
    }
}
