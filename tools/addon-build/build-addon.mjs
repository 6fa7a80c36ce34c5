// Builds a package's node-addon-api addon with node-gyp against the headers of the running node; shared by the
// workspace's addon packages (@vmm/kvm-native, @vmm/host-io), whose scripts/build.mjs call buildAddon().
// node-gyp cannot download headers on the project's machines, so --nodedir points at the installation that
// runs this script (it ships include/node/node_api.h).
// Several installs/builds may run at once in one working tree, so the build holds a lock (flock), and it is
// incremental (configure + build, never a clean rebuild that would pull the addon away from a process that is
// loading it). `--force` rebuilds even when the addon looks fresh.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

function mtime(f) {
  return existsSync(f) ? statSync(f).mtimeMs : 0;
}

/**
 * Builds build/Release/<target>.node of the package in `pkgDir` (a path or file: URL) unless it is newer than
 * binding.gyp and every file in native/. Exits the process with node-gyp's status. Arguments come from
 * process.argv: `--force` rebuilds; `--locked` is internal (the flock re-exec of process.argv[1]).
 */
export function buildAddon(pkgDir) {
  if (pkgDir instanceof URL) pkgDir = fileURLToPath(pkgDir);
  const gypFile = join(pkgDir, "binding.gyp");
  // binding.gyp is a Python literal; its first target_name is the addon's name.
  const target = /"target_name"\s*:\s*"([^"]+)"/.exec(readFileSync(gypFile, "utf8"))?.[1];
  if (!target) fail(`${gypFile} names no target`);
  const label = basename(pkgDir);
  const addon = join(pkgDir, "build", "Release", `${target}.node`);
  const force = process.argv.includes("--force");
  const newestSource = () =>
    Math.max(mtime(gypFile), ...readdirSync(join(pkgDir, "native")).map((f) => mtime(join(pkgDir, "native", f))));
  const fresh = () => !force && existsSync(addon) && mtime(addon) >= newestSource();
  if (fresh()) process.exit(0);

  if (!process.argv.includes("--locked")) {
    const hash = createHash("sha1").update(pkgDir).digest("hex").slice(0, 12);
    const lock = join(tmpdir(), `vmm-${label}-${hash}.lock`);
    if (spawnSync("flock", ["--version"], { stdio: "ignore" }).status === 0) {
      const r = spawnSync("flock", [lock, process.execPath, process.argv[1], "--locked", ...process.argv.slice(2)], { stdio: "inherit" });
      process.exit(r.status ?? 1);
    }
  }
  if (fresh()) process.exit(0); // another build finished while we waited for the lock

  const nodedir = join(dirname(process.execPath), "..");
  if (!existsSync(join(nodedir, "include", "node", "node_api.h"))) {
    fail(`${label}: node headers not found under ${nodedir}/include/node; cannot build the addon`);
  }
  // node-gyp is resolved from the addon package (its devDependency), as node-gyp-build and node-addon-api are.
  const require = createRequire(join(pkgDir, "package.json"));
  const gyp = join(dirname(require.resolve("node-gyp/package.json")), "bin", "node-gyp.js");
  const run = (args) =>
    spawnSync(process.execPath, [gyp, ...args, `--nodedir=${nodedir}`], {
      cwd: pkgDir,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...process.env, npm_config_nodedir: nodedir },
    }).status ?? 1;

  const makefile = join(pkgDir, "build", "Makefile");
  if (!existsSync(makefile) || mtime(gypFile) > mtime(makefile)) {
    const s = run(["configure"]);
    if (s !== 0) process.exit(s);
  }
  process.exit(run(["build", "--jobs=2"]));
}

function fail(message) {
  console.error(message);
  process.exit(1);
}
