/** The SBOM documents Lenix writes (attest/sbom.ts), here so that a command line can name them cheaply. */
export const SBOM_FORMATS = ['cyclonedx-json', 'cyclonedx-xml', 'spdx-json', 'spdx-tag-value'] as const;
export type SbomFormat = (typeof SBOM_FORMATS)[number];
