/**
 * What public records (the sources API, SBOMs, ledger statements) call a source. A repository on the server's
 * own disk is named by its Lenix name, never by its path there; a remote URL is kept, without credentials.
 */
export function isLocalSourceUrl(url: string): boolean {
  return url.startsWith('/') || url.startsWith('file://');
}

export function publicSourceUrl(name: string, url: string): string {
  if (isLocalSourceUrl(url)) return `lenix:source/${name}`;
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}
