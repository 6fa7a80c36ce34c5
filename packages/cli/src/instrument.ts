import { allOnes, toUnsigned, type IoHandler, type Logger, type PciAttachContext, type PciBarWindow, type PciDevice, type SmallAccessSize } from "@vmm/core";
import { DeviceFaultError } from "./errors.js";

export interface GuardOptions {
  /** Called once with the first fault; the cli stops the VM. */
  onFault(fault: DeviceFaultError): void;
  /** With --debug: every config access and BAR (de)activation is traced here. */
  trace?: Logger;
}

const hex = (n: number) => `0x${n.toString(16)}`;

/**
 * A device's answer as the bus expects it: unsigned and no wider than the access. Plugin code may compute a
 * register with `|` or `<<` and hand back a negative number (0x80000000 | 0 is -2147483648); that must not
 * travel on into BigInt shifts, indexes or DataView offsets further down.
 */
const unsigned = (value: number, size: SmallAccessSize) => toUnsigned(value, size);

/**
 * Wraps a device so that an exception thrown by its code while the guest runs is caught, reported once through
 * `onFault` (naming the device and what it was doing), and answered like an absent device (reads return
 * all-ones, writes are dropped) until the VM has stopped. With `trace`, config accesses are logged.
 * The wrapper forwards everything else to the device itself, with `this` bound to the device.
 */
export function guardDevice(device: PciDevice, options: GuardOptions): PciDevice {
  let faulted: DeviceFaultError | undefined;
  const name = device.name;
  const fail = (operation: string, error: unknown): void => {
    if (faulted) return;
    faulted = new DeviceFaultError(name, operation, error);
    options.onFault(faulted);
  };
  const guard = <R>(operation: () => string, fallback: R, fn: () => R): R => {
    if (faulted) return fallback;
    try {
      return fn();
    } catch (error) {
      fail(operation(), error);
      return fallback;
    }
  };
  const trace = options.trace;

  const wrapHandler = (index: number, h: IoHandler): IoHandler => {
    const where = (what: string, offset: number, size: number) => `BAR${index} ${what} at ${hex(offset)} (${size} bytes)`;
    const wrapped: IoHandler = {
      read: (offset, size) => guard(() => where("read", offset, size), allOnes(size), () => unsigned(h.read(offset, size), size)),
      write: (offset, size, value) => guard(() => where("write", offset, size), undefined, () => h.write(offset, size, value)),
    };
    if (h.read64) {
      const read64 = h.read64.bind(h);
      wrapped.read64 = (offset) => guard(() => where("read", offset, 8), 0xffff_ffff_ffff_ffffn, () => BigInt.asUintN(64, read64(offset)));
    }
    if (h.write64) {
      const write64 = h.write64.bind(h);
      wrapped.write64 = (offset, value) => guard(() => where("write", offset, 8), undefined, () => write64(offset, value));
    }
    return wrapped;
  };

  const overrides: Partial<PciDevice> = {
    configRead(offset, size) {
      const value = guard(() => `config read at ${hex(offset)}`, allOnes(size), () => unsigned(device.configRead(offset, size), size));
      trace?.debug(`${name}: config read ${hex(offset)}/${size} -> ${hex(value)}`);
      return value;
    },
    configWrite(offset, size, value) {
      trace?.debug(`${name}: config write ${hex(offset)}/${size} <- ${hex(value)}`);
      guard(() => `config write at ${hex(offset)}`, undefined, () => device.configWrite(offset, size, value));
    },
  };
  // The one handler the bus registers per BAR (for a PciFunction: device registers, quirk windows, MSI-X table).
  if (device.barHandler) {
    overrides.barHandler = (index) => {
      const h = guard(() => `barHandler(${index})`, undefined, () => device.barHandler!(index));
      return h ? wrapHandler(index, h) : undefined;
    };
  }
  if (device.barActivated) {
    overrides.barActivated = (w: PciBarWindow) => {
      trace?.debug(`${name}: BAR${w.index} (${w.kind}) decoded at ${hex(w.address)} size ${hex(w.size)}`);
      guard(() => `barActivated(BAR${w.index})`, undefined, () => device.barActivated!(w));
    };
  }
  if (device.barDeactivated) {
    overrides.barDeactivated = (w: PciBarWindow) => {
      trace?.debug(`${name}: BAR${w.index} (${w.kind}) at ${hex(w.address)} no longer decoded`);
      guard(() => `barDeactivated(BAR${w.index})`, undefined, () => device.barDeactivated!(w));
    };
  }
  if (device.reset) overrides.reset = () => guard(() => "reset", undefined, () => device.reset!());
  if (device.attach) overrides.attach = (context: PciAttachContext) => device.attach!(context);

  return new Proxy(device, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof PciDevice];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
