// virtio-rng's one request rule, shared by the JS thread (rng.ts) and the data-plane worker (rng-worker.ts).
import { randomFillSync } from "node:crypto";
import type { GuestMemory } from "@vmm/core";
import type { DescriptorChain } from "../virtqueue/descriptor-chain.js";

/** Bytes served per request at most; a guest asking for more gets a short (still valid) answer. */
export const MAX_REQUEST = 64 * 1024;

/**
 * Fills the chain's device-writable buffers in order from the host's CSPRNG, up to MAX_REQUEST bytes, straight in
 * guest memory; returns the bytes written. A buffer outside RAM throws GuestMemoryError (the caller fails only
 * this chain); buffers past the cap are not looked at.
 */
export function fillEntropy(memory: GuestMemory, chain: DescriptorChain): number {
  let written = 0;
  for (const s of chain.writable) {
    const n = Math.min(s.len, MAX_REQUEST - written);
    if (n <= 0) break;
    // segments(), not view(): the buffer may cross from one host RAM chunk into the next.
    for (const part of memory.segments(s.addr, n)) randomFillSync(part);
    written += n;
  }
  return written;
}
