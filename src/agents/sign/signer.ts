import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { LenixError } from '../../core/errors.js';
import { parsePlainName } from '../../core/ids.js';
import type { RepomdTaskPayload, SignTaskPayload } from '../../core/protocol.js';
import { detachSign, exportPublicKey, type KeyInfo, listSecretKeys, useKeyFolderBase } from '../../crypto/gpg.js';
import { bothSignaturesOk, rpmCheckSignatures, rpmsign } from '../../rpm/tools.js';
import type { AgentClient } from '../../client/agent.js';
import type { ApiClient } from '../../client/http.js';
import { LenixClient } from '../../client/lenix.js';
import { runAgent, type TaskContext, type TaskReport } from '../kit/run-agent.js';
import { stepTimer } from '../kit/step-timer.js';

export interface SignerOptions {
  readonly client: AgentClient;
  readonly api: ApiClient;
  readonly name: string;
  /** The GnuPG home holding the private keys (mode 0700). Nothing else in Lenix reads it. */
  readonly keysDir: string;
  readonly workRoot: string;
  readonly log: Logger;
  readonly stop: AbortSignal;
}

/**
 * The sign server: the only process with private keys. It announces its public keys, then leases sign
 * tasks (every package of a build, checked against the build record's SHA-256 before signing) and repomd
 * tasks (detached signatures over repository metadata for a publish).
 */
export async function runSigner(o: SignerOptions): Promise<void> {
  // The rpm database that checks each package after signing lives in the work folder (see the server's).
  await useKeyFolderBase(o.workRoot);
  const keys = await listSecretKeys(o.keysDir);
  if (keys.length === 0)
    throw new LenixError(
      'NO_SIGNING_KEY',
      `no private keys in ${o.keysDir}; run lenix keys generate NAME --keys ${o.keysDir}`,
    );
  for (const k of keys) {
    await new LenixClient(o.api).keys.add(await exportPublicKey(o.keysDir, k.fingerprint));
    o.log.info({ fingerprint: k.fingerprint, algorithm: k.algorithm }, 'public key registered');
  }
  await runAgent<SignTaskPayload | RepomdTaskPayload>({
    client: o.client,
    name: o.name,
    role: 'sign',
    arches: ['any'],
    capabilities: { keys: keys.map((k) => k.fingerprint) },
    log: o.log,
    stop: o.stop,
    handle: (ctx) =>
      ctx.task.kind === 'repomd'
        ? signMetadata(o, ctx as TaskContext<RepomdTaskPayload>)
        : signPackages(o, ctx as TaskContext<SignTaskPayload>),
  });
}

async function signMetadata(o: SignerOptions, ctx: TaskContext<RepomdTaskPayload>): Promise<TaskReport> {
  const signatures: { path: string; signature: string }[] = [];
  for (const f of ctx.task.files) {
    const data = Buffer.from(f.contentBase64, 'base64');
    if (createHash('sha256').update(data).digest('hex') !== f.sha256) {
      return {
        outcome: { kind: 'failure', code: 'ARTIFACT_DIGEST_MISMATCH', reason: `${f.path} does not match its sha256` },
        result: null,
      };
    }
    signatures.push({ path: f.path, signature: await detachSign(o.keysDir, ctx.task.keyFingerprint, data) });
    ctx.log.write(`lenix: signed ${f.path} (sha256 ${f.sha256}) with ${ctx.task.keyFingerprint}\n`);
  }
  return { outcome: { kind: 'success' }, result: { signatures, key: ctx.task.keyFingerprint } };
}

/**
 * A key's public half, exported by gpg once per signer process (one gpg start fewer a task). A signing subkey
 * added to the keyring later is missing from it until the signer restarts: packages signed with that subkey then
 * fail the check after signing (SIGNATURE_INVALID) rather than pass it.
 */
const publicKeys = new Map<string, Promise<string>>();
function publicKeyOf(keysDir: string, fingerprint: string): Promise<string> {
  const key = `${keysDir}\0${fingerprint}`;
  let pub = publicKeys.get(key);
  if (!pub) {
    pub = exportPublicKey(keysDir, fingerprint);
    publicKeys.set(key, pub);
    pub.catch(() => publicKeys.delete(key));
  }
  return pub;
}

/**
 * The keyring's secret keys, listed by gpg again only when its files have changed (a key imported or removed
 * changes pubring.kbx or the private-keys-v1.d folder): one gpg start fewer a task.
 */
const secretKeys = new Map<string, { stamp: string; keys: Promise<KeyInfo[]> }>();
async function secretKeysOf(keysDir: string): Promise<KeyInfo[]> {
  const stamps = await Promise.all(
    ['pubring.kbx', 'private-keys-v1.d'].map((f) =>
      stat(path.join(keysDir, f)).then(
        (s) => `${s.ino}:${s.mtimeMs}:${s.size}`,
        () => '-',
      ),
    ),
  );
  const stamp = stamps.join(' ');
  const held = secretKeys.get(keysDir);
  if (held?.stamp === stamp) return held.keys;
  const keys = listSecretKeys(keysDir);
  secretKeys.set(keysDir, { stamp, keys });
  keys.catch(() => {
    if (secretKeys.get(keysDir)?.keys === keys) secretKeys.delete(keysDir);
  });
  return keys;
}

async function signPackages(o: SignerOptions, ctx: TaskContext<SignTaskPayload>): Promise<TaskReport> {
  const t = ctx.task;
  const say = (line: string) => ctx.log.write(`lenix: ${line}\n`);
  const took = stepTimer(say);
  const work = await mkdtemp(path.join(o.workRoot, `sign-${t.taskId}-`));
  try {
    const mine = await secretKeysOf(o.keysDir);
    if (!mine.some((k) => k.fingerprint === t.keyFingerprint)) {
      return {
        outcome: {
          kind: 'failure',
          code: 'KEY_NOT_FOUND',
          reason: `this signer does not hold key ${t.keyFingerprint}`,
        },
        result: null,
      };
    }
    const files: { file: string; ref: SignTaskPayload['packages'][number] }[] = [];
    for (const p of t.packages) {
      const file = path.join(work, parsePlainName(p.name, 'package name'));
      try {
        await o.api.download(p.url, file, p.sha256);
      } catch (err) {
        // The server refuses to serve a blob that no longer matches its digest, and download() checks again.
        if (
          err instanceof LenixError &&
          (err.code === 'DIGEST_MISMATCH' || err.code === 'BLOB_CORRUPT' || err.code === 'INTERNAL')
        ) {
          say(
            `refusing to sign ${p.name}: its bytes do not match the build record's sha256 ${p.sha256} (${err.message})`,
          );
          return {
            outcome: {
              kind: 'failure',
              code: 'ARTIFACT_DIGEST_MISMATCH',
              reason: `${p.name} does not match sha256 ${p.sha256}; nothing was signed`,
            },
            result: null,
          };
        }
        throw err;
      }
      say(`${p.name}: sha256 ${p.sha256} matches the build record`);
      files.push({ file, ref: p });
    }
    took('key and downloads');
    say(`rpmsign --addsign --rpmv3 (${files.length} packages) with ${t.keyFingerprint}`);
    try {
      await rpmsign(
        files.map((f) => f.file),
        { fingerprint: t.keyFingerprint, gnupgHome: o.keysDir },
      );
    } catch (err) {
      const e = err as { stderr?: string };
      say(`rpmsign failed: ${(e.stderr ?? '').trim()}`);
      return {
        outcome: {
          kind: 'error',
          code: 'SIGN_FAILED',
          reason: (e.stderr ?? 'rpmsign failed').trim().split('\n').pop()!.slice(0, 500),
        },
        result: null,
      };
    }
    took('rpmsign');
    const pub = await publicKeyOf(o.keysDir, t.keyFingerprint);
    const checks = await rpmCheckSignatures(
      pub,
      files.map((f) => f.file),
    );
    for (const f of files) {
      const out = checks.get(f.file) ?? '';
      if (!bothSignaturesOk(out)) {
        say(`rpmkeys -K on ${f.ref.name}:\n${out}`);
        return {
          outcome: {
            kind: 'failure',
            code: 'SIGNATURE_INVALID',
            reason: `${f.ref.name} does not verify after signing`,
          },
          result: null,
        };
      }
    }
    say(`rpmkeys -K: header and header+payload signatures OK for all ${files.length} packages`);
    took('signature check');
    const signed: { name: string; sha256: string; parent: string }[] = [];
    for (const f of files) {
      const up = await ctx.upload(f.file, {
        name: f.ref.name,
        kind: f.ref.kind === 'srpm' ? 'signed-srpm' : 'signed-rpm',
        parent: f.ref.sha256,
      });
      signed.push({ name: f.ref.name, sha256: up.sha256, parent: f.ref.sha256 });
      say(`uploaded signed ${f.ref.name} sha256 ${up.sha256}`);
    }
    took('upload');
    return { outcome: { kind: 'success' }, result: { key: t.keyFingerprint, signed } };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
