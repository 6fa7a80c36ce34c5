import { describe, expect, it } from "vitest";
import { EventFd } from "../src/index.js";

describe("EventFd", () => {
  it("adds writes to the counter; read() returns and resets it, null when zero", () => {
    const efd = new EventFd();
    try {
      expect(efd.read()).toBeNull();
      efd.write();
      efd.write(4n);
      expect(efd.read()).toBe(5n);
      expect(efd.read()).toBeNull();
      expect(() => efd.write(-1)).toThrow(RangeError);
    } finally {
      efd.close();
    }
  });

  it("reports the counter through onSignal on the event loop", async () => {
    const efd = new EventFd();
    try {
      const signalled = new Promise<bigint>((resolve) => efd.onSignal(resolve));
      efd.write(2);
      expect(await signalled).toBe(2n);
    } finally {
      efd.close();
    }
  });

  it("lets an onSignal callback close its own EventFd", async () => {
    const efd = new EventFd();
    const got = await new Promise<bigint>((resolve) => {
      efd.onSignal((n) => {
        efd.close();
        resolve(n);
      });
      efd.write(5);
    });
    expect(got).toBe(5n);
    expect(efd.isClosed).toBe(true);
    expect(() => efd.write()).toThrow(/closed/);
    efd.close(); // twice is harmless
  });
});
