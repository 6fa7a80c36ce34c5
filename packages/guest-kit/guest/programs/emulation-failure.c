/* Executes int3, which this host's KVM emulator cannot run: the VMM must report it with RIP and bytes. */
#include "../runtime/guest.h"

int main(void) {
	printf("about to run int3\n");
	__asm__ volatile(".globl failing_insn\nfailing_insn: int3");
	printf("int3 returned?\n");
	return 1;
}
