// A fresh copy of the repository to run the README's commands in, as a new user's clone is: the checkout's
// current commit cloned (uncommitted changes are not in it: a README edit is tested once committed), installed
// with `pnpm install` as the README says and built. Installing is offline: the packages come from the pnpm store
// the checkout was installed from.
import { spawnSync } from "node:child_process";
import { dirname } from "node:path";

/** The packages the README's commands need built before they run (with their dependencies). */
export const COPY_BUILD_FILTERS = ["@vmm/cli...", "@x/device-pci-testdev...", "@vmm/linux-tests..."] as const;

export interface FreshCopy {
  readonly dir: string;
  readonly commit: string;
  /** Seconds each step took: clone, install, build. */
  readonly seconds: Readonly<Record<"clone" | "install" | "build", number>>;
}

function step(cmd: string, args: string[], cwd: string): Buffer {
  const r = spawnSync(cmd, args, { cwd, maxBuffer: 256 * 1024 * 1024, env: { ...process.env, FORCE_COLOR: "0" } });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    const output = `${r.stdout.toString()}${r.stderr.toString()}`.slice(-4000);
    throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) failed with ${r.status ?? r.signal}:\n${output}`);
  }
  return r.stdout;
}

function timed<T>(work: () => T): [T, number] {
  const started = performance.now();
  const result = work();
  return [result, Math.round((performance.now() - started) / 100) / 10];
}

/** Clones `root`'s current commit into `dir` (which must not exist), installs and builds. */
export function makeFreshCopy(root: string, dir: string): FreshCopy {
  const [, clone] = timed(() => step("git", ["clone", "--quiet", root, dir], dirname(dir)));
  const commit = step("git", ["rev-parse", "HEAD"], dir).toString().trim();
  const [, install] = timed(() => step("pnpm", ["install", "--offline"], dir));
  const filters = COPY_BUILD_FILTERS.map((f) => `--filter=${f}`);
  const [, build] = timed(() => step("pnpm", ["turbo", "run", "build", ...filters, "--output-logs=errors-only"], dir));
  return { dir, commit, seconds: { clone, install, build } };
}
