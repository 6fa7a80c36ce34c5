/*
 * What the benchmark guest drivers (virtio-blk-bench.c, virtio-rng-bench.c, virtio-net-bench.c) share: polled
 * queues, waiting for their completions and reading their one-line commands from COM1. Included after "virtio.h". (Bus Master Enable needs no
 * line of theirs: virtio_negotiate sets it.)
 */
#ifndef BENCH_GUEST_H
#define BENCH_GUEST_H

/*
 * Sets up queue `index` polled: no MSI-X vector and the avail ring's NO_INTERRUPT flag (which governs while
 * EVENT_IDX is not negotiated), because on this project's emulated KVM an interrupt is taken only ~1,000
 * instructions after `sti`. Caches its doorbell address in *doorbell (completion loops are emulated instruction by
 * instruction). 0 when the device refused the queue.
 */
static inline int bench_polled_queue(struct virtio_pci *d, u16 index, struct virtq *q, void *ring, u16 size, u64 *doorbell) {
	if (!virtio_queue_setup(d, index, q, ring, size, VIRTIO_NO_VECTOR)) return 0;
	q->avail->flags = VIRTQ_AVAIL_F_NO_INTERRUPT;
	*doorbell = virtio_doorbell(d, q);
	return 1;
}

/* VERSION_1 only (no EVENT_IDX, so NO_INTERRUPT governs), queue 0 polled (as above), DRIVER_OK; 1 when all worked. */
static inline int bench_start_one_queue(struct virtio_pci *d, struct virtq *q, void *ring, u16 size, u64 *doorbell) {
	return virtio_negotiate(d, VIRTIO_F_VERSION_1) && bench_polled_queue(d, 0, q, ring, size, doorbell) && virtio_driver_ok(d);
}

/*
 * Polls the used index at its fixed address `used_idx` (one load per pass of the emulated loop) until it moves
 * past q->last_used, and returns it. Timed, it adds the TSC ticks spent waiting to *waiting, reading the TSC only
 * where the waiting starts and ends (a read costs a few microseconds here). Completion loops take the completions
 * up to what it returns, then ring the doorbell once for all they reposted.
 */
static inline __attribute__((always_inline)) u16 bench_wait_used(const struct virtq *q, const volatile u16 *used_idx, int timed, u64 *waiting) {
	u16 idx = *used_idx;
	if (idx != q->last_used) return idx;
	u64 from = timed ? rdtsc() : 0;
	do cpu_relax();
	while ((idx = *used_idx) == q->last_used);
	if (timed) *waiting += rdtsc() - from;
	return idx;
}

/* A decimal number after any spaces (0 when there is none); *p moves past it. */
static inline u32 read_number(const char **p) {
	u32 v = 0;
	while (**p == ' ') (*p)++;
	while (**p >= '0' && **p <= '9') v = v * 10 + (u32)(*(*p)++ - '0');
	return v;
}

/* Whether the next word after any spaces starts with `flag` (a command's optional last letter). */
static inline int read_flag(const char **p, char flag) {
	while (**p == ' ') (*p)++;
	return **p == flag;
}

/* Waits for one line on COM1 (polled: interrupts stay off), without its CR/LF, cut to size - 1 bytes; its length. */
static inline int read_line(char *buf, int size) {
	int n = 0;
	for (;;) {
		int c = serial_getc_nowait();
		if (c < 0) { cpu_relax(); continue; }
		if (c == '\r') continue;
		if (c == '\n') { buf[n] = 0; return n; }
		if (n < size - 1) buf[n++] = (char)c;
	}
}

#endif
