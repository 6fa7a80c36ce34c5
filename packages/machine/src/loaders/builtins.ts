import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

// Loaded on first use: most runs decompress no kernel, and loading node:zlib and node:crypto at start-up cost
// a `vmm run` about 3 MiB (issue #17).
export const zlib = (): typeof import("node:zlib") => require("node:zlib");
export const crypto = (): typeof import("node:crypto") => require("node:crypto");
