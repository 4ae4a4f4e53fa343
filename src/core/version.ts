/** The Lenix release; a test keeps it equal to package.json's version. */
export const LENIX_VERSION = '0.1.0';
