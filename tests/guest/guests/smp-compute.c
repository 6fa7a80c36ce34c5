/*
 * Benchmark guest for SMP scaling (issue #17): a fixed amount of register-only work (no exits, no shared cache lines)
 * split into equal shares, one per CPU the MADT lists, all started together: the time on N CPUs against the time on
 * one is the "the same work on one vCPU" ratio (0.5 for perfect scaling on 2). The bootstrap CPU prints "phase compute begin"
 * before it lets them go and "phase compute end" once all are done, so the host times the phase; the guest also
 * prints the phase's TSC cycles.
 */
#include "guest.h"

#define TOTAL_ITERATIONS 300000ULL
#define MAX_CPUS 64

static volatile u32 arrived, go, done;  /* `cpus` is set before `go` */
/* One cache line per CPU, so no CPU's result slows another's loop. */
static volatile u64 results[MAX_CPUS * 8];

static u32 cpus;

static u64 work(u64 x, u64 iterations) {
	for (u64 i = 0; i < iterations; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x;
}

static void run_share(u32 id) {
	results[(id % MAX_CPUS) * 8] = work(id + 1, TOTAL_ITERATIONS / cpus);
	atomic_add(&done, 1);
}

void ap_main(u32 apic_id) {
	atomic_add(&arrived, 1);
	while (!go) cpu_relax();
	run_share(apic_id);
	for (;;) __asm__ volatile("cli; hlt");
}

int main(void) {
	cpus = (u32)acpi_cpu_count();
	atomic_add(&arrived, 1);
	for (u64 spins = 0; arrived < cpus; spins++) {
		if (spins > 200000000ULL) {
			printf("only %u of %u cpus arrived\n", arrived, cpus);
			return 1;
		}
		cpu_relax();
	}
	printf("phase compute begin\n");
	u64 start = rdtsc();
	go = 1;
	run_share(lapic_id());
	while (done < cpus) cpu_relax();
	u64 cycles = rdtsc() - start;
	printf("phase compute end %u 0\n", cpus);
	printf("cycles %lu\n", cycles);
	return 0;
}
