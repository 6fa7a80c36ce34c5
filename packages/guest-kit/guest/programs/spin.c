/* Spins without any exit for a while (about 2.5M emulated instructions), then exits. */
#include "../runtime/guest.h"

int main(void) {
	printf("spinning\n");
	volatile u32 x = 0;
	for (u32 i = 0; i < 600000; i++) x += i;
	printf("spin done %u\n", x);
	return 0;
}
