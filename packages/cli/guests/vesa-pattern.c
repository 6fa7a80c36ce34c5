/*
 * The screenshot guest: finds the vesa function (1234:1111) on bus 0, sets a 64x48x32 mode through the Bochs VBE
 * ports, draws a pattern the host test computes too (red from x, green from y, blue from x ^ y), says it is ready
 * and then halts with interrupts enabled, so the VM stays up, idle, for `vmm screenshot`.
 */
#include "guest.h"

#define VBE_INDEX 0x1ce
#define VBE_DATA 0x1cf
#define WIDTH 64
#define HEIGHT 48

static void vbe_write(u16 index, u16 value) { outw(VBE_INDEX, index); outw(VBE_DATA, value); }

int main(void) {
	int slot = -1;
	for (u8 dev = 0; dev < 32; dev++)
		if (pci_cf8_read(0, dev, 0, 0, 4) == 0x11111234) slot = dev;
	if (slot < 0) {
		printf("vesa-pattern: no 1234:1111 function\n");
		return 1;
	}
	volatile u32 *fb = (volatile u32 *)(pci_cf8_read(0, slot, 0, 0x10, 4) & ~0xfUL);
	vbe_write(4, 0);
	vbe_write(1, WIDTH);
	vbe_write(2, HEIGHT);
	vbe_write(3, 32);
	vbe_write(4, 0x41); /* ENABLED | LFB_ENABLED */
	for (u32 y = 0; y < HEIGHT; y++)
		for (u32 x = 0; x < WIDTH; x++) fb[y * WIDTH + x] = ((x * 4) & 0xff) << 16 | ((y * 5) & 0xff) << 8 | ((x ^ y) & 0xff);
	printf("vesa-pattern: ready\n");
	for (;;) sti_hlt();
}
