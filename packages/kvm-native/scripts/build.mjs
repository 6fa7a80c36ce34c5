// Builds the native addon with node-gyp against the headers of the running node.
// node-gyp cannot download headers on the project's machines, so --nodedir points at the
// installation that runs this script (it ships include/node/node_api.h).
// Several installs/builds may run at once in one working tree, so the build holds a lock (flock),
// and it is incremental (configure + build, never a clean rebuild that would pull the addon away
// from a process that is loading it). `--force` rebuilds even when the addon looks fresh.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const self = fileURLToPath(import.meta.url);
const pkgDir = join(dirname(self), "..");
const addon = join(pkgDir, "build", "Release", "kvm_native.node");
const force = process.argv.includes("--force");

function mtime(f) {
  return existsSync(f) ? statSync(f).mtimeMs : 0;
}

function newestSource() {
  const files = [join(pkgDir, "binding.gyp"), ...readdirSync(join(pkgDir, "native")).map((f) => join(pkgDir, "native", f))];
  return Math.max(...files.map(mtime));
}

const fresh = () => !force && existsSync(addon) && mtime(addon) >= newestSource();
if (fresh()) process.exit(0);

if (!process.argv.includes("--locked")) {
  const lock = join(tmpdir(), `vmm-kvm-native-${createHash("sha1").update(pkgDir).digest("hex").slice(0, 12)}.lock`);
  const hasFlock = spawnSync("flock", ["--version"], { stdio: "ignore" }).status === 0;
  if (hasFlock) {
    const r = spawnSync("flock", [lock, process.execPath, self, "--locked", ...process.argv.slice(2)], { stdio: "inherit" });
    process.exit(r.status ?? 1);
  }
}
if (fresh()) process.exit(0); // another build finished while we waited for the lock

const nodedir = join(dirname(process.execPath), "..");
if (!existsSync(join(nodedir, "include", "node", "node_api.h"))) {
  console.error(`kvm-native: node headers not found under ${nodedir}/include/node; cannot build the addon`);
  process.exit(1);
}
const require = createRequire(import.meta.url);
const gyp = join(dirname(require.resolve("node-gyp/package.json")), "bin", "node-gyp.js");
const run = (args) =>
  spawnSync(process.execPath, [gyp, ...args, `--nodedir=${nodedir}`], {
    cwd: pkgDir,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, npm_config_nodedir: nodedir },
  }).status ?? 1;

const makefile = join(pkgDir, "build", "Makefile");
if (!existsSync(makefile) || mtime(join(pkgDir, "binding.gyp")) > mtime(makefile)) {
  const s = run(["configure"]);
  if (s !== 0) process.exit(s);
}
process.exit(run(["build", "--jobs=2"]));
