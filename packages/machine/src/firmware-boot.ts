import type { AddressSpace, GuestMemory, MemoryMapper, Registration } from "@vmm/core";
import type { GuestRam } from "@vmm/kvm-native";
import type { Q35HostBridge } from "@vmm/pci";
import { DEBUGCON_PORT, debugconHandler } from "./devices/debugcon.js";
import { installFwCfg, type FwCfg } from "./devices/fw-cfg/index.js";
import type { PlatformDescription } from "./firmware/platform.js";
import type { LoadedImage } from "./loaders/image.js";
import { mapFirmware, resetVectorEntry, type MappedFirmware } from "./loaders/firmware.js";
import { SHADOW, ShadowRam } from "./x86_64/shadow-ram.js";
import type { MemoryMap, RamBlock } from "./x86_64/memory-map.js";

/** The memslot that takes low RAM above 1 MiB when 0xC0000-0xFFFFF is left to the PAM shadow (RAM blocks use 0 and 1). */
const LOW_RAM_ABOVE_SHADOW_SLOT = 2;

/**
 * Memslots for one RAM block: the whole block, or, for low RAM under firmware, the block without
 * 0xC0000-0xFFFFF (which ShadowRam maps as the PAM registers say).
 */
export function ramSlots(block: RamBlock, slot: number, ram: GuestRam, firmware: boolean): Array<{ slot: number; guestPhysAddr: number; memory: Uint8Array | GuestRam }> {
  if (!firmware || block.gpa !== 0) return [{ slot, guestPhysAddr: block.gpa, memory: ram }];
  const low = ram.chunks[0]!;
  if (low.length !== block.size) throw new RangeError("low RAM must be one chunk to leave room for the BIOS shadow");
  return [
    { slot, guestPhysAddr: 0, memory: low.subarray(0, SHADOW.base) },
    { slot: LOW_RAM_ABOVE_SHADOW_SLOT, guestPhysAddr: SHADOW.end, memory: low.subarray(SHADOW.end) },
  ];
}

export interface FirmwareBootOptions {
  readonly image: Uint8Array;
  readonly memory: GuestMemory;
  readonly mapper: MemoryMapper;
  readonly pio: AddressSpace;
  readonly mmio: AddressSpace;
  readonly bridge: Q35HostBridge;
  readonly cpus: number;
  readonly memoryMap: MemoryMap;
  readonly platform: () => PlatformDescription;
  /** The debug console's bytes (port 0x402); discarded when absent. */
  readonly debugcon?: (bytes: Uint8Array) => void;
  readonly bootOrder?: () => readonly string[];
}

/**
 * What a firmware boot adds to the machine: the image at the top of 4 GiB, its last 128 KiB seen below 1 MiB
 * through the host bridge's PAM registers (ShadowRam), fw_cfg with the machine's tables, and the debug console.
 * vCPU 0 starts at the reset vector; the others wait for INIT/SIPI.
 */
export class FirmwareBoot {
  readonly firmware: MappedFirmware;
  readonly shadow: ShadowRam;
  readonly fwCfg: FwCfg;
  private readonly registrations: Registration[];

  constructor(o: FirmwareBootOptions) {
    this.firmware = mapFirmware(o.mapper, o.image);
    this.shadow = new ShadowRam(o.memory.view(SHADOW.base, SHADOW.end - SHADOW.base), this.firmware.legacy, o.mapper, o.mmio);
    this.shadow.apply(o.bridge.pam);
    const fw = installFwCfg({
      memory: o.memory,
      pio: o.pio,
      cpus: o.cpus,
      ramBytes: o.memoryMap.ramBytes,
      e820: o.memoryMap.e820,
      platform: o.platform,
      ecamEnabled: () => o.bridge.ecamWindow.enabled,
      bootOrder: o.bootOrder,
    });
    this.fwCfg = fw.fwCfg;
    this.registrations = [...fw.registrations, o.pio.register(DEBUGCON_PORT, 1, "debugcon", debugconHandler(o.debugcon ?? (() => {})))];
  }

  /** The boot: vCPU 0 at F000:FFF0. */
  loaded(): LoadedImage {
    return {
      kind: "raw",
      entry: resetVectorEntry(),
      segments: [{ gpa: this.firmware.base, size: this.firmware.bytes.length }],
      note: `firmware (${this.firmware.bytes.length / 1024} KiB) at 0x${this.firmware.base.toString(16)}, entered at the reset vector`,
    };
  }

  close(): void {
    for (const r of this.registrations) r.unregister();
    this.shadow.close();
    this.firmware.region.remove();
  }
}
