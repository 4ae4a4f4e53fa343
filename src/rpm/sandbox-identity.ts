import { readFile } from 'node:fs/promises';
import { LenixError } from '../core/errors.js';

/**
 * Who untrusted package code runs as on the host. Never root: a node, tester or server that runs as root drops
 * to a dedicated system user (created by the bootstrap) before the sandbox starts; one that already runs as an
 * ordinary user keeps that user. Either way the sandbox's user namespace maps its ids to that unprivileged host
 * user, so whatever "root" or capability a process holds inside reaches nothing outside.
 */
export type SandboxIdentity =
  | {
      readonly kind: 'system-user';
      readonly user: string;
      readonly uid: number;
      readonly gid: number;
      /** The user's subordinate ids (/etc/subuid, /etc/subgid), so a test root can hold files of many owners. */
      readonly subordinate: { readonly uid: number; readonly gid: number; readonly count: number } | null;
    }
  | { readonly kind: 'current-user'; readonly uid: number; readonly gid: number };

/** The system user the bootstrap creates for sandboxes. */
export const SANDBOX_USER = 'lenix-build';

/** How many subordinate ids a test root needs at least (uids 0–65535 inside, as on a real system). */
export const SUBORDINATE_IDS = 65536;

export interface IdentityFiles {
  readonly passwd: string;
  readonly subuid: string;
  readonly subgid: string;
}

/** Pure: the identity for a process with effective uid `euid`, from the contents of the account files. */
export function identityFrom(euid: number, egid: number, files: IdentityFiles, user = SANDBOX_USER): SandboxIdentity {
  if (euid !== 0) return { kind: 'current-user', uid: euid, gid: egid };
  const line = files.passwd.split('\n').find((l) => l.split(':')[0] === user);
  const fields = line?.split(':') ?? [];
  const uid = Number(fields[2]);
  const gid = Number(fields[3]);
  if (!line || !Number.isInteger(uid) || !Number.isInteger(gid)) {
    throw new LenixError(
      'SANDBOX_UNAVAILABLE',
      `running as root, but the sandbox user ${user} does not exist: run scripts/bootstrap.sh (or useradd --system ${user})`,
    );
  }
  if (uid === 0 || gid === 0)
    throw new LenixError('SANDBOX_UNAVAILABLE', `the sandbox user ${user} must not have uid or gid 0`);
  const range = (text: string) => {
    for (const l of text.split('\n')) {
      const [who, start, count] = l.trim().split(':');
      if ((who === user || who === String(uid)) && Number(count) >= SUBORDINATE_IDS && Number(start) > 0)
        return { start: Number(start), count: Number(count) };
    }
    return null;
  };
  const su = range(files.subuid);
  const sg = range(files.subgid);
  const subordinate =
    su && sg ? { uid: su.start, gid: sg.start, count: Math.min(su.count, sg.count, SUBORDINATE_IDS) } : null;
  return { kind: 'system-user', user, uid, gid, subordinate };
}

const readOr = (file: string) => readFile(file, 'utf8').catch(() => '');

/** The identity for this process: read once at start-up by every role that runs a sandbox. */
export async function resolveSandboxIdentity(user = SANDBOX_USER): Promise<SandboxIdentity> {
  const euid = process.geteuid?.() ?? -1;
  const egid = process.getegid?.() ?? -1;
  if (euid < 0) throw new LenixError('SANDBOX_UNAVAILABLE', 'sandboxes need a Linux host with user namespaces');
  return identityFrom(
    euid,
    egid,
    { passwd: await readOr('/etc/passwd'), subuid: await readOr('/etc/subuid'), subgid: await readOr('/etc/subgid') },
    user,
  );
}

/** One line for logs: who the sandbox is on the host. */
export function describeIdentity(id: SandboxIdentity): string {
  switch (id.kind) {
    case 'system-user':
      return `host user ${id.user} (uid ${id.uid}, gid ${id.gid})${id.subordinate ? `, subordinate ids ${id.subordinate.uid}+${id.subordinate.count}` : ''}`;
    case 'current-user':
      return `host uid ${id.uid} (the agent's own user)`;
  }
}
