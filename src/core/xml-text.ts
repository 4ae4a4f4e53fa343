import { LenixError } from './errors.js';

/**
 * Characters XML 1.0 cannot carry (XML 1.0 §2.2 Char): C0 controls other than tab, newline and carriage
 * return, lone surrogates, U+FFFE and U+FFFF. No escaping helps: a document holding one is not well-formed.
 */
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
/** DEL and the C1 controls are legal XML but never belong in a title or a name. */
const CONTROL = /[\u007F-\u009F]/;

/** The first character XML cannot carry, as U+XXXX, or null. */
export function notXmlChar(text: string): string | null {
  const m = NOT_XML.exec(text);
  return m ? `U+${m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}` : null;
}

/** Whether a field's text may reach XML: no character XML refuses; a line of text also no tab, newline or C1 control. */
export function textProblem(text: string, o: { multiline?: boolean } = {}): string | null {
  const bad = notXmlChar(text);
  if (bad) return `holds ${bad}, which XML cannot carry`;
  if (!o.multiline && /[\t\n\r]/.test(text)) return 'holds a tab or line break';
  if (CONTROL.test(text)) return 'holds a control character';
  return null;
}

/**
 * The last step of every XML writer: a document with a character XML cannot carry is never emitted, whatever
 * its fields held (the writer-level guarantee, beside the field checks at the API).
 */
export function finishXml(doc: string): string {
  const bad = notXmlChar(doc);
  if (bad) throw new LenixError('XML_INVALID_TEXT', `refusing to write an XML document holding ${bad}`);
  return doc;
}
