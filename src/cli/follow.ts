import type { LenixClient } from '../client/lenix.js';

export interface SseEvent {
  readonly event: string;
  readonly id: string | null;
  readonly data: string;
}

/** Parse a text/event-stream body (WHATWG HTML §9.2) into events, as they arrive. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  let buf = '';
  let event = 'message';
  let id: string | null = null;
  let data: string[] = [];
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).replace(/\r$/, '');
      buf = buf.slice(nl + 1);
      if (line === '') {
        if (data.length > 0) yield { event, id, data: data.join('\n') };
        event = 'message';
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
  }
}

/** Follow a task's log until it ends; returns the task's final state. */
export async function followLog(
  api: LenixClient,
  taskId: number,
  onText: (text: string) => void,
  signal?: AbortSignal,
): Promise<string> {
  const res = await api.tasks.follow(taskId, signal);
  if (!res.body) return 'unknown';
  for await (const ev of readSse(res.body)) {
    if (ev.event === 'log') onText((JSON.parse(ev.data) as { text: string }).text);
    if (ev.event === 'end') return (JSON.parse(ev.data) as { state: string }).state;
  }
  return 'unknown';
}
