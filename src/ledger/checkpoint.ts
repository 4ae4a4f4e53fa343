import { LenixError } from '../core/errors.js';
import { HASH_SIZE, type Hash } from './merkle.js';

/**
 * C2SP tlog-checkpoint body (https://c2sp.org/tlog-checkpoint): the origin line, the tree size in decimal,
 * the base64 root hash, then optional extension lines. It is the text of a signed note (note.ts).
 */
export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Hash;
  readonly extensions: readonly string[];
}

export function formatCheckpoint(c: Checkpoint): string {
  if (!c.origin || /[\n]/.test(c.origin))
    throw new LenixError('BAD_REQUEST', 'checkpoint origin must be one non-empty line');
  if (!Number.isSafeInteger(c.size) || c.size < 0)
    throw new LenixError('BAD_REQUEST', 'checkpoint size must be a non-negative integer');
  return `${[c.origin, String(c.size), Buffer.from(c.root).toString('base64'), ...c.extensions].join('\n')}\n`;
}

export function parseCheckpoint(text: string): Checkpoint {
  const lines = text.split('\n');
  if (lines.length < 4 || lines[lines.length - 1] !== '')
    throw new LenixError('SIGNATURE_INVALID', 'malformed checkpoint');
  const [origin, sizeText, rootText, ...rest] = lines.slice(0, -1);
  if (!origin || !/^(0|[1-9][0-9]{0,15})$/.test(sizeText ?? ''))
    throw new LenixError('SIGNATURE_INVALID', 'malformed checkpoint origin or size');
  const root = new Uint8Array(Buffer.from(rootText ?? '', 'base64'));
  if (root.length !== HASH_SIZE || Buffer.from(root).toString('base64') !== rootText)
    throw new LenixError('SIGNATURE_INVALID', 'malformed checkpoint root hash');
  if (rest.some((l) => l === '')) throw new LenixError('SIGNATURE_INVALID', 'empty checkpoint extension line');
  return { origin, size: Number(sizeText), root, extensions: rest };
}
