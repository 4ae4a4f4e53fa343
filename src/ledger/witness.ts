import { LenixError } from '../core/errors.js';
import { parseCheckpoint, type Checkpoint } from './checkpoint.js';
import { HASH_SIZE, verifyConsistency, type Hash } from './merkle.js';
import { openNote, type VerifierKey } from './note.js';

/**
 * The decision of a C2SP tlog-witness (https://c2sp.org/tlog-witness) on an `add-checkpoint` request, pure:
 * the process around it (agents/witness) keeps the state on disk and signs. The witness cosigns a checkpoint
 * only when it is signed by a log key it trusts for that origin and is consistent with the last checkpoint
 * it cosigned for the origin; so it never cosigns two views of one log (a fork).
 */
export interface WitnessState {
  readonly size: number;
  readonly root: Hash;
}

export interface AddCheckpointRequest {
  readonly oldSize: number;
  readonly proof: readonly Hash[];
  readonly note: string;
}

export type WitnessDecision =
  | { readonly ok: true; readonly checkpoint: Checkpoint; readonly text: string }
  | {
      readonly ok: false;
      readonly status: 400 | 403 | 404 | 409 | 422;
      readonly reason: string;
      readonly size?: number;
    };

const MAX_PROOF_LINES = 63;

/** Parse the request body: `old <size>\n`, up to 63 base64 proof lines, a blank line, the signed checkpoint. */
export function parseAddCheckpoint(body: string): AddCheckpointRequest {
  const bad = (why: string): never => {
    throw new LenixError('BAD_REQUEST', why);
  };
  const blank = body.indexOf('\n\n');
  if (blank < 0) bad('an add-checkpoint body is an old size line, proof lines, a blank line and a checkpoint');
  const head = body.slice(0, blank).split('\n');
  const m = /^old (0|[1-9][0-9]{0,15})$/.exec(head[0] ?? '');
  if (!m) bad('the first line must be "old <size>"');
  const proofLines = head.slice(1);
  if (proofLines.length > MAX_PROOF_LINES) bad(`at most ${MAX_PROOF_LINES} consistency proof lines`);
  const proof = proofLines.map((l) => {
    const h = new Uint8Array(Buffer.from(l, 'base64'));
    if (h.length !== HASH_SIZE || Buffer.from(h).toString('base64') !== l)
      bad('a consistency proof line is one base64 SHA-256 hash');
    return h;
  });
  return { oldSize: Number(m![1]), proof, note: body.slice(blank + 2) };
}

export function formatAddCheckpoint(oldSize: number, proof: readonly Hash[], note: string): string {
  return `${[`old ${oldSize}`, ...proof.map((h) => Buffer.from(h).toString('base64'))].join('\n')}\n\n${note}`;
}

/** Decide on a request, given the trusted log keys by origin and the last cosigned state for that origin. */
export function decide(
  req: AddCheckpointRequest,
  logs: ReadonlyMap<string, readonly VerifierKey[]>,
  stateFor: (origin: string) => WitnessState | null,
): WitnessDecision {
  let text: string;
  let cp: Checkpoint;
  try {
    text = req.note.slice(0, req.note.lastIndexOf('\n\n') + 1);
    cp = parseCheckpoint(text);
  } catch (err) {
    return { ok: false, status: 400, reason: (err as Error).message };
  }
  const keys = logs.get(cp.origin);
  if (!keys) return { ok: false, status: 404, reason: `unknown log origin ${cp.origin}` };
  try {
    openNote(req.note, keys);
  } catch (err) {
    return {
      ok: false,
      status: 403,
      reason: `checkpoint not signed by a trusted key of ${cp.origin}: ${(err as Error).message}`,
    };
  }
  if (req.oldSize > cp.size)
    return { ok: false, status: 400, reason: `old size ${req.oldSize} exceeds the checkpoint size ${cp.size}` };
  const state = stateFor(cp.origin);
  const known = state?.size ?? 0;
  if (req.oldSize !== known)
    return { ok: false, status: 409, reason: `the last cosigned checkpoint has size ${known}`, size: known };
  if (state && state.size === cp.size) {
    if (Buffer.compare(Buffer.from(state.root), Buffer.from(cp.root)) !== 0)
      return {
        ok: false,
        status: 409,
        reason: `a different root for size ${cp.size} was cosigned before (a fork)`,
        size: known,
      };
    return { ok: true, checkpoint: cp, text };
  }
  if (!state || state.size === 0) {
    if (req.proof.length !== 0)
      return { ok: false, status: 422, reason: 'the proof must be empty when the old size is 0' };
    return { ok: true, checkpoint: cp, text };
  }
  if (!verifyConsistency(state.size, cp.size, state.root, cp.root, req.proof)) {
    return {
      ok: false,
      status: 422,
      reason: `checkpoint of size ${cp.size} is not consistent with the cosigned size ${state.size} (a fork or a rewritten log)`,
    };
  }
  return { ok: true, checkpoint: cp, text };
}
