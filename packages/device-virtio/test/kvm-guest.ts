// Builds this package's guest drivers (test/guest/*.c) with guest-kit, as ELF images entered in 64-bit mode.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildGuest } from "@vmm/guest-kit";

const here = dirname(fileURLToPath(import.meta.url));

export function buildVirtioGuest(name: string): Promise<string> {
  return buildGuest(name, { format: "elf", source: join(here, "guest", `${name}.c`) });
}
