/**
 * What approvers read, made safe to read. The text of an operation is the agent's: it may hold
 * terminal escapes that rewrite an approver's screen, characters that show as nothing or as
 * something else, lines that imitate the channel's own, or be longer than a notifier can carry.
 * Every channel (CLI, Slack, e-mail, the admin API) shows the same escaped text, a channel that
 * must shorten it says so in words, and plain-text channels quote it as a block.
 */

/**
 * What is shown as a \u{…} escape, never as itself: controls but newline and tab (terminal
 * escapes, carriage return), format characters (bidirectional overrides, zero-width, soft hyphen,
 * tags), every default-ignorable code point (variation selectors, Hangul fillers), line and
 * paragraph separators, combining marks (which change how the character before them looks),
 * private-use and unassigned code points, lone surrogates, spaces other than the ASCII space
 * (no-break, ideographic, braille blank). Each can make the text an approver reads differ from the
 * bytes the grant covers.
 */
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\p{Cf}\p{Default_Ignorable_Code_Point}\p{Zl}\p{Zp}\p{M}\p{Co}\p{Cn}\p{Cs}\u2800]|(?! )\p{Zs}/gu;

/** A word with Latin letters: a letter of another script in it is a look-alike (`drу_run` with a Cyrillic у). */
const WORD = /[\p{L}\p{N}_-]+/gu;
const FOREIGN_IN_LATIN = /(?![\p{Script=Latin}\p{Script=Common}])\p{L}/gu;

/** A run of more blank (or only-space) lines than this is folded into one line that says how many there were. */
const MAX_BLANK_LINES = 2;
const BLANK_RUN = new RegExp(`(?:\\n[ \\t]*){${MAX_BLANK_LINES + 2},}\\n`, "g");

const escape = (c: string) => `\\u{${c.codePointAt(0)!.toString(16).padStart(4, "0")}}`;

export function printable(text: string): string {
  const escaped = text.replace(UNSAFE, escape)
    .replace(WORD, (w) => (/[A-Za-z]/.test(w) ? w.replace(FOREIGN_IN_LATIN, escape) : w));
  // Screens of blank lines would push what follows (or the channel's own lines) out of sight.
  return escaped.replace(BLANK_RUN, (run) => `\n\n[${run.split("\n").length - 2} blank lines]\n`);
}

/**
 * An operation's text as a block no line of which the operation can forge: every line starts
 * with "│ ". Plain-text channels (e-mail) keep their own lines (links, instructions) outside it,
 * so a body that imitates them is visibly inside the block.
 */
export function quotedBlock(text: string): string {
  return text.split("\n").map((line) => `│ ${line}`).join("\n");
}

/** `text` shortened to at most `max` characters, ending in a line saying how much is not shown and where the whole is. */
export function clipped(text: string, max: number, approvalId: string): string {
  if (text.length <= max) return text;
  const shown = text.slice(0, max);
  return `${shown}\n… [clipped here: ${shown.length} of ${text.length} characters shown; the whole operation: portcullis approvals show ${approvalId}]`;
}
