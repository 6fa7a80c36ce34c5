// The random rings the fuzz tests throw at devices: 8 descriptors anywhere (inside RAM or far outside, any length,
// flags and next), the heads a driver publishes, bytes for request headers, and an avail index; and throwing one
// at a device's queue.
import type { GuestMemory } from "@vmm/core";
import fc from "fast-check";
import { expect } from "vitest";
import { Status } from "../src/constants.js";
import { type DriverRing, RAM_BASE } from "./driver.js";
import { type ModernDriver, until } from "./harness.js";

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

/** One value of each of randomRing's arbitraries: the descriptors, the heads, the header bytes, the avail index. */
export type RandomRingCase = ValuesOf<typeof randomRing>;
type ValuesOf<A> = { -readonly [K in keyof A]: A[K] extends fc.Arbitrary<infer V> ? V : never };

/** Resets the device through the driver and sets up queue 0 alone with 8 entries; its ring. */
export function reinitOneQueue(driver: ModernDriver): DriverRing {
  driver.rings.length = 0;
  expect(driver.init({ queueSizes: [8] })).toBe(true);
  return driver.rings[0]!;
}

/**
 * Throws one random ring at queue 0 of a freshly re-initialised device: the header bytes where request headers may
 * point, the descriptors, the heads and maybe an avail index past them; kicks it and waits until the device used
 * every chain made available or needs a reset. Resolves with the ring, how many chains were made available and
 * whether the device needs a reset.
 */
export async function throwRandomRing(driver: ModernDriver, mem: GuestMemory, [descs, heads, noise, availIdx]: RandomRingCase) {
  const ring = reinitOneQueue(driver);
  mem.write(RAM_BASE + 0x6000, noise);
  descs.forEach((d, i) => ring.writeDesc(i, d.addr, d.len, d.flags, d.next));
  heads.forEach((h) => ring.publish(h));
  const published = Math.max(heads.length, availIdx);
  if (availIdx > heads.length) ring.setAvailIdx(availIdx);
  driver.kick(0);
  const broken = () => (driver.status() & Status.DEVICE_NEEDS_RESET) !== 0;
  await until(() => broken() || ring.usedIdx() === published);
  return { ring, published, needsReset: broken() };
}
