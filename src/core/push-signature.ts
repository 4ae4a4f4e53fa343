import { createHmac, timingSafeEqual } from 'node:crypto';

/** HMAC-SHA256 of the body in `X-Hub-Signature-256: sha256=HEX`, or the secret itself in `X-Gitlab-Token`. */
export function signedBy(secret: string, headers: Record<string, unknown>, body: Buffer): boolean {
  const hub = headers['x-hub-signature-256'];
  if (typeof hub === 'string' && hub.startsWith('sha256=')) {
    const want = createHmac('sha256', secret).update(body).digest();
    const got = Buffer.from(hub.slice('sha256='.length), 'hex');
    return got.length === want.length && timingSafeEqual(got, want);
  }
  const gitlab = headers['x-gitlab-token'];
  if (typeof gitlab === 'string') {
    const [a, b] = [Buffer.from(gitlab), Buffer.from(secret)];
    return a.length === b.length && timingSafeEqual(a, b);
  }
  return false;
}

/** The signature header value for a body (what `lenix hook post-receive` sends). */
export function hubSignature(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}
