import { describe, expect, it } from "vitest";
import { TestFunction } from "./helpers.js";

/** Records the Bus Master Enable hook's calls. */
class BmeFunction extends TestFunction {
  readonly changes: boolean[] = [];
  protected override busMasterChanged(enabled: boolean): void {
    this.changes.push(enabled);
  }
}

describe("Bus Master Enable", () => {
  it("busMasterEnabled follows command bit 2 and the hook fires only on changes", () => {
    const fn = new BmeFunction();
    expect(fn.busMasterEnabled).toBe(false);
    fn.configWrite(0x04, 2, 0x0003); // I/O + memory, no BME
    expect(fn.changes).toEqual([]);
    fn.configWrite(0x04, 1, 0x07);
    expect(fn.busMasterEnabled).toBe(true);
    fn.configWrite(0x04, 4, 0x0000_0007); // unchanged
    fn.configWrite(0x05, 1, 0x04); // upper byte only: BME untouched
    expect(fn.changes).toEqual([true]);
    fn.configWrite(0x04, 2, 0x0003);
    expect(fn.busMasterEnabled).toBe(false);
    expect(fn.changes).toEqual([true, false]);
  });

  it("a function reset clears Bus Master Enable and reports it", () => {
    const fn = new BmeFunction();
    fn.reset();
    expect(fn.changes).toEqual([]);
    fn.configWrite(0x04, 2, 0x0004);
    fn.reset();
    expect(fn.busMasterEnabled).toBe(false);
    expect(fn.changes).toEqual([true, false]);
  });
});
