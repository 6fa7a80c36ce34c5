// The Node floor for the start-up bench: startup-floor.c's work done from Node through @vmm/kvm-native, with no
// cli, machine, PCI bus or devices. What a process takes beyond `node -e 0` here is the least that any VMM built
// on Node and this binding pays. Usage: node startup-floor-node.mjs <guest.bin>; the guest's serial output goes to stdout.
import { readFileSync } from "node:fs";
import { Kvm } from "@vmm/kvm-native";

const RAM_SIZE = 256 * 1024 * 1024;
const LOAD = 0x10000;
const COM1 = 0x3f8;
const LSR = COM1 + 5;
const LSR_TX_READY = 0x60;
const DEBUG_EXIT = 0x501;

const kvm = Kvm.open();
const vm = kvm.createVm();
const ram = vm.allocateRam(RAM_SIZE);
vm.setMemoryRegion({ slot: 0, guestPhysAddr: 0, memory: ram });
vm.setTssAddr(0xfffbd000);
vm.setIdentityMapAddr(0xfffbc000);
vm.createIrqchip();
vm.createPit2();
ram.chunks[0].set(readFileSync(process.argv[2]), LOAD);

const vcpu = vm.createVcpu(0);
vcpu.setCpuid(kvm.supportedCpuid());
const sregs = vcpu.getSregs();
for (const name of ["cs", "ds", "es", "ss", "fs", "gs"]) Object.assign(sregs[name], { base: BigInt(LOAD), selector: LOAD >> 4 });
vcpu.setSregs(sregs);
vcpu.setRegs({ rip: 0n, rsp: 0x8000n, rflags: 2 });

const out = [];
let stopped = false;
const dispatch = {
  pio(port, _size, isWrite, value) {
    if (!isWrite) return port === LSR ? LSR_TX_READY : 0;
    if (port === COM1) out.push(value);
    else if (port === DEBUG_EXIT) {
      stopped = true;
      vcpu.requestStop();
    }
    return 0;
  },
  mmio: () => 0,
};
while (!stopped) {
  const result = vcpu.run(dispatch);
  if (result.reason === "hlt") break;
  if (result.reason !== "yield") throw new Error(`startup-floor-node: unexpected exit ${result.reason}`);
}
process.stdout.write(Uint8Array.from(out));
vm.close();
kvm.close();
