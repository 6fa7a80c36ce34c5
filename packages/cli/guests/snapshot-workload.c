/*
 * The snapshot test's guest: a deterministic workload that keeps state everywhere a snapshot must carry it, and
 * prints one result line that an interrupted-and-restored run must reproduce exactly.
 *
 * Each of ROUNDS rounds: rewrites pages of an 8 MiB buffer from a xorshift generator and folds them into a running
 * checksum; takes 16 bytes from virtio-rng (counted, not checksummed: they are random); writes a sector of the
 * virtio-blk disk with content derived from the round, reads back the sector written WRAP rounds earlier and checks
 * it. "round N" is printed every 20 rounds. At the end every sector the run wrote is read back and hashed with the
 * buffer, and the counts are printed: "result checksum=... memory=... disk=... rng=... blk=...".
 */
#include "virtio.h"

#define QSZ 8
/* How long a request may take, in TSC cycles. */
#define TIMEOUT 20000000000UL
#define ROUNDS 300
#define WRAP 32
#define BUFFER_BYTES (8UL << 20)
#define PAGES_PER_ROUND 16

static u8 rng_ring[VIRTQ_RING_BYTES(QSZ)] __attribute__((aligned(4096)));
static u8 blk_ring[VIRTQ_RING_BYTES(QSZ)] __attribute__((aligned(4096)));
static u8 buffer[BUFFER_BYTES] __attribute__((aligned(4096)));
static u8 random_bytes[16];
static struct { u32 type, reserved; u64 sector; } blk_header;
static u8 sector[512] __attribute__((aligned(512)));
static u8 blk_status;

static u64 state = 0x9e3779b97f4a7c15UL;
static u64 next(void) {
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}
static u64 fold(u64 h, u64 v) { return (h ^ v) * 0x100000001b3UL; }

static struct virtio_pci rng, blk;
static struct virtq rngq, blkq;
static u32 rng_done, blk_done;

static int blk_io(u32 type, u64 lba) {
	blk_header.type = type;
	blk_header.sector = lba;
	blk_status = 0xff;
	const struct virtq_buf b[3] = { { (u64)&blk_header, sizeof blk_header, 0 }, { (u64)sector, sizeof sector, type == 0 }, { (u64)&blk_status, 1, 1 } };
	if (virtio_transfer(&blk, &blkq, b, 3, TIMEOUT) < 0 || blk_status != 0) return 0;
	blk_done++;
	return 1;
}

static void fill_sector(u32 round) {
	for (u32 i = 0; i < sizeof sector; i++) sector[i] = (u8)(round * 31 + i * 7 + (i >> 3));
}

static int sector_matches(u32 round) {
	for (u32 i = 0; i < sizeof sector; i++) if (sector[i] != (u8)(round * 31 + i * 7 + (i >> 3))) return 0;
	return 1;
}

int main(void) {
	if (!virtio_start_polled(VIRTIO_ID_RNG, &rng, &rngq, rng_ring, QSZ)) { printf("workload: no usable virtio-rng\n"); return 1; }
	if (!virtio_start_polled(VIRTIO_ID_BLK, &blk, &blkq, blk_ring, QSZ)) { printf("workload: no usable virtio-blk\n"); return 1; }
	printf("workload: started\n");
	u64 checksum = 0;
	for (u32 round = 1; round <= ROUNDS; round++) {
		for (u32 p = 0; p < PAGES_PER_ROUND; p++) {
			u64 *page = (u64 *)(buffer + (next() % (BUFFER_BYTES / 4096)) * 4096);
			for (u32 i = 0; i < 512; i += 8) page[i] = next();
			for (u32 i = 0; i < 512; i += 8) checksum = fold(checksum, page[i]);
		}
		const struct virtq_buf r[1] = { { (u64)random_bytes, sizeof random_bytes, 1 } };
		if (virtio_transfer(&rng, &rngq, r, 1, TIMEOUT) != (long)sizeof random_bytes) { printf("workload: virtio-rng failed in round %u\n", round); return 1; }
		rng_done++;
		fill_sector(round);
		if (!blk_io(1, round % (2 * WRAP))) { printf("workload: write failed in round %u\n", round); return 1; }
		if (round > WRAP) {
			u32 earlier = round - WRAP;
			if (!blk_io(0, earlier % (2 * WRAP)) || !sector_matches(earlier)) { printf("workload: sector of round %u reads back wrong in round %u\n", earlier, round); return 1; }
		}
		if (round % 20 == 0) printf("round %u\n", round);
	}
	u64 disk = 0;
	for (u32 lba = 0; lba < 2 * WRAP; lba++) {
		if (!blk_io(0, lba)) { printf("workload: final read of sector %u failed\n", lba); return 1; }
		for (u32 i = 0; i < sizeof sector; i += 8) disk = fold(disk, *(u64 *)(sector + i));
	}
	u64 memory = 0;
	for (u64 i = 0; i < BUFFER_BYTES; i += 64) memory = fold(memory, *(u64 *)(buffer + i));
	printf("result checksum=%lx memory=%lx disk=%lx rng=%u blk=%u\n", checksum, memory, disk, rng_done, blk_done);
	return 0;
}
