/**
 * The packages of the buildroot suite (test/e2e-buildroot.test.ts): a C shared library with a -devel subpackage
 * (header, .so link, pkg-config file), an application that finds it through `BuildRequires:
 * pkgconfig(liblenixdemo)` and links it, and a package whose BuildRequires come from %generate_buildrequires.
 * Each is the files of a source repository.
 */

export const LIBRARY: Record<string, string> = {
  'liblenixdemo.spec': `Name: liblenixdemo
Version: 1.0
Release: 1%{?dist}
Summary: A small C library for the buildroot tests
License: MIT
Source0: demo.c
Source1: lenixdemo.h
Source2: liblenixdemo.pc
BuildRequires: gcc

%description
Returns a greeting; links as libdemo.so.1.

%package devel
Summary: Header, link and pkg-config file of liblenixdemo
Requires: %{name}%{?_isa} = %{version}-%{release}

%description devel
What a program needs to build against liblenixdemo.

%prep
cp %{SOURCE0} %{SOURCE1} %{SOURCE2} .

%build
gcc %{optflags} -fPIC -shared -Wl,-soname,libdemo.so.1 -o libdemo.so.1.0 demo.c

%install
install -D -m 0755 libdemo.so.1.0 %{buildroot}%{_libdir}/libdemo.so.1.0
ln -s libdemo.so.1.0 %{buildroot}%{_libdir}/libdemo.so.1
ln -s libdemo.so.1 %{buildroot}%{_libdir}/libdemo.so
install -D -m 0644 lenixdemo.h %{buildroot}%{_includedir}/lenixdemo.h
sed -e 's|@LIBDIR@|%{_libdir}|' -e 's|@INCLUDEDIR@|%{_includedir}|' liblenixdemo.pc > pc
install -D -m 0644 pc %{buildroot}%{_libdir}/pkgconfig/liblenixdemo.pc

%post -p /sbin/ldconfig
%postun -p /sbin/ldconfig

%files
%{_libdir}/libdemo.so.1
%{_libdir}/libdemo.so.1.0

%files devel
%{_includedir}/lenixdemo.h
%{_libdir}/libdemo.so
%{_libdir}/pkgconfig/liblenixdemo.pc

%changelog
* Sun Nov 29 2026 Lenix Tests <tests@lenix.invalid> - 1.0-1
- First version
`,
  'demo.c': '#include "lenixdemo.h"\nconst char *lenixdemo_greeting(void) { return "hello from liblenixdemo"; }\n',
  'lenixdemo.h': '#pragma once\nconst char *lenixdemo_greeting(void);\n',
  'liblenixdemo.pc':
    'Name: liblenixdemo\nDescription: Lenix buildroot demo library\nVersion: 1.0\nLibs: -L@LIBDIR@ -ldemo\nCflags: -I@INCLUDEDIR@\n',
};

export const APPLICATION: Record<string, string> = {
  'demo-app.spec': `Name: demo-app
Version: 1.0
Release: 1%{?dist}
Summary: A program built against liblenixdemo
License: MIT
Source0: main.c
BuildRequires: gcc
BuildRequires: pkgconfig(liblenixdemo)

%description
Prints liblenixdemo's greeting.

%prep
cp %{SOURCE0} .

%build
gcc %{optflags} $(pkg-config --cflags liblenixdemo) -o demo-app main.c $(pkg-config --libs liblenixdemo)

%install
install -D -m 0755 demo-app %{buildroot}%{_bindir}/demo-app

%files
%{_bindir}/demo-app

%changelog
* Sun Nov 29 2026 Lenix Tests <tests@lenix.invalid> - 1.0-1
- First version
`,
  'main.c': '#include <stdio.h>\n#include <lenixdemo.h>\nint main(void) { puts(lenixdemo_greeting()); return 0; }\n',
};

/** A package whose only BuildRequires are generated while it builds (rpmbuild -br). */
export const DYNAMIC: Record<string, string> = {
  'dyn-demo.spec': `Name: dyn-demo
Version: 1.0
Release: 1%{?dist}
Summary: A package whose build dependencies are generated
License: MIT
BuildArch: noarch

%description
Its build needs liblenixdemo-devel, which only %%generate_buildrequires names.

%generate_buildrequires
echo liblenixdemo-devel

%build
test -f %{_includedir}/lenixdemo.h
echo ok > dyn.txt

%install
install -D -m 0644 dyn.txt %{buildroot}%{_datadir}/dyn-demo/dyn.txt

%files
%{_datadir}/dyn-demo

%changelog
* Sun Nov 29 2026 Lenix Tests <tests@lenix.invalid> - 1.0-1
- First version
`,
};

/** Two packages that need each other to build: a batch refuses them and prints the cycle. */
export const cyclic = (name: string, needs: string): Record<string, string> => ({
  [`${name}.spec`]: `Name: ${name}
Version: 1.0
Release: 1%{?dist}
Summary: Half of a build cycle
License: MIT
BuildArch: noarch
BuildRequires: ${needs}

%description
Needs ${needs} to build.

%install
mkdir -p %{buildroot}%{_datadir}/${name}

%files
%{_datadir}/${name}
`,
});

/** A package whose build takes minutes: a batch started with it is still running when it is cancelled. */
export const SLOW: Record<string, string> = {
  'slow-build.spec': `Name: slow-build
Version: 1.0
Release: 1%{?dist}
Summary: A build that takes its time
License: MIT
BuildArch: noarch

%description
Sleeps in %%build.

%build
sleep 600

%install
mkdir -p %{buildroot}%{_datadir}/slow-build

%files
%{_datadir}/slow-build
`,
};
