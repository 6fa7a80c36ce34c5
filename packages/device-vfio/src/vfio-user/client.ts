// The vfio-user client: VfioBackend over a UNIX socket to a device process. Each call is one or more synchronous
// request/reply exchanges (VfioUserConnection); the server's limits from VERSION decide how accesses and interrupt
// fds are split; DMA_READ/DMA_WRITE from the server are answered from the DMA_MAP'ed regions.
import { closeSync } from "node:fs";
import { constants } from "node:os";
import { ConfigurationError } from "@vmm/core";
import { HostIoError, MAX_FDS_PER_MESSAGE, unixConnect } from "@vmm/host-io";
import {
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
import { decodeDeviceInfo, DEVICE_INFO_MIN_SIZE, encodeDeviceInfoRequest } from "../uapi/device-info.js";
import { VfioDecodeError } from "../uapi/errors.js";
import { decodeIrqInfo, encodeIrqInfoRequest, encodeIrqSet, irqSetFields, type IrqSetFields } from "../uapi/irq.js";
import { decodeRegionInfo, encodeRegionInfoRequest, type DecodedRegionInfo } from "../uapi/region-info.js";
import { VfioRegionInfoStruct } from "../uapi/structs.js";
import { VfioIrqSetFlags } from "../uapi/constants.js";
import { VfioUserConnection, type CommandOutcome, type Reply } from "./connection.js";
import { DmaRegionTable } from "./dma-regions.js";
import { VfioUserProtocolError } from "./errors.js";
import { encodeVersionProposal, parseVersionReply, type VfioUserServerLimits } from "./negotiation.js";
import {
  commandName,
  concat,
  HEADER_SIZE,
  VfioUserCommand,
  VfioUserDmaAccess,
  VfioUserDmaMap,
  VfioUserDmaMapFlags,
  VfioUserDmaUnmap,
  VfioUserRegionAccess,
} from "./protocol.js";
import { closeFds, type ReceivedMessage } from "./receive-buffer.js";

export interface VfioUserClientOptions {
  /** How long a call waits for its reply, in ms (default 5000). */
  readonly timeoutMs?: number;
  /** The largest DMA_READ/WRITE this client serves (announced as max_data_xfer_size; default 1 MiB). */
  readonly maxDataXferSize?: number;
  /** fds the server may send in one message (announced as max_msg_fds; default 8). */
  readonly maxMsgFds?: number;
}

/** The room asked for in the first REGION_INFO of a region: the structure and a few capabilities. */
const REGION_INFO_FIRST_ARGSZ = 256;
/** More than any real region's capabilities need; a server asking for more is refused. */
const REGION_INFO_MAX_ARGSZ = 64 * 1024;
/** A server whose capabilities keep growing is refused after this many requests. */
const REGION_INFO_ATTEMPTS = 3;

const { ENOSYS } = constants.errno;
const MAX_U32 = 0xffff_ffff;

export class VfioUserClient implements VfioBackend {
  readonly name: string;
  /** What the server announced in VERSION. */
  readonly limits: VfioUserServerLimits;
  private readonly label: string;
  private readonly connection: VfioUserConnection;
  private readonly dma = new DmaRegionTable();
  private readonly maxDataXferSize: number;
  private readonly regionCache = new Map<number, VfioRegionInfo>();
  private readonly ownedFds: number[] = [];
  private deviceFlags?: number;
  private closed = false;

  /** Connects to the server listening at `path` and negotiates the version. */
  static connect(path: string, options: VfioUserClientOptions = {}): VfioUserClient {
    let socket: number;
    try {
      socket = unixConnect(path);
    } catch (error) {
      const why = error instanceof HostIoError ? error.errno : error instanceof Error ? error.message : String(error);
      throw new ConfigurationError(`vfio-user: cannot connect to ${path} (${why}): is the device server running?`, { cause: error });
    }
    return VfioUserClient.fromSocket(socket, path, options);
  }

  /** A client over `socket`, already connected to the server at `path` (which names it); the client owns the socket. */
  static fromSocket(socket: number, path: string, options: VfioUserClientOptions = {}): VfioUserClient {
    return new VfioUserClient(socket, path, options);
  }

  private constructor(socket: number, path: string, options: VfioUserClientOptions) {
    this.name = `vfio-user ${path}`;
    this.label = `vfio-user server ${path}`;
    const timeoutMs = positiveInteger(options.timeoutMs ?? 5000, "timeoutMs");
    this.maxDataXferSize = positiveInteger(options.maxDataXferSize ?? 1024 * 1024, "maxDataXferSize");
    const maxMsgFds = Math.min(positiveInteger(options.maxMsgFds ?? 8, "maxMsgFds"), MAX_FDS_PER_MESSAGE);
    this.connection = new VfioUserConnection(socket, {
      label: this.label,
      timeoutMs,
      // The largest message either carries data (a DMA_WRITE, a split REGION_READ reply) or region info capabilities.
      maxMessageSize: HEADER_SIZE + Math.max(VfioUserDmaAccess.size + this.maxDataXferSize, REGION_INFO_MAX_ARGSZ),
      serveCommand: (message) => this.serveCommand(message),
    });
    try {
      const reply = this.connection.request(VfioUserCommand.VERSION, encodeVersionProposal({ maxMsgFds, maxDataXferSize: this.maxDataXferSize }));
      this.limits = parseVersionReply(reply.payload, this.label);
    } catch (error) {
      this.connection.close();
      throw error;
    }
    this.connection.startWatch();
  }

  deviceInfo(): VfioDeviceInfo {
    const reply = this.request(VfioUserCommand.DEVICE_GET_INFO, encodeDeviceInfoRequest(DEVICE_INFO_MIN_SIZE));
    const info = this.decode(VfioUserCommand.DEVICE_GET_INFO, () => decodeDeviceInfo(reply.payload));
    this.deviceFlags = info.flags;
    return { flags: info.flags, numRegions: info.numRegions, numIrqs: info.numIrqs };
  }

  regionInfo(index: number): VfioRegionInfo {
    checkU32(index, "region index");
    const cached = this.regionCache.get(index);
    if (cached) return cached;
    const command = VfioUserCommand.DEVICE_GET_REGION_INFO;
    let argsz = REGION_INFO_FIRST_ARGSZ;
    for (let attempt = 1; ; attempt++) {
      const request = encodeRegionInfoRequest(index, argsz).subarray(0, VfioRegionInfoStruct.size);
      const reply = this.request(command, request, [], 1);
      let decoded: DecodedRegionInfo;
      try {
        decoded = this.decode(command, () => decodeRegionInfo(reply.payload));
        if (decoded.index !== index) throw this.protocolError(command, `answers for region ${decoded.index}`);
        if (decoded.truncated && decoded.argsz <= argsz) {
          throw this.protocolError(command, `claims argsz ${decoded.argsz} but sent ${reply.payload.length} bytes`);
        }
        if (decoded.truncated && attempt === REGION_INFO_ATTEMPTS) {
          throw this.protocolError(command, `still needs argsz ${decoded.argsz} after ${attempt} requests`);
        }
        if (decoded.truncated && decoded.argsz > REGION_INFO_MAX_ARGSZ) {
          throw this.protocolError(command, `asks for argsz ${decoded.argsz}, more than the ${REGION_INFO_MAX_ARGSZ} this client allows`);
        }
      } catch (error) {
        closeFds(reply.fds);
        throw error;
      }
      if (decoded.truncated) {
        // The capabilities did not fit: ask again with the room the server says they need.
        closeFds(reply.fds);
        argsz = decoded.argsz;
        continue;
      }
      const info = this.regionFromReply(decoded, reply.fds);
      this.regionCache.set(index, info);
      return info;
    }
  }

  irqInfo(index: number): VfioIrqInfo {
    checkU32(index, "IRQ index");
    const command = VfioUserCommand.DEVICE_GET_IRQ_INFO;
    const reply = this.request(command, encodeIrqInfoRequest(index));
    const info = this.decode(command, () => decodeIrqInfo(reply.payload));
    if (info.index !== index) throw this.protocolError(command, `answers for IRQ index ${info.index}`);
    return { index, flags: info.flags, count: info.count };
  }

  read(index: number, offset: number, size: number): Uint8Array {
    this.checkAccess(index, offset, size);
    const data = new Uint8Array(size);
    for (let done = 0; done < size; ) {
      const count = Math.min(size - done, this.transferLimit());
      const at = offset + done;
      const reply = this.request(VfioUserCommand.REGION_READ, VfioUserRegionAccess.encode({ offset: at, region: index, count }));
      this.checkAccessReply(VfioUserCommand.REGION_READ, reply.payload, at, index, count, VfioUserRegionAccess.size + count);
      data.set(reply.payload.subarray(VfioUserRegionAccess.size), done);
      done += count;
    }
    return data;
  }

  write(index: number, offset: number, data: Uint8Array): void {
    this.checkAccess(index, offset, data.length);
    for (let done = 0; done < data.length; ) {
      const count = Math.min(data.length - done, this.transferLimit());
      const at = offset + done;
      const payload = concat(VfioUserRegionAccess.encode({ offset: at, region: index, count }), data.subarray(done, done + count));
      const reply = this.request(VfioUserCommand.REGION_WRITE, payload);
      this.checkAccessReply(VfioUserCommand.REGION_WRITE, reply.payload, at, index, count, VfioUserRegionAccess.size);
      done += count;
    }
  }

  setIrqs(request: VfioIrqSet): void {
    const fields = irqSetFields(request);
    for (const message of this.splitIrqSet(fields)) {
      this.request(VfioUserCommand.DEVICE_SET_IRQS, encodeIrqSet(message), message.fds);
    }
  }

  reset(): boolean {
    const flags = this.deviceFlags ?? this.deviceInfo().flags;
    if ((flags & VfioDeviceFlags.RESET) === 0) return false;
    this.request(VfioUserCommand.DEVICE_RESET, new Uint8Array(0));
    return true;
  }

  dmaMap(region: VfioDmaRegion): void {
    this.checkUsable();
    const { iova, size } = region;
    if (!Number.isSafeInteger(iova) || iova < 0 || !Number.isSafeInteger(size) || size <= 0 || iova + size > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`${this.name}: DMA_MAP needs a non-negative iova and a positive size, not 0x${iova.toString(16)} + 0x${size.toString(16)}`);
    }
    if (region.bytes.length < size) throw new RangeError(`${this.name}: DMA_MAP of 0x${size.toString(16)} bytes given only ${region.bytes.length} bytes of memory`);
    const page = this.limits.minPageSize;
    if (iova % page !== 0 || size % page !== 0 || (region.fd >= 0 && region.fileOffset % page !== 0)) {
      throw new RangeError(`${this.name}: DMA_MAP iova 0x${iova.toString(16)}, size 0x${size.toString(16)} and file offset must be multiples of the server's ${page}-byte pages`);
    }
    const clash = this.dma.overlapping(iova, size);
    if (clash) {
      throw new RangeError(`${this.name}: DMA_MAP [0x${iova.toString(16)}, +0x${size.toString(16)}) overlaps the mapping at 0x${clash.iova.toString(16)}`);
    }
    if (this.dma.count >= this.limits.maxDmaMaps) throw new RangeError(`${this.name}: the server holds at most ${this.limits.maxDmaMaps} DMA mappings`);
    // Without fd passing the server reaches this memory through DMA_READ/WRITE messages only.
    const withFd = region.fd >= 0 && this.limits.maxMsgFds > 0;
    const flags = (region.readable ? VfioUserDmaMapFlags.READ : 0) | (region.writable ? VfioUserDmaMapFlags.WRITE : 0);
    const payload = VfioUserDmaMap.encode({ argsz: VfioUserDmaMap.size, flags, offset: withFd ? region.fileOffset : 0, address: iova, size });
    this.request(VfioUserCommand.DMA_MAP, payload, withFd ? [region.fd] : []);
    this.dma.add(region);
  }

  dmaUnmap(iova: number, size: number): void {
    this.checkUsable();
    const region = this.dma.exact(iova, size);
    if (!region) throw new RangeError(`${this.name}: no DMA mapping is exactly [0x${iova.toString(16)}, +0x${size.toString(16)})`);
    const command = VfioUserCommand.DMA_UNMAP;
    const reply = this.request(command, VfioUserDmaUnmap.encode({ argsz: VfioUserDmaUnmap.size, flags: 0, address: iova, size }));
    // The region stays served until the reply: the server may finish DMA in flight before answering.
    this.dma.remove(region);
    if (reply.payload.length > 0) {
      const echo = this.decode(command, () => VfioUserDmaUnmap.decode(reply.payload));
      if (echo.address !== iova || echo.size !== size) throw this.protocolError(command, `echoes [0x${echo.address.toString(16)}, +0x${echo.size.toString(16)})`);
    }
  }

  /**
   * vfio-user 0.1 has no IOVA-range capability: a server's limits are its page sizes and mapping count, which
   * dmaMap enforces, so no range of guest memory is out of its reach.
   */
  reservedRanges(): readonly VfioReservedRange[] {
    return [];
  }

  onLost(callback: (reason: string) => void): void {
    this.connection.onLost(callback);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.connection.close();
    closeFds(this.ownedFds.splice(0));
    this.regionCache.clear();
    this.dma.clear();
  }

  private request(command: number, payload: Uint8Array, fds: readonly number[] = [], maxFds = 0): Reply {
    this.checkUsable();
    return this.connection.request(command, payload, fds, maxFds);
  }

  private checkUsable(): void {
    if (this.closed) throw new Error(`${this.name}: used after close()`);
  }

  /** DMA requests from the server; anything else it may not send this client. */
  private serveCommand(message: ReceivedMessage): CommandOutcome {
    if (message.command === VfioUserCommand.DMA_READ) return this.dma.serveRead(message.payload, this.maxDataXferSize);
    if (message.command === VfioUserCommand.DMA_WRITE) return this.dma.serveWrite(message.payload, this.maxDataXferSize);
    return { errno: ENOSYS };
  }

  private regionFromReply(decoded: DecodedRegionInfo, fds: number[]): VfioRegionInfo {
    const base = { index: decoded.index, flags: decoded.flags, size: decoded.size, ...(decoded.type ? { type: decoded.type } : {}) };
    if ((decoded.flags & VfioRegionFlags.MMAP) === 0) {
      closeFds(fds);
      return base;
    }
    const fd = fds[0];
    if (fd === undefined) throw this.protocolError(VfioUserCommand.DEVICE_GET_REGION_INFO, `marks region ${decoded.index} mappable but sent no fd`);
    this.ownedFds.push(fd);
    const areas = decoded.sparseAreas ?? [{ offset: 0, size: decoded.size }];
    return { ...base, mmap: { fd, offset: decoded.offset, areas } };
  }

  /** Runs of real eventfds go in messages of at most max_msg_fds fds; runs of -1 unassign with no fds. */
  private splitIrqSet(fields: IrqSetFields): (IrqSetFields & { fds: readonly number[] })[] {
    if ((fields.flags & VfioIrqSetFlags.DATA_EVENTFD) === 0) return [{ ...fields, fds: [] }];
    const messages: (IrqSetFields & { fds: readonly number[] })[] = [];
    let i = 0;
    while (i < fields.fds.length) {
      const unassign = fields.fds[i] === -1;
      let end = i + 1;
      while (end < fields.fds.length && (fields.fds[end] === -1) === unassign) end++;
      if (!unassign) {
        if (this.limits.maxMsgFds === 0) throw new RangeError(`${this.name}: the server takes no fds (max_msg_fds 0), so it cannot signal eventfds`);
        end = Math.min(end, i + this.limits.maxMsgFds);
      }
      const run = fields.fds.slice(i, end);
      messages.push({ flags: fields.flags, index: fields.index, start: fields.start + i, count: run.length, fds: unassign ? [] : run });
      i = end;
    }
    return messages;
  }

  private transferLimit(): number {
    return Math.min(this.limits.maxDataXferSize, this.maxDataXferSize);
  }

  private checkAccess(index: number, offset: number, size: number): void {
    checkU32(index, "region index");
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(size) || size < 0 || offset + size > Number.MAX_SAFE_INTEGER) {
      throw new RangeError(`${this.name}: a region access needs a non-negative offset and size, not ${offset} + ${size}`);
    }
  }

  private checkAccessReply(command: number, payload: Uint8Array, offset: number, region: number, count: number, expectedLength: number): void {
    if (payload.length !== expectedLength) throw this.protocolError(command, `has ${payload.length} payload bytes, not ${expectedLength}`);
    const echo = this.decode(command, () => VfioUserRegionAccess.decode(payload));
    if (echo.offset !== offset || echo.region !== region || echo.count !== count) {
      throw this.protocolError(command, `is for region ${echo.region} offset 0x${echo.offset.toString(16)} count ${echo.count}, not region ${region} offset 0x${offset.toString(16)} count ${count}`);
    }
  }

  private decode<T>(command: number, decode: () => T): T {
    try {
      return decode();
    } catch (error) {
      if (error instanceof VfioDecodeError) throw new VfioUserProtocolError(`${this.label}: the reply to ${commandName(command)} is malformed: ${error.message}`, { cause: error });
      throw error;
    }
  }

  private protocolError(command: number, what: string): VfioUserProtocolError {
    return new VfioUserProtocolError(`${this.label}: the reply to ${commandName(command)} ${what}`);
  }
}

function positiveInteger(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`vfio-user client option ${what} must be a positive integer, not ${value}`);
  return value;
}

function checkU32(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > MAX_U32) throw new RangeError(`${what} must be an integer from 0 to 2^32-1, not ${value}`);
}
