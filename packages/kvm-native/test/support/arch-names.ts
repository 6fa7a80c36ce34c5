// The names each architecture's half of the addon adds to the shared part, tied to the TypeScript declarations
// of the native interface: a name left out of a list, or one that is not declared, fails the type check.
import type { NativeArm64, NativeArm64Vcpu, NativeCommon, NativeVcpu, NativeVcpuCommon, NativeX86 } from "../../src/native.js";

/** Passes `list` through when it names every member of `Only`; otherwise a type error names the missing ones. */
function exactly<Only extends string>() {
  return <const L extends readonly Only[]>(
    list: L & ([Exclude<Only, L[number]>] extends [never] ? unknown : { missing: Exclude<Only, L[number]> }),
  ): readonly string[] => list;
}

export const ARCH_ONLY = {
  x86_64: {
    functions: exactly<Exclude<keyof NativeX86, keyof NativeCommon>>()([
      "getSupportedCpuid",
      "setTssAddr",
      "setIdentityMapAddr",
      "createIrqchip",
      "createPit2",
      "getMsrIndexList",
      "getIrqchip",
      "setIrqchip",
      "getPit2",
      "setPit2",
      "getClock",
      "setClock",
    ]),
    vcpuMethods: exactly<Exclude<keyof NativeVcpu, keyof NativeVcpuCommon>>()([
      "getRegs",
      "setRegs",
      "getSregs",
      "setSregs",
      "getFpu",
      "setFpu",
      "getMsrs",
      "setMsrs",
      "setCpuid",
      "getLapic",
      "setLapic",
      "setPmTimer",
      "getXsave",
      "setXsave",
      "getXcrs",
      "setXcrs",
      "getVcpuEvents",
      "setVcpuEvents",
      "getDebugRegs",
      "setDebugRegs",
      "getTscKhz",
      "setTscKhz",
    ]),
  },
  arm64: {
    functions: exactly<Exclude<keyof NativeArm64, keyof NativeCommon>>()(["armPreferredTarget"]),
    vcpuMethods: exactly<Exclude<keyof NativeArm64Vcpu, keyof NativeVcpuCommon>>()(["init", "getOneReg", "setOneReg", "getRegList"]),
  },
} as const;

/** What both halves have. */
export const SHARED = {
  functions: exactly<Exclude<keyof NativeCommon, "arch">>()([
    "setErrorClass",
    "openDevice",
    "closeFd",
    "getApiVersion",
    "checkExtension",
    "getVcpuMmapSize",
    "createVm",
    "allocateMemory",
    "allocateSharedMemory",
    "seekFile",
    "setUserMemoryRegion",
    "getDirtyLog",
    "irqLine",
    "signalMsi",
    "setGsiRouting",
    "irqfd",
    "ioeventfd",
    "createVcpuFd",
    "createDevice",
    "setDeviceAttr",
    "getDeviceAttr",
    "hasDeviceAttr",
    "VcpuHandle",
    "userfaultfdCreate",
    "userfaultfdCreateFromDevice",
    "uffdApi",
    "uffdRegister",
    "uffdUnregister",
    "UserfaultPagerHandle",
  ]),
  vcpuMethods: exactly<keyof NativeVcpuCommon>()([
    "run",
    "requestStop",
    "kick",
    "startThread",
    "stopThread",
    "close",
    "getMpState",
    "setMpState",
    "statsFd",
  ]),
} as const;
