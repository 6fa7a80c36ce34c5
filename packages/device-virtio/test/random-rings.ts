// The random rings the fuzz tests throw at devices: 8 descriptors anywhere (inside RAM or far outside, any length,
// flags and next), the heads a driver publishes, bytes for request headers, and an avail index.
import fc from "fast-check";
import { RAM_BASE } from "./driver.js";

export const randomRing = [
  fc.array(
    fc.record({
      addr: fc.oneof(fc.integer({ min: RAM_BASE, max: RAM_BASE + 0x8000 }), fc.integer({ min: 0, max: 2 ** 40 })),
      len: fc.oneof(fc.integer({ min: 0, max: 1100 }), fc.integer({ min: 0, max: 0xffff_ffff })),
      flags: fc.integer({ min: 0, max: 7 }),
      next: fc.integer({ min: 0, max: 12 }),
    }),
    { minLength: 8, maxLength: 8 },
  ),
  fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 8 }),
  fc.uint8Array({ minLength: 64, maxLength: 64 }),
  fc.integer({ min: 0, max: 12 }),
] as const;
