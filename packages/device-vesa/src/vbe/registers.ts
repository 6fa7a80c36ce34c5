import { type IoHandler, type RegisterRefusal, type RegisterSpec, RegisterTable, SnapshotError, type StateValue, stateData, stateInt } from "@vmm/core";
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
type VbeRegister = Omit<RegisterSpec<VbeRegisterFile>, "offset" | "width">;

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

/**
 * The register table: 16-bit registers at offset index * 2 (where QEMU's MMIO BAR puts them at 0x500). Unknown
 * indexes read 0; refused writes (unknown index, read-only register, a value the register's check refuses) are
 * reported and change nothing.
 */
const DISPI = new RegisterTable<VbeRegisterFile>(
  Object.entries(REGISTERS).map(([index, r]) => ({ ...r, offset: Number(index) * 2, width: 2 })),
  { onRefused: (f, r) => f.refused(r) },
);

/** The index port (0x1CE) and the data port (0x1CF), each 16 bits: a byte write to the index sets its low byte. */
const PORTS = new RegisterTable<VbeRegisterFile>(
  [
    { name: "INDEX", offset: 0, width: 2, field: "index" },
    { name: "DATA", offset: 1, width: 2, read: (f) => f.read(f.index), write: (f, v) => f.write(f.index, v), narrowWrite: "zero-extend" },
  ],
  { decode: "port" },
);

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
    return DISPI.read(this, (index & 0xffff) * 2, 2);
  }

  write(index: number, value: number): void {
    DISPI.write(this, (index & 0xffff) * 2, 2, value);
  }

  /** Reports a write the register table refused (reads of unknown indexes just read 0). */
  refused(r: RegisterRefusal): void {
    if (!r.write) return;
    const reason = r.register ? r.reason : `write of 0x${r.value!.toString(16)} to unknown index ${r.offset / 2}`;
    this.options.onRefused?.(`VBE ${r.register ?? r.offset / 2}: refused: ${reason}`);
  }

  /** Port handler for the range starting at VBE_INDEX_PORT (2 ports: index, data). */
  portHandler(): IoHandler {
    return PORTS.handler(this);
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

  /** The registers, the index port and the last mode enabled, as snapshot data. */
  saveState(): StateValue {
    return { registers: { ...this.state }, lastGood: { ...this.lastGood }, index: this.index };
  }

  /**
   * Restores `saveState` data: every register is checked as a write would be, and an enabled mode must fit the
   * framebuffer; SnapshotError (naming `what`) otherwise, with nothing changed. The mode then shows as saved,
   * without clearing the framebuffer.
   */
  restoreState(data: StateValue | undefined, what: string): void {
    const fields = stateData({ version: 1, data: data ?? null }, what, 1);
    const registers = this.checkedRegisters(fields.registers, `${what} VBE registers`);
    const lastGood = this.checkedRegisters(fields.lastGood, `${what} VBE last mode`);
    const index = stateInt(fields, "index", `${what} VBE`, 0, 0xffff);
    let scanout: Scanout | undefined;
    if (registers.enable & VbeEnable.ENABLED) {
      const s = scanoutOf(registers, this.fbSize);
      if (typeof s === "string") throw new SnapshotError(`${what}: the saved VBE mode does not fit the framebuffer: ${s}`);
      scanout = s;
    }
    this.state = registers;
    this.lastGood = lastGood;
    this.index = index;
    this.setScanout(scanout);
  }

  private checkedRegisters(value: StateValue | undefined, what: string): Mutable {
    const f = stateData({ version: 1, data: value ?? null }, what, 1);
    const known = VbeEnable.ENABLED | VbeEnable.GETCAPS | VbeEnable.DAC_8BIT | VbeEnable.LFB_ENABLED | VbeEnable.NOCLEARMEM;
    const bpp = stateInt(f, "bpp", what, 8, VBE_MAX_BPP);
    if (!VBE_SUPPORTED_BPP.includes(bpp)) throw new SnapshotError(`${what}: unsupported depth ${bpp} bpp`);
    const enable = stateInt(f, "enable", what, 0, 0xffff);
    if (enable & ~known) throw new SnapshotError(`${what}: enable has unknown bits 0x${(enable & ~known).toString(16)}`);
    return {
      id: stateInt(f, "id", what, VBE_ID_MIN, VBE_ID_MAX),
      xres: stateInt(f, "xres", what, 1, VBE_MAX_XRES),
      yres: stateInt(f, "yres", what, 1, VBE_MAX_YRES),
      bpp,
      enable,
      bank: stateInt(f, "bank", what, 0, this.fbSize / 0x10000 - 1),
      virtWidth: stateInt(f, "virtWidth", what, 0, MAX_VIRT_WIDTH),
      xOffset: stateInt(f, "xOffset", what, 0, MAX_VIRT_WIDTH),
      yOffset: stateInt(f, "yOffset", what, 0, 0xffff),
    };
  }

  private setScanout(scanout: Scanout | undefined): void {
    const a = this.current;
    const same =
      a === scanout ||
      (a && scanout && a.width === scanout.width && a.height === scanout.height && a.bpp === scanout.bpp && a.stride === scanout.stride && a.offset === scanout.offset);
    this.current = scanout;
    if (!same) this.options.onModeChange?.(scanout);
  }
}
