import { randomBytes } from "node:crypto";
import {
  ConfigurationError,
  type DeviceContext,
  definePlugin,
  type DeviceType as CoreDeviceType,
  type IoEventRegistry,
  type Logger,
  type OptionSpec,
  type OptionValues,
  PLUGIN_API_VERSION,
  registerDeviceType,
  StderrLogger,
  Tokens,
  TrappingIoEvents,
} from "@vmm/core";
import type { DependencyContainer, InjectionToken } from "tsyringe";
import { stdioChannel, UnixServerChannel } from "./backends/channel.js";
import { FileImage } from "./backends/file-image.js";
import { DgramNetBackend } from "./backends/net-dgram.js";
import { PasstNetBackend, parsePasstForwards } from "./backends/net-passt.js";
import { type SocketMode, SocketNetBackend } from "./backends/net-socket.js";
import { TapNetBackend } from "./backends/net-tap.js";
import type { VirtioDevice } from "./device.js";
import { VirtioBlk } from "./devices/blk.js";
import { VirtioConsole } from "./devices/console.js";
import { type Mac, parseMac, VirtioNet } from "./devices/net.js";
import { VirtioRng } from "./devices/rng.js";
import { type TransportKind, VirtioPciFunction } from "./transport/virtio-pci.js";

export const VIRTIO_PLUGIN_NAME = "@vmm/device-virtio";

const transport: OptionSpec = {
  type: "enum",
  values: ["modern", "transitional"],
  default: "modern",
  description: "modern: virtio 1.x only; transitional: also the legacy I/O BAR for pre-1.0 drivers",
};

/** Where a device's queue runs; each device says what its worker does. */
const dataplane = { type: "enum", values: ["worker", "main"], default: "worker" } as const;

/** Options that belong to one net backend: given with another, a ConfigurationError names them. */
function onlyFor(device: string, kind: unknown, backend: string, given: readonly string[]): void {
  if (kind === backend || given.length === 0) return;
  throw new ConfigurationError(`${device}: ${given.join(", ")} ${given.length === 1 ? "applies" : "apply"} only to backend=${backend}`);
}

/** Core services from the VM's container; ioevents and the logger have fallbacks for hosts without them. */
function services(container: DependencyContainer) {
  const optional = <T>(token: InjectionToken<T>, fallback: () => T): T =>
    container.isRegistered(token, true) ? container.resolve(token) : fallback();
  return {
    memory: container.resolve(Tokens.GuestMemory),
    ioevents: optional<IoEventRegistry>(Tokens.IoEvents, () => new TrappingIoEvents()),
    logger: optional<Logger>(Tokens.Logger, () => new StderrLogger()),
  };
}

function pciFunction(context: DeviceContext, device: VirtioDevice, options: OptionValues): VirtioPciFunction {
  return new VirtioPciFunction({ name: context.name, device, transport: options.transport as TransportKind, ...services(context.container) });
}

function randomMac(): Mac {
  const b = randomBytes(3);
  return [0x52, 0x54, 0x00, b[0]!, b[1]!, b[2]!];
}

/** kvmtool's `-n` keys, accepted as the names it gives them; giving both spellings of one is an error. */
const KVMTOOL_NET_NAMES: Readonly<Record<string, string>> = { guest_mac: "mac", guest_ip: "address", host_ip: "gateway", tapif: "ifname" };

function withKvmtoolNames(name: string, options: OptionValues): OptionValues {
  const out: OptionValues = { ...options };
  for (const [kvmtool, ours] of Object.entries(KVMTOOL_NET_NAMES)) {
    if (out[kvmtool] === undefined) continue;
    if (out[ours] !== undefined) throw new ConfigurationError(`${name}: ${kvmtool} and ${ours} name the same setting; give one`);
    out[ours] = out[kvmtool];
    delete out[kvmtool];
  }
  return out;
}

function forwardsOf(name: string, text: string) {
  try {
    return parsePasstForwards(text);
  } catch (e) {
    throw new ConfigurationError(`${name}: ${(e as Error).message}`, { cause: e });
  }
}

const deviceTypes: CoreDeviceType[] = [
  {
    type: "virtio-blk",
    description: "virtio block device on a raw disk image",
    options: {
      path: { type: "string", required: true, description: "raw disk image file" },
      readonly: { type: "boolean", default: false, description: "refuse guest writes (VIRTIO_BLK_F_RO)" },
      serial: { type: "string", default: "", description: "serial returned by GET_ID (up to 20 bytes)" },
      dataplane: {
        ...dataplane,
        description: "worker: requests run on a thread of the queue's own, I/O straight into guest memory (when guest RAM is memfd-backed); main: on the JS thread",
      },
      poll: {
        type: "number",
        integer: true,
        min: 0,
        max: 1_000_000,
        default: 0,
        description: "dataplane=worker: microseconds the worker polls for the next request before it sleeps (saves a thread wake-up, keeps a CPU busy)",
      },
      transport,
    },
    async create(context, options) {
      const image = await FileImage.open(options.path as string, { readonly: options.readonly as boolean });
      const blk = new VirtioBlk(image, {
        serial: options.serial as string,
        dataplane: options.dataplane as "worker" | "main",
        pollMicros: options.poll as number,
      });
      return pciFunction(context, blk, options);
    },
  },
  {
    type: "virtio-net",
    description: "virtio network device linked to another VM through a Unix socket, to a host tap interface, or to passt (user-mode networking)",
    options: {
      backend: { type: "enum", values: ["socket", "dgram", "tap", "passt", "user"], description: "where frames go (default socket; user is passt)" },
      mode: { type: "enum", values: ["socket", "dgram", "tap", "passt", "user"], description: "the same as backend (kvmtool's -n mode=)" },
      path: { type: "string", description: "Unix socket path shared by the two VMs (socket backend)" },
      local: { type: "string", description: "this VM's datagram socket path, bound here (dgram backend)" },
      remote: { type: "string", description: "the peer's datagram socket path, where frames go (dgram backend; the peer names them the other way round)" },
      role: {
        type: "enum",
        values: ["auto", "listen", "connect"],
        default: "auto",
        description: "socket role: auto listens unless a peer already listens at path",
      },
      ifname: { type: "string", description: "host tap interface, created when missing (tap backend; default: a kernel-chosen tapN)" },
      forward: { type: "string", description: "passt port forwards, HOST:GUEST/tcp or /udp joined by +, e.g. 8080:80/tcp+5353:53/udp" },
      socket: { type: "string", description: "connect to a passt already listening at this Unix socket instead of starting one (passt backend)" },
      address: { type: "string", description: "IPv4 address passt gives the guest (passt backend; default: the host's)" },
      prefix: { type: "number", integer: true, min: 0, max: 32, description: "its prefix length (passt backend; default: the host's)" },
      gateway: { type: "string", description: "the guest's gateway, mapped to the host (passt backend; default: the host's gateway)" },
      ipv6: { type: "boolean", default: true, description: "IPv6 too: passt's router advertisements and DHCPv6 where the host has IPv6 (passt backend)" },
      guest_mac: { type: "string", description: "kvmtool's name for mac" },
      guest_ip: { type: "string", description: "kvmtool's name for address (passt backend)" },
      host_ip: { type: "string", description: "kvmtool's name for gateway: the address that reaches the host (passt backend)" },
      tapif: { type: "string", description: "kvmtool's name for ifname (tap backend)" },
      mac: { type: "string", description: "station address, e.g. 52:54:00:12:34:56 (default: random 52:54:00:xx:xx:xx)" },
      dataplane: {
        ...dataplane,
        description: "worker: each queue runs on a thread of its own, frames straight between the tap and guest memory (tap backend, memfd-backed guest RAM); main: on the JS thread",
      },
      transport,
    },
    async create(context, rawOptions) {
      const options = withKvmtoolNames(context.name, rawOptions);
      let mac = randomMac();
      if (options.mac !== undefined) {
        const parsed = parseMac(options.mac as string);
        if (!parsed) throw new ConfigurationError(`${context.name}: '${String(options.mac)}' is not a unicast MAC address`);
        mac = parsed;
      }
      const alias = (v: unknown) => (v === "user" ? "passt" : v);
      if (options.backend !== undefined && options.mode !== undefined && alias(options.backend) !== alias(options.mode)) {
        throw new ConfigurationError(`${context.name}: backend=${String(options.backend)} and mode=${String(options.mode)} disagree`);
      }
      const kind = alias(options.backend ?? options.mode ?? "socket");
      const netOptions = { dataplane: options.dataplane as "worker" | "main" };
      const { logger } = services(context.container);
      const passtOnly = ["forward", "socket", "address", "prefix", "gateway"].filter((k) => options[k] !== undefined);
      if (kind !== "passt" && options.ipv6 === false) passtOnly.push("ipv6");
      onlyFor(context.name, kind, "passt", passtOnly);
      onlyFor(context.name, kind, "dgram", ["local", "remote"].filter((k) => options[k] !== undefined));
      if (kind === "passt") {
        if (options.socket !== undefined) {
          const extra = [...passtOnly.filter((k) => k !== "socket"), ...(options.ipv6 === false ? ["ipv6"] : [])];
          if (extra.length) throw new ConfigurationError(`${context.name}: with socket=, passt is configured where it runs (${extra.join(", ")} not applied)`);
          const backend = await SocketNetBackend.open(options.socket as string, "connect", logger);
          return pciFunction(context, new VirtioNet(backend, mac, netOptions), options);
        }
        const backend = await PasstNetBackend.open({
          forwards: options.forward !== undefined ? forwardsOf(context.name, options.forward as string) : [],
          address: options.address as string | undefined,
          prefix: options.prefix as number | undefined,
          gateway: options.gateway as string | undefined,
          ipv6: options.ipv6 as boolean,
          logger,
          label: context.name,
        });
        return pciFunction(context, new VirtioNet(backend, mac, netOptions), options);
      }
      if (kind === "dgram") {
        if (options.local === undefined || options.remote === undefined) {
          throw new ConfigurationError(`${context.name}: backend=dgram needs local=<this VM's socket path> and remote=<the peer's>`);
        }
        const backend = DgramNetBackend.open(options.local as string, options.remote as string, { logger, label: context.name });
        return pciFunction(context, new VirtioNet(backend, mac, netOptions), options);
      }
      if (kind === "tap") {
        const backend = TapNetBackend.open((options.ifname as string | undefined) ?? "", { logger, label: context.name });
        return pciFunction(context, new VirtioNet(backend, mac, netOptions), options);
      }
      if (!options.path) throw new ConfigurationError(`${context.name}: backend=socket needs path=<unix socket>`);
      const backend = await SocketNetBackend.open(options.path as string, options.role as SocketMode, logger);
      return pciFunction(context, new VirtioNet(backend, mac, netOptions), options);
    },
  },
  {
    type: "virtio-console",
    description: "virtio console (one port) on stdio or a Unix socket",
    options: {
      backend: { type: "enum", values: ["stdio", "socket"], default: "stdio", description: "host end of the console" },
      path: { type: "string", description: "Unix socket path to listen on (socket backend)" },
      transport,
    },
    async create(context, options) {
      let channel;
      if (options.backend === "socket") {
        if (!options.path) throw new ConfigurationError(`${context.name}: backend=socket needs path=<unix socket>`);
        channel = await UnixServerChannel.listen(options.path as string);
      } else {
        channel = stdioChannel();
      }
      return pciFunction(context, new VirtioConsole(channel), options);
    },
  },
  {
    type: "virtio-rng",
    description: "virtio entropy device fed by the host CSPRNG",
    options: {
      dataplane: {
        ...dataplane,
        description: "worker: requests are filled on a thread of the queue's own, straight in guest memory (when guest RAM is memfd-backed); main: on the JS thread",
      },
      transport,
    },
    create(context, options) {
      return pciFunction(context, new VirtioRng({ dataplane: options.dataplane as "worker" | "main" }), options);
    },
  },
];

/** The virtio device plugin: virtio-blk, virtio-net, virtio-console and virtio-rng on PCI. */
export const virtioPlugin = definePlugin({
  name: VIRTIO_PLUGIN_NAME,
  version: "0.1.0",
  apiVersion: PLUGIN_API_VERSION,
  description: "virtio-pci devices: blk, net, console, rng",
  register(container) {
    for (const type of deviceTypes) registerDeviceType(container, VIRTIO_PLUGIN_NAME, type);
  },
});

export default virtioPlugin;
