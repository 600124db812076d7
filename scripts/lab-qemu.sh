#!/usr/bin/env bash
# Fetches QEMU from Debian's backports into .cache/lab-qemu for lab hosts under TCG (docs/lab.md,
# "Which QEMU runs the lab host"): QEMU 7.2, bookworm's own, leaves a nested lab host asleep or
# spinning now and then; 10.0 did not in the same work. Nothing is installed: the packages are
# downloaded with a private source list and list directories (the system's apt set-up is not
# touched) and unpacked with dpkg-deb. Safe to run again; a machine whose own QEMU is 10 or newer,
# or whose release has no backport of it, needs none, and the lab then runs the system's.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="$PWD/.cache/lab-qemu"

[ -x "$dest/root/usr/bin/qemu-system-x86_64" ] && [ -s "$dest/version" ] && exit 0
system=$(qemu-system-x86_64 --version 2>/dev/null | sed -n '1s/.*version \([0-9]*\)\..*/\1/p')
if [ -n "$system" ] && [ "$system" -ge 10 ]; then exit 0; fi
# shellcheck disable=SC1091
. /etc/os-release
suite="${VERSION_CODENAME:?/etc/os-release names no codename}-backports"

work=$(mktemp -d)
trap 'rm -rf "$work" "$dest.new"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" > "$work/sources.list"
apt=(apt-get -qq -o Dir::Etc::SourceList="$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o Dir::State::Lists="$work/lists" -o Dir::Cache="$work/cache" -o APT::Sandbox::User=root)
if ! "${apt[@]}" update || ! (cd "$work/debs" && "${apt[@]}" download "qemu-system-x86/$suite" "qemu-system-data/$suite" "seabios/$suite"); then
  echo "lab-qemu: no QEMU from $suite; lab hosts under TCG run the system's QEMU $system" >&2
  exit 0
fi
rm -rf "$dest.new"
mkdir -p "$dest.new/root"
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$dest.new/root"; done
# It runs with the system's libraries, or it is not kept.
if ! "$dest.new/root/usr/bin/qemu-system-x86_64" --version > "$work/version" 2>&1; then
  echo "lab-qemu: QEMU from $suite does not run here ($(head -1 "$work/version")); lab hosts run the system's" >&2
  exit 0
fi
{ sed -n '1s/.*version \([0-9.]*\).*/\1/p' "$work/version"; echo "$suite"; } > "$dest.new/version"
rm -rf "$dest"
mv "$dest.new" "$dest"
echo "lab-qemu: QEMU $(head -1 "$dest/version") from $suite in .cache/lab-qemu"
