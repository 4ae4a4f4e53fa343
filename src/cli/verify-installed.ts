import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { judgeInstalled, type InstalledVerdict, type Provenance } from '../attest/installed.js';
import { RPM_HEADER_DIGEST } from '../attest/statements.js';
import { type ProofBundle, stageOf } from '../attest/verify-chain.js';
import { peekStatement } from '../attest/dsse.js';
import { LenixError } from '../core/errors.js';
import { parseCheckpoint } from '../ledger/checkpoint.js';
import {
  type ChangedFile,
  changedFiles,
  type InstalledPackage,
  installedNevra,
  readInstalled,
} from '../rpm/installed.js';
import { apiClientFor } from './config.js';
import { checkpointSize, lastSeen, remember } from './ledger-state.js';
import { printJson, table } from './output.js';
import type { Pins } from './pins.js';

/** One installed package, judged. */
export interface InstalledResult {
  readonly package: InstalledPackage;
  readonly verdict: InstalledVerdict;
  readonly reason: string | null;
  readonly provenance: Provenance | null;
  /** Files changed since install (not %config). */
  readonly changed: readonly ChangedFile[];
  /** %config files an administrator changed: reported, not a failure. */
  readonly configChanged: readonly ChangedFile[];
}

/** Verdicts that fail the run: a package that claims to come from this Lenix and is not what it recorded. */
export const failing = (v: InstalledVerdict) => v === 'modified files' || v === 'proof failed';

/**
 * The machine's packages (or those named) from its rpm database, each matched by header digest to its ledger
 * statements — from the server in one request, or from proof bundles in a folder — and judged against the pinned
 * keys; proven packages are then checked with `rpm -V` for files changed since install.
 */
export async function scanInstalled(
  cmd: Command,
  names: readonly string[],
  pins: Pins,
  o: { root: string; proofs?: string },
): Promise<InstalledResult[]> {
  const installed = await readInstalled(o.root, names);
  const headers = installed.map((p) => p.headerSha256).filter((h): h is string => h !== null);
  let bundles: Map<string, ProofBundle>;
  const lenixKeys = new Set<string>();
  let previous: { size: number; root: Uint8Array; proof: readonly string[] } | undefined;
  if (o.proofs) bundles = await bundlesIn(o.proofs);
  else {
    const api = await apiClientFor(cmd);
    const [found, keys] = await Promise.all([api.ledger.lookupHeaders(headers), api.keys.list()]);
    bundles = new Map(Object.entries(found.bundles));
    if (keys.signingKey) lenixKeys.add(keys.signingKey);
    // One checkpoint for all: consistent with the one this client verified before (a forked log cannot be).
    const first = [...bundles.values()][0];
    const seen = await lastSeen(pins.logKey);
    if (first && seen) {
      const size = await checkpointSize(first.checkpoint);
      if (seen.size > size)
        throw new LenixError(
          'SIGNATURE_INVALID',
          `checkpoint: the log shows ${size} entries, fewer than the ${seen.size} seen before (rolled back)`,
        );
      const { proof } = await api.ledger.consistency(seen.size, size);
      previous = { size: seen.size, root: new Uint8Array(Buffer.from(seen.root, 'hex')), proof };
    }
  }
  const verify = {
    ...(previous ? { previous } : {}),
    ...(pins.pq ? { pq: pins.pq } : {}),
    ...(pins.witnesses ? { witnesses: pins.witnesses } : {}),
  };
  // The keys this Lenix signs with: the server's, and every key a proven package was signed with.
  const judged = installed.map((p) => ({
    p,
    j: judgeInstalled(p, p.headerSha256 ? bundles.get(p.headerSha256) : undefined, pins.logKeys, {
      lenixKeys: [],
      verify,
    }),
  }));
  for (const { j } of judged) if (j.verdict === 'proven' && j.provenance.key) lenixKeys.add(j.provenance.key);
  // Judged again only when the first pass did not know every key: a package signed by a Lenix key claims Lenix.
  const final = judged.map(({ p, j }) => ({
    p,
    j:
      j.verdict === 'not from this Lenix' && lenixKeys.size > 0
        ? judgeInstalled(p, p.headerSha256 ? bundles.get(p.headerSha256) : undefined, pins.logKeys, {
            lenixKeys: [...lenixKeys],
            verify,
          })
        : j,
  }));
  // `rpm -V` for the proven packages, a few at a time (each is a process reading the package's files).
  const results: InstalledResult[] = new Array(final.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < final.length; i = next++) {
      const { p, j } = final[i]!;
      if (j.verdict !== 'proven') {
        results[i] = {
          package: p,
          verdict: j.verdict,
          reason: j.reason,
          provenance: null,
          changed: [],
          configChanged: [],
        };
        continue;
      }
      const files = await changedFiles(o.root, p);
      const changed = files.filter((f) => !f.config);
      results[i] = {
        package: p,
        verdict: changed.length > 0 ? 'modified files' : 'proven',
        reason: changed.length > 0 ? `changed since install: ${changed.map((f) => f.path).join(', ')}` : null,
        provenance: j.provenance,
        changed,
        configChanged: files.filter((f) => f.config),
      };
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  // Remember the newest checkpoint verified, so that a later run notices a log that went back.
  const proven = results.map((r) => r.provenance).filter((x): x is Provenance => x !== null);
  const newest = proven.sort((a, b) => b.treeSize - a.treeSize)[0];
  if (newest) await remember(pins.logKey, newest.treeSize, newest.checkpoint);
  return results;
}

/**
 * Proof bundles in a folder (`*.proof`, as the repository serves them next to its packages), by the header
 * digests their sign, import and release statements name. Unverified here: the judge verifies each before believing it.
 */
async function bundlesIn(dir: string): Promise<Map<string, ProofBundle>> {
  const files = await readdir(dir).catch(() => {
    throw new LenixError('NOT_FOUND', `cannot read the folder ${dir}`);
  });
  const out = new Map<string, ProofBundle>();
  // A package's own bundle has the sign (or import) statement naming its header; another package's bundle may
  // name it only in a release statement, without the chain to prove it: used only when there is nothing better.
  const fallback = new Map<string, ProofBundle>();
  for (const f of files.filter((x) => x.endsWith('.proof')).sort()) {
    let bundle: ProofBundle;
    try {
      bundle = JSON.parse(await readFile(path.join(dir, f), 'utf8')) as ProofBundle;
      if (!Array.isArray(bundle.entries) || typeof bundle.checkpoint !== 'string') throw new Error('shape');
    } catch {
      throw new LenixError('BAD_REQUEST', `${f} is not a proof bundle`);
    }
    const named = headersNamed(bundle);
    for (const h of named.own) if (!out.has(h)) out.set(h, bundle);
    for (const h of named.released) if (!fallback.has(h)) fallback.set(h, bundle);
  }
  for (const [h, b] of fallback) if (!out.has(h)) out.set(h, b);
  return out;
}

function headersNamed(bundle: ProofBundle): { own: string[]; released: string[] } {
  const out = { own: [] as string[], released: [] as string[] };
  for (const e of bundle.entries) {
    try {
      const st = peekStatement(Buffer.from(e.entry, 'base64'));
      const stage = stageOf(st.predicateType);
      if (stage !== 'sign' && stage !== 'import' && stage !== 'release') continue;
      for (const s of st.subject) {
        const h = s.digest[RPM_HEADER_DIGEST];
        if (typeof h === 'string' && /^[0-9a-f]{64}$/.test(h)) out[stage === 'release' ? 'released' : 'own'].push(h);
      }
    } catch {
      /* not a statement: the judge's verification fails the bundle */
    }
  }
  return out;
}

/** `lenix verify --installed`: prints the table (or JSON); true when any package that claims Lenix fails. */
export async function verifyInstalled(
  cmd: Command,
  names: readonly string[],
  pins: Pins,
  o: { root: string; proofs?: string; json: boolean },
): Promise<boolean> {
  const results = await scanInstalled(cmd, names, pins, o);
  const failed = results.some((r) => failing(r.verdict));
  const proven = results.find((r) => r.provenance)?.provenance;
  const checkpoint = proven
    ? (() => {
        const cp = parseCheckpoint(proven.checkpoint.slice(0, proven.checkpoint.lastIndexOf('\n\n') + 1));
        return { origin: cp.origin, treeSize: cp.size };
      })()
    : null;
  if (o.json) {
    printJson({
      root: o.root,
      checkpoint,
      failed,
      packages: results.map((r) => ({
        package: installedNevra(r.package),
        name: r.package.name,
        verdict: r.verdict,
        reason: r.reason,
        headerSha256: r.package.headerSha256,
        ...(r.provenance
          ? (({ checkpoint: _c, treeSize: _t, ...p }) => p)(r.provenance)
          : { sha256: null, repository: null, commit: null, buildId: null, key: null, releases: [] }),
        changed: r.changed,
        configChanged: r.configChanged,
      })),
    });
    return failed;
  }
  const lines = [
    checkpoint
      ? `verified against checkpoint ${checkpoint.origin} at tree size ${checkpoint.treeSize}`
      : 'no package on this machine was proven from the ledger',
    table(
      results.map((r) => [
        installedNevra(r.package),
        r.verdict,
        r.provenance?.commit?.slice(0, 12) ?? null,
        r.provenance?.buildId ?? (r.provenance?.imported ? 'import' : null),
        r.provenance?.key?.slice(-16) ?? r.package.signatureKeyId,
        r.provenance?.releases.join(',') || null,
      ]),
      ['PACKAGE', 'VERDICT', 'COMMIT', 'BUILD', 'KEY', 'RELEASE'],
    ),
  ];
  for (const r of results) {
    if (r.verdict === 'proof failed') lines.push(`${installedNevra(r.package)}: ${r.reason}`);
    for (const f of r.changed) lines.push(`  modified: ${f.path} (${f.flags})`);
    for (const f of r.configChanged) lines.push(`  config changed (not a failure): ${f.path} (${f.flags})`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return failed;
}
