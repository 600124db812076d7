import { HvmptError } from '../../errors.js';

/** KVM on this machine cannot do what the monitor needs (missing capability, wrong API). */
export class KvmError extends HvmptError {}
