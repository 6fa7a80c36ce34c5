import { type IoHandler, type PciCapability, readLE, type SmallAccessSize } from "@vmm/core";
import { COMMON_CFG_SIZE, commonCfg } from "./common-cfg.js";
import type { Doorbell } from "./notify.js";
import type { VirtioTransport } from "./state.js";

/** virtio_pci_cap.cfg_type values (virtio 1.x, 4.1.4). */
export const CfgType = { COMMON: 1, NOTIFY: 2, ISR: 3, DEVICE: 4, PCI: 5 } as const;
export const VENDOR_CAPABILITY_ID = 0x09;

/**
 * Where the modern structures live in the modern memory BAR. Each has its own 4 KiB page so that a future fast
 * path can map or trap them separately.
 */
export const ModernLayout = {
  COMMON: 0x0000,
  ISR: 0x1000,
  DEVICE: 0x2000,
  NOTIFY: 0x3000,
  /** Distinct doorbell per queue: queue_notify_off (= the queue index) times this. */
  NOTIFY_MULTIPLIER: 4,
  BAR_SIZE: 0x4000,
} as const;

/** Body of a struct virtio_pci_cap after the 2-byte header (cap_len covers the header too). */
function vendorCap(cfgType: number, bar: number, offset: number, length: number, extra = 0): Uint8Array {
  const body = new Uint8Array(14 + extra);
  const v = new DataView(body.buffer);
  v.setUint8(0, 16 + extra); // cap_len
  v.setUint8(1, cfgType);
  v.setUint8(2, bar);
  v.setUint32(6, offset, true);
  v.setUint32(10, length, true);
  return body;
}

/** The four vendor capabilities describing the modern BAR (common, notify, ISR, device). */
export function modernCapabilities(bar: number, queues: number, deviceConfigSize: number): PciCapability[] {
  const notify = vendorCap(CfgType.NOTIFY, bar, ModernLayout.NOTIFY, Math.max(queues, 1) * ModernLayout.NOTIFY_MULTIPLIER, 4);
  new DataView(notify.buffer).setUint32(14, ModernLayout.NOTIFY_MULTIPLIER, true);
  const caps = [
    vendorCap(CfgType.COMMON, bar, ModernLayout.COMMON, COMMON_CFG_SIZE),
    notify,
    vendorCap(CfgType.ISR, bar, ModernLayout.ISR, 1),
  ];
  if (deviceConfigSize > 0) caps.push(vendorCap(CfgType.DEVICE, bar, ModernLayout.DEVICE, deviceConfigSize));
  return caps.map((body) => ({ id: VENDOR_CAPABILITY_ID, body }));
}

/** Doorbells of the modern BAR: one 4-byte slot per queue, any access width. */
export function modernDoorbells(queues: number): Doorbell[] {
  return Array.from({ length: queues }, (_, q) => ({
    queue: q,
    offset: ModernLayout.NOTIFY + q * ModernLayout.NOTIFY_MULTIPLIER,
    size: 0 as const,
  }));
}

/** Serves the modern BAR: common configuration, ISR (read-to-clear), device configuration and doorbells. */
export function modernBarHandler(t: VirtioTransport): IoHandler {
  const deviceSize = t.device.config.length;
  const notifySize = t.queues.length * ModernLayout.NOTIFY_MULTIPLIER;
  return {
    read(offset: number, size: SmallAccessSize): number {
      if (offset < ModernLayout.COMMON + COMMON_CFG_SIZE) {
        return offset + size <= COMMON_CFG_SIZE ? commonCfg.read(t, offset, size) : 0;
      }
      if (offset === ModernLayout.ISR) return t.isr.readAndClear();
      if (offset >= ModernLayout.DEVICE && offset + size <= ModernLayout.DEVICE + deviceSize) {
        return readLE(t.device.config, offset - ModernLayout.DEVICE, size);
      }
      return 0;
    },
    write(offset: number, size: SmallAccessSize, value: number): void {
      if (offset < ModernLayout.COMMON + COMMON_CFG_SIZE) {
        if (offset + size <= COMMON_CFG_SIZE) commonCfg.write(t, offset, size, value);
        return;
      }
      if (offset >= ModernLayout.DEVICE && offset + size <= ModernLayout.DEVICE + deviceSize) {
        return t.device.writeConfig(offset - ModernLayout.DEVICE, size, value);
      }
      if (offset >= ModernLayout.NOTIFY && offset < ModernLayout.NOTIFY + notifySize) {
        // Without VIRTIO_F_NOTIFICATION_DATA the doorbell's address says which queue; the value is its index.
        t.notify(Math.floor((offset - ModernLayout.NOTIFY) / ModernLayout.NOTIFY_MULTIPLIER));
      }
    },
  };
}
