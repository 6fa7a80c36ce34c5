// Builds the native addon with node-gyp against the headers of the running node.
// node-gyp cannot download headers on the project's machines, so --nodedir points at the
// installation that runs this script (it ships include/node/node_api.h).
import { spawnSync } from "node:child_process";
import { existsSync, statSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const addon = join(pkgDir, "build", "Release", "kvm_native.node");
const force = process.argv.includes("--force");

function newestSource() {
  const files = [join(pkgDir, "binding.gyp"), ...readdirSync(join(pkgDir, "native")).map((f) => join(pkgDir, "native", f))];
  return Math.max(...files.map((f) => statSync(f).mtimeMs));
}

if (!force && existsSync(addon) && statSync(addon).mtimeMs >= newestSource()) {
  process.exit(0);
}

const nodedir = join(dirname(process.execPath), "..");
if (!existsSync(join(nodedir, "include", "node", "node_api.h"))) {
  console.error(`kvm-native: node headers not found under ${nodedir}/include/node; cannot build the addon`);
  process.exit(1);
}
const require = createRequire(import.meta.url);
const gyp = join(dirname(require.resolve("node-gyp/package.json")), "bin", "node-gyp.js");
const r = spawnSync(process.execPath, [gyp, "rebuild", `--nodedir=${nodedir}`, "--jobs=2"], {
  cwd: pkgDir,
  stdio: ["ignore", "inherit", "inherit"],
  env: { ...process.env, npm_config_nodedir: nodedir },
});
process.exit(r.status ?? 1);
