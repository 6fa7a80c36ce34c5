import { type AddressSpace, ConfigurationError, type DeviceState, type IoHandler, type Logger, type MappedRegion, type MemoryMapper, type PciBarWindow, type Registration } from "@vmm/core";
import { PciFunction } from "@vmm/pci";
import type { Display } from "./displays/display.js";
import { encodePng } from "./displays/png.js";
import { VesaScreen } from "./screen.js";
import { type ScreenInfo, encodeScreenInfo, screenInfo } from "./screen-info.js";
import { DAC_PORT_BASE, DAC_PORT_COUNT } from "./vbe/dac.js";
import { VBE_INDEX_PORT, VbeEnable, VbeIndex } from "./vbe/registers.js";

/** The Bochs/QEMU standard VGA IDs: Linux's bochs DRM driver binds to them and then uses the VBE ports. */
export const VESA_VENDOR_ID = 0x1234;
export const VESA_DEVICE_ID = 0x1111;
/** Subsystem IDs QEMU's std-VGA reports (Red Hat / QEMU); the bochs driver accepts any. */
export const VESA_SUBSYSTEM_VENDOR_ID = 0x1af4;
export const VESA_SUBSYSTEM_ID = 0x1100;
/** Display controller, VGA compatible. */
export const VESA_CLASS_CODE = 0x030000;

export const DEFAULT_FB_SIZE = 16 * 1024 * 1024;
export const MIN_FB_SIZE = 1024 * 1024;
export const MAX_FB_SIZE = 256 * 1024 * 1024;

/** Modes a Linux boot starts in (the first that fits the framebuffer), as firmware would set before booting. */
export const BOOT_MODES: readonly { readonly width: number; readonly height: number; readonly bpp: number }[] = [
  { width: 1024, height: 768, bpp: 32 },
  { width: 800, height: 600, bpp: 32 },
  { width: 640, height: 480, bpp: 16 },
];

export interface VesaDeviceOptions {
  readonly name: string;
  /** Framebuffer (BAR 0) size: a power of two between 1 MiB and 256 MiB. */
  readonly fbSize?: number;
  /** Provides the guest-visible RAM behind BAR 0 and maps it where the guest puts the BAR. */
  readonly mapper: MemoryMapper;
  /** Port I/O space for the VBE index/data ports (registered when the device is attached to a bus). */
  readonly pio: AddressSpace;
  readonly logger?: Logger;
}

/**
 * A VESA linear framebuffer as a PCI display function. BAR 0 (32-bit, prefetchable) is the framebuffer: RAM
 * from the MemoryMapper, mapped with dirty logging wherever the bus says the BAR is decoded. The mode comes from
 * the Bochs VBE ports 0x1CE/0x1CF; 8 bpp palettes from the VGA DAC ports 0x3C6-0x3C9. No other legacy VGA
 * (no 0xA0000 window, no text mode, no VGA BIOS).
 */
export class VesaDevice extends PciFunction {
  readonly screen: VesaScreen;
  readonly fbSize: number;
  readonly displays: Display[] = [];
  private region: MappedRegion | undefined;
  private ports: Registration[] | undefined;
  private readonly mapper: MemoryMapper;
  private readonly pio: AddressSpace;
  private readonly log: Logger | undefined;

  constructor(options: VesaDeviceOptions) {
    const fbSize = options.fbSize ?? DEFAULT_FB_SIZE;
    if (!Number.isSafeInteger(fbSize) || fbSize < MIN_FB_SIZE || fbSize > MAX_FB_SIZE || (fbSize & (fbSize - 1)) !== 0) {
      throw new ConfigurationError(`${options.name}: framebuffer size ${fbSize} must be a power of two from 1 MiB to 256 MiB`);
    }
    super({
      name: options.name,
      vendorId: VESA_VENDOR_ID,
      deviceId: VESA_DEVICE_ID,
      classCode: VESA_CLASS_CODE,
      subsystemVendorId: VESA_SUBSYSTEM_VENDOR_ID,
      subsystemId: VESA_SUBSYSTEM_ID,
      bars: [{ index: 0, kind: "mem32", size: fbSize, prefetchable: true }],
    });
    this.fbSize = fbSize;
    this.mapper = options.mapper;
    this.pio = options.pio;
    this.log = options.logger;
    const fb = options.mapper.allocate(fbSize);
    if (fb.length !== fbSize) throw new ConfigurationError(`${options.name}: the memory mapper returned ${fb.length} bytes, not ${fbSize}`);
    this.screen = new VesaScreen(fb, options.logger);
  }

  /** The guest-physical address BAR 0 is decoded at, or undefined while it is not. */
  get framebufferAddress(): number | undefined {
    return this.region?.gpa;
  }

  /** The BAR is RAM that the device maps itself (barActivated), so there is no trapping handler. */
  protected override deviceBarHandler(_index: number): IoHandler | undefined {
    return undefined;
  }

  override barActivated(window: PciBarWindow): void {
    if (window.index !== 0) return;
    this.unmap();
    const region = this.mapper.map(window.address, this.screen.fb, { dirtyLog: true });
    this.region = region;
    this.screen.dirty.setSource(region.dirtyPages ? () => region.dirtyPages!() : undefined);
    this.log?.debug(`${this.name}: framebuffer mapped at 0x${window.address.toString(16)}`);
  }

  override barDeactivated(window: PciBarWindow): void {
    if (window.index === 0) this.unmap();
  }

  override reset(): void {
    super.reset();
    this.screen.vbe.reset();
    this.screen.dac.reset();
  }

  /** screen_info for a Linux boot, describing the current mode at the current BAR address. */
  screenInfo(): ScreenInfo {
    const scanout = this.screen.scanout;
    const base = this.framebufferAddress;
    if (!scanout || base === undefined) throw new ConfigurationError(`${this.name}: no mode is enabled or BAR 0 is not decoded`);
    return screenInfo(base, this.fbSize, scanout);
  }

  /**
   * struct screen_info (64 bytes) for a Linux boot, what the machine's boot framebuffer hook asks for when it
   * loads a bzImage. With no mode enabled the device first enables the boot mode (BOOT_MODES), the way firmware
   * leaves a mode set for the kernel, so vesafb/simplefb can draw before any driver programs VBE.
   */
  bootScreenInfo(): Uint8Array {
    if (!this.screen.scanout) {
      const mode = BOOT_MODES.find((m) => m.width * m.height * (m.bpp / 8) <= this.fbSize);
      if (!mode) throw new ConfigurationError(`${this.name}: no boot mode fits a ${this.fbSize}-byte framebuffer`);
      const vbe = this.screen.vbe;
      vbe.write(VbeIndex.ENABLE, 0);
      vbe.write(VbeIndex.XRES, mode.width);
      vbe.write(VbeIndex.YRES, mode.height);
      vbe.write(VbeIndex.BPP, mode.bpp);
      vbe.write(VbeIndex.ENABLE, VbeEnable.ENABLED | VbeEnable.LFB_ENABLED);
    }
    return encodeScreenInfo(this.screenInfo());
  }

  /** Adds and starts a display. */
  async addDisplay(display: Display): Promise<void> {
    await display.start();
    this.displays.push(display);
    this.log?.info(`${this.name}: ${display.description}`);
  }

  /**
   * The picture now as a PNG file's bytes, with its size (`vmm screenshot`: the VM's control socket sends them to
   * the client, which writes the file). With no mode enabled, the black NO_SIGNAL picture.
   */
  capturePng(): { width: number; height: number; png: Uint8Array } {
    const frame = this.screen.capture();
    return { width: frame.width, height: frame.height, png: encodePng(frame) };
  }

  /** Snapshots: the VBE registers, the palette and the framebuffer (VesaScreen.saveState); config space is PciFunction's. */
  protected override saveDeviceState(): DeviceState {
    return this.screen.saveState();
  }

  /** Restores what `saveDeviceState` saved; BAR 0 is mapped again when the bus re-decodes it. */
  protected override restoreDeviceState(state: DeviceState | undefined): void {
    this.screen.restoreState(state, this.name);
  }

  /** Writes every PNG display's file now. */
  screenshot(): void {
    for (const d of this.displays) d.screenshot?.();
  }

  /** The VM stopped: PNG displays write their last picture, servers close. */
  async shutdown(): Promise<void> {
    const displays = this.displays.splice(0);
    await Promise.all(displays.map((d) => d.stop()));
  }

  /** What the cli calls on every device after the VM ends (before the machine frees guest memory). */
  async close(): Promise<void> {
    await this.shutdown();
  }

  protected override attached(): void {
    // The VBE ports are fixed (not a BAR); a second VESA device in one VM fails here with an address conflict.
    this.ports ??= [
      this.pio.register(VBE_INDEX_PORT, 2, this.name, this.screen.vbe.portHandler()),
      this.pio.register(DAC_PORT_BASE, DAC_PORT_COUNT, `${this.name} (VGA DAC)`, this.screen.dac.portHandler()),
    ];
  }

  private unmap(): void {
    if (!this.region) return;
    this.screen.dirty.setSource(undefined);
    this.region.remove();
    this.region = undefined;
  }
}
