import { allMachines } from './fixtures.js';
import { parseAmlTables } from '../../../src/hw/acpi/aml/parse.js';
const ms = allMachines();
for (let i = 0; i < 60; i++) for (const m of ms) parseAmlTables(m.tables.map((t) => ({ body: t.body, table: t.label })));
