#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The .deb: built with CPack from the build directory of the amlfw binary under test,
# unpacked into a scratch root with dpkg-deb -x (no root needed, nothing installed on this
# host). Checks the control fields (Depends from dpkg-shlibdeps), every file in its place,
# the conffile, that the packaged binary runs with the packaged config, the systemd units,
# man pages, bash completion, and the maintainer scripts: prerm flushes on removal (run
# with stub amlfw/systemctl) and keeps enforcing on upgrade. lintian when installed.
source "$(dirname "$0")/lib.sh"
e2e_init "$1" --no-root

SRC=$(cd "$E2E_DIR/../.." && pwd)
BUILD=$(dirname "$AMLFW")
for t in cpack dpkg-deb dpkg-shlibdeps; do
  command -v "$t" >/dev/null 2>&1 || e2e_skip "'$t' is not installed (apt-get install cmake dpkg-dev)"
done
[ -f "$BUILD/CPackConfig.cmake" ] || { bad "$BUILD/CPackConfig.cmake missing (configure with cmake first)"; e2e_finish; }

section "build the .deb"
expect_rc 0 "cpack -G DEB" cpack --config "$BUILD/CPackConfig.cmake" -G DEB -B "$E2E_TMP/pkg"
DEB=$(ls "$E2E_TMP"/pkg/amlfw_*.deb 2>/dev/null | head -n 1)
[ -n "$DEB" ] || { bad "no amlfw_*.deb in $E2E_TMP/pkg: $E2E_OUT"; e2e_finish; }
ok "package: $(basename "$DEB") ($(( $(stat -c %s "$DEB") / 1024 )) KiB)"

section "control fields"
field() { dpkg-deb -f "$DEB" "$1"; }
expect_eq amlfw "$(field Package)" "Package"
version=$("$AMLFW" version | head -n 1 | awk '{print $2}')
expect_eq "$version" "$(field Version)" "Version matches amlfw version"
expect_eq "$(dpkg --print-architecture)" "$(field Architecture)" "Architecture"
depends=$(field Depends)
for lib in libc6 libstdc++6 libnftnl11 libmnl0 libc-ares2 libcurl4; do
  if [[ ", $depends," == *", $lib "* || ", $depends," == *", $lib,"* ]]; then ok "Depends names $lib (dpkg-shlibdeps)"
  else bad "Depends lacks $lib: $depends"; fi
done
expect_match '.' "$(field Description)" "Description"
expect_eq net "$(field Section)" "Section"

section "files"
ROOT="$E2E_TMP/root"
expect_rc 0 "dpkg-deb -x" dpkg-deb -x "$DEB" "$ROOT"
listing=$(dpkg-deb -c "$DEB")
expect_eq "" "$(echo "$listing" | awk '$2 != "root/root"')" "every file owned by root/root"
expect_eq "" "$(echo "$listing" | awk '{print $6}' | grep -vE '^\./($|etc/|lib/|usr/|var/)' || true)" \
  "nothing outside /etc /lib /usr /var"
expect_eq "" "$(echo "$listing" | grep -F './usr/local' || true)" "nothing under /usr/local"
for f in usr/sbin/amlfw etc/amlfw/amlfw.toml usr/share/man/man8/amlfw.8.gz usr/share/man/man5/amlfw.toml.5.gz \
         usr/share/bash-completion/completions/amlfw usr/share/doc/amlfw/copyright usr/share/doc/amlfw/README.md; do
  if [ -f "$ROOT/$f" ]; then ok "/$f"; else bad "/$f is missing"; fi
done
[ -d "$ROOT/var/lib/amlfw" ] && ok "/var/lib/amlfw ($(stat -c %a "$ROOT/var/lib/amlfw"))" || bad "/var/lib/amlfw missing"
expect_eq 750 "$(stat -c %a "$ROOT/var/lib/amlfw" 2>/dev/null)" "/var/lib/amlfw mode"
expect_eq 755 "$(stat -c %a "$ROOT/usr/sbin/amlfw")" "/usr/sbin/amlfw mode"
expect_true "the config is the default config/amlfw.toml" cmp "$SRC/config/amlfw.toml" "$ROOT/etc/amlfw/amlfw.toml"
if readelf -S "$ROOT/usr/sbin/amlfw" 2>/dev/null | grep -q '\.debug_info'; then bad "the packaged binary keeps its debug info"
else ok "the packaged binary is stripped ($(( $(stat -c %s "$ROOT/usr/sbin/amlfw") / 1024 )) KiB)"; fi

section "the packaged binary runs with the packaged config"
expect_rc 0 "usr/sbin/amlfw version" "$ROOT/usr/sbin/amlfw" version
expect_match "^amlfw $version" "$E2E_OUT" "it is version $version"
"$E2E_PY" "$E2E_GEN_TAGS" --variant base --out "$E2E_TMP/tags.json"
expect_rc 0 "plan with /etc/amlfw/amlfw.toml of the package" \
  "$ROOT/usr/sbin/amlfw" plan --config "$ROOT/etc/amlfw/amlfw.toml" --service-tags "$E2E_TMP/tags.json" --format json
expect_match '"id": "NR2"' "$E2E_OUT" "the plan has the catalog's rules"

section "systemd units"
n=0
for u in "$SRC"/systemd/*.service; do
  [ -e "$u" ] || continue
  n=$((n + 1))
  b=$(basename "$u")
  expect_true "/lib/systemd/system/$b is systemd/$b" cmp "$u" "$ROOT/lib/systemd/system/$b"
  for exe in $(grep -hoE '^Exec[A-Za-z]*=[-@!+]*/[^ ]+' "$u" | sed -E 's/^[^=]*=[-@!+]*//' | sort -u); do
    if [ -x "$ROOT$exe" ]; then ok "$b: $exe is in the package"; else bad "$b runs $exe, which the package lacks"; fi
  done
done
[ "$n" -gt 0 ] && ok "$n unit(s) installed" || ok "no systemd/*.service in the tree yet: none expected"

section "manual pages and completion"
expect_match '^\.TH AMLFW 8' "$(zcat "$ROOT/usr/share/man/man8/amlfw.8.gz" | grep '^\.TH')" "amlfw(8)"
expect_match '^\.TH AMLFW\.TOML 5' "$(zcat "$ROOT/usr/share/man/man5/amlfw.toml.5.gz" | grep '^\.TH')" "amlfw.toml(5)"
if command -v man >/dev/null 2>&1; then
  for m in man8/amlfw.8.gz man5/amlfw.toml.5.gz; do
    warn=$(MANWIDTH=80 man --warnings -l "$ROOT/usr/share/man/$m" 2>&1 >/dev/null)
    expect_eq "" "$warn" "man --warnings $m"
  done
  page=$(MANWIDTH=80 man -l "$ROOT/usr/share/man/man8/amlfw.8.gz" 2>/dev/null)
  for c in plan apply run status reload explain check flush restore catalog version; do
    expect_match "$c" "$page" "amlfw(8) documents $c"
  done
  expect_match 'found a required endpoint unreachable' "$page" "amlfw(8) documents exit status 4"
fi
for c in plan apply run status reload explain check flush restore catalog version; do
  expect_match "  $c " "$("$AMLFW" --help)" "amlfw --help lists $c"
done
expect_true "completion: bash -n" bash -n "$ROOT/usr/share/bash-completion/completions/amlfw"
comp() {  # WORDS... : the completions of the last word
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _amlfw; echo "${COMPREPLY[*]}"' \
    _ "$ROOT/usr/share/bash-completion/completions/amlfw" "$@"
}
expect_eq "check" "$(comp amlfw ch)" "completion: amlfw ch -> check"
expect_eq "--probe-tags" "$(comp amlfw --config x check --pr)" "completion: check --pr -> --probe-tags"
expect_eq "table json nft" "$(comp amlfw plan --format '')" "completion: --format values"

section "maintainer scripts"
CTRL="$E2E_TMP/control"
expect_rc 0 "dpkg-deb -e" dpkg-deb -e "$DEB" "$CTRL"
for s in postinst prerm postrm; do
  if [ -x "$CTRL/$s" ]; then ok "$s exists and is executable"; else bad "$s missing or not executable"; fi
  expect_true "$s: sh -n" sh -n "$CTRL/$s"
done
expect_eq "/etc/amlfw/amlfw.toml" "$(cat "$CTRL/conffiles" 2>/dev/null)" "conffiles"
# prerm with stubs: amlfw and systemctl record their arguments; nothing real is touched.
STUB="$E2E_TMP/stub"
mkdir -p "$STUB"
printf '#!/bin/sh\necho "amlfw $*" >>"%s"\n' "$E2E_TMP/calls" >"$STUB/amlfw"
printf '#!/bin/sh\necho "systemctl $*" >>"%s"\n' "$E2E_TMP/calls" >"$STUB/systemctl"
chmod +x "$STUB/amlfw" "$STUB/systemctl"
: >"$E2E_TMP/calls"
expect_rc 0 "prerm remove" env PATH="$STUB:/usr/bin:/bin" sh "$CTRL/prerm" remove
expect_match 'amlfw flush' "$(cat "$E2E_TMP/calls")" "prerm remove runs amlfw flush"
if [ -d /run/systemd/system ]; then
  calls=$(cat "$E2E_TMP/calls")
  expect_match 'systemctl stop amlfw.service' "$calls" "prerm remove stops the daemon"
  expect_eq "systemctl" "$(grep -n . "$E2E_TMP/calls" | sort -t: -k1n | head -n 1 | cut -d: -f2 | awk '{print $1}')" \
    "the daemon is stopped before the flush"
fi
: >"$E2E_TMP/calls"
expect_rc 0 "prerm upgrade" env PATH="$STUB:/usr/bin:/bin" sh "$CTRL/prerm" upgrade 0.0.9
expect_eq "" "$(grep flush "$E2E_TMP/calls" || true)" "prerm upgrade does not flush (enforcement stays during the upgrade)"
printf '#!/bin/sh\necho "amlfw $*" >>"%s"\nexit 1\n' "$E2E_TMP/calls" >"$STUB/amlfw"
expect_rc 0 "prerm remove when flush fails: removal goes on, with a message" \
  env PATH="$STUB:/usr/bin:/bin" sh "$CTRL/prerm" remove
expect_match 'nft delete table inet amlfw' "$E2E_OUT" "the message says how to clean up by hand"
expect_rc 1 "prerm with an unknown argument fails" env PATH="$STUB:/usr/bin:/bin" sh "$CTRL/prerm" bogus
# postinst and postrm touch /var/lib/amlfw and systemd for real: read, not run.
expect_match 'daemon-reload' "$(cat "$CTRL/postinst")" "postinst reloads systemd"
expect_match '\[ -d /run/systemd/system \]' "$(cat "$CTRL/postinst")" "postinst reloads systemd only when it runs"
expect_match 'try-restart amlfw.service' "$(cat "$CTRL/postinst")" "postinst restarts a running daemon on upgrade"
expect_match 'purge\)' "$(cat "$CTRL/postrm")" "postrm handles purge"
expect_match 'rm -rf /var/lib/amlfw' "$(cat "$CTRL/postrm")" "postrm purge removes the state"
expect_match 'daemon-reload' "$(cat "$CTRL/postrm")" "postrm reloads systemd"

if command -v lintian >/dev/null 2>&1; then
  section "lintian"
  lint=$(lintian --no-tag-display-limit "$DEB" 2>&1)
  errors=$(echo "$lint" | grep -c '^E:' || true)
  echo "$lint" | sed 's/^/  /'
  expect_eq 0 "$errors" "lintian errors"
fi
e2e_finish
