import type { Handle, IoEventRegistry, IoEventRequest } from "@vmm/core";
import { EventFd } from "@vmm/host-io";
import type { Vm } from "@vmm/kvm-native";

/**
 * Guest writes that signal the VMM without a userspace exit: one KVM ioeventfd per request, watched on the event
 * loop. The watch is unref'd so an idle device never keeps the process alive.
 */
export class KvmIoEvents implements IoEventRegistry {
  private readonly live = new Set<{ remove(): void }>();

  constructor(
    private readonly vm: Pick<Vm, "ioeventfd">,
    private readonly createEventFd: () => EventFd = () => new EventFd(),
  ) {}

  add(request: IoEventRequest, notify: () => void): Handle {
    const fd = this.createEventFd();
    let registration: { remove(): void };
    try {
      registration = this.vm.ioeventfd(fd, {
        space: request.space,
        address: request.address,
        size: request.size,
        datamatch: request.datamatch,
      });
    } catch (e) {
      fd.close();
      throw e;
    }
    fd.onSignal(() => notify());
    fd.unref();
    const entry = {
      fd,
      remove: () => {
        if (!this.live.delete(entry)) return;
        registration.remove();
        fd.close();
      },
    };
    this.live.add(entry);
    return { remove: entry.remove };
  }

  /**
   * Registers an eventfd the caller owns and waits on itself (a virtio queue's data-plane worker): KVM signals it
   * on the guest's write and nothing runs on the event loop. Removing the registration leaves the fd open.
   */
  addEventFd(request: IoEventRequest, eventFd: number): Handle {
    const registration = this.vm.ioeventfd(eventFd, { space: request.space, address: request.address, size: request.size, datamatch: request.datamatch });
    const entry = {
      remove: () => {
        if (this.live.delete(entry)) registration.remove();
      },
    };
    this.live.add(entry);
    return { remove: entry.remove };
  }

  /** Removes every registration (machine close). */
  close(): void {
    for (const e of [...this.live]) e.remove();
  }
}
