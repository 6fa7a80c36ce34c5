import { UsageError } from "../errors.js";

const MIB = 2 ** 20;
const UNITS: Record<string, number> = { k: 2 ** 10, m: MIB, g: 2 ** 30, t: 2 ** 40 };
/** Guest RAM below this is useless for any guest we load (page tables, stack, the program). */
export const MIN_MEMORY = MIB;
/** The largest guest RAM we accept (guest-physical addresses are below 2^52; keep well clear). */
export const MAX_MEMORY = 2 ** 40;

/**
 * Parses `-m/--mem`: a plain number is MiB (as kvmtool takes it); a K/M/G/T suffix (optionally "iB" or "B") gives
 * the unit in powers of 1024. Returns bytes: a whole number of MiB (what machines map) within
 * [MIN_MEMORY, MAX_MEMORY].
 */
export function parseMemorySize(text: string): number {
  const m = /^(\d+)\s*(?:([kmgt])(?:i?b)?)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`invalid memory size '${text}' (expected MiB like 256, or a size like 512M or 1G)`);
  const bytes = Number(m[1]) * (m[2] ? UNITS[m[2].toLowerCase()]! : MIB);
  if (!Number.isSafeInteger(bytes) || bytes > MAX_MEMORY) throw new UsageError(`memory size '${text}' is too large (at most 1T)`);
  if (bytes < MIN_MEMORY) throw new UsageError(`memory size '${text}' is too small (at least 1M)`);
  if (bytes % MIB !== 0) throw new UsageError(`memory size '${text}' is not a whole number of MiB`);
  return bytes;
}

/** Parses `-c/--cpus`: a positive integer. The machine checks it against what KVM offers. */
export function parseCpuCount(text: string): number {
  const t = text.trim();
  const n = /^\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > 255) throw new UsageError(`invalid CPU count '${text}' (expected 1 to 255)`);
  return n;
}

/** "256 MiB", "1 GiB": for messages. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", MIB], ["KiB", 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} bytes`;
}
