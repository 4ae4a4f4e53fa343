import { execFile } from 'node:child_process';
import { link, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Packages that exercise every part of rpm-md: epochs, files in the primary list (/etc, bin dirs) and only in
 * filelists, directories and ghosts, scriptlets with Requires(pre/post), weak dependencies (Recommends,
 * Suggests, Supplements, Enhances), versioned Provides/Conflicts/Obsoletes, several changelog entries, text
 * that needs escaping, a noarch and an arch package.
 */
export const CORPUS_SPECS: Readonly<Record<string, string>> = {
  'rich.spec': `Name: rich
Epoch: 3
Version: 2.4.1
Release: 7%{?dist}
Summary: A package with <every> kind & sort of "metadata"
License: MIT AND (BSD-3-Clause OR GPL-2.0-or-later)
URL: https://example.org/rich?a=1&b=2
Packager: Lenix Tests <tests@lenix.local>
Vendor: Lenix
Group: Development/Tools
Provides: rich-api = 2.4
Provides: config(rich) = 3:2.4.1-7
Conflicts: oldrich < 1.0
Obsoletes: richer <= 2:1.9-1
Requires: /bin/sh
Requires: rich-data = %{epoch}:%{version}-%{release}
Requires(pre): shadow-utils
Requires(post): coreutils >= 8.0
Requires(postun): coreutils
Recommends: rich-doc
Suggests: (rich-extras if rich-gui)
Supplements: (rich-data and langpacks-en)
Enhances: bash > 4
BuildArch: noarch

%description
Rich has a long description with <angle brackets>, ampersands & "quotes",
and two lines.

%package data
Summary: Data for rich
Requires: rich(x86-64) >= 0:1
%description data
Data.

%package -n rich-doc
Summary: Docs
%description -n rich-doc
Docs.

%install
mkdir -p %{buildroot}/etc/rich %{buildroot}/usr/bin %{buildroot}/usr/share/rich/sub %{buildroot}/usr/share/doc/rich %{buildroot}/var/lib/rich
echo conf > %{buildroot}/etc/rich/rich.conf
printf '#!/bin/sh\\necho rich\\n' > %{buildroot}/usr/bin/rich
chmod 0755 %{buildroot}/usr/bin/rich
echo data > %{buildroot}/usr/share/rich/sub/data.txt
echo 'a b' > "%{buildroot}/usr/share/rich/with space.txt"
echo doc > %{buildroot}/usr/share/doc/rich/README
ln -s ../share/rich/sub/data.txt %{buildroot}/usr/bin/rich-data-link

%pre
getent group rich >/dev/null || groupadd -r rich || :

%post
echo installed rich >/dev/null

%postun
echo removed rich >/dev/null

%files
%config(noreplace) /etc/rich/rich.conf
%dir /etc/rich
/usr/bin/rich
/usr/bin/rich-data-link
%ghost /var/lib/rich/state

%files data
%dir /usr/share/rich
/usr/share/rich/sub
"/usr/share/rich/with space.txt"

%files -n rich-doc
%doc /usr/share/doc/rich/README

%changelog
* Mon Nov 23 2026 Ann Packager <ann@example.org> - 3:2.4.1-7
- Fix <escaping> & friends
- Second line

* Tue Mar 03 2026 Bob Builder <bob@example.org> - 3:2.4.0-1
- Update to 2.4.0 (rhbz#123)

* Thu Jan 01 2015 Old Timer <old@example.org> - 1.0-1
- First
`,
  'native.spec': `Name: native
Version: 1.0
Release: 1
Summary: An arch package with a shared library
License: GPL-2.0-only

%description
Native.

%prep
%build
printf 'int native(void){return 1;}\\n' > n.c
gcc -shared -fPIC -Wl,-soname,libnative.so.1 -o libnative.so.1.0 n.c

%install
mkdir -p %{buildroot}%{_libdir}
install -m 0755 libnative.so.1.0 %{buildroot}%{_libdir}/
ln -s libnative.so.1.0 %{buildroot}%{_libdir}/libnative.so.1

%files
%{_libdir}/libnative.so.1*

%changelog
* Sun Nov 29 2026 Ann Packager <ann@example.org> - 1.0-1
- New
`,
};

/** Build the corpus with rpmbuild into DIR/Packages; returns the package files. */
export async function buildCorpus(dir: string): Promise<string[]> {
  const top = path.join(dir, 'top');
  const out = path.join(dir, 'Packages');
  await mkdir(out, { recursive: true });
  for (const [name, text] of Object.entries(CORPUS_SPECS)) {
    const spec = path.join(dir, name);
    await writeFile(spec, text);
    await run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, '--define', 'debug_package %{nil}', spec], {
      maxBuffer: 16 * 1024 * 1024,
    });
  }
  const files: string[] = [];
  for (const arch of await readdir(path.join(top, 'RPMS'))) {
    for (const f of await readdir(path.join(top, 'RPMS', arch))) {
      await link(path.join(top, 'RPMS', arch, f), path.join(out, f));
      files.push(path.join(out, f));
    }
  }
  return files.sort();
}

/**
 * A large corpus for benchmarks: N copies of one template package, each made distinct by replacing its
 * name token (same length, so the header's offsets hold) — createrepo_c reads them as N packages. Their
 * digests no longer verify, so they are for metadata only; install the template itself. Files already
 * there are kept (the corpus is reused between runs).
 */
export async function cloneCorpus(template: string, token: string, dir: string, n: number): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const bytes = await readFile(template);
  const needle = Buffer.from(token);
  const width = token.length;
  const files: string[] = [];
  for (let i = 1; i <= n; i++) {
    const name = `${token.slice(0, 1)}${String(i).padStart(width - 1, '0')}`;
    const file = path.join(dir, path.basename(template).replace(token, name));
    files.push(file);
    if (await stat(file).catch(() => null)) continue;
    await writeFile(file, replaceAll(bytes, needle, Buffer.from(name)));
  }
  return files;
}

function replaceAll(b: Buffer, from: Buffer, to: Buffer): Buffer {
  const out = Buffer.from(b);
  for (let at = out.indexOf(from); at >= 0; at = out.indexOf(from, at + from.length)) to.copy(out, at);
  return out;
}
