import { existsSync } from 'node:fs';
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The cgroup v1 pids hierarchy (Debian and EL hosts with it mounted; a cgroup v2-only host has none). */
export const PIDS_V1 = '/sys/fs/cgroup/pids';

/**
 * A pids cgroup of its own for one sandbox, so that its process limit holds for it alone: RLIMIT_NPROC counts
 * every process of the host user, so without a cgroup a fork bomb in one sandbox also starves the other
 * sandboxes of that user (never the agents themselves, which are not that user). Only root can make one.
 */
export interface PidsCgroup {
  readonly dir: string;
  /** Remove it once the sandbox's processes are gone (waits for the kernel to release them). */
  release(): Promise<void>;
}

let made = 0;

export async function pidsCgroup(limit: number, root = PIDS_V1): Promise<PidsCgroup | null> {
  if (process.geteuid?.() !== 0 || !existsSync(path.join(root, 'cgroup.procs'))) return null;
  const dir = path.join(root, 'lenix', `sandbox-${process.pid}-${++made}`);
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'pids.max'), String(limit));
  } catch {
    return null;
  }
  return {
    dir,
    release: async () => {
      // Killed processes leave the cgroup as the kernel reaps them: poll until it is empty (bounded).
      for (let i = 0; i < 200; i++) {
        const procs = await readFile(path.join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
        if (procs.trim() === '' && (await rmdir(dir).then(() => true, () => false))) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}

/** The command prefix that moves the launching process into the cgroup before anything else starts. */
export function enterCgroup(cg: PidsCgroup | null): string[] {
  return cg ? ['sh', '-c', 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', 'lenix-cgroup', cg.dir] : [];
}
