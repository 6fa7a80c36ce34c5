#!/usr/bin/env node
// Builds (or finds in the cache) the Linux test kernel and prints its path on stdout. A build reports on stderr:
// its expected time first, a progress line every 30 s, and the cache path at the end.
import { buildTestKernel } from "../dist/kernel.js";

try {
  const kernel = await buildTestKernel();
  console.log(kernel.bzImage);
} catch (e) {
  console.error(`vmm-build-linux: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
