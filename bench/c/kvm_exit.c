/*
 * The bare floor for bench 1: a minimal KVM_RUN loop in C running the same micro-guest image
 * as hvmpt and QEMU (mapped read-only at 4G-64K and at 0xF0000, like a BIOS) on a VM set up
 * like hvmpt's (in-kernel irqchip and PIT, the supported CPUID), answering CF8 writes and
 * CFC reads with nothing but a stored address. Prints "exits N ns T" where T
 * covers first KVM_RUN to the guest's write to port 0xF4.
 * Built at bench time: cc -O2 -o kvm_exit kvm_exit.c
 */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) {
	perror(what);
	exit(1);
}

static void slot(int vm, int n, uint64_t gpa, uint64_t size, void *host, int ro) {
	struct kvm_userspace_memory_region r = {
		.slot = n, .flags = ro ? KVM_MEM_READONLY : 0, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (uint64_t)host,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) die("KVM_SET_USER_MEMORY_REGION");
}

int main(int argc, char **argv) {
	if (argc != 2) {
		fprintf(stderr, "usage: %s IMAGE64K\n", argv[0]);
		return 2;
	}
	int img = open(argv[1], O_RDONLY);
	if (img < 0) die(argv[1]);
	void *rom = mmap(NULL, 0x10000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (read(img, rom, 0x10000) != 0x10000) die("read image");
	close(img);

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) die("/dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) die("KVM_CREATE_VM");
	if (ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000) < 0) die("KVM_SET_TSS_ADDR");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) die("KVM_CREATE_IRQCHIP");
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0) die("KVM_CREATE_PIT2");
	void *ram = mmap(NULL, 0xf0000, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	slot(vm, 0, 0, 0xf0000, ram, 0);
	slot(vm, 1, 0xf0000, 0x10000, rom, 1);
	slot(vm, 2, 0xffff0000, 0x10000, rom, 1);

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) die("KVM_CREATE_VCPU");
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(struct kvm_cpuid_entry2));
	cpuid->nent = 256;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
	if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");
	int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) die("mmap kvm_run");

	uint32_t cf8 = 0;
	uint64_t exits = 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
		exits++;
		if (run->exit_reason != KVM_EXIT_IO) {
			fprintf(stderr, "unexpected exit %u\n", run->exit_reason);
			return 1;
		}
		uint8_t *data = (uint8_t *)run + run->io.data_offset;
		if (run->io.port == 0xf4) break;
		if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0xcf8 && run->io.size == 4)
			memcpy(&cf8, data, 4);
		else if (run->io.direction == KVM_EXIT_IO_IN)
			memset(data, (cf8 & 0x80000000u) ? 0xff : 0, run->io.size);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	long long ns = (t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
	printf("exits %llu ns %lld\n", (unsigned long long)exits, ns);
	return 0;
}
