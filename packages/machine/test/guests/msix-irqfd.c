/*
 * Programs MSI-X on the "msix-probe" test function (1234:f00d) the way a driver does and checks what arrives:
 * masked vector stays pending until unmask, a message change (vector 0x41 -> 0x42) takes effect, the function
 * mask holds deliveries back, and a second vector with the same message is delivered too.
 * BAR0 +0: writing n fires MSI-X vector n. The MSI-X table is where the capability says.
 * Prints "FAIL ..." for each broken check and exits with the number of failures.
 */
#include "guest.h"

static int failures, checks;
#define EXPECT(got, want, what)                                                       \
	do {                                                                              \
		checks++;                                                                     \
		if ((u32)(got) != (u32)(want)) {                                              \
			failures++;                                                               \
			printf("FAIL %s: got %x want %x\n", what, (u32)(got), (u32)(want));       \
		}                                                                             \
	} while (0)

static volatile u32 hits41, hits42;
static void on_41(struct frame *f) { (void)f; hits41++; lapic_eoi(); }
static void on_42(struct frame *f) { (void)f; hits42++; lapic_eoi(); }
#define WAKE_VECTOR 0x30
static void on_wake(struct frame *f) { (void)f; lapic_eoi(); }

/* Halts a few times, woken by an interrupt or a LAPIC one-shot timer, so "nothing arrived" checks end too. */
static void wait_irq(void) {
	for (int i = 0; i < 3; i++) {
		mmio_write32(LAPIC_BASE + 0x3e0, 0xb);
		mmio_write32(LAPIC_BASE + 0x320, WAKE_VECTOR);
		mmio_write32(LAPIC_BASE + 0x380, 2000000);
		sti_hlt();
	}
	cli();
}

static u32 cfg(u8 dev, u16 off, int size) { return pci_cf8_read(0, dev, 0, off, size); }
static void set_cfg(u8 dev, u16 off, int size, u32 v) { pci_cf8_write(0, dev, 0, off, size, v); }

int main(void) {
	idt_init();
	lapic_enable();
	idt_set_handler(0x41, on_41);
	idt_set_handler(0x42, on_42);
	idt_set_handler(WAKE_VECTOR, on_wake);
	int a = -1;
	for (u8 dev = 0; dev < 32 && a < 0; dev++)
		if (cfg(dev, 0, 4) == 0xf00d1234u) a = dev;
	if (a < 0) { printf("FAIL msix-probe not found\n"); return 100; }
	u8 cap = 0;
	for (u8 at = cfg(a, 0x34, 1); at; at = cfg(a, at + 1, 1))
		if (cfg(a, at, 1) == 0x11) cap = at;
	if (!cap) { printf("FAIL no MSI-X capability\n"); return 101; }
	u32 t = cfg(a, cap + 4, 4), p = cfg(a, cap + 8, 4);
	u64 table = pci_bar_address(0, a, t & 7) + (t & ~7u), pba = pci_bar_address(0, a, p & 7) + (p & ~7u),
	    fire = pci_bar_address(0, a, 0);
	u16 ctrl = cfg(a, cap + 2, 2) & 0x3fff;

	mmio_write32(table + 0, (u32)msi_address(lapic_id()));
	mmio_write32(table + 4, 0);
	mmio_write32(table + 8, msi_data(0x41));
	set_cfg(a, cap + 2, 2, ctrl | 0x8000); /* enable, vector 0 still masked */
	set_cfg(a, 4, 2, 0x0006);             /* memory decode, bus master */
	mmio_write32(fire, 0);
	wait_irq();
	EXPECT(hits41, 0, "masked vector not delivered");
	EXPECT(mmio_read32(pba) & 1, 1, "masked vector pending");
	mmio_write32(table + 12, 0); /* unmask: the pending message goes out */
	wait_irq();
	EXPECT(hits41, 1, "pending vector delivered on unmask");
	EXPECT(mmio_read32(pba) & 1, 0, "pending bit cleared");
	mmio_write32(fire, 0);
	wait_irq();
	EXPECT(hits41, 2, "unmasked vector delivered");

	mmio_write32(table + 8, msi_data(0x42)); /* live message change */
	mmio_write32(fire, 0);
	wait_irq();
	EXPECT(hits41, 2, "old message no longer used");
	EXPECT(hits42, 1, "new message delivered");

	set_cfg(a, cap + 2, 2, ctrl | 0xc000); /* function mask */
	mmio_write32(fire, 0);
	wait_irq();
	EXPECT(hits42, 1, "function mask holds the vector back");
	EXPECT(mmio_read32(pba) & 1, 1, "pending under the function mask");
	set_cfg(a, cap + 2, 2, ctrl | 0x8000);
	wait_irq();
	EXPECT(hits42, 2, "delivered when the function mask clears");

	mmio_write32(table + 16 + 0, (u32)msi_address(lapic_id()));
	mmio_write32(table + 16 + 4, 0);
	mmio_write32(table + 16 + 8, msi_data(0x42));
	mmio_write32(table + 16 + 12, 0);
	mmio_write32(fire, 1);
	wait_irq();
	EXPECT(hits42, 3, "vector 1 (same message as vector 0) delivered");

	printf("msix-irqfd: %d checks, %d failures\n", checks, failures);
	return failures;
}
