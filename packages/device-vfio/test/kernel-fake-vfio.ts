// A fake of the kernel's VFIO and iommufd ioctls, written from linux/vfio.h and linux/iommufd.h with its own offsets
// (not the package's CStruct tables, so an encoding mistake cannot cancel out). It enforces the order the kernel
// enforces (container before IOMMU before device fd; bind before attach before map) and records every call.

const VFIO = (n: number) => (0x3b << 8) | (100 + n);
const IOMMUFD = (n: number) => (0x3b << 8) | n;
export const REQ = {
  GET_API_VERSION: VFIO(0),
  CHECK_EXTENSION: VFIO(1),
  SET_IOMMU: VFIO(2),
  GROUP_GET_STATUS: VFIO(3),
  GROUP_SET_CONTAINER: VFIO(4),
  GROUP_GET_DEVICE_FD: VFIO(6),
  DEVICE_GET_INFO: VFIO(7),
  DEVICE_GET_REGION_INFO: VFIO(8),
  DEVICE_GET_IRQ_INFO: VFIO(9),
  DEVICE_SET_IRQS: VFIO(10),
  DEVICE_RESET: VFIO(11),
  IOMMU_MAP_DMA: VFIO(13),
  IOMMU_UNMAP_DMA: VFIO(14),
  DEVICE_BIND_IOMMUFD: VFIO(18),
  DEVICE_ATTACH_IOMMUFD_PT: VFIO(19),
  IOAS_ALLOC: IOMMUFD(0x81),
  IOAS_MAP: IOMMUFD(0x85),
  IOAS_UNMAP: IOMMUFD(0x86),
} as const;
const REQ_NAME = new Map<number, string>(Object.entries(REQ).map(([k, v]) => [v, k]));

export interface FakeRegion {
  size: number;
  flags: number;
  /** Sparse mmap areas: a VFIO_REGION_INFO_CAP_SPARSE_MMAP capability the caller must grow argsz for. */
  sparse?: { offset: number; size: number }[];
  /** VFIO_REGION_INFO_CAP_TYPE. */
  type?: { type: number; subtype: number };
}

export interface FakeDevice {
  address: string;
  flags: number;
  regions: FakeRegion[];
  irqs: { flags: number; count: number }[];
}

type Node = "container" | "group" | "iommu" | "cdev";

interface FdState {
  node: Node;
  path: string;
  // container
  groups?: number;
  iommuType?: number;
  // group
  container?: number;
  // iommu
  ioas?: number;
  // device (from the group or the cdev)
  device?: boolean;
  boundTo?: number;
  attached?: number;
}

const errno = (code: string) => Object.assign(new Error(code), { errno: code });

export class FakeVfioKernel {
  readonly log: string[] = [];
  readonly dmaMaps: { iova: number; size: number; vaddr: bigint; flags: number; via: string }[] = [];
  readonly irqSets: { flags: number; index: number; start: number; count: number; fds: number[] }[] = [];
  readonly closed: number[] = [];
  resets = 0;
  viable = true;
  /** pread/pwrite move at most this many bytes per call (the backend must loop). */
  chunk = Infinity;
  readonly memory: Uint8Array[];
  private readonly fds = new Map<number, FdState>();
  private nextFd = 40;
  private readonly failures = new Map<string, string>();

  constructor(
    private readonly nodes: Readonly<Record<string, Node>>,
    readonly device: FakeDevice,
  ) {
    this.memory = device.regions.map((r) => new Uint8Array(Math.min(r.size, 1 << 16)));
  }

  /** The next call named `call` ("open /dev/..." path suffix, or a request name) throws `code`. */
  fail(call: string, code: string): void {
    this.failures.set(call, code);
  }

  openFds(): number[] {
    return [...this.fds.keys()];
  }

  private check(call: string): void {
    const code = this.failures.get(call);
    if (code) {
      this.failures.delete(call);
      throw errno(code);
    }
  }

  private state(fd: number): FdState {
    const s = this.fds.get(fd);
    if (!s) throw errno("EBADF");
    return s;
  }

  private add(state: FdState): number {
    const fd = this.nextFd++;
    this.fds.set(fd, state);
    return fd;
  }

  // ---- VfioSyscalls ----
  open = (path: string): number => {
    const node = Object.entries(this.nodes).find(([p]) => p === path)?.[1];
    this.log.push(`open ${path.replace(/^.*\/dev\//, "/dev/")}`);
    this.check(`open ${path.replace(/^.*\/dev\//, "/dev/")}`);
    if (!node) throw Object.assign(new Error("ENOENT"), { code: "ENOENT" });
    return this.add({ node, path, ...(node === "cdev" ? { device: true } : {}) });
  };

  close = (fd: number): void => {
    this.state(fd);
    this.fds.delete(fd);
    this.closed.push(fd);
  };

  ioctlValue = (fd: number, request: number, value: number): number => {
    const s = this.state(fd);
    const name = REQ_NAME.get(request) ?? `0x${request.toString(16)}`;
    this.log.push(`${s.node} ${name}(${value})`);
    this.check(name);
    switch (request) {
      case REQ.GET_API_VERSION:
        return 0;
      case REQ.CHECK_EXTENSION:
        return value === 3 || value === 1 ? 1 : 0;
      case REQ.SET_IOMMU:
        if (s.node !== "container" || !s.groups || value !== 3) throw errno("EINVAL");
        s.iommuType = value;
        return 0;
      case REQ.DEVICE_RESET:
        this.usableDevice(s);
        this.resets++;
        return 0;
    }
    throw errno("ENOTTY");
  };

  ioctl = (fd: number, request: number, buf: Uint8Array): number => {
    const s = this.state(fd);
    const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const name = REQ_NAME.get(request) ?? `0x${request.toString(16)}`;
    this.check(name);
    const u32 = (o: number) => v.getUint32(o, true);
    const u64 = (o: number) => Number(v.getBigUint64(o, true));
    switch (request) {
      case REQ.GROUP_GET_STATUS:
        this.log.push(`group ${name}`);
        if (s.node !== "group" || u32(0) < 8) throw errno("EINVAL");
        v.setUint32(4, (this.viable ? 1 : 0) | (s.container !== undefined ? 2 : 0), true);
        return 0;
      case REQ.GROUP_SET_CONTAINER: {
        const container = v.getInt32(0, true);
        this.log.push(`group ${name}(${container})`);
        const c = this.fds.get(container);
        if (s.node !== "group" || c?.node !== "container" || !this.viable) throw errno("EINVAL");
        s.container = container;
        c.groups = (c.groups ?? 0) + 1;
        return 0;
      }
      case REQ.GROUP_GET_DEVICE_FD: {
        const text = new TextDecoder().decode(buf);
        this.log.push(`group ${name}(${JSON.stringify(text)})`);
        const c = s.container === undefined ? undefined : this.fds.get(s.container);
        if (!c?.iommuType) throw errno("EINVAL");
        if (!text.endsWith("\0") || text.slice(0, -1) !== this.device.address) throw errno("ENODEV");
        return this.add({ node: "group", path: s.path, device: true });
      }
      case REQ.IOMMU_MAP_DMA: {
        this.log.push(`container ${name}`);
        if (s.node !== "container" || !s.iommuType || u32(0) !== 32) throw errno("EINVAL");
        const flags = u32(4);
        if ((flags & 3) === 0) throw errno("EINVAL");
        const iova = u64(16);
        const size = u64(24);
        if (this.dmaMaps.some((m) => iova < m.iova + m.size && m.iova < iova + size)) throw errno("EEXIST");
        this.dmaMaps.push({ iova, size, vaddr: v.getBigUint64(8, true), flags, via: "type1" });
        return 0;
      }
      case REQ.IOMMU_UNMAP_DMA: {
        this.log.push(`container ${name}`);
        if (s.node !== "container" || u32(0) < 24) throw errno("EINVAL");
        const i = this.dmaMaps.findIndex((m) => m.iova === u64(8) && m.size === u64(16));
        const unmapped = i < 0 ? 0 : this.dmaMaps.splice(i, 1)[0]!.size;
        v.setBigUint64(16, BigInt(unmapped), true);
        return 0;
      }
      case REQ.IOAS_ALLOC:
        this.log.push(`iommu ${name}`);
        if (s.node !== "iommu" || u32(0) !== 12 || u32(4) !== 0) throw errno("EINVAL");
        s.ioas = 7;
        v.setUint32(8, 7, true);
        return 0;
      case REQ.IOAS_MAP: {
        this.log.push(`iommu ${name}`);
        if (s.node !== "iommu" || u32(0) !== 40 || u32(8) !== s.ioas || u32(12) !== 0) throw errno("EINVAL");
        if (![...this.fds.values()].some((d) => d.attached === s.ioas)) throw errno("EINVAL");
        const iova = u64(32);
        const size = u64(24);
        if (this.dmaMaps.some((m) => iova < m.iova + m.size && m.iova < iova + size)) throw errno("EEXIST");
        this.dmaMaps.push({ iova, size, vaddr: v.getBigUint64(16, true), flags: u32(4), via: "iommufd" });
        return 0;
      }
      case REQ.IOAS_UNMAP: {
        this.log.push(`iommu ${name}`);
        if (s.node !== "iommu" || u32(0) !== 24 || u32(4) !== s.ioas) throw errno("EINVAL");
        const i = this.dmaMaps.findIndex((m) => m.iova === u64(8) && m.size === u64(16));
        if (i < 0) throw errno("ENOENT");
        this.dmaMaps.splice(i, 1);
        return 0;
      }
      case REQ.DEVICE_BIND_IOMMUFD: {
        const iommufd = v.getInt32(8, true);
        this.log.push(`cdev ${name}(${iommufd})`);
        if (s.node !== "cdev" || u32(0) !== 16 || u32(4) !== 0 || this.fds.get(iommufd)?.node !== "iommu") throw errno("EINVAL");
        s.boundTo = iommufd;
        v.setUint32(12, 3, true);
        return 0;
      }
      case REQ.DEVICE_ATTACH_IOMMUFD_PT: {
        this.log.push(`cdev ${name}(${u32(8)})`);
        if (s.boundTo === undefined || u32(0) !== 12 || u32(8) !== this.fds.get(s.boundTo)?.ioas) throw errno("EINVAL");
        s.attached = u32(8);
        return 0;
      }
    }
    this.usableDevice(s);
    this.log.push(`device ${name}`);
    switch (request) {
      case REQ.DEVICE_GET_INFO:
        if (u32(0) < 16) throw errno("EINVAL");
        v.setUint32(4, this.device.flags, true);
        v.setUint32(8, this.device.regions.length, true);
        v.setUint32(12, this.device.irqs.length, true);
        return 0;
      case REQ.DEVICE_GET_REGION_INFO: {
        if (u32(0) < 32) throw errno("EINVAL");
        const index = u32(8);
        const r = this.device.regions[index];
        if (!r) throw errno("EINVAL");
        v.setUint32(4, r.flags, true);
        v.setUint32(12, 0, true);
        v.setBigUint64(16, BigInt(r.size), true);
        v.setBigUint64(24, BigInt(index) << 40n, true);
        const caps = this.capabilities(r);
        if (caps.length === 0) return 0;
        v.setUint32(4, r.flags | 8, true); // VFIO_REGION_INFO_FLAG_CAPS
        if (u32(0) < 32 + caps.length) {
          v.setUint32(0, 32 + caps.length, true); // room needed; cap_offset stays 0
          return 0;
        }
        buf.set(caps, 32);
        v.setUint32(12, 32, true);
        return 0;
      }
      case REQ.DEVICE_GET_IRQ_INFO: {
        if (u32(0) < 16) throw errno("EINVAL");
        const irq = this.device.irqs[u32(8)];
        if (!irq) throw errno("EINVAL");
        v.setUint32(4, irq.flags, true);
        v.setUint32(12, irq.count, true);
        return 0;
      }
      case REQ.DEVICE_SET_IRQS: {
        const [argsz, flags, index, start, count] = [u32(0), u32(4), u32(8), u32(12), u32(16)];
        const eventfds = (flags & 4) !== 0;
        if (argsz !== 20 + (eventfds ? 4 * count : 0)) throw errno("EINVAL");
        const fds = eventfds ? Array.from({ length: count }, (_, i) => v.getInt32(20 + 4 * i, true)) : [];
        this.irqSets.push({ flags, index, start, count, fds });
        return 0;
      }
    }
    throw errno("ENOTTY");
  };

  pread = (fd: number, buffer: Uint8Array, position: number): number => {
    const { region, offset } = this.locate(fd, position);
    const n = Math.min(buffer.length, this.chunk);
    this.log.push(`pread region ${region} +0x${offset.toString(16)} ${n}`);
    this.check("pread");
    buffer.set(this.memory[region]!.subarray(offset, offset + n));
    return n;
  };

  pwrite = (fd: number, data: Uint8Array, position: number): number => {
    const { region, offset } = this.locate(fd, position);
    const n = Math.min(data.length, this.chunk);
    this.log.push(`pwrite region ${region} +0x${offset.toString(16)} ${n}`);
    this.check("pwrite");
    this.memory[region]!.set(data.subarray(0, n), offset);
    return n;
  };

  bufferAddress = (bytes: Uint8Array): bigint => 0x7f00_0000_0000n + BigInt(bytes.byteOffset);

  private locate(fd: number, position: number): { region: number; offset: number } {
    this.usableDevice(this.state(fd));
    const region = Math.floor(position / 2 ** 40);
    return { region, offset: position - region * 2 ** 40 };
  }

  private usableDevice(s: FdState): void {
    if (!s.device) throw errno("ENOTTY");
    if (s.node === "cdev" && s.attached === undefined) throw errno("EPERM");
  }

  /** The region's capability chain as the kernel lays it out after the 32-byte vfio_region_info. */
  private capabilities(r: FakeRegion): Uint8Array {
    const parts: Uint8Array[] = [];
    if (r.type) {
      const cap = new Uint8Array(16);
      const v = new DataView(cap.buffer);
      v.setUint16(0, 2, true); // VFIO_REGION_INFO_CAP_TYPE
      v.setUint16(2, 1, true);
      v.setUint32(8, r.type.type, true);
      v.setUint32(12, r.type.subtype, true);
      parts.push(cap);
    }
    if (r.sparse) {
      const cap = new Uint8Array(16 + 16 * r.sparse.length);
      const v = new DataView(cap.buffer);
      v.setUint16(0, 1, true); // VFIO_REGION_INFO_CAP_SPARSE_MMAP
      v.setUint16(2, 1, true);
      v.setUint32(8, r.sparse.length, true);
      r.sparse.forEach((a, i) => {
        v.setBigUint64(16 + 16 * i, BigInt(a.offset), true);
        v.setBigUint64(24 + 16 * i, BigInt(a.size), true);
      });
      parts.push(cap);
    }
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    parts.forEach((p, i) => {
      out.set(p, at);
      if (i + 1 < parts.length) new DataView(out.buffer).setUint32(at + 4, 32 + at + p.length, true); // next
      at += p.length;
    });
    return out;
  }
}
