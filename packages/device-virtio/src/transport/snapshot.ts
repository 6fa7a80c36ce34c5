// The saved state of a virtio transport (layout version 1) as JSON-safe data, and its checked decoding. The
// transport gathers and applies the parts; nothing here touches a device.
import { decodeBytes, encodeBytes, SnapshotError, stateData, stateInt, type DeviceState, type StateValue } from "@vmm/core";
import { NO_VECTOR } from "../constants.js";
import type { SavedQueue } from "../virtqueue/split-ring.js";

export const TRANSPORT_STATE_VERSION = 1;

/** What a transport's state holds, decoded. */
export interface TransportStateParts {
  readonly status: number;
  readonly deviceFeatureSelect: number;
  readonly driverFeatureSelect: number;
  readonly driverFeatures: bigint;
  readonly configVector: number;
  readonly configGeneration: number;
  readonly queueSelect: number;
  readonly legacy: boolean;
  readonly isr: number;
  /** The device was running (DRIVER_OK, or a legacy driver's early kick): it is activated again. */
  readonly running: boolean;
  /** Queues notified and not served yet (while quiesced or while Bus Master Enable was clear). */
  readonly kicks: readonly number[];
  readonly queues: readonly SavedQueue[];
  readonly device: DeviceState | undefined;
}

/** What the restoring transport is: a state of another device type, features, config or queues is refused. */
export interface TransportIdentity {
  readonly name: string;
  readonly type: number;
  readonly offered: bigint;
  readonly config: Uint8Array;
  readonly queueSizes: readonly number[];
  /** MSI-X vectors: a vector at or past it is invalid (NO_VECTOR aside). */
  readonly vectors: number;
}

type Data = { readonly [key: string]: StateValue };

const U32 = 0xffff_ffff;

export function encodeTransportState(identity: TransportIdentity, p: TransportStateParts): DeviceState {
  const words = (v: bigint) => [Number(v & 0xffff_ffffn), Number((v >> 32n) & 0xffff_ffffn)];
  return {
    version: TRANSPORT_STATE_VERSION,
    data: {
      type: identity.type,
      offered: words(identity.offered),
      config: encodeBytes(identity.config),
      queueSizes: [...identity.queueSizes],
      status: p.status,
      deviceFeatureSelect: p.deviceFeatureSelect,
      driverFeatureSelect: p.driverFeatureSelect,
      driverFeatures: words(p.driverFeatures),
      configVector: p.configVector,
      configGeneration: p.configGeneration,
      queueSelect: p.queueSelect,
      legacy: p.legacy,
      isr: p.isr,
      running: p.running,
      kicks: [...p.kicks],
      queues: p.queues.map((q) => ({ ...q, desc: [...q.desc], driver: [...q.driver], device: [...q.device] })),
      device: p.device ? { version: p.device.version, data: p.device.data } : null,
    },
  };
}

/** Decodes and checks a transport state against the transport restoring it; throws SnapshotError only. */
export function decodeTransportState(state: DeviceState | undefined, id: TransportIdentity): TransportStateParts {
  const what = id.name;
  const d = stateData(state, what, TRANSPORT_STATE_VERSION);
  const sizes = d.queueSizes;
  const offered = words64(d, "offered", what);
  if (d.type !== id.type || offered !== id.offered || !sameNumbers(sizes, id.queueSizes)) {
    throw new SnapshotError(
      `${what}: saved from virtio device type ${JSON.stringify(d.type)} with features 0x${offered.toString(16)} and queues ${JSON.stringify(sizes)}, ` +
        `this is type ${id.type} with features 0x${id.offered.toString(16)} and queues ${JSON.stringify(id.queueSizes)}`,
    );
  }
  const config = decodeBytes(d.config, `${what}: device configuration`);
  if (config.length !== id.config.length || config.some((b, i) => b !== id.config[i])) {
    throw new SnapshotError(`${what}: the saved device configuration differs from this device's (another disk size, MAC or option)`);
  }
  const vector = (v: number, field: string) => {
    if (v !== NO_VECTOR && v >= id.vectors) throw new SnapshotError(`${what}: ${field} ${v} is not an MSI-X vector of this device`);
    return v;
  };
  const queuesValue = d.queues;
  if (!Array.isArray(queuesValue) || queuesValue.length !== id.queueSizes.length) throw new SnapshotError(`${what}: saved queues do not match`);
  const queues = queuesValue.map((v: StateValue, i: number) => decodeQueue(v, `${what}: queue ${i}`, id.queueSizes[i]!, (n) => vector(n, `queue ${i} vector`)));
  const kicksValue = d.kicks;
  if (!Array.isArray(kicksValue)) throw new SnapshotError(`${what}: kicks must be a list`);
  const kicks = kicksValue.map((k: StateValue) => {
    if (typeof k !== "number" || !Number.isInteger(k) || k < 0 || k >= id.queueSizes.length) throw new SnapshotError(`${what}: kick of no queue: ${JSON.stringify(k)}`);
    return k;
  });
  let device: DeviceState | undefined;
  if (d.device !== null) {
    const dev = object(d.device, `${what}: device state`);
    device = { version: stateInt(dev, "version", `${what}: device state`, 0, Number.MAX_SAFE_INTEGER), data: dev.data ?? null };
  }
  return {
    status: stateInt(d, "status", what, 0, 0xff),
    deviceFeatureSelect: stateInt(d, "deviceFeatureSelect", what, 0, U32),
    driverFeatureSelect: stateInt(d, "driverFeatureSelect", what, 0, U32),
    driverFeatures: words64(d, "driverFeatures", what),
    configVector: vector(stateInt(d, "configVector", what, 0, 0xffff), "config vector"),
    configGeneration: stateInt(d, "configGeneration", what, 0, 0xff),
    queueSelect: stateInt(d, "queueSelect", what, 0, 0xffff),
    legacy: bool(d, "legacy", what),
    isr: stateInt(d, "isr", what, 0, 3),
    running: bool(d, "running", what),
    kicks,
    queues,
    device,
  };
}

function decodeQueue(value: StateValue, what: string, maxSize: number, vector: (v: number) => number): SavedQueue {
  const q = object(value, what);
  const size = stateInt(q, "size", what, 1, maxSize);
  if ((size & (size - 1)) !== 0) throw new SnapshotError(`${what}: size ${size} is not a power of two`);
  const pair = (key: string): [number, number] => {
    const v = q[key];
    if (!Array.isArray(v) || v.length !== 2) throw new SnapshotError(`${what}: ${key} must be two 32-bit words`);
    const words = { lo: v[0], hi: v[1] };
    return [stateInt(words, "lo", `${what}: ${key}`, 0, U32), stateInt(words, "hi", `${what}: ${key}`, 0, U32)];
  };
  return {
    size,
    enabled: bool(q, "enabled", what),
    vector: vector(stateInt(q, "vector", what, 0, 0xffff)),
    desc: pair("desc"),
    driver: pair("driver"),
    device: pair("device"),
    nextAvail: stateInt(q, "nextAvail", what, 0, 0xffff),
    usedIdx: stateInt(q, "usedIdx", what, 0, 0xffff),
    signalledUsed: stateInt(q, "signalledUsed", what, 0, 0xffff),
  };
}

function words64(d: Data, key: string, what: string): bigint {
  const v = d[key];
  if (!Array.isArray(v) || v.length !== 2) throw new SnapshotError(`${what}: ${key} must be two 32-bit words`);
  const w = { lo: v[0], hi: v[1] };
  return (BigInt(stateInt(w, "hi", `${what}: ${key}`, 0, U32)) << 32n) | BigInt(stateInt(w, "lo", `${what}: ${key}`, 0, U32));
}

function bool(d: Data, key: string, what: string): boolean {
  const v = d[key];
  if (typeof v !== "boolean") throw new SnapshotError(`${what}: ${key} must be a boolean`);
  return v;
}

function object(value: StateValue | undefined, what: string): Data {
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new SnapshotError(`${what}: not an object`);
  return value as Data;
}

function sameNumbers(a: StateValue | undefined, b: readonly number[]): boolean {
  return Array.isArray(a) && a.length === b.length && a.every((v: StateValue, i: number) => v === b[i]);
}
