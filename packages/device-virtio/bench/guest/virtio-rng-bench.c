/*
 * virtio-rng throughput driver for the guest-driven benchmark (and its KVM test), in the style of
 * virtio-blk-bench.c. It finds the modern virtio-rng function, negotiates VERSION_1 only, sets up queue 0 with QSZ
 * entries and NO interrupts (vector NO_VECTOR and the avail ring's NO_INTERRUPT flag): completions are found by
 * polling the used ring, because on this project's emulated KVM an interrupt is taken only ~1,000 instructions
 * after `sti`. Each in-flight slot is one device-writable descriptor on a fixed buffer the guest never reads
 * (guest code is slow here: the VMM writes the bytes); a request is ok when the device filled all of it.
 *
 * Before it prints "ready" it completes one 64-byte request (so a data-plane thread has started before any case).
 * Commands arrive on COM1, one per line:  "<block bytes> <queue depth> <requests> [t]"  or  "q" (exit 0).
 * For each the guest prints "start", keeps <queue depth> requests in flight until <requests> have completed, then
 * prints "done <ok> <short> <waiting> <total>" (<short>: used lengths other than the block). With "t" (timed),
 * <waiting> is the TSC ticks spent polling an unchanged used index (the device's time: at queue depth 1 the time
 * outside the guest per request) and <total> the case's ticks from "start"; both are 0 otherwise, because rdtsc
 * costs a few microseconds per call on this project's hosts.
 */
#include "virtio.h"
#include "bench-guest.h"

#define QSZ 64
#define MAX_DEPTH QSZ
#define MAX_BLOCK 65536 /* the device's cap per request: a longer buffer would get a short answer */

/* Fixed guest-physical areas above the program (identity mapped, never in .bss so the runtime does not spend
 * emulated instructions clearing them). */
#define RING_BASE 0x800000UL /* VIRTQ_RING_BYTES(QSZ) */
/* The used index at its fixed address: one load per pass of the (emulated) polling loop */
#define USED_IDX ((volatile u16 *)(RING_BASE + VIRTQ_USED_OFFSET(QSZ) + 2))
#define DATA 0x1000000UL

static struct virtio_pci rng;
static struct virtq q;
static u64 doorbell; /* cached: the completion loop is emulated instruction by instruction */

/* Slot s: descriptor s, the device-writable buffer DATA + s * block. */
static void prepare_slots(u32 depth, u32 block) {
	for (u32 s = 0; s < depth; s++) {
		const struct virtq_buf b = { DATA + (u64)s * block, block, 1 };
		virtq_write_chain(&q, (u16)s, &b, 1);
	}
}

static void run_case(u32 block, u32 depth, u32 requests, int timed) {
	u32 posted = 0, ok = 0, short_answers = 0;
	prepare_slots(depth, block);
	printf("start\n");
	u64 started = timed ? rdtsc() : 0, waiting = 0;
	for (u32 s = 0; s < depth && posted < requests; s++, posted++) virtq_make_available(&q, (u16)s);
	mmio_write16(doorbell, 0);
	while (ok + short_answers < requests) {
		u16 idx = bench_wait_used(&q, USED_IDX, timed, &waiting);
		int reposted = 0;
		while (q.last_used != idx) {
			u32 len = 0;
			u16 slot = (u16)virtq_next_used(&q, &len);
			if (len == block) ok++;
			else short_answers++;
			if (posted < requests) {
				virtq_make_available(&q, slot);
				posted++;
				reposted = 1;
			}
		}
		if (reposted) mmio_write16(doorbell, 0);
	}
	printf("done %u %u %lu %lu\n", ok, short_answers, waiting, timed ? rdtsc() - started : 0);
}

int main(void) {
	if (!virtio_pci_find(VIRTIO_ID_RNG, 0, &rng)) { printf("FAIL virtio-rng (modern) not found\n"); return 10; }
	if (!bench_start_one_queue(&rng, &q, (void *)RING_BASE, QSZ, &doorbell)) { printf("FAIL virtio-rng queue setup\n"); return 11; }
	/* One request before "ready": the cases then time the device's steady state, not a data-plane thread starting. */
	virtq_add_buf(&q, 0, DATA, 64, 1);
	mmio_write16(doorbell, 0);
	u32 warm = 0;
	if (virtq_poll_used(&q, 60000000000UL, &warm) != 0 || warm != 64) { printf("FAIL virtio-rng warm-up request\n"); return 13; }
	printf("ready qsz %u\n", QSZ);
	char line[64];
	for (;;) {
		read_line(line, sizeof line);
		if (line[0] == 'q') return 0;
		const char *p = line;
		u32 block = read_number(&p), depth = read_number(&p), requests = read_number(&p);
		int timed = read_flag(&p, 't');
		if (block < 1 || block > MAX_BLOCK || depth < 1 || depth > MAX_DEPTH || requests < 1) {
			printf("FAIL bad command '%s'\n", line);
			return 12;
		}
		run_case(block, depth, requests, timed);
	}
}
