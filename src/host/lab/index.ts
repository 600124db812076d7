/**
 * The lab: a disposable QEMU host machine with the devices and IOMMU asked for, running a
 * command of this machine's inside it (see docs/lab.md).
 */
export { chooseLabAccel, type KvmPaging, type LabAccel } from './accel.js';
export { LAB_DEVICE_MODELS, planLabDevices, ROOT_BUS, type Devfn, type LabDevice, type LabDeviceModel, type LabIommu, type LabLayout } from './devices.js';
export { LabBootError, LabDeviceError, LabError, LabSpecError, LabTimeoutError } from './errors.js';
export { LAB_DEFAULTS, LAB_MODULES, runLab, type LabOptions, type LabRun, type PlacedDevice } from './lab.js';
export { chooseLabQemu, labQemuCacheDir, SYSTEM_QEMU, unpackedQemu, type LabQemu, type LabQemuChoice } from './qemu.js';
