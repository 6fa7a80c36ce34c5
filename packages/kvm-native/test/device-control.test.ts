// The device control API (KVM_CREATE_DEVICE and device attributes) is shared native code; arm64's vGIC is its
// main user. On this host it is exercised through the device every KVM has: kvm-vfio.
import { closeSync, openSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { KvmDeviceType, KvmError } from "../src/index.js";
import { native } from "../src/native.js";
import { kvmOk } from "./support/kvm.js";

const KVM_DEV_VFIO_FILE = 1;
const KVM_DEV_VFIO_FILE_ADD = 1;

describe.skipIf(!kvmOk)("KVM device control (real /dev/kvm, the kvm-vfio device)", () => {
  const fds: number[] = [];
  afterEach(() => {
    for (const fd of fds.splice(0).reverse()) closeSync(fd);
  });

  it("tests, creates and queries a device, and maps refusals to KvmError", () => {
    const n = native();
    const kvmFd = openSync("/dev/kvm", "r+");
    fds.push(kvmFd);
    const vm = n.createVm(kvmFd);
    fds.push(vm);
    expect(n.createDevice(vm, KvmDeviceType.VFIO, true)).toBeUndefined();
    if (n.arch === "x86_64") {
      expect(() => n.createDevice(vm, KvmDeviceType.ARM_VGIC_V3, true)).toThrow(
        expect.objectContaining({ syscall: "KVM_CREATE_DEVICE", errno: "ENODEV" }),
      );
    }
    const dev = n.createDevice(vm, KvmDeviceType.VFIO, false)!;
    fds.push(dev);
    expect(dev).toBeGreaterThan(vm);
    expect(n.hasDeviceAttr(dev, KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD)).toBe(true);
    expect(n.hasDeviceAttr(dev, 99, 0)).toBe(false);
    // A file that is not a VFIO group or device: the attribute reaches the device, which refuses the value.
    const notVfio = openSync("/dev/null", "r");
    fds.push(notVfio);
    let err: unknown;
    try {
      n.setDeviceAttr(dev, KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD, 4, notVfio);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KvmError);
    expect(err).toMatchObject({ syscall: "KVM_SET_DEVICE_ATTR", errno: "EINVAL" });
    expect(() => n.getDeviceAttr(dev, KVM_DEV_VFIO_FILE, KVM_DEV_VFIO_FILE_ADD, 4)).toThrow(KvmError);
    expect(() => n.setDeviceAttr(dev, 0, 0, 3 as 4, 0)).toThrow(RangeError);
    expect(() => n.setDeviceAttr(dev, 0, 0, 4, 2 ** 32)).toThrow(RangeError);
    expect(() => n.hasDeviceAttr(-1, 0, 0)).toThrow(expect.objectContaining({ errno: "EBADF" }));
  });
});
