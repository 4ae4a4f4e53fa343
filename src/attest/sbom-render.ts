import { cyclonedxJson, cyclonedxXml } from './cyclonedx.js';
import { distinctInput, type SbomFormat, type SbomInput } from './sbom.js';
import { spdxJson, spdxTagValue } from './spdx.js';

/** One model, four documents. */
export function renderSbom(whole: SbomInput, format: SbomFormat): string {
  const input = distinctInput(whole);
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
