import { RegisterTable, type GuestMemory, type IoHandler } from "@vmm/core";

/** I/O ports of QEMU's fw_cfg interface on x86 (docs/specs/fw_cfg.rst). */
export const FW_CFG_PORTS = { selector: 0x510, data: 0x511, dma: 0x514 } as const;

/** Well-known item keys. */
export const FwCfgKey = {
  signature: 0x00,
  id: 0x01,
  ramSize: 0x03,
  noGraphic: 0x04,
  cpuCount: 0x05,
  bootMenu: 0x0e,
  maxCpus: 0x0f,
  fileDir: 0x19,
  firstFile: 0x20,
} as const;

/** Bits of the ID item: the traditional interface, and the DMA interface. */
const ID_TRADITIONAL = 1;
const ID_DMA = 2;
const SELECTOR_WRITE = 0x4000;
/** DMA control bits. */
export const FwCfgDma = { error: 0x01, read: 0x02, skip: 0x04, select: 0x08, write: 0x10 } as const;
/**
 * What the DMA address register reads as: "QEMU CFG" in port order (QEMU's big-endian 0x51454D5520434647), so a
 * little-endian dword read of the high half at +0 gives 0x554D4551.
 */
const DMA_SIGNATURE = { high: 0x554d_4551, low: 0x4746_4320 } as const;
const FILE_NAME_MAX = 56;
const DIR_ENTRY = 64;

/** An item's contents: fixed bytes, or produced when the guest selects it (ACPI tables that depend on PCIEXBAR). */
export type FwCfgContents = Uint8Array | (() => Uint8Array);

interface Item {
  readonly name?: string;
  contents: FwCfgContents;
  cached?: Uint8Array;
}

const le16 = (v: number) => new Uint8Array([v & 0xff, (v >>> 8) & 0xff]);
const le64 = (v: number) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
  return b;
};

/**
 * The firmware configuration device as QEMU documents it: a 16-bit selector, a byte-wide data port that reads the
 * selected item from an offset that each read advances (0 past the end), a file directory of named items, and the
 * DMA interface (a big-endian access descriptor in guest memory: control, length, address; select, read, skip;
 * writes are refused with the error bit, as items here are read-only).
 */
export class FwCfg {
  /**
   * The selector (2 bytes at 0x510; reads 0, other widths ignored, as QEMU's port accepts only word writes) and
   * the DMA address register (8 bytes at 0x514, big-endian: dword writes, high half at +0 then the low half at
   * +4, which starts the transfer; narrower writes ignored; reads give the signature).
   */
  private static readonly SELECTOR = new RegisterTable<FwCfg>([{ name: "SELECTOR", offset: 0, width: 2, access: "wo", write: (f, v) => f.select(v) }], {
    narrowWrite: "refuse",
  });
  private static readonly DMA_ADDRESS = new RegisterTable<FwCfg>(
    [
      { name: "DMA_ADDRESS_HIGH", offset: 0, width: 4, read: () => DMA_SIGNATURE.high, write: (f, v) => void (f.dmaHigh = byteSwap32(v)) },
      { name: "DMA_ADDRESS_LOW", offset: 4, width: 4, read: () => DMA_SIGNATURE.low, write: (f, v) => f.startDma(byteSwap32(v)) },
    ],
    { narrowWrite: "refuse", spanning: "refuse" },
  );
  private readonly items = new Map<number, Item>();
  private nextFile: number = FwCfgKey.firstFile;
  private selected = 0;
  private offset = 0;
  private dmaHigh = 0;
  /** DMA transfers and data-port bytes served (statistics). */
  readonly stats = { dmaTransfers: 0, portBytes: 0 };

  constructor(private readonly memory: GuestMemory) {
    this.set(FwCfgKey.signature, new TextEncoder().encode("QEMU"));
    this.set(FwCfgKey.id, new Uint8Array([ID_TRADITIONAL | ID_DMA, 0, 0, 0]));
    this.set(FwCfgKey.fileDir, () => this.directory());
  }

  /** Sets a numbered (legacy) item. */
  set(key: number, contents: FwCfgContents): void {
    this.items.set(key, { contents });
  }

  setU16(key: number, value: number): void {
    this.set(key, le16(value));
  }

  setU64(key: number, value: number): void {
    this.set(key, le64(value));
  }

  /** Adds (or replaces) a named file and returns its key. */
  addFile(name: string, contents: FwCfgContents): number {
    if (new TextEncoder().encode(name).length >= FILE_NAME_MAX) throw new RangeError(`fw_cfg file name '${name}' is too long`);
    for (const [key, item] of this.items) {
      if (item.name === name) {
        this.items.set(key, { name, contents });
        return key;
      }
    }
    const key = this.nextFile++;
    this.items.set(key, { name, contents });
    return key;
  }

  /** The names of the files, in key order. */
  files(): string[] {
    return [...this.items.entries()].filter(([, i]) => i.name).sort((a, b) => a[0] - b[0]).map(([, i]) => i.name!);
  }

  /** An item's bytes as the guest reads them (a produced item is built once, on first use). */
  contents(key: number): Uint8Array | undefined {
    const item = this.items.get(key & ~SELECTOR_WRITE);
    if (!item) return undefined;
    if (!item.cached) item.cached = typeof item.contents === "function" ? item.contents() : item.contents;
    return item.cached;
  }

  /** A file's bytes by name. */
  file(name: string): Uint8Array | undefined {
    for (const [key, item] of this.items) if (item.name === name) return this.contents(key);
    return undefined;
  }

  /** Machine reset: the selection and DMA latch start over. */
  reset(): void {
    for (const item of this.items.values()) item.cached = undefined;
    this.selected = 0;
    this.offset = 0;
    this.dmaHigh = 0;
  }

  /** Selects an item; a produced item is built again from the machine's state as it is now. */
  select(key: number): void {
    this.selected = key & 0xffff;
    this.offset = 0;
    const item = this.items.get(this.selected & ~SELECTOR_WRITE);
    if (item && typeof item.contents === "function") item.cached = undefined;
  }

  /** Handler for the selector port (2 bytes at 0x510). */
  readonly selectorHandler: IoHandler = FwCfg.SELECTOR.handler(this);

  /** Handler for the data port (0x511): reads advance through the selected item. */
  readonly dataHandler: IoHandler = {
    read: (_offset, size) => {
      let v = 0;
      for (let i = 0; i < size; i++) v |= this.readByte() << (8 * i);
      return v >>> 0;
    },
    write: () => {},
  };

  /** Handler for the DMA address register (8 bytes at 0x514). */
  readonly dmaHandler: IoHandler = FwCfg.DMA_ADDRESS.handler(this);

  private startDma(low: number): void {
    this.dma(this.dmaHigh * 2 ** 32 + low);
    this.dmaHigh = 0;
  }

  private readByte(): number {
    const data = this.contents(this.selected);
    if (!data || this.offset >= data.length) return 0;
    this.stats.portBytes++;
    return data[this.offset++]!;
  }

  /** Runs one DMA access descriptor at guest-physical `address`. */
  dma(address: number): void {
    this.stats.dmaTransfers++;
    const m = this.memory;
    let control: number;
    let length: number;
    let target: number;
    try {
      control = byteSwap32(m.readU32(address));
      length = byteSwap32(m.readU32(address + 4));
      target = byteSwap32(m.readU32(address + 8)) * 2 ** 32 + byteSwap32(m.readU32(address + 12));
    } catch {
      return; // the descriptor is not in RAM: nothing can be reported
    }
    if (control & FwCfgDma.select) this.select(control >>> 16);
    let error = false;
    if (control & FwCfgDma.write) error = true;
    else if (control & (FwCfgDma.read | FwCfgDma.skip)) {
      const data = this.contents(this.selected) ?? new Uint8Array(0);
      const available = Math.max(0, Math.min(length, data.length - this.offset));
      try {
        if (control & FwCfgDma.read) {
          const out = new Uint8Array(length); // bytes past the item's end read as 0
          out.set(data.subarray(this.offset, this.offset + available));
          m.write(target, out);
        }
      } catch {
        error = true;
      }
      this.offset += available;
    }
    m.writeU32(address, error ? byteSwap32(FwCfgDma.error) : 0);
  }

  /** The file directory: a big-endian count, then 64-byte entries (size, key, reserved, NUL-terminated name). */
  private directory(): Uint8Array {
    const files = [...this.items.entries()].filter(([, i]) => i.name).sort((a, b) => a[0] - b[0]);
    const out = new Uint8Array(4 + files.length * DIR_ENTRY);
    const view = new DataView(out.buffer);
    view.setUint32(0, files.length);
    files.forEach(([key, item], i) => {
      const at = 4 + i * DIR_ENTRY;
      view.setUint32(at, this.contents(key)!.length);
      view.setUint16(at + 4, key);
      out.set(new TextEncoder().encode(item.name!), at + 8);
    });
    return out;
  }
}

function byteSwap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | ((v >>> 24) & 0xff)) >>> 0;
}
