import type { InterruptLine } from "@vmm/core";

/** An IRQ line for device tests: its level, and how many rising edges it saw. */
export class Line implements InterruptLine {
  level = false;
  edges = 0;
  set(level: boolean): void {
    if (level && !this.level) this.edges++;
    this.level = level;
  }
}
