/*
 * edu-tool: drives QEMU's edu device (docs/specs/edu.rst) from a Linux guest, as a driver
 * would, for hvmpt's pass-through tests. The device is bound to uio_pci_generic; its BAR 0 is
 * mapped from sysfs resource0, interrupts are read from /dev/uioN, guest memory for DMA is
 * reached through /dev/mem (a range the guest kernel reserved with memmap=).
 *
 *   edu-tool DEV id                     ID register, liveness inversion, factorial of 5
 *   edu-tool DEV intx N                 N raise/wait/acknowledge cycles; counts lost and doubled ones
 *   edu-tool DEV dma SRC DST LEN        pattern at SRC -> edu buffer -> DST, compared
 *   edu-tool DEV dma-to ADDR LEN        (hostile) pattern DMA'd from the edu buffer to ADDR
 * DEV is the sysfs device directory. Output: one "key=value ..." line per result; exit 0 when good.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define REG_ID 0x00
#define REG_LIVE 0x04
#define REG_FACT 0x08
#define REG_STATUS 0x20
#define REG_IRQ_STATUS 0x24
#define REG_IRQ_RAISE 0x60
#define REG_IRQ_ACK 0x64
#define REG_DMA_SRC 0x80
#define REG_DMA_DST 0x88
#define REG_DMA_COUNT 0x90
#define REG_DMA_CMD 0x98
#define DMA_START 0x1
#define DMA_FROM_EDU 0x2
#define EDU_BUFFER 0x40000
#define EDU_BUFFER_SIZE 4096

static volatile uint32_t *bar;
static const char *dev;

static void die(const char *what) {
  fprintf(stderr, "edu-tool: %s: %s\n", what, strerror(errno));
  exit(2);
}

static uint32_t rd(unsigned off) { return bar[off / 4]; }
static void wr(unsigned off, uint32_t v) { bar[off / 4] = v; }
static void wr64(unsigned off, uint64_t v) { wr(off, (uint32_t)v); wr(off + 4, (uint32_t)(v >> 32)); }

static void map_bar(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/resource0", dev);
  int fd = open(path, O_RDWR | O_SYNC);
  if (fd < 0) die(path);
  bar = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (bar == MAP_FAILED) die("mmap resource0");
}

/* Bus mastering: uio_pci_generic enables the device but not its DMA. */
static void bus_master(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/config", dev);
  int fd = open(path, O_RDWR);
  if (fd < 0) die(path);
  uint16_t cmd;
  if (pread(fd, &cmd, 2, 4) != 2) die("read command");
  cmd |= 0x4;
  if (pwrite(fd, &cmd, 2, 4) != 2) die("write command");
  close(fd);
}

/*
 * uio_pci_generic masks INTx in the Command register (bit 10, Interrupt Disable) when an
 * interrupt comes in; the driver re-enables it by clearing that bit through config space.
 */
static int config_fd = -1;
static void intx_enable(void) {
  if (config_fd < 0) {
    char path[512];
    snprintf(path, sizeof path, "%s/config", dev);
    config_fd = open(path, O_RDWR);
    if (config_fd < 0) die(path);
  }
  uint16_t cmd;
  if (pread(config_fd, &cmd, 2, 4) != 2) die("read command");
  cmd &= (uint16_t)~0x400;
  if (pwrite(config_fd, &cmd, 2, 4) != 2) die("write command");
}

static int open_uio(void) {
  char path[512];
  snprintf(path, sizeof path, "%s/uio", dev);
  DIR *d = opendir(path);
  if (d == NULL) die(path);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, "uio", 3) == 0) {
      char node[300];
      snprintf(node, sizeof node, "/dev/%s", e->d_name);
      int fd = open(node, O_RDWR);
      if (fd < 0) die(node);
      closedir(d);
      return fd;
    }
  }
  fprintf(stderr, "edu-tool: no uio device under %s\n", path);
  exit(2);
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmd_id(void) {
  uint32_t id = rd(REG_ID);
  /* A device that is gone (failed, surprise-removed) reads all ones: its status would never say done. */
  if (id == 0xffffffffu) {
    printf("id=0x%08x gone\n", id);
    return 1;
  }
  wr(REG_LIVE, 0x12345678);
  uint32_t live = rd(REG_LIVE);
  wr(REG_FACT, 5);
  for (int spins = 0; rd(REG_STATUS) & 1; spins++) {
    if (spins == 100000) {
      printf("id=0x%08x live=0x%08x fact=timeout\n", id, live);
      return 1;
    }
    usleep(100);
  }
  uint32_t fact = rd(REG_FACT);
  printf("id=0x%08x live=0x%08x fact=%u\n", id, live, fact);
  return (id & 0xffff) == 0x00ed && live == ~0x12345678u && fact == 120 ? 0 : 1;
}

static int cmd_intx(long n) {
  int fd = open_uio();
  uint32_t count = 0, last = 0;
  long lost = 0, doubled = 0, wrong = 0;
  double t0 = now();
  for (long i = 0; i < n; i++) {
    intx_enable();
    uint32_t value = (uint32_t)(i & 0xffff) | 0x10000;
    wr(REG_IRQ_RAISE, value);
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 2000);
    if (r <= 0) { lost++; wr(REG_IRQ_ACK, value); continue; }
    if (read(fd, &count, 4) != 4) die("uio read");
    if (last != 0 && count != last + 1) doubled += count > last + 1 ? count - last - 1 : 0;
    last = count;
    if (rd(REG_IRQ_STATUS) != value) wrong++;
    wr(REG_IRQ_ACK, value);
  }
  /* Anything still pending after the last acknowledge is a doubled interrupt. */
  intx_enable();
  struct pollfd p = {fd, POLLIN, 0};
  if (poll(&p, 1, 200) > 0) doubled++;
  double dt = now() - t0;
  printf("intx cycles=%ld lost=%ld doubled=%ld wrong=%ld per_s=%.0f\n", n, lost, doubled, wrong, n / dt);
  return lost == 0 && doubled == 0 && wrong == 0 ? 0 : 1;
}

static volatile uint8_t *phys(uint64_t addr, size_t len) {
  int fd = open("/dev/mem", O_RDWR | O_SYNC);
  if (fd < 0) die("/dev/mem");
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)addr);
  if (p == MAP_FAILED) die("mmap /dev/mem");
  return p;
}

static int dma_wait(void) {
  double t0 = now();
  while (rd(REG_DMA_CMD) & DMA_START) {
    if (now() - t0 > 5) return -1;
    usleep(100);
  }
  return 0;
}

static void dma(uint64_t src, uint64_t dst, uint32_t len, uint32_t cmd) {
  wr64(REG_DMA_SRC, src);
  wr64(REG_DMA_DST, dst);
  wr64(REG_DMA_COUNT, len);
  wr64(REG_DMA_CMD, cmd | DMA_START);
}

static int cmd_dma(uint64_t src, uint64_t dst, uint32_t len) {
  /* QEMU before 8.2.1 aborts on a transfer that ends exactly at the buffer's end (its upper-bound check was off by one). */
  if (len >= EDU_BUFFER_SIZE) len = EDU_BUFFER_SIZE - 1;
  bus_master();
  volatile uint8_t *s = phys(src, len), *d = phys(dst, len);
  for (uint32_t i = 0; i < len; i++) { s[i] = (uint8_t)(i * 7 + 3); d[i] = 0; }
  dma(src, EDU_BUFFER, len, 0);
  if (dma_wait() < 0) { printf("dma timeout=to-device\n"); return 1; }
  dma(EDU_BUFFER, dst, len, DMA_FROM_EDU);
  if (dma_wait() < 0) { printf("dma timeout=from-device\n"); return 1; }
  uint32_t bad = 0;
  for (uint32_t i = 0; i < len; i++) if (d[i] != (uint8_t)(i * 7 + 3)) bad++;
  printf("dma src=0x%llx dst=0x%llx len=%u mismatched=%u first=0x%02x\n", (unsigned long long)src, (unsigned long long)dst, len, bad, d[0]);
  return bad == 0 ? 0 : 1;
}

static int cmd_dma_to(uint64_t addr, uint32_t len) {
  if (len >= EDU_BUFFER_SIZE) len = EDU_BUFFER_SIZE - 1;
  bus_master();
  dma(addr, EDU_BUFFER, len, 0);
  int r1 = dma_wait();
  dma(EDU_BUFFER, addr, len, DMA_FROM_EDU);
  int r2 = dma_wait();
  printf("dma-to addr=0x%llx len=%u read=%s write=%s\n", (unsigned long long)addr, len, r1 == 0 ? "done" : "timeout", r2 == 0 ? "done" : "timeout");
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: edu-tool DEV id|intx N|dma SRC DST LEN|dma-to ADDR LEN\n"); return 2; }
  dev = argv[1];
  map_bar();
  if (strcmp(argv[2], "id") == 0) return cmd_id();
  if (strcmp(argv[2], "intx") == 0 && argc > 3) return cmd_intx(strtol(argv[3], NULL, 0));
  if (strcmp(argv[2], "dma") == 0 && argc > 5) return cmd_dma(strtoull(argv[3], NULL, 0), strtoull(argv[4], NULL, 0), (uint32_t)strtoul(argv[5], NULL, 0));
  if (strcmp(argv[2], "dma-to") == 0 && argc > 4) return cmd_dma_to(strtoull(argv[3], NULL, 0), (uint32_t)strtoul(argv[4], NULL, 0));
  fprintf(stderr, "edu-tool: unknown command %s\n", argv[2]);
  return 2;
}
