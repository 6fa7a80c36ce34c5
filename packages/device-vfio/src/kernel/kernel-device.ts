// A host PCI function passed through with kernel VFIO: the VfioBackend over a device fd. Opening diagnoses the
// host first, so a host problem fails with its one line; after that each call is one ioctl or one pread/pwrite.
import { join } from "node:path";
import type { PciAddress } from "@vmm/core";
import {
  VfioBackendLostError,
  VfioDeviceFlags,
  VfioRegionFlags,
  type VfioBackend,
  type VfioDeviceInfo,
  type VfioDmaRegion,
  type VfioIrqInfo,
  type VfioIrqSet,
  type VfioRegionInfo,
  type VfioReservedRange,
} from "../backend/backend.js";
import { formatHostAddress, parseHostAddress } from "../host-address.js";
import { VfioIoctl } from "../uapi/constants.js";
import { decodeDeviceInfo, encodeDeviceInfoRequest } from "../uapi/device-info.js";
import { decodeIrqInfo, encodeIrqInfoRequest, encodeIrqSet, eventfdData, irqSetFields } from "../uapi/irq.js";
import { decodeRegionInfo, encodeRegionInfoRequest, type DecodedRegionInfo } from "../uapi/region-info.js";
import { diagnoseVfioHost, groupViability, VfioHostError, type DiagnoseVfioHostOptions } from "./diagnose.js";
import { openGroupDevice, openIommufdDevice, type DmaDomain, type OpenedVfioDevice } from "./dma-domain.js";
import { callFailed, KernelVfioError } from "./errors.js";
import { parseReservedRegions, readText } from "./sysfs.js";
import { errnoOf, hostSyscalls, type VfioSyscalls } from "./syscalls.js";

export interface KernelVfioOpenOptions extends Omit<DiagnoseVfioHostOptions, "address"> {
  /** The system calls (tests pass a fake kernel); default the real ones through @vmm/host-io. */
  readonly syscalls?: VfioSyscalls;
}

/** The most capability bytes a region info reply may ask room for: the kernel's chains are a few hundred bytes. */
const MAX_REGION_INFO_SIZE = 64 * 1024;

export class KernelVfioDevice implements VfioBackend {
  readonly name: string;
  /** "iommufd" (cdev) or "group" (container/group API). */
  readonly kind: "iommufd" | "group";
  /** The fd to register with KVM's VFIO pseudo-device (KVM_DEV_VFIO_FILE_ADD): group fd or cdev device fd. */
  readonly kvmFile: number;
  readonly group: string;

  private readonly deviceFd: number;
  private readonly domain: DmaDomain;
  private info?: VfioDeviceInfo;
  private readonly regions = new Map<number, { readonly info: VfioRegionInfo; readonly fileOffset: number }>();
  private reserved?: readonly VfioReservedRange[];
  private readonly lostCallbacks: ((reason: string) => void)[] = [];
  private lostReason?: string;
  private closed = false;

  /**
   * Opens host function `address` (bound to vfio-pci) through iommufd where the kernel exposes a cdev, else the
   * container/group API. A host problem throws VfioHostError with its diagnosis line; a failing call after that
   * throws KernelVfioError naming the call and the errno's meaning.
   */
  static open(address: PciAddress | string, options: KernelVfioOpenOptions = {}): KernelVfioDevice {
    const formatted = formatHostAddress(typeof address === "string" ? parseHostAddress(address) : address);
    const root = options.root ?? "/";
    const diagnosis = diagnoseVfioHost({ ...options, address: formatted });
    if (diagnosis.problem) throw new VfioHostError(diagnosis.problem);
    const access = diagnosis.access;
    if (!access) throw new KernelVfioError(`vfio ${formatted}: the diagnosis found no way to open it`);
    const sys = options.syscalls ?? hostSyscalls;
    const name = `vfio ${formatted}`;
    const opened =
      access.kind === "iommufd"
        ? openIommufdDevice(sys, name, access)
        : openGroupDevice(sys, name, formatted, access, () => {
            const check = groupViability(root, access.group, formatted);
            return check.ok ? `IOMMU group ${access.group} is not viable (a device in it is in use by a host driver)` : check.line;
          });
    const device = new KernelVfioDevice(sys, name, root, access.group, opened);
    try {
      device.deviceInfo();
    } catch (e) {
      device.close();
      throw e;
    }
    return device;
  }

  private constructor(
    private readonly sys: VfioSyscalls,
    name: string,
    private readonly root: string,
    group: string,
    opened: OpenedVfioDevice,
  ) {
    this.name = name;
    this.group = group;
    this.kind = opened.kind;
    this.kvmFile = opened.kvmFile;
    this.deviceFd = opened.deviceFd;
    this.domain = opened.domain;
  }

  deviceInfo(): VfioDeviceInfo {
    if (this.info) return this.info;
    this.usable();
    const bytes = encodeDeviceInfoRequest();
    this.ioctl("VFIO_DEVICE_GET_INFO", VfioIoctl.DEVICE_GET_INFO, bytes);
    const decoded = decodeDeviceInfo(bytes);
    if ((decoded.flags & VfioDeviceFlags.PCI) === 0) {
      throw new KernelVfioError(`${this.name}: VFIO says this is not a PCI device (flags 0x${decoded.flags.toString(16)})`);
    }
    this.info = { flags: decoded.flags, numRegions: decoded.numRegions, numIrqs: decoded.numIrqs };
    return this.info;
  }

  regionInfo(index: number): VfioRegionInfo {
    return this.region(index).info;
  }

  irqInfo(index: number): VfioIrqInfo {
    this.checkIndex(index, this.deviceInfo().numIrqs, "IRQ index");
    const bytes = encodeIrqInfoRequest(index);
    this.ioctl(`VFIO_DEVICE_GET_IRQ_INFO ${index}`, VfioIoctl.DEVICE_GET_IRQ_INFO, bytes);
    const decoded = decodeIrqInfo(bytes);
    return { index, flags: decoded.flags, count: decoded.count };
  }

  read(index: number, offset: number, size: number): Uint8Array {
    const { fileOffset } = this.access(index, offset, size, VfioRegionFlags.READ, "read");
    const bytes = new Uint8Array(size);
    this.transfer("reading", index, offset, size, (done) => this.sys.pread(this.deviceFd, bytes.subarray(done), fileOffset + offset + done));
    return bytes;
  }

  write(index: number, offset: number, data: Uint8Array): void {
    const { fileOffset } = this.access(index, offset, data.length, VfioRegionFlags.WRITE, "written");
    this.transfer("writing", index, offset, data.length, (done) => this.sys.pwrite(this.deviceFd, data.subarray(done), fileOffset + offset + done));
  }

  setIrqs(request: VfioIrqSet): void {
    this.checkIndex(request.index, this.deviceInfo().numIrqs, "IRQ index");
    const fields = irqSetFields(request);
    const bytes = encodeIrqSet(fields, eventfdData(fields.fds));
    this.ioctl(`VFIO_DEVICE_SET_IRQS (${request.action}, index ${request.index})`, VfioIoctl.DEVICE_SET_IRQS, bytes);
  }

  reset(): boolean {
    if ((this.deviceInfo().flags & VfioDeviceFlags.RESET) === 0) return false;
    this.usable();
    try {
      this.sys.ioctlValue(this.deviceFd, VfioIoctl.DEVICE_RESET, 0);
    } catch (e) {
      throw this.failed("VFIO_DEVICE_RESET", e);
    }
    return true;
  }

  dmaMap(region: VfioDmaRegion): void {
    this.usable();
    if (!Number.isSafeInteger(region.size) || region.size <= 0 || region.bytes.length < region.size) {
      throw new KernelVfioError(
        `${this.name}: DMA region at iova 0x${region.iova.toString(16)} claims 0x${region.size.toString(16)} bytes but its memory holds 0x${region.bytes.length.toString(16)}`,
      );
    }
    const vaddr = this.sys.bufferAddress(region.bytes);
    this.domain.map(region.iova, region.size, vaddr, region.readable, region.writable);
  }

  dmaUnmap(iova: number, size: number): void {
    this.usable();
    this.domain.unmap(iova, size);
  }

  reservedRanges(): readonly VfioReservedRange[] {
    this.reserved ??= parseReservedRegions(readText(join(this.root, "sys/kernel/iommu_groups", this.group, "reserved_regions")) ?? "");
    return this.reserved;
  }

  onLost(callback: (reason: string) => void): void {
    this.lostCallbacks.push(callback);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    const errors: unknown[] = [];
    for (const step of [() => this.sys.close(this.deviceFd), () => this.domain.close()]) {
      try {
        step();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length > 0) throw this.failed("close", errors[0]);
  }

  private region(index: number): { readonly info: VfioRegionInfo; readonly fileOffset: number } {
    const cached = this.regions.get(index);
    if (cached) return cached;
    this.checkIndex(index, this.deviceInfo().numRegions, "region index");
    let bytes = encodeRegionInfoRequest(index);
    this.ioctl(`VFIO_DEVICE_GET_REGION_INFO ${index}`, VfioIoctl.DEVICE_GET_REGION_INFO, bytes);
    let decoded = decodeRegionInfo(bytes);
    if (decoded.truncated) {
      // The capability chain did not fit: the kernel said how much room it needs in argsz. Ask once more.
      if (decoded.argsz > MAX_REGION_INFO_SIZE) {
        throw new KernelVfioError(`${this.name}: region ${index} info wants ${decoded.argsz} bytes, more than ${MAX_REGION_INFO_SIZE}`);
      }
      bytes = encodeRegionInfoRequest(index, decoded.argsz);
      this.ioctl(`VFIO_DEVICE_GET_REGION_INFO ${index}`, VfioIoctl.DEVICE_GET_REGION_INFO, bytes);
      decoded = decodeRegionInfo(bytes);
      if (decoded.truncated) throw new KernelVfioError(`${this.name}: region ${index} info grew again (argsz ${decoded.argsz})`);
    }
    if (decoded.index !== index) throw new KernelVfioError(`${this.name}: asked for region ${index}, the kernel described ${decoded.index}`);
    const entry = { info: this.toRegionInfo(decoded), fileOffset: decoded.offset };
    this.regions.set(index, entry);
    return entry;
  }

  private toRegionInfo(decoded: DecodedRegionInfo): VfioRegionInfo {
    const mappable = (decoded.flags & VfioRegionFlags.MMAP) !== 0 && decoded.size > 0;
    const areas = decoded.sparseAreas ?? [{ offset: 0, size: decoded.size }];
    return {
      index: decoded.index,
      flags: decoded.flags,
      size: decoded.size,
      ...(mappable && areas.length > 0 ? { mmap: { fd: this.deviceFd, offset: decoded.offset, areas } } : {}),
      ...(decoded.type ? { type: decoded.type } : {}),
    };
  }

  /** Checks a region access lies inside the region and the region allows it. */
  private access(index: number, offset: number, size: number, flag: number, verb: string) {
    const region = this.region(index);
    if ((region.info.flags & flag) === 0) throw new KernelVfioError(`${this.name}: region ${index} cannot be ${verb}`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size <= 0 || offset + size > region.info.size) {
      throw new KernelVfioError(
        `${this.name}: ${size} bytes at 0x${offset.toString(16)} lie outside region ${index} (0x${region.info.size.toString(16)} bytes)`,
      );
    }
    return region;
  }

  private transfer(verb: string, index: number, offset: number, size: number, step: (done: number) => number): void {
    this.usable();
    let done = 0;
    while (done < size) {
      let n: number;
      try {
        n = step(done);
      } catch (e) {
        throw this.failed(`${verb} region ${index} at 0x${(offset + done).toString(16)} (${size - done} bytes)`, e);
      }
      if (n <= 0) throw new KernelVfioError(`${this.name}: ${verb} region ${index} at 0x${(offset + done).toString(16)} stopped after ${done} of ${size} bytes`);
      done += n;
    }
  }

  private ioctl(what: string, request: number, bytes: Uint8Array): number {
    this.usable();
    try {
      return this.sys.ioctl(this.deviceFd, request, bytes);
    } catch (e) {
      throw this.failed(what, e);
    }
  }

  private checkIndex(index: number, count: number, what: string): void {
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new KernelVfioError(`${this.name}: ${what} ${index} does not exist (the device has ${count})`);
    }
  }

  private usable(): void {
    if (this.lostReason !== undefined) throw new VfioBackendLostError(`${this.name}: ${this.lostReason}`);
    if (this.closed) throw new KernelVfioError(`${this.name} is closed`);
  }

  /** The error for a failed call; ENODEV means the device is gone for good, which every onLost callback hears once. */
  private failed(what: string, error: unknown): Error {
    const failure = callFailed(this.name, what, error);
    if (errnoOf(error) !== "ENODEV") return failure;
    if (this.lostReason === undefined) {
      this.lostReason = failure.message.slice(this.name.length + 2);
      for (const callback of this.lostCallbacks.splice(0)) callback(failure.message);
    }
    return new VfioBackendLostError(failure.message);
  }
}
