/*
 * VESA guest: finds the 1234:1111 display function on bus 0, checks the Bochs VBE interface, sets a 32 bpp mode,
 * checks that an impossible mode is refused, draws the test pattern (the same function as the host test's
 * patternColour) into the linear framebuffer at BAR 0, then waits for a byte on COM1, draws one more block (so
 * the host sees a dirty-logged incremental change) and exits 0.
 */
#include "guest.h"

#define VBE_INDEX 0x1ce
#define VBE_DATA 0x1cf
#define WIDTH 320
#define HEIGHT 192

static void vbe_write(u16 index, u16 value) { outw(VBE_INDEX, index); outw(VBE_DATA, value); }
static u16 vbe_read(u16 index) { outw(VBE_INDEX, index); return inw(VBE_DATA); }

static u32 pattern(u32 x, u32 y) {
	if (x == y) return 0xffffff;
	if (x == 77 && y == 13) return 0x010203;
	u32 bx = x >> 5, by = y >> 5;
	u32 r = (bx * 53 + by * 17) & 0xff, g = (bx * 29 + by * 71 + 40) & 0xff, b = (bx * 7 + by * 113 + 90) & 0xff;
	return (r << 16) | (g << 8) | b;
}

static void set_mode(u16 w, u16 h, u16 bpp) {
	vbe_write(4, 0);
	vbe_write(1, w);
	vbe_write(2, h);
	vbe_write(3, bpp);
	vbe_write(4, 0x41); /* ENABLED | LFB_ENABLED */
}

int main(void) {
	int slot = -1;
	for (u8 dev = 0; dev < 32; dev++)
		if (pci_cf8_read(0, dev, 0, 0, 4) == 0x11111234) slot = dev;
	if (slot < 0) { printf("vesa: no 1234:1111 function\n"); return 1; }
	u32 class = pci_cf8_read(0, slot, 0, 8, 4) >> 8;
	u32 bar = pci_cf8_read(0, slot, 0, 0x10, 4);
	u64 lfb = bar & ~0xfUL;
	u16 id = vbe_read(0);
	printf("vesa: slot %d class %06x bar0 %08x id %x mem %u x64K\n", slot, class, bar, id, vbe_read(10));
	if ((id & 0xfff0) != 0xb0c0 || !lfb) return 2;

	set_mode(WIDTH, HEIGHT, 32);
	printf("vesa: mode %ux%ux%u enable %x\n", vbe_read(1), vbe_read(2), vbe_read(3), vbe_read(4));
	set_mode(2560, 1600, 32); /* 16 MiB fits 2560x1600x32 ... */
	vbe_write(6, 8192);       /* ... but not a 8192-pixel virtual width: refused */
	printf("vesa: virt width %u\n", vbe_read(6));
	set_mode(4000, 3000, 32); /* out of range: refused, registers keep the previous mode */
	printf("vesa: after refused mode %ux%u enable %x\n", vbe_read(1), vbe_read(2), vbe_read(4));
	set_mode(WIDTH, HEIGHT, 32);

	volatile u32 *fb = (volatile u32 *)lfb;
	for (u32 y = 0; y < HEIGHT; y++)
		for (u32 x = 0; x < WIDTH; x++) fb[y * WIDTH + x] = pattern(x, y);
	printf("vesa: drawn\n");
	while (serial_getc_nowait() < 0) cpu_relax();
	for (u32 y = 160; y < 170; y++)
		for (u32 x = 300; x < 310; x++) fb[y * WIDTH + x] = 0xffffff;
	printf("vesa: changed\n");
	return 0;
}
