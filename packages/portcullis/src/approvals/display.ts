/**
 * What approvers read, made safe to read. The text of an operation is the agent's: it may hold
 * terminal escapes that rewrite an approver's screen, bidirectional overrides that show bytes in
 * another order, or be longer than a notifier can carry. Every channel (CLI, Slack, e-mail, the
 * admin API) shows the same escaped text, and a channel that must shorten it says so in words.
 */

/**
 * C0 controls but newline and tab, DEL, C1 controls, bidirectional formatting characters and
 * invisible ones (zero-width, word joiner, BOM): shown as \u{…} escapes, never interpreted.
 */
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]/g;

export function printable(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u{${c.codePointAt(0)!.toString(16).padStart(4, "0")}}`);
}

/** `text` shortened to at most about `max` characters, ending in a line saying how much is not shown and where the whole is. */
export function clipped(text: string, max: number, approvalId: string): string {
  if (text.length <= max) return text;
  const shown = text.slice(0, max);
  return `${shown}\n… [clipped here: ${shown.length} of ${text.length} characters shown; the whole operation: portcullis approvals show ${approvalId}]`;
}
