// Numeric KVM constants the API exposes (values from linux/kvm.h).

/** KVM_CAP_* for Kvm.checkExtension (the ARM_* ones answer non-zero only on arm64 hosts). */
export const KvmCap = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  MP_STATE: 14,
  COALESCED_MMIO: 15,
  IRQ_ROUTING: 25,
  IRQFD: 32,
  PIT2: 33,
  IOEVENTFD: 36,
  SET_IDENTITY_MAP_ADDR: 37,
  ADJUST_CLOCK: 39,
  VCPU_EVENTS: 41,
  TSC_CONTROL: 60,
  GET_TSC_KHZ: 61,
  MAX_VCPUS: 66,
  ONE_REG: 70,
  SYNC_REGS: 74,
  SIGNAL_MSI: 77,
  READONLY_MEM: 81,
  IRQFD_RESAMPLE: 82,
  DEVICE_CTRL: 89,
  ARM_PSCI_0_2: 102,
  SPLIT_IRQCHIP: 121,
  IOEVENTFD_ANY_LENGTH: 122,
  ARM_PMU_V3: 126,
  X2APIC_API: 129,
  MSI_DEVID: 131,
  IMMEDIATE_EXIT: 136,
  ARM_VM_IPA_SIZE: 165,
  ARM_SVE: 170,
  ARM_PTRAUTH_ADDRESS: 171,
  ARM_PTRAUTH_GENERIC: 172,
  ARM_IRQ_LINE_LAYOUT_2: 174,
  XSAVE2: 208,
} as const;

/** KVM_MP_STATE_* for Vcpu.getMpState/setMpState. */
export const MpState = {
  RUNNABLE: 0,
  UNINITIALIZED: 1,
  INIT_RECEIVED: 2,
  HALTED: 3,
  SIPI_RECEIVED: 4,
} as const;

/** KVM_SYSTEM_EVENT_* types in a "system-event" run result. */
export const SystemEvent = { SHUTDOWN: 1, RESET: 2, CRASH: 3 } as const;

/** KVM_INTERNAL_ERROR_* suberrors in an "internal-error" run result. */
export const InternalError = { EMULATION: 1, SIMUL_EX: 2, DELIVERY_EV: 3, UNEXPECTED_EXIT_REASON: 4 } as const;

/** KVM irqchip ids for GSI routing entries of type "irqchip". */
export const Irqchip = { PIC_MASTER: 0, PIC_SLAVE: 1, IOAPIC: 2 } as const;

/** KVM_DEV_TYPE_* of KVM_CREATE_DEVICE (Arm64Vm.hasDevice). */
export const KvmDeviceType = { VFIO: 4, ARM_VGIC_V2: 5, ARM_VGIC_V3: 7, ARM_VGIC_ITS: 8 } as const;

/**
 * Byte sizes of the x86 state passed as opaque bytes (the C structs of linux/kvm.h; the addon asserts them):
 * XSAVE is struct kvm_xsave without KVM_CAP_XSAVE2 (Vcpu.xsaveSize() tells the real one), IRQCHIP the union of
 * struct kvm_irqchip, PIT2 struct kvm_pit_state2, VCPU_EVENTS struct kvm_vcpu_events, DEBUGREGS struct
 * kvm_debugregs.
 */
export const X86StateSize = { XSAVE: 4096, IRQCHIP: 512, PIT2: 112, VCPU_EVENTS: 64, DEBUGREGS: 128 } as const;

/**
 * KVM_VCPUEVENT_VALID_* bits of struct kvm_vcpu_events' flags (a u32 at byte 20): which parts KVM_SET_VCPU_EVENTS
 * takes. Vcpu.setVcpuEvents sets NMI_PENDING, SIPI_VECTOR, SHADOW and SMM and keeps PAYLOAD and TRIPLE_FAULT as
 * KVM_GET_VCPU_EVENTS reported them (KVM sets those only where the VM enabled the capability; elsewhere it refuses them).
 */
export const VcpuEventsFlag = { NMI_PENDING: 0x1, SIPI_VECTOR: 0x2, SHADOW: 0x4, SMM: 0x8, PAYLOAD: 0x10, TRIPLE_FAULT: 0x20 } as const;

export const KVM_API_VERSION = 12;
export const PAGE_SIZE = 4096;

export const MemFlags = { LOG_DIRTY_PAGES: 1, READONLY: 2 } as const;
export const IoeventfdFlags = { DATAMATCH: 1, PIO: 2, DEASSIGN: 4 } as const;
