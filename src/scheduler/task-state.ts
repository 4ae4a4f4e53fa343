/**
 * Task and build states and the rules that move between them. Pure: the store applies these decisions.
 *
 *   queued ──lease──▶ leased ──complete(success)──▶ succeeded
 *     ▲                 │ ├──complete(failure)──▶ failed            (the build itself failed: never retried)
 *     │                 │ └──complete(error) / lease expiry ──▶ queued again, or failed when attempts run out
 *     └─────────────────┘
 *   any unfinished state ──cancel──▶ cancelled
 */
export type TaskState = 'queued' | 'leased' | 'succeeded' | 'failed' | 'cancelled';
import type { TaskKind } from '../core/protocol.js';

export type { TaskKind } from '../core/protocol.js';

/** Kinds whose outcome decides the build's own state (signing and tests are reported beside it). */
export const BUILD_KINDS: readonly TaskKind[] = ['srpm', 'binary'];

/**
 * The pipeline after a build: its binary tasks succeed → one sign task; signing succeeds → one test task.
 * (`repomd` tasks sign repository metadata for a publish and start nothing.)
 */
export function nextStage(
  kind: TaskKind,
  buildState: BuildState,
  signing: boolean,
): { role: AgentRole; kind: TaskKind } | null {
  if (kind === 'binary' && buildState === 'succeeded' && signing) return { role: 'sign', kind: 'sign' };
  if (kind === 'sign') return { role: 'test', kind: 'test' };
  return null;
}
export type AgentRole = 'build' | 'sign' | 'test';
export type BuildState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export const BUILD_STATES: readonly BuildState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
export const AGENT_ROLES: readonly AgentRole[] = ['build', 'sign', 'test'];

export function isFinished(state: TaskState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled';
}

/**
 * Why a task failed: a closed list, so every code has a meaning readers can rely on (the dashboard, the
 * build's reason, statements). Agents report the first group; the server decides the rest.
 */
export const TASK_FAILURE_CODES = [
  // reported by agents
  'AGENT_ERROR', // the agent itself failed (retried)
  'ARCH_MISMATCH', // a binary package holds executables of another architecture, or is of another arch
  'ARTIFACT_DIGEST_MISMATCH', // a downloaded input does not hash to its recorded digest
  'BUILD_DISK_FULL',
  'BUILD_FAILED', // rpmbuild exited non-zero (also: a build whose other task failed)
  'BUILD_KILLED', // killed by a signal (the memory limit)
  'BUILD_LOG_LIMIT',
  'BUILD_TIMEOUT',
  'BUILDREQUIRES_MISSING', // nothing in the target's repositories provides a BuildRequires (all are named)
  'BUILDROOT_FAILED', // the buildroot could not be made (repository metadata, mounts)
  'CANCELLED',
  'KEY_NOT_FOUND', // the signer does not hold the key asked for
  'LOOKASIDE_PATH_UNSAFE',
  'NO_PACKAGES',
  'SIGN_FAILED',
  'SIGNATURE_INVALID',
  'SRPM_MISSING',
  'TEST_DISK_FULL',
  'TEST_KILLED',
  'TEST_LOG_LIMIT',
  'TEST_TIMEOUT',
  'TESTS_FAILED',
  // decided by the server
  'ARCH_EXCLUDED', // ExclusiveArch/ExcludeArch leave no target architecture
  'LEASE_EXPIRED', // no heartbeat within the lease (retried)
  'UNSIGNED_PACKAGES', // a sign task left packages without signatures
] as const;
export type TaskFailureCode = (typeof TASK_FAILURE_CODES)[number];

/** What an agent reports when it ends its lease. */
export type Outcome =
  | { readonly kind: 'success' }
  | { readonly kind: 'failure'; readonly code: TaskFailureCode; readonly reason: string } // deterministic: do not retry
  | { readonly kind: 'error'; readonly code: TaskFailureCode; readonly reason: string }; // the agent's trouble: retry

/** The state a task moves to when a lease ends without success (agent error or lease expiry). */
export function afterLostAttempt(
  attempts: number,
  maxAttempts: number,
  code: TaskFailureCode,
  reason: string,
): { state: 'queued' } | { state: 'failed'; code: TaskFailureCode; reason: string } {
  if (attempts >= maxAttempts) {
    return {
      state: 'failed',
      code,
      reason: `${reason} (gave up after ${attempts} attempt${attempts === 1 ? '' : 's'})`,
    };
  }
  return { state: 'queued' };
}

/** A build's state from its tasks' states: a failed task fails it, all done succeeds it. */
export function buildStateFromTasks(states: readonly TaskState[], srpmDone: boolean): BuildState {
  if (states.some((s) => s === 'cancelled')) return 'cancelled';
  if (states.some((s) => s === 'failed')) return 'failed';
  if (states.length > 0 && srpmDone && states.every((s) => s === 'succeeded')) return 'succeeded';
  if (states.some((s) => s === 'leased' || s === 'succeeded')) return 'running';
  return 'queued';
}

/** What happens after a successful task, decided by the service (which may read artifacts) before commit. */
export type FollowUp =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'fan-out';
      readonly role: AgentRole;
      readonly taskKind: TaskKind;
      readonly arches: readonly string[];
    }
  | { readonly kind: 'fail-build'; readonly code: TaskFailureCode; readonly reason: string };

/** The state a leased task ends in, with the reason recorded on it. */
export interface TaskEnd {
  readonly state: 'succeeded' | 'failed' | 'queued';
  readonly code: TaskFailureCode | null;
  readonly reason: string | null;
}

/**
 * Where a lease's outcome takes its task: success succeeds it (unless the follow-up fails the build, as when
 * the SRPM names packages nobody may build); a failure fails it for good; an agent's error requeues it until
 * the attempts are used up.
 */
export function taskEnd(
  outcome: Outcome,
  attempts: number,
  maxAttempts: number,
  followUp: FollowUp = { kind: 'none' },
): TaskEnd {
  switch (outcome.kind) {
    case 'success':
      return followUp.kind === 'fail-build'
        ? { state: 'failed', code: followUp.code, reason: followUp.reason }
        : { state: 'succeeded', code: null, reason: null };
    case 'failure':
      return { state: 'failed', code: outcome.code, reason: outcome.reason };
    case 'error': {
      const n = afterLostAttempt(attempts, maxAttempts, outcome.code, outcome.reason);
      return n.state === 'queued'
        ? { state: 'queued', code: outcome.code, reason: outcome.reason }
        : { state: 'failed', code: n.code, reason: n.reason };
    }
  }
}
