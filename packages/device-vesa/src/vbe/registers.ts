import type { IoHandler, SmallAccessSize } from "@vmm/core";
import { VBE_MAX_BPP, VBE_MAX_XRES, VBE_MAX_YRES, VBE_SUPPORTED_BPP, type Scanout, type VbeModeRegisters, scanoutOf, virtualHeight } from "./mode.js";

/** The Bochs VBE ("DISPI") interface: a 16-bit index port and a 16-bit data port. */
export const VBE_INDEX_PORT = 0x1ce;
export const VBE_DATA_PORT = 0x1cf;

export const VbeIndex = {
  ID: 0,
  XRES: 1,
  YRES: 2,
  BPP: 3,
  ENABLE: 4,
  BANK: 5,
  VIRT_WIDTH: 6,
  VIRT_HEIGHT: 7,
  X_OFFSET: 8,
  Y_OFFSET: 9,
  VIDEO_MEMORY_64K: 10,
} as const;

export const VbeEnable = {
  ENABLED: 0x01,
  GETCAPS: 0x02,
  DAC_8BIT: 0x20,
  LFB_ENABLED: 0x40,
  NOCLEARMEM: 0x80,
} as const;

/** Interface revisions a guest may select by writing ID; reads report the selected one. */
export const VBE_ID_MIN = 0xb0c0;
export const VBE_ID_MAX = 0xb0c5;
const MAX_VIRT_WIDTH = 8192;

/** Register contents; the mode fields stay as the guest wrote them while the display is disabled. */
interface VbeState extends VbeModeRegisters {
  id: number;
  xres: number;
  yres: number;
  bpp: number;
  enable: number;
  bank: number;
  virtWidth: number;
  xOffset: number;
  yOffset: number;
}

type Mutable = { -readonly [K in keyof VbeState]: VbeState[K] };

/** One register: how it reads and how a write is checked. A write returns a refusal reason or nothing. */
interface VbeRegister {
  readonly name: string;
  read(file: VbeRegisterFile): number;
  write?(file: VbeRegisterFile, value: number): string | void;
}

const inRange = (what: string, value: number, min: number, max: number): string | void =>
  value < min || value > max ? `${what} ${value} outside ${min}..${max}` : undefined;

/** A mode field: range-checked alone, and re-validated as a whole mode while the display is enabled. */
function modeField(name: string, key: "xres" | "yres" | "bpp" | "virtWidth" | "xOffset" | "yOffset", check: (v: number) => string | void, caps?: number): VbeRegister {
  return {
    name,
    read: (f) => (caps !== undefined && f.state.enable & VbeEnable.GETCAPS ? caps : f.state[key]),
    write: (f, v) => check(v) ?? f.update({ [key]: v }),
  };
}

/** The register table, by index. */
const REGISTERS: Record<number, VbeRegister> = {
  [VbeIndex.ID]: {
    name: "ID",
    read: (f) => f.state.id,
    write: (f, v) => inRange("interface id", v, VBE_ID_MIN, VBE_ID_MAX) ?? void (f.state.id = v),
  },
  [VbeIndex.XRES]: modeField("XRES", "xres", (v) => inRange("x resolution", v, 1, VBE_MAX_XRES), VBE_MAX_XRES),
  [VbeIndex.YRES]: modeField("YRES", "yres", (v) => inRange("y resolution", v, 1, VBE_MAX_YRES), VBE_MAX_YRES),
  [VbeIndex.BPP]: modeField(
    "BPP",
    "bpp",
    (v) => (VBE_SUPPORTED_BPP.includes(v) ? undefined : `unsupported depth ${v} bpp (supported: ${VBE_SUPPORTED_BPP.join(", ")})`),
    VBE_MAX_BPP,
  ),
  [VbeIndex.ENABLE]: { name: "ENABLE", read: (f) => f.state.enable, write: (f, v) => f.setEnable(v) },
  [VbeIndex.BANK]: {
    name: "BANK",
    read: (f) => f.state.bank,
    write: (f, v) => inRange("bank", v, 0, f.fbSize / 0x10000 - 1) ?? void (f.state.bank = v),
  },
  [VbeIndex.VIRT_WIDTH]: modeField("VIRT_WIDTH", "virtWidth", (v) => inRange("virtual width", v, 1, MAX_VIRT_WIDTH)),
  [VbeIndex.VIRT_HEIGHT]: {
    name: "VIRT_HEIGHT",
    // Derived: how many lines of the current stride fit in the framebuffer (the room a guest has for panning).
    read: (f) => Math.min(0xffff, virtualHeight(f.fbSize, Math.max(f.state.virtWidth, f.state.xres), f.state.bpp)),
    write: (f, v) => {
      const room = virtualHeight(f.fbSize, Math.max(f.state.virtWidth, f.state.xres), f.state.bpp);
      return v > room ? `virtual height ${v} exceeds the ${room} lines that fit in the framebuffer` : undefined;
    },
  },
  [VbeIndex.X_OFFSET]: modeField("X_OFFSET", "xOffset", (v) => inRange("x offset", v, 0, MAX_VIRT_WIDTH)),
  [VbeIndex.Y_OFFSET]: modeField("Y_OFFSET", "yOffset", () => undefined),
  [VbeIndex.VIDEO_MEMORY_64K]: { name: "VIDEO_MEMORY_64K", read: (f) => Math.min(0xffff, f.fbSize / 0x10000) },
};

const RESET: VbeState = { id: VBE_ID_MAX, xres: 640, yres: 480, bpp: 32, enable: 0, bank: 0, virtWidth: 0, xOffset: 0, yOffset: 0 };

export interface VbeRegisterFileOptions {
  /** Framebuffer size in bytes (a multiple of 64 KiB). */
  readonly fbSize: number;
  /** The visible mode changed: a scanout while enabled, undefined when disabled. */
  readonly onModeChange?: (scanout: Scanout | undefined) => void;
  /** The guest enabled a mode without NOCLEARMEM: the framebuffer must be cleared. */
  readonly onClear?: () => void;
  /** A write was refused (the reason names the register and the value). */
  readonly onRefused?: (reason: string) => void;
}

/**
 * The VBE register file as a state machine. Every write is checked; a refused write changes nothing, so the
 * registers keep reading back the mode in force. While the display is enabled a change must leave a mode that
 * fits the framebuffer; enabling checks the whole mode.
 */
export class VbeRegisterFile {
  state: Mutable = { ...RESET };
  index = 0;
  private current: Scanout | undefined;
  /** The registers of the mode last enabled, restored when an enable is refused. */
  private lastGood: Mutable = { ...RESET };

  constructor(private readonly options: VbeRegisterFileOptions) {}

  get fbSize(): number {
    return this.options.fbSize;
  }

  /** The visible picture, or undefined while the display is disabled. */
  get scanout(): Scanout | undefined {
    return this.current;
  }

  reset(): void {
    this.state = { ...RESET };
    this.lastGood = { ...RESET };
    this.index = 0;
    this.setScanout(undefined);
  }

  read(index: number): number {
    const reg = REGISTERS[index];
    return reg ? reg.read(this) & 0xffff : 0;
  }

  write(index: number, value: number): void {
    const reg = REGISTERS[index];
    const v = value & 0xffff;
    const refused = !reg ? `write of 0x${v.toString(16)} to unknown index ${index}` : !reg.write ? `${reg.name} is read-only` : reg.write(this, v);
    if (refused) this.options.onRefused?.(`VBE ${reg?.name ?? index}: refused: ${refused}`);
  }

  /** Port handler for the range starting at VBE_INDEX_PORT (2 ports: index, data). */
  portHandler(): IoHandler {
    return {
      read: (offset, size) => this.portRead(offset, size),
      write: (offset, size, value) => this.portWrite(offset, size, value),
    };
  }

  /** Applies mode-field changes; while enabled the result must be a valid mode. Used by the register table. */
  update(change: Partial<VbeModeRegisters>): string | void {
    const next = { ...this.state, ...change };
    if (this.state.enable & VbeEnable.ENABLED) {
      const scanout = scanoutOf(next, this.fbSize);
      if (typeof scanout === "string") return scanout;
      Object.assign(this.state, change);
      this.lastGood = { ...this.state };
      this.setScanout(scanout);
      return;
    }
    Object.assign(this.state, change);
  }

  setEnable(value: number): string | void {
    const known = VbeEnable.ENABLED | VbeEnable.GETCAPS | VbeEnable.DAC_8BIT | VbeEnable.LFB_ENABLED | VbeEnable.NOCLEARMEM;
    const v = value & known;
    if (!(v & VbeEnable.ENABLED)) {
      const wasEnabled = this.state.enable & VbeEnable.ENABLED;
      this.state.enable = v;
      if (wasEnabled) {
        // The layout is per mode: a guest that programs the next mode without VIRT_WIDTH/offsets gets defaults.
        this.state.virtWidth = 0;
        this.state.xOffset = 0;
        this.state.yOffset = 0;
        this.setScanout(undefined);
      }
      return;
    }
    const next = { ...this.state, virtWidth: Math.max(this.state.virtWidth, this.state.xres) };
    const scanout = scanoutOf(next, this.fbSize);
    if (typeof scanout === "string") {
      const enable = this.state.enable;
      this.state = { ...this.lastGood, id: this.state.id, bank: this.state.bank, enable };
      return scanout;
    }
    this.state = { ...next, enable: v };
    this.lastGood = { ...this.state };
    if (!(v & VbeEnable.NOCLEARMEM)) this.options.onClear?.();
    this.setScanout(scanout);
  }

  private setScanout(scanout: Scanout | undefined): void {
    const a = this.current;
    const same =
      a === scanout ||
      (a && scanout && a.width === scanout.width && a.height === scanout.height && a.bpp === scanout.bpp && a.stride === scanout.stride && a.offset === scanout.offset);
    this.current = scanout;
    if (!same) this.options.onModeChange?.(scanout);
  }

  private portRead(offset: number, size: SmallAccessSize): number {
    if (offset === 0) return size === 1 ? this.index & 0xff : this.index;
    const value = this.read(this.index);
    return size === 1 ? value & 0xff : value;
  }

  private portWrite(offset: number, size: SmallAccessSize, value: number): void {
    if (offset === 0) {
      if (size === 1) this.index = (this.index & 0xff00) | (value & 0xff);
      else this.index = value & 0xffff;
      return;
    }
    this.write(this.index, size === 1 ? value & 0xff : value & 0xffff);
  }
}
