/* Exits through the debug-exit port with status 42. */
#include "../runtime/guest.h"

int main(void) {
	printf("exiting with 42\n");
	exit(42);
}
