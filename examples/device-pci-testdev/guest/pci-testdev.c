/*
 * Guest test for @x/device-pci-testdev, built with @vmm/guest-kit's runtime. It enumerates bus 0 through
 * CF8/CFC, finds the test device (7e57:0001), and exercises it through both BARs: the ID register, the scratch
 * register (written through memory, read through I/O), the doorbell counter, and an MSI-X interrupt raised by
 * writing a vector number to MSIX_TRIGGER. Prints "pci-testdev: PASS" and exits 0, or exits 1 naming the check.
 */
#include "guest.h" /* @vmm/guest-kit runtime (guest/runtime on the include path) */

#define VENDOR 0x7e57
#define DEVICE 0x0001
#define REG_ID 0x00
#define REG_SCRATCH 0x04
#define REG_COUNTER 0x08
#define REG_DOORBELL 0x0c
#define REG_LAST_DOORBELL 0x10
#define REG_MSIX_TRIGGER 0x14
#define REG_IRQ_COUNT 0x18
#define REG_ERRORS 0x1c
#define ID_TEST 0x54534554 /* "TEST" */
#define MSIX_CAP 0x11
#define VECTOR 0x45
#define MSIX_ENTRY 1

static volatile u32 interrupts;
static int failures;

static void msix_isr(struct frame *f) {
	(void)f;
	interrupts++;
	lapic_eoi();
}

static void check(int ok, const char *what, u32 got, u32 want) {
	printf("pci-testdev: %s: %s (got %08x, want %08x)\n", what, ok ? "ok" : "FAIL", got, want);
	if (!ok) failures++;
}
#define EXPECT(what, got, want) do { u32 g_ = (got), w_ = (want); check(g_ == w_, what, g_, w_); } while (0)

int main(void) {
	int found = -1;
	printf("bus 0:\n");
	for (u8 dev = 0; dev < 32; dev++) {
		u32 id = pci_cf8_read(0, dev, 0, 0x00, 4);
		if (id == 0xffffffff) continue;
		u32 class = pci_cf8_read(0, dev, 0, 0x08, 4) >> 8;
		printf("  00:%02x.0 %04x:%04x class %06x\n", dev, id & 0xffff, id >> 16, class);
		if ((id & 0xffff) == VENDOR && (id >> 16) == DEVICE) found = dev;
	}
	if (found < 0) {
		printf("pci-testdev: FAIL: device %04x:%04x not found\n", VENDOR, DEVICE);
		return 1;
	}
	u8 d = (u8)found;
	u32 cmd = pci_cf8_read(0, d, 0, 0x04, 2);
	pci_cf8_write(0, d, 0, 0x04, 2, cmd | 0x7); /* I/O and memory decoding (the VMM enables them already), bus master for MSI-X */
	u64 mem = pci_cf8_read(0, d, 0, 0x10, 4) & ~0xfUL;
	u16 io = (u16)(pci_cf8_read(0, d, 0, 0x14, 4) & ~0x3U);
	printf("pci-testdev at 00:%02x.0, BAR0 memory %lx, BAR1 I/O %x\n", d, mem, io);

	EXPECT("ID through memory", mmio_read32(mem + REG_ID), ID_TEST);
	EXPECT("ID through I/O", inl(io + REG_ID), ID_TEST);
	mmio_write32(mem + REG_SCRATCH, 0xa5a5f00d);
	EXPECT("scratch written via memory, read via I/O", inl(io + REG_SCRATCH), 0xa5a5f00d);
	outl(io + REG_SCRATCH, 0x12345678);
	EXPECT("scratch high half via memory", mmio_read16(mem + REG_SCRATCH + 2), 0x1234);
	mmio_write32(mem + REG_DOORBELL, 1);
	outl(io + REG_DOORBELL, 2);
	mmio_write32(mem + REG_DOORBELL, 0xbeef);
	EXPECT("doorbell counter", mmio_read32(mem + REG_COUNTER), 3);
	EXPECT("last doorbell value", inl(io + REG_LAST_DOORBELL), 0xbeef);

	/* MSI-X: find the capability, program one table entry for our vector, enable, trigger. */
	u8 cap = (u8)pci_cf8_read(0, d, 0, 0x34, 1);
	while (cap && pci_cf8_read(0, d, 0, cap, 1) != MSIX_CAP) cap = (u8)pci_cf8_read(0, d, 0, cap + 1, 1);
	if (!cap) {
		printf("pci-testdev: FAIL: no MSI-X capability\n");
		return 1;
	}
	u32 table = pci_cf8_read(0, d, 0, cap + 4, 4);
	u32 bir = table & 7;
	u64 entry = (bir == 0 ? mem : 0) + (table & ~7U) + MSIX_ENTRY * 16;
	EXPECT("MSI-X table BAR", bir, 0);
	idt_init();
	idt_set_handler(VECTOR, msix_isr);
	lapic_enable();
	mmio_write32(entry + 0, (u32)msi_address((u8)lapic_id()));
	mmio_write32(entry + 4, 0);
	mmio_write32(entry + 8, msi_data(VECTOR));
	mmio_write32(entry + 12, 0); /* unmask */
	u16 control = (u16)pci_cf8_read(0, d, 0, cap + 2, 2);
	pci_cf8_write(0, d, 0, cap + 2, 2, control | 0x8000);
	mmio_write32(mem + REG_MSIX_TRIGGER, MSIX_ENTRY);
	/* The interrupt is pending by now; it is taken some instructions after sti. Poll with a bound, never hang. */
	__asm__ volatile("sti");
	for (u32 spins = 0; interrupts == 0 && spins < 200000; spins++) cpu_relax();
	cli();
	EXPECT("MSI-X interrupts received", interrupts, 1);
	EXPECT("device's IRQ count", mmio_read32(mem + REG_IRQ_COUNT), 1);
	EXPECT("dropped accesses", inl(io + REG_ERRORS), 0);

	if (failures) {
		printf("pci-testdev: FAIL (%d checks)\n", failures);
		return 1;
	}
	printf("pci-testdev: PASS\n");
	return 0;
}
