import { type IoHandler, type RegisterSpec, RegisterTable, readLE, type SmallAccessSize } from "@vmm/core";
import { NO_VECTOR } from "../constants.js";
import type { VirtioTransport } from "./state.js";

/** Legacy queues: 4 KiB pages, used ring aligned to 4096 (virtio 1.x, 4.1.5.1.3.1 / 2.7.2 legacy layout). */
const LEGACY_PAGE = 4096;
const LEGACY_ALIGN = 4096;
/** Offset of the queue-notify register; the ioeventfd listens here. */
export const LEGACY_NOTIFY = 0x10;
/** Size of the legacy I/O BAR. */
export const LEGACY_BAR_SIZE = 0x100;

type T = VirtioTransport;

/** The legacy header (virtio 1.x, 4.1.4.8), before the MSI-X fields. */
const LEGACY_REGISTERS: readonly RegisterSpec<T>[] = [
  { name: "host_features", offset: 0x00, width: 4, read: (t) => t.deviceFeatureWord(0) },
  {
    name: "guest_features",
    offset: 0x04,
    width: 4,
    read: (t) => t.driverFeatureWord(0),
    write: (t, v) => t.writeLegacyFeatures(v),
  },
  {
    name: "queue_address",
    offset: 0x08,
    width: 4,
    read: (t) => {
      const q = t.selectedQueue;
      return q?.enabled ? Math.floor(q.desc / LEGACY_PAGE) : 0;
    },
    write: (t, pfn) => {
      const q = t.selectedQueue;
      if (!q) return;
      if (pfn === 0) return t.releaseQueue(q); // a legacy driver releases a queue by writing 0
      if (q.enabled) return;
      t.legacy = true;
      q.size = q.maxSize; // legacy queues always have the device's size
      q.desc = pfn * LEGACY_PAGE;
      q.driver = q.desc + 16 * q.size;
      q.device = Math.ceil((q.driver + 4 + 2 * q.size + 2) / LEGACY_ALIGN) * LEGACY_ALIGN;
      q.enabled = true;
      t.queueEnabled(q);
    },
  },
  { name: "queue_size", offset: 0x0c, width: 2, read: (t) => t.selectedQueue?.maxSize ?? 0 },
  { name: "queue_select", offset: 0x0e, width: 2, field: "queueSelect" },
  { name: "queue_notify", offset: LEGACY_NOTIFY, width: 2, read: () => 0, write: (t, v) => t.notify(v) },
  {
    name: "device_status",
    offset: 0x12,
    width: 1,
    read: (t) => t.status,
    write: (t, v) => {
      t.legacy = v !== 0;
      t.writeStatus(v);
    },
  },
];

/** Present only while MSI-X is enabled; the device configuration moves from 0x14 to 0x18. */
const LEGACY_MSIX_REGISTERS: readonly RegisterSpec<T>[] = [
  { name: "config_vector", offset: 0x14, width: 2, read: (t) => t.configVector, write: (t, v) => void (t.configVector = t.validVector(v)) },
  {
    name: "queue_vector",
    offset: 0x16,
    width: 2,
    read: (t) => t.selectedQueue?.vector ?? NO_VECTOR,
    write: (t, v) => {
      const q = t.selectedQueue;
      if (q) t.setQueueVector(q, v);
    },
  },
];

const header = new RegisterTable<T>(LEGACY_REGISTERS, { size: 0x14 });
const msixHeader = new RegisterTable<T>([...LEGACY_REGISTERS, ...LEGACY_MSIX_REGISTERS], { size: 0x18 });
const ISR_OFFSET = 0x13;

/** The legacy I/O BAR: header, ISR (read-to-clear) and the device configuration after the header. */
export function legacyBarHandler(t: T): IoHandler {
  const layout = () => (t.interrupts.msixEnabled() ? msixHeader : header);
  return {
    read(offset: number, size: SmallAccessSize): number {
      const table = layout();
      if (offset === ISR_OFFSET && size === 1) return t.isr.readAndClear();
      if (offset >= table.size) return readLE(t.device.config, offset - table.size, size);
      if (offset + size > table.size) return 0;
      return table.read(t, offset, size);
    },
    write(offset: number, size: SmallAccessSize, value: number): void {
      const table = layout();
      if (offset === LEGACY_NOTIFY) return t.notify(value & 0xffff); // any width notifies
      if (offset >= table.size) {
        if (offset - table.size + size <= t.device.config.length) t.device.writeConfig(offset - table.size, size, value);
        return;
      }
      if (offset + size > table.size || offset === ISR_OFFSET) return;
      table.write(t, offset, size, value);
    },
  };
}
