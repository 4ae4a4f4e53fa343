/**
 * Fair sharing between sources by start-time fair queuing (Goyal, Vin & Cheng, 1996): every task gets a
 * virtual start time when it is queued; leasing takes the queued task with the highest priority and the
 * smallest virtual start. A source's next task starts where its previous one did plus one, but never before
 * the current virtual time (the smallest virtual start still queued). So a source that queues 500 tasks at
 * once fills virtual times V..V+499, and a source that queues 1 task a moment later gets V again and is
 * served next, not after the 500.
 *
 * Because the order is a plain sort key, the store serves a lease from one index seek; no per-lease
 * aggregation over the queue is needed.
 */
export function virtualStart(currentVirtualTime: number, sourceLastStart: number | null): number {
  if (sourceLastStart === null) return currentVirtualTime;
  return Math.max(currentVirtualTime, sourceLastStart + 1);
}

/** The current virtual time: the head of the queue, or, with nothing queued, past everything handed out. */
export function currentVirtualTime(minQueuedStart: number | null, maxAssignedStart: number | null): number {
  if (minQueuedStart !== null) return minQueuedStart;
  return maxAssignedStart === null ? 0 : maxAssignedStart + 1;
}

/** Build priority as a sort key: bounded so that a wrong value cannot starve every other source forever. */
export const PRIORITY_MIN = -100;
export const PRIORITY_MAX = 100;
export function clampPriority(p: number): number {
  return Math.min(PRIORITY_MAX, Math.max(PRIORITY_MIN, Math.trunc(p)));
}
