/*! gms-chat loader: the one tag a site adds. It draws the launcher and answers the
    window.GmsChat API at once, and loads the chat itself (wasm) only when the visitor
    opens it or already has a chat running. The relay serves it as /widget.js with the
    build's file names and styles filled in. Written for hostile pages: no Array
    methods, no for-in, no inline styles, no eval. */
(function (w, d) {
  'use strict';
  var KEY = 'gms-chat:v1';
  var JS = '__GMS_CHAT_JS__';
  var WASM = '__GMS_CHAT_WASM__';
  var SPLIT = '__GMS_CHAT_SPLIT__';
  var CSS = '__GMS_CHAT_CSS__';
  // GMS for pages that name none: the relay's --widget-gms-url (may be empty).
  var GMS = '__GMS_CHAT_GMS_URL__';
  // The launcher's words in every language the chat speaks; the frontend's unit tests
  // keep them equal to texts.rs.
  var LAUNCHER = {
    en: 'Chat with us', de: 'Chatten Sie mit uns', fr: 'Discutez avec nous',
    es: 'Chatea con nosotros', nl: 'Chat met ons', ar: 'تحدث معنا', he: 'דברו איתנו'
  };
  var RTL = { ar: 1, he: 1 };
  var EVENTS = { ready: 1, open: 1, close: 1, started: 1, message: 1, unread: 1, ended: 1 };

  var script = d.currentScript;
  // A page's `<img name="currentScript">` would stand in for it (DOM clobbering), and its
  // src say where the chat's code is loaded from.
  if (!(script instanceof HTMLScriptElement)) script = d.querySelector('script[src$="/widget.js"]');
  if (!script || w.__gmsChatLoaded) return;
  w.__gmsChatLoaded = true;
  var base = script.src.replace(/[?#].*$/, '').replace(/\/[^\/]*$/, '');

  function own(o, k) { return Object.prototype.hasOwnProperty.call(o, k); }
  function warn(message) {
    try { w.console.warn('gms-chat: ' + message); } catch (e) { /* no console */ }
  }
  function webUrl(v) {
    try {
      var u = new URL(v);
      if (u.protocol === 'https:' || u.protocol === 'http:') return String(v).replace(/\/+$/, '');
    } catch (e) { /* not a URL */ }
  }
  function text(v) { return v.replace(/^\s+|\s+$/g, '') || undefined; }
  function count(v) { return /^\d{1,9}$/.test(v) ? +v : undefined; }
  function oneOf(list) { return function (v) { return own(list, v) ? v : undefined; }; }
  var SETTINGS = {
    gmsUrl: webUrl,
    relayUrl: webUrl,
    service: text,
    nodeGroup: function (v) { return v; },
    title: text,
    language: function (v) {
      var primary = v.toLowerCase().split(/[-_]/)[0];
      return own(LAUNCHER, primary) ? primary : undefined;
    },
    idleRefreshSeconds: function (v) { return count(v) > 0 ? +v : undefined; },
    keepEndedDays: count,
    // The browser refuses a worker from another origin when the visitor opts in.
    serviceWorker: text,
    theme: oneOf({ light: 1, dark: 1, auto: 1 }),
    // While the office is closed (the relay's --office-hours): start chats or not.
    closedMode: oneOf({ write: 1, refuse: 1 }),
    // The rating offered when a chat ends, and the site's own survey ({chatId} filled in).
    survey: oneOf({ stars: 1, thumbs: 1, off: 1 }),
    surveyUrl: webUrl,
    position: oneOf({ right: 1, left: 1 }),
    // The site's logged-in visitor and the HMAC the relay verifies (README: Browsers).
    userId: text,
    userHash: text,
    // A list of texts (data-mask-patterns: its JSON); the wasm reads the templates.
    maskPatterns: function (v) {
      try {
        if (typeof v == 'string') v = JSON.parse(v);
        if (Object.prototype.toString.call(v) != '[object Array]') return;
        for (var i = 0; i < v.length; i++) if (typeof v[i] != 'string') return;
        return v;
      } catch (e) { /* not JSON */ }
    },
    // An object of texts (data-gms-headers: its JSON); the wasm checks the names.
    gmsHeaders: function (v) {
      try {
        if (typeof v == 'string') v = JSON.parse(v);
        if (v.constructor != Object) return;
        var k = Object.keys(v);
        for (var i = 0; i < k.length; i++) if (typeof v[k[i]] != 'string') return;
        return v;
      } catch (e) { /* not JSON, or null */ }
    }
  };
  var config = {};
  function setting(name, value, where) {
    if (!own(SETTINGS, name)) { warn('unknown setting ' + where + ', ignored'); return; }
    if (value === null || value === '') return;
    // gmsHeaders stays an object (its values, credentials, out of the console), maskPatterns a list.
    var raw = name == 'gmsHeaders' || name == 'maskPatterns';
    var clean = SETTINGS[name](raw ? value : String(value));
    if (clean === undefined) warn('invalid ' + where + (raw ? '' : ' ' + JSON.stringify(String(value))) + ', the default is used');
    else config[name] = clean;
  }
  // Only the site's own script element: user content a sanitizer let through (a
  // `<div id="gms-chat-config">` in a comment) would otherwise name the relay that every
  // returning visitor's tokens are sent to.
  var element = d.querySelector('script[type="application/json"]#gms-chat-config');
  if (d.querySelector('#gms-chat-config:not(script[type="application/json"])')) {
    warn('#gms-chat-config that is not a JSON script is ignored');
  }
  if (element) {
    var json;
    try { json = JSON.parse(element.textContent || '{}'); } catch (e) { warn('#gms-chat-config is not JSON, ignored'); }
    if (json && typeof json === 'object') {
      var names = Object.keys(json);
      for (var i = 0; i < names.length; i++) setting(names[i], json[names[i]], names[i]);
    }
  }
  var attributes = script.attributes;
  for (var j = 0; j < attributes.length; j++) {
    var attribute = attributes[j].name;
    if (attribute.slice(0, 5) !== 'data-') continue;
    var camel = attribute.slice(5).replace(/-([a-z])/g, function (_, c) { return c.toUpperCase(); });
    setting(camel, attributes[j].value, attribute);
  }
  if (!config.relayUrl) config.relayUrl = base;
  if (!config.gmsUrl && GMS) config.gmsUrl = GMS;
  // The relay writes true here when it is the page's only way to GMS (--gms-proxy): the
  // widget then uses no GMS address or header of the page. A literal, which minifying
  // cannot fold away.
  config.proxy = '__GMS_CHAT_PROXY__';
  // And true when it takes ratings of chats that ended before the visitor rated.
  config.surveys = '__GMS_CHAT_SURVEYS__';
  var language = config.language || 'en';
  config.language = language;
  var rtl = own(RTL, language);

  // --- the host element, its shadow root and the launcher ---
  var host = d.createElement('gms-chat');
  host.id = 'gms-chat-widget';
  var shadow = host.attachShadow({ mode: 'open' });
  // Engines without constructable stylesheets (Safari before 16.4) get a style element,
  // which a CSP without 'unsafe-inline' styles refuses (README: Browsers).
  if ('adoptedStyleSheets' in shadow) {
    var sheet = new CSSStyleSheet();
    sheet.replaceSync(CSS);
    shadow.adoptedStyleSheets = [sheet];
  } else {
    var style = d.createElement('style');
    style.textContent = CSS;
    shadow.appendChild(style);
  }
  var root = d.createElement('div');
  root.className = 'gc-root';
  root.setAttribute('lang', language);
  root.setAttribute('dir', rtl ? 'rtl' : 'ltr');
  root.setAttribute('data-theme', config.theme || 'light');
  root.setAttribute('data-position', config.position || (rtl ? 'left' : 'right'));
  shadow.appendChild(root);

  var drawn = null;
  function drawLauncher() {
    drawn = d.createElement('div');
    var button = d.createElement('button');
    button.type = 'button';
    button.className = 'gc-launcher';
    button.setAttribute('data-testid', 'launcher');
    button.setAttribute('aria-expanded', 'false');
    button.setAttribute('aria-label', LAUNCHER[language]);
    var svg = d.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'gc-icon');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', '18');
    svg.setAttribute('height', '18');
    var path = d.createElementNS('http://www.w3.org/2000/svg', 'path');
    path.setAttribute('fill', 'currentColor');
    path.setAttribute('d', 'M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z');
    svg.appendChild(path);
    button.appendChild(svg);
    button.appendChild(d.createTextNode(LAUNCHER[language]));
    button.addEventListener('click', function () { command('open'); });
    drawn.appendChild(button);
    root.appendChild(drawn);
  }

  // --- loading the chat, and handing the launcher over to it ---
  var app = null;
  var loading = null;
  var queue = [];
  function asset(name) { return base + '/' + name; }
  function activeChat() {
    try {
      var stored = JSON.parse(w.localStorage.getItem(KEY) || 'null');
      var chat = stored && stored.chat;
      // An ended chat goes keepEndedDays after its end (shared::visitor's Stored::expire)
      // also for a visitor who never opens the chat again, which is when the chat would.
      // A chat that ended before endedAt was kept (NaN) goes at once: it may still hold its
      // tokens. (No `??`: the loader parses in browsers older than ES2020 too.)
      if (chat && chat.ended && !(Date.now() - chat.endedAt < (config.keepEndedDays >= 0 ? config.keepEndedDays : 7) * 864e5)) w.localStorage.removeItem(KEY);
      return !!(chat && !chat.ended);
    } catch (e) { return false; }
  }
  function load() {
    if (loading) return;
    if (drawn) drawn.firstChild.setAttribute('aria-busy', 'true');
    // The texts of a language other than English come as a file, fetched with the wasm.
    var texts = language === 'en' ? Promise.resolve('') : fetch(asset('texts/' + language + '.json'))
      .then(function (r) { return r.ok ? r.text() : ''; }, function () { return ''; });
    // The wasm and the split loader the glue imports are fetched alongside the glue, not
    // after it: a round trip less before the panel.
    var wasm = fetch(asset(WASM));
    wasm.then(null, function () {}); // a failure is the glue's to report
    if (SPLIT) import(asset(SPLIT)).then(null, function () {});
    loading = import(asset(JS)).then(function (glue) {
      return glue['default']({ module_or_path: wasm }).then(function () { return texts; })
        .then(function (json) { handOver(glue, json); });
    }).then(null, function (error) {
      warn('the chat could not be loaded (' + error + ')');
      loading = null;
      if (drawn) drawn.firstChild.removeAttribute('aria-busy');
    });
  }
  function handOver(glue, texts) {
    var focused = drawn && shadow.activeElement === drawn.firstChild;
    glue.mount(root, JSON.stringify(config), texts, emit);
    app = glue;
    // Same task as the mount: the page never paints a frame without a launcher.
    if (drawn) root.removeChild(drawn);
    drawn = null;
    var pending = queue;
    queue = [];
    for (var i = 0; i < pending.length; i++) app.command(pending[i][0], pending[i][1]);
    if (focused) {
      var launcher = shadow.querySelector('.gc-launcher');
      if (launcher) launcher.focus();
    }
    mark('gms-chat:handover');
  }
  // A verified visitor's chat running elsewhere (another device, or before Safari wiped
  // this site's storage): the chat loads as for one stored here, and takes it up.
  function lookup() {
    if (!config.userHash) return;
    fetch(config.relayUrl + '/v1/identity', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ userId: config.userId, userHash: config.userHash })
    }).then(function (r) { if (r.status === 200) load(); }, function () { /* no relay: none */ });
  }
  function opening() {
    for (var i = 0; i < queue.length; i++) if (queue[i][0] === 'open') return true;
    return false;
  }
  function command(name, data) {
    data = data === undefined ? '' : data;
    if (app) { app.command(name, data); return; }
    if (name === 'toggle') name = opening() ? 'close' : 'open';
    if (name === 'close') {
      // Closed again before the chat arrived: it arrives closed.
      var kept = [];
      for (var i = 0; i < queue.length; i++) if (queue[i][0] !== 'open') kept[kept.length] = queue[i];
      queue = kept;
      return;
    }
    if (name === 'forget' && !loading) {
      try { w.localStorage.removeItem(KEY); } catch (e) { /* storage blocked */ }
      return;
    }
    queue[queue.length] = [name, data];
    if (name === 'open') load();
  }

  // --- events for the host page ---
  var handlers = Object.create(null);
  var ready = false;
  function emit(name, detail) {
    var list = handlers[name];
    if (!list) return;
    for (var i = 0; i < list.length; i++) {
      try { list[i](detail); } catch (e) { warn('a ' + name + ' handler failed: ' + e); }
    }
  }
  function mark(name) {
    try { w.performance.mark(name); } catch (e) { /* no performance API */ }
  }

  var api = {
    version: 1,
    open: function () { command('open'); },
    close: function () { command('close'); },
    toggle: function () { command('toggle'); },
    on: function (name, handler) {
      if (!own(EVENTS, name) || typeof handler !== 'function') { warn('GmsChat.on: no event ' + name); return; }
      var list = handlers[name] || (handlers[name] = []);
      list[list.length] = handler;
      if (name === 'ready' && ready) handler();
    },
    off: function (name, handler) {
      var list = handlers[name] || [];
      var kept = [];
      for (var i = 0; i < list.length; i++) if (list[i] !== handler) kept[kept.length] = list[i];
      handlers[name] = kept;
    },
    setUserData: function (data) {
      if (!data || typeof data !== 'object') { warn('GmsChat.setUserData takes an object'); return; }
      var pairs = [];
      var keys = Object.keys(data);
      for (var i = 0; i < keys.length; i++) {
        var value = data[keys[i]];
        if (value !== null && typeof value === 'object') { warn('user data ' + keys[i] + ' is not text, ignored'); continue; }
        pairs[pairs.length] = [keys[i], String(value)];
      }
      command('userData', JSON.stringify(pairs));
    },
    forget: function () { command('forget'); },
    // {userId, userHash} of the visitor who logged in, or null when they log out.
    identify: function (who) {
      var id = who ? { userId: String(who.userId || ''), userHash: String(who.userHash || '') } : null;
      config.userId = id ? id.userId : '';
      config.userHash = id ? id.userHash : '';
      if (app || loading) command('identify', id ? JSON.stringify(id) : '');
      else lookup();
    }
  };
  var stub = w.GmsChat;
  var calls = stub && stub.q;
  if (stub === undefined || calls) {
    try { w.GmsChat = api; } catch (e) { /* read-only */ }
  }
  if (w.GmsChat !== api) warn('window.GmsChat is the page\'s own; the chat works, its API is not installed');

  function start() {
    d.body.appendChild(host);
    if (activeChat()) load();
    else { drawLauncher(); lookup(); }
    // A click on a Web Push notification opened this page for the chat (an open tab hears
    // of it from the service worker, in the wasm), or a resume link did: its token is the
    // rest of the fragment, which never reaches the site's server.
    var hash = w.location.hash;
    var resume = hash.indexOf('#gms-chat-resume=') === 0;
    if (resume) config.resume = hash.slice(17);
    if (resume || hash === '#gms-chat-open') {
      w.history.replaceState(w.history.state, '', w.location.pathname + w.location.search);
      command('open');
    }
    // A chat started in another tab of the site: load it here too, for its pushes and badge.
    w.addEventListener('storage', function (event) {
      if (event.key === KEY && !loading && activeChat()) load();
    });
    mark('gms-chat:interactive');
    for (var i = 0; calls && i < calls.length; i++) {
      var call = calls[i];
      if (call && own(api, call[0]) && typeof api[call[0]] === 'function') api[call[0]].apply(api, call[1] || []);
    }
    ready = true;
    emit('ready');
  }
  if (d.body) start();
  else d.addEventListener('DOMContentLoaded', start);
})(window, document);
