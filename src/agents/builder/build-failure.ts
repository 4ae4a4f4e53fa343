import type { SandboxLimits, SandboxResult } from '../../rpm/sandbox.js';
import type { TaskFailureCode } from '../../scheduler/task-state.js';

/** How a build's sandbox run failed, as the task's failure code and one line (null when it succeeded). */
export function describeFailure(
  r: SandboxResult,
  limits: SandboxLimits,
): { code: TaskFailureCode; reason: string } | null {
  switch (r.kind) {
    case 'exited':
      if (r.code === 0) return null;
      if (r.diskFull)
        return {
          code: 'BUILD_DISK_FULL',
          reason: `rpmbuild exited with status ${r.code} after the work folder reached its limit of ${Math.round(limits.diskBytes / 1024 ** 2)} MiB`,
        };
      return { code: 'BUILD_FAILED', reason: `rpmbuild exited with status ${r.code}` };
    case 'killed':
      if (r.why === 'timeout')
        return {
          code: 'BUILD_TIMEOUT',
          reason: `build killed after the wall-clock limit of ${Math.round(limits.timeoutMs / 1000)} s`,
        };
      if (r.why === 'cancelled') return { code: 'CANCELLED', reason: 'build cancelled; process tree killed' };
      if (r.why === 'log-limit')
        return {
          code: 'BUILD_LOG_LIMIT',
          reason: `build stopped: its log passed the limit of ${Math.round(limits.logBytes / 1024 ** 2)} MiB`,
        };
      return { code: 'BUILD_KILLED', reason: `rpmbuild was killed by ${r.signal ?? 'a signal'} (memory limit?)` };
  }
}
