import { cyclonedxJson, cyclonedxXml } from './cyclonedx.js';
import type { SbomFormat, SbomInput } from './sbom.js';
import { spdxJson, spdxTagValue } from './spdx.js';

/** One model, four documents. */
export function renderSbom(input: SbomInput, format: SbomFormat): string {
  switch (format) {
    case 'cyclonedx-json':
      return cyclonedxJson(input);
    case 'cyclonedx-xml':
      return cyclonedxXml(input);
    case 'spdx-json':
      return spdxJson(input);
    case 'spdx-tag-value':
      return spdxTagValue(input);
  }
}
