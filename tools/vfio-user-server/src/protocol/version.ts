import { PAGE_SIZE, PROTOCOL_MAJOR, PROTOCOL_MINOR } from "./constants.js";
import { invalid } from "./errors.js";
import { PayloadReader, PayloadWriter } from "./payload.js";

/** The capabilities of one side, after defaults for what it left out. */
export interface Capabilities {
  /** Fds the side can receive in one message (default 1). */
  readonly maxMsgFds: number;
  /** Largest `count` of one REGION/DMA_READ/WRITE it accepts (default 1 MiB). */
  readonly maxDataXferSize: number;
  /** DMA windows valid at once (default 65535). */
  readonly maxDmaMaps: number;
  /** Page sizes of DMA maps, or'ed (default 4 KiB only). */
  readonly pgsizes: number;
}

export const DEFAULT_CAPABILITIES: Capabilities = {
  maxMsgFds: 1,
  maxDataXferSize: 1 << 20,
  maxDmaMaps: 65535,
  pgsizes: PAGE_SIZE,
};

/** What this server announces. */
export const SERVER_CAPABILITIES: Capabilities = {
  maxMsgFds: 16,
  maxDataXferSize: 1 << 20,
  maxDmaMaps: 256,
  pgsizes: PAGE_SIZE,
};

export interface VersionProposal {
  readonly major: number;
  readonly minor: number;
  readonly capabilities: Capabilities;
}

/** Parses a VERSION request: major, minor, then optional NUL-terminated UTF-8 JSON. Malformed JSON is EINVAL. */
export function parseVersion(payload: Uint8Array): VersionProposal {
  const reader = new PayloadReader(payload, "VERSION").requireAtLeast(4);
  const major = reader.u16(0);
  const minor = reader.u16(2);
  let data = payload.subarray(4);
  if (data.length > 0 && data[data.length - 1] === 0) data = data.subarray(0, data.length - 1);
  if (data.length === 0) return { major, minor, capabilities: DEFAULT_CAPABILITIES };
  if (data.includes(0)) throw invalid("VERSION: the version data has a NUL before its end");
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(data));
  } catch (e) {
    throw invalid(`VERSION: the version data is not JSON (${(e as Error).message})`);
  }
  if (!isObject(json)) throw invalid("VERSION: the version data is not a JSON object");
  const caps = json["capabilities"];
  if (caps === undefined) return { major, minor, capabilities: DEFAULT_CAPABILITIES };
  if (!isObject(caps)) throw invalid("VERSION: capabilities is not an object");
  return { major, minor, capabilities: parseCapabilities(caps) };
}

function parseCapabilities(caps: Record<string, unknown>): Capabilities {
  const integer = (name: string, fallback: number, min: number): number => {
    const value = caps[name];
    if (value === undefined) return fallback;
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
      throw invalid(`VERSION: capability ${name} must be an integer of at least ${min}, not ${JSON.stringify(value)}`);
    }
    return value;
  };
  const twin = caps["twin_socket"];
  if (twin !== undefined && !isObject(twin)) throw invalid("VERSION: capability twin_socket is not an object");
  const multi = caps["write_multiple"];
  if (multi !== undefined && typeof multi !== "boolean") throw invalid("VERSION: capability write_multiple is not a boolean");
  return {
    maxMsgFds: integer("max_msg_fds", DEFAULT_CAPABILITIES.maxMsgFds, 0),
    maxDataXferSize: integer("max_data_xfer_size", DEFAULT_CAPABILITIES.maxDataXferSize, 1),
    maxDmaMaps: integer("max_dma_maps", DEFAULT_CAPABILITIES.maxDmaMaps, 1),
    pgsizes: pageSizes(caps["pgsizes"]),
  };
}

/**
 * The server's VERSION reply payload: the proposed major (the caller has checked it), the lower of the two minors,
 * and this server's capabilities (twin sockets and write_multiple are not offered, so they are left out).
 */
export function encodeVersionReply(proposal: VersionProposal, ours: Capabilities = SERVER_CAPABILITIES): Uint8Array {
  const json = JSON.stringify({
    capabilities: {
      max_msg_fds: ours.maxMsgFds,
      max_data_xfer_size: ours.maxDataXferSize,
      pgsizes: ours.pgsizes,
      max_dma_maps: ours.maxDmaMaps,
    },
  });
  const text = new TextEncoder().encode(json);
  return new PayloadWriter(4 + text.length + 1)
    .u16(0, PROTOCOL_MAJOR)
    .u16(2, Math.min(proposal.minor, PROTOCOL_MINOR))
    .set(4, text).bytes;
}

/** A bit mask that may use bit 63, so beyond exact doubles: any non-negative whole number. */
function pageSizes(value: unknown): number {
  if (value === undefined) return DEFAULT_CAPABILITIES.pgsizes;
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0) {
    throw invalid(`VERSION: capability pgsizes must be a non-negative integer, not ${JSON.stringify(value)}`);
  }
  return value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
