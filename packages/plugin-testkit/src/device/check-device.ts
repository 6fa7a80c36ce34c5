import type { PciDevice } from "@vmm/core";
import { ConformanceError } from "../errors.js";
import { checkBars } from "./bars.js";
import { checkCapabilities, checkExtendedCapabilities } from "./capabilities.js";
import { checkHeader } from "./header.js";
import { checkMessageSignalled } from "./msi.js";
import { ConfigProbe } from "./probe.js";
import { CheckList, describeFailure, type DeviceReport } from "./report.js";

export interface CheckDeviceOptions {
  /** Place the function as a PCI Express endpoint or root-complex integrated endpoint (default: as built). */
  readonly express?: "endpoint" | "rc-integrated";
}

/**
 * Attaches `device` to a real PciBus of its own (plain address spaces, no KVM) and checks the config-space rules
 * guests rely on: vendor ID, type 0 header, read-only header registers, BAR sizing against `device.bars`, the
 * ROM BAR, the capability list (and the extended list of a PCI Express function), MSI-X table and PBA placement
 * and MSI layout. Every register it changes it writes back; the device is detached at the end, so give it a
 * fresh device (one not on a machine's bus). Never throws for a broken device: the report lists what failed.
 */
export function checkDevice(device: PciDevice, options: CheckDeviceOptions = {}): DeviceReport {
  const checks = new CheckList();
  const name = device?.name ?? "(unnamed device)";
  let probe: ConfigProbe;
  try {
    probe = new ConfigProbe(device, options.express);
  } catch (error) {
    checks.record("attach", 0, `the bus refused the device: ${error instanceof Error ? error.message : String(error)}`);
    return finish(name, checks);
  }
  try {
    checkHeader(probe, checks);
    const bars = checkBars(probe, checks);
    const caps = checkCapabilities(probe, checks);
    checkExtendedCapabilities(probe, checks);
    checkMessageSignalled(probe, caps, bars, checks);
  } catch (error) {
    checks.record("config access", 0, `the device threw: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    probe.detach();
  }
  return finish(name, checks);
}

function finish(device: string, list: CheckList): DeviceReport {
  const failures = list.checks.filter((c) => !c.ok);
  return { device, checks: list.checks, failures, ok: failures.length === 0 };
}

/** Throws a ConformanceError listing every failed check of `report`; returns the report when all passed. */
export function assertDeviceReport(report: DeviceReport): DeviceReport {
  if (!report.ok) throw new ConformanceError(`device ${report.device}`, report.failures.map(describeFailure));
  return report;
}

/** `checkDevice` then `assertDeviceReport`: throws naming every failed register when the device breaks a rule. */
export function assertDeviceConforms(device: PciDevice, options: CheckDeviceOptions = {}): DeviceReport {
  return assertDeviceReport(checkDevice(device, options));
}
