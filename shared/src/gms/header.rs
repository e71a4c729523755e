//! Extra HTTP headers sent with every Chat API request, such as the `apikey` an API gateway
//! in front of GMS (Apigee for Genesys' hosted GMS) asks for.
//!
//! The relay takes them as `NAME: VALUE` flags and the widget as a JSON object; both check
//! them here, so a header the HTTP client would refuse at request time, or one that would
//! change how the request itself is framed, is refused once, at configuration time.

/// One extra header. Its value is a credential as often as not, so `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct GmsHeader {
    /// The header's name, as given.
    pub name: String,
    /// The header's value, never logged.
    pub value: String,
}

impl std::fmt::Debug for GmsHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}: …", self.name)
    }
}

/// Headers the client sets itself, or that browsers refuse to let a page set (a browser
/// would drop or reject them silently); the request's own framing is not configurable.
const RESERVED: &[&str] = &[
    "accept-charset",
    "accept-encoding",
    "access-control-request-headers",
    "access-control-request-method",
    "connection",
    "content-length",
    "content-type",
    "cookie",
    "date",
    "expect",
    "host",
    "keep-alive",
    "origin",
    "referer",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "via",
];

impl GmsHeader {
    /// A checked header: the name an HTTP token and not one the client owns, the value
    /// without control characters (a line break in it would forge another header).
    pub fn new(name: &str, value: &str) -> Result<GmsHeader, String> {
        let name = name.trim();
        let value = value.trim_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!("{name:?} is not an HTTP header name"));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str())
            || lower.starts_with("sec-")
            || lower.starts_with("proxy-")
        {
            return Err(format!("the header {name:?} cannot be configured"));
        }
        // The name is safe to show; the value is not, so its problem is told without it.
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!("the value of the header {name:?} holds a control character"));
        }
        Ok(GmsHeader { name: name.to_owned(), value: value.to_owned() })
    }

    /// Reads `NAME: VALUE`, as the relay's `--gms-header` and gms-sim's `--require-header`.
    pub fn parse(text: &str) -> Result<GmsHeader, String> {
        let (name, value) =
            text.split_once(':').ok_or_else(|| "a header is given as 'NAME: VALUE'".to_owned())?;
        GmsHeader::new(name, value)
    }
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Checks every header of a configuration, keeping the valid ones; each invalid one gives
/// its problem (without its value), so a page's mistake costs that header, not the widget.
pub fn checked_headers<'a>(
    headers: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> (Vec<GmsHeader>, Vec<String>) {
    let mut valid = Vec::new();
    let mut problems = Vec::new();
    for (name, value) in headers {
        match GmsHeader::new(name, value) {
            Ok(header) => valid.push(header),
            Err(problem) => problems.push(problem),
        }
    }
    (valid, problems)
}
