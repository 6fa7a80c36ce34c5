/* guest-kit runtime: a freestanding x86_64 environment for VMM test guests. */
#ifndef GUEST_KIT_H
#define GUEST_KIT_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long u64;
typedef unsigned long size_t;
#define NULL ((void *)0)

/* Port I/O and MMIO */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u8 mmio_read8(u64 a) { return *(volatile u8 *)a; }
static inline u16 mmio_read16(u64 a) { return *(volatile u16 *)a; }
static inline u32 mmio_read32(u64 a) { return *(volatile u32 *)a; }
static inline u64 mmio_read64(u64 a) { return *(volatile u64 *)a; }
static inline void mmio_write8(u64 a, u8 v) { *(volatile u8 *)a = v; }
static inline void mmio_write16(u64 a, u16 v) { *(volatile u16 *)a = v; }
static inline void mmio_write32(u64 a, u32 v) { *(volatile u32 *)a = v; }
static inline void mmio_write64(u64 a, u64 v) { *(volatile u64 *)a = v; }
static inline void cpu_relax(void) { __asm__ volatile("pause"); }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
/* A pending interrupt is taken only after `sti; hlt` on this host's emulated KVM (see host-kvm.md). */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
static inline u64 rdtsc(void) { u32 lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((u64)hi << 32) | lo; }
static inline void cpuid(u32 leaf, u32 sub, u32 *a, u32 *b, u32 *c, u32 *d) {
	__asm__ volatile("cpuid" : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d) : "a"(leaf), "c"(sub));
}
static inline u32 atomic_add(volatile u32 *p, u32 v) {
	__asm__ volatile("lock xaddl %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

/* Library */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);

/* Serial console (COM1, polled output) */
void serial_init(void);
void serial_putc(char c);
void serial_puts(const char *s);
int serial_getc_nowait(void); /* -1 when no byte waits */
/* printf with %d %u %x %lx %lu %ld %s %c %p and an optional zero-pad width (%08x) */
void printf(const char *fmt, ...);

/* The bootstrap CPU's main returns the exit status; APs run ap_main (default: halt). */
int main(void);
void ap_main(u32 apic_id);
/* Ends the VM through the debug-exit port 0x501 with `status` (0 = success). Never returns. */
__attribute__((noreturn)) void exit(int status);

/* PCI configuration space: mechanism #1 (CF8/CFC) and ECAM */
u32 pci_cf8_read(u8 bus, u8 dev, u8 fn, u16 off, int size);
void pci_cf8_write(u8 bus, u8 dev, u8 fn, u16 off, int size, u32 v);
u32 pci_ecam_read(u64 base, u8 bus, u8 dev, u8 fn, u16 off, int size);
void pci_ecam_write(u64 base, u8 bus, u8 dev, u8 fn, u16 off, int size, u32 v);
/* Where BAR `bar` of bus:dev.0 is decoded now: an I/O port, a 32-bit or a 64-bit memory address (flag bits cleared) */
u64 pci_bar_address(u8 bus, u8 dev, u8 bar);

/* ACPI: the RSDP (EBDA or BIOS area) and tables by signature */
const void *acpi_rsdp(void);
const void *acpi_table(const char sig[4]);
int acpi_checksum_ok(const void *table, u32 len);
/* MCFG: the ECAM base for segment 0 (0 when absent) */
u64 acpi_ecam_base(void);
/* MADT: number of enabled processors */
int acpi_cpu_count(void);

/* Interrupts */
struct frame {
	u64 r15, r14, r13, r12, r11, r10, r9, r8, rdi, rsi, rbp, rbx, rdx, rcx, rax;
	u64 vector, error, rip, cs, rflags, rsp, ss;
};
typedef void (*isr_handler)(struct frame *f);
void idt_init(void);
void idt_set_handler(u8 vector, isr_handler h);

/* Local APIC (xAPIC MMIO) and IOAPIC */
#define LAPIC_BASE 0xfee00000UL
#define IOAPIC_BASE 0xfec00000UL
u32 lapic_id(void);
void lapic_enable(void);
void lapic_eoi(void);
void lapic_self_ipi(u8 vector);
void ioapic_route(u8 pin, u8 vector, u8 dest_apic, int level_low);
void ioapic_mask(u8 pin);
/* The MSI address/data a device should use to reach `vector` on `dest_apic` */
static inline u64 msi_address(u8 dest_apic) { return 0xfee00000UL | ((u64)dest_apic << 12); }
static inline u32 msi_data(u8 vector) { return vector; }

/* RTC (CMOS) */
u8 cmos_read(u8 reg);

#endif
