/*
 * Benchmark guest for a device with the vfio-user test engine in BAR0 (the "nvme" layout: engine at 0x1000, MSI-X
 * table at 0x2000): interrupt round trips (raise, wait for the MSI-X interrupt), DMA throughput (64 KiB copies)
 * and trapped register reads. Each phase prints "phase NAME begin" and "phase NAME end N BYTES"; the host times
 * the lines as they arrive, so the guest needs no clock.
 */
#include "guest.h"

#define ENGINE 0x1000
static u64 bar0;
static volatile u32 hits;
static void on_vector(struct frame *f) { (void)f; hits++; lapic_eoi(); }

static u8 src[65536] __attribute__((aligned(4096)));
static u8 dst[65536] __attribute__((aligned(4096)));

static u32 reg(u32 off) { return mmio_read32(bar0 + ENGINE + off); }
static void set_reg(u32 off, u32 v) { mmio_write32(bar0 + ENGINE + off, v); }

int main(void) {
	idt_init();
	lapic_enable();
	idt_set_handler(0x60, on_vector);
	int bus = -1, dev = -1;
	for (int b = 0; b < 16 && bus < 0; b++)
		for (int d = 0; d < 32; d++)
			if (pci_cf8_read(b, d, 0, 0, 4) == 0xa808144d) { bus = b, dev = d; break; }
	if (bus < 0) {
		printf("no engine device\n");
		return 2;
	}
	/* BAR0 (64-bit) below 4 GiB, where the identity map reaches. */
	pci_cf8_write(bus, dev, 0, 4, 2, 0);
	bar0 = 0xd0000000UL;
	pci_cf8_write(bus, dev, 0, 0x10, 4, (u32)bar0);
	pci_cf8_write(bus, dev, 0, 0x14, 4, 0);
	pci_cf8_write(bus, dev, 0, 4, 2, 6);
	if (reg(0) != 0x45545556) {
		printf("engine magic %x\n", reg(0));
		return 3;
	}
	u8 m = 0;
	for (u8 at = pci_cf8_read(bus, dev, 0, 0x34, 1); at; at = pci_cf8_read(bus, dev, 0, at + 1, 1))
		if (pci_cf8_read(bus, dev, 0, at, 1) == 0x11) { m = at; break; }
	u32 t = pci_cf8_read(bus, dev, 0, m + 4, 4);
	u64 table = bar0 + (t & ~7u);
	mmio_write32(table, (u32)msi_address(lapic_id()));
	mmio_write32(table + 4, 0);
	mmio_write32(table + 8, 0x60);
	mmio_write32(table + 12, 0);
	pci_cf8_write(bus, dev, 0, m + 2, 2, 0x8000);

	const u32 irqs = 5000, copies = 2000, reads = 20000;
	__asm__ volatile("sti");
	set_reg(0x24, 0);
	printf("phase irq begin\n");
	for (u32 i = 0; i < irqs; i++) {
		set_reg(0x28, 2);
		while (hits <= i) cpu_relax();
	}
	printf("phase irq end %d 0\n", hits);
	for (u32 i = 0; i < sizeof src; i++) src[i] = (u8)i;
	set_reg(0x08, (u32)(u64)src);
	set_reg(0x0c, 0);
	set_reg(0x10, (u32)(u64)dst);
	set_reg(0x14, 0);
	set_reg(0x18, sizeof src);
	set_reg(0x1c, 0);
	printf("phase dma begin\n");
	for (u32 i = 0; i < copies; i++) set_reg(0x28, 3);
	printf("phase dma end %d %d\n", reg(0x30), copies * (u32)sizeof src);
	if (memcmp(src, dst, sizeof src) != 0 || (reg(0x2c) & 2)) printf("dma mismatch\n");
	u32 sum = 0;
	printf("phase mmio begin\n");
	for (u32 i = 0; i < reads; i++) sum += reg(0x38);
	printf("phase mmio end %d 0\n", reads);
	(void)sum;
	return 0;
}
