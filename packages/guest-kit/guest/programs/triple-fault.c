/* Loads an empty IDT and raises #UD: #UD -> #GP -> #DF -> triple fault, so the VM shuts down. */
#include "../runtime/guest.h"

int main(void) {
	struct {
		u16 limit;
		u64 base;
	} __attribute__((packed)) empty = {0, 0};
	printf("triple faulting\n");
	__asm__ volatile("lidt %0; ud2" : : "m"(empty));
	printf("still alive?\n");
	return 1;
}
