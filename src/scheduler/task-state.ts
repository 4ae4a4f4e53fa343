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

/** What an agent reports when it ends its lease. */
export type Outcome =
  | { readonly kind: 'success' }
  | { readonly kind: 'failure'; readonly code: string; readonly reason: string } // deterministic: do not retry
  | { readonly kind: 'error'; readonly code: string; readonly reason: string }; // the agent's trouble: retry

/** The state a task moves to when a lease ends without success (agent error or lease expiry). */
export function afterLostAttempt(
  attempts: number,
  maxAttempts: number,
  code: string,
  reason: string,
): { state: 'queued' } | { state: 'failed'; code: string; reason: string } {
  if (attempts >= maxAttempts) {
    return {
      state: 'failed',
      code,
      reason: `${reason} (gave up after ${attempts} attempt${attempts === 1 ? '' : 's'})`,
    };
  }
  return { state: 'queued' };
}

/** A build's state from its tasks' states: any failure fails it, all done succeeds it. */
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
  | { readonly kind: 'fail-build'; readonly code: string; readonly reason: string };

/** The state a leased task ends in, with the reason recorded on it. */
export interface TaskEnd {
  readonly state: 'succeeded' | 'failed' | 'queued';
  readonly code: string | null;
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
