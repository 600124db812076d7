#!/bin/sh
# hvmpt collect: this machine's facts for PCI pass-through, gathered read-only into one tar
# archive that `hvmpt snapshot show`, `hvmpt analyze` and `hvmpt plan --from` read.
#
#   sh collect.sh [--out FILE.tar | --out -] [--rom]
#
# POSIX sh and a few standard tools (cat, mkdir, rm, ls, find, sed, grep, tar); no Node.
# It reads /sys, /proc and /boot and writes nothing but its output: the archive, and while it
# runs a staging directory named after it (FILE.tar.tmp.PID, or $TMPDIR/hvmpt-collect.PID when
# the archive goes to standard output), removed before it exits. It never binds, unbinds,
# resets or writes to a device. The one exception is --rom, which asks the kernel for each
# expansion ROM's contents: the kernel's protocol for that is writing 1 to the sysfs `rom`
# attribute (which turns on the ROM's decode while it is read) and 0 afterwards. Without
# --rom only the ROM's size is recorded.
#
# Without root it takes what it may (64 bytes of config space, no ACPI tables, zeroed
# /proc/iomem addresses...) and lists what it could not read in hvmpt-facts/unreadable.
# The archive layout is described in hvmpt's docs/host-facts.md.

FORMAT=1
out=hvmpt-facts.tar
rom=0
while [ $# -gt 0 ]; do
  case $1 in
    --out) [ $# -ge 2 ] || { echo "hvmpt collect: --out needs a file name (or - for standard output)" >&2; exit 2; }; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    --rom) rom=1; shift ;;
    -h|--help) echo "usage: collect.sh [--out FILE.tar|-] [--rom]: this machine's pass-through facts, read-only, into one tar archive"; exit 0 ;;
    *) echo "hvmpt collect: unknown argument '$1' (usage: collect.sh [--out FILE.tar|-] [--rom])" >&2; exit 2 ;;
  esac
done

umask 077
if [ "$out" = - ]; then
  stage=${TMPDIR:-/tmp}/hvmpt-collect.$$
else
  case $out in /*) ;; *) out=$PWD/$out ;; esac
  stage=$out.tmp.$$
fi
cleanup() { cd / && rm -rf "$stage"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir "$stage" || { echo "hvmpt collect: cannot create $stage" >&2; exit 1; }
F=$stage/hvmpt-facts
mkdir "$F" || exit 1
: > "$F/unreadable"

# note PATH WHY: something the collection could not read (WHY: denied, absent, error).
note() { printf '%s\t%s\n' "$1" "$2" >> "$F/unreadable"; }

# dir DEST: make a directory in the archive, and its parents, each by its absolute path
# (mkdir -p works relative to directories it changes into, which a trace cannot follow).
dir() {
  [ -d "$F/$1" ] && return 0
  case $1 in */*) dir "${1%/*}" ;; esac
  mkdir "$F/$1"
}

# copy SRC DEST: a file as its bytes (binary safe). A file that is not there is skipped
# silently (the caller decides whether its absence matters).
copy() {
  [ -e "$1" ] || return 1
  if cat "$1" > "$F/$2" 2>/dev/null; then return 0; fi
  rm -f "$F/$2"
  if [ -r "$1" ]; then note "$1" error; else note "$1" denied; fi
  return 1
}

# attr SRC DEST: a one-line attribute, read with the shell's own `read` (no process per file).
attr() {
  [ -e "$1" ] || return 1
  __v=
  if { IFS= read -r __v || [ -n "$__v" ]; } 2>/dev/null < "$1"; then
    printf '%s\n' "$__v" > "$F/$2"
    return 0
  fi
  if [ -r "$1" ]; then note "$1" error; else note "$1" denied; fi
  return 1
}

# target LINK: where a symbolic link (a sysfs device, driver or group) leads, without
# readlink (not POSIX): cd -P resolves it, in this shell, and we come back.
target() {
  __t=
  if cd -P "$1" 2>/dev/null; then __t=$PWD; cd "$F" || exit 1; return 0; fi
  return 1
}

# ---------------------------------------------------------------- who and what
uid=$(id -u 2>/dev/null || echo unknown)
{
  echo "format=$FORMAT"
  echo "collector=hvmpt-collect.sh"
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ 2>/dev/null)"
  echo "uid=$uid"
  echo "rom=$rom"
  echo "machine=$(uname -m 2>/dev/null)"
} > "$F/collector"

dir kernel
uname -r > "$F/kernel/release" 2>/dev/null
dir proc
attr /proc/cmdline proc/cmdline || note /proc/cmdline absent
copy /proc/version proc/version
# The first processor's block (vendor, model, flags: vmx/svm) and the processor count.
if [ -r /proc/cpuinfo ]; then
  sed '/^$/q' /proc/cpuinfo > "$F/proc/cpuinfo" 2>/dev/null
  grep -c '^processor' /proc/cpuinfo > "$F/proc/cpu-count" 2>/dev/null
else
  note /proc/cpuinfo absent
fi
copy /proc/iomem proc/iomem || note /proc/iomem absent
copy /proc/ioports proc/ioports || note /proc/ioports absent
copy /proc/interrupts proc/interrupts || note /proc/interrupts absent
copy /proc/self/mountinfo proc/mountinfo || note /proc/self/mountinfo absent
copy /proc/swaps proc/swaps
copy /proc/modules proc/modules
dir proc/net
copy /proc/net/route proc/net/route
copy /proc/net/ipv6_route proc/net/ipv6_route

# Kernel build options that decide the back-ends (vfio no-IOMMU mode, uio, IOMMU drivers).
release=$(cat "$F/kernel/release" 2>/dev/null)
CONFIG_RE='^(# )?CONFIG_(VFIO|UIO|IOMMU|INTEL_IOMMU|AMD_IOMMU|IRQ_REMAP|STRICT_DEVMEM|IO_STRICT_DEVMEM|PCI_STUB|KVM|DMAR)'
if [ -r "/boot/config-$release" ]; then
  grep -E "$CONFIG_RE" "/boot/config-$release" > "$F/kernel/config" 2>/dev/null
  echo "/boot/config-$release" > "$F/kernel/config-source"
elif [ -r /proc/config.gz ]; then
  gzip -dc /proc/config.gz 2>/dev/null | grep -E "$CONFIG_RE" > "$F/kernel/config"
  echo /proc/config.gz > "$F/kernel/config-source"
else
  note "/boot/config-$release" absent
fi
# Pass-through modules: built in, or there to load.
mods=/lib/modules/$release
if [ -d "$mods" ]; then
  grep -E '/(vfio|uio|iommu)' "$mods/modules.builtin" > "$F/kernel/modules.builtin" 2>/dev/null
  find "$mods/kernel/drivers/vfio" "$mods/kernel/drivers/uio" "$mods/kernel/drivers/iommu" -name '*.ko*' 2>/dev/null |
    sed 's|.*/||; s|\.ko.*||' > "$F/kernel/modules.available"
else
  note "$mods" absent
fi
dir sys/module/vfio/parameters
attr /sys/module/vfio/parameters/enable_unsafe_noiommu_mode sys/module/vfio/parameters/enable_unsafe_noiommu_mode

# ---------------------------------------------------------------- memory map
if [ -d /sys/firmware/memmap ]; then
  for m in /sys/firmware/memmap/*; do
    [ -d "$m" ] || continue
    n=${m##*/}
    dir "sys/firmware/memmap/$n"
    for a in start end type; do attr "$m/$a" "sys/firmware/memmap/$n/$a"; done
  done
else
  note /sys/firmware/memmap absent
fi

# ---------------------------------------------------------------- ACPI tables
T=/sys/firmware/acpi/tables
if [ -d "$T" ]; then
  dir sys/firmware/acpi/tables/dynamic
  for t in "$T"/* "$T"/dynamic/*; do
    [ -f "$t" ] || continue
    copy "$t" "sys/firmware/acpi/tables/${t#"$T"/}"
  done
else
  note "$T" absent
fi

# ---------------------------------------------------------------- IOMMU
if [ -d /sys/class/iommu ]; then
  dir sys/class/iommu
  : > "$F/sys/class/iommu/units"
  for u in /sys/class/iommu/*; do
    [ -e "$u" ] || continue
    target "$u" && printf '%s %s\n' "${u##*/}" "$__t" >> "$F/sys/class/iommu/units"
  done
fi
if [ -d /sys/kernel/iommu_groups ]; then
  for g in /sys/kernel/iommu_groups/*; do
    [ -d "$g" ] || continue
    n=${g##*/}
    dir "sys/kernel/iommu_groups/$n"
    attr "$g/type" "sys/kernel/iommu_groups/$n/type"
    copy "$g/reserved_regions" "sys/kernel/iommu_groups/$n/reserved_regions"
  done
else
  note /sys/kernel/iommu_groups absent
fi

# ---------------------------------------------------------------- PCI functions
P=/sys/bus/pci/devices
ATTRS='vendor device subsystem_vendor subsystem_device class revision irq enable numa_node driver_override
reset_method current_link_speed current_link_width max_link_speed max_link_width boot_vga d3cold_allowed
power_state msi_bus ari_enabled sriov_totalvfs sriov_numvfs label acpi_index'
count=0
if [ -d "$P" ]; then
  for d in "$P"/*; do
    [ -e "$d" ] || continue
    b=${d##*/}
    D=sys/bus/pci/devices/$b
    dir "$D"
    count=$((count + 1))
    copy "$d/config" "$D/config" || { [ -e "$d/config" ] || note "$d/config" absent; }
    copy "$d/resource" "$D/resource"
    for a in $ATTRS; do attr "$d/$a" "$D/$a"; done
    target "$d" && printf '%s\n' "$__t" > "$F/$D/path"
    target "$d/driver" && printf '%s\n' "${__t##*/}" > "$F/$D/driver"
    target "$d/iommu_group" && printf '%s\n' "${__t##*/}" > "$F/$D/iommu_group"
    target "$d/physfn" && printf '%s\n' "${__t##*/}" > "$F/$D/physfn"
    attr "$d/firmware_node/path" "$D/acpi_path"
    # The kernel's reset attribute is there when it can reset the function (kernels before
    # 5.15 have no reset_method); its presence is the fact, so it is never opened.
    [ -e "$d/reset" ] && echo present > "$F/$D/reset"
    if [ -d "$d/msi_irqs" ]; then
      : > "$F/$D/msi_irqs"
      for i in "$d"/msi_irqs/*; do
        [ -e "$i" ] || continue
        __m=
        { IFS= read -r __m || [ -n "$__m" ]; } 2>/dev/null < "$i"
        printf '%s %s\n' "${i##*/}" "$__m" >> "$F/$D/msi_irqs"
      done
    fi
    if [ -e "$d/rom" ]; then
      # The attribute's size is the ROM BAR's (or the shadowed VGA ROM's) size.
      set -- $(ls -ln "$d/rom" 2>/dev/null)
      [ $# -ge 5 ] && echo "$5" > "$F/$D/rom_size"
      if [ "$rom" = 1 ]; then
        if { echo 1 > "$d/rom"; } 2>/dev/null; then
          cat "$d/rom" > "$F/$D/rom" 2>/dev/null || { rm -f "$F/$D/rom"; note "$d/rom" error; }
          { echo 0 > "$d/rom"; } 2>/dev/null
        else
          note "$d/rom" denied
        fi
      fi
    fi
  done
fi
[ "$count" -gt 0 ] || note "$P" absent

# ---------------------------------------------------------------- what the host uses
# Block devices (the root filesystem's, through device-mapper and md slaves), network
# interfaces (the default route's), framebuffers and DRM cards (the console's), consoles.
if [ -d /sys/class/block ]; then
  for k in /sys/class/block/*; do
    [ -e "$k" ] || continue
    n=${k##*/}
    dir "sys/class/block/$n"
    attr "$k/dev" "sys/class/block/$n/dev"
    attr "$k/dm/name" "sys/class/block/$n/dm-name"
    target "$k" && printf '%s\n' "$__t" > "$F/sys/class/block/$n/path"
    if [ -d "$k/slaves" ]; then
      : > "$F/sys/class/block/$n/slaves"
      for s in "$k"/slaves/*; do [ -e "$s" ] && printf '%s\n' "${s##*/}" >> "$F/sys/class/block/$n/slaves"; done
    fi
  done
fi
# virtio devices: a 9p share's tag (mountinfo names a 9p mount by it) and where the device sits.
if [ -d /sys/bus/virtio/devices ]; then
  for v in /sys/bus/virtio/devices/*; do
    [ -e "$v" ] || continue
    n=${v##*/}
    dir "sys/bus/virtio/devices/$n"
    target "$v" && printf '%s\n' "$__t" > "$F/sys/bus/virtio/devices/$n/path"
    attr "$v/mount_tag" "sys/bus/virtio/devices/$n/mount_tag"
  done
fi
for c in net graphics drm; do
  [ -d "/sys/class/$c" ] || continue
  for k in /sys/class/$c/*; do
    [ -e "$k" ] || continue
    n=${k##*/}
    dir "sys/class/$c/$n"
    target "$k" && printf '%s\n' "$__t" > "$F/sys/class/$c/$n/path"
    # A bridge's ports and a bond's or VLAN's lower devices: the NICs a virtual interface sends through.
    if [ "$c" = net ]; then
      : > "$F/sys/class/net/$n/lower"
      for l in "$k"/lower_* "$k"/brif/*; do
        [ -e "$l" ] || continue
        l=${l##*/}
        printf '%s\n' "${l#lower_}" >> "$F/sys/class/net/$n/lower"
      done
    fi
  done
done
if [ -d /sys/class/vtconsole ]; then
  for k in /sys/class/vtconsole/*; do
    [ -e "$k" ] || continue
    n=${k##*/}
    dir "sys/class/vtconsole/$n"
    attr "$k/name" "sys/class/vtconsole/$n/name"
    attr "$k/bind" "sys/class/vtconsole/$n/bind"
  done
fi
dir sys/class/tty/console
attr /sys/class/tty/console/active sys/class/tty/console/active
for n in $(cat "$F/sys/class/tty/console/active" 2>/dev/null); do
  [ -e "/sys/class/tty/$n/device" ] || continue
  dir "sys/class/tty/$n"
  target "/sys/class/tty/$n/device" && printf '%s\n' "$__t" > "$F/sys/class/tty/$n/device"
done

# ---------------------------------------------------------------- the archive
# The manifest lists every file collected, so a reader can tell a cut archive from a
# machine that lacked something.
cd "$stage" || exit 1
find hvmpt-facts -type f ! -name MANIFEST > "$F/MANIFEST"
if ! command -v tar > /dev/null 2>&1; then
  trap - EXIT
  echo "hvmpt collect: no tar on this machine; the facts are in $stage" >&2
  exit 1
fi
if [ "$out" = - ]; then
  tar -cf - hvmpt-facts || exit 1
else
  tar -cf "$out" hvmpt-facts || { rm -f "$out"; exit 1; }
  echo "hvmpt collect: wrote $out ($count PCI functions)" >&2
fi
