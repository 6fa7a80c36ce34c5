import { readFileSync } from "node:fs";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { ConfigurationError } from "@vmm/core";
import type { VcpuRegisters } from "../arch/machine.js";
import type { CliContext } from "../context.js";
import { ControlRefusal, controlRequest, vmSocket } from "../control/client.js";
import { controlDir, inspectSocket, removeStaleSocket, SOCKET_SUFFIX } from "../control/paths.js";
import type { SnapshotReply, VmStats, VmStatus } from "../control/protocol.js";
import { describe, UsageError } from "../errors.js";
import { statsLines } from "../stats.js";

/** Commands that talk to running VMs through their control sockets (src/control/; README "Control socket"). */

/** How long `vmm stop` waits for the guest to power off, then for the forced stop to end the process, unless --timeout says. */
export const DEFAULT_STOP_TIMEOUT_S = 10;
const MiB = 1024 * 1024;

/** `12s`, `5m03s`, `2h05m`, `3d04h`: an uptime short enough for a column. */
export function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, "0");
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

/** Columns of `vmm list`, each with how a VM's status fills it. */
const LIST_COLUMNS: ReadonlyArray<readonly [string, (s: VmStatus) => string]> = [
  ["NAME", (s) => s.name],
  ["PID", (s) => String(s.pid)],
  ["STATE", (s) => s.state],
  ["UPTIME", (s) => formatUptime(s.uptimeMs)],
  ["MEMORY", (s) => `${Math.round(s.memory / MiB)}M`],
  ["CPUS", (s) => String(s.cpus)],
  ["DEVICES", (s) => s.devices.join(",") || "-"],
];

/**
 * `vmm list [--json]`: every VM with a live control socket in the directory, asked for its status. A socket
 * nobody listens on (its VM died) is removed and said so on stderr; anything else that is not a socket is left.
 */
export async function listCommand(raw: { json?: boolean }, ctx: CliContext): Promise<number> {
  const dir = controlDir();
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith(SOCKET_SUFFIX)).sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    files = [];
  }
  const vms: VmStatus[] = [];
  for (const file of files) {
    const name = file.slice(0, -SOCKET_SUFFIX.length);
    const full = path.join(dir, file);
    const state = await inspectSocket(full);
    if (state === "stale") {
      if (await removeStaleSocket(full)) ctx.stderr(`vmm: removed the stale control socket of '${name}' (its VM is gone): ${full}\n`);
      continue;
    }
    if (state === "not-socket") {
      ctx.stderr(`vmm: warning: '${full}' is not a socket; left alone\n`);
      continue;
    }
    if (state !== "live") continue;
    try {
      const { v: _v, id: _id, ok: _ok, ...status } = await controlRequest(name, full, "status");
      vms.push(status as unknown as VmStatus);
    } catch (error) {
      ctx.stderr(`vmm: warning: ${name}: ${describe(error)}\n`);
    }
  }
  if (raw.json) {
    ctx.stdout(JSON.stringify(vms, null, 2) + "\n");
    return 0;
  }
  const rows = [LIST_COLUMNS.map(([title]) => title), ...vms.map((vm) => LIST_COLUMNS.map(([, cell]) => cell(vm)))];
  const widths = LIST_COLUMNS.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows) ctx.stdout(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join("  ") + "\n");
  return 0;
}

/** `vmm pause NAME`, `vmm resume NAME`: one request; the VM's new state on stdout. */
export async function stateCommand(cmd: "pause" | "resume", name: string, ctx: CliContext): Promise<number> {
  const reply = await controlRequest(name, vmSocket(name), cmd);
  ctx.stdout(`${name}: ${String(reply.state)}\n`);
  return 0;
}

/** `vmm stat NAME [--json]`: the machine's and every device's counters now, as `vmm run --stats` prints them. */
export async function statCommand(name: string, raw: { json?: boolean }, ctx: CliContext): Promise<number> {
  const { machine, devices } = (await controlRequest(name, vmSocket(name), "stat")) as unknown as VmStats;
  if (raw.json) ctx.stdout(JSON.stringify({ machine, devices }, null, 2) + "\n");
  else for (const line of statsLines(name, { machine, devices })) ctx.stdout(line + "\n");
  return 0;
}

/**
 * A vCPU's registers as text, like `lkvm debug`: a header line, then per group the plain values four to a line
 * (`rax=0x0  rbx=0x1 ...`) and the composite ones (segments, tables: values with spaces) one to a line.
 */
export function formatRegisters(vcpu: VcpuRegisters): string[] {
  const lines = [`vCPU ${vcpu.id} (${vcpu.mpState})`];
  for (const group of vcpu.groups) {
    const entries = Object.entries(group.values);
    lines.push(`  ${group.name}:`);
    const plain = entries.filter(([, v]) => !v.includes(" "));
    const width = Math.max(0, ...plain.map(([k, v]) => k.length + v.length + 1));
    for (let i = 0; i < plain.length; i += 4) lines.push("    " + plain.slice(i, i + 4).map(([k, v]) => `${k}=${v}`.padEnd(width)).join("  ").trimEnd());
    for (const [k, v] of entries.filter(([, value]) => value.includes(" "))) lines.push(`    ${k.padEnd(4)} ${v}`);
  }
  return lines;
}

/** `vmm debug NAME [--json]`: every vCPU's registers now (pause the VM first for values that stay put). */
export async function debugCommand(name: string, raw: { json?: boolean }, ctx: CliContext): Promise<number> {
  const { vcpus } = (await controlRequest(name, vmSocket(name), "registers")) as unknown as { vcpus: VcpuRegisters[] };
  if (raw.json) ctx.stdout(JSON.stringify(vcpus, null, 2) + "\n");
  else for (const vcpu of vcpus) for (const line of formatRegisters(vcpu)) ctx.stdout(line + "\n");
  return 0;
}

/** How long `vmm snapshot` waits for the VM to write its snapshot (guest RAM is written in it). */
export const SNAPSHOT_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * `vmm snapshot NAME DIR [--stop]`: the VM pauses, writes its snapshot into DIR (a new or empty directory, resolved
 * here), then runs on (or stays paused, as it was), or stops with --stop. One line on stdout says what was written.
 */
export async function snapshotCommand(name: string, dir: string, raw: { stop?: boolean }, ctx: CliContext): Promise<number> {
  const target = path.resolve(ctx.cwd, dir);
  const args = raw.stop ? { dir: target, then: "stop" } : { dir: target };
  const reply = (await controlRequest(name, vmSocket(name), "snapshot", SNAPSHOT_TIMEOUT_MS, args)) as unknown as SnapshotReply;
  const mib = (n: number) => `${(n / MiB).toFixed(n < MiB ? 2 : 0)} MiB`;
  ctx.stdout(`${name}: snapshot in ${reply.dir}: ${mib(reply.memoryBytes)} of RAM (${mib(reply.dataBytes)} not zero) in ${Math.round(reply.milliseconds)} ms; ${reply.state}\n`);
  return 0;
}

/**
 * Whether a process still runs: it exists (EPERM: it does, owned by someone else) and is not a zombie (it has
 * exited and only waits for its parent to collect its status).
 */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Waits up to `seconds` for process `pid` to end; true when it has. */
async function ended(pid: number, seconds: number): Promise<boolean> {
  const deadline = Date.now() + seconds * 1000;
  while (alive(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  return !alive(pid);
}

/** The pid a VM's reply carries. */
function replyPid(name: string, cmd: string, reply: Record<string, unknown>): number {
  const pid = Number(reply.pid);
  if (!Number.isInteger(pid) || pid <= 0) throw new ConfigurationError(`VM '${name}' answered ${cmd} without its pid`);
  return pid;
}

/**
 * The graceful part of `vmm stop`: presses the VM's power button and waits up to `timeout` for its process to end
 * (the guest powered off). Returns true when it did, otherwise why not, for the one line that says the VM is then
 * stopped by force, and the VM's pid when it answered. A VM that refuses the button (paused, still starting, a
 * machine without one, an older vmm run) is not waited for.
 */
async function powerDown(name: string, file: string, timeout: number): Promise<true | { why: string; pid?: number }> {
  let reply: Record<string, unknown>;
  try {
    reply = await controlRequest(name, file, "powerdown");
  } catch (error) {
    if (error instanceof ControlRefusal) return { why: `no graceful shutdown: ${error.message}` };
    throw error;
  }
  const pid = replyPid(name, "powerdown", reply);
  if (await ended(pid, timeout)) return true;
  const why = reply.enabled === true ? "its guest did not act on the power button" : "its guest has not enabled the ACPI power button";
  return { why: `did not power off within ${timeout} s (${why})`, pid };
}

/**
 * `vmm stop NAME [--timeout S] [--force]`: presses the VM's ACPI power button and waits for the guest to power off
 * (its `vmm run` exits 0). When it has not after the timeout, or it could not be asked, one line on stderr says so
 * and the VM is stopped as SIGTERM stops it (`vmm run` stops the machine, closes every device, removes the socket
 * and exits 143); `--force` does that at once. A guest that powers off between the wait and the forced stop (its
 * socket gone when the stop is sent) is reported powered off. A process that has not ended after the timeout again
 * is killed (SIGKILL), its socket removed, and the exit status is 1.
 */
export async function stopCommand(name: string, raw: { timeout?: string; force?: boolean }, ctx: CliContext): Promise<number> {
  const timeout = raw.timeout === undefined ? DEFAULT_STOP_TIMEOUT_S : Number(raw.timeout);
  if (!Number.isFinite(timeout) || timeout < 0) throw new UsageError(`--timeout must be a number of seconds, not '${raw.timeout}'`);
  const file = vmSocket(name);
  let poweringDown: number | undefined;
  if (!raw.force) {
    const graceful = await powerDown(name, file, timeout);
    if (graceful === true) {
      ctx.stdout(`${name}: powered off\n`);
      return 0;
    }
    ctx.stderr(`vmm: ${name}: ${graceful.why}; stopping it\n`);
    poweringDown = graceful.pid;
  }
  let pid: number;
  try {
    pid = replyPid(name, "stop", await controlRequest(name, file, "stop"));
  } catch (error) {
    // The guest may act on the button just after the wait: its vmm run removes the socket as it ends.
    if (poweringDown === undefined || !(await ended(poweringDown, timeout))) throw error;
    ctx.stdout(`${name}: powered off (after the wait, before the forced stop reached it)\n`);
    return 0;
  }
  if (await ended(pid, timeout)) {
    ctx.stdout(`${name}: stopped\n`);
    return 0;
  }
  process.kill(pid, "SIGKILL");
  for (let waited = 0; alive(pid) && waited < 2000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
  await removeStaleSocket(file);
  ctx.stderr(`vmm: ${name} (pid ${pid}) did not stop within ${timeout} s; killed it (SIGKILL)\n`);
  return 1;
}
