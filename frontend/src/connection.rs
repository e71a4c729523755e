//! The relay WebSocket, as the machine commands it: open, send frames, close; what the
//! socket does comes back as inputs (`SocketOpened`, `Frame`, `SocketClosed`). Whether
//! and when to connect, register, subscribe or reconnect is the machine's decision.
//!
//! The browser's WebSocket with three handlers, rather than a stream and sink over it:
//! the same behaviour for a fraction of the code. Handlers report their input in a task of
//! its own, so whatever the machine then asks (a new socket included) never runs inside a
//! handler that it would drop. What it reports to is a callback, not the controller, so
//! the controller that runs this module is not known to it.

use std::cell::RefCell;

use leptos::task::spawn_local;
use shared::relay_api::{ClientFrame, ServerFrame};
use shared::visitor::Input;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// The socket and the handlers it calls, which must live as long as it may call them.
struct Live {
    socket: WebSocket,
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

thread_local! {
    static LIVE: RefCell<Option<Live>> = const { RefCell::new(None) };
}

/// Opens the socket to the relay at `relay_url` (empty: the page's origin), unless one is
/// open or opening; `report` hears what the socket does.
pub(crate) fn open(relay_url: &str, report: impl Fn(Input) + Copy + 'static) {
    let busy = LIVE.with(|live| {
        live.borrow().as_ref().is_some_and(|l| l.socket.ready_state() <= WebSocket::OPEN)
    });
    if busy {
        return;
    }
    // A socket that closed by itself: its handlers go now, outside them.
    close();
    let Ok(socket) = WebSocket::new(&ws_url(relay_url)) else {
        later(report, closed(None));
        return;
    };
    let on_open = Closure::<dyn FnMut()>::new(move || later(report, Input::SocketOpened));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let frame =
            event.data().as_string().and_then(|t| shared::json::from_str::<ServerFrame>(&t));
        if let Some(frame) = frame {
            later(report, Input::Frame(frame));
        }
    });
    // An error is always followed by a close (1006 when the relay sent no close frame).
    let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |event: CloseEvent| {
        later(report, closed(Some(event.code())));
    });
    socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    let live = Live { socket, _on_open: on_open, _on_message: on_message, _on_close: on_close };
    LIVE.with(|l| *l.borrow_mut() = Some(live));
}

/// Closes the socket, if any, without telling the machine (it asked).
pub(crate) fn close() {
    let Some(live) = LIVE.with(|l| l.borrow_mut().take()) else { return };
    live.socket.set_onopen(None);
    live.socket.set_onmessage(None);
    live.socket.set_onclose(None);
    if live.socket.ready_state() <= WebSocket::OPEN {
        let _ = live.socket.close();
    }
}

/// Sends a frame if the socket is open; otherwise it has nowhere to go (the machine
/// subscribes again on the next connection).
pub(crate) fn send(frame: &ClientFrame) {
    let text = shared::json::to_string(frame);
    LIVE.with(|live| {
        if let Some(l) = live.borrow().as_ref()
            && l.socket.ready_state() == WebSocket::OPEN
        {
            // A socket closing under us says so through its close handler.
            let _ = l.socket.send_with_str(&text);
        }
    });
}

fn later(report: impl Fn(Input) + 'static, input: Input) {
    spawn_local(async move { report(input) });
}

fn closed(code: Option<u16>) -> Input {
    let online = web_sys::window().is_none_or(|w| w.navigator().on_line());
    Input::SocketClosed { code, online, random: js_sys::Math::random() }
}

/// `ws(s)://` URL of the relay; an empty base means the page's own origin.
fn ws_url(relay_url: &str) -> String {
    if relay_url.is_empty() {
        let origin = web_sys::window().and_then(|w| w.location().origin().ok());
        return shared::relay_api::ws_url(&origin.unwrap_or_default());
    }
    shared::relay_api::ws_url(relay_url)
}
