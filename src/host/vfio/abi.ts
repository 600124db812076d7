/**
 * The VFIO uAPI from <linux/vfio.h>: ioctl numbers and structure layouts as named byte offsets.
 * Every VFIO ioctl is `_IO(';', 100 + n)` (the structures travel with their own argsz).
 * test/host/vfio-abi.test.ts compiles a C program against the installed header and checks every
 * number here against it.
 */

const VFIO_TYPE = 0x3b; // ';'
const VFIO_BASE = 100;
const io = (n: number): number => ((VFIO_TYPE << 8) | (VFIO_BASE + n)) >>> 0;

export const VFIO_API_VERSION = 0;

export const IOCTL = {
  GET_API_VERSION: io(0),
  CHECK_EXTENSION: io(1),
  SET_IOMMU: io(2),
  GROUP_GET_STATUS: io(3),
  GROUP_SET_CONTAINER: io(4),
  GROUP_UNSET_CONTAINER: io(5),
  GROUP_GET_DEVICE_FD: io(6),
  DEVICE_GET_INFO: io(7),
  DEVICE_GET_REGION_INFO: io(8),
  DEVICE_GET_IRQ_INFO: io(9),
  DEVICE_SET_IRQS: io(10),
  DEVICE_RESET: io(11),
  DEVICE_GET_PCI_HOT_RESET_INFO: io(12),
  DEVICE_PCI_HOT_RESET: io(13),
  IOMMU_GET_INFO: io(12),
  IOMMU_MAP_DMA: io(13),
  IOMMU_UNMAP_DMA: io(14),
} as const;

/** IOMMU models (VFIO_CHECK_EXTENSION / VFIO_SET_IOMMU). */
export const IOMMU = { TYPE1: 1, TYPE1v2: 3, NOIOMMU: 8 } as const;

export const GROUP_FLAGS = { VIABLE: 1 << 0, CONTAINER_SET: 1 << 1 } as const;
export const DEVICE_FLAGS = { RESET: 1 << 0, PCI: 1 << 1, CAPS: 1 << 7 } as const;
export const REGION_FLAGS = { READ: 1 << 0, WRITE: 1 << 1, MMAP: 1 << 2, CAPS: 1 << 3 } as const;
export const REGION_CAP = { SPARSE_MMAP: 1, TYPE: 2, MSIX_MAPPABLE: 3 } as const;
export const IRQ_INFO_FLAGS = { EVENTFD: 1 << 0, MASKABLE: 1 << 1, AUTOMASKED: 1 << 2, NORESIZE: 1 << 3 } as const;
export const IRQ_SET = {
  DATA_NONE: 1 << 0,
  DATA_BOOL: 1 << 1,
  DATA_EVENTFD: 1 << 2,
  ACTION_MASK: 1 << 3,
  ACTION_UNMASK: 1 << 4,
  ACTION_TRIGGER: 1 << 5,
} as const;
export const DMA_MAP_FLAGS = { READ: 1 << 0, WRITE: 1 << 1 } as const;

/** vfio-pci's fixed region and IRQ indexes. */
export const PCI_REGION = { BAR0: 0, ROM: 6, CONFIG: 7, VGA: 8 } as const;
export const PCI_IRQ = { INTX: 0, MSI: 1, MSIX: 2, ERR: 3, REQ: 4 } as const;

export const SIZE = {
  groupStatus: 8,
  deviceInfo: 20,
  regionInfo: 32,
  infoCapHeader: 8,
  sparseMmapHeader: 16,
  sparseMmapArea: 16,
  irqInfo: 16,
  irqSetHeader: 20,
  dmaMap: 32,
  dmaUnmap: 24,
  hotResetInfoHeader: 12,
  dependentDevice: 8,
  hotResetHeader: 12,
} as const;

/** Every structure starts with argsz and flags. */
export const HEAD = { argsz: 0, flags: 4 } as const;
export const DEVICE_INFO = { numRegions: 8, numIrqs: 12, capOffset: 16 } as const;
export const REGION_INFO = { index: 8, capOffset: 12, size: 16, offset: 24 } as const;
export const CAP_HEADER = { id: 0, version: 2, next: 4 } as const;
export const SPARSE_MMAP = { nrAreas: 8, areas: 16 } as const;
export const SPARSE_AREA = { offset: 0, size: 8 } as const;
export const IRQ_INFO = { index: 8, count: 12 } as const;
export const IRQ_SET_FIELDS = { index: 8, start: 12, count: 16, data: 20 } as const;
export const DMA_MAP = { vaddr: 8, iova: 16, size: 24 } as const;
export const DMA_UNMAP = { iova: 8, size: 16 } as const;
export const HOT_RESET_INFO = { count: 8, devices: 12 } as const;
export const DEPENDENT_DEVICE = { groupId: 0, segment: 4, bus: 6, devfn: 7 } as const;
export const HOT_RESET = { count: 8, groupFds: 12 } as const;
