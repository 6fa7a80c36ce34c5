// struct vfio_irq_info and struct vfio_irq_set (VFIO_DEVICE_GET_IRQ_INFO / SET_IRQS and their vfio-user forms).
import type { VfioIrqSet } from "../backend/backend.js";
import { VfioIrqSetFlags } from "./constants.js";
import { decodeInfo } from "./decode-helpers.js";
import { VfioIrqInfoStruct, VfioIrqSetStruct } from "./structs.js";

export interface DecodedIrqInfo {
  readonly argsz: number;
  /** VfioIrqInfoFlags bits. */
  readonly flags: number;
  readonly index: number;
  readonly count: number;
}

export function encodeIrqInfoRequest(index: number): Uint8Array {
  return VfioIrqInfoStruct.encode({ argsz: VfioIrqInfoStruct.size, flags: 0, index, count: 0 });
}

export function decodeIrqInfo(bytes: Uint8Array): DecodedIrqInfo {
  const info = decodeInfo(VfioIrqInfoStruct, bytes, VfioIrqInfoStruct.size, "vfio_irq_info");
  return { argsz: info.argsz, flags: info.flags, index: info.index, count: info.count };
}

/** A VfioIrqSet as vfio_irq_set's fields; `fds` (DATA_EVENTFD only) holds one eventfd or -1 per interrupt. */
export interface IrqSetFields {
  readonly flags: number;
  readonly index: number;
  readonly start: number;
  readonly count: number;
  readonly fds: readonly number[];
}

const U32_MAX = 0xffff_ffff;

function checkU32(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > U32_MAX) throw new RangeError(`SET_IRQS ${what} must be an integer from 0 to 2^32-1, not ${value}`);
  return value;
}

function checkFd(fd: number): number {
  if (!Number.isInteger(fd) || fd < -1 || fd > 0x7fff_ffff) throw new RangeError(`SET_IRQS eventfds must be fds or -1, not ${fd}`);
  return fd;
}

/**
 * The vfio_irq_set a request means. A trigger with no fds and "trigger-disable" are DATA_NONE with start and count
 * 0 (the whole index off); "mask"/"unmask" act at once (DATA_NONE); "unmask-fd" is one DATA_EVENTFD unmask eventfd.
 */
export function irqSetFields(request: VfioIrqSet): IrqSetFields {
  const index = checkU32(request.index, "index");
  const { DATA_NONE, DATA_EVENTFD, ACTION_MASK, ACTION_UNMASK, ACTION_TRIGGER } = VfioIrqSetFlags;
  switch (request.action) {
    case "trigger":
      if (request.fds.length === 0) return { flags: DATA_NONE | ACTION_TRIGGER, index, start: 0, count: 0, fds: [] };
      checkU32(request.start + request.fds.length, "start + count");
      return { flags: DATA_EVENTFD | ACTION_TRIGGER, index, start: checkU32(request.start, "start"), count: request.fds.length, fds: request.fds.map(checkFd) };
    case "trigger-disable":
      return { flags: DATA_NONE | ACTION_TRIGGER, index, start: 0, count: 0, fds: [] };
    case "mask":
    case "unmask":
      checkU32(request.start + request.count, "start + count");
      return {
        flags: DATA_NONE | (request.action === "mask" ? ACTION_MASK : ACTION_UNMASK),
        index,
        start: checkU32(request.start, "start"),
        count: checkU32(request.count, "count"),
        fds: [],
      };
    case "unmask-fd":
      return { flags: DATA_EVENTFD | ACTION_UNMASK, index, start: 0, count: 1, fds: [checkFd(request.fd)] };
  }
}

/** vfio_irq_set with `data` after it; argsz covers both. */
export function encodeIrqSet(fields: Omit<IrqSetFields, "fds">, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const bytes = VfioIrqSetStruct.encode(
    { argsz: VfioIrqSetStruct.size + data.length, flags: fields.flags, index: fields.index, start: fields.start, count: fields.count },
    VfioIrqSetStruct.size + data.length,
  );
  bytes.set(data, VfioIrqSetStruct.flexibleOffset!);
  return bytes;
}

/** The DATA_EVENTFD payload kernel VFIO takes: one __s32 per interrupt (-1 unassigns). */
export function eventfdData(fds: readonly number[]): Uint8Array {
  const data = new Uint8Array(4 * fds.length);
  const view = new DataView(data.buffer);
  fds.forEach((fd, i) => view.setInt32(4 * i, checkFd(fd), true));
  return data;
}
