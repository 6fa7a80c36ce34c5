// VFIO_USER_VERSION: the client proposes version 0.1 and its capabilities (JSON after the version numbers); the
// server answers with the same major, a minor no higher, and its own limits, which bound what the client sends.
import { MAX_FDS_PER_MESSAGE } from "@vmm/host-io";
import { VfioUserProtocolError } from "./errors.js";
import { concat, VfioUserVersion } from "./protocol.js";

export const VFIO_USER_MAJOR = 0;
export const VFIO_USER_MINOR = 1;

/** The spec's defaults for a capability the server leaves out. */
const DEFAULTS = { maxMsgFds: 1, maxDataXferSize: 1024 * 1024, maxDmaMaps: 65535, pgsizes: 4096n } as const;

/** What the server announced, with the spec's defaults for what it left out. */
export interface VfioUserServerLimits {
  readonly major: number;
  readonly minor: number;
  /** fds the server takes in one message (SET_IRQS eventfds are split to this). */
  readonly maxMsgFds: number;
  /** The largest REGION_READ/WRITE count the server takes (accesses are split to this). */
  readonly maxDataXferSize: number;
  /** DMA_MAP windows the server holds at once. */
  readonly maxDmaMaps: number;
  /** Page sizes the server's DMA mappings use, a bitmap. */
  readonly pgsizes: bigint;
  /** The smallest of them: DMA_MAP addresses and sizes are multiples of it. */
  readonly minPageSize: number;
}

/** What this client tells the server about itself. */
export interface VfioUserClientCapabilities {
  /** fds this client takes in one message. */
  readonly maxMsgFds: number;
  /** The largest DMA_READ/WRITE count this client serves. */
  readonly maxDataXferSize: number;
}

export function encodeVersionProposal(own: VfioUserClientCapabilities): Uint8Array {
  const json = JSON.stringify({
    capabilities: { max_msg_fds: own.maxMsgFds, max_data_xfer_size: own.maxDataXferSize, pgsizes: Number(DEFAULTS.pgsizes), max_dma_maps: DEFAULTS.maxDmaMaps },
  });
  return concat(VfioUserVersion.encode({ major: VFIO_USER_MAJOR, minor: VFIO_USER_MINOR }), new TextEncoder().encode(json), new Uint8Array(1));
}

/** Checks the server's VERSION reply; throws VfioUserProtocolError (naming `server`) for one this client cannot work with. */
export function parseVersionReply(payload: Uint8Array, server: string): VfioUserServerLimits {
  const refuse = (why: string) => new VfioUserProtocolError(`${server}: ${why}`);
  if (payload.length < VfioUserVersion.size) throw refuse(`the VERSION reply has ${payload.length} bytes, fewer than the version numbers`);
  const { major, minor } = VfioUserVersion.decode(payload);
  if (major !== VFIO_USER_MAJOR) throw refuse(`speaks vfio-user ${major}.${minor}; this client speaks major version ${VFIO_USER_MAJOR} only`);
  if (minor > VFIO_USER_MINOR) throw refuse(`answered minor version ${minor}, above the ${VFIO_USER_MINOR} this client proposed`);
  const capabilities = parseCapabilities(payload.subarray(VfioUserVersion.size), refuse);
  if ("migration" in capabilities) throw refuse("requires live migration (capability \"migration\"), which this client does not support");
  const twin = capabilities["twin_socket"];
  if (typeof twin === "object" && twin !== null && (twin as Record<string, unknown>)["supported"] === true) {
    throw refuse("enabled twin-socket mode, which this client did not propose");
  }
  const number = (name: string, fallback: number, min: number, max: number): number => {
    const value = capabilities[name];
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) throw refuse(`capability ${name} is ${JSON.stringify(value)}, not an integer >= ${min}`);
    return Math.min(value, max);
  };
  const maxMsgFds = number("max_msg_fds", DEFAULTS.maxMsgFds, 0, MAX_FDS_PER_MESSAGE);
  const maxDataXferSize = number("max_data_xfer_size", DEFAULTS.maxDataXferSize, 1, 0x7fff_ffff);
  const maxDmaMaps = number("max_dma_maps", DEFAULTS.maxDmaMaps, 1, 0xffff_ffff);
  const pgsizesValue = capabilities["pgsizes"];
  let pgsizes: bigint = DEFAULTS.pgsizes;
  if (pgsizesValue !== undefined) {
    if (typeof pgsizesValue !== "number" || !Number.isInteger(pgsizesValue) || pgsizesValue <= 0 || pgsizesValue >= 2 ** 64) {
      throw refuse(`capability pgsizes is ${JSON.stringify(pgsizesValue)}, not a bitmap of page sizes`);
    }
    pgsizes = BigInt(pgsizesValue);
  }
  const lowest = pgsizes & -pgsizes;
  if (lowest > BigInt(Number.MAX_SAFE_INTEGER)) throw refuse(`capability pgsizes 0x${pgsizes.toString(16)} has no page size this client can use`);
  return { major, minor, maxMsgFds, maxDataXferSize, maxDmaMaps, pgsizes, minPageSize: Number(lowest) };
}

function parseCapabilities(data: Uint8Array, refuse: (why: string) => Error): Record<string, unknown> {
  let end = data.length;
  while (end > 0 && data[end - 1] === 0) end--;
  if (end === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data.subarray(0, end)));
  } catch (error) {
    throw refuse(`the VERSION reply's data is not UTF-8 JSON (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw refuse("the VERSION reply's JSON is not an object");
  const capabilities = (parsed as Record<string, unknown>)["capabilities"];
  if (capabilities === undefined) return {};
  if (typeof capabilities !== "object" || capabilities === null || Array.isArray(capabilities)) throw refuse("the VERSION reply's capabilities are not an object");
  return capabilities as Record<string, unknown>;
}
