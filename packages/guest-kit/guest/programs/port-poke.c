/* Writes to port 0x520 three times (an ioeventfd in the tests), then to port 0x510, then reports. */
#include "../runtime/guest.h"

int main(void) {
	for (int i = 0; i < 3; i++) outb(0x520, (u8)i);
	printf("pokes done\n");
	outb(0x510, 0x5a);
	printf("survived\n");
	return 0;
}
