/*
 * What a guest OS sees of the PCI bus: enumeration through CF8/CFC and ECAM, BAR sizing, masking, moves (onto
 * another device's window and back), decode toggling, 64-bit BAR halves, MSI-X masking and INTx.
 * Runs against two "pci-probe" test functions (1234:beef) whose BARs answer ID (+0) and scratch (+4) registers;
 * BAR1 +8 fires an MSI-X vector, +0xC drives INTx. Prints "FAIL ..." for each broken check; exits with the count.
 */
#include "checks.h"
#include "probe-irq.h"

static u32 cfg(u8 dev, u16 off, int size) { return pci_cf8_read(0, dev, 0, off, size); }
static void set_cfg(u8 dev, u16 off, int size, u32 v) { pci_cf8_write(0, dev, 0, off, size, v); }

#define PROBE_ID 0xbeef1234u
#define ID_MAGIC 0xa0000000u

static void check_enumeration(u64 ecam, u8 a) {
	outl(0xcf8, 0x80001234);
	EXPECT(inl(0xcf8), 0x80001234, "CF8 latch reads back");
	outl(0xcf8, 0x7fffffff);
	outb(0xcfa, 0x55);
	EXPECT(inl(0xcf8), 0x00fffffc, "CF8 latch ignores byte writes; reserved bits 30:24 and 1:0 read 0");

	EXPECT(cfg(0, 0, 4), 0x29c08086, "host bridge id");
	EXPECT(cfg(0, 8, 4) >> 8, 0x060000, "host bridge class");
	EXPECT(pci_cf8_read(1, 0, 0, 0, 4), 0xffffffff, "bus 1 is empty (bus decoded)");
	EXPECT(pci_cf8_read(255, 0, 0, 0, 4), 0xffffffff, "bus 255 is empty");
	outl(0xcf8, 0x00000000);
	EXPECT(inl(0xcfc), 0xffffffff, "enable bit clear reads all-ones");
	for (u8 fn = 1; fn < 8; fn++) EXPECT(pci_cf8_read(0, a, fn, 0, 4), 0xffffffff, "absent function");
	EXPECT(cfg(31, 0, 4), 0xffffffff, "device 31 absent");

	outl(0xcf8, 0x80000000);
	EXPECT(inb(0xcfd), 0x80, "CFC byte lane 1");
	EXPECT(inw(0xcfe), 0x29c0, "CFC word at 2");
	EXPECT(inw(0xcfd), 0xc080, "CFC word at 1, inside the dword");
	EXPECT(inl(0xcfe), 0xffffffff, "misaligned dword dropped");
	EXPECT(inw(0xcff), 0xffff, "word crossing the dword dropped");

	EXPECT(pci_ecam_read(ecam, 0, a, 0, 0, 4), cfg(a, 0, 4), "ECAM agrees with CF8");
	EXPECT(pci_ecam_read(ecam, 0, a, 1, 0, 4), 0xffffffff, "ECAM absent function");
	EXPECT(pci_ecam_read(ecam, 1, 0, 0, 0, 4), 0xffffffff, "ECAM bus 1");
	EXPECT(mmio_read16(ecam + ((u64)a << 15) + 1), (cfg(a, 0, 4) >> 8) & 0xffff, "ECAM word at 1, inside the dword");
	EXPECT(mmio_read16(ecam + ((u64)a << 15) + 3), 0xffff, "ECAM word crossing the dword dropped");
	EXPECT(mmio_read64(ecam + ((u64)a << 15)), 0xffffffffffffffffUL, "ECAM 8-byte read dropped");
	EXPECT(pci_ecam_read(ecam, 0, a, 0, 0x100, 4), 0, "conventional function: extended space reads 0");
}

static void check_header(u8 a) {
	EXPECT(cfg(a, 4, 2), 0x0003, "command: VMM enabled I/O and memory decode");
	CHECK(cfg(a, 6, 2) & 0x10, "status has the capability list bit");
	EXPECT(cfg(a, 0x34, 1), 0x40, "capability pointer");
	EXPECT(cfg(a, 0x3d, 1), 1, "interrupt pin INTA");
	u8 line = cfg(a, 0x3c, 1);
	CHECK(line >= 16 && line < 24, "interrupt line %u is an IOAPIC GSI", line);

	set_cfg(a, 4, 2, 0xffff);
	EXPECT(cfg(a, 4, 2), 0x0547, "command writable mask");
	set_cfg(a, 4, 2, 0x0003);
	set_cfg(a, 6, 2, 0xffff);
	CHECK((cfg(a, 6, 2) & ~0x0008u) == 0x0010, "status is read-only: %x", cfg(a, 6, 2));
	set_cfg(a, 0x0c, 4, 0xffffffff);
	EXPECT(cfg(a, 0x0e, 1), 0x00, "header type read-only");
	EXPECT(cfg(a, 0x0f, 1), 0x00, "BIST read-only");
	set_cfg(a, 0x3c, 4, 0xaabbccdd);
	EXPECT(cfg(a, 0x3c, 1), 0xdd, "interrupt line writable");
	EXPECT(cfg(a, 0x3d, 1), 1, "interrupt pin read-only");
	set_cfg(a, 0x3c, 1, line);
	set_cfg(a, 0x30, 4, 0xffffffff);
	EXPECT(cfg(a, 0x30, 4), 0, "no ROM: ROM BAR reads 0");
	u32 cap = cfg(a, 0x40, 4);
	set_cfg(a, 0x40, 4, 0xdeadbeef);
	EXPECT(cfg(a, 0x40, 2), cap & 0xffff, "capability ID and next pointer read-only");
	EXPECT(cfg(a, 0x42, 2), 0xc000 | (cap >> 16), "MSI-X control: only enable and function mask are writable");
	set_cfg(a, 0x40, 4, cap);
}

static void check_sizing(u8 a) {
	u32 bar0 = cfg(a, 0x10, 4), bar1 = cfg(a, 0x14, 4);
	set_cfg(a, 4, 2, 0);
	set_cfg(a, 0x10, 4, 0xffffffff);
	EXPECT(cfg(a, 0x10, 4), 0xffffff01, "I/O BAR size 0x100");
	set_cfg(a, 0x14, 4, 0xffffffff);
	EXPECT(cfg(a, 0x14, 4), 0xfffff000, "memory BAR size 4 KiB");
	set_cfg(a, 0x18, 4, 0xffffffff);
	set_cfg(a, 0x1c, 4, 0xffffffff);
	EXPECT(cfg(a, 0x18, 4), 0xffffc00c, "64-bit prefetchable BAR low half sizes 16 KiB");
	EXPECT(cfg(a, 0x1c, 4), 0xffffffff, "64-bit BAR high half");
	set_cfg(a, 0x24, 4, 0xffffffff);
	EXPECT(cfg(a, 0x24, 4), 0, "unimplemented BAR5 reads 0");

	set_cfg(a, 0x10, 4, 0x12345678);
	EXPECT(cfg(a, 0x10, 4), 0x12345601, "I/O BAR address masked to its size");
	set_cfg(a, 0x14, 4, 0x12345678);
	EXPECT(cfg(a, 0x14, 4), 0x12345000, "memory BAR address masked to its size");
	set_cfg(a, 0x14, 4, 0);
	set_cfg(a, 0x14, 2, 0xffff);
	EXPECT(cfg(a, 0x14, 4), 0x0000f000, "16-bit BAR write");
	set_cfg(a, 0x17, 1, 0xab);
	EXPECT(cfg(a, 0x14, 4), 0xab00f000, "byte write to BAR byte 3");

	set_cfg(a, 0x10, 4, bar0);
	set_cfg(a, 0x14, 4, bar1);
	EXPECT(cfg(a, 0x10, 4), bar0, "I/O BAR restored");
	EXPECT(cfg(a, 0x14, 4), bar1, "memory BAR restored");
	set_cfg(a, 4, 2, 3);
	/* Sizing while decode is on must not break the mapping afterwards. */
	set_cfg(a, 0x14, 4, 0xffffffff);
	set_cfg(a, 0x14, 4, bar1);
	EXPECT(mmio_read32(pci_bar_address(0, a, 1)), ID_MAGIC | a, "device answers after sizing with decode on");
}

static void check_moves(u8 a, u8 b, u64 free_mem) {
	u64 a1 = pci_bar_address(0, a, 1), b1 = pci_bar_address(0, b, 1);
	EXPECT(mmio_read32(a1), ID_MAGIC | a, "A BAR1 ID");
	EXPECT(mmio_read32(b1), ID_MAGIC | b, "B BAR1 ID");
	EXPECT(inl((u16)pci_bar_address(0, a, 0)), ID_MAGIC | a, "A BAR0 (I/O) ID");

	set_cfg(a, 0x14, 4, (u32)free_mem);
	EXPECT(mmio_read32(free_mem), ID_MAGIC | a, "A answers at its new address");
	EXPECT(mmio_read32(a1), 0xffffffff, "old address no longer decoded");
	mmio_write32(free_mem + 4, 0x5a5a1234);
	EXPECT(mmio_read32(free_mem + 4), 0x5a5a1234, "scratch register through the moved BAR");

	/* B onto A's window (Linux does this for a moment while it reassigns). */
	set_cfg(b, 0x14, 4, (u32)free_mem);
	EXPECT(mmio_read32(free_mem), ID_MAGIC | b, "B wins the overlapped window");
	set_cfg(b, 0x14, 4, (u32)b1);
	EXPECT(mmio_read32(b1), ID_MAGIC | b, "B back home");
	EXPECT(mmio_read32(free_mem), ID_MAGIC | a, "A's window comes back when the overlap ends");
	/* A partial overlap: B's 4 KiB window half-way... BARs are size-aligned, so overlap A at the same base again
	 * but through a second move of A onto B. */
	set_cfg(a, 0x14, 4, (u32)b1);
	EXPECT(mmio_read32(b1), ID_MAGIC | a, "A wins B's window");
	set_cfg(a, 0x14, 4, (u32)a1);
	EXPECT(mmio_read32(a1), ID_MAGIC | a, "A home");
	EXPECT(mmio_read32(b1), ID_MAGIC | b, "B's window back");

	/* I/O BAR move with decode on, and a move onto the UART that must roll back. */
	u16 io = (u16)pci_bar_address(0, a, 0);
	set_cfg(a, 0x10, 4, 0x7000);
	EXPECT(inl(0x7000), ID_MAGIC | a, "I/O BAR moved");
	EXPECT(inl(io), 0xffffffff, "old I/O window gone");
	set_cfg(a, 0x10, 4, 0x3f8);
	EXPECT(cfg(a, 0x10, 4), 0x7001, "move onto the UART rolled back");
	EXPECT(inb(0x3fd) & 0x60, 0x60, "UART still answers");
	set_cfg(a, 0x10, 4, io);
	EXPECT(inl(io), ID_MAGIC | a, "I/O BAR home");
}

static void check_decode_toggle(u8 a) {
	u64 a1 = pci_bar_address(0, a, 1), table = pci_bar_address(0, a, 4);
	u16 io = (u16)pci_bar_address(0, a, 0);
	set_cfg(a, 4, 2, 0x0001);
	EXPECT(mmio_read32(a1), 0xffffffff, "memory decode off: BAR1 gone");
	EXPECT(mmio_read32(table), 0xffffffff, "memory decode off: MSI-X table gone");
	EXPECT(inl(io), ID_MAGIC | a, "I/O still decoded");
	set_cfg(a, 4, 2, 0x0002);
	EXPECT(inl(io), 0xffffffff, "I/O decode off");
	EXPECT(mmio_read32(a1), ID_MAGIC | a, "memory decode back on");
	set_cfg(a, 4, 2, 0x0003);
}

static void check_bar64(u8 a, u64 free_mem) {
	u32 lo = cfg(a, 0x18, 4), hi = cfg(a, 0x1c, 4);
	CHECK((lo & 0x6) == 0x4, "BAR2 is 64-bit: %x", lo);
	set_cfg(a, 0x18, 4, (u32)free_mem | (lo & 0xf));
	EXPECT(mmio_read32(free_mem), 0xffffffff, "64-bit BAR does not move on the low half alone");
	set_cfg(a, 0x1c, 4, 0);
	EXPECT(mmio_read32(free_mem), ID_MAGIC | a, "64-bit BAR moved once both halves were written");
	set_cfg(a, 0x18, 4, lo);
	set_cfg(a, 0x1c, 4, hi);
	EXPECT(mmio_read32(free_mem), 0xffffffff, "64-bit BAR moved back");
}

/* Table and PBA locations come from the capability (BIR in bits 0-2, offset above), as a driver reads them. */
static u64 msix_region(u8 dev, u16 reg) {
	u32 v = cfg(dev, 0x40 + reg, 4);
	return pci_bar_address(0, dev, v & 7) + (v & ~7u);
}

static void check_msix(u8 a) {
	EXPECT(cfg(a, 0x40, 1), 0x11, "MSI-X capability at 0x40");
	EXPECT(cfg(a, 0x42, 2) & 0x7ff, 1, "MSI-X table size 2");
	u64 table = msix_region(a, 4), pba = msix_region(a, 8), regs = pci_bar_address(0, a, 1);
	EXPECT(mmio_read32(table + 12), 1, "vector 0 starts masked");
	EXPECT(mmio_read32(table + 16 + 12), 1, "vector 1 starts masked");
	EXPECT(mmio_read32(pba), 0, "PBA starts clear");
	mmio_write32(table + 0, (u32)msi_address(lapic_id()));
	mmio_write32(table + 4, 0);
	mmio_write32(table + 8, msi_data(0x41));
	u16 ctrl = cfg(a, 0x42, 2);
	EXPECT(ctrl & 0xc000, 0, "MSI-X starts disabled and unmasked");
	set_cfg(a, 0x42, 2, ctrl | 0x8000); /* MSI-X enable */
	set_cfg(a, 4, 2, 0x0007);           /* bus master */
	mmio_write32(regs + 8, 0);          /* fire vector 0 while masked */
	wait_irq();
	EXPECT(msix_hits, 0, "masked vector not delivered");
	EXPECT(mmio_read32(pba) & 1, 1, "masked event sets the pending bit");
	mmio_write32(table + 12, 0); /* unmask */
	wait_irq();
	EXPECT(msix_hits, 1, "pending vector delivered on unmask");
	EXPECT(mmio_read32(pba) & 1, 0, "pending bit cleared on delivery");
	mmio_write32(table + 8, msi_data(0x42));
	idt_set_handler(0x42, on_msix);
	mmio_write32(regs + 8, 0);
	wait_irq();
	EXPECT(msix_hits, 2, "live message data change takes effect");
	set_cfg(a, 0x42, 2, ctrl);
}

static void check_intx(u8 a) {
	u8 line = cfg(a, 0x3c, 1);
	ioapic_route(line, 0x51, lapic_id(), 1);
	u64 regs = pci_bar_address(0, a, 1);
	set_cfg(a, 4, 2, 0x0403); /* interrupt disable */
	mmio_write32(regs + 0xc, 1);
	wait_irq();
	EXPECT(intx_hits, 0, "INTx masked by the command register");
	CHECK(cfg(a, 6, 2) & 0x8, "status shows the pending interrupt");
	set_cfg(a, 4, 2, 0x0003);
	wait_irq();
	mmio_write32(regs + 0xc, 0);
	CHECK(intx_hits >= 1, "INTx delivered once the disable bit clears");
	EXPECT(cfg(a, 6, 2) & 0x8, 0, "status clears with the line");
	ioapic_mask(line);
}

int main(void) {
	idt_init();
	lapic_enable();
	idt_set_handler(0x41, on_msix);
	idt_set_handler(0x51, on_intx);
	idt_set_handler(WAKE_VECTOR, on_wake);
	u64 ecam = acpi_ecam_base();
	CHECK(ecam != 0, "MCFG gives the ECAM base");
	int a = -1, b = -1;
	u64 top = 0;
	for (u8 dev = 0; dev < 32; dev++) {
		u32 id = cfg(dev, 0, 4);
		if (id == 0xffffffff) continue;
		printf("pci 00:%02x.0 %04x:%04x class %06x\n", dev, id & 0xffff, id >> 16, cfg(dev, 8, 4) >> 8);
		if (id == PROBE_ID) {
			if (a < 0) a = dev;
			else if (b < 0) b = dev;
		}
		for (int bar = 0; bar < 6; bar++) {
			u32 v = cfg(dev, 0x10 + 4 * bar, 4);
			if ((v & 1) == 0 && v >= 0xc0000000u && v < 0xe0000000u && (v & ~0xfu) + 0x100000 > top) top = (v & ~0xfu) + 0x100000;
		}
	}
	if (a < 0 || b < 0 || !ecam) {
		printf("need two pci-probe functions and ECAM\n");
		return 2;
	}
	u64 free_mem = (top + 0xfffff) & ~0xfffffUL;
	check_enumeration(ecam, a);
	check_header(a);
	check_sizing(a);
	check_moves(a, b, free_mem);
	check_decode_toggle(a);
	check_bar64(a, free_mem);
	check_msix(a);
	check_intx(a);
	return checks_done("pci-bus");
}
