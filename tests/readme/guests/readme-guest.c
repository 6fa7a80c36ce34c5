/*
 * The guest.elf and guest.bin of the README's `vmm run -k guest.elf ...` lines: lists the functions on bus 0 and
 * exercises the README's scratch device (7e57:0002) when it is there: reads its register, writes 0x55aa and
 * reads it back. Exits 0, or 1 when the scratch register did not keep the write.
 */
#include "guest.h"

#define SCRATCH_ID 0x00027e57u /* device 0x0002, vendor 0x7e57 */

int main(void) {
	int status = 0;
	for (u8 slot = 0; slot < 32; slot++) {
		u32 id = pci_cf8_read(0, slot, 0, 0, 4);
		if (id == 0xffffffff) continue;
		printf("00:%02x.0 %04x:%04x\n", slot, id & 0xffff, id >> 16);
		if (id != SCRATCH_ID) continue;
		u16 port = (u16)pci_bar_address(0, slot, 0);
		printf("scratch: %u\n", inl(port));
		outl(port, 0x55aa);
		u32 back = inl(port);
		printf("scratch after writing 0x55aa: 0x%x\n", back);
		if (back != 0x55aa) status = 1;
	}
	return status;
}
