import { VmmError } from "@vmm/core";
import { errnoOf } from "./syscalls.js";

/** A kernel VFIO call failed on a host that passed diagnosis; the message is one line naming device, call and cause. */
export class KernelVfioError extends VmmError {
  constructor(
    message: string,
    readonly errno?: string,
    options?: { cause?: unknown },
  ) {
    super("EVFIO", message, options);
  }
}

/** What an errno means for the call that returned it, when there is more to say than its name. */
const HINTS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  EBUSY: { "*": "the device is in use: another VM or process has it open" },
  ENOMEM: {
    map: "pinning guest RAM exceeded RLIMIT_MEMLOCK (raise it: ulimit -l unlimited, LimitMEMLOCK=infinity) or host memory ran out",
  },
  ENOSPC: { map: "the host's limit on DMA mappings was reached (vfio_iommu_type1 dma_entry_limit)" },
  EEXIST: { map: "that I/O address range is already mapped" },
  EFAULT: { map: "the guest RAM address is not mapped in this process" },
  ENODEV: { "*": "the device is gone (unplugged, or unbound from vfio-pci)" },
  EACCES: { "*": "no permission (run vmm doctor vfio)" },
  EPERM: { "*": "not permitted (run vmm doctor vfio)" },
};

/** A KernelVfioError for `call` (an ioctl name or "open /dev/...") on `device` that threw `error`. */
export function callFailed(device: string, call: string, error: unknown, kind: "map" | "other" = "other"): KernelVfioError {
  const errno = errnoOf(error);
  const hint = errno ? (HINTS[errno]?.[kind] ?? HINTS[errno]?.["*"]) : undefined;
  const cause = errno ?? (error instanceof Error ? error.message : String(error));
  return new KernelVfioError(`${device}: ${call} failed (${cause})${hint ? `: ${hint}` : ""}`, errno, { cause: error });
}
