import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The process tests run the built bin (bin/vmm.js loads dist/), so the cli itself is compiled first. Its
 * workspace dependencies are built by turbo (test depends on build); this only refreshes the cli's own dist.
 */
export default function setup(): void {
  const cliDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const tsc = createRequire(path.join(cliDir, "package.json")).resolve("typescript/bin/tsc");
  execFileSync(process.execPath, [tsc, "-p", "tsconfig.json"], { cwd: cliDir, stdio: "inherit" });
}
