/* Prints a greeting on COM1 and exits with status 0. */
#include "../runtime/guest.h"

int main(void) {
	printf("Hello from guest-kit (%s entry), apic id %u\n", GUEST_FORMAT, lapic_id());
	return 0;
}
