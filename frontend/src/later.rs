//! What a visitor rarely needs, or can wait for, loaded when first used (issue 37). In the
//! release build (`cargo xtask widget`, `--cfg gms_split`) each function here is a split point
//! (`wasm_split_helpers`): the splitter moves its code, and the code only it reaches, into
//! a module of its own, which the first call fetches. In a development build
//! (`trunk serve`) the same functions are plain calls. Either way a call is async and
//! answers [`Unavailable`] when its module could not be fetched; nothing is cached then,
//! so the next use tries again. [`prefetch`] fetches the module ahead of its first use.
//!
//! The functions take owned values: a split point is an `extern "C"` call across modules.
#![allow(unsafe_code, reason = "the split macro's expansion declares the loader's import")]

use std::future::Future;
use std::pin::Pin;

use leptos::prelude::RwSignal;
use shared::relay_api::SurveyAnswer;
use shared::widget_config::WidgetConfig;

use crate::controller::Controller;

/// A part of the widget could not be fetched (offline, a failed deploy).
pub(crate) struct Unavailable;

/// The split points' runtime, in place of `wasm_split_helpers::rt` (the macro's
/// `wasm_split_path`): the splitter's JS loader already shares one fetch among concurrent
/// loads and forgets a failed one, so a load here only waits for the loader's callback.
/// The crate's own runtime (a once-cell, a mutex and the `Debug` formatting of its
/// `expect`) weighed 2.2 KB gzipped in the first open.
#[cfg(gms_split)]
mod split {
    // The crate stays linked for its marker section, which tells the splitter its version.
    use wasm_split_helpers as _;

    pub(crate) type SplitLoaderError = super::Unavailable;

    pub(crate) mod rt {
        use std::cell::Cell;
        use std::ffi::c_void;
        use std::pin::Pin;
        use std::rc::Rc;
        use std::task::{Poll, Waker};

        use super::SplitLoaderError;

        /// What the splitter's loader calls back: the data it was given, and whether the
        /// module loaded.
        pub(crate) type LoadCallbackFn = unsafe extern "C" fn(*const c_void, bool);
        type LoadFn = unsafe extern "C" fn(LoadCallbackFn, *const c_void);

        /// One split point's loader (a static per split point, made by the macro).
        pub(crate) struct LazySplitLoader {
            load: LoadFn,
            loaded: Cell<bool>,
        }

        // SAFETY: the widget's wasm is built without atomics, so it has one thread and a
        // static is only ever touched from it.
        unsafe impl Sync for LazySplitLoader {}

        impl LazySplitLoader {
            /// # Safety
            /// `load` calls its callback once per call, with the data it was given.
            pub(crate) const unsafe fn new(load: LoadFn) -> Self {
                LazySplitLoader { load, loaded: Cell::new(false) }
            }
        }

        /// A load's outcome, shared with the loader's callback.
        #[derive(Default)]
        struct Outcome {
            loaded: Cell<Option<bool>>,
            waker: Cell<Option<Waker>>,
        }

        unsafe extern "C" fn complete(data: *const c_void, loaded: bool) {
            // SAFETY: `data` is the `Rc::into_raw` that `ensure_loaded` handed to the
            // loader, which calls back once with it.
            let outcome = unsafe { Rc::from_raw(data.cast::<Outcome>()) };
            outcome.loaded.set(Some(loaded));
            if let Some(waker) = outcome.waker.take() {
                waker.wake();
            }
        }

        /// Loads the split point's module, unless it already has; a failure is not kept,
        /// so the next call tries again.
        pub(crate) async fn ensure_loaded(
            loader: Pin<&'static LazySplitLoader>,
        ) -> Result<(), SplitLoaderError> {
            if loader.loaded.get() {
                return Ok(());
            }
            let outcome = Rc::new(Outcome::default());
            // SAFETY: the contract of `LazySplitLoader::new`; `complete` takes the Rc back.
            unsafe { (loader.load)(complete, Rc::into_raw(Rc::clone(&outcome)).cast()) };
            let loaded = std::future::poll_fn(|cx| match outcome.loaded.get() {
                Some(loaded) => Poll::Ready(loaded),
                None => {
                    outcome.waker.set(Some(cx.waker().clone()));
                    Poll::Pending
                }
            })
            .await;
            loader.loaded.set(loaded);
            if loaded { Ok(()) } else { Err(super::super::Unavailable) }
        }
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
        #[wasm_split_helpers::wasm_split(later, fallible, wasm_split_path = crate::later::split $(, preload($preload))?)]
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
    /// Fills `parent` with the rich content of the message at transcript `index`
    /// (`crate::rich`): whether the fallback text stays above it (quick replies) or goes
    /// (cards, lists); `None` when the content is nothing the widget shows.
    @preload preload_later
    fn rich_into(ctrl: Controller, index: u64, parent: web_sys::Element, attributes: String) -> Option<bool> {
        let rich = shared::rich::Rich::parse(&attributes)?;
        crate::rich::build(ctrl, index, &parent, &rich);
        Some(rich.keeps_text())
    }

    /// Replaces the plain text of `bubble`, an agent's line, with its formatting.
    fn format_into(bubble: web_sys::Element, text: String) -> () {
        bubble.set_text_content(None);
        crate::app::format_into(&bubble, &text);
    }

    /// Opens or closes the emoji picker of the composer whose picker button is `button`
    /// (`crate::emoji`); a chosen emoji joins `draft`.
    fn emoji(ctrl: Controller, button: web_sys::Element, draft: RwSignal<String>) -> () {
        crate::emoji::toggle(ctrl, &button, draft);
    }

    /// Hands the conversation to the visitor as a plain-text file.
    fn save_transcript(ctrl: Controller) -> () {
        crate::app::save_transcript(ctrl);
    }

    /// Fetches a file of the chat and hands it to the visitor (`Controller::download`).
    fn download(ctrl: Controller, file_id: String, name: String) -> () {
        ctrl.download(file_id, name);
    }

    /// Shows the survey's form in `host` and takes its answer (`crate::survey`).
    fn survey(ctrl: Controller, host: web_sys::Element, before_end: bool) -> () {
        crate::survey::show(ctrl, &host, before_end);
    }

    /// Hands the relay the rating of a chat whose end the visitor did not make.
    fn send_survey(config: WidgetConfig, chat_id: String, token: String, answer: SurveyAnswer) -> () {
        leptos::task::spawn_local(async move {
            crate::net::survey(&config, &chat_id, &token, &answer).await;
        });
    }
}

/// The rules of what the part draws (rich messages, the emoji picker), adopted by the
/// widget's shadow root on its first use, not carried by the loader every page view gets.
const STYLES: &str = ".gc-rich{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}\
.gc-cards{display:flex;gap:8px;max-width:100%;overflow-x:auto;scroll-snap-type:x mandatory}\
.gc-card{flex:0 0 auto;width:210px;max-width:100%;scroll-snap-align:start;display:flex;flex-direction:column;gap:6px}\
.gc-card img{width:100%;border-radius:8px}.gc-card-title{font-weight:600}\
.gc-card ul{list-style:none;padding:0!important;display:flex;flex-direction:column;gap:4px}\
.gc-chip{display:inline-flex;flex-direction:column;align-items:flex-start;gap:2px;border:1px solid var(--gc-link);\
border-radius:14px;padding:4px 12px;background:none;color:var(--gc-link);font:inherit;text-align:start;cursor:pointer}\
.gc-chip img{width:40px;border-radius:4px}.gc-chip small{color:var(--gc-muted)}\
.gc-emoji-search{width:100%;box-sizing:border-box;padding:6px 8px;border:1px solid var(--gc-border);border-radius:8px}\
.gc-emoji-grid{display:grid;grid-template-columns:repeat(8,1fr);max-height:180px;overflow-y:auto;margin-top:6px}\
.gc-emoji-grid button{border:0;background:none;font-size:22px;line-height:1.3;padding:2px;cursor:pointer;border-radius:6px}\
.gc-emoji-grid button:hover{background:var(--gc-theirs)}\
.gc-emoji-group{grid-column:1/-1;margin:6px 0 2px;font-size:12px;color:var(--gc-muted)}";

/// Adds [`STYLES`] to the widget's shadow root (the loader's `gms-chat-widget` host),
/// once; engines without constructable stylesheets get a style element, as from the loader.
pub(crate) fn adopt_styles() {
    thread_local!(static ADOPTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    if ADOPTED.replace(true) {
        return;
    }
    let document = web_sys::window().and_then(|w| w.document());
    let host = document.as_ref().and_then(|d| d.get_element_by_id("gms-chat-widget"));
    let Some(root) = host.and_then(|h| h.shadow_root()) else { return };
    match web_sys::CssStyleSheet::new() {
        Ok(sheet) if sheet.replace_sync(STYLES).is_ok() => {
            let sheets = js_sys::Array::from(&root.adopted_style_sheets());
            sheets.push(&sheet);
            root.set_adopted_style_sheets(&sheets);
        }
        _ => {
            if let Some(style) = document.and_then(|d| d.create_element("style").ok()) {
                style.set_text_content(Some(STYLES));
                let _ = root.append_child(&style);
            }
        }
    }
}

/// Runs `part` (calls of split points) in the background; if a part could not be fetched,
/// the panel says so. One boxed future type, so each caller adds no executor code.
pub(crate) fn spawn(
    ctrl: Controller,
    part: impl Future<Output = Result<(), Unavailable>> + 'static,
) {
    spawn_boxed(ctrl, Box::pin(part));
}

fn spawn_boxed(ctrl: Controller, part: Pin<Box<dyn Future<Output = Result<(), Unavailable>>>>) {
    leptos::task::spawn_local(async move {
        if part.await.is_err() {
            ctrl.part_unavailable();
        }
    });
}

/// Fetches the module in the background (when the panel opens and the browser is idle),
/// so a first use does not wait for it; a failure is left for that use to meet.
pub(crate) fn prefetch() {
    #[cfg(gms_split)]
    leptos::task::spawn_local(async {
        let _ = preload_later().await;
    });
}
