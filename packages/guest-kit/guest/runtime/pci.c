#include "guest.h"

static u32 cf8_address(u8 bus, u8 dev, u8 fn, u16 off) {
	return 0x80000000u | ((u32)bus << 16) | ((u32)(dev & 31) << 11) | ((u32)(fn & 7) << 8) | (off & 0xfc);
}

u32 pci_cf8_read(u8 bus, u8 dev, u8 fn, u16 off, int size) {
	outl(0xcf8, cf8_address(bus, dev, fn, off));
	u16 port = 0xcfc + (off & 3);
	if (size == 1) return inb(port);
	if (size == 2) return inw(port);
	return inl(0xcfc);
}

void pci_cf8_write(u8 bus, u8 dev, u8 fn, u16 off, int size, u32 v) {
	outl(0xcf8, cf8_address(bus, dev, fn, off));
	u16 port = 0xcfc + (off & 3);
	if (size == 1) outb(port, (u8)v);
	else if (size == 2) outw(port, (u16)v);
	else outl(0xcfc, v);
}

static u64 ecam_address(u64 base, u8 bus, u8 dev, u8 fn, u16 off) {
	return base + ((u64)bus << 20) + ((u64)(dev & 31) << 15) + ((u64)(fn & 7) << 12) + (off & 0xfff);
}

u32 pci_ecam_read(u64 base, u8 bus, u8 dev, u8 fn, u16 off, int size) {
	u64 a = ecam_address(base, bus, dev, fn, off);
	if (size == 1) return mmio_read8(a);
	if (size == 2) return mmio_read16(a);
	return mmio_read32(a);
}

void pci_ecam_write(u64 base, u8 bus, u8 dev, u8 fn, u16 off, int size, u32 v) {
	u64 a = ecam_address(base, bus, dev, fn, off);
	if (size == 1) mmio_write8(a, (u8)v);
	else if (size == 2) mmio_write16(a, (u16)v);
	else mmio_write32(a, v);
}

u64 pci_bar_address(u8 bus, u8 dev, u8 bar) {
	u16 off = 0x10 + 4 * bar;
	u32 lo = pci_cf8_read(bus, dev, 0, off, 4);
	if (lo & 1) return lo & ~3u; /* I/O space */
	u64 a = lo & ~0xfu;
	/* memory type 2: a 64-bit BAR, whose upper half is the next register */
	if (((lo >> 1) & 3) == 2) a |= (u64)pci_cf8_read(bus, dev, 0, off + 4, 4) << 32;
	return a;
}
