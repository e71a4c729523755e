// Types for `window.GmsChat`, the host-page API of the GMS async chat widget.
// The relay serves this file next to the loader: https://<relay>/widget.d.ts.

/** What each event hands its listeners. */
export interface GmsChatEvents {
  /** The loader has drawn the launcher and the API answers (fires once; late listeners are called at once). */
  ready: undefined;
  /** The panel opened (by the visitor or `open()`). */
  open: undefined;
  /** The panel closed. */
  close: undefined;
  /** A chat started. */
  started: undefined;
  /** A new agent line arrived (lines already shown when the page loaded are not repeated). */
  message: { text: string; time: number | null; from: string };
  /** The count of agent lines the visitor has not seen changed. */
  unread: number;
  /** The chat ended (by the agent, the visitor, or `forget()`). */
  ended: undefined;
}

export interface GmsChat {
  /** The API's version. */
  readonly version: 1;
  /** Opens the panel, loading the chat first if needed. */
  open(): void;
  /** Closes the panel. */
  close(): void;
  /** Opens the panel if it is closed, closes it if it is open. */
  toggle(): void;
  /** Listens to an event. */
  on<E extends keyof GmsChatEvents>(event: E, handler: (detail: GmsChatEvents[E]) => void): void;
  /** Stops listening. */
  off<E extends keyof GmsChatEvents>(event: E, handler: (detail: GmsChatEvents[E]) => void): void;
  /**
   * Adds to the user data of the next chat, and sends it to a running chat (GMS `updateData`).
   * Values become text; nested objects are refused with a console warning. Kept for this page only.
   */
  setUserData(data: Record<string, string | number | boolean>): void;
  /** Ends any active chat and removes everything the widget stored in this browser (shared computers). */
  forget(): void;
  /**
   * Names the site's logged-in visitor, so their running chat follows them to every browser and
   * device: `userHash` is the hex HMAC-SHA256 of `userId` under the relay's `--identity-secret`,
   * computed by the site's server. `null` at logout: a chat of that visitor leaves this browser
   * (it goes on on their other devices). The same as `data-user-id` and `data-user-hash` on the tag.
   */
  identify(who: { userId: string; userHash: string } | null): void;
}

declare global {
  interface Window {
    GmsChat: GmsChat;
  }
}
