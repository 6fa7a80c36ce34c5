// What a VM is on every architecture: guest memory and memslots, the dirty log, irqfd and ioeventfd, vCPU
// bookkeeping and closing. Vm (x86_64) and Arm64Vm extend it with their interrupt controller and vCPUs.
import { constants as bufferConstants } from "node:buffer";
import { IoeventfdFlags, MemFlags, PAGE_SIZE } from "./constants.js";
import { KvmError } from "./errors.js";
import { native, type NativeCommon } from "./native.js";

/** The largest ArrayBuffer this Node makes (buffer.constants.MAX_LENGTH: 4 GiB on Node 20), in whole pages. */
export const MAX_MEMORY_CHUNK = Math.floor(Math.min(bufferConstants.MAX_LENGTH, Number.MAX_SAFE_INTEGER) / PAGE_SIZE) * PAGE_SIZE;

/**
 * Guest RAM of any size: one contiguous native mapping (one memslot can take it whole) of a memfd, seen from JS as
 * `chunks`, consecutive Uint8Arrays of `chunkSize` bytes (the last may be shorter), because one ArrayBuffer
 * cannot exceed MAX_MEMORY_CHUNK. The mapping lives as long as any chunk is referenced. `fd` is the memfd behind
 * it (byte i of the RAM is byte i of the file), so another process given the fd (a vfio-user device server) maps
 * the same pages; the Vm that allocated it closes it with the VM.
 */
export class GuestRam {
  readonly size: number;

  /** @internal Use Vm.allocateRam(). */
  constructor(
    readonly chunks: readonly Uint8Array[],
    readonly chunkSize: number,
    readonly fd: number,
  ) {
    this.size = chunks.reduce((n, c) => n + c.byteLength, 0);
  }

  /**
   * The chunks as RAM regions from guest-physical address `gpa` on (what GuestMemory takes), each with where its
   * bytes live in the memfd.
   */
  regions(gpa: number): Array<{ gpa: number; bytes: Uint8Array; file: { fd: number; offset: number } }> {
    return this.chunks.map((bytes, i) => ({ gpa: gpa + i * this.chunkSize, bytes, file: { fd: this.fd, offset: i * this.chunkSize } }));
  }
}

/**
 * The parts of [offset, offset + length) of a file that hold data (lseek SEEK_DATA/SEEK_HOLE), as offsets relative
 * to `offset`: for guest RAM's memfd, the pages the guest (or the VMM) ever wrote. Reading the rest of a memfd
 * through its mapping would allocate each page, so a snapshot reads only these. A file system without SEEK_DATA
 * reports the whole range as data.
 */
export function fileDataRanges(fd: number, offset: number, length: number, addon: NativeCommon = native()): Array<{ offset: number; length: number }> {
  assertAddress("offset", offset);
  assertAddress("length", length);
  const end = offset + length;
  const out: Array<{ offset: number; length: number }> = [];
  for (let at = offset; at < end; ) {
    const data = addon.seekFile(fd, at, true);
    if (data < 0 || data >= end) break;
    const hole = Math.min(addon.seekFile(fd, data, false), end);
    out.push({ offset: data - offset, length: hole - data });
    at = hole;
  }
  return out;
}

export interface MemoryRegion {
  slot: number;
  guestPhysAddr: number;
  /** Page-aligned memory from Vm.allocateMemory (a subarray at a page boundary works too) or Vm.allocateRam. */
  memory: Uint8Array | GuestRam;
  readonly?: boolean;
  logDirty?: boolean;
}

export interface IoEventFdRange {
  space: "pio" | "mmio";
  address: number;
  /** Access width to match; 0 (MMIO only) matches any width. */
  size: 0 | 1 | 2 | 4 | 8;
  /** Signal only when the guest writes this value. */
  datamatch?: number | bigint;
}

/**
 * An fd KVM is given for irqfd/ioeventfd: an eventfd's number, or any object with its `fd` (an `EventFd` from
 * @vmm/host-io). The binding never creates, reads or closes it.
 */
export type FdLike = number | { readonly fd: number };

function fdOf(f: FdLike, what: string): number {
  const fd = typeof f === "number" ? f : f?.fd;
  if (!Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) throw new TypeError(`${what} must be an fd number or an object with one, got ${String(fd)}`);
  return fd;
}

export interface Registration {
  remove(): void;
}

export function assertUint(name: string, v: number, max = 0xffffffff): void {
  if (!Number.isInteger(v) || v < 0 || v > max) throw new RangeError(`${name} must be an integer in [0, ${max}], got ${v}`);
}

export function assertAddress(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative safe integer, got ${v}`);
}

function assertMemorySize(size: number): void {
  if (!Number.isSafeInteger(size) || size <= 0 || size % PAGE_SIZE !== 0) {
    throw new RangeError(`guest memory size must be a positive multiple of ${PAGE_SIZE}, got ${size}`);
  }
}

function memorySize(m: Uint8Array | GuestRam): number {
  return m instanceof GuestRam ? m.size : m.byteLength;
}

function mapMemory<T>(size: number, map: () => T): T {
  try {
    return map();
  } catch (e) {
    if (!(e instanceof KvmError)) throw e;
    throw new KvmError(e.syscall, e.errno, e.errnoNumber, `cannot map ${size} bytes of guest memory; ${e.message}`);
  }
}

/**
 * A KVM virtual machine, the part every architecture shares. Memory given to memslots is kept referenced here so
 * it stays mapped while the VM lives. Get one from Kvm.createVm() (x86_64: Vm) or Kvm.createArm64Vm() (Arm64Vm).
 */
export class VmBase {
  private fd: number;
  /** @internal */
  protected readonly vcpuMmapSize: number;
  /** @internal */
  protected readonly addon: NativeCommon;
  private readonly slots = new Map<number, Required<MemoryRegion>>();
  private readonly vcpus = new Map<number, { close(): void }>();
  private readonly ramFds: number[] = [];

  /** @internal */
  constructor(fd: number, vcpuMmapSize: number, addon: NativeCommon) {
    this.fd = fd;
    this.vcpuMmapSize = vcpuMmapSize;
    this.addon = addon;
  }

  /**
   * Anonymous, zero-filled, page-aligned native memory, shared with KVM and JS without copies; at most
   * MAX_MEMORY_CHUNK bytes (one Uint8Array). Guest RAM of any size: allocateRam.
   */
  allocateMemory(size: number): Uint8Array {
    assertMemorySize(size);
    if (size > MAX_MEMORY_CHUNK) {
      throw new RangeError(`${size} bytes do not fit in one Uint8Array (at most ${MAX_MEMORY_CHUNK} here): use allocateRam`);
    }
    return new Uint8Array(mapMemory(size, () => this.addon.allocateMemory(size, size))[0]!);
  }

  /**
   * Guest RAM of `size` bytes in one shared mapping of a new memfd (GuestRam.fd), pages backed only when touched
   * (MAP_NORESERVE, a sparse file), so RAM larger than the host's can be mapped and a device process can be given
   * the same pages. `chunkSize` (a multiple of 4096, at most MAX_MEMORY_CHUNK) splits the JS view; it defaults to
   * the largest. The memfd is closed with the VM (the mapping stays while JS references it).
   */
  allocateRam(size: number, options: { chunkSize?: number } = {}): GuestRam {
    assertMemorySize(size);
    const chunkSize = options.chunkSize ?? MAX_MEMORY_CHUNK;
    if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0 || chunkSize % PAGE_SIZE !== 0 || chunkSize > MAX_MEMORY_CHUNK) {
      throw new RangeError(`chunkSize must be a multiple of ${PAGE_SIZE} in (0, ${MAX_MEMORY_CHUNK}], got ${chunkSize}`);
    }
    const { fd, chunks } = mapMemory(size, () => this.addon.allocateSharedMemory(size, chunkSize, "guest-ram"));
    this.ramFds.push(fd);
    return new GuestRam(chunks.map((b) => new Uint8Array(b)), chunkSize, fd);
  }

  /** Adds or replaces memslot `slot` (KVM_SET_USER_MEMORY_REGION). Works while vCPUs run. */
  setMemoryRegion(r: MemoryRegion): void {
    assertUint("slot", r.slot, 0xffff);
    assertAddress("guestPhysAddr", r.guestPhysAddr);
    if (!(r.memory instanceof Uint8Array) && !(r.memory instanceof GuestRam)) throw new TypeError("memory must be a Uint8Array or GuestRam");
    const size = memorySize(r.memory);
    if (r.guestPhysAddr % PAGE_SIZE !== 0 || size === 0 || size % PAGE_SIZE !== 0) {
      throw new RangeError("guestPhysAddr and memory size must be page aligned and memory non-empty");
    }
    const flags = (r.readonly ? MemFlags.READONLY : 0) | (r.logDirty ? MemFlags.LOG_DIRTY_PAGES : 0);
    const memory = r.memory instanceof GuestRam ? r.memory.chunks : r.memory;
    try {
      this.addon.setUserMemoryRegion(this.assertOpen(), r.slot, flags, r.guestPhysAddr, memory);
    } catch (e) {
      if (!(e instanceof KvmError)) throw e;
      const what = `memslot ${r.slot}: ${size} bytes at guest-physical 0x${r.guestPhysAddr.toString(16)} cannot be mapped`;
      throw new KvmError(e.syscall, e.errno, e.errnoNumber, `${what}; ${e.message}`);
    }
    this.slots.set(r.slot, { readonly: false, logDirty: false, ...r });
  }

  removeMemoryRegion(slot: number): void {
    const r = this.slots.get(slot);
    if (!r) throw new KvmError("KVM_SET_USER_MEMORY_REGION", "ENOENT", 2, `memslot ${slot} is not set`);
    this.addon.setUserMemoryRegion(this.assertOpen(), slot, 0, r.guestPhysAddr, undefined);
    this.slots.delete(slot);
  }

  /** KVM_GET_DIRTY_LOG: one bit per page of the slot (bit i of byte i>>3 for page i), reset by the call. */
  getDirtyLog(slot: number): Uint8Array {
    const r = this.slots.get(slot);
    if (!r) throw new KvmError("KVM_GET_DIRTY_LOG", "ENOENT", 2, `memslot ${slot} is not set`);
    if (!r.logDirty) throw new KvmError("KVM_GET_DIRTY_LOG", "ENOENT", 2, `memslot ${slot} does not log dirty pages`);
    const pages = memorySize(r.memory) / PAGE_SIZE;
    return this.addon.getDirtyLog(this.assertOpen(), slot, pages).subarray(0, Math.ceil(pages / 8));
  }

  /**
   * KVM_IRQFD: writes to the eventfd `fd` raise `gsi`; with `resample`, a level-triggered line whose EOI signals
   * `resample`. Keep the eventfd open until remove().
   */
  irqfd(fd: FdLike, gsi: number, resample?: FdLike): Registration {
    assertUint("gsi", gsi);
    const efd = fdOf(fd, "irqfd fd");
    const rfd = resample === undefined ? -1 : fdOf(resample, "irqfd resample fd");
    const vmFd = this.assertOpen();
    this.addon.irqfd(vmFd, efd, gsi, rfd, false);
    let removed = false;
    return {
      remove: () => {
        if (removed || this.fd < 0) return;
        this.addon.irqfd(vmFd, efd, gsi, -1, true);
        removed = true;
      },
    };
  }

  /**
   * KVM_IOEVENTFD: guest writes to the range signal the eventfd `fd` in the kernel, with no exit to userspace.
   * Keep the eventfd open until remove(): KVM needs it to find the registration.
   */
  ioeventfd(fd: FdLike, r: IoEventFdRange): Registration {
    const efd = fdOf(fd, "ioeventfd fd");
    assertAddress("address", r.address);
    if (![0, 1, 2, 4, 8].includes(r.size)) throw new RangeError(`ioeventfd size must be 0, 1, 2, 4 or 8, got ${r.size}`);
    if (r.space === "pio") {
      if (r.size === 0 || r.size === 8) throw new RangeError("port ioeventfds have size 1, 2 or 4");
      assertUint("port", r.address, 0xffff);
    } else if (r.space !== "mmio") {
      throw new TypeError(`ioeventfd space must be "pio" or "mmio"`);
    }
    const flags =
      (r.space === "pio" ? IoeventfdFlags.PIO : 0) | (r.datamatch !== undefined ? IoeventfdFlags.DATAMATCH : 0);
    const match = r.datamatch ?? 0;
    const vmFd = this.assertOpen();
    this.addon.ioeventfd(vmFd, efd, r.address, r.size, flags, match);
    let removed = false;
    return {
      remove: () => {
        if (removed || this.fd < 0) return;
        this.addon.ioeventfd(vmFd, efd, r.address, r.size, flags | IoeventfdFlags.DEASSIGN, match);
        removed = true;
      },
    };
  }

  /**
   * KVM_CHECK_EXTENSION on the VM fd: some capabilities answer per VM (KvmCap.XSAVE2's size, the IRQ routing and
   * memslot limits). 0 when unsupported.
   */
  checkExtension(cap: number): number {
    assertUint("cap", cap);
    return this.addon.checkExtension(this.assertOpen(), cap);
  }

  /** @internal Creates the vCPU fd; the subclass wraps it and hands the wrapper back to registerVcpu. */
  protected createVcpuFd(id: number): number {
    assertUint("vcpu id", id);
    return this.addon.createVcpuFd(this.assertOpen(), id);
  }

  /** @internal Remembers a vCPU so that close() closes it. */
  protected registerVcpu<T extends { close(): void }>(id: number, vcpu: T): T {
    this.vcpus.set(id, vcpu);
    return vcpu;
  }

  /** Closes the vCPUs and the VM fd; guest memory is freed once JS drops its last reference. */
  close(): void {
    if (this.fd < 0) return;
    for (const v of this.vcpus.values()) v.close();
    this.vcpus.clear();
    this.addon.closeFd(this.fd);
    for (const fd of this.ramFds.splice(0)) this.addon.closeFd(fd);
    this.fd = -1;
    this.slots.clear();
  }

  /** @internal */
  protected assertOpen(): number {
    if (this.fd < 0) throw new KvmError("vm (closed)", "EBADF", 9);
    return this.fd;
  }
}
