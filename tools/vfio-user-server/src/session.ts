import { closeSync } from "node:fs";
import type { SimulatedDevice } from "./device/simulated-device.js";
import { DmaMap, type DmaRegion } from "./dma/dma-map.js";
import { DmaFault, type DmaMessenger } from "./dma/dma-port.js";
import { MappedDmaFile } from "./dma/mapped-file.js";
import type { IrqState } from "./irq/irq-state.js";
import {
  Command,
  commandName,
  DMA_MAP_FLAG_READ,
  DMA_MAP_FLAG_WRITE,
  DMA_UNMAP_FLAG_ALL,
  DMA_UNMAP_FLAG_GET_DIRTY_BITMAP,
  Errno,
  MessageFlags,
  PciIrq,
  PciRegion,
  PROTOCOL_MAJOR,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP_VERSION,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
  VFIO_REGION_INFO_FLAG_READ,
  VFIO_REGION_INFO_FLAG_WRITE,
} from "./protocol/constants.js";
import { FramingError, invalid, ProtocolError } from "./protocol/errors.js";
import type { RawMessage } from "./protocol/framing.js";
import { encodeErrorReply, encodeMessage, encodeReply, isReply, messageType } from "./protocol/header.js";
import { PayloadReader, PayloadWriter } from "./protocol/payload.js";
import { type Capabilities, DEFAULT_CAPABILITIES, encodeVersionReply, parseVersion, SERVER_CAPABILITIES } from "./protocol/version.js";
import { ConnectionClosed, type Transport } from "./transport.js";

/** What a handler answers: a payload and fds to send with it. */
interface Reply {
  readonly payload?: Uint8Array;
  readonly fds?: readonly number[];
}

/** A request as a handler sees it; `claim` takes ownership of received fds (the rest are closed afterwards). */
interface Request {
  readonly message: RawMessage;
  readonly payload: Uint8Array;
  readonly fds: readonly number[];
  claim(fds: readonly number[]): void;
}

type Handler = (request: Request) => Reply;

/** The only commands a client sends fds with. */
const TAKES_FDS: ReadonlySet<number> = new Set([Command.DMA_MAP, Command.DEVICE_SET_IRQS]);

/** How long the server waits for the client's reply to a DMA_READ / DMA_WRITE. */
const DMA_REPLY_TIMEOUT_MS = 10_000;
/** Commands handled while waiting for such a reply may themselves wait; this bounds the nesting. */
const MAX_NESTING = 8;

export interface SessionOptions {
  readonly transport: Transport;
  readonly device: SimulatedDevice;
  readonly irq: IrqState;
  readonly dmaMap: DmaMap;
  /** Protocol trace (--log). */
  readonly log: (line: string) => void;
  /** Problems worth a line whatever the options (internal errors). */
  readonly warn: (line: string) => void;
}

/**
 * One client's session: the VERSION handshake, then each command dispatched by number to its handler, answered
 * with a reply (or an error reply carrying an errno), unless the command asked for none. Also the server's own
 * requests to the client (DMA_READ / DMA_WRITE), whose replies it waits for while still serving the client's
 * commands, so neither side can deadlock the other.
 */
export class Session implements DmaMessenger {
  private client: Capabilities = DEFAULT_CAPABILITIES;
  private negotiated = false;
  private nextId = 1;
  private nesting = 0;
  /** Replies to the server's requests, by message id, that arrived while another wait was innermost. */
  private readonly replies = new Map<number, RawMessage>();
  private readonly awaiting = new Set<number>();
  private readonly handlers: ReadonlyMap<number, Handler>;

  constructor(private readonly options: SessionOptions) {
    this.handlers = new Map<number, Handler>([
      [Command.VERSION, (r) => this.version(r)],
      [Command.DMA_MAP, (r) => this.dmaMap(r)],
      [Command.DMA_UNMAP, (r) => this.dmaUnmap(r)],
      [Command.DEVICE_GET_INFO, (r) => this.deviceInfo(r)],
      [Command.DEVICE_GET_REGION_INFO, (r) => this.regionInfo(r)],
      [Command.DEVICE_GET_REGION_IO_FDS, (r) => this.regionIoFds(r)],
      [Command.DEVICE_GET_IRQ_INFO, (r) => this.irqInfo(r)],
      [Command.DEVICE_SET_IRQS, (r) => this.setIrqs(r)],
      [Command.REGION_READ, (r) => this.regionRead(r)],
      [Command.REGION_WRITE, (r) => this.regionWrite(r)],
      [Command.DEVICE_RESET, () => this.deviceReset()],
      [Command.DMA_READ, () => refuse(Errno.EINVAL, "DMA_READ goes from the server to the client")],
      [Command.DMA_WRITE, () => refuse(Errno.EINVAL, "DMA_WRITE goes from the server to the client")],
      [Command.REGION_WRITE_MULTI, () => refuse(Errno.ENOTSUP, "write_multiple was not negotiated")],
      [Command.DEVICE_FEATURE, () => refuse(Errno.ENOTSUP, "no device features (no migration)")],
      [Command.MIG_DATA_READ, () => refuse(Errno.ENOTSUP, "no migration")],
      [Command.MIG_DATA_WRITE, () => refuse(Errno.ENOTSUP, "no migration")],
    ]);
  }

  /** The client's capabilities as negotiated (defaults before VERSION). */
  get clientCapabilities(): Capabilities {
    return this.client;
  }

  /** Handles one message from the client. Throws only when the connection failed (ConnectionClosed, FramingError). */
  handle(message: RawMessage): void {
    const { header } = message;
    if (isReply(header)) return this.takeReply(message);
    const noReply = (header.flags & MessageFlags.NO_REPLY) !== 0;
    const claimed = new Set<number>();
    const request: Request = { message, payload: message.payload, fds: message.fds, claim: (fds) => fds.forEach((fd) => claimed.add(fd)) };
    let reply: Reply | undefined;
    let errno = 0;
    try {
      reply = this.dispatch(request);
    } catch (e) {
      if (!(e instanceof ProtocolError)) {
        // The connection itself failed (while a DMA request waited for its reply): no reply can follow.
        if (e instanceof ConnectionClosed || e instanceof FramingError) throw e;
        this.options.warn(`internal error in ${commandName(header.command)}: ${(e as Error).stack ?? e}`);
      }
      errno = e instanceof ProtocolError ? e.errno : Errno.EIO;
      this.options.log(`<- ${commandName(header.command)} id=${header.id} refused: errno ${errno}: ${(e as Error).message}`);
    } finally {
      for (const fd of message.fds) if (!claimed.has(fd)) closeQuietly(fd);
    }
    if (noReply) return;
    if (errno !== 0) return this.options.transport.send(encodeErrorReply(header, errno));
    this.options.transport.send(encodeReply(header, reply?.payload), reply?.fds ?? []);
  }

  // DmaMessenger: the engine's DMA to windows without an fd (or all of them with --dma messages).

  read(address: bigint, length: number): Uint8Array {
    const out = new Uint8Array(length);
    for (let at = 0; at < length; ) {
      const count = Math.min(length - at, this.transferLimit());
      const request = new PayloadWriter(16).u64(0, address + BigInt(at)).u64(8, count).bytes;
      const reply = this.request(Command.DMA_READ, request);
      const r = new PayloadReader(reply.payload, "DMA_READ reply");
      if (reply.payload.length < 16 || r.u64(0) !== address + BigInt(at) || r.u64(8) !== BigInt(count) || reply.payload.length !== 16 + count) {
        throw new DmaFault(`the client's DMA_READ reply does not match the request (${reply.payload.length} bytes)`);
      }
      out.set(reply.payload.subarray(16), at);
      at += count;
    }
    return out;
  }

  write(address: bigint, data: Uint8Array): void {
    for (let at = 0; at < data.length; ) {
      const count = Math.min(data.length - at, this.transferLimit());
      const payload = new PayloadWriter(16 + count).u64(0, address + BigInt(at)).u64(8, count).set(16, data.subarray(at, at + count)).bytes;
      const reply = this.request(Command.DMA_WRITE, payload);
      // The reply is address (8) and count (4 per the spec's table; 8 accepted too).
      const r = new PayloadReader(reply.payload, "DMA_WRITE reply");
      if (reply.payload.length < 12 || r.u64(0) !== address + BigInt(at) || r.u32(8) !== count) {
        throw new DmaFault(`the client's DMA_WRITE reply does not match the request (${reply.payload.length} bytes)`);
      }
      at += count;
    }
  }

  private transferLimit(): number {
    return Math.min(this.client.maxDataXferSize, SERVER_CAPABILITIES.maxDataXferSize);
  }

  /** Sends a server-to-client command and serves the client until its reply comes. */
  private request(command: number, payload: Uint8Array): RawMessage {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) & 0xffff;
    this.awaiting.add(id);
    this.options.log(`-> ${commandName(command)} id=${id} (${payload.length} bytes)`);
    try {
      this.options.transport.send(encodeMessage({ id, command, flags: MessageFlags.TYPE_COMMAND, error: 0 }, payload));
      const deadline = Date.now() + DMA_REPLY_TIMEOUT_MS;
      for (;;) {
        const reply = this.replies.get(id);
        if (reply) {
          this.replies.delete(id);
          if (reply.header.command !== command) throw new DmaFault(`the reply to ${commandName(command)} id=${id} names ${commandName(reply.header.command)}`);
          if (reply.header.flags & MessageFlags.ERROR) throw new DmaFault(`the client refused ${commandName(command)} with errno ${reply.header.error}`);
          return reply;
        }
        const message = this.options.transport.receive(Math.max(0, deadline - Date.now()));
        if (message === "timeout") throw new DmaFault(`no reply to ${commandName(command)} id=${id} within ${DMA_REPLY_TIMEOUT_MS} ms`);
        if (isReply(message.header)) {
          this.takeReply(message);
          continue;
        }
        this.nested(message);
      }
    } finally {
      this.awaiting.delete(id);
      this.replies.delete(id);
    }
  }

  /** A client command that arrived while the server waits for a reply: served now, within a nesting limit. */
  private nested(message: RawMessage): void {
    if (this.nesting >= MAX_NESTING) {
      for (const fd of message.fds) closeQuietly(fd);
      if (!(message.header.flags & MessageFlags.NO_REPLY)) this.options.transport.send(encodeErrorReply(message.header, Errno.EBUSY));
      return;
    }
    this.nesting++;
    try {
      this.handle(message);
    } finally {
      this.nesting--;
    }
  }

  private takeReply(message: RawMessage): void {
    for (const fd of message.fds) closeQuietly(fd);
    if (this.awaiting.has(message.header.id)) {
      this.replies.set(message.header.id, message);
      return;
    }
    this.options.log(`<- unexpected reply id=${message.header.id} to ${commandName(message.header.command)} dropped`);
  }

  private dispatch(request: Request): Reply {
    const { header } = request.message;
    this.options.log(`<- ${commandName(header.command)} id=${header.id} (${request.payload.length} bytes, ${request.fds.length} fds)`);
    if (messageType(header.flags) !== MessageFlags.TYPE_COMMAND) throw invalid(`message type ${messageType(header.flags)} is neither command nor reply`);
    if (request.fds.length > SERVER_CAPABILITIES.maxMsgFds) throw invalid(`${request.fds.length} fds in one message, more than max_msg_fds ${SERVER_CAPABILITIES.maxMsgFds}`);
    if (!this.negotiated && header.command !== Command.VERSION) throw invalid(`${commandName(header.command)} before the VERSION handshake`);
    const handler = this.handlers.get(header.command);
    if (!handler) throw new ProtocolError(Errno.ENOSYS, `command ${header.command} is not a vfio-user command`);
    if (request.fds.length > 0 && !TAKES_FDS.has(header.command)) throw invalid(`${commandName(header.command)} takes no fds, ${request.fds.length} came`);
    return handler(request);
  }

  private version(request: Request): Reply {
    if (this.negotiated) throw invalid("VERSION again: the version is already negotiated");
    const proposal = parseVersion(request.payload);
    if (proposal.major !== PROTOCOL_MAJOR) throw invalid(`major version ${proposal.major} is not supported (this server speaks ${PROTOCOL_MAJOR})`);
    this.client = proposal.capabilities;
    this.negotiated = true;
    return { payload: encodeVersionReply(proposal) };
  }

  private dmaMap(request: Request): Reply {
    const r = new PayloadReader(request.payload, "DMA_MAP").requireAtLeast(32);
    const argsz = r.u32(0);
    const flags = r.u32(4);
    const offset = r.u64(8);
    const address = r.u64(16);
    const size = r.u64(24);
    if (argsz < 32) throw invalid(`DMA_MAP: argsz ${argsz} is smaller than the 32-byte structure`);
    if (flags & ~(DMA_MAP_FLAG_READ | DMA_MAP_FLAG_WRITE)) throw invalid(`DMA_MAP: unknown flags 0x${flags.toString(16)}`);
    if (request.fds.length > 1) throw invalid(`DMA_MAP: ${request.fds.length} fds, at most one`);
    const map = this.options.dmaMap;
    map.checkAdd(address, size);
    const readable = (flags & DMA_MAP_FLAG_READ) !== 0;
    const writable = (flags & DMA_MAP_FLAG_WRITE) !== 0;
    let file: MappedDmaFile | undefined;
    if (request.fds.length === 1) {
      request.claim(request.fds);
      file = MappedDmaFile.open(request.fds[0]!, offset, size, writable);
    }
    const region: DmaRegion = { address, size, readable, writable, file };
    map.add(region);
    return {};
  }

  private dmaUnmap(request: Request): Reply {
    const r = new PayloadReader(request.payload, "DMA_UNMAP").requireAtLeast(24);
    const flags = r.u32(4);
    const address = r.u64(8);
    const size = r.u64(16);
    if (flags & DMA_UNMAP_FLAG_GET_DIRTY_BITMAP) throw new ProtocolError(Errno.ENOTSUP, "DMA_UNMAP: dirty page logging is not supported");
    if (flags & ~DMA_UNMAP_FLAG_ALL) throw invalid(`DMA_UNMAP: unknown flags 0x${flags.toString(16)}`);
    if (flags & DMA_UNMAP_FLAG_ALL) {
      if (address !== 0n || size !== 0n) throw invalid("DMA_UNMAP: the ALL flag takes address 0 and size 0");
      this.options.dmaMap.removeAll();
    } else {
      this.options.dmaMap.remove(address, size);
    }
    return { payload: request.payload.slice(0, 24) };
  }

  private deviceInfo(request: Request): Reply {
    const r = new PayloadReader(request.payload, "DEVICE_GET_INFO").requireAtLeast(16);
    const argsz = r.u32(0);
    if (argsz < 16) throw invalid(`DEVICE_GET_INFO: argsz ${argsz} is smaller than the 16-byte reply`);
    return { payload: new PayloadWriter(16).u32(0, 16).u32(4, VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI).u32(8, PciRegion.COUNT).u32(12, PciIrq.COUNT).bytes };
  }

  private regionInfo(request: Request): Reply {
    const r = new PayloadReader(request.payload, "DEVICE_GET_REGION_INFO").requireAtLeast(32);
    const argsz = r.u32(0);
    const index = r.u32(8);
    if (argsz < 32) throw invalid(`DEVICE_GET_REGION_INFO: argsz ${argsz} is smaller than the 32-byte structure`);
    const region = this.options.device.describeRegion(index);
    // Mapping needs the fd to reach the client: one that takes no fds gets a trapped-only region.
    const mappable = region.fd !== undefined && region.mmapAreas.length > 0 && this.client.maxMsgFds >= 1;
    const partial = mappable && !(region.mmapAreas.length === 1 && region.mmapAreas[0]!.offset === 0 && region.mmapAreas[0]!.size === region.size);
    let flags = (region.readable ? VFIO_REGION_INFO_FLAG_READ : 0) | (region.writable ? VFIO_REGION_INFO_FLAG_WRITE : 0);
    if (mappable) flags |= VFIO_REGION_INFO_FLAG_MMAP;
    if (partial) flags |= VFIO_REGION_INFO_FLAG_CAPS;
    const capSize = partial ? 16 + 16 * region.mmapAreas.length : 0;
    const needed = 32 + capSize;
    const complete = argsz >= needed;
    const out = new PayloadWriter(complete ? needed : 32)
      .u32(0, needed)
      .u32(4, flags)
      .u32(8, index)
      .u32(12, partial && complete ? 32 : 0)
      .u64(16, region.size)
      .u64(24, 0);
    if (partial && complete) {
      // struct vfio_region_info_cap_sparse_mmap: header, nr_areas, reserved, then { offset, size } per area.
      out.u16(32, VFIO_REGION_INFO_CAP_SPARSE_MMAP).u16(34, VFIO_REGION_INFO_CAP_SPARSE_MMAP_VERSION).u32(36, 0);
      out.u32(40, region.mmapAreas.length).u32(44, 0);
      region.mmapAreas.forEach((area, i) => out.u64(48 + 16 * i, area.offset).u64(56 + 16 * i, area.size));
    }
    return { payload: out.bytes, fds: mappable ? [region.fd!] : [] };
  }

  private regionIoFds(request: Request): Reply {
    const r = new PayloadReader(request.payload, "DEVICE_GET_REGION_IO_FDS").requireAtLeast(16);
    this.options.device.describeRegion(r.u32(8));
    throw new ProtocolError(Errno.ENOTSUP, "DEVICE_GET_REGION_IO_FDS: this server offers no ioeventfds or ioregionfds");
  }

  private irqInfo(request: Request): Reply {
    const r = new PayloadReader(request.payload, "DEVICE_GET_IRQ_INFO").requireAtLeast(16);
    const argsz = r.u32(0);
    const index = r.u32(8);
    if (argsz < 16) throw invalid(`DEVICE_GET_IRQ_INFO: argsz ${argsz} is smaller than the 16-byte reply`);
    const info = this.options.irq.info(index);
    return { payload: new PayloadWriter(16).u32(0, 16).u32(4, info.flags).u32(8, index).u32(12, info.count).bytes };
  }

  private setIrqs(request: Request): Reply {
    const r = new PayloadReader(request.payload, "DEVICE_SET_IRQS").requireAtLeast(20);
    const argsz = r.u32(0);
    const flags = r.u32(4);
    const count = r.u32(16);
    if (argsz < 20) throw invalid(`DEVICE_SET_IRQS: argsz ${argsz} is smaller than the 20-byte structure`);
    const bools = flags & VFIO_IRQ_SET_DATA_BOOL ? request.payload.subarray(20, 20 + count) : new Uint8Array(0);
    this.options.irq.set({ flags, index: r.u32(8), start: r.u32(12), count, bools, fds: request.fds });
    request.claim(request.fds);
    return {};
  }

  private regionRead(request: Request): Reply {
    const { offset, index, count } = this.regionAccess(request, "REGION_READ");
    if (request.payload.length !== 16) throw invalid(`REGION_READ: payload of ${request.payload.length} bytes, expected 16`);
    const data = this.options.device.regionRead(index, offset, count);
    return { payload: new PayloadWriter(16 + count).u64(0, offset).u32(8, index).u32(12, count).set(16, data).bytes };
  }

  private regionWrite(request: Request): Reply {
    const { offset, index, count } = this.regionAccess(request, "REGION_WRITE");
    if (request.payload.length !== 16 + count) throw invalid(`REGION_WRITE: ${request.payload.length - 16} data bytes for count ${count}`);
    this.options.device.regionWrite(index, offset, request.payload.subarray(16));
    return { payload: request.payload.slice(0, 16) };
  }

  private regionAccess(request: Request, what: string): { offset: number; index: number; count: number } {
    const r = new PayloadReader(request.payload, what).requireAtLeast(16);
    const offset = r.u64(0);
    const index = r.u32(8);
    const count = r.u32(12);
    if (count > SERVER_CAPABILITIES.maxDataXferSize) throw invalid(`${what}: count ${count} exceeds max_data_xfer_size ${SERVER_CAPABILITIES.maxDataXferSize}`);
    if (offset > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${what}: offset 0x${offset.toString(16)} is past every region`);
    return { offset: Number(offset), index, count };
  }

  private deviceReset(): Reply {
    this.options.device.reset();
    return {};
  }
}

function refuse(errno: number, message: string): never {
  throw new ProtocolError(errno, message);
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Not ours any more.
  }
}
