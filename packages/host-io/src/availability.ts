import { tryLoadNative } from "./native.js";

/** Whether the addon loads: `{ ok: false, reason }` names the missing build instead of throwing. */
export function hostIoAvailability(): { ok: true } | { ok: false; reason: string } {
  const n = tryLoadNative();
  return n instanceof Error ? { ok: false, reason: n.message } : { ok: true };
}
