import { mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { LenixError } from '../../core/errors.js';
import {
  decide,
  formatAddCheckpoint,
  parseAddCheckpoint,
  type AddCheckpointRequest,
  type WitnessState,
} from '../../ledger/witness.js';
import { ed25519Cosigner, parseVerifierKey, sigLine, type NoteSigner, type VerifierKey } from '../../ledger/note.js';
import { mldsa44Cosigner } from '../../ledger/note-mldsa.js';
import { fsyncDir, readOrCreateSeed, writeDurably } from '../../store/durable.js';
import { ApiClient } from '../../client/http.js';
import { LenixClient } from '../../client/lenix.js';

/**
 * `lenix witness`: a C2SP tlog-witness. It cosigns a log's checkpoints (Ed25519 type 0x04 and ML-DSA-44
 * type 0x06 cosignatures) only when they are consistent with the last checkpoint it cosigned for that log,
 * whose size and root it keeps on disk (written and fsynced before it answers). Logs push checkpoints to
 * `POST /add-checkpoint`; with `log` set, the witness also reads the checkpoint the log serves to everyone
 * and checks it the same way, so a log that shows the public a view it never showed the witness is caught.
 */
export interface WitnessOptions {
  readonly dir: string;
  readonly name: string;
  /** Trusted log keys (signed-note verifier keys); each key's name is the log origin. */
  readonly logKeys: readonly string[];
  /** The log's base URL, polled every `pollMs` (0: never). */
  readonly logUrl?: string;
  readonly pollMs: number;
  readonly host: string;
  readonly port: number;
  readonly log: Logger;
  readonly now?: () => number;
}

interface StoredState {
  size: number;
  root: string; // base64
  note: string; // the last cosigned checkpoint, with the cosignatures
}

export interface Witness {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly verifierKeys: readonly string[];
  /** Feed one checkpoint (as if posted); used by the poller. */
  submit(body: string): Promise<{ status: number; body: string; contentType: string }>;
  close(): Promise<void>;
}

export async function startWitness(o: WitnessOptions): Promise<Witness> {
  await mkdir(o.dir, { recursive: true, mode: 0o700 });
  const now = o.now ?? Date.now;
  const signers: NoteSigner[] = [
    ed25519Cosigner(o.name, await readOrCreateSeed(path.join(o.dir, 'ed25519.seed')), now),
    mldsa44Cosigner(o.name, await readOrCreateSeed(path.join(o.dir, 'mldsa44.seed')), now),
  ];
  const logs = new Map<string, VerifierKey[]>();
  for (const k of o.logKeys) {
    const key = parseVerifierKey(k);
    logs.set(key.name, [...(logs.get(key.name) ?? []), key]);
  }
  if (logs.size === 0) throw new LenixError('BAD_REQUEST', 'a witness needs at least one --log-key');
  const stateFile = path.join(o.dir, 'state.json');
  let state: Record<string, StoredState> = {};
  try {
    state = JSON.parse(await readFile(stateFile, 'utf8')) as Record<string, StoredState>;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const stateFor = (origin: string): WitnessState | null => {
    const s = state[origin];
    return s ? { size: s.size, root: new Uint8Array(Buffer.from(s.root, 'base64')) } : null;
  };

  // One request at a time: checking the old size and persisting the new one must be atomic (tlog-witness).
  let chain: Promise<unknown> = Promise.resolve();
  const serialized = <T>(f: () => Promise<T>): Promise<T> => {
    const next = chain.then(f, f);
    chain = next.catch(() => undefined);
    return next;
  };

  const submit = (body: string) =>
    serialized(async () => {
      let req: AddCheckpointRequest;
      try {
        req = parseAddCheckpoint(body);
      } catch (err) {
        return { status: 400, body: `${(err as Error).message}\n`, contentType: 'text/plain; charset=utf-8' };
      }
      const d = decide(req, logs, stateFor);
      if (!d.ok) {
        if (d.status === 422 || (d.status === 409 && d.reason.includes('fork')))
          o.log.error({ component: 'witness', reason: d.reason }, 'refused to cosign');
        if (d.status === 409 && d.size !== undefined)
          return { status: 409, body: `${d.size}\n`, contentType: 'text/x.tlog.size' };
        return { status: d.status, body: `${d.reason}\n`, contentType: 'text/plain; charset=utf-8' };
      }
      const lines = signers
        .map((s) => sigLine({ name: s.name, keyHash: s.keyHash, signature: s.signNote(d.text) }))
        .join('');
      const next = {
        ...state,
        [d.checkpoint.origin]: {
          size: d.checkpoint.size,
          root: Buffer.from(d.checkpoint.root).toString('base64'),
          note: `${d.text}\n${lines}`,
        },
      };
      const tmp = `${stateFile}.tmp`;
      await writeDurably(tmp, `${JSON.stringify(next, null, 2)}\n`, 0o600);
      await rename(tmp, stateFile);
      await fsyncDir(o.dir);
      state = next;
      o.log.info({ component: 'witness', origin: d.checkpoint.origin, size: d.checkpoint.size }, 'cosigned');
      return { status: 200, body: lines, contentType: 'text/plain; charset=utf-8' };
    });

  const app = Fastify({ logger: false, bodyLimit: 256 * 1024 });
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.post('/add-checkpoint', async (req, reply) => {
    const r = await submit(String(req.body ?? ''));
    return reply.status(r.status).type(r.contentType).send(r.body);
  });
  app.get('/key', async (_req, reply) =>
    reply.type('text/plain; charset=utf-8').send(signers.map((s) => `${s.verifierKey}\n`).join('')),
  );
  // For monitors: the last checkpoint this witness cosigned for a log, with its cosignatures.
  app.get<{ Querystring: { origin?: string } }>('/checkpoint', async (req, reply) => {
    const s = state[req.query.origin ?? [...logs.keys()][0]!];
    if (!s) return reply.status(404).type('text/plain').send('nothing cosigned for that origin yet\n');
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(s.note);
  });
  await app.listen({ host: o.host, port: o.port });
  const addr = app.server.address();
  const url = `http://${o.host}:${typeof addr === 'object' && addr ? addr.port : o.port}`;

  let timer: NodeJS.Timeout | null = null;
  let closed = false;
  if (o.logUrl && o.pollMs > 0) {
    const log = new LenixClient(new ApiClient(o.logUrl, null));
    const poll = async () => {
      try {
        const note = await log.ledger.checkpoint(AbortSignal.timeout(10_000));
        const origin = note.slice(0, note.indexOf('\n'));
        const known = state[origin]?.size ?? 0;
        const size = Number(note.split('\n')[1]);
        if (!Number.isSafeInteger(size) || size <= known) {
          if (size < known)
            o.log.error(
              { component: 'witness', origin, size, known },
              'the log serves a checkpoint smaller than one this witness cosigned',
            );
          return;
        }
        let proof: string[] = [];
        if (known > 0) {
          proof = (await log.ledger.consistency(known, size, AbortSignal.timeout(10_000))).proof;
        }
        await submit(
          formatAddCheckpoint(
            known,
            proof.map((h) => new Uint8Array(Buffer.from(h, 'hex'))),
            note,
          ),
        );
      } catch (err) {
        o.log.warn({ component: 'witness', err: (err as Error).message }, 'could not read the log');
      } finally {
        if (!closed) timer = setTimeout(() => void poll(), o.pollMs);
        timer?.unref();
      }
    };
    timer = setTimeout(() => void poll(), 0);
    timer.unref();
  }
  o.log.info({ component: 'witness', url, keys: signers.map((s) => s.verifierKey.slice(0, 60)) }, 'witness listening');
  return {
    app,
    url,
    verifierKeys: signers.map((s) => s.verifierKey),
    submit,
    close: async () => {
      closed = true;
      if (timer) clearTimeout(timer);
      await app.close();
    },
  };
}
