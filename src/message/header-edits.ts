/**
 * Applies policy header edits to the top-level header block.
 *
 * Does: split the header block into fields (a folded field stays one field), apply
 *   set / add / setIfAbsent / remove in order (names case-insensitive), and write new
 *   fields as `Name: value\r\n`, folded at whitespace to keep lines within 78 characters
 *   where possible and never above 998 (RFC 5322 2.1.1). Reads field values (`headerFieldValues`).
 * Never: change the bytes of a field no edit names (odd folding and 8-bit bytes stay);
 *   see or touch anything after the header block; write a value containing CR, LF or NUL
 *   (it throws: policies build the values, so that is a bug, not input).
 * Assumes: `header` is exactly what HeaderBlockReader.header returns; values are final
 *   field bodies (already RFC 2047-encoded where needed). Edits that add a field put it at
 *   the top, so a later add appears above an earlier one (like trace fields); below an orphan
 *   continuation line that opens a broken header block, so it never becomes part of it.
 */
import { RelayError } from '../core/errors.js';
import type { HeaderEdit } from '../core/types.js';

const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;

/** RFC 5322 field name: printable ASCII without ':'. */
const FIELD_NAME = /^[!-9;-~]+$/;
const FORBIDDEN_IN_VALUE = /[\r\n\0]/;
const MAX_LINE_CHARS = 78;
/** RFC 5322 2.1.1: a line MUST be at most 998 characters (without CRLF) */
export const MAX_LINE_LIMIT = 998;

interface HeaderField {
  /** lower-cased field name, or undefined for a line that is not a field (no colon) */
  readonly key: string | undefined;
  readonly bytes: Buffer;
}

/** Splits at every line start that is not a continuation line; the pieces concatenate back to `header`. */
function splitFields(header: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let start = 0;
  for (let i = 0; i < header.length; i++) {
    if (header[i] !== LF) continue;
    const next = header[i + 1];
    if (next === undefined || next === SP || next === HTAB) continue;
    fields.push(toField(header.subarray(start, i + 1)));
    start = i + 1;
  }
  if (start < header.length) fields.push(toField(header.subarray(start)));
  return fields;
}

/**
 * The field a line names, read as the MIME parser (mailsplit, whose result the policies see)
 * reads it: everything before the first colon, even one on a continuation line, with
 * surrounding whitespace and line breaks trimmed. So `From :`, `From\t:` and the folded
 * `From\r\n : spoof@evil` are all From fields: an edit of From removes or rewrites them too,
 * never leaving a second From for a reader that takes the last one.
 */
function toField(bytes: Buffer): HeaderField {
  const colon = bytes.indexOf(COLON);
  if (colon <= 0) return { key: undefined, bytes };
  const name = bytes.subarray(0, colon).toString('latin1').trim();
  return { key: FIELD_NAME.test(name) ? name.toLowerCase() : undefined, bytes };
}

function assertEditable(name: string, value: string | undefined): void {
  if (!FIELD_NAME.test(name)) {
    throw new RelayError('E_INTERNAL', { logMessage: `header edit has an invalid field name ${JSON.stringify(name)}` });
  }
  if (value !== undefined && FORBIDDEN_IN_VALUE.test(value)) {
    throw new RelayError('E_INTERNAL', { logMessage: `header edit for ${name} has a value with CR, LF or NUL` });
  }
}

/**
 * `Name: value` folded at whitespace so that lines stay within 78 characters where a
 * whitespace allows it. Folding only ever happens at whitespace, so an encoded-word (which
 * has none) is never broken. No continuation line is whitespace only.
 */
export function formatHeaderField(name: string, value: string): string {
  assertEditable(name, value);
  const lines: string[] = [];
  let rest = `${name}: ${value}`;
  const minBreak = name.length + 2; // never fold right after "Name:"
  while (rest.length > MAX_LINE_CHARS) {
    const breakAt = findFoldPoint(rest, lines.length === 0 ? minBreak : 1);
    if (breakAt < 0) break;
    lines.push(rest.slice(0, breakAt));
    rest = rest.slice(breakAt);
  }
  lines.push(rest);
  const longest = Math.max(...lines.map((l) => l.length));
  if (longest > MAX_LINE_LIMIT) {
    // callers make every token foldable (display names are split into encoded-words, addresses
    // are at most 254 characters): a line that still cannot fit is a bug, never sent
    throw new RelayError('E_INTERNAL', { logMessage: `header ${name} would have a ${longest}-character line; the limit is ${MAX_LINE_LIMIT}` });
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** Index of a whitespace to fold before: the last one within the limit, else the first after it. */
function findFoldPoint(line: string, minIndex: number): number {
  const isWsp = (i: number): boolean => line[i] === ' ' || line[i] === '\t';
  // a fold must leave text on both sides: after the first non-whitespace at or past
  // minIndex - 1, and before the last non-whitespace of the line
  let firstText = minIndex - 1;
  while (firstText < line.length && isWsp(firstText)) firstText++;
  let lastText = line.length - 1;
  while (lastText >= 0 && isWsp(lastText)) lastText--;
  const usable = (i: number): boolean => isWsp(i) && i > firstText && i < lastText;
  for (let i = Math.min(MAX_LINE_CHARS, line.length - 1); i >= minIndex; i--) {
    if (usable(i)) return i;
  }
  for (let i = MAX_LINE_CHARS + 1; i < line.length; i++) {
    if (usable(i)) return i;
  }
  return -1;
}

/**
 * Puts a new field at the top. A header block that starts with whitespace (an orphan
 * continuation line, hostile or broken input) keeps that line first: a field put above it
 * would adopt it as its own continuation (`From: x@y` + ` evil@x` = a second address).
 */
function prepend(fields: readonly HeaderField[], field: HeaderField): HeaderField[] {
  const first = fields[0];
  if (first === undefined || (first.bytes[0] !== SP && first.bytes[0] !== HTAB)) return [field, ...fields];
  const orphan = first.bytes[first.bytes.length - 1] === LF ? first : { key: first.key, bytes: Buffer.concat([first.bytes, Buffer.from('\r\n')]) };
  return [orphan, field, ...fields.slice(1)];
}

export function applyHeaderEdits(header: Buffer, edits: readonly HeaderEdit[]): Buffer {
  if (edits.length === 0) return header;
  let fields = splitFields(header);
  for (const edit of edits) {
    const key = edit.name.toLowerCase();
    switch (edit.op) {
      case 'set': {
        const field: HeaderField = { key, bytes: Buffer.from(formatHeaderField(edit.name, edit.value), 'utf8') };
        const first = fields.findIndex((f) => f.key === key);
        if (first < 0) {
          fields = prepend(fields, field);
        } else {
          fields = fields.flatMap((f, i) => (i === first ? [field] : f.key === key ? [] : [f]));
        }
        break;
      }
      case 'add':
        fields = prepend(fields, { key, bytes: Buffer.from(formatHeaderField(edit.name, edit.value), 'utf8') });
        break;
      case 'setIfAbsent':
        // format (and so validate) even when absent-check fails: a bad value is a bug either way
        {
          const bytes = Buffer.from(formatHeaderField(edit.name, edit.value), 'utf8');
          if (!fields.some((f) => f.key === key)) fields = prepend(fields, { key, bytes });
        }
        break;
      case 'remove':
        assertEditable(edit.name, undefined);
        fields = fields.filter((f) => f.key !== key);
        break;
    }
  }
  return Buffer.concat(fields.map((f) => f.bytes));
}

/**
 * The values of every field with this name (case-insensitive), in order: unfolded,
 * decoded as UTF-8, surrounding whitespace trimmed. Encoded-words are left as they are.
 */
export function headerFieldValues(header: Buffer, name: string): string[] {
  const key = name.toLowerCase();
  return splitFields(header)
    .filter((f) => f.key === key)
    .map((f) => {
      const text = f.bytes.toString('utf8');
      return text
        .slice(text.indexOf(':') + 1)
        .replace(/\r?\n(?=[ \t])/g, '')
        .replace(/\r?\n$/, '')
        .trim();
    });
}
