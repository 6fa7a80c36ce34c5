/* Halts with interrupts disabled without using the debug-exit port: the VMM must notice and stop. */
#include "../runtime/guest.h"

int main(void) {
	printf("halting\n");
	for (;;) __asm__ volatile("cli; hlt");
}
