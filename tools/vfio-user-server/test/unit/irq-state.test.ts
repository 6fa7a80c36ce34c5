import { describe, expect, it } from "vitest";
import { type EventFdOps, IrqState } from "../../src/irq/irq-state.js";
import { ProtocolError } from "../../src/protocol/errors.js";

const NONE = 1, BOOL = 2, EVENTFD = 4, MASK = 8, UNMASK = 16, TRIGGER = 32;

function setup() {
  const signals: number[] = [];
  const closed: number[] = [];
  const ops: EventFdOps = { signal: (fd) => void signals.push(fd), isEventFd: (fd) => fd >= 100, close: (fd) => void closed.push(fd) };
  const irq = new IrqState({ intx: 1, msi: 2, msix: 4 }, ops);
  const set = (flags: number, index: number, start: number, count: number, fds: number[] = [], bools: number[] = []) =>
    irq.set({ flags, index, start, count, fds, bools: Uint8Array.from(bools) });
  const take = () => signals.splice(0);
  return { irq, set, take, closed };
}

describe("IrqState", () => {
  it("assigns, replaces (closing the old fd) and deassigns trigger eventfds", () => {
    const { irq, set, take, closed } = setup();
    set(EVENTFD | TRIGGER, 2, 0, 2, [100, 101]);
    expect(irq.hasTriggers(2)).toBe(true);
    expect(irq.signal(2, 1)).toBe(true);
    expect(irq.signal(2, 3)).toBe(false);
    expect(take()).toEqual([101]);
    set(EVENTFD | TRIGGER, 2, 1, 1, [102]);
    expect(closed).toEqual([101]);
    set(EVENTFD | TRIGGER, 2, 0, 2);
    expect(closed).toEqual([101, 100, 102]);
    expect(irq.hasTriggers(2)).toBe(false);
  });

  it("tells listeners of each trigger assigned, replaced or taken away (what a host kernel programs MSI-X entries on)", () => {
    const { irq, set } = setup();
    const heard: string[] = [];
    irq.onTriggerChange((index, vector, assigned) => heard.push(`${index}:${vector}${assigned ? "+" : "-"}`));
    set(EVENTFD | TRIGGER, 2, 0, 2, [100, 101]);
    set(EVENTFD | TRIGGER, 2, 1, 1, [102]);
    set(EVENTFD | TRIGGER, 2, 0, 3); // deassigns 0 and 1; 2 had none
    expect(irq.hasTrigger(2, 1)).toBe(false);
    set(EVENTFD | TRIGGER, 2, 3, 1, [103]);
    expect(irq.hasTrigger(2, 3)).toBe(true);
    set(NONE | TRIGGER, 2, 0, 0);
    expect(heard).toEqual(["2:0+", "2:1+", "2:1+", "2:0-", "2:1-", "2:3+", "2:3-"]);
  });

  it("keeps nothing from a refused request", () => {
    const { irq, set, closed } = setup();
    expect(() => set(EVENTFD | TRIGGER, 2, 0, 2, [100, 5])).toThrow(ProtocolError);
    expect(irq.hasTriggers(2)).toBe(false);
    expect(closed).toEqual([]);
    expect(() => set(EVENTFD | TRIGGER, 2, 3, 2, [100, 101])).toThrow(/interrupts 3..4/);
  });

  it("INTx: signals on assertion, automasks, re-signals on unmask while asserted", () => {
    const { irq, set, take } = setup();
    set(EVENTFD | TRIGGER, 0, 0, 1, [100]);
    irq.setIntxLevel(true);
    expect([take(), irq.intxMasked]).toEqual([[100], true]);
    irq.setIntxLevel(true);
    expect(take()).toEqual([]);
    set(NONE | UNMASK, 0, 0, 1);
    expect([take(), irq.intxMasked]).toEqual([[100], true]);
    irq.setIntxLevel(false);
    set(BOOL | UNMASK, 0, 0, 1, [], [0]);
    expect(irq.intxMasked).toBe(true);
    set(BOOL | UNMASK, 0, 0, 1, [], [1]);
    expect([take(), irq.intxMasked]).toEqual([[], false]);
    set(NONE | MASK, 0, 0, 1);
    irq.setIntxLevel(true);
    expect(take()).toEqual([]);
    set(NONE | TRIGGER, 0, 0, 0); // disable
    set(EVENTFD | TRIGGER, 0, 0, 1, [103]);
    expect(take()).toEqual([103]);
  });

  it("answers IRQ info like vfio-pci", () => {
    const { irq } = setup();
    expect(irq.info(0)).toEqual({ flags: 7, count: 1 });
    expect(irq.info(1)).toEqual({ flags: 9, count: 2 });
    expect(irq.info(2)).toEqual({ flags: 1, count: 4 });
    expect(() => irq.info(3)).toThrow(ProtocolError);
  });
});
