import * as CDX from '@cyclonedx/cyclonedx-library';
import { PackageURL } from 'packageurl-js';
import {
  buildrootRef,
  classifyLicense,
  evr,
  packageFacts,
  packageRef,
  resolveRequires,
  rpmPurl,
  stableUuid,
  type BuildrootItem,
  type SbomInput,
  type SbomPackage,
  type SbomStep,
} from './sbom.js';

/**
 * CycloneDX 1.6 (JSON and XML) through @cyclonedx/cyclonedx-library: the model's packages as components
 * with purl, SHA-256, license, supplier and Lenix facts as properties (source RPM, signing key, build node and
 * time, git commit, ledger entries); runtime Requires that resolve inside the document as the dependency graph. The library has no
 * formulation model, so `formulation` (the buildroot as components, the pipeline as a workflow of tasks) is
 * added to the library's normalized output, in the schema's element order.
 */
const SPEC = CDX.Spec.Spec1dot6;
const SUBJECT_REF = 'lenix-subject';
const ORDER = { sortLists: true };

function component(p: SbomPackage, input: SbomInput): CDX.Models.Component {
  const c = new CDX.Models.Component(CDX.Enums.ComponentType.Library, p.name, {
    version: evr(p),
    bomRef: packageRef(p),
  });
  c.supplier = new CDX.Models.OrganizationalEntity({ name: input.supplier });
  c.publisher = input.supplier;
  if (p.summary) c.description = p.summary;
  c.purl = rpmPurl(p, input.vendor, input.distro);
  c.hashes.set(CDX.Enums.HashAlgorithm['SHA-256'], p.sha256);
  const lic = classifyLicense(p.license);
  if (lic.kind === 'expression') c.licenses.add(new CDX.Models.LicenseExpression(lic.expression));
  if (lic.kind === 'named') c.licenses.add(new CDX.Models.NamedLicense(lic.name));
  c.externalReferences.add(
    new CDX.Models.ExternalReference(p.gitUrl, CDX.Enums.ExternalReferenceType.VCS, { comment: `commit ${p.commit}` }),
  );
  if (p.url && /^[a-z]+:\/\//i.test(p.url))
    c.externalReferences.add(new CDX.Models.ExternalReference(p.url, CDX.Enums.ExternalReferenceType.Website));
  for (const [k, v] of packageFacts(p)) c.properties.add(new CDX.Models.Property(k, v));
  return c;
}

function buildrootComponent(b: BuildrootItem): CDX.Models.Component {
  const c = new CDX.Models.Component(
    b.manager === 'tool' ? CDX.Enums.ComponentType.Application : CDX.Enums.ComponentType.Library,
    b.name,
    { version: b.version, bomRef: buildrootRef(b) },
  );
  if (b.manager === 'dpkg') c.purl = new PackageURL('deb', 'debian', b.name, b.version, null).toString();
  if (b.manager === 'rpm')
    c.purl = new PackageURL('rpm', null, b.name, b.version, b.arch ? { arch: b.arch } : null).toString();
  if (b.sha256) c.hashes.set(CDX.Enums.HashAlgorithm['SHA-256'], b.sha256);
  c.properties.add(new CDX.Models.Property('lenix:buildroot', b.manager));
  if (b.origin) c.properties.add(new CDX.Models.Property('lenix:buildroot-origin', b.origin));
  return c;
}

function bomOf(input: SbomInput, format: string): { bom: CDX.Models.Bom; buildroot: CDX.Models.Component[] } {
  const bom = new CDX.Models.Bom();
  bom.serialNumber = `urn:uuid:${stableUuid(input, format)}`;
  bom.metadata.timestamp = new Date(input.timestamp);
  bom.metadata.tools.components.add(
    // Every ref is given (the library would make up a random one for a component without).
    new CDX.Models.Component(CDX.Enums.ComponentType.Application, 'lenix', {
      version: input.toolVersion,
      bomRef: 'tool-lenix',
    }),
  );
  bom.metadata.supplier = new CDX.Models.OrganizationalEntity({ name: input.supplier });
  const subject = new CDX.Models.Component(
    input.kind === 'snapshot' ? CDX.Enums.ComponentType.Platform : CDX.Enums.ComponentType.Application,
    input.title,
    { version: input.version, bomRef: SUBJECT_REF },
  );
  subject.properties.add(new CDX.Models.Property('lenix:identity', input.identity));
  bom.metadata.component = subject;
  const byRef = new Map<string, CDX.Models.Component>();
  for (const p of input.packages) {
    const c = component(p, input);
    byRef.set(packageRef(p), c);
    bom.components.add(c);
    subject.dependencies.add(c.bomRef);
  }
  for (const [ref, deps] of resolveRequires(input.packages))
    for (const d of deps) byRef.get(ref)!.dependencies.add(byRef.get(d)!.bomRef);
  return { bom, buildroot: input.buildroot.map(buildrootComponent) };
}

const taskTypes = (s: SbomStep) => [s.type];
const stepRef = (s: SbomStep) => s.uid.replace(':', '-');

/** The formulation as JSON: one formula, its buildroot components, one workflow whose tasks are the steps. */
function formulationJson(input: SbomInput, buildroot: readonly CDX.Models.Component[]): unknown[] {
  if (input.steps.length === 0 && buildroot.length === 0) return [];
  const normalizer = new CDX.Serialize.JSON.Normalize.Factory(SPEC).makeForComponent();
  const workflow = {
    'bom-ref': `workflow-${input.identity.replace(/[^A-Za-z0-9.-]/g, '-')}`,
    uid: input.identity,
    name: `Lenix pipeline for ${input.title}`,
    tasks: input.steps.map((s) => ({
      'bom-ref': stepRef(s),
      uid: s.uid,
      name: s.name,
      taskTypes: taskTypes(s),
      ...(s.outputs.length > 0
        ? { outputs: s.outputs.map((o) => ({ resource: { ref: `rpm-${o}` }, type: 'artifact' })) }
        : {}),
      ...(s.start ? { timeStart: s.start } : {}),
      ...(s.end ? { timeEnd: s.end } : {}),
      properties: [
        { name: 'lenix:state', value: s.state },
        ...(s.node ? [{ name: 'lenix:node', value: s.node }] : []),
        { name: 'lenix:build-id', value: String(s.buildId) },
      ],
    })),
    taskDependencies: input.steps
      .filter((s) => s.after.length > 0)
      .map((s) => ({ ref: stepRef(s), dependsOn: s.after.map((a) => a.replace(':', '-')) })),
    taskTypes: [...new Set(input.steps.map((s) => s.type))].sort(),
  };
  return [
    {
      'bom-ref': 'formula-lenix',
      components: buildroot.map((c) => normalizer.normalize(c, ORDER)),
      workflows: [workflow],
    },
  ];
}

class JsonSerializer extends CDX.Serialize.JsonSerializer {
  constructor(private readonly formulation: () => unknown[]) {
    super(new CDX.Serialize.JSON.Normalize.Factory(SPEC));
  }
  protected override _normalize(bom: CDX.Models.Bom, options?: CDX.Serialize.Types.NormalizerOptions) {
    const n = super._normalize(bom, options);
    const f = this.formulation();
    return (f.length > 0 ? { ...n, formulation: f } : n) as typeof n;
  }
}

type XmlElement = CDX.Serialize.XML.Types.SimpleXml.Element;
const el = (name: string, children: XmlElement[] = [], attributes: Record<string, string> = {}): XmlElement => ({
  type: 'element',
  name,
  attributes,
  children,
});
const text = (name: string, value: string, attributes: Record<string, string> = {}): XmlElement => ({
  type: 'element',
  name,
  attributes,
  children: value,
});
const properties = (ps: { name: string; value: string }[]): XmlElement =>
  el(
    'properties',
    ps.map((p) => text('property', p.value, { name: p.name })),
  );

/** The same formulation as XML elements, in the XSD's sequence order. */
function formulationXml(input: SbomInput, buildroot: readonly CDX.Models.Component[]): XmlElement | null {
  const [f] = formulationJson(input, buildroot) as {
    workflows: { 'bom-ref': string; uid: string; name: string; taskTypes: string[] }[];
  }[];
  if (!f) return null;
  const normalizer = new CDX.Serialize.XML.Normalize.Factory(SPEC).makeForComponent();
  const wf = f.workflows[0]!;
  const tasks = input.steps.map((s) =>
    el(
      'task',
      [
        text('uid', s.uid),
        text('name', s.name),
        el(
          'taskTypes',
          taskTypes(s).map((t) => text('taskType', t)),
        ),
        ...(s.outputs.length > 0
          ? [
              el(
                'outputs',
                s.outputs.map((o) =>
                  el('output', [el('resource', [text('ref', `rpm-${o}`)]), text('type', 'artifact')]),
                ),
              ),
            ]
          : []),
        ...(s.start ? [text('timeStart', s.start)] : []),
        ...(s.end ? [text('timeEnd', s.end)] : []),
        properties([
          { name: 'lenix:state', value: s.state },
          ...(s.node ? [{ name: 'lenix:node', value: s.node }] : []),
          { name: 'lenix:build-id', value: String(s.buildId) },
        ]),
      ],
      { 'bom-ref': stepRef(s) },
    ),
  );
  const deps = input.steps
    .filter((s) => s.after.length > 0)
    .map((s) =>
      el(
        'dependency',
        s.after.map((a) => el('dependency', [], { ref: a.replace(':', '-') })),
        { ref: stepRef(s) },
      ),
    );
  const workflow = el(
    'workflow',
    [
      text('uid', wf.uid),
      text('name', wf.name),
      el('tasks', tasks),
      ...(deps.length > 0 ? [el('taskDependencies', deps)] : []),
      el(
        'taskTypes',
        wf.taskTypes.map((t) => text('taskType', t)),
      ),
    ],
    { 'bom-ref': wf['bom-ref'] },
  );
  const components = buildroot
    .map((c) => normalizer.normalize(c, ORDER, 'component'))
    .filter((c): c is XmlElement => c !== undefined);
  return el('formulation', [
    el('formula', [...(components.length > 0 ? [el('components', components)] : []), el('workflows', [workflow])], {
      'bom-ref': 'formula-lenix',
    }),
  ]);
}

class XmlSerializer extends CDX.Serialize.XmlSerializer {
  constructor(private readonly formulation: () => XmlElement | null) {
    super(new CDX.Serialize.XML.Normalize.Factory(SPEC));
  }
  protected override _normalize(bom: CDX.Models.Bom, options?: CDX.Serialize.Types.NormalizerOptions) {
    const n = super._normalize(bom, options);
    const f = this.formulation();
    // `formulation` comes after components, dependencies and properties in the bom sequence.
    return f ? { ...n, children: [...((n.children ?? []) as Iterable<XmlElement>), f] } : n;
  }
}

export function cyclonedxJson(input: SbomInput): string {
  const { bom, buildroot } = bomOf(input, 'cyclonedx-json');
  return `${new JsonSerializer(() => formulationJson(input, buildroot)).serialize(bom, { ...ORDER, space: 2 })}\n`;
}

export function cyclonedxXml(input: SbomInput): string {
  const { bom, buildroot } = bomOf(input, 'cyclonedx-xml');
  return `${new XmlSerializer(() => formulationXml(input, buildroot)).serialize(bom, { ...ORDER, space: 2 })}\n`;
}
