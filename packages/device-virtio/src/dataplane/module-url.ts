import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The URL of one of this package's compiled modules (`pathInDist`, e.g. "dataplane/worker-entry.js"), which a
 * worker thread loads by itself. Tried in turn: beside this module in the package's dist/; dist/ beside src/ when
 * this module is the TypeScript source (a test runner); and the installed package's dist/, found by resolving
 * "@vmm/device-virtio", when this code was bundled into another package (vmm's start-up bundle).
 */
export function builtModule(pathInDist: string): URL {
  const candidates: Array<() => URL> = [
    () => new URL(`../${pathInDist}`, import.meta.url),
    () => new URL(`../../dist/${pathInDist}`, import.meta.url),
    () => new URL(`./${pathInDist}`, import.meta.resolve("@vmm/device-virtio")),
  ];
  for (const candidate of candidates) {
    let url: URL;
    try {
      url = candidate();
    } catch {
      continue; // no import.meta.resolve here, or the package cannot be resolved from this place
    }
    if (url.protocol === "file:" && existsSync(fileURLToPath(url))) return url;
  }
  throw new Error(`@vmm/device-virtio: cannot find its built module ${pathInDist} (is the package built?)`);
}
