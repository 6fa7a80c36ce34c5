// The two ways kernel VFIO gives a process a device and an IOMMU address space for it: the iommufd cdev
// (/dev/vfio/devices/vfioN bound to /dev/iommu, one IOAS) and the legacy container/group API (/dev/vfio/vfio with
// the type1v2 IOMMU, /dev/vfio/GROUP). Both map guest RAM by process virtual address at IOVA = guest-physical.
import { VfioGroupFlags, VfioIoctl, VfioIommuType, VFIO_API_VERSION } from "../uapi/constants.js";
import { decodeType1DmaUnmap, encodeType1DmaMap, encodeType1DmaUnmap } from "../uapi/dma.js";
import { VfioGroupStatus } from "../uapi/structs.js";
import { callFailed, KernelVfioError } from "./errors.js";
import { IommufdIoctl, VfioCdevIoctl } from "./ioctls.js";
import { iommuIoasAlloc, iommuIoasMap, iommuIoasUnmap, IommuIoasMapFlags, vfioDeviceAttachIommufdPt, vfioDeviceBindIommufd } from "./structs.js";
import type { VfioSyscalls } from "./syscalls.js";

export interface DmaDomain {
  map(iova: number, size: number, vaddr: bigint, readable: boolean, writable: boolean): void;
  unmap(iova: number, size: number): void;
  /** Closes the IOMMU side (after the device fd is closed). */
  close(): void;
}

export interface OpenedVfioDevice {
  readonly deviceFd: number;
  /** The fd KVM's VFIO pseudo-device takes (KVM_DEV_VFIO_FILE_ADD): the group fd, or the cdev device fd. */
  readonly kvmFile: number;
  readonly domain: DmaDomain;
  readonly kind: "iommufd" | "group";
}

/** Runs `steps` with a list of fds to close if a step throws. */
function opening<T>(sys: VfioSyscalls, steps: (opened: number[]) => T): T {
  const opened: number[] = [];
  try {
    return steps(opened);
  } catch (e) {
    for (const fd of opened.reverse()) {
      try {
        sys.close(fd);
      } catch {
        // Already failing: the first error is the one to report.
      }
    }
    throw e;
  }
}

function call<T>(device: string, what: string, fn: () => T, kind: "map" | "other" = "other"): T {
  try {
    return fn();
  } catch (e) {
    throw callFailed(device, what, e, kind);
  }
}

function checkMapArgs(device: string, iova: number, size: number, readable: boolean, writable: boolean): void {
  if (!Number.isSafeInteger(iova) || iova < 0 || !Number.isSafeInteger(size) || size <= 0) {
    throw new KernelVfioError(`${device}: cannot map DMA at iova ${iova} size ${size}: not a positive range`);
  }
  if (!readable && !writable) throw new KernelVfioError(`${device}: a DMA mapping must be readable or writable`);
}

/**
 * iommufd cdev: open the device and /dev/iommu, bind them (VFIO_DEVICE_BIND_IOMMUFD), allocate an IOAS and attach
 * the device to it. Closing the device fd unbinds; closing the iommufd frees the IOAS and its mappings.
 */
export function openIommufdDevice(sys: VfioSyscalls, name: string, paths: { iommu: string; device: string }): OpenedVfioDevice {
  return opening(sys, (opened) => {
    const deviceFd = call(name, `open ${paths.device}`, () => sys.open(paths.device));
    opened.push(deviceFd);
    const iommuFd = call(name, `open ${paths.iommu}`, () => sys.open(paths.iommu));
    opened.push(iommuFd);
    const bind = vfioDeviceBindIommufd.encode({ argsz: vfioDeviceBindIommufd.size, flags: 0, iommufd: iommuFd, out_devid: 0 });
    call(name, "VFIO_DEVICE_BIND_IOMMUFD", () => sys.ioctl(deviceFd, VfioCdevIoctl.DEVICE_BIND_IOMMUFD, bind));
    const alloc = iommuIoasAlloc.encode({ size: iommuIoasAlloc.size, flags: 0, out_ioas_id: 0 });
    call(name, "IOMMU_IOAS_ALLOC", () => sys.ioctl(iommuFd, IommufdIoctl.IOAS_ALLOC, alloc));
    const ioas = iommuIoasAlloc.decode(alloc).out_ioas_id;
    const attach = vfioDeviceAttachIommufdPt.encode({ argsz: vfioDeviceAttachIommufdPt.size, flags: 0, pt_id: ioas });
    call(name, "VFIO_DEVICE_ATTACH_IOMMUFD_PT", () => sys.ioctl(deviceFd, VfioCdevIoctl.DEVICE_ATTACH_IOMMUFD_PT, attach));

    const domain: DmaDomain = {
      map(iova, size, vaddr, readable, writable) {
        checkMapArgs(name, iova, size, readable, writable);
        const flags =
          IommuIoasMapFlags.FIXED_IOVA |
          (readable ? IommuIoasMapFlags.READABLE : 0) |
          (writable ? IommuIoasMapFlags.WRITEABLE : 0);
        const request = iommuIoasMap.encode({
          size: iommuIoasMap.size,
          flags,
          ioas_id: ioas,
          __reserved: 0,
          user_va: vaddr,
          length: size,
          iova,
        });
        call(name, `IOMMU_IOAS_MAP iova 0x${iova.toString(16)} size 0x${size.toString(16)}`, () => sys.ioctl(iommuFd, IommufdIoctl.IOAS_MAP, request), "map");
      },
      unmap(iova, size) {
        const request = iommuIoasUnmap.encode({ size: iommuIoasUnmap.size, ioas_id: ioas, iova, length: size });
        call(name, `IOMMU_IOAS_UNMAP iova 0x${iova.toString(16)} size 0x${size.toString(16)}`, () => sys.ioctl(iommuFd, IommufdIoctl.IOAS_UNMAP, request));
      },
      close() {
        sys.close(iommuFd);
      },
    };
    return { deviceFd, kvmFile: deviceFd, domain, kind: "iommufd" };
  });
}

/**
 * Container/group API: a container with the type1v2 IOMMU, the group added to it (after checking it is viable),
 * then the device fd by name. `notViable` explains a group the kernel calls not viable (which devices are in the way).
 */
export function openGroupDevice(
  sys: VfioSyscalls,
  name: string,
  address: string,
  paths: { container: string; groupNode: string },
  notViable: () => string,
): OpenedVfioDevice {
  return opening(sys, (opened) => {
    const container = call(name, `open ${paths.container}`, () => sys.open(paths.container));
    opened.push(container);
    const version = call(name, "VFIO_GET_API_VERSION", () => sys.ioctlValue(container, VfioIoctl.GET_API_VERSION, 0));
    if (version !== VFIO_API_VERSION) {
      throw new KernelVfioError(`${name}: the host's VFIO API version is ${version}, this VMM speaks ${VFIO_API_VERSION}`);
    }
    const type1v2 = call(name, "VFIO_CHECK_EXTENSION", () => sys.ioctlValue(container, VfioIoctl.CHECK_EXTENSION, VfioIommuType.TYPE1v2));
    if (type1v2 <= 0) {
      throw new KernelVfioError(`${name}: the host's VFIO container has no type1v2 IOMMU (is vfio_iommu_type1 loaded? modprobe vfio_iommu_type1)`);
    }
    const group = call(name, `open ${paths.groupNode}`, () => sys.open(paths.groupNode));
    opened.push(group);
    const status = VfioGroupStatus.encode({ argsz: VfioGroupStatus.size, flags: 0 });
    call(name, "VFIO_GROUP_GET_STATUS", () => sys.ioctl(group, VfioIoctl.GROUP_GET_STATUS, status));
    if ((VfioGroupStatus.decode(status).flags & VfioGroupFlags.VIABLE) === 0) {
      throw new KernelVfioError(`${name}: ${notViable()}`);
    }
    const containerArg = new Uint8Array(4);
    new DataView(containerArg.buffer).setInt32(0, container, true);
    call(name, "VFIO_GROUP_SET_CONTAINER", () => sys.ioctl(group, VfioIoctl.GROUP_SET_CONTAINER, containerArg));
    call(name, "VFIO_SET_IOMMU (type1v2)", () => sys.ioctlValue(container, VfioIoctl.SET_IOMMU, VfioIommuType.TYPE1v2));
    const nameArg = new TextEncoder().encode(`${address}\0`);
    const deviceFd = call(name, "VFIO_GROUP_GET_DEVICE_FD", () => sys.ioctl(group, VfioIoctl.GROUP_GET_DEVICE_FD, nameArg));
    opened.push(deviceFd);

    const domain: DmaDomain = {
      map(iova, size, vaddr, readable, writable) {
        checkMapArgs(name, iova, size, readable, writable);
        const request = encodeType1DmaMap({ vaddr, iova, size, readable, writable });
        call(name, `VFIO_IOMMU_MAP_DMA iova 0x${iova.toString(16)} size 0x${size.toString(16)}`, () => sys.ioctl(container, VfioIoctl.IOMMU_MAP_DMA, request), "map");
      },
      unmap(iova, size) {
        const request = encodeType1DmaUnmap(iova, size);
        const what = `VFIO_IOMMU_UNMAP_DMA iova 0x${iova.toString(16)} size 0x${size.toString(16)}`;
        call(name, what, () => sys.ioctl(container, VfioIoctl.IOMMU_UNMAP_DMA, request));
        const unmapped = decodeType1DmaUnmap(request).size;
        if (unmapped !== size) throw new KernelVfioError(`${name}: ${what} unmapped 0x${unmapped.toString(16)} bytes`);
      },
      close() {
        // The device fd is closed first (by the caller); closing the group releases it from the container, and
        // closing the container drops the IOMMU context and every mapping.
        sys.close(group);
        sys.close(container);
      },
    };
    return { deviceFd, kvmFile: group, domain, kind: "group" };
  });
}
