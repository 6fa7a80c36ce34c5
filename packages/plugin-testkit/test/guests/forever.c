/* Says so on COM1, then never exits: runGuestProgram's timeout has to stop it. */
#include "guest.h"

int main(void) {
	printf("looping forever\n");
	for (;;) {
		__asm__ volatile("pause");
	}
}
