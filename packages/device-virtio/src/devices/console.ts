import { decodeBytes, type DeviceState, encodeBytes, SnapshotError, stateData } from "@vmm/core";
import { VirtioType } from "../constants.js";
import { VirtioDevice } from "../device.js";
import type { ByteChannel } from "../backends/channel.js";
import { gather, scatter } from "../virtqueue/descriptor-chain.js";

const RX = 0;
const TX = 1;
/** Host input buffered while the guest has posted no receive buffers; beyond it the host side is paused. */
const RX_HIGH_WATER = 1 << 20;
/** Host input a restored state may carry: the high-water mark plus what arrives before the host side pauses. */
const RX_STATE_LIMIT = 16 << 20;
const CONSOLE_STATE_VERSION = 1;

/**
 * virtio-console (virtio 1.x, 5.3) with a single port: receiveq 0 carries host input to the guest, transmitq 1
 * guest output to the host. No features (no size, multiport or emergency write).
 */
export class VirtioConsole extends VirtioDevice {
  readonly type = VirtioType.CONSOLE;
  readonly queueSizes = [128, 128];
  readonly features = 0n;
  /** cols, rows, max_nr_ports, emerg_wr: present but not offered by features. */
  readonly config = new Uint8Array(12);
  override readonly maxChainBytes = 1 << 20;
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private paused = false;

  constructor(readonly channel: ByteChannel) {
    super();
    new DataView(this.config.buffer).setUint32(4, 1, true); // max_nr_ports
    channel.open((bytes) => this.input(bytes));
  }

  /** Host input not yet taken by the guest. */
  get buffered(): number {
    return this.pendingBytes;
  }

  notify(queue: number): void {
    if (queue === RX) this.deliver();
    else if (queue === TX) this.transmit();
  }

  protected override started(): void {
    this.deliver();
  }

  protected override resumed(): void {
    this.deliver();
  }

  override async close(): Promise<void> {
    await this.channel.close();
  }

  /**
   * Host input not yet taken by the guest (layout version 1). While the transport is quiesced input stays here
   * instead of reaching guest memory, so guest RAM and the state agree. The channel is not state: the restored
   * device's channel is opened anew from its options.
   */
  override saveState(): DeviceState {
    const all = new Uint8Array(this.pendingBytes);
    let at = 0;
    for (const chunk of this.pending) {
      all.set(chunk, at);
      at += chunk.length;
    }
    return { version: CONSOLE_STATE_VERSION, data: { pending: encodeBytes(all) } };
  }

  /** Puts the saved input before any the new channel already delivered. */
  override restoreState(state: DeviceState | undefined, what: string): void {
    const data = stateData(state, what, CONSOLE_STATE_VERSION);
    const bytes = decodeBytes(data.pending, `${what}: pending input`);
    if (bytes.length > RX_STATE_LIMIT) throw new SnapshotError(`${what}: ${bytes.length} bytes of pending input, at most ${RX_STATE_LIMIT}`);
    if (bytes.length) {
      this.pending.unshift(bytes);
      this.pendingBytes += bytes.length;
    }
    if (this.pendingBytes > RX_HIGH_WATER && !this.paused) {
      this.paused = true;
      this.channel.pause();
    }
  }

  private input(bytes: Uint8Array): void {
    this.pending.push(bytes);
    this.pendingBytes += bytes.length;
    this.deliver();
    if (this.pendingBytes > RX_HIGH_WATER && !this.paused) {
      this.paused = true;
      this.channel.pause();
    }
  }

  /** Copies buffered host input into the guest's receive buffers. */
  private deliver(): void {
    const ctx = this.context;
    if (!ctx || this.pending.length === 0) return;
    this.drain(RX, (chain) => {
      let written = 0;
      while (this.pending.length && written < chain.writableBytes) {
        const head = this.pending[0]!;
        const n = scatter(ctx.memory, chain.writable, written, head);
        written += n;
        this.pendingBytes -= n;
        if (n === head.length) this.pending.shift();
        else this.pending[0] = head.subarray(n);
      }
      return written;
    }, () => this.pending.length > 0);
    if (this.paused && this.pendingBytes < RX_HIGH_WATER / 2) {
      this.paused = false;
      this.channel.resume();
    }
  }

  private transmit(): void {
    const ctx = this.context;
    if (!ctx) return;
    this.drain(TX, (chain) => {
      const bytes = new Uint8Array(chain.readableBytes);
      gather(ctx.memory, chain.readable, 0, bytes);
      this.channel.write(bytes);
      return 0;
    });
  }
}
