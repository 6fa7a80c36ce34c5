import { closeSync, lstatSync, unlinkSync } from "node:fs";
import { hostIoAvailability, unixAccept, unixConnect, unixListen, waitReadable } from "@vmm/host-io";
import { type DeviceHost, irqCountsOf, SimulatedDevice } from "./device/simulated-device.js";
import { memfdMemory } from "./device/shared-memory.js";
import { DEVICES, type DeviceName } from "./devices/index.js";
import { DmaMap } from "./dma/dma-map.js";
import { type DmaMessenger, type DmaMode, DmaPort } from "./dma/dma-port.js";
import { linuxEventFds } from "./irq/eventfd-ops.js";
import { IrqState } from "./irq/irq-state.js";
import { HEADER_SIZE } from "./protocol/constants.js";
import { FramingError } from "./protocol/errors.js";
import { SERVER_CAPABILITIES } from "./protocol/version.js";
import { Session } from "./session.js";
import { ConnectionClosed, SocketTransport } from "./transport.js";

export const ExitStatus = {
  /** The client disconnected. */
  DISCONNECTED: 0,
  /** Bad options, the socket path taken, the host cannot do it. */
  STARTUP: 1,
  /** The client's byte stream could not be framed, or the socket failed: the server closed the connection. */
  FRAMING: 2,
  /** The test engine's CONTROL register was written 0xDEAD0001. */
  CONTROL: 3,
} as const;

export interface ServerOptions {
  readonly socketPath: string;
  readonly device: DeviceName;
  readonly dma: DmaMode;
  /** Trace every message on stderr. */
  readonly log: boolean;
  /** Where "listening PATH" goes (stdout). */
  readonly announce: (line: string) => void;
  /** Where diagnostics go (stderr). */
  readonly diagnostics: (line: string) => void;
  /** Ends the process (CONTROL's exit happens at once, in the middle of a request). */
  readonly exit: (status: number) => never;
}

/** The largest message a client may send: a REGION_WRITE of max_data_xfer_size bytes, with room to spare. */
const MAX_MESSAGE_SIZE = HEADER_SIZE + 16 + SERVER_CAPABILITIES.maxDataXferSize + 4096;

/**
 * Listens on the socket path, accepts one client, serves it until it disconnects; returns the exit status. The
 * socket file is removed once the client is accepted (one client per process).
 */
export function runServer(options: ServerOptions): number {
  const availability = hostIoAvailability();
  if (!availability.ok) {
    options.diagnostics(`vfio-user-server: the host-io addon is unusable: ${availability.reason}`);
    return ExitStatus.STARTUP;
  }
  const log = options.log ? options.diagnostics : () => undefined;
  const spec = DEVICES[options.device]();
  const irq = new IrqState(irqCountsOf(spec), linuxEventFds);
  const dmaMap = new DmaMap(SERVER_CAPABILITIES.maxDmaMaps);
  let messenger: DmaMessenger | undefined;
  const forwarder: DmaMessenger = {
    read: (address, length) => messenger!.read(address, length),
    write: (address, data) => messenger!.write(address, data),
  };
  const host: DeviceHost = {
    irq,
    dma: new DmaPort(dmaMap, forwarder, options.dma),
    memory: memfdMemory,
    exit: (status) => options.exit(status),
    log,
  };
  const device = new SimulatedDevice(spec, host);

  const problem = prepareSocketPath(options.socketPath);
  if (problem) {
    options.diagnostics(`vfio-user-server: ${problem}`);
    device.close();
    return ExitStatus.STARTUP;
  }
  let listener: number;
  try {
    listener = unixListen(options.socketPath);
  } catch (e) {
    options.diagnostics(`vfio-user-server: cannot listen on ${options.socketPath}: ${(e as Error).message}`);
    device.close();
    return ExitStatus.STARTUP;
  }
  options.announce(`listening ${options.socketPath}`);
  let connection: number | null = null;
  while (connection === null) {
    waitReadable(listener, -1);
    connection = unixAccept(listener);
  }
  closeSync(listener);
  removeQuietly(options.socketPath);
  log(`vfio-user-server: ${spec.name} accepted a client (DMA by ${options.dma})`);

  const transport = new SocketTransport(connection, MAX_MESSAGE_SIZE);
  const session = new Session({ transport, device, irq, dmaMap, log, warn: options.diagnostics });
  messenger = session;
  try {
    for (;;) {
      const message = transport.receive(-1);
      if (message !== "timeout") session.handle(message);
    }
  } catch (e) {
    if (e instanceof ConnectionClosed) {
      log(`vfio-user-server: ${e.message}`);
      return ExitStatus.DISCONNECTED;
    }
    options.diagnostics(`vfio-user-server: closing the connection: ${e instanceof FramingError ? e.message : ((e as Error).stack ?? e)}`);
    return ExitStatus.FRAMING;
  } finally {
    irq.closeAll();
    dmaMap.removeAll();
    transport.close();
    device.close();
  }
}

/**
 * Makes room for the listening socket: nothing there is fine, a stale socket (nobody listening) is removed, a live
 * socket or anything that is not a socket is refused.
 */
function prepareSocketPath(path: string): string | undefined {
  let stat;
  try {
    stat = lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    return `cannot inspect ${path}: ${(e as Error).message}`;
  }
  if (!stat.isSocket()) return `${path} exists and is not a socket: refusing to replace it`;
  try {
    const fd = unixConnect(path);
    closeSync(fd);
    return `${path} is a socket another server is listening on`;
  } catch (e) {
    if ((e as { errno?: string }).errno !== "ECONNREFUSED") return `cannot probe ${path}: ${(e as Error).message}`;
  }
  unlinkSync(path);
  return undefined;
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone.
  }
}
