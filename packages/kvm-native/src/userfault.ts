// Demand paging of guest RAM through userfaultfd, for a lazy snapshot restore: the RAM is registered empty, and the
// first access to each page (the guest's through KVM, JS's, any thread's, a system call's) waits until a native
// handler thread has copied that page from the snapshot file. The threads are native/uffd.cc's; the creation
// fallback, the order of the calls and the lifetime rules are here.
import { PAGE_SIZE } from "./constants.js";
import { KvmError } from "./errors.js";
import { native, type NativeCommon, type NativeUserfaultPager } from "./native.js";

/** One range of guest RAM and where its bytes start in a snapshot file. */
export interface UserfaultRegion {
  /**
   * Page-aligned guest RAM whose pages are all still missing: a Vm.allocateMemory block or a GuestRam chunk
   * (anonymous or memfd-backed shared memory), or a page-aligned subarray of one. Pages already present are not
   * served (they never fault).
   */
  memory: Uint8Array;
  /** An open file of the snapshot (the pager reads it through a description of its own; close yours any time). */
  fd: number;
  /** Where byte 0 of `memory` is in the file: a multiple of 4096. Bytes past the end of the file read as zero. */
  offset: number;
}

export interface UserfaultPagerOptions {
  regions: readonly UserfaultRegion[];
  /** Handler threads (1 to 64): faults of several vCPUs are served in parallel by as many threads. */
  threads: number;
  /** The device tried when userfaultfd(2) is refused (default /dev/userfaultfd). */
  devicePath?: string;
}

/**
 * The pager's counts. A page is counted before the ioctl that places it wakes the faulting thread, so once an
 * access has returned its page is in the counts (a copy that then fails is taken back).
 */
export interface UserfaultStats {
  /** Fault messages read (one access can fault again after a signal: a page may count more than once). */
  faults: number;
  /** Pages placed with UFFDIO_COPY, by the handlers and by populate(). */
  pagesCopied: number;
  /** Pages answered with UFFDIO_ZEROPAGE: all zero in the file, a hole, or past its end. */
  zeroPages: number;
  /**
   * Failures: a file read error (the page was served as zeros), a copy KVM's mm refused, a fault outside every
   * region (answered with zeros). Anything but 0 means the guest may have seen wrong memory: stop the VM.
   */
  errors: number;
}

const DEFAULT_DEVICE = "/dev/userfaultfd";
/** Bits of the ioctls mask UFFDIO_REGISTER returns (1 << _UFFDIO_COPY, 1 << _UFFDIO_ZEROPAGE). */
const UFFDIO_COPY_BIT = 1n << 3n;
const UFFDIO_ZEROPAGE_BIT = 1n << 4n;

function fixHint(devicePath: string): string {
  return (
    "a userfaultfd that also takes the kernel's own faults (KVM's guest accesses) needs CAP_SYS_PTRACE or " +
    `\`sysctl vm.unprivileged_userfaultfd=1\`, or read-write access to ${devicePath} (Linux 6.1+)`
  );
}

/** A new userfaultfd: the system call, or /dev/userfaultfd's USERFAULTFD_IOC_NEW where the call gives EPERM. */
function openUserfaultfd(addon: NativeCommon, devicePath: string): number {
  let refused: KvmError;
  try {
    return addon.userfaultfdCreate();
  } catch (e) {
    if (!(e instanceof KvmError)) throw e;
    if (e.errno !== "EPERM") {
      throw new KvmError("userfaultfd", e.errno, e.errnoNumber, `cannot create a userfaultfd (${e.errno === "ENOSYS" ? "a kernel without CONFIG_USERFAULTFD" : e.message})`);
    }
    refused = e;
  }
  try {
    return addon.userfaultfdCreateFromDevice(devicePath);
  } catch (e) {
    if (!(e instanceof KvmError)) throw e;
    throw new KvmError(
      "userfaultfd",
      refused.errno,
      refused.errnoNumber,
      `userfaultfd(2) was refused (EPERM) and ${devicePath} too (${e.syscall}: ${e.errno}); ${fixHint(devicePath)}`,
    );
  }
}

/** Whether a userfaultfd can be created here, and why not. Never throws. */
export function userfaultAvailability(devicePath = DEFAULT_DEVICE): { ok: true } | { ok: false; reason: string } {
  try {
    const addon = native();
    addon.closeFd(openUserfaultfd(addon, devicePath));
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

function validRegions(regions: readonly UserfaultRegion[]): void {
  if (!Array.isArray(regions) || regions.length === 0) throw new TypeError("regions must be a non-empty array");
  regions.forEach((r, i) => {
    if (!(r?.memory instanceof Uint8Array)) throw new TypeError(`region ${i}: memory must be a Uint8Array`);
    if (r.memory.byteLength === 0 || r.memory.byteLength % PAGE_SIZE !== 0) {
      throw new RangeError(`region ${i}: memory must be a non-empty multiple of ${PAGE_SIZE} bytes, got ${r.memory.byteLength}`);
    }
    if (!Number.isInteger(r.fd) || r.fd < 0 || r.fd > 0x7fffffff) throw new TypeError(`region ${i}: fd must be an fd number, got ${r.fd}`);
    if (!Number.isSafeInteger(r.offset) || r.offset < 0 || r.offset % PAGE_SIZE !== 0) {
      throw new RangeError(`region ${i}: offset must be a non-negative multiple of ${PAGE_SIZE}, got ${r.offset}`);
    }
  });
}

/** What a pager dropped without close() leaves: its threads and uffd, closed by the finalizer below. */
interface Resources {
  handle: NativeUserfaultPager;
  uffd: number;
  regions: readonly UserfaultRegion[];
  addon: NativeCommon;
}

function release(r: Resources): void {
  r.handle.stop();
  for (const { memory } of r.regions) {
    try {
      r.addon.uffdUnregister(r.uffd, memory);
    } catch {
      // The range is gone already (unmapped): nothing is registered there any more.
    }
  }
  r.addon.closeFd(r.uffd);
}

// A pager that is collected without close() would leave its uffd registered and every later fault waiting forever.
const dropped = new FinalizationRegistry<Resources>(release);

/**
 * Serves the missing pages of registered guest RAM from snapshot files (createUserfaultPager). Keep it open as long
 * as the VM runs, unless populate() resolved true: after close() a page that was never served reads as zero.
 */
export class UserfaultPager {
  readonly threads: number;
  private resources: Resources | undefined;
  private finalStats: UserfaultStats | undefined;
  private populating: Promise<boolean> | undefined;

  /** Use createUserfaultPager(). */
  private constructor(resources: Resources, threads: number) {
    this.resources = resources;
    this.threads = threads;
    dropped.register(this, resources, this);
  }

  get closed(): boolean {
    return this.resources === undefined;
  }

  /** The counts so far (after close(), the final ones). */
  stats(): UserfaultStats {
    return this.resources ? this.resources.handle.stats() : this.finalStats!;
  }

  /**
   * Copies every page of the files that is not all zero and not yet present, on a native thread of its own, while
   * faults go on being served (a page both want is placed once). Resolves true when done: the memory then holds
   * the whole snapshot (the pages left missing are the zero ones, which read as zero without the pager) and the
   * pager can be closed. Resolves false when close() came first. Called again, it returns the same promise.
   */
  populate(): Promise<boolean> {
    const r = this.resources;
    if (!r) return this.populating ?? Promise.resolve(false);
    this.populating ??= new Promise<boolean>((resolve) => r.handle.populate(resolve));
    return this.populating;
  }

  /**
   * Stops and joins the handler threads, unregisters the memory and closes the userfaultfd; idempotent. Pages
   * never served read as zero afterwards (unless populate() resolved true), so close only once the VM is done
   * with the memory. A fault that was waiting is woken and fills with zeros.
   */
  close(): void {
    const r = this.resources;
    if (!r) return;
    this.resources = undefined;
    dropped.unregister(this);
    r.handle.stop();
    this.finalStats = r.handle.stats();
    release(r);
  }
}

/**
 * Registers each region's memory with a new userfaultfd (MISSING mode) and starts `threads` handler threads that
 * serve each faulting 4 KiB page from its region's file range: pread + UFFDIO_COPY, or UFFDIO_ZEROPAGE for a page
 * that is all zero (or a hole). Faults from any source are served: a vCPU's guest access (KVM_RUN waits in the
 * kernel), JS reading the Uint8Array, other threads, system calls given the memory.
 *
 * The userfaultfd comes from userfaultfd(2), or from /dev/userfaultfd where the call gives EPERM; when both are
 * refused, a KvmError says what to change (CAP_SYS_PTRACE, `sysctl vm.unprivileged_userfaultfd=1`, access to the
 * device).
 */
export function createUserfaultPager(options: UserfaultPagerOptions): UserfaultPager {
  const { regions, threads } = options;
  validRegions(regions);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new RangeError(`threads must be 1 to 64, got ${threads}`);
  const addon = native();
  const uffd = openUserfaultfd(addon, options.devicePath ?? DEFAULT_DEVICE);
  const registered: Uint8Array[] = [];
  try {
    addon.uffdApi(uffd, 0);
    regions.forEach((r, i) => {
      let ioctls: bigint;
      try {
        ioctls = addon.uffdRegister(uffd, r.memory);
      } catch (e) {
        if (!(e instanceof KvmError)) throw e;
        throw new KvmError(e.syscall, e.errno, e.errnoNumber, `region ${i} (${r.memory.byteLength} bytes) cannot be registered; ${e.message}`);
      }
      registered.push(r.memory);
      if ((ioctls & UFFDIO_COPY_BIT) === 0n || (ioctls & UFFDIO_ZEROPAGE_BIT) === 0n) {
        throw new KvmError("UFFDIO_REGISTER", "EOPNOTSUPP", 95, `region ${i}: this memory cannot be filled with UFFDIO_COPY and UFFDIO_ZEROPAGE`);
      }
    });
    const copy = regions.map((r) => ({ memory: r.memory, fd: r.fd, offset: r.offset }));
    const handle = new addon.UserfaultPagerHandle(uffd, copy, threads);
    // The constructor is private to keep createUserfaultPager the one way to a pager.
    return Reflect.construct(UserfaultPager, [{ handle, uffd, regions: copy, addon }, threads]) as UserfaultPager;
  } catch (e) {
    for (const m of registered) {
      try {
        addon.uffdUnregister(uffd, m);
      } catch {
        // closing the uffd below unregisters it as well
      }
    }
    addon.closeFd(uffd);
    throw e;
  }
}
