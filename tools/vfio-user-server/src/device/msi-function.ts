import type { MsiOptions } from "../pci/capabilities.js";
import { msiLayout } from "../pci/capabilities.js";
import type { ConfigSpace } from "../pci/config-space.js";

/**
 * MSI as the function implements it: with per-vector masking, a vector raised while its mask bit is set becomes
 * pending (the capability's pending bits) and is sent when the client clears the mask bit.
 */
export class MsiFunction {
  private readonly mask: number | undefined;
  private readonly pending: number | undefined;

  constructor(
    private readonly config: ConfigSpace,
    offset: number,
    private readonly options: MsiOptions,
    private readonly deliver: (vector: number) => void,
  ) {
    const layout = msiLayout(options);
    this.mask = layout.mask === undefined ? undefined : offset + layout.mask;
    this.pending = layout.pending === undefined ? undefined : offset + layout.pending;
    if (this.mask !== undefined) config.onWrite(this.mask, 4, () => this.deliverPending());
  }

  /** The device raises `vector`; vectors the function does not have are dropped. */
  raise(vector: number): void {
    if (!Number.isInteger(vector) || vector < 0 || vector >= this.options.vectors) return;
    const bit = 1 << vector;
    if (this.mask !== undefined && this.pending !== undefined && this.config.u32(this.mask) & bit) {
      this.config.set(this.pending, 4, this.config.u32(this.pending) | bit);
      return;
    }
    this.deliver(vector);
  }

  private deliverPending(): void {
    if (this.mask === undefined || this.pending === undefined) return;
    const ready = this.config.u32(this.pending) & ~this.config.u32(this.mask);
    if (ready === 0) return;
    this.config.set(this.pending, 4, this.config.u32(this.pending) & ~ready);
    for (let v = 0; v < this.options.vectors; v++) if (ready & (1 << v)) this.deliver(v);
  }
}
