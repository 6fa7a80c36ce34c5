import { join } from "node:path";
import { buildGuest } from "@vmm/guest-kit";

/** Builds a guest program that lives in this package (test/guest/NAME.c) with guest-kit, as a raw image. */
export function buildPackageGuest(name: string): Promise<string> {
  return buildGuest(name, { format: "raw", source: join(import.meta.dirname, "../guest", `${name}.c`) });
}
