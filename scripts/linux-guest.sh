#!/usr/bin/env bash
# The Linux guest harness from the shell.
#   scripts/linux-guest.sh fetch       install missing Debian tools, unpack Debian's kernel into .cache/guest
#   scripts/linux-guest.sh run [--script FILE] [--append PARAMS] [--module NAME] [--file HOST:GUEST]
#                              [--early HOST:GUEST] [--memory 512M] [--machine pc|q35] [--via direct|grub]
#                              [--timeout S] [-- QEMU ARGS]
# Example:  echo 'section e820 dmesg' | scripts/linux-guest.sh run --script - --append 'memmap=64M$128M'
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = fetch ]; then
  need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  [ -x /bin/busybox ] && dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' || need+=(busybox-static)
  command -v grub-mkrescue >/dev/null || need+=(grub-pc-bin grub-common)
  command -v xorriso >/dev/null || need+=(xorriso)
  if [ ${#need[@]} -gt 0 ]; then
    echo "linux-guest: installing Debian packages: ${need[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi
[ -f dist/src/host/guest/main.js ] || npm run build --silent
exec node dist/src/host/guest/main.js "$@"
