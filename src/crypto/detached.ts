import { LenixError } from '../core/errors.js';

type OpenPgp = typeof import('openpgp');
let openpgp: Promise<OpenPgp> | null = null;

/** Load the library now, in the background (a server that publishes will check a signature soon). */
export function preloadVerifier(): void {
  openpgp ??= import('openpgp');
  openpgp.catch(() => {
    openpgp = null; // tried again on first use, which reports the error
  });
}

/**
 * Check an armored detached OpenPGP signature over `data` against one public key, in process (openpgp.js);
 * returns the key's fingerprint. Every signature the text holds must verify with that key (or its subkeys),
 * valid now. This is the publisher's check of each repomd.xml signature before a snapshot goes live: gpg (the
 * signer's tool, and gpgme in clients) would cost a process start per check, which blocks the server's event
 * loop for 8-22 ms. The library loads on first use.
 */
export async function verifyDetached(publicKey: string, data: Uint8Array, signature: string): Promise<string> {
  openpgp ??= import('openpgp');
  const pgp = await openpgp;
  try {
    const key = await pgp.readKey({ armoredKey: publicKey });
    const { signatures } = await pgp.verify({
      message: await pgp.createMessage({ binary: data }),
      signature: await pgp.readSignature({ armoredSignature: signature }),
      verificationKeys: key,
      expectSigned: true,
      format: 'binary',
    });
    await Promise.all(signatures.map((s) => s.verified));
    return key.getFingerprint().toUpperCase();
  } catch (err) {
    throw new LenixError('SIGNATURE_INVALID', `signature does not verify: ${(err as Error).message}`, { cause: err });
  }
}
