/** A mirror's base URL as stored and compared: ending in one slash (the server and the CLI agree on it). */
export function mirrorBase(url: string): string {
  return `${url.replace(/\/+$/, '')}/`;
}
