import type { HeaderDigests } from '../core/header-digests.js';
import { MANIFEST_FORMAT } from './manifest.js';

/**
 * in-toto Statement v1 (https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md) for each
 * stage a package goes through. Pure: inputs are plain records; the server signs (dsse.ts) and logs them.
 */
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const SLSA_PROVENANCE = 'https://slsa.dev/provenance/v1';
export const TEST_RESULT = 'https://in-toto.io/attestation/test-result/v0.1';
export const LENIX_SOURCE = 'https://lenix.dev/attestation/source/v1';
export const LENIX_SIGN = 'https://lenix.dev/attestation/sign/v1';
export const LENIX_RELEASE = 'https://lenix.dev/attestation/release/v1';
export const LENIX_SBOM = 'https://lenix.dev/attestation/sbom/v1';
export const LENIX_IMPORT = 'https://lenix.dev/attestation/import/v1';

export type Stage = 'source' | 'build' | 'sign' | 'test' | 'release' | 'sbom' | 'import';

/** A package imported rather than built: its bytes, the key its signature verified against (or none), who. */
export function importStatement(i: {
  importId: number;
  name: string;
  nevra: string;
  sha256: string;
  key: string | null;
  repository: string;
  importedBy: string;
  header?: HeaderDigests | undefined;
}): Statement {
  return statement([{ name: i.name, digest: packageDigest(i.sha256, i.header) }], LENIX_IMPORT, {
    importId: i.importId,
    nevra: i.nevra,
    ...headerFacts(i.header),
    signature: i.key ? { key: i.key, verified: true } : { unsigned: true },
    repository: i.repository,
    importedBy: i.importedBy,
  });
}

/**
 * A package file's digest set: its sha256, and the SHA-256 of its main header (what an rpm database keeps of an
 * installed package, so `lenix verify --installed` finds its statements without the file).
 */
export const RPM_HEADER_DIGEST = 'rpmHeaderSha256';
const packageDigest = (sha256: string, header: HeaderDigests | undefined): Record<string, string> =>
  header ? { sha256, [RPM_HEADER_DIGEST]: header.sha256 } : { sha256 };
const headerFacts = (header: HeaderDigests | undefined) =>
  header
    ? {
        header: { sha256: header.sha256, sha1: header.sha1 },
        ...(header.payload ? { payloadDigest: header.payload } : {}),
      }
    : {};

export interface Subject {
  readonly name: string;
  readonly digest: Readonly<Record<string, string>>;
}

export interface Statement {
  readonly _type: typeof STATEMENT_TYPE;
  readonly subject: readonly Subject[];
  readonly predicateType: string;
  readonly predicate: Readonly<Record<string, unknown>>;
}

const statement = (
  subject: readonly Subject[],
  predicateType: string,
  predicate: Record<string, unknown>,
): Statement => ({ _type: STATEMENT_TYPE, subject, predicateType, predicate });

export function sourceStatement(s: {
  repository: string;
  ref: string;
  commit: string;
  tree: string;
  specPath: string;
  specSha256: string;
  buildId: number;
}): Statement {
  return statement([{ name: s.repository, digest: { gitCommit: s.commit, gitTree: s.tree } }], LENIX_SOURCE, {
    repository: s.repository,
    ref: s.ref,
    commit: s.commit,
    tree: s.tree,
    spec: { path: s.specPath, digest: { sha256: s.specSha256 } },
    buildId: s.buildId,
  });
}

export function buildStatement(b: {
  buildId: number;
  repository: string;
  ref: string;
  commit: string;
  arches: readonly string[];
  builders: readonly string[];
  startedOn: string | null;
  finishedOn: string | null;
  artifacts: readonly { name: string; sha256: string }[];
  buildroots: readonly unknown[];
  /** Packages installed in the buildroots of a target's build: each a resolved dependency with its digest. */
  installed?: readonly { nevra: string; sha256: string; repo: string; snapshotId: number | null }[];
  logs: readonly { name: string; sha256: string }[];
}): Statement {
  return statement(
    b.artifacts.map((a) => ({ name: a.name, digest: { sha256: a.sha256 } })),
    SLSA_PROVENANCE,
    {
      buildDefinition: {
        buildType: 'https://lenix.dev/buildtypes/rpmbuild-bwrap/v1',
        externalParameters: { source: { uri: b.repository, ref: b.ref, commit: b.commit } },
        internalParameters: { arches: b.arches, buildId: b.buildId },
        resolvedDependencies: [
          { uri: `git+${b.repository}@${b.commit}`, digest: { gitCommit: b.commit } },
          ...b.buildroots.map((r) => ({ name: 'buildroot', annotations: r })),
          ...(b.installed ?? []).map((p) => ({
            name: `${p.nevra}.rpm`,
            digest: { sha256: p.sha256 },
            annotations: { buildDependency: true, repository: p.repo, snapshot: p.snapshotId },
          })),
        ],
      },
      runDetails: {
        builder: { id: b.builders.join(',') },
        metadata: { invocationId: `build:${b.buildId}`, startedOn: b.startedOn, finishedOn: b.finishedOn },
        byproducts: b.logs.map((l) => ({ name: l.name, digest: { sha256: l.sha256 } })),
      },
    },
  );
}

export function signStatement(s: {
  buildId: number;
  key: string;
  pairs: readonly { name: string; unsigned: string; signed: string; header?: HeaderDigests | undefined }[];
}): Statement {
  return statement(
    s.pairs.map((p) => ({ name: p.name, digest: packageDigest(p.signed, p.header) })),
    LENIX_SIGN,
    {
      buildId: s.buildId,
      keyFingerprint: s.key,
      packages: s.pairs.map((p) => ({
        name: p.name,
        unsigned: { sha256: p.unsigned },
        signed: { sha256: p.signed },
        ...headerFacts(p.header),
      })),
    },
  );
}

export function testStatement(t: {
  buildId: number;
  passed: boolean;
  packages: readonly { name: string; sha256: string }[];
  stages: readonly { name: string; outcome: string; detail: string }[];
  logSha256: string;
  tester: string;
}): Statement {
  return statement(
    t.packages.map((p) => ({ name: p.name, digest: { sha256: p.sha256 } })),
    TEST_RESULT,
    {
      result: t.passed ? 'PASSED' : 'FAILED',
      configuration: [{ name: 'lenix-test-root', annotations: { tester: t.tester } }],
      passedTests: t.stages.filter((s) => s.outcome === 'passed').map((s) => s.name),
      warnedTests: t.stages.filter((s) => s.outcome === 'skipped').map((s) => s.name),
      failedTests: t.stages.filter((s) => s.outcome === 'failed').map((s) => s.name),
      stages: t.stages,
      log: { digest: { sha256: t.logSha256 } },
      buildId: t.buildId,
    },
  );
}

export function releaseStatement(
  r: {
    repository: string;
    releaseId: number;
    snapshotId: number;
    repomd: Readonly<Record<string, string>>;
    packages: readonly { name: string; sha256: string; arch: string; header?: HeaderDigests | undefined }[];
    overrideReason: string | null;
  },
  manifest?: { sha256: string; root: string; count: number },
): Statement {
  // A tile entry holds at most 64 KiB: a large release names a content-addressed manifest of its packages
  // (attest/manifest.ts) instead of every package. Look-ups by package digest find the release either way.
  const subject = manifest
    ? [{ name: 'release-manifest', digest: { sha256: manifest.sha256 } }]
    : [
        ...new Map(
          r.packages.map((p) => [p.sha256, { name: p.name, digest: packageDigest(p.sha256, p.header) }]),
        ).values(),
      ];
  return statement(subject, LENIX_RELEASE, {
    repository: r.repository,
    releaseId: r.releaseId,
    snapshot: r.snapshotId,
    repomd: Object.fromEntries(Object.entries(r.repomd).map(([a, s]) => [a, { sha256: s }])),
    overrideReason: r.overrideReason,
    ...(manifest
      ? {
          manifest: {
            format: MANIFEST_FORMAT,
            sha256: manifest.sha256,
            merkleRoot: manifest.root,
            count: manifest.count,
          },
        }
      : {}),
  });
}

/** An SBOM Lenix served: its digest, format and what it describes (`build:12`, `snapshot:lenix:4`, `sha256:…`). */
export function sbomStatement(s: {
  sha256: string;
  format: string;
  mediaType: string;
  describes: string;
  name: string;
}): Statement {
  return statement([{ name: s.name, digest: { sha256: s.sha256 } }], LENIX_SBOM, {
    format: s.format,
    mediaType: s.mediaType,
    describes: s.describes,
  });
}
