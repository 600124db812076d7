/**
 * What the lab host runs after its init has loaded the modules (busybox sh, as the guest
 * harness's `script`): mount this machine's root read-only over 9p, make /tmp, /var/tmp and
 * $TMPDIR writable (an overlay on the host's directory, writes kept in the lab), find each
 * device in sysfs along its chain of slots, bring the hub peer up, then chroot into the root
 * and run the command at the caller's directory with its stdout on COM2 and stderr on COM3.
 * Directories the caller asked to be writable are this machine's own, shared read-write over
 * 9p at the same path (how `hvmpt run` in a lab gets its --report and --serial files out).
 *
 * Markers it prints on the console (COM1), each on a line of its own:
 *   @@hvmpt-lab-device INDEX BDF VENDOR DEVICE   where device INDEX was found (BDF '-' if not)
 *   @@hvmpt-lab-kvm yes|no                       whether /dev/kvm exists in the lab host
 *   @@hvmpt-lab-warn TEXT                        something the caller should hear about
 *   @@hvmpt-lab-fail TEXT                        the lab cannot run the command (status 125)
 *   @@hvmpt-lab-up                               the command starts now
 */
import { devfnText, type Devfn, type LabLayout } from './devices.js';
import { GUEST_SLOTS_DIR } from '../guest/slots.js';

export const LAB_MARK = {
  device: '@@hvmpt-lab-device',
  kvm: '@@hvmpt-lab-kvm',
  warn: '@@hvmpt-lab-warn',
  fail: '@@hvmpt-lab-fail',
  up: '@@hvmpt-lab-up',
} as const;

/** Where the initrd holds the caller's environment and command (sourced by the script). */
export const LAB_ENV_FILE = 'lab/env';
export const LAB_CMD_FILE = 'lab/cmd';

/** Directories that are writable in the lab, besides $TMPDIR. */
const WRITABLE = ['/tmp', '/var/tmp'];

/** A shell word that stands for `s` exactly. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `export NAME='value'` lines for every variable a shell can hold, `skip` left out. */
export function envFile(env: Readonly<Record<string, string | undefined>>, skip: ReadonlySet<string>): string {
  return Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined && /^[A-Za-z_][A-Za-z0-9_]*$/.test(e[0]) && !skip.has(e[0]))
    .map(([k, v]) => `export ${k}=${shellQuote(v)}\n`)
    .join('');
}

/** The command file: the directory and the shell command line, as plain shell variables (not exported). */
export function commandFile(cwd: string, command: readonly string[]): string {
  const line = command.length === 1 ? command[0]! : command.map(shellQuote).join(' ');
  return `lab_cwd=${shellQuote(cwd)}\nlab_cmd=${shellQuote(line)}\n`;
}

/**
 * Holds two idle VMs open for the lab host's whole life (perl, which Debian always has), so
 * that the VMs the tests start and stop never take KVM's static keys through zero. Each such
 * step rewrites live kernel code with int3 (text_poke_bp): the first VM enables the preempt
 * notifiers that __schedule tests, the first vCPU's LAPIC apic_sw_disabled (and a disabled
 * APIC base apic_hw_disabled), the first vCPU without one kvm_has_noapic_vcpu. Under
 * multi-threaded TCG a vCPU can keep a stale translation of the int3 after the byte is
 * restored: the kernel's int3 handler, finding no int3 in memory, retries the instruction, and
 * that CPU loops with interrupts off for good (seen 2026-12-07: both lab CPUs at
 * __schedule+0x2ab, exc_int3 → kprobe_int3_handler, the timer pending in both LAPICs' IRR, the
 * nop back in memory; docs/lab.md, Limits). Pinned here once at boot, while nothing else runs,
 * they stay still. The ioctl numbers are src/vmm/kvm/abi.ts's (KVM_CREATE_VM, KVM_CREATE_VCPU,
 * KVM_CREATE_IRQCHIP, KVM_SET_MSRS) written out, since host/ may not import vmm/; the lab test
 * checks that the keeper holds its two VMs and vCPUs.
 */
const KVM_KEEPER = `$0 = "hvmpt-lab-kvm-keeper";
sysopen(my $kvm, "/dev/kvm", 2) or die "/dev/kvm: $!\\n";
sub kvm { my $r = ioctl($_[0], $_[1], $_[3] // 0); defined $r or die "$_[2]: $!\\n"; $r eq "0 but true" ? 0 : $r }
sub fd { open(my $h, "+<&=", $_[0]) or die "fd $_[0]: $!\\n"; $h }
my $plain = fd(kvm($kvm, 0xAE01, "KVM_CREATE_VM"));
kvm($plain, 0xAE41, "KVM_CREATE_VCPU");
my $chip = fd(kvm($kvm, 0xAE01, "KVM_CREATE_VM"));
kvm($chip, 0xAE60, "KVM_CREATE_IRQCHIP");
my $vcpu = fd(kvm($chip, 0xAE41, "KVM_CREATE_VCPU"));
# KVM_SET_MSRS: IA32_APIC_BASE at its reset value less the enable bit.
kvm($vcpu, 0x4008AE89, "KVM_SET_MSRS", pack("LLLLQ", 1, 0, 0x1b, 0, 0xfee00100)) == 1 or die "KVM_SET_MSRS: APIC base refused\\n";
my $pid = fork() // die "fork: $!\\n";
exit 0 if $pid;
setpgrp(0, 0);
open(STDIN, "<", "/dev/null"); open(STDOUT, ">", "/dev/null"); open(STDERR, ">", "/dev/null");
sleep while 1;`;

const chainArgs = (chain: readonly Devfn[]): string => chain.map(devfnText).join(' ');

export function labScript(layout: LabLayout): string {
  const findDevices = layout.devices
    .map(
      (d) =>
        `if b=$(lab_find ${chainArgs(d.chain)}); then echo "${LAB_MARK.device} ${d.index} $b $(cat /sys/bus/pci/devices/$b/vendor) $(cat /sys/bus/pci/devices/$b/device)"; ` +
        `HVMPT_LAB_PCI="$HVMPT_LAB_PCI\${HVMPT_LAB_PCI:+ }$b"; else echo "${LAB_MARK.device} ${d.index} - - -"; fi`,
    )
    .join('\n');
  const peer =
    layout.peer === undefined
      ? ''
      : `if b=$(lab_find ${chainArgs(layout.peer)}); then for n in /sys/bus/pci/devices/$b/net/*; do HVMPT_LAB_PEER=\${n##*/}; ip link set "$HVMPT_LAB_PEER" up; done; fi
[ -n "$HVMPT_LAB_PEER" ] || echo "${LAB_MARK.warn} the hub's second e1000e has no network interface in the lab host"
# Its link-local address once duplicate-address detection is done (seconds under TCG): a guest pinging it before gets no answer.
if [ -n "$HVMPT_LAB_PEER" ]; then
  i=0
  while [ $i -lt 300 ]; do
    HVMPT_LAB_PEER_ADDR=$(ip -6 addr show dev "$HVMPT_LAB_PEER" | grep -v tentative | sed -n 's/.*inet6 \\(fe80::[0-9a-f:]*\\).*/\\1/p' | head -n 1)
    [ -n "$HVMPT_LAB_PEER_ADDR" ] && break
    sleep 0.2; i=$((i+1))
  done
  [ -n "$HVMPT_LAB_PEER_ADDR" ] || echo "${LAB_MARK.warn} $HVMPT_LAB_PEER has no link-local address after 60 s"
fi`;
  return `lab_fail() { echo "${LAB_MARK.fail} $*"; exit 125; }
lab_find() {
  d=/sys/devices/pci0000:00
  for h in "$@"; do d=$(echo $d/0000:??:$h); [ -d "$d" ] || return 1; done
  echo "\${d##*/}"
}
# Writes under DIR stay in the lab: an overlay whose upper layer is lab memory.
lab_writable() {
  mkdir -p "/rw$1/u" "/rw$1/w"
  mount -t overlay overlay -o "lowerdir=/mnt$1,upperdir=/rw$1/u,workdir=/rw$1/w" "/mnt$1" 2>/dev/null && return 0
  mount -t tmpfs -o mode=1777 tmpfs "/mnt$1" && echo "${LAB_MARK.warn} $1 is an empty tmpfs (no overlay on the host's $1)"
}
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 hostroot /mnt || lab_fail "cannot mount the host root over 9p"
mount -t proc proc /mnt/proc && mount -t sysfs sysfs /mnt/sys && mount -t devtmpfs devtmpfs /mnt/dev || lab_fail "cannot mount proc, sysfs and devtmpfs at /proc, /sys and /dev of the host root"
mkdir -p /mnt/dev/pts /mnt/dev/shm
mount -t devpts devpts /mnt/dev/pts
mount -t tmpfs -o mode=1777 tmpfs /mnt/dev/shm
mkdir -p /rw && mount -t tmpfs tmpfs /rw || lab_fail "cannot mount a tmpfs"
# The caller's environment, with the lab's own PATH until the chroot.
. /${LAB_ENV_FILE}
. /${LAB_CMD_FILE}
lab_path=$PATH
PATH=/bin
for t in ${WRITABLE.join(' ')}; do lab_writable $t || lab_fail "cannot make $t writable"; done
case "$TMPDIR" in
  ''|/tmp|/tmp/*|/var/tmp|/var/tmp/*) ;;
  *) if [ -d "/mnt$TMPDIR" ]; then lab_writable "$TMPDIR" || lab_fail "cannot make TMPDIR $TMPDIR writable"
     else echo "${LAB_MARK.warn} TMPDIR $TMPDIR is not a directory on this machine; the command gets TMPDIR=/tmp"; export TMPDIR=/tmp; fi ;;
esac
# This machine's guest slots hold its PIDs, which mean nothing in the lab host: its guests count their own.
rm -rf "/mnt\${TMPDIR:-/tmp}/${GUEST_SLOTS_DIR}"
${layout.writable.map((w) => `mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 ${w.tag} /mnt${shellQuote(w.dir)} || lab_fail ${shellQuote(`cannot mount ${w.dir} read-write`)}`).join('\n')}
HVMPT_LAB_PCI=
HVMPT_LAB_PEER=
HVMPT_LAB_PEER_ADDR=
${findDevices}
${peer}
if [ -c /dev/kvm ]; then
  echo "${LAB_MARK.kvm} yes"
  /bin/chroot /mnt /usr/bin/perl -e ${shellQuote(KVM_KEEPER)} || echo "${LAB_MARK.warn} no VM holds KVM's static keys: each VM the tests start patches the lab kernel's code, which under TCG can wedge the lab host"
else echo "${LAB_MARK.kvm} no"; fi
stty -F /dev/ttyS1 raw -echo && stty -F /dev/ttyS2 raw -echo || lab_fail "cannot set COM2 and COM3 to raw mode"
export HVMPT_LAB=1 HVMPT_LAB_PCI HVMPT_LAB_PEER HVMPT_LAB_PEER_ADDR PATH="$lab_path"
echo ${LAB_MARK.up}
exec /bin/chroot /mnt /bin/sh -c 'cd "$1" || exit 125; exec /bin/sh -c "$2"' hvmpt-lab "$lab_cwd" "$lab_cmd" </dev/null >/dev/ttyS1 2>/dev/ttyS2
`;
}
