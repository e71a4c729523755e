/*! gms-chat service worker: shows the relay's Web Push notifications ("Ann replied") and,
    on a click, brings the visitor back to the chat. A site hosts a one-line file at its
    root that imports this one from the relay:
        importScripts('https://relay.example.com/gms-chat-sw.js');
    It handles only its own notifications, so a site's worker can do other things too. */
(function (sw) {
  'use strict';
  var PREFIX = 'gms-chat-';

  sw.addEventListener('push', function (event) {
    var data = null;
    try { data = event.data ? event.data.json() : null; } catch (e) { data = null; }
    if (!data || typeof data.chatId !== 'string' || typeof data.title !== 'string') return;
    event.waitUntil(sw.registration.showNotification(data.title, {
      body: typeof data.body === 'string' ? data.body : '',
      // One notification per chat: a later line replaces it, and still alerts.
      tag: PREFIX + data.chatId,
      renotify: true,
      data: { gmsChat: true, chatId: data.chatId, url: typeof data.url === 'string' ? data.url : null }
    }));
  });

  sw.addEventListener('notificationclick', function (event) {
    var data = event.notification.data;
    if (!data || !data.gmsChat) return;
    event.notification.close();
    event.waitUntil(openChat(data));
  });

  /** Focuses a tab of the site and tells its widget to open the panel; with none open,
      opens the page the chat started on, marked so the widget opens its panel. */
  function openChat(data) {
    return sw.clients.matchAll({ type: 'window', includeUncontrolled: true }).then(function (tabs) {
      // Most recently focused first: prefer the page the chat started on.
      var tab = null;
      // The page is kept without its query and fragment (shared::visitor::return_page).
      // Its fragment may hold a resume token (#gms-chat-resume=...): for a browser that no
      // longer has the chat, as Safari's after seven days without a visit.
      var page = data.url ? data.url.split('#') : [];
      var resume = /^gms-chat-resume=/.test(page[1] || '') ? page[1].slice(16) : '';
      for (var i = 0; i < tabs.length && !tab; i++) if (page[0] && tabs[i].url.split(/[?#]/)[0] === page[0]) tab = tabs[i];
      tab = tab || tabs[0];
      if (tab) {
        tab.postMessage({ type: 'gms-chat:open', chatId: data.chatId, resume: resume });
        return tab.focus().then(null, function () { /* not allowed: the panel is open anyway */ });
      }
      // Only a page of this site: whatever a push names, the worker must not be a way to
      // open any other address in the visitor's browser.
      var url = new URL(sw.registration.scope);
      try {
        var page = new URL(data.url);
        if (page.origin === url.origin) url = page;
      } catch (e) { /* no page, or not an address: the site's root */ }
      if (!resume) url.hash = 'gms-chat-open';
      return sw.clients.openWindow(url.href);
    });
  }
})(self);
