// The network-namespace harness shared by the tap tests of @vmm/kvm-native and @vmm/device-virtio.
// Runs a test file again inside a fresh network namespace, so tap tests only ever see interfaces they create.
// `unshare -n` ties the namespace to the child process: it disappears when the child exits or is killed, so
// nothing can leak on failure or timeout. The host's own interfaces are never touched.
import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** Set in the child: the test file is running inside its own namespace. */
export const NETNS_ENV = "VMM_TAP_IN_NETNS";
export const insideNetns = process.env[NETNS_ENV] === "1";

function netnsAvailability(): { ok: true } | { ok: false; reason: string } {
  try {
    accessSync("/dev/net/tun", constants.R_OK | constants.W_OK);
  } catch (e) {
    return { ok: false, reason: `/dev/net/tun is not usable (${(e as NodeJS.ErrnoException).code})` };
  }
  if (spawnSync("ip", ["-V"], { stdio: "ignore" }).status !== 0) return { ok: false, reason: "iproute2 `ip` is not installed" };
  const u = spawnSync("unshare", ["-n", "ip", "link", "show", "lo"], { encoding: "utf8" });
  if (u.error) return { ok: false, reason: "util-linux `unshare` is not installed" };
  if (u.status !== 0) return { ok: false, reason: `cannot create a network namespace: ${u.stderr.trim()}` };
  return { ok: true };
}

const availability = insideNetns ? ({ ok: true } as const) : netnsAvailability();
export const netnsOk = availability.ok;
if (!availability.ok) {
  console.warn(["#".repeat(72), "# WARNING: tap tests SKIPPED: " + availability.reason, "#".repeat(72)].join("\n"));
}

/**
 * Runs `vitest run <file>` under `unshare -n` with NETNS_ENV set; resolves with the exit status and output.
 * The child is killed after `timeoutMs` (the namespace goes with it).
 */
export function runInFreshNetns(packageDir: string, file: string, timeoutMs: number): Promise<{ status: number | null; output: string }> {
  const require = createRequire(import.meta.url);
  const vitest = join(dirname(require.resolve("vitest/package.json")), "vitest.mjs");
  return new Promise((resolve) => {
    const child = spawn("unshare", ["-n", process.execPath, vitest, "run", file], {
      cwd: packageDir,
      env: { ...process.env, [NETNS_ENV]: "1", NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (status) => {
      clearTimeout(timer);
      resolve({ status, output: output.replace(/\x1b\[[0-9;]*m/g, "") });
    });
  });
}

/** Runs `ip` (inside the namespace) and throws with its stderr on failure. */
export function ip(...args: string[]): string {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}
