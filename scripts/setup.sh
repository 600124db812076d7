#!/usr/bin/env bash
# Installs what hvmpt and its tests need, then builds. Safe to run again: it installs only
# what is missing and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: the checking oracles (lspci, iasl), QEMU and a kernel for guest tests,
# firmware nobody here wrote (SeaBIOS, GRUB, iPXE ROMs) for the monitor's end-to-end test.
DEBIAN_PACKAGES=(
  pciutils acpica-tools dmidecode
  qemu-system-x86 qemu-system-data qemu-utils
  seabios grub-pc-bin grub-common ipxe-qemu
  busybox-static cpio xorriso mtools strace
  gcc libc6-dev linux-libc-dev
  # The exporters' and the report's oracles: libvirt's schema check (virt-xml-validate needs
  # xmllint), Xen's own xl.cfg parser (libxlutil), OpenStack's config parser, headless Chromium.
  libvirt-clients libxml2-utils libxen-dev python3-oslo.config chromium
)

missing=()
for pkg in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

npm run build --silent

# The Linux guest harness's kernel (Debian linux-image-amd64, unpacked into .cache/guest, not installed).
bash scripts/linux-guest.sh fetch >/dev/null

# QEMU from Debian's backports for lab hosts under TCG (unpacked into .cache/lab-qemu, not installed).
bash scripts/lab-qemu.sh
