//! What a visitor rarely needs, loaded when first used (issue 37). In the release build
//! (`cargo xtask widget`, `--cfg gms_split`) each function here is a split point
//! (`wasm_split_helpers`): the splitter moves its code, and the code only it reaches, into
//! a module of its own, which the first call fetches. In a development build
//! (`trunk serve`) the same functions are plain calls. Either way a call is async and
//! answers [`Unavailable`] when its module could not be fetched; nothing is cached then,
//! so the next use tries again. [`prefetch`] fetches the module ahead of its first use.
//!
//! The functions take owned values: a split point is an `extern "C"` call across modules.
#![allow(unsafe_code, reason = "the split macro's expansion declares the loader's import")]

use crate::texts::Texts;

/// A part of the widget could not be fetched (offline, a failed deploy).
#[derive(Debug)]
pub(crate) struct Unavailable;

#[cfg(gms_split)]
impl From<wasm_split_helpers::SplitLoaderError> for Unavailable {
    fn from(_: wasm_split_helpers::SplitLoaderError) -> Self {
        Unavailable
    }
}

/// Declares split points of the module `later`: in a split build through the splitter's
/// macro, else as plain async functions with the same signature.
macro_rules! later {
    ($(
        $(#[$doc:meta])*
        $(@preload $preload:ident)?
        fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block
    )*) => {$(
        $(#[$doc])*
        #[cfg(gms_split)]
        #[wasm_split_helpers::wasm_split(later, fallible $(, preload($preload))?)]
        pub(crate) fn $name($($arg: $ty),*) -> Result<$ret, Unavailable> {
            // An inner function, so the body's own `?` stays the body's.
            fn body($($arg: $ty),*) -> $ret $body
            Ok(body($($arg),*))
        }

        $(#[$doc])*
        #[cfg(not(gms_split))]
        #[allow(clippy::unused_async, reason = "the split build's call is async")]
        pub(crate) async fn $name($($arg: $ty),*) -> Result<$ret, Unavailable> {
            fn body($($arg: $ty),*) -> $ret $body
            Ok(body($($arg),*))
        }
    )*};
}

later! {
    /// Fills `parent` with a rich message's content (`crate::rich`): whether the fallback
    /// text stays above it (quick replies) or goes (cards, lists); `None` when the content
    /// is nothing the widget shows.
    @preload preload_later
    fn rich_into(parent: web_sys::Element, content: String) -> Option<bool> {
        let rich = shared::rich::Rich::parse(&content)?;
        crate::rich::build(&parent, &rich);
        Some(rich.keeps_text())
    }

    /// The survey form's markup (`crate::chat::survey_html`).
    fn survey_html(t: &'static Texts, thumbs: bool, before_end: bool, link: String) -> String {
        crate::chat::survey_html(t, thumbs, before_end, &link)
    }
}

/// Fetches the module in the background (when the panel opens and the browser is idle),
/// so a first use does not wait for it; a failure is left for that use to meet.
pub(crate) fn prefetch() {
    #[cfg(gms_split)]
    leptos::task::spawn_local(async {
        let _ = preload_later().await;
    });
}
