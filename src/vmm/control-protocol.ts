/**
 * What the main thread asks of a running machine and what the vCPU thread answers, over the
 * MessagePort the runner hands the vCPU thread (worker-protocol.ts `WorkerInput.control`). The
 * vCPU thread reads requests synchronously (receiveMessageOnPort) whenever it is kicked, so a
 * request costs the guest one exit; everything it changes (the bus, memory slots, irqfds) it
 * owns, so nothing races it.
 */
import type { PassthroughAttachment } from '../platform/passthrough.js';
import type { CapabilityPolicy, UnclaimedPolicy } from '../hw/pci/real.js';
import type { IdOverride } from '../hw/pci/compose.js';

export type ControlRequest =
  | { readonly id: number; readonly op: 'status' }
  | {
      readonly id: number;
      readonly op: 'attach';
      readonly name: string;
      /** A root slot the entry asked for (`at`), else the first free hot-plug slot. */
      readonly slot: number | undefined;
      readonly attachment: PassthroughAttachment;
      readonly ids?: IdOverride;
      readonly capabilities?: CapabilityPolicy;
      readonly unclaimed?: UnclaimedPolicy;
    }
  /** Ask the guest to give the device up (DOWN and the GPE); the removal comes as an event. */
  | { readonly id: number; readonly op: 'detach'; readonly name: string }
  /** Take the device out whether or not the guest let go of it. */
  | { readonly id: number; readonly op: 'force-detach'; readonly name: string };

/** A device on the running machine's bus. */
export interface LiveDevice {
  readonly name: string;
  readonly bdf: string;
  readonly ids: string;
  readonly kind: string;
  /** In a hot-plug slot: may be ejected. */
  readonly removable: boolean;
  /** present, or eject-requested (DOWN set, the guest has not ejected yet). */
  readonly state?: 'present' | 'eject-requested';
  readonly hotplugged?: boolean;
}

export interface MachineStatus {
  readonly exits: number;
  readonly memorySlots: number;
  readonly irqfds: number;
  readonly msiGsis: number;
  readonly passthrough: number;
  readonly hotplug: { readonly slots: readonly number[]; readonly occupied: readonly number[]; readonly free: readonly number[] } | null;
  readonly devices: readonly LiveDevice[];
}

export type ControlResult =
  | { readonly op: 'status'; readonly status: MachineStatus }
  | { readonly op: 'attach'; readonly name: string; readonly slot: number; readonly bdf: string; readonly source: string }
  | { readonly op: 'detach'; readonly name: string; readonly slot: number; readonly state: 'eject-requested' }
  | { readonly op: 'force-detach'; readonly removal: Removal };

/** How a device left the bus, and anything that went wrong on the way (teardown goes on past a failing step). */
export interface Removal {
  readonly name: string;
  readonly slot: number;
  readonly how: 'ejected' | 'forced';
  readonly problems: readonly string[];
}

export type ControlReply = { readonly id: number; readonly ok: true; readonly result: ControlResult } | { readonly id: number; readonly ok: false; readonly error: string };

/** Unasked news from the machine: a device left the bus (the guest's _EJ0, after a detach or on its own). */
export interface ControlEvent {
  readonly event: 'removed';
  readonly removal: Removal;
}

export type ControlMessage = ControlReply | ControlEvent;
