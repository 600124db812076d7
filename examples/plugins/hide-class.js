// @ts-check
/**
 * A policy plug-in: hides every PCI function of one class from the guest — from its PCI bus
 * and, through `pci.hide`, from its ACPI namespace alike — and adds an SSDT with a method that
 * tells the guest how many it hid (\_SB.HVPH returns the count).
 *
 *   policies:
 *     - { module: ./hide-class.js, options: { class: 0x0c05 } }   # SMBus controllers
 *     - { module: ./hide-class.js, options: { class: 0x0c03 } }   # USB controllers (any interface)
 */
import { definePolicy, z } from 'hvmpt';

const hexOrNumber = z.union([z.number().int(), z.string().regex(/^0x[0-9a-f]+$/i).transform((s) => Number(s))]);

export default definePolicy({
  name: 'hide-class',
  summary: 'hides every PCI function of a class (e.g. SMBus 0x0c05, USB 0x0c03) and adds an SSDT method counting them',
  options: z.strictObject({
    /** Base class and subclass (0x0c05), or the whole 24-bit class code with its programming interface (0x0c0330). */
    class: hexOrNumber.pipe(z.number().int().min(0).max(0xffffff)),
    /** The SSDT method's name (four characters, the first a letter). */
    method: z.string().regex(/^[A-Z_][A-Z0-9_]{3}$/).default('HVPH'),
  }),
  apply(ctx, o) {
    const wide = o.class > 0xffff;
    const matches = (classCode) => (wide ? classCode === o.class : classCode >>> 8 === o.class);
    const hit = ctx.host.pci.filter((f) => f.origin === 'host' && matches(f.classCode));
    for (const f of hit) {
      ctx.hidePci(f.at, `class 0x${f.classCode.toString(16).padStart(6, '0')} (${f.vendorId.toString(16).padStart(4, '0')}:${f.deviceId.toString(16).padStart(4, '0')}) is hidden by policy`);
    }
    ctx.addSsdt(
      { oemTableId: 'HVPOLICY', body: [{ scope: '\\_SB', body: [{ method: o.method, body: [{ return: hit.length }] }] }] },
      `\\_SB.${o.method} returns the ${hit.length} function(s) of class 0x${o.class.toString(16)} hidden`,
    );
  },
});
