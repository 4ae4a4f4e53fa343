declare module 'spdx-expression-parse' {
  /** Parses an SPDX license expression; throws on anything else (unknown ids included). */
  function parse(expression: string): unknown;
  export default parse;
}
