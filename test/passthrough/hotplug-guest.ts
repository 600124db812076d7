/**
 * Shell for the probe guest of the hot-plug lab tests (hotplug-lab.test.ts with an IOMMU,
 * identity-hotplug-lab.test.ts without): finding a function by its IDs, waiting for the NIC and
 * its link, and the deaf guest whose device `detach --force-after` takes back. Both tests put
 * these into their guest scripts as they are.
 */

/** find_dev IDS, wait_nic (sets $nic), wait_gone PATH, link_up (sets $eth, link and link-local address up). */
export const NIC_GUEST_HELPERS = `
find_dev() { for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor):$(cat $d/device)" = "$1" ] && echo $d && return; done; }
wait_nic() { for i in $(seq 2400); do nic=$(find_dev 0x8086:0x10d3); [ -n "$nic" ] && [ -d "$nic/net" ] && return; sleep 0.25; done; }
# Gone once its sysfs directory is (the IDs stop reading a little before).
wait_gone() { for i in $(seq 2400); do [ -e "$1" ] || return; sleep 0.25; done; }
link_up() { eth=$(ls $nic/net); ip link set $eth up
  for i in $(seq 300); do [ "$(cat /sys/class/net/$eth/carrier 2>/dev/null)" = 1 ] && break; sleep 0.2; done
  for i in $(seq 300); do ip -6 addr show dev $eth | grep -v tentative | grep -q "inet6 fe80" && break; sleep 0.2; done; }
`;

/**
 * The NIC attached once more and pinged; then GPE 1 disabled (the eject request never reaches
 * acpiphp), `@@deaf` printed, and the guest waits until the function reads all ones (taken by
 * force) to print the `forced` section (its Vendor ID, then ping6's exit status) and enable GPE 1.
 */
export const DEAF_GUEST = `
wait_nic; link_up
section nic-ping-force ping6 -c 5 -A -W 10 -I $eth "@PEER@%$eth"
# A guest that no longer hears the hot-plug GPE: the eject request never reaches its acpiphp.
echo disable > /sys/firmware/acpi/interrupts/gpe01
echo @@deaf
for i in $(seq 2400); do [ "$(od -An -tx2 -N2 $nic/config | tr -d ' ')" = ffff ] && break; sleep 0.25; done
section forced sh -c "od -An -tx2 -N2 $nic/config; ping6 -c 2 -W 2 -I $eth '@PEER@%$eth' >/dev/null 2>&1; echo ping-rc=\\$?"
echo enable > /sys/firmware/acpi/interrupts/gpe01
`;
