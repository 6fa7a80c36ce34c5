#include "guest.h"

struct gate {
	u16 offset_lo, selector;
	u8 ist, type;
	u16 offset_mid;
	u32 offset_hi, zero;
} __attribute__((packed));

static struct gate idt[256] __attribute__((aligned(16)));
static isr_handler handlers[256];
extern const u64 isr_table[256];

static const char *const exception_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "?",
	"#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

void isr_dispatch(struct frame *f) {
	isr_handler h = handlers[f->vector & 0xff];
	if (h) {
		h(f);
		return;
	}
	const char *name = f->vector < 32 && exception_names[f->vector] ? exception_names[f->vector] : "interrupt";
	printf("guest-kit: unhandled %s (vector %u) at rip %lx error %lx\n", name, (u32)f->vector, f->rip, f->error);
	exit(0x7f);
}

void idt_set_handler(u8 vector, isr_handler h) {
	handlers[vector] = h;
}

void idt_init(void) {
	u16 cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	for (int i = 0; i < 256; i++) {
		u64 a = isr_table[i];
		idt[i].offset_lo = (u16)a;
		idt[i].selector = cs;
		idt[i].ist = 0;
		idt[i].type = 0x8e; /* present, DPL 0, 64-bit interrupt gate */
		idt[i].offset_mid = (u16)(a >> 16);
		idt[i].offset_hi = (u32)(a >> 32);
		idt[i].zero = 0;
	}
	struct {
		u16 limit;
		u64 base;
	} __attribute__((packed)) ptr = {sizeof(idt) - 1, (u64)idt};
	__asm__ volatile("lidt %0" : : "m"(ptr));
}

#define LAPIC_ID 0x20
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310

u32 lapic_id(void) {
	return mmio_read32(LAPIC_BASE + LAPIC_ID) >> 24;
}

/* The legacy 8259 PICs also see ISA IRQs (KVM's irqchip has both); remap them away from the exception vectors and
 * mask them so only the IOAPIC delivers. */
static void pic_disable(void) {
	outb(0x20, 0x11);
	outb(0xa0, 0x11);
	outb(0x21, 0x20);
	outb(0xa1, 0x28);
	outb(0x21, 0x04);
	outb(0xa1, 0x02);
	outb(0x21, 0x01);
	outb(0xa1, 0x01);
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

void lapic_enable(void) {
	pic_disable();
	mmio_write32(LAPIC_BASE + LAPIC_SVR, 0x100 | 0xff);
}

void lapic_eoi(void) {
	mmio_write32(LAPIC_BASE + LAPIC_EOI, 0);
}

void lapic_self_ipi(u8 vector) {
	mmio_write32(LAPIC_BASE + LAPIC_ICR_HI, 0);
	mmio_write32(LAPIC_BASE + LAPIC_ICR_LO, 0x40000 | vector); /* shorthand: self */
}

static void ioapic_write(u8 reg, u32 v) {
	mmio_write32(IOAPIC_BASE, reg);
	mmio_write32(IOAPIC_BASE + 0x10, v);
}

void ioapic_route(u8 pin, u8 vector, u8 dest_apic, int level_low) {
	u32 lo = vector | (level_low ? (1u << 13) | (1u << 15) : 0);
	ioapic_write(0x10 + 2 * pin + 1, (u32)dest_apic << 24);
	ioapic_write(0x10 + 2 * pin, lo);
}

void ioapic_mask(u8 pin) {
	ioapic_write(0x10 + 2 * pin, 1u << 16);
}
