/**
 * The digests an rpm database keeps for an installed package, so it can be matched without its file: the main
 * header's SHA-256 and SHA-1 (rpm's SHA256HEADER, SHA1HEADER) and the payload digest the header carries
 * (`ALGO:HEX`, null for packages built without one).
 */
export interface HeaderDigests {
  readonly sha256: string;
  readonly sha1: string;
  readonly payload: string | null;
}

/** The ledger index key that finds a package's statements by its header digest. */
export const HEADER_KEY_PREFIX = 'rpmheader:';
export const headerKey = (sha256: string) => `${HEADER_KEY_PREFIX}${sha256}`;
