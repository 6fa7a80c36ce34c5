/* Spins without any exit for a while (about 300k emulated instructions, a few seconds here), then exits. */
#include "../runtime/guest.h"

int main(void) {
	printf("spinning\n");
	volatile u32 x = 0;
	for (u32 i = 0; i < 60000; i++) x += i;
	printf("spin done %u\n", x);
	return 0;
}
