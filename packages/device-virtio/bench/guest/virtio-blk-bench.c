/*
 * virtio-blk throughput driver for the guest-driven benchmark (and its KVM smoke test). It finds the modern
 * virtio-blk function, negotiates VERSION_1 only, sets up queue 0 with QSZ entries and NO interrupts (vector
 * NO_VECTOR and the avail ring's NO_INTERRUPT flag): completions are found by polling the used ring, because on
 * this project's emulated KVM an interrupt is taken only ~1,000 instructions after `sti`, which would dwarf the
 * request cost. Each in-flight slot owns three descriptors (header, data, status) and fixed buffers; the guest
 * never reads the data (guest code is slow here: the VMM moves the bytes), only the status byte.
 *
 * Commands arrive on COM1, one per line:  "<s|r> <block bytes> <queue depth> <requests> [t]"  or  "q" (exit 0).
 * For each the guest prints "start", keeps <queue depth> reads in flight (sequential or random block offsets)
 * until <requests> have completed, then prints "done <ok> <errors> <waiting> <total>". With "t" (timed),
 * <waiting> is the TSC ticks spent polling an unchanged used index (the device's time: at queue depth 1 the time
 * outside the guest per request) and <total> the case's ticks from "start", so the host can split its wall time
 * into the guest's and the VMM's; both are 0 otherwise, because rdtsc is not free on this project's hosts (a few
 * microseconds per call), and the rates come from untimed runs.
 * Before it prints "ready" it completes one 512-byte read of sector 0 (so a data-plane thread has started, loaded
 * its module and mapped RAM before any case: otherwise the first request of every case waits for it).
 */
#include "virtio.h"
#include "bench-guest.h"

#define QSZ 128
#define MAX_DEPTH (QSZ / 3)
#define MAX_BLOCK 65536

/* Fixed guest-physical areas above the program (identity mapped, zero at boot; never in .bss so the runtime does
 * not spend emulated instructions clearing them). */
#define RING_BASE 0x800000UL /* VIRTQ_RING_BYTES(QSZ): descriptors, avail at +0x800, used at +0x1000 */
/* The used index at its fixed address: one load per pass of the (emulated) polling loop */
#define USED_IDX ((volatile u16 *)(RING_BASE + VIRTQ_USED_OFFSET(QSZ) + 2))
#define HDRS (RING_BASE + 0x10000)
#define DATA 0x1000000UL

static struct virtio_pci blk;
static struct virtq q;
static u64 doorbell; /* cached: the completion loop is emulated instruction by instruction */

/* Slot s: descriptors 3s (header), 3s+1 (data, device-writable), 3s+2 (status, device-writable). */
static void prepare_slots(u32 depth, u32 block) {
	for (u32 s = 0; s < depth; s++) {
		u64 hdr = HDRS + 32 * s;
		*(volatile u32 *)hdr = 0; /* VIRTIO_BLK_T_IN */
		*(volatile u32 *)(hdr + 4) = 0;
		const struct virtq_buf chain[3] = { { hdr, 16, 0 }, { DATA + (u64)s * block, block, 1 }, { hdr + 16, 1, 1 } };
		virtq_write_chain(&q, (u16)(3 * s), chain, 3);
	}
}

static u64 rng_state = 0x9e3779b97f4a7c15UL;
static u64 next_random(void) {
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static void post(u32 slot, u64 sector) {
	u64 hdr = HDRS + 32 * slot;
	*(volatile u64 *)(hdr + 8) = sector;
	*(volatile u8 *)(hdr + 16) = 0xff;
	virtq_make_available(&q, (u16)(3 * slot));
}

/* Runs one case; returns the number of requests that completed with a status other than OK. */
static void run_case(int random, u32 block, u32 depth, u32 requests, int timed) {
	u64 capacity = (u64)mmio_read32(blk.devcfg) | ((u64)mmio_read32(blk.devcfg + 4) << 32);
	u64 blocks = capacity / (block / 512);
	u64 next_block = 0;
	u32 posted = 0, ok = 0, errors = 0;
	prepare_slots(depth, block);
	printf("start\n");
	u64 started = timed ? rdtsc() : 0, waiting = 0;
	for (u32 s = 0; s < depth && posted < requests; s++, posted++) {
		u64 b = random ? next_random() % blocks : next_block++ % blocks;
		post(s, b * (block / 512));
	}
	mmio_write16(doorbell, 0);
	while (ok + errors < requests) {
		u16 idx = bench_wait_used(&q, USED_IDX, timed, &waiting);
		int reposted = 0;
		while (q.last_used != idx) {
			u32 slot = (u32)virtq_next_used(&q, NULL) / 3;
			if (*(volatile u8 *)(HDRS + 32 * slot + 16) == 0) ok++;
			else errors++;
			if (posted < requests) {
				u64 b = random ? next_random() % blocks : next_block++ % blocks;
				post(slot, b * (block / 512));
				posted++;
				reposted = 1;
			}
		}
		if (reposted) mmio_write16(doorbell, 0);
	}
	printf("done %u %u %lu %lu\n", ok, errors, waiting, timed ? rdtsc() - started : 0);
}

int main(void) {
	if (!virtio_pci_find(VIRTIO_ID_BLK, 0, &blk) || !blk.devcfg) { printf("FAIL virtio-blk (modern) not found\n"); return 10; }
	if (!bench_start_one_queue(&blk, &q, (void *)RING_BASE, QSZ, &doorbell)) { printf("FAIL virtio-blk queue setup\n"); return 11; }
	/* One request before "ready": the cases then time the device's steady state, not a data-plane thread starting. */
	prepare_slots(1, 512);
	post(0, 0);
	mmio_write16(doorbell, 0);
	u32 warm = 0;
	if (virtq_poll_used(&q, 60000000000UL, &warm) != 0 || warm != 513 || *(volatile u8 *)(HDRS + 16) != 0) {
		printf("FAIL virtio-blk warm-up request\n");
		return 13;
	}
	printf("ready qsz %u\n", QSZ);
	char line[64];
	for (;;) {
		read_line(line, sizeof line);
		if (line[0] == 'q') return 0;
		const char *p = line + 1;
		u32 block = read_number(&p), depth = read_number(&p), requests = read_number(&p);
		int timed = read_flag(&p, 't');
		if ((line[0] != 's' && line[0] != 'r') || block < 512 || block > MAX_BLOCK || block % 512 || depth < 1 ||
		    depth > MAX_DEPTH || requests < 1) {
			printf("FAIL bad command '%s'\n", line);
			return 12;
		}
		run_case(line[0] == 'r', block, depth, requests, timed);
	}
}
