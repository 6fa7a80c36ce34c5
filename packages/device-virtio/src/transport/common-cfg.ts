import { type RegisterSpec, RegisterTable, split64 } from "@vmm/core";
import { NO_VECTOR } from "../constants.js";
import type { RingField, SplitQueue } from "../virtqueue/split-ring.js";
import type { VirtioTransport } from "./state.js";

/** Size of struct virtio_pci_common_cfg (virtio 1.x, 4.1.4.3), without the 1.2 notify-data/reset fields. */
export const COMMON_CFG_SIZE = 0x38;

type T = VirtioTransport;

/** The selected queue, or undefined when queue_select names no queue (its fields then read 0). */
const sel = (t: T): SplitQueue | undefined => t.selectedQueue;
/** Queue layout fields may only change while the queue is disabled (4.1.4.3.2). */
const programmable = (t: T): SplitQueue | undefined => {
  const q = t.selectedQueue;
  return q && !q.enabled ? q : undefined;
};

/** A 64-bit queue address field as two 32-bit halves (the driver may use either width: 4.1.3.1). */
const address = (name: string, offset: number, field: RingField): RegisterSpec<T>[] =>
  split64<T>(name, offset, {
    read: (t, hi) => sel(t)?.addressWord(field, hi) ?? 0,
    write: (t, hi, v) => void programmable(t)?.setAddressWord(field, hi, v),
  });

export const COMMON_CFG_REGISTERS: readonly RegisterSpec<T>[] = [
  { name: "device_feature_select", offset: 0x00, width: 4, field: "deviceFeatureSelect" },
  { name: "device_feature", offset: 0x04, width: 4, read: (t) => t.deviceFeatureWord(t.deviceFeatureSelect) },
  { name: "driver_feature_select", offset: 0x08, width: 4, field: "driverFeatureSelect" },
  {
    name: "driver_feature",
    offset: 0x0c,
    width: 4,
    read: (t) => t.driverFeatureWord(t.driverFeatureSelect),
    write: (t, v) => {
      t.legacy = false;
      t.writeDriverFeatureWord(t.driverFeatureSelect, v);
    },
  },
  {
    name: "config_msix_vector",
    offset: 0x10,
    width: 2,
    read: (t) => t.configVector,
    write: (t, v) => void (t.configVector = t.validVector(v)),
  },
  { name: "num_queues", offset: 0x12, width: 2, read: (t) => t.queues.length },
  {
    name: "device_status",
    offset: 0x14,
    width: 1,
    read: (t) => t.status,
    write: (t, v) => {
      t.legacy = false;
      t.writeStatus(v);
    },
  },
  { name: "config_generation", offset: 0x15, width: 1, field: "configGeneration", access: "ro" },
  { name: "queue_select", offset: 0x16, width: 2, field: "queueSelect" },
  {
    name: "queue_size",
    offset: 0x18,
    width: 2,
    read: (t) => sel(t)?.size ?? 0,
    // A smaller power of two is honoured; other values are refused and the old size stays (4.1.4.3.2).
    write: (t, v) => {
      const q = programmable(t);
      if (q && v > 0 && v <= q.maxSize && (v & (v - 1)) === 0) q.size = v;
    },
  },
  {
    name: "queue_msix_vector",
    offset: 0x1a,
    width: 2,
    read: (t) => sel(t)?.vector ?? NO_VECTOR,
    write: (t, v) => {
      const q = sel(t);
      if (q) t.setQueueVector(q, v);
    },
  },
  {
    name: "queue_enable",
    offset: 0x1c,
    width: 2,
    read: (t) => (sel(t)?.enabled ? 1 : 0),
    // Writing 0 is not allowed to the driver (4.1.4.3.2); only a reset disables a queue.
    write: (t, v) => {
      const q = sel(t);
      if (!q || v !== 1 || q.enabled) return;
      q.enabled = true;
      t.queueEnabled(q);
    },
  },
  { name: "queue_notify_off", offset: 0x1e, width: 2, read: (t) => (sel(t) ? t.queueSelect : 0) },
  ...address("queue_desc", 0x20, "desc"),
  ...address("queue_driver", 0x28, "driver"),
  ...address("queue_device", 0x30, "device"),
];

/** Byte lanes as the spec allows (any width at any offset): narrow writes merge, unbacked bytes read 0. */
export const commonCfg = new RegisterTable<T>(COMMON_CFG_REGISTERS, { size: COMMON_CFG_SIZE });
