// KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14+): a header, one descriptor per statistic and the values,
// all read with pread. Reading takes no vCPU lock, so a vCPU inside KVM_RUN on a thread of its own can be watched.
import { closeSync, readSync } from "node:fs";
import { KvmError } from "./errors.js";

const HEADER_SIZE = 24;
const DESCRIPTOR_FIXED_SIZE = 16;

/** One statistic as the kernel describes it (`struct kvm_stats_desc`). */
export interface KvmStatDescriptor {
  readonly name: string;
  /** KVM_STATS_TYPE_* | KVM_STATS_UNIT_* | KVM_STATS_BASE_* bits. */
  readonly flags: number;
  readonly exponent: number;
  /** How many u64 values the statistic has (1, or a histogram's buckets). */
  readonly size: number;
  /** Byte offset of its values from the start of the data block. */
  readonly offset: number;
}

/** A statistics fd, parsed once: `value(name)` reads one statistic's current value. */
export class KvmStats {
  private fd: number;
  private readonly dataOffset: number;
  private readonly byName = new Map<string, KvmStatDescriptor>();
  private readonly value64 = new BigUint64Array(1);
  private readonly valueBytes = new Uint8Array(this.value64.buffer);

  /** Takes ownership of `fd` (a KVM_GET_STATS_FD result) and reads its descriptors. */
  constructor(fd: number) {
    this.fd = fd;
    const header = this.pread(HEADER_SIZE, 0);
    const nameSize = header.getUint32(4, true);
    const count = header.getUint32(8, true);
    const descOffset = header.getUint32(16, true);
    this.dataOffset = header.getUint32(20, true);
    const stride = DESCRIPTOR_FIXED_SIZE + nameSize;
    if (nameSize === 0 || count > 4096) throw new KvmError("KVM stats header", "EINVAL", 22);
    const table = this.pread(stride * count, descOffset);
    const names = new TextDecoder();
    for (let i = 0; i < count; i++) {
      const at = i * stride;
      const raw = new Uint8Array(table.buffer, table.byteOffset + at + DESCRIPTOR_FIXED_SIZE, nameSize);
      const end = raw.indexOf(0);
      const name = names.decode(end < 0 ? raw : raw.subarray(0, end));
      this.byName.set(name, {
        name,
        flags: table.getUint32(at, true),
        exponent: table.getInt16(at + 4, true),
        size: table.getUint16(at + 6, true),
        offset: table.getUint32(at + 8, true),
      });
    }
  }

  /** Every statistic's descriptor, in the kernel's order. */
  descriptors(): KvmStatDescriptor[] {
    return [...this.byName.values()];
  }

  /** The first (for most statistics, only) value of `name` now; undefined when this kernel has no such statistic. */
  value(name: string): bigint | undefined {
    const d = this.byName.get(name);
    if (!d || d.size === 0) return undefined;
    const n = readSync(this.open(), this.valueBytes, 0, 8, this.dataOffset + d.offset);
    if (n !== 8) throw new KvmError(`KVM stats read of ${name}`, "EIO", 5);
    return this.value64[0];
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private open(): number {
    if (this.fd < 0) throw new KvmError("KVM stats (closed)", "EBADF", 9);
    return this.fd;
  }

  private pread(length: number, position: number): DataView {
    const bytes = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.open(), bytes, done, length - done, position + done);
      if (n === 0) throw new KvmError("KVM stats (short read)", "EIO", 5);
      done += n;
    }
    return new DataView(bytes.buffer);
  }
}
