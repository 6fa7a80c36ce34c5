/*
 * Every CPU the firmware tables list runs: each increments a shared counter and prints its APIC ID; the
 * bootstrap CPU waits (bounded) for all of them.
 */
#include "../runtime/guest.h"

static volatile u32 arrived;
static volatile u32 print_lock;

static void locked_print(u32 id, const char *who) {
	while (atomic_add(&print_lock, 1) != 0) {
		atomic_add(&print_lock, (u32)-1);
		cpu_relax();
	}
	printf("cpu %s apic id %u running\n", who, id);
	atomic_add(&print_lock, (u32)-1);
}

void ap_main(u32 apic_id) {
	locked_print(apic_id, "AP");
	atomic_add(&arrived, 1);
	for (;;) __asm__ volatile("cli; hlt");
}

int main(void) {
	int cpus = acpi_cpu_count();
	printf("MADT lists %d cpus\n", cpus);
	locked_print(lapic_id(), "BSP");
	atomic_add(&arrived, 1);
	for (u64 spins = 0; arrived < (u32)cpus; spins++) {
		if (spins > 2000000) {
			printf("only %u of %d cpus arrived\n", arrived, cpus);
			return 1;
		}
		cpu_relax();
	}
	printf("all %u cpus ran\n", arrived);
	return 0;
}
