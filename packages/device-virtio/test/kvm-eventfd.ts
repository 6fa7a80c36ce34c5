// A stand-in for `IoEventFdRegistry` on the real Machine until @vmm/machine's KvmIoEvents offers `addEventFd`:
// the machine's own registry for ordinary doorbells, and the caller's eventfd registered straight on the
// machine's VM (KVM_IOEVENTFD) for data-plane doorbells. It reaches the Machine's private `vm`, which only a test
// or benchmark may do.
import { type IoEventRequest, Tokens } from "@vmm/core";
import type { Machine } from "@vmm/machine";
import type { IoEventFdRegistry } from "../src/dataplane/api.js";

interface VmIoEventFd {
  ioeventfd(fd: number, r: IoEventRequest): { remove(): void };
}

export function eventFdIoEvents(machine: Machine): IoEventFdRegistry & { readonly registered: number } {
  const base = machine.container.resolve(Tokens.IoEvents);
  const vm = (machine as unknown as { vm: VmIoEventFd }).vm;
  let registered = 0;
  return {
    add: (request, notify) => base.add(request, notify),
    addEventFd: (request, fd) => {
      registered++;
      return vm.ioeventfd(fd, request);
    },
    get registered() {
      return registered;
    },
  };
}
