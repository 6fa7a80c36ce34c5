/* Asks the i8042 to pulse the reset line; the VM must stop before the next line runs. */
#include "../runtime/guest.h"

int main(void) {
	printf("i8042 status %x\n", inb(0x64));
	printf("resetting via i8042\n");
	outb(0x64, 0xfe);
	printf("still running after reset\n");
	return 3;
}
